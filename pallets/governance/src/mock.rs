//! A test runtime with System and this pallet.

use crate::{self as pallet_governance, TimingBounds, TrackTiming};
use frame_support::{derive_impl, parameter_types};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(RuntimeCall, RuntimeEvent, RuntimeError, RuntimeOrigin, RuntimeTask)]
	pub struct Test;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Governance = pallet_governance;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

parameter_types! {
	pub const Bounds: TimingBounds<u64> = TimingBounds {
		prepare_period: (1, 100),
		decision_period: (5, 1_000),
		confirm_period: (1, 100),
		min_enactment_period: (1, 100),
	};
	pub const DefaultTiming: TrackTiming<u64> = TrackTiming {
		prepare_period: 10,
		decision_period: 100,
		confirm_period: 10,
		min_enactment_period: 10,
	};
}

/// The mock delegates remarks (of at most 8 bytes) to the protocol-parameters track.
pub struct ShortRemarks;
impl frame_support::traits::Contains<RuntimeCall> for ShortRemarks {
	fn contains(call: &RuntimeCall) -> bool {
		matches!(call, RuntimeCall::System(frame_system::Call::remark { remark }) if remark.len() <= 8)
	}
}

#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<RuntimeCall> for ShortRemarks {
	fn delegated_call() -> RuntimeCall {
		RuntimeCall::System(frame_system::Call::remark { remark: vec![] })
	}
}

impl pallet_governance::Config for Test {
	type TimingOrigin = frame_system::EnsureRoot<u64>;
	type TimingBounds = Bounds;
	type DefaultTiming = DefaultTiming;
	type RuntimeCall = RuntimeCall;
	type DelegationOrigin = pallet_governance::ProtocolParameters;
	type DelegatedRootCalls = ShortRemarks;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = ShortRemarks;
}

/// Externalities with the default timing everywhere but a short `root` track.
pub fn new_test_ext() -> sp_io::TestExternalities {
	let storage = RuntimeGenesisConfig {
		governance: pallet_governance::GenesisConfig {
			track_timings: vec![(
				crate::tracks::ROOT,
				TrackTiming {
					prepare_period: 1,
					decision_period: 5,
					confirm_period: 1,
					min_enactment_period: 1,
				},
			)],
		},
		..Default::default()
	}
	.build_storage()
	.expect("the test genesis is valid");
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

/// Runs `test`, then checks the pallet's invariants.
pub fn test(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		test();
		Governance::do_try_state().expect("invariants hold after the test");
	});
}
