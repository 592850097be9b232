use crate::{
	mock::*, BondingDuration, EpochDuration, ReportLongevity, SessionTiming,
	SessionsPerBondingPeriod, SessionsPerEra, SlashDeferDuration, TimingError,
};
use frame_support::traits::{Get, Hooks};

const TEST_CHAIN: SessionTiming<u64> = SessionTiming {
	session_length: 10,
	sessions_per_era: 2,
	bonding_duration: 2,
	slash_defer_duration: 1,
};

#[test]
fn a_genesis_timing_reaches_babe_and_staking() {
	new_test_ext(Some(TEST_CHAIN)).execute_with(|| {
		assert_eq!(EpochDuration::<Test>::get(), 10);
		assert_eq!(SessionsPerEra::<Test>::get(), 2);
		assert_eq!(BondingDuration::<Test>::get(), 2);
		assert_eq!(SlashDeferDuration::<Test>::get(), 1);
		// Two eras of two ten-block sessions.
		assert_eq!(ReportLongevity::<Test>::get(), 40);
		assert_eq!(SessionsPerBondingPeriod::<Test>::get(), 4);
	});
}

#[test]
fn a_genesis_without_timing_runs_on_the_default() {
	new_test_ext(None).execute_with(|| {
		assert_eq!(EpochDuration::<Test>::get(), 600);
		assert_eq!(SessionsPerEra::<Test>::get(), 6);
		assert_eq!(ReportLongevity::<Test>::get(), 28 * 6 * 600);
	});
}

#[test]
fn unworkable_timings_are_refused() {
	let refused = |timing: SessionTiming<u64>| timing.check(10).unwrap_err();
	assert_eq!(
		refused(SessionTiming { session_length: 9, ..TEST_CHAIN }),
		TimingError::SessionTooShort
	);
	assert_eq!(
		refused(SessionTiming { sessions_per_era: 0, ..TEST_CHAIN }),
		TimingError::NoSessionsPerEra
	);
	assert_eq!(
		refused(SessionTiming { bonding_duration: 0, slash_defer_duration: 0, ..TEST_CHAIN }),
		TimingError::NoBondingDuration
	);
	assert_eq!(
		refused(SessionTiming { slash_defer_duration: 2, ..TEST_CHAIN }),
		TimingError::SlashDeferredPastUnbonding
	);
}

#[test]
#[should_panic(expected = "genesis session timing refused")]
fn a_genesis_may_not_defer_slashes_past_unbonding() {
	new_test_ext(Some(SessionTiming { slash_defer_duration: 5, ..TEST_CHAIN }));
}

#[test]
fn the_default_timing_passes_the_integrity_test() {
	new_test_ext(None).execute_with(|| {
		<crate::Pallet<Test> as Hooks<u64>>::integrity_test();
	});
}
