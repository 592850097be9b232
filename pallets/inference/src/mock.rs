//! Test runtime for pallet-inference: balances, the shared in-memory registry, receipts
//! signed with `TestSignature` (valid only for its signer and exact message).

use crate as pallet_inference;
use crate::{Params, Receipt};
use agora_primitives::{Role, H256};
use frame_support::{
	derive_impl, parameter_types,
	traits::{ConstU128, ConstU32, Randomness},
	PalletId,
};
use frame_system::EnsureRoot;
use sp_runtime::{
	testing::{TestSignature, UintAuthorityId},
	BuildStorage, Perbill,
};

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
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(2)]
	pub type Inference = pallet_inference;
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

/// The model owner (a job's submitter).
pub const OWNER: AccountId = 100;
/// A client.
pub const CLIENT: AccountId = 200;
/// Another client.
pub const CLIENT2: AccountId = 201;
/// Providers (eligible workers).
pub const PROVIDER: AccountId = 1;
pub const PROVIDER2: AccountId = 2;
/// Validators 11, 12, 13 with stakes 1000, 2000, 3000.
pub const VALIDATORS: [AccountId; 3] = [11, 12, 13];
pub const TREASURY: AccountId = 999;
pub const MODEL: u64 = 7;
pub const PRICE: Balance = 10;

pub use agora_primitives::testing::{
	remove_role, remove_stake, reset as reset_registry, set_stake, slashes, stake_of, MockRegistry,
};

/// Deterministic randomness: a hash of the subject and the block number.
pub struct TestRandomness;
impl Randomness<H256, u64> for TestRandomness {
	fn random(subject: &[u8]) -> (H256, u64) {
		let n = System::block_number();
		(H256(sp_io::hashing::blake2_256(&codec::Encode::encode(&(subject, n)))), n)
	}
}

parameter_types! {
	pub const Defaults: Params<Balance, u64> = Params {
		protocol_fee: Perbill::from_percent(5),
		audit_fee: Perbill::from_percent(5),
		audit_rate: Perbill::from_percent(10),
		auditors: 3,
		audit_reward: 2,
		wrong_answer_slash: Perbill::from_percent(10),
		dissent_slash: Perbill::from_percent(2),
		audit_delay: 2,
		commit_period: 3,
		reveal_period: 3,
		dispute_window: 10,
		dispute_bond: 50,
		close_delay: 5,
		version_deposit: 5,
		offer_deposit: 5,
		channel_deposit: 3,
	};
	pub const InferencePalletId: PalletId = PalletId(*b"agr/infr");
	pub const Treasury: AccountId = TREASURY;
}

#[cfg(feature = "runtime-benchmarks")]
pub struct MockSigner;
#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper<AccountId, TestSignature> for MockSigner {
	fn sign(payload: &[u8]) -> (AccountId, TestSignature) {
		(4242, TestSignature(4242, payload.to_vec()))
	}
}

impl pallet_inference::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = MockRegistry;
	type Randomness = TestRandomness;
	type Signature = TestSignature;
	type Signer = UintAuthorityId;
	type Treasury = Treasury;
	type PalletId = InferencePalletId;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = Defaults;
	type MaxVersions = ConstU32<4>;
	type MaxOffersPerProvider = ConstU32<2>;
	type MaxPendingBatches = ConstU32<3>;
	type MaxDrawsPerBlock = ConstU32<2>;
	type MaxAuditors = ConstU32<4>;
	type MinAnswerWindow = frame_support::traits::ConstU64<4>;
	type WeightInfo = ();
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = MockSigner;
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	reset_registry();
	for w in [PROVIDER, PROVIDER2] {
		set_stake(w, Role::Worker, 1_000);
	}
	for (v, stake) in VALIDATORS.into_iter().zip([1_000, 2_000, 3_000]) {
		set_stake(v, Role::Validator, stake);
	}
	let mut t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: [PROVIDER, PROVIDER2, 11, 12, 13, OWNER, CLIENT, CLIENT2, TREASURY]
			.into_iter()
			.map(|a| (a, 10_000))
			.collect(),
		..Default::default()
	}
	.assimilate_storage(&mut t)
	.unwrap();
	pallet_inference::GenesisConfig::<Test>::default().assimilate_storage(&mut t).unwrap();
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

/// Run blocks up to `n`, calling the pallet's `on_initialize`, checking invariants each block.
pub fn run_to(n: u64) {
	use frame_support::traits::Hooks;
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Inference::on_initialize(next);
		crate::Pallet::<Test>::do_try_state().expect("invariants hold");
	}
}

pub fn events() -> Vec<crate::Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| if let RuntimeEvent::Inference(e) = r.event { Some(e) } else { None })
		.collect()
}

/// `client`'s signature of `receipt` on the test chain.
pub fn sign(client: AccountId, receipt: &Receipt<Balance>) -> TestSignature {
	let genesis = System::block_hash(0);
	TestSignature(client, crate::receipt_payload(&genesis, receipt))
}
