//! A runtime with only `frame_system` and this pallet.

use crate::{self as pallet_session_timing, SessionTiming};
use frame_support::{derive_impl, parameter_types, traits::ConstU64};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Timing: pallet_session_timing,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

/// Production-like defaults: hour-long sessions of 6-second blocks, six per era, 28 eras of
/// unbonding.
pub const PRODUCTION: SessionTiming<u64> = SessionTiming {
	session_length: 600,
	sessions_per_era: 6,
	bonding_duration: 28,
	slash_defer_duration: 27,
};

parameter_types! {
	pub const DefaultTiming: SessionTiming<u64> = PRODUCTION;
}

impl pallet_session_timing::Config for Test {
	type DefaultTiming = DefaultTiming;
	type MinSessionLength = ConstU64<10>;
}

/// Externalities built from `timing` as the genesis.
pub fn new_test_ext(timing: Option<SessionTiming<u64>>) -> sp_io::TestExternalities {
	let storage = RuntimeGenesisConfig {
		system: Default::default(),
		timing: pallet_session_timing::GenesisConfig { timing },
	}
	.build_storage()
	.expect("genesis builds");
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		frame_support::assert_ok!(Timing::do_try_state());
	});
	ext
}
