use crate::{
	mock::{test, Governance, RuntimeEvent, RuntimeOrigin, System, Test},
	tracks, Error, Event, Origin, ProtocolParameters, TrackTiming, Treasurer,
};
use frame_support::{
	assert_noop, assert_ok,
	traits::{EnsureOrigin, Hooks},
};
use sp_runtime::DispatchError;

fn timing(prepare: u64, decision: u64, confirm: u64, enactment: u64) -> TrackTiming<u64> {
	TrackTiming {
		prepare_period: prepare,
		decision_period: decision,
		confirm_period: confirm,
		min_enactment_period: enactment,
	}
}

#[test]
fn genesis_and_default_timings_apply() {
	test(|| {
		assert_eq!(Governance::timing(tracks::ROOT), timing(1, 5, 1, 1));
		assert_eq!(Governance::timing(tracks::PROTOCOL_PARAMS), timing(10, 100, 10, 10));
		assert_eq!(Governance::timing(tracks::TREASURER), timing(10, 100, 10, 10));
	});
}

#[test]
fn root_sets_track_timing() {
	test(|| {
		let new = timing(2, 50, 3, 4);
		assert_ok!(Governance::set_track_timing(RuntimeOrigin::root(), tracks::TREASURER, new));
		assert_eq!(Governance::timing(tracks::TREASURER), new);
		System::assert_last_event(RuntimeEvent::Governance(Event::TrackTimingChanged {
			track: tracks::TREASURER,
			timing: new,
		}));
	});
}

#[test]
fn only_the_timing_origin_sets_timing() {
	test(|| {
		assert_noop!(
			Governance::set_track_timing(
				RuntimeOrigin::signed(1),
				tracks::ROOT,
				timing(2, 50, 3, 4)
			),
			DispatchError::BadOrigin
		);
		assert_noop!(
			Governance::set_track_timing(
				Origin::ProtocolParameters.into(),
				tracks::ROOT,
				timing(2, 50, 3, 4)
			),
			DispatchError::BadOrigin
		);
	});
}

#[test]
fn unknown_track_is_rejected() {
	test(|| {
		assert_noop!(
			Governance::set_track_timing(RuntimeOrigin::root(), 7, timing(2, 50, 3, 4)),
			Error::<Test>::UnknownTrack
		);
	});
}

#[test]
fn out_of_bounds_periods_are_rejected_with_named_errors() {
	test(|| {
		let cases = [
			(timing(0, 50, 3, 4), Error::<Test>::PreparePeriodOutOfBounds),
			(timing(101, 50, 3, 4), Error::<Test>::PreparePeriodOutOfBounds),
			(timing(2, 4, 3, 4), Error::<Test>::DecisionPeriodOutOfBounds),
			(timing(2, 1_001, 3, 4), Error::<Test>::DecisionPeriodOutOfBounds),
			(timing(2, 50, 0, 4), Error::<Test>::ConfirmPeriodOutOfBounds),
			(timing(2, 6, 7, 4), Error::<Test>::ConfirmPeriodOutOfBounds),
			(timing(2, 50, 3, 0), Error::<Test>::EnactmentPeriodOutOfBounds),
			(timing(2, 50, 3, 101), Error::<Test>::EnactmentPeriodOutOfBounds),
		];
		for (bad, error) in cases {
			assert_noop!(
				Governance::set_track_timing(RuntimeOrigin::root(), tracks::ROOT, bad),
				error
			);
		}
		assert_eq!(Governance::timing(tracks::ROOT), timing(1, 5, 1, 1));
	});
}

#[test]
fn governance_origins_are_told_apart() {
	test(|| {
		let params: RuntimeOrigin = Origin::ProtocolParameters.into();
		let treasurer: RuntimeOrigin = Origin::Treasurer.into();
		assert!(ProtocolParameters::try_origin(params.clone()).is_ok());
		assert!(ProtocolParameters::try_origin(treasurer.clone()).is_err());
		assert!(Treasurer::try_origin(treasurer).is_ok());
		assert!(Treasurer::try_origin(params).is_err());
		assert!(ProtocolParameters::try_origin(RuntimeOrigin::root()).is_err());
		assert!(Treasurer::try_origin(RuntimeOrigin::signed(1)).is_err());
	});
}

#[test]
fn tracks_are_sorted_and_described() {
	let deposits = tracks::TrackDeposits { root: 1_000u128, protocol_params: 100, treasurer: 50 };
	let described: Vec<_> = tracks::ALL
		.iter()
		.map(|id| tracks::track(*id, &deposits, timing(1, 5, 1, 1)).expect("a known track"))
		.collect();
	assert!(described.windows(2).all(|pair| pair[0].id < pair[1].id));
	assert_eq!(described[0].info.decision_deposit, 1_000);
	assert_eq!(&described[1].info.name[..15], b"protocol_params");
	assert_eq!(described[2].info.decision_period, 5);
	assert!(tracks::track(9, &deposits, timing(1, 5, 1, 1)).is_none());
}

#[test]
fn no_track_passes_on_a_sliver_of_support() {
	// At the end of its decision period a referendum still needs this share of the active
	// issuance voting aye: 5 % to change parameters or spend, 10 % for root (runtime upgrades).
	let deposits = tracks::TrackDeposits { root: 1_000u128, protocol_params: 100, treasurer: 50 };
	let floor = |id| {
		let track = tracks::track(id, &deposits, timing(1, 5, 1, 1)).expect("a known track");
		track.info.min_support.threshold(sp_runtime::Perbill::one())
	};
	assert_eq!(floor(tracks::ROOT), sp_runtime::Perbill::from_percent(10));
	assert_eq!(floor(tracks::PROTOCOL_PARAMS), sp_runtime::Perbill::from_percent(5));
	assert_eq!(floor(tracks::TREASURER), sp_runtime::Perbill::from_percent(5));
}

#[test]
fn integrity_test_passes() {
	test(<Governance as Hooks<u64>>::integrity_test);
}

fn remark(len: usize) -> Box<crate::mock::RuntimeCall> {
	Box::new(crate::mock::RuntimeCall::System(frame_system::Call::remark { remark: vec![0; len] }))
}

#[test]
fn the_protocol_parameters_track_dispatches_delegated_calls_as_root() {
	test(|| {
		let params = RuntimeOrigin::from(Origin::ProtocolParameters);
		assert_ok!(Governance::dispatch_delegated(params.clone(), remark(8)));
		System::assert_last_event(RuntimeEvent::Governance(Event::DelegatedCallDispatched {
			result: Ok(()),
		}));
		// Outside the runtime's bounds (here: a remark longer than 8 bytes): refused.
		assert_noop!(
			Governance::dispatch_delegated(params, remark(9)),
			Error::<Test>::CallNotDelegated
		);
	});
}

#[test]
fn only_the_protocol_parameters_track_may_dispatch_delegated_calls() {
	test(|| {
		for origin in [
			RuntimeOrigin::signed(1),
			RuntimeOrigin::from(Origin::Treasurer),
			RuntimeOrigin::none(),
			// Root needs no delegation: it dispatches the call itself.
			RuntimeOrigin::root(),
		] {
			assert_noop!(
				Governance::dispatch_delegated(origin, remark(1)),
				DispatchError::BadOrigin
			);
		}
	});
}
