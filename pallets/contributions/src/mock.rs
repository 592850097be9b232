//! Test runtime for pallet-contributions.

use crate as pallet_contributions;
use crate::Params;
use agora_primitives::Role;
use frame_support::{
	derive_impl, parameter_types,
	traits::{tokens::imbalance::ResolveTo, ConstU128, ConstU32},
};
use frame_system::EnsureRoot;
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u128;

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
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(2)]
	pub type Contributions = pallet_contributions;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = sp_runtime::traits::IdentityLookup<AccountId>;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type ExistentialDeposit = ConstU128<1>;
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
}

/// Where slashes go in the tests.
pub const POOL: AccountId = 999;
pub const MIN_WORKER: Balance = 100;
pub const MIN_VALIDATOR: Balance = 1_000;
pub const SHARD_DEPOSIT: Balance = 10;
pub const DELAY: u64 = 20;

parameter_types! {
	pub const Pool: AccountId = POOL;
	pub const Defaults: Params<Balance, u64> = Params {
		min_worker_stake: MIN_WORKER,
		min_validator_stake: MIN_VALIDATOR,
		shard_deposit: SHARD_DEPOSIT,
		unbonding_delay: DELAY,
	};
}

thread_local! {
	/// Accounts (and roles) that the other pallets would report as having pending work.
	pub static PENDING: core::cell::RefCell<Vec<(AccountId, Role)>> =
		const { core::cell::RefCell::new(Vec::new()) };
}

/// Pending work as the tests set it in [`PENDING`].
pub struct MockPendingWork;
impl agora_primitives::PendingWork<AccountId> for MockPendingWork {
	fn has_pending_work(who: &AccountId, role: Role) -> bool {
		PENDING.with(|p| p.borrow().contains(&(*who, role)))
	}
	fn has_pending_work_weight() -> frame_support::weights::Weight {
		frame_support::weights::Weight::zero()
	}
}

impl pallet_contributions::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type OnSlash = ResolveTo<Pool, Balances>;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = Defaults;
	type PendingWork = MockPendingWork;
	type MaxValidators = ConstU32<4>;
	type WeightInfo = ();
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	PENDING.with(|p| p.borrow_mut().clear());
	let mut t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: (1..=10).map(|a| (a, 100_000)).chain([(POOL, 1)]).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut t)
	.unwrap();
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

pub fn run_to(n: u64) {
	System::set_block_number(n);
}

pub fn events() -> Vec<crate::Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| if let RuntimeEvent::Contributions(e) = r.event { Some(e) } else { None })
		.collect()
}
