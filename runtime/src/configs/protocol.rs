//! The training protocol: contributions (participants and stakes), tasks (jobs and rounds),
//! validation (proof-of-training checks) and rewards (emission and payouts). See
//! docs/protocol.md for the design; the parameters below are the genesis defaults that
//! governance (root or the `protocol_params` referendum track) may change within each pallet's
//! bounds.

use frame_support::{
	parameter_types,
	traits::{tokens::imbalance::ResolveTo, ConstU128, ConstU32},
	PalletId,
};
use sp_runtime::{traits::AccountIdConversion, Perbill};

use super::ProtocolParamsOrigin;
use crate::{
	currency::{AGR, MILLI_AGR},
	time::{DAYS, HOURS, MINUTES},
	AccountId, Balance, Balances, BlockNumber, Contributions, Inference, Rewards, Runtime,
	RuntimeHoldReason, Tasks, Validation,
};

/// Challenge randomness: the VRF output of the parent block, which did not exist when a worker
/// committed to its checkpoints; one-epoch-ago randomness only before the first VRF output.
pub type ChallengeRandomness = agora_primitives::ParentBlockOr<
	pallet_babe::ParentBlockRandomness<Runtime>,
	pallet_babe::RandomnessFromOneEpochAgo<Runtime>,
>;

parameter_types! {
	pub const ContributionDefaults: pallet_contributions::Params<Balance, BlockNumber> =
		pallet_contributions::Params {
			min_worker_stake: 100 * AGR,
			min_validator_stake: 1_000 * AGR,
			shard_deposit: AGR,
			unbonding_delay: DAYS,
		};
	pub const TaskDefaults: pallet_tasks::Params<Balance, BlockNumber> = pallet_tasks::Params {
		min_budget: 10 * AGR,
		max_rounds: 100,
		max_workers_per_round: 16,
		max_validators_per_update: 5,
		max_shards: 64,
		min_period: 2,
		max_period: DAYS,
		no_show_slash: Perbill::from_percent(1),
		max_jobs_per_submitter: 4,
		job_deposit: 10 * AGR,
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
		max_aggregation_attempts: 3,
	};
	pub const RewardDefaults: pallet_rewards::Params<Balance> = pallet_rewards::Params {
		emission_per_block: AGR,
		protocol_fee: Perbill::from_percent(5),
		validator_share: Perbill::from_percent(15),
		data_share: Perbill::from_percent(10),
	};
	pub const RewardsPalletId: PalletId = PalletId(*b"agr/rwds");
	/// The treasury's account: protocol fees land here.
	pub const TreasuryPalletId: PalletId = PalletId(*b"py/trsry");
	pub TreasuryAccount: AccountId = TreasuryPalletId::get().into_account_truncating();
}

impl pallet_contributions::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	// Slashed stake funds the treasury, which only governance spends.
	type OnSlash = ResolveTo<TreasuryAccount, Balances>;
	type ParamsOrigin = ProtocolParamsOrigin;
	type DefaultParams = ContributionDefaults;
	// Unbonded stake stays slashable until every round and verification it is part of ended.
	type PendingWork = ((Tasks, Validation), Inference);
	type MaxValidators = ConstU32<256>;
	type WeightInfo = pallet_contributions::weights::SubstrateWeight<Runtime>;
}

impl pallet_tasks::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Contributions;
	type Verifier = Validation;
	type Rewards = Rewards;
	type Catalogue = Inference;
	type Randomness = ChallengeRandomness;
	type ParamsOrigin = ProtocolParamsOrigin;
	type DefaultParams = TaskDefaults;
	type MaxActiveJobs = ConstU32<64>;
	type MaxApplicants = ConstU32<64>;
	type MaxWorkersPerRound = ConstU32<16>;
	type MaxValidatorsPerUpdate = ConstU32<8>;
	type MaxTransitionsPerBlock = ConstU32<4>;
	// A week to read an ended job's record (and fetch its models) before it may be reaped.
	type JobRetention = ConstU32<{ 7 * DAYS }>;
	type WeightInfo = pallet_tasks::weights::SubstrateWeight<Runtime>;
}

impl pallet_validation::Config for Runtime {
	type Balance = Balance;
	type Registry = Contributions;
	type Observer = Tasks;
	type Randomness = ChallengeRandomness;
	type ParamsOrigin = ProtocolParamsOrigin;
	type DefaultParams = ValidationDefaults;
	type MaxActiveJobs = ConstU32<64>;
	type MaxWorkersPerRound = ConstU32<16>;
	type MaxValidatorsPerUpdate = ConstU32<8>;
	type MaxSegments = ConstU32<64>;
	// 16 updates × 8 validators: a round never draws more, so the tally's worst case is this.
	type MaxRoundValidators = ConstU32<128>;
	type MaxTransitionsPerBlock = ConstU32<4>;
	type WeightInfo = pallet_validation::weights::SubstrateWeight<Runtime>;
}

impl pallet_rewards::Config for Runtime {
	type Currency = Balances;
	type PalletId = RewardsPalletId;
	type Treasury = TreasuryAccount;
	type ActiveJobs = pallet_tasks::ActiveJobCount<Runtime>;
	type ParamsOrigin = ProtocolParamsOrigin;
	type DefaultParams = RewardDefaults;
	type MaxEmissionPerBlock = ConstU128<{ 10 * AGR }>;
	type WeightInfo = pallet_rewards::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
	pub const InferenceDefaults: pallet_inference::Params<Balance, BlockNumber> =
		pallet_inference::Params {
			protocol_fee: Perbill::from_percent(5),
			audit_fee: Perbill::from_percent(5),
			// One batch in ten: a provider that answers a share `w` of its requests wrongly is
			// caught in a batch of `n` with probability about `1/10 · min(1, w·n)` per batch.
			audit_rate: Perbill::from_percent(10),
			auditors: 3,
			audit_reward: 10 * MILLI_AGR,
			wrong_answer_slash: Perbill::from_percent(10),
			dissent_slash: Perbill::from_percent(2),
			audit_delay: 2,
			// Time for an auditor to fetch the model and re-run one request.
			commit_period: 10 * MINUTES,
			reveal_period: 5 * MINUTES,
			dispute_window: HOURS,
			dispute_bond: 10 * AGR,
			close_delay: 10 * MINUTES,
			version_deposit: 100 * MILLI_AGR,
			offer_deposit: AGR,
			channel_deposit: 100 * MILLI_AGR,
		};
	pub const InferencePalletId: PalletId = PalletId(*b"agr/infr");
}

impl pallet_inference::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Registry = Contributions;
	type Randomness = ChallengeRandomness;
	type Signature = crate::Signature;
	type Signer = <crate::Signature as sp_runtime::traits::Verify>::Signer;
	type Treasury = TreasuryAccount;
	type PalletId = InferencePalletId;
	type ParamsOrigin = ProtocolParamsOrigin;
	type DefaultParams = InferenceDefaults;
	// A job has at most `max_rounds` (100) completed rounds.
	type MaxVersions = ConstU32<100>;
	type MaxOffersPerProvider = ConstU32<16>;
	type MaxPendingBatches = ConstU32<16>;
	type MaxDrawsPerBlock = ConstU32<32>;
	type MaxAuditors = ConstU32<8>;
	// Governance may shorten `close_delay`, but a provider keeps two minutes to answer a
	// challenge: a hiccup shorter than that never costs it its stake.
	type MinAnswerWindow = ConstU32<{ 2 * MINUTES }>;
	type WeightInfo = pallet_inference::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = InferenceBenchmarkHelper;
}

/// Benchmarks only: a client key in the benchmark's keystore signs receipts, so that `settle`
/// is measured with a real sr25519 verification.
#[cfg(feature = "runtime-benchmarks")]
pub struct InferenceBenchmarkHelper;
#[cfg(feature = "runtime-benchmarks")]
impl pallet_inference::BenchmarkHelper<AccountId, crate::Signature> for InferenceBenchmarkHelper {
	fn sign(payload: &[u8]) -> (AccountId, crate::Signature) {
		const KEY_TYPE: sp_core::crypto::KeyTypeId = sp_core::crypto::KeyTypeId(*b"infr");
		let public =
			sp_io::crypto::sr25519_generate(KEY_TYPE, Some(b"//inference-client".to_vec()));
		let signature = sp_io::crypto::sr25519_sign(KEY_TYPE, &public, payload)
			.unwrap_or_else(|| sp_core::sr25519::Signature::from_raw([0u8; 64]));
		(AccountId::from(public), crate::Signature::Sr25519(signature))
	}
}
