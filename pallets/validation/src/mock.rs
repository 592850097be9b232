//! Test runtime for pallet-validation, with a simple registry and a recording observer.

use crate as pallet_validation;
use crate::Params;
use agora_primitives::{JobId, Role, RoundIndex, RoundOutcome, VerificationObserver, H256};
use core::cell::RefCell;
use frame_support::{
	derive_impl,
	pallet_prelude::Weight,
	parameter_types,
	traits::{ConstU32, Randomness},
};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, Perbill};

type Block = frame_system::mocking::MockBlock<Test>;
pub use agora_primitives::testing::{AccountId, Balance};

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeTask,
		RuntimeHoldReason,
		RuntimeFreezeReason
	)]
	pub struct Test;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Validation = pallet_validation;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = sp_runtime::traits::IdentityLookup<AccountId>;
}

pub use agora_primitives::testing::{
	remove_role, reset as reset_registry, set_stake, slashes, stake_of, MockRegistry,
};

thread_local! {
	/// Outcomes reported.
	pub static OUTCOMES: RefCell<Vec<(JobId, RoundIndex, RoundOutcome<AccountId>)>> = const { RefCell::new(Vec::new()) };
}

pub struct MockObserver;
impl VerificationObserver<AccountId> for MockObserver {
	fn on_verified(job: JobId, round: RoundIndex, outcome: RoundOutcome<AccountId>) -> Weight {
		OUTCOMES.with(|o| o.borrow_mut().push((job, round, outcome)));
		Weight::zero()
	}
	fn on_verified_weight() -> Weight {
		Weight::zero()
	}
}

/// Deterministic randomness: a hash of the subject and the block number.
pub struct TestRandomness;
impl Randomness<H256, u64> for TestRandomness {
	fn random(subject: &[u8]) -> (H256, u64) {
		let n = System::block_number();
		(H256(sp_io::hashing::blake2_256(&codec::Encode::encode(&(subject, n)))), n)
	}
}

parameter_types! {
	pub const Defaults: Params = Params {
		detectable_fraction: Perbill::from_percent(10),
		detection_probability: Perbill::from_percent(99),
		score_tolerance: Perbill::from_percent(20),
		no_reveal_slash: Perbill::from_percent(2),
		contradiction_slash: Perbill::from_percent(10),
		fraud_slash: Perbill::from_percent(20),
		unavailable_slash: Perbill::from_percent(5),
		min_unavailable_reports: 2,
		aggregator_slash: Perbill::from_percent(10),
		max_aggregation_attempts: 2,
	};
}

impl pallet_validation::Config for Test {
	type Balance = Balance;
	type Registry = MockRegistry;
	type Observer = MockObserver;
	type Randomness = TestRandomness;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = Defaults;
	type MaxActiveJobs = ConstU32<4>;
	type MaxWorkersPerRound = ConstU32<4>;
	type MaxValidatorsPerUpdate = ConstU32<4>;
	type MaxSegments = ConstU32<64>;
	type MaxRoundValidators = ConstU32<8>;
	type MaxTransitionsPerBlock = ConstU32<2>;
	type WeightInfo = ();
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	reset_registry();
	// Workers 1..=3, validators 11..=13 (stakes 1000, 2000, 3000).
	for w in 1..=3 {
		set_stake(w, Role::Worker, 1_000);
	}
	for (v, stake) in [(11, 1_000), (12, 2_000), (13, 3_000)] {
		set_stake(v, Role::Validator, stake);
	}
	OUTCOMES.with(|o| o.borrow_mut().clear());
	let t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(t);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

/// Run `f` in a fresh externality and check the pallet's invariants afterwards.
pub fn test(f: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		f();
		crate::Pallet::<Test>::do_try_state().expect("invariants hold");
	});
}

/// Run blocks up to `n`, calling the pallet's `on_initialize`.
pub fn run_to(n: u64) {
	use frame_support::traits::Hooks;
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Validation::on_initialize(next);
	}
}

pub fn events() -> Vec<crate::Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| if let RuntimeEvent::Validation(e) = r.event { Some(e) } else { None })
		.collect()
}
