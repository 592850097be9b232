//! Test runtime for pallet-rewards.

use crate as pallet_rewards;
use crate::Params;
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU128, Hooks},
	PalletId,
};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, Perbill};

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
	pub type Rewards = pallet_rewards;
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
	type ExistentialDeposit = ConstU128<10>;
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
}

pub const TREASURY: AccountId = 500;
pub const ED: Balance = 10;

parameter_types! {
	pub const RewardsPalletId: PalletId = PalletId(*b"agr/rwds");
	pub const Treasury: AccountId = TREASURY;
	pub storage ActiveJobs: u32 = 1;
	pub const Defaults: Params<Balance> = Params {
		emission_per_block: 100,
		protocol_fee: Perbill::from_percent(5),
		validator_share: Perbill::from_percent(15),
		data_share: Perbill::from_percent(10),
	};
}

impl pallet_rewards::Config for Test {
	type Currency = Balances;
	type PalletId = RewardsPalletId;
	type Treasury = Treasury;
	type ActiveJobs = ActiveJobs;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = Defaults;
	type MaxEmissionPerBlock = ConstU128<1_000>;
	type WeightInfo = ();
}

pub fn pool() -> AccountId {
	crate::Pallet::<Test>::pool_account()
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	let mut t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: (1..=10).map(|a| (a, 10_000)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut t)
	.unwrap();
	pallet_rewards::GenesisConfig::<Test> { params: None }.assimilate_storage(&mut t).unwrap();
	let mut ext = sp_io::TestExternalities::new(t);
	ext.execute_with(|| {
		System::set_block_number(1);
		ActiveJobs::set(&0);
	});
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
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Rewards::on_initialize(next);
	}
}

pub fn events() -> Vec<crate::Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| if let RuntimeEvent::Rewards(e) = r.event { Some(e) } else { None })
		.collect()
}
