//! Types of pallet-tasks.

use agora_primitives::{BlobHash, JobSpec, RoundIndex};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::Perbill;

/// Lifecycle status of a job.
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum JobStatus {
	/// Rounds are running.
	Active,
	/// Cancelled before start; the budget was refunded.
	Cancelled,
	/// All rounds done; the unspent budget was refunded.
	Finalized,
}

/// Phase of the current round of an active job (tasks' side; verification has its own stages).
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum Phase {
	/// Workers apply.
	Open,
	/// Selected workers train and submit updates.
	Training,
	/// pallet-validation verifies and aggregates.
	Verifying,
}

/// A training job.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Job<AccountId, Balance, BlockNumber> {
	/// Who pays.
	pub submitter: AccountId,
	/// What to train.
	pub spec: JobSpec<BlockNumber>,
	/// Total budget escrowed at creation.
	pub budget: Balance,
	/// Budget still on hold (`JobEscrow`).
	pub escrow: Balance,
	/// Budget moved to the reward pool for completed rounds.
	pub spent: Balance,
	/// Status.
	pub status: JobStatus,
	/// Current round, 1-based.
	pub round: RoundIndex,
	/// Phase of the current round.
	pub phase: Phase,
	/// Deadline of the current phase (Open/Training); unused while verifying.
	pub deadline: BlockNumber,
	/// Model hash after the last completed round (the initial weights before).
	pub latest_model: BlobHash,
	/// Number of completed (non-voided) rounds.
	pub completed_rounds: RoundIndex,
	/// Creation block.
	pub created_at: BlockNumber,
	/// Deposit held for the job's slot (`JobDeposit`): returned when the job ends, forfeited to
	/// the reward pool when it ends by its own doing: nobody joined it, or its submitter withheld
	/// the held-out data its updates are judged by (see [`Params::max_voided_rounds`]).
	pub deposit: Balance,
	/// Rounds voided in a row; a completed round resets it.
	pub voided_in_a_row: RoundIndex,
	/// Of those, rounds voided in a row by the job's own doing: no worker applied
	/// (`NoWorkers`), or its submitter withheld its held-out data (`HeldOutUnavailable`).
	pub own_voids_in_a_row: RoundIndex,
}

/// A worker selected for the current round.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct WorkerSlot<AccountId> {
	/// The worker.
	pub who: AccountId,
	/// Its equal share of the round's `samples_per_round` (caps its reward weight).
	pub quota: u32,
	/// Whether it submitted its update.
	pub submitted: bool,
}

/// The permanent record of a completed round (model versioning).
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct RoundRecord<Balance, BlockNumber> {
	/// Hash of the aggregated model after this round.
	pub model: BlobHash,
	/// Block of completion.
	pub completed_at: BlockNumber,
	/// Budget paid for the round.
	pub paid: Balance,
}

/// Tunable parameters of the pallet, changed only by `ParamsOrigin` within the bounds.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	TypeInfo,
	MaxEncodedLen,
	serde::Serialize,
	serde::Deserialize,
)]
pub struct Params<Balance, BlockNumber> {
	/// Minimum job budget.
	pub min_budget: Balance,
	/// Maximum rounds of a job (1 ..= [`MAX_ROUNDS`]).
	pub max_rounds: u32,
	/// Maximum workers per round (1 ..= `Config::MaxWorkersPerRound`).
	pub max_workers_per_round: u32,
	/// Maximum validators per update ([`MIN_VALIDATORS_PER_UPDATE`] ..=
	/// `Config::MaxValidatorsPerUpdate`).
	pub max_validators_per_update: u32,
	/// Maximum dataset shards of a job (0 ..= `agora_primitives::MAX_SHARDS`).
	pub max_shards: u32,
	/// Shortest allowed phase period (≥ 1).
	pub min_period: BlockNumber,
	/// Longest allowed phase period (≥ `min_period`, ≤ [`MAX_PERIOD`]).
	pub max_period: BlockNumber,
	/// Fraction of its stake a selected worker loses for not submitting (≤ 50 %).
	pub no_show_slash: Perbill,
	/// Active jobs one account may have at a time (1 ..= `Config::MaxActiveJobs`), so that one
	/// account cannot hold every job slot.
	pub max_jobs_per_submitter: u32,
	/// Deposit held from a job's submitter from creation until its ended record is reaped
	/// (at most [`Params::min_budget`]): it pays for the job's storage, and is what squatting a
	/// slot with a job nobody joins costs.
	pub job_deposit: Balance,
	/// A job ends after this many voided rounds in a row (1 ..= [`MAX_VOIDED_ROUNDS`]), its
	/// unspent budget refunded. If no worker applied to any of them, the deposit goes to the
	/// reward pool; voids that are others' fault (workers or validators that failed) return it.
	pub max_voided_rounds: u32,
}

/// Shortest Training phase of a spec, whatever [`Params::min_period`] says: updates are accepted
/// only up to two blocks before the Training deadline (the block before it seeds the
/// challenges), so a shorter phase would leave selected workers no block to submit in, and
/// slash them as no-shows.
pub const MIN_TRAINING_PERIOD: u32 = 3;
/// Shortest Commit phase of a spec, whatever [`Params::min_period`] says: an assigned
/// validator needs the block of its assignment to fetch the evidence and replay it, a block to
/// ask again for what failed to download, and a block to commit in. A shorter phase would leave
/// honest validators no way to verify, and slash them for it.
pub const MIN_COMMIT_PERIOD: u32 = 3;
/// Fewest validators per update of a spec: one validator alone could neither be outvoted nor
/// slash a worker that withholds its evidence (that takes `min_unavailable_reports` ≥ 2
/// reports), so a job with one would let its submitter's workers fail verification for free.
pub const MIN_VALIDATORS_PER_UPDATE: u32 = 2;
/// Upper bound of [`Params::max_rounds`]: also bounds what reaping one job removes (a round
/// model and a settlement per round).
pub const MAX_ROUNDS: u32 = 1_000;
/// Upper bound of [`Params::max_period`] (two weeks of 6 s blocks).
pub const MAX_PERIOD: u32 = 201_600;
/// Upper bound of [`Params::max_voided_rounds`].
pub const MAX_VOIDED_ROUNDS: u32 = 10;
/// Upper bound of [`Params::no_show_slash`].
pub const MAX_NO_SHOW_SLASH: Perbill = Perbill::from_percent(50);

/// What stays on chain of a reaped job.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	TypeInfo,
	MaxEncodedLen,
)]
pub struct ArchivedModel {
	/// The model of its last completed round.
	pub model: BlobHash,
	/// Rounds that completed.
	pub rounds: RoundIndex,
}
