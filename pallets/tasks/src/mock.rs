//! Test runtime for pallet-tasks, with simple recording implementations of the registry, the
//! verifier and the reward pool.

use crate as pallet_tasks;
use crate::Params;
use agora_primitives::{
	BlobHash, JobId, ModelCatalogue, ParticipantRegistry, RewardPool, Role, RoundIndex,
	RoundVerifier, UpdateRef, VerificationRequest, H256,
};
use core::cell::RefCell;
use frame_support::{
	derive_impl,
	pallet_prelude::{DispatchResult, Weight},
	parameter_types,
	traits::{ConstU128, ConstU32, ConstU64, Randomness},
};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, DispatchError, Perbill};
use std::collections::BTreeMap;

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
	pub type Tasks = pallet_tasks;
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

pub const POOL: AccountId = 777;
pub const SUBMITTER: AccountId = 100;

/// A model version handed to the catalogue: job, round, owner, model, score.
pub type Catalogued = (JobId, RoundIndex, AccountId, BlobHash, Perbill);
/// A started verification: job, round, request, updates.
pub type Started = (JobId, RoundIndex, VerificationRequest<u64>, Vec<UpdateRef<AccountId>>);
/// A requested settlement: job, round, budget, active jobs, workers, validators, providers.
pub type Settled = (
	JobId,
	RoundIndex,
	Balance,
	Balance,
	Vec<(AccountId, u128)>,
	Vec<(AccountId, u128)>,
	Vec<AccountId>,
);

thread_local! {
	/// Registered workers: stake and throughput.
	pub static WORKERS: RefCell<BTreeMap<AccountId, (Balance, u32)>> = const { RefCell::new(BTreeMap::new()) };
	/// Registered shards and their provider.
	pub static SHARDS: RefCell<BTreeMap<BlobHash, AccountId>> = const { RefCell::new(BTreeMap::new()) };
	/// Slashes applied.
	pub static SLASHES: RefCell<Vec<(AccountId, Role, Perbill, Balance)>> = const { RefCell::new(Vec::new()) };
	/// Verifications started.
	pub static STARTED: RefCell<Vec<Started>> = const { RefCell::new(Vec::new()) };
	/// Whether the verifier refuses to start.
	pub static VERIFIER_FAILS: RefCell<bool> = const { RefCell::new(false) };
	/// Settlements requested.
	pub static SETTLED: RefCell<Vec<Settled>> = const { RefCell::new(Vec::new()) };
	/// Model versions handed to the catalogue.
	pub static CATALOGUED: RefCell<Vec<Catalogued>> = const { RefCell::new(Vec::new()) };
}

pub struct MockCatalogue;
impl ModelCatalogue<AccountId> for MockCatalogue {
	fn record_version(
		job: JobId,
		round: RoundIndex,
		owner: &AccountId,
		_: &frame_support::BoundedVec<u8, agora_primitives::MaxArchLen>,
		model: BlobHash,
		score: Perbill,
	) -> Weight {
		CATALOGUED.with(|c| c.borrow_mut().push((job, round, *owner, model, score)));
		Weight::zero()
	}
	fn record_version_weight() -> Weight {
		Weight::zero()
	}
}

pub struct MockRegistry;
impl ParticipantRegistry<AccountId, Balance> for MockRegistry {
	fn eligible_worker(who: &AccountId) -> Option<(Balance, u32)> {
		WORKERS.with(|w| w.borrow().get(who).copied())
	}
	fn eligible_validator(_: &AccountId) -> Option<Balance> {
		None
	}
	fn eligible_validators() -> Vec<(AccountId, Balance)> {
		Vec::new()
	}
	fn shard_provider(shard: &BlobHash) -> Option<AccountId> {
		SHARDS.with(|s| s.borrow().get(shard).copied())
	}
	fn slash(who: &AccountId, role: Role, fraction: Perbill) -> Balance {
		let taken = WORKERS.with(|w| {
			let mut w = w.borrow_mut();
			match w.get_mut(who) {
				Some((stake, _)) => {
					let t = fraction.mul_floor(*stake);
					*stake -= t;
					t
				},
				None => 0,
			}
		});
		SLASHES.with(|s| s.borrow_mut().push((*who, role, fraction, taken)));
		taken
	}
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_register(who: &AccountId, _role: Role, throughput: u32) {
		WORKERS.with(|w| w.borrow_mut().insert(*who, (1_000, throughput.max(1))));
	}
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_register_shard(shard: &BlobHash, provider: &AccountId) {
		SHARDS.with(|s| s.borrow_mut().insert(*shard, *provider));
	}
}

pub struct MockVerifier;
impl RoundVerifier<AccountId, u64> for MockVerifier {
	fn start_verification(
		job: JobId,
		round: RoundIndex,
		request: VerificationRequest<u64>,
		updates: Vec<UpdateRef<AccountId>>,
	) -> DispatchResult {
		if VERIFIER_FAILS.with(|f| *f.borrow()) {
			return Err(DispatchError::Other("no validators"));
		}
		STARTED.with(|s| s.borrow_mut().push((job, round, request, updates)));
		Ok(())
	}
	fn start_verification_weight(_: u32) -> Weight {
		Weight::zero()
	}
}

pub struct MockRewards;
impl RewardPool<AccountId, Balance> for MockRewards {
	fn pool_account() -> AccountId {
		POOL
	}
	fn settle_round(
		job: JobId,
		round: RoundIndex,
		budget: Balance,
		outstanding: Balance,
		workers: &[(AccountId, u128)],
		validators: &[(AccountId, u128)],
		providers: &[AccountId],
	) -> Balance {
		SETTLED.with(|s| {
			s.borrow_mut().push((
				job,
				round,
				budget,
				outstanding,
				workers.to_vec(),
				validators.to_vec(),
				providers.to_vec(),
			))
		});
		0
	}
	fn settle_round_weight(_: u32, _: u32, _: u32) -> Weight {
		Weight::zero()
	}
	fn forget_job(job: JobId, _: RoundIndex) {
		SETTLED.with(|s| s.borrow_mut().retain(|settled| settled.0 != job));
	}
	fn forget_job_weight(_: u32) -> Weight {
		Weight::zero()
	}
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_settlements(_: JobId, _: RoundIndex) {}
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
	pub const Defaults: Params<Balance, u64> = Params {
		min_budget: 100,
		max_rounds: 10,
		max_workers_per_round: 4,
		max_validators_per_update: 3,
		max_shards: 8,
		min_period: 2,
		max_period: 100,
		no_show_slash: Perbill::from_percent(1),
		max_jobs_per_submitter: 4,
		job_deposit: 10,
		max_voided_rounds: 3,
	};
}

impl pallet_tasks::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = MockRegistry;
	type Verifier = MockVerifier;
	type Rewards = MockRewards;
	type Catalogue = MockCatalogue;
	type Randomness = TestRandomness;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = Defaults;
	type MaxActiveJobs = ConstU32<4>;
	type MaxApplicants = ConstU32<8>;
	type MaxWorkersPerRound = ConstU32<4>;
	type MaxValidatorsPerUpdate = ConstU32<4>;
	type MaxTransitionsPerBlock = ConstU32<2>;
	type JobRetention = ConstU64<20>;
	type WeightInfo = ();
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	WORKERS.with(|w| {
		let mut w = w.borrow_mut();
		w.clear();
		for (a, tp) in [(1, 10), (2, 30), (3, 60), (4, 100), (5, 1), (6, 1)] {
			w.insert(a, (1_000, tp));
		}
	});
	SHARDS.with(|s| {
		let mut s = s.borrow_mut();
		s.clear();
		s.insert(H256::repeat_byte(0xa1), 50);
		s.insert(H256::repeat_byte(0xa2), 51);
	});
	SLASHES.with(|s| s.borrow_mut().clear());
	STARTED.with(|s| s.borrow_mut().clear());
	SETTLED.with(|s| s.borrow_mut().clear());
	CATALOGUED.with(|c| c.borrow_mut().clear());
	VERIFIER_FAILS.with(|f| *f.borrow_mut() = false);
	let mut t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: (1..=10)
			.map(|a| (a, 10_000))
			.chain([(SUBMITTER, 1_000_000), (POOL, 1)])
			.collect(),
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

/// Run blocks up to `n`, calling the pallet's `on_initialize`.
pub fn run_to(n: u64) {
	use frame_support::traits::Hooks;
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		Tasks::on_initialize(next);
	}
}

pub fn events() -> Vec<crate::Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| if let RuntimeEvent::Tasks(e) = r.event { Some(e) } else { None })
		.collect()
}
