//! One job, two rounds, three workers, three validators, one cheating worker and one validator
//! that never reveals, on a test runtime that wires the four pallets as `agora-runtime` does.
//! At the end every account's balance is reconciled and total issuance has changed only by the
//! emission.

use agora_primitives::{
	Capability, Dataset, DeviceKind, JobSpec, PhasePeriods, Role, Update, Verdict,
	VerificationMode, H256,
};
use frame_support::{
	assert_ok, derive_impl, parameter_types,
	traits::{
		fungible::{Inspect, InspectHold},
		ConstU128, ConstU32, ConstU64, OnInitialize, Randomness, TryState, TryStateSelect,
	},
	PalletId,
};
use frame_system::EnsureRoot;
use sp_runtime::{BuildStorage, Perbill};
use std::collections::BTreeMap;

type Block = frame_system::mocking::MockBlock<Test>;
type AccountId = u64;
type Balance = u128;

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
	#[runtime::pallet_index(3)]
	pub type Tasks = pallet_tasks;
	#[runtime::pallet_index(4)]
	pub type Validation = pallet_validation;
	#[runtime::pallet_index(5)]
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
	type ExistentialDeposit = ConstU128<1>;
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
}

/// Deterministic stand-in for BABE randomness.
pub struct TestRandomness;
impl Randomness<H256, u64> for TestRandomness {
	fn random(subject: &[u8]) -> (H256, u64) {
		let n = System::block_number();
		(H256(sp_io::hashing::blake2_256(&codec::Encode::encode(&(subject, n)))), n)
	}
}

const SUBMITTER: AccountId = 100;
const WORKERS: [AccountId; 3] = [1, 2, 3];
const CHEATER: AccountId = 3;
const VALIDATORS: [AccountId; 3] = [11, 12, 13];
const SILENT: AccountId = 13;
const PROVIDER: AccountId = 21;
const TREASURY: AccountId = 500;
const P: u64 = 3;

parameter_types! {
	pub const ContributionDefaults: pallet_contributions::Params<Balance, u64> = pallet_contributions::Params {
		min_worker_stake: 1_000,
		min_validator_stake: 1_000,
		shard_deposit: 100,
		unbonding_delay: 10,
	};
	pub const TaskDefaults: pallet_tasks::Params<Balance, u64> = pallet_tasks::Params {
		min_budget: 1_000,
		max_rounds: 10,
		max_workers_per_round: 4,
		max_validators_per_update: 3,
		max_shards: 8,
		min_period: 2,
		max_period: 50,
		no_show_slash: Perbill::from_percent(1),
		max_jobs_per_submitter: 2,
		job_deposit: 100,
		max_voided_rounds: 3,
	};
	pub const ValidationDefaults: pallet_validation::Params = pallet_validation::Params {
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
	pub const RewardDefaults: pallet_rewards::Params<Balance> = pallet_rewards::Params {
		emission_per_block: 10,
		protocol_fee: Perbill::from_percent(5),
		validator_share: Perbill::from_percent(15),
		data_share: Perbill::from_percent(10),
	};
	pub const RewardsPalletId: PalletId = PalletId(*b"agr/rwds");
	pub const Treasury: AccountId = TREASURY;
}

impl pallet_contributions::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type OnSlash = pallet_rewards::SlashToPool<Test>;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = ContributionDefaults;
	type PendingWork = (Tasks, Validation);
	type MaxValidators = ConstU32<16>;
	type WeightInfo = ();
}

impl pallet_tasks::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Contributions;
	type Verifier = Validation;
	type Rewards = Rewards;
	type Catalogue = ();
	type Randomness = TestRandomness;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = TaskDefaults;
	type MaxActiveJobs = ConstU32<8>;
	type MaxApplicants = ConstU32<8>;
	type MaxWorkersPerRound = ConstU32<4>;
	type MaxValidatorsPerUpdate = ConstU32<3>;
	type MaxTransitionsPerBlock = ConstU32<4>;
	type JobRetention = ConstU64<20>;
	type WeightInfo = ();
}

impl pallet_validation::Config for Test {
	type Balance = Balance;
	type Registry = Contributions;
	type Observer = Tasks;
	type Randomness = TestRandomness;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = ValidationDefaults;
	type MaxActiveJobs = ConstU32<8>;
	type MaxWorkersPerRound = ConstU32<4>;
	type MaxValidatorsPerUpdate = ConstU32<3>;
	type MaxSegments = ConstU32<64>;
	type MaxRoundValidators = ConstU32<16>;
	type MaxTransitionsPerBlock = ConstU32<4>;
	type WeightInfo = ();
}

impl pallet_rewards::Config for Test {
	type Currency = Balances;
	type PalletId = RewardsPalletId;
	type Treasury = Treasury;
	type ActiveJobs = pallet_tasks::ActiveJobCount<Test>;
	type ParamsOrigin = EnsureRoot<AccountId>;
	type DefaultParams = RewardDefaults;
	type MaxEmissionPerBlock = ConstU128<1_000>;
	type WeightInfo = ();
}

fn initial_balances() -> Vec<(AccountId, Balance)> {
	let mut v = vec![(SUBMITTER, 1_000_000), (PROVIDER, 10_000), (TREASURY, 1)];
	v.extend(WORKERS.iter().map(|w| (*w, 100_000)));
	v.extend(VALIDATORS.iter().map(|w| (*w, 100_000)));
	v
}

fn new_ext() -> sp_io::TestExternalities {
	let mut t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> { balances: initial_balances(), ..Default::default() }
		.assimilate_storage(&mut t)
		.unwrap();
	pallet_rewards::GenesisConfig::<Test> { params: None }.assimilate_storage(&mut t).unwrap();
	let mut ext = sp_io::TestExternalities::new(t);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

/// One block: every pallet's `on_initialize`, then every pallet's invariants.
fn next_block() {
	let n = System::block_number() + 1;
	System::set_block_number(n);
	AllPalletsWithSystem::on_initialize(n);
	AllPalletsWithSystem::try_state(n, TryStateSelect::All).expect("invariants hold");
}

fn until(what: &str, cond: impl Fn() -> bool) {
	for _ in 0..100 {
		if cond() {
			return;
		}
		next_block();
	}
	panic!("timed out waiting for {what}");
}

fn cap(throughput: u32) -> Capability {
	Capability { device: DeviceKind::Cuda, memory_mib: 8_192, throughput }
}

fn endpoint(i: u64) -> (agora_primitives::PeerId, agora_primitives::Multiaddr) {
	(
		format!("12D3KooWpeer{i}").into_bytes().try_into().unwrap(),
		format!("/ip4/10.0.0.{i}/tcp/30333").into_bytes().try_into().unwrap(),
	)
}

fn stage(job: u64) -> Option<pallet_validation::Stage> {
	pallet_validation::Verifications::<Test>::get(job).map(|v| v.stage)
}

fn salt(v: AccountId, w: AccountId, round: u32) -> [u8; 32] {
	let mut s = [0u8; 32];
	s[0] = v as u8;
	s[1] = w as u8;
	s[2] = round as u8;
	s
}

/// What validator `v` says about worker `w`'s update in `round`.
fn judgement(v: AccountId, w: AccountId, round: u32) -> (Verdict, Perbill) {
	if round == 1 && w == CHEATER {
		(Verdict::Invalid, Perbill::zero())
	} else if v == 12 {
		(Verdict::Valid, Perbill::from_percent(75))
	} else {
		(Verdict::Valid, Perbill::from_percent(80))
	}
}

fn play_round(job: u64, round: u32) -> H256 {
	for w in WORKERS {
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(w), job));
	}
	until("training", || {
		pallet_tasks::Jobs::<Test>::get(job).unwrap().phase == pallet_tasks::Phase::Training
	});
	let selected: Vec<_> =
		pallet_tasks::RoundWorkers::<Test>::get(job).iter().map(|s| s.who).collect();
	assert_eq!(selected.len(), 3);
	for w in WORKERS {
		let update = Update {
			delta: H256::repeat_byte(w as u8 + 16 * round as u8),
			samples: 1_000,
			loss_micros: 300_000,
			checkpoint_root: H256::repeat_byte(w as u8),
			checkpoints: 10,
		};
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(w), job, round, update));
	}
	until("commit stage", || stage(job) == Some(pallet_validation::Stage::Commit));
	// Every assigned validator commits (the silent one too).
	for w in WORKERS {
		let check = pallet_validation::Checks::<Test>::get(job, w).unwrap();
		assert!(check.assignments.iter().all(|a| a.validator != w));
		for a in check.assignments.iter() {
			let (verdict, score) = judgement(a.validator, w, round);
			let c = pallet_validation::commitment_of(
				job,
				&w,
				verdict,
				score,
				&salt(a.validator, w, round),
				&a.validator,
			);
			assert_ok!(Validation::commit_verdict(RuntimeOrigin::signed(a.validator), job, w, c));
		}
	}
	until("reveal stage", || stage(job) == Some(pallet_validation::Stage::Reveal));
	for w in WORKERS {
		let check = pallet_validation::Checks::<Test>::get(job, w).unwrap();
		for a in check.assignments.iter().filter(|a| a.validator != SILENT) {
			let (verdict, score) = judgement(a.validator, w, round);
			assert_ok!(Validation::reveal_verdict(
				RuntimeOrigin::signed(a.validator),
				job,
				w,
				verdict,
				score,
				salt(a.validator, w, round)
			));
		}
	}
	until("aggregation", || stage(job) == Some(pallet_validation::Stage::Aggregation));
	let v = pallet_validation::Verifications::<Test>::get(job).unwrap();
	let accepted: Vec<_> = v.accepted.iter().map(|(w, _)| *w).collect();
	if round == 1 {
		assert!(!accepted.contains(&CHEATER));
		assert_eq!(accepted.len(), 2);
	} else {
		assert_eq!(accepted.len(), 3);
	}
	let aggregator = v.aggregator.unwrap();
	assert!(accepted.contains(&aggregator));
	let model = H256::repeat_byte(0xa0 + round as u8);
	let aggregate_salt = |who: u64| [who as u8 ^ round as u8; 32];
	let commitment = |who: u64| {
		pallet_validation::aggregate_commitment_of(job, round, &model, &aggregate_salt(who), &who)
	};
	let voters: Vec<u64> = pallet_validation::RoundValidators::<Test>::get(job)
		.iter()
		.map(|r| r.who)
		.filter(|v| *v != SILENT && *v != aggregator)
		.collect();
	assert_ok!(Validation::post_aggregate(
		RuntimeOrigin::signed(aggregator),
		job,
		round,
		commitment(aggregator)
	));
	for v in &voters {
		assert_ok!(Validation::vote_aggregate(
			RuntimeOrigin::signed(*v),
			job,
			round,
			commitment(*v)
		));
	}
	until("aggregate reveal", || stage(job) == Some(pallet_validation::Stage::AggregateReveal));
	for who in voters.iter().chain([aggregator].iter()) {
		assert_ok!(Validation::reveal_aggregate(
			RuntimeOrigin::signed(*who),
			job,
			round,
			model,
			aggregate_salt(*who)
		));
	}
	until("round end", || pallet_validation::Verifications::<Test>::get(job).is_none());
	assert_eq!(pallet_tasks::RoundModels::<Test>::get(job, round).unwrap().model, model);
	model
}

#[test]
fn two_rounds_with_a_cheater_and_a_silent_validator() {
	new_ext().execute_with(|| {
		let issuance0 = Balances::total_issuance();
		let initial: BTreeMap<_, _> = initial_balances().into_iter().collect();

		for (i, w) in WORKERS.iter().enumerate() {
			let (peer, addr) = endpoint(*w);
			assert_ok!(Contributions::register_worker(
				RuntimeOrigin::signed(*w),
				10_000,
				peer,
				addr,
				cap(10 * (i as u32 + 1))
			));
		}
		for (i, v) in VALIDATORS.iter().enumerate() {
			let (peer, addr) = endpoint(*v);
			assert_ok!(Contributions::register_validator(
				RuntimeOrigin::signed(*v),
				10_000 * (i as u128 + 1),
				peer,
				addr,
				cap(50)
			));
		}
		let shard = H256::repeat_byte(0x5d);
		assert_ok!(Contributions::register_shard(RuntimeOrigin::signed(PROVIDER), shard, 60_000));

		let spec = JobSpec {
			architecture: b"mlp-mnist-v1".to_vec().try_into().unwrap(),
			hyperparameters: br#"{"lr":0.05,"batch":32}"#.to_vec().try_into().unwrap(),
			initial_weights: H256::repeat_byte(0x01),
			dataset: Dataset::Shards(vec![shard].try_into().unwrap()),
			rounds: 2,
			local_steps: 100,
			checkpoint_interval: 10,
			samples_per_round: 3_000,
			workers_per_round: 3,
			validators_per_update: 2,
			mode: VerificationMode::Replay,
			periods: PhasePeriods { open: P, training: P, commit: P, reveal: P, aggregation: P },
		};
		assert_ok!(Tasks::create_job(RuntimeOrigin::signed(SUBMITTER), spec, 100_000));
		let job = 0;

		let m1 = play_round(job, 1);
		// The cheater was slashed 20 % and got nothing for round 1.
		assert_eq!(pallet_contributions::Workers::<Test>::get(CHEATER).unwrap().stake, 8_000);
		assert_eq!(pallet_rewards::Pending::<Test>::get(CHEATER), 0);
		assert!(
			pallet_rewards::Pending::<Test>::get(1) > 0
				&& pallet_rewards::Pending::<Test>::get(2) > 0
		);
		assert_eq!(pallet_rewards::Pending::<Test>::get(SILENT), 0);
		let m2 = play_round(job, 2);
		assert_ne!(m1, m2);

		let j = pallet_tasks::Jobs::<Test>::get(job).unwrap();
		assert_eq!(j.status, pallet_tasks::JobStatus::Finalized);
		assert_eq!((j.latest_model, j.completed_rounds, j.escrow, j.spent), (m2, 2, 0, 100_000));
		assert_eq!(Tasks::job_details(job).unwrap().models, vec![(1, m1), (2, m2)]);
		// Emission stops with the last active job.
		let emitted = pallet_rewards::TotalEmitted::<Test>::get();
		next_block();
		assert_eq!(pallet_rewards::TotalEmitted::<Test>::get(), emitted);

		// Everyone owed something is paid.
		let mut everyone: Vec<AccountId> = initial.keys().copied().collect();
		everyone.sort();
		for a in everyone.iter() {
			if pallet_rewards::Pending::<Test>::get(a) > 0 {
				assert_ok!(Rewards::payout(RuntimeOrigin::signed(SUBMITTER), *a));
			}
		}
		assert_eq!(pallet_rewards::TotalPending::<Test>::get(), 0);

		// Reconcile every account from the events.
		let mut slashed: BTreeMap<AccountId, Balance> = BTreeMap::new();
		let mut claimed: BTreeMap<AccountId, Balance> = BTreeMap::new();
		let mut silent_slashes = 0;
		let mut fraud_slashes = 0;
		for e in System::events() {
			match e.event {
				RuntimeEvent::Contributions(pallet_contributions::Event::Slashed {
					who,
					amount,
					role,
				}) => {
					*slashed.entry(who).or_default() += amount;
					if who == SILENT {
						assert_eq!(role, Role::Validator);
						silent_slashes += 1;
					}
				},
				RuntimeEvent::Validation(pallet_validation::Event::Slashed {
					reason, who, ..
				}) => {
					if reason == pallet_validation::SlashReason::FailedReplay {
						assert_eq!(who, CHEATER);
						fraud_slashes += 1;
					}
					assert_ne!(reason, pallet_validation::SlashReason::Contradiction);
					assert_ne!(reason, pallet_validation::SlashReason::BadAggregate);
				},
				RuntimeEvent::Rewards(pallet_rewards::Event::Claimed { who, amount }) => {
					*claimed.entry(who).or_default() += amount;
				},
				_ => {},
			}
		}
		assert!(silent_slashes >= 1, "the silent validator was slashed");
		assert_eq!(fraud_slashes, 1);
		assert_eq!(slashed.keys().copied().collect::<Vec<_>>(), vec![CHEATER, SILENT]);

		let settlements: Vec<_> =
			pallet_rewards::Settlements::<Test>::iter_prefix_values(job).collect();
		assert_eq!(settlements.len(), 2);
		let budgets: Balance = settlements.iter().map(|s| s.budget).sum();
		let fees: Balance = settlements.iter().map(|s| s.fee).sum();
		assert_eq!(budgets, 100_000);

		let total = |a: AccountId| Balances::total_balance(&a);
		let get = |m: &BTreeMap<AccountId, Balance>, a: AccountId| m.get(&a).copied().unwrap_or(0);
		for a in WORKERS.iter().chain(VALIDATORS.iter()) {
			assert_eq!(
				total(*a),
				initial[a] - get(&slashed, *a) + get(&claimed, *a),
				"account {a}"
			);
		}
		assert!(get(&claimed, CHEATER) > 0, "the cheater was paid for its honest round 2");
		assert!(get(&claimed, PROVIDER) > 0);
		assert_eq!(total(PROVIDER), initial[&PROVIDER] + get(&claimed, PROVIDER));
		assert_eq!(
			Balances::balance_on_hold(
				&pallet_contributions::HoldReason::ShardDeposit.into(),
				&PROVIDER
			),
			100
		);
		assert_eq!(total(SUBMITTER), initial[&SUBMITTER] - budgets);
		assert_eq!(
			Balances::balance_on_hold(&pallet_tasks::HoldReason::JobEscrow.into(), &SUBMITTER),
			0
		);
		assert_eq!(total(TREASURY), initial[&TREASURY] + fees);
		assert_eq!(get(&claimed, TREASURY), fees);

		// The pool holds its existential deposit plus what is not allocated yet: emission,
		// slashes and budgets in, claims out.
		let pool = Rewards::pool_account();
		let slashed_total: Balance = slashed.values().sum();
		let claimed_total: Balance = claimed.values().sum();
		assert_eq!(total(pool), 1 + emitted + slashed_total + budgets - claimed_total);

		// Total issuance changed only by the emission, and every unit is somewhere.
		assert_eq!(Balances::total_issuance(), issuance0 + emitted);
		let all: Balance = everyone.iter().map(|a| total(*a)).sum::<Balance>() + total(pool);
		assert_eq!(all, Balances::total_issuance());
	});
}
