//! # Agora primitives
//!
//! Types and the small coupling traits shared by Agora's protocol pallets
//! (`pallet-contributions`, `pallet-tasks`, `pallet-validation`, `pallet-rewards`).
//!
//! Pallets never depend on each other: each one names what it needs from another as an
//! associated type of its `Config` bound by a trait of this crate, and the runtime plugs them
//! together. See `docs/protocol.md` for the protocol these types describe.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use core::marker::PhantomData;
use frame_support::{
	pallet_prelude::{ConstU32, DispatchResult, Weight},
	traits::Randomness,
	BoundedVec,
};
use scale_info::TypeInfo;
use sp_runtime::{traits::Hash as HashT, Perbill};

pub use sp_core::H256;

/// Identifier of a training job.
pub type JobId = u64;
/// Index of a round within a job, starting at 1.
pub type RoundIndex = u32;
/// Content hash (blake2-256) of an off-chain blob: model weights, deltas, dataset shards.
pub type BlobHash = H256;

/// Maximum length of a libp2p peer id (bytes).
pub type MaxPeerIdLen = ConstU32<64>;
/// Maximum length of a multiaddr (bytes).
pub type MaxMultiaddrLen = ConstU32<256>;
/// Maximum length of a model architecture id.
pub type MaxArchLen = ConstU32<64>;
/// Maximum length of the opaque hyperparameter blob.
pub type MaxHyperparamsLen = ConstU32<1024>;
/// Maximum number of dataset shards of one job.
pub const MAX_SHARDS: u32 = 64;
/// Type-level [`MAX_SHARDS`].
pub type MaxShards = ConstU32<MAX_SHARDS>;

/// A libp2p peer id, as bytes.
pub type PeerId = BoundedVec<u8, MaxPeerIdLen>;
/// A libp2p multiaddr, as bytes.
pub type Multiaddr = BoundedVec<u8, MaxMultiaddrLen>;

/// The kind of accelerator a participant declares.
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
pub enum DeviceKind {
	/// CPU only.
	Cpu,
	/// A CUDA GPU.
	Cuda,
	/// An Apple GPU (Metal).
	Metal,
	/// A ROCm GPU.
	Rocm,
	/// Anything else.
	Other,
}

/// A participant's declared capability.
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
pub struct Capability {
	/// Device kind.
	pub device: DeviceKind,
	/// Device memory in MiB.
	pub memory_mib: u32,
	/// Measured training throughput, in samples per second (at least 1).
	pub throughput: u32,
}

/// Which registry a participant is in.
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
pub enum Role {
	/// Trains.
	Worker,
	/// Verifies.
	Validator,
}

/// How updates are verified.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
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
pub enum VerificationMode {
	/// Validators re-execute challenged checkpoint segments (bit-reproducible) and also score
	/// quality; a dissenting verdict is provably wrong and slashable.
	Replay,
	/// Validators only evaluate the update on held-out data.
	Evaluation,
}

/// The data a job trains on.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[derive(
	Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub enum Dataset {
	/// Public shards registered by data providers, by content hash.
	Shards(BoundedVec<BlobHash, MaxShards>),
	/// Workers bring their own private data.
	Private,
}

/// Phase lengths of each round, in blocks.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
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
pub struct PhasePeriods<BlockNumber> {
	/// Workers apply.
	pub open: BlockNumber,
	/// Workers train and submit updates.
	pub training: BlockNumber,
	/// Validators commit verdicts.
	pub commit: BlockNumber,
	/// Validators reveal verdicts.
	pub reveal: BlockNumber,
	/// The aggregator posts, validators vote (per attempt).
	pub aggregation: BlockNumber,
}

impl<B: Copy> PhasePeriods<B> {
	/// All periods, for bound checks.
	pub fn all(&self) -> [B; 5] {
		[self.open, self.training, self.commit, self.reveal, self.aggregation]
	}
}

/// The specification of a training job, given by its submitter.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[derive(
	Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub struct JobSpec<BlockNumber> {
	/// Model architecture id understood by the worker (e.g. `mlp-mnist-v1`).
	pub architecture: BoundedVec<u8, MaxArchLen>,
	/// Opaque hyperparameters (e.g. JSON), interpreted by the worker.
	pub hyperparameters: BoundedVec<u8, MaxHyperparamsLen>,
	/// Hash of the initial weights blob.
	pub initial_weights: BlobHash,
	/// What the workers train on.
	pub dataset: Dataset,
	/// Number of rounds.
	pub rounds: RoundIndex,
	/// Local optimisation steps per round.
	pub local_steps: u32,
	/// Checkpoint every `checkpoint_interval` local steps (the `k` of the Merkle commitment).
	pub checkpoint_interval: u32,
	/// Samples to train on per round, split among the workers by throughput.
	pub samples_per_round: u32,
	/// Workers selected per round.
	pub workers_per_round: u32,
	/// Validators assigned to each update.
	pub validators_per_update: u32,
	/// Verification mode.
	pub mode: VerificationMode,
	/// Phase lengths.
	pub periods: PhasePeriods<BlockNumber>,
}

/// A worker's update for a round.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
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
pub struct Update {
	/// Hash of the model delta blob.
	pub delta: BlobHash,
	/// Number of samples trained on.
	pub samples: u32,
	/// Final training loss, fixed point in millionths.
	pub loss_micros: u64,
	/// Merkle root over the checkpoints (every `checkpoint_interval` steps) and batch indices.
	pub checkpoint_root: H256,
	/// Number of checkpoints committed under the root (at least 1).
	pub checkpoints: u32,
}

/// A validator's verdict on an update.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
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
pub enum Verdict {
	/// The update replays (mode replay) / is acceptable (mode evaluation).
	Valid,
	/// The update fails replay / is rejected.
	Invalid,
	/// The validator could not obtain the evidence the worker had to serve (its commitment,
	/// the challenged checkpoints or the update) after retrying. Not proof of fraud on its own:
	/// the worker is slashed for it only when enough assigned validators report it.
	Unavailable,
	/// Mode evaluation only: the validator has the worker's evidence but could not obtain the
	/// job's held-out data from its submitter, and an update of a job on private data is judged
	/// by that data alone. The submitter's doing, not the worker's: never slashes either.
	HeldOutUnavailable,
}

/// Why a round produced no model.
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
pub enum VoidReason {
	/// Nobody applied.
	NoWorkers,
	/// No selected worker submitted an update.
	NoUpdates,
	/// No update was accepted by the validators.
	NoneAccepted,
	/// No aggregate was confirmed within the allowed attempts.
	AggregationFailed,
	/// The verifier could not start.
	VerifierUnavailable,
	/// No update was accepted, and one or more were `HeldOutUnavailable`: the job is judged by
	/// held-out data alone (it trains on private data) and its submitter did not serve that
	/// data.
	HeldOutUnavailable,
}

/// A worker's reference to its update, handed to the verifier.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub struct UpdateRef<AccountId> {
	/// The worker.
	pub worker: AccountId,
	/// Its checkpoint Merkle root (mixed into the challenge randomness).
	pub checkpoint_root: H256,
	/// Number of checkpoints.
	pub checkpoints: u32,
}

/// What the verifier needs to know about a round.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub struct VerificationRequest<BlockNumber> {
	/// Verification mode.
	pub mode: VerificationMode,
	/// Validators per update.
	pub validators_per_update: u32,
	/// Commit phase length.
	pub commit: BlockNumber,
	/// Reveal phase length.
	pub reveal: BlockNumber,
	/// Aggregation phase length (per attempt).
	pub aggregation: BlockNumber,
}

/// The result of verifying a round.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub enum RoundOutcome<AccountId> {
	/// An aggregate was confirmed.
	Completed {
		/// Hash of the aggregated model.
		model: BlobHash,
		/// Accepted workers with their consensus score.
		workers: Vec<(AccountId, Perbill)>,
		/// Validators with their reward weight (summed agreement, in parts per billion).
		validators: Vec<(AccountId, u128)>,
	},
	/// No model this round.
	Voided(VoidReason),
}

/// The participant registry (implemented by `pallet-contributions`).
pub trait ParticipantRegistry<AccountId, Balance> {
	/// The eligible worker's stake and declared throughput, if `who` is an eligible worker.
	fn eligible_worker(who: &AccountId) -> Option<(Balance, u32)>;
	/// The eligible validator's stake, if `who` is an eligible validator.
	fn eligible_validator(who: &AccountId) -> Option<Balance>;
	/// All eligible validators with their stake (bounded by the registry's cap).
	fn eligible_validators() -> Vec<(AccountId, Balance)>;
	/// The provider of a registered shard.
	fn shard_provider(shard: &BlobHash) -> Option<AccountId>;
	/// Slash `fraction` of `who`'s stake in `role` into the reward pool; returns the amount.
	fn slash(who: &AccountId, role: Role, fraction: Perbill) -> Balance;

	/// Benchmarks only: make `who` an eligible participant in `role` (funding it as needed).
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_register(who: &AccountId, role: Role, throughput: u32);
	/// Benchmarks only: register `shard`, provided by `provider` (funding it as needed).
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_register_shard(shard: &BlobHash, provider: &AccountId);
}

/// Whether an account still has protocol work whose outcome may slash its stake in `role`: a
/// round it was selected for and that has not ended, an update under verification, an
/// assignment or aggregation not concluded. Its stake must stay on hold until then, so that
/// unbonding cannot escape a verdict (implemented by `pallet-tasks` and `pallet-validation`,
/// combined by the tuple implementation).
pub trait PendingWork<AccountId> {
	/// Whether `who` has pending work in `role`.
	fn has_pending_work(who: &AccountId, role: Role) -> bool;
	/// Worst-case weight of [`Self::has_pending_work`].
	fn has_pending_work_weight() -> Weight;
}

impl<AccountId> PendingWork<AccountId> for () {
	fn has_pending_work(_: &AccountId, _: Role) -> bool {
		false
	}
	fn has_pending_work_weight() -> Weight {
		Weight::zero()
	}
}

impl<AccountId, A: PendingWork<AccountId>, B: PendingWork<AccountId>> PendingWork<AccountId>
	for (A, B)
{
	fn has_pending_work(who: &AccountId, role: Role) -> bool {
		A::has_pending_work(who, role) || B::has_pending_work(who, role)
	}
	fn has_pending_work_weight() -> Weight {
		A::has_pending_work_weight().saturating_add(B::has_pending_work_weight())
	}
}

/// The model catalogue (implemented by `pallet-inference`): each completed round's model
/// becomes a version of its job's catalogue entry, which serving providers may offer.
pub trait ModelCatalogue<AccountId> {
	/// Round `round` of `job`, owned by `owner`, produced `model` of `architecture`; the
	/// validators' consensus holdout `score` of its accepted updates weighs them by samples.
	/// Returns the weight used.
	fn record_version(
		job: JobId,
		round: RoundIndex,
		owner: &AccountId,
		architecture: &BoundedVec<u8, MaxArchLen>,
		model: BlobHash,
		score: Perbill,
	) -> Weight;
	/// Upper bound of the weight of [`Self::record_version`].
	fn record_version_weight() -> Weight;
}

impl<AccountId> ModelCatalogue<AccountId> for () {
	fn record_version(
		_: JobId,
		_: RoundIndex,
		_: &AccountId,
		_: &BoundedVec<u8, MaxArchLen>,
		_: BlobHash,
		_: Perbill,
	) -> Weight {
		Weight::zero()
	}
	fn record_version_weight() -> Weight {
		Weight::zero()
	}
}

/// Starts the verification of a round (implemented by `pallet-validation`).
pub trait RoundVerifier<AccountId, BlockNumber> {
	/// Assign validators and challenges for `updates`; the verifier later reports the result
	/// through [`VerificationObserver::on_verified`].
	fn start_verification(
		job: JobId,
		round: RoundIndex,
		request: VerificationRequest<BlockNumber>,
		updates: Vec<UpdateRef<AccountId>>,
	) -> DispatchResult;
	/// Upper bound of the weight of `start_verification` for `n` updates.
	fn start_verification_weight(n: u32) -> Weight;
}

/// Receives the result of a round's verification (implemented by `pallet-tasks`).
pub trait VerificationObserver<AccountId> {
	/// The round `round` of `job` is verified. Returns the weight used.
	fn on_verified(job: JobId, round: RoundIndex, outcome: RoundOutcome<AccountId>) -> Weight;
	/// Upper bound of the weight of `on_verified`.
	fn on_verified_weight() -> Weight;
}

/// The reward pool (implemented by `pallet-rewards`).
pub trait RewardPool<AccountId, Balance> {
	/// The pool account, where round budgets are moved before settlement.
	fn pool_account() -> AccountId;
	/// Settle a completed round whose `budget` has just been moved into the pool; `outstanding`
	/// is the budget every active job still holds in escrow (this one's included), which shares
	/// the pool's emission with it. Returns the total amount credited to accounts.
	fn settle_round(
		job: JobId,
		round: RoundIndex,
		budget: Balance,
		outstanding: Balance,
		workers: &[(AccountId, u128)],
		validators: &[(AccountId, u128)],
		providers: &[AccountId],
	) -> Balance;
	/// Upper bound of the weight of `settle_round`.
	fn settle_round_weight(workers: u32, validators: u32, providers: u32) -> Weight;
	/// Forget the settlements of `job`'s rounds up to `rounds` (its record is being reaped;
	/// the events keep the history).
	fn forget_job(job: JobId, rounds: RoundIndex);
	/// Upper bound of the weight of `forget_job` for `rounds` rounds.
	fn forget_job_weight(rounds: u32) -> Weight;
	/// Benchmarks only: store a settlement for each of `job`'s rounds up to `rounds`.
	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_settlements(job: JobId, rounds: RoundIndex);
}

/// Randomness from `Primary` (e.g. BABE's `ParentBlockRandomness`, which is `None` before the
/// first VRF output), falling back to `Fallback` (e.g. `RandomnessFromOneEpochAgo`).
pub struct ParentBlockOr<Primary, Fallback>(PhantomData<(Primary, Fallback)>);

impl<H, B, Primary, Fallback> Randomness<H, B> for ParentBlockOr<Primary, Fallback>
where
	Primary: Randomness<Option<H>, B>,
	Fallback: Randomness<H, B>,
{
	fn random(subject: &[u8]) -> (H, B) {
		match Primary::random(subject) {
			(Some(h), b) => (h, b),
			(None, _) => Fallback::random(subject),
		}
	}
}

/// Deterministic pseudo-randomness from a seed: used to draw several values from one random
/// seed (selection without replacement, challenged segments).
pub struct SeededRng<H: HashT> {
	seed: H::Output,
	counter: u32,
}

impl<H: HashT> SeededRng<H> {
	/// A generator seeded with `seed`.
	pub fn new(seed: H::Output) -> Self {
		Self { seed, counter: 0 }
	}

	/// The next value, uniform enough in `[0, bound)`; `0` when `bound == 0`.
	pub fn next_below(&mut self, bound: u32) -> u32 {
		if bound == 0 {
			return 0;
		}
		let out = H::hash_of(&(self.seed, self.counter));
		self.counter = self.counter.wrapping_add(1);
		let bytes = out.as_ref();
		let mut buf = [0u8; 8];
		for (dst, src) in buf.iter_mut().zip(bytes.iter()) {
			*dst = *src;
		}
		let v = u64::from_le_bytes(buf);
		(v % u64::from(bound)) as u32
	}

	/// The next value, uniform enough in `[0, bound)` for bounds far below `2^128` (stake
	/// totals); `0` when `bound == 0`.
	pub fn next_u128_below(&mut self, bound: u128) -> u128 {
		if bound == 0 {
			return 0;
		}
		let out = H::hash_of(&(self.seed, self.counter));
		self.counter = self.counter.wrapping_add(1);
		let mut buf = [0u8; 16];
		for (dst, src) in buf.iter_mut().zip(out.as_ref().iter()) {
			*dst = *src;
		}
		u128::from_le_bytes(buf) % bound
	}

	/// Removes and returns one of `items`, each with probability proportional to its weight;
	/// `None` when they are empty or weigh nothing.
	pub fn take_weighted<T>(&mut self, items: &mut Vec<(T, u128)>) -> Option<(T, u128)> {
		let total = items.iter().fold(0u128, |sum, (_, w)| sum.saturating_add(*w));
		if total == 0 {
			return None;
		}
		let mut target = self.next_u128_below(total);
		let index = items.iter().position(|(_, w)| {
			if target < *w {
				return true;
			}
			target -= *w;
			false
		})?;
		Some(items.swap_remove(index))
	}

	/// Shuffle `items` in place (Fisher–Yates).
	pub fn shuffle<T>(&mut self, items: &mut [T]) {
		let len = items.len();
		let mut i = len;
		while i > 1 {
			let j = self.next_below(i as u32) as usize;
			i -= 1;
			items.swap(i, j);
		}
	}
}

/// For parameter migrations: `defaults` with each field that one of `carries` copies from the
/// `old` parameters, kept wherever the result still passes `check`. Field by field, so that one
/// old value outside the new bounds does not reset the others.
pub fn carry_params<P: Copy, O>(
	defaults: P,
	old: &O,
	carries: &[fn(&mut P, &O)],
	check: impl Fn(&P) -> bool,
) -> P {
	let mut params = defaults;
	for carry in carries {
		let mut trial = params;
		carry(&mut trial, old);
		if check(&trial) {
			params = trial;
		}
	}
	params
}

/// Helpers for runtime APIs: a job's details.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub struct JobDetails<AccountId, Balance, BlockNumber> {
	/// The submitter.
	pub submitter: AccountId,
	/// The spec.
	pub spec: JobSpec<BlockNumber>,
	/// The budget.
	pub budget: Balance,
	/// Budget still on hold.
	pub escrow: Balance,
	/// Budget paid out so far.
	pub spent: Balance,
	/// Current round (1-based).
	pub round: RoundIndex,
	/// Status.
	pub status: JobStatusView,
	/// Latest model hash (initial weights before any completed round).
	pub latest_model: BlobHash,
	/// Models of completed rounds.
	pub models: Vec<(RoundIndex, BlobHash)>,
}

/// Status of a job, for runtime APIs.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo)]
pub enum JobStatusView {
	/// Workers apply.
	Open,
	/// Workers train.
	Training,
	/// Validators verify / aggregation.
	Verifying,
	/// Cancelled before start.
	Cancelled,
	/// Done.
	Finalized,
}

/// A round's status, for runtime APIs.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub struct RoundStatus<AccountId, BlockNumber> {
	/// The job.
	pub job: JobId,
	/// The round.
	pub round: RoundIndex,
	/// The phase.
	pub phase: JobStatusView,
	/// Deadline of the current tasks phase (`None` while verifying).
	pub deadline: Option<BlockNumber>,
	/// Applicants of the round taking applications: this one while `Open`, the next one while
	/// `Training` (drawn when the training closes).
	pub applicants: Vec<AccountId>,
	/// Selected workers with their sample quota, and whether they submitted.
	pub workers: Vec<(AccountId, u32, bool)>,
}

/// One pending duty of an account.
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo)]
pub enum Duty<AccountId, BlockNumber> {
	/// Train and `submit_update` before `deadline`, on `quota` samples.
	Train { job: JobId, round: RoundIndex, quota: u32, deadline: BlockNumber },
	/// `commit_verdict` for `worker`'s update, re-executing `segments`.
	Commit {
		job: JobId,
		round: RoundIndex,
		worker: AccountId,
		segments: Vec<u32>,
		deadline: BlockNumber,
	},
	/// `reveal_verdict` for `worker`'s update.
	Reveal { job: JobId, round: RoundIndex, worker: AccountId, deadline: BlockNumber },
	/// Compute the aggregate and commit to its hash with `post_aggregate` (the account is the
	/// aggregator).
	Aggregate { job: JobId, round: RoundIndex, deadline: BlockNumber },
	/// Recompute the aggregate and commit to its hash with `vote_aggregate` (the account is
	/// a validator of the round).
	VoteAggregate { job: JobId, round: RoundIndex, deadline: BlockNumber },
	/// `reveal_aggregate`: reveal the aggregate hash committed to (aggregator or voter).
	RevealAggregate { job: JobId, round: RoundIndex, deadline: BlockNumber },
}

/// Mock scaffolding shared by the pallets' test runtimes (feature `test-utils`).
#[cfg(feature = "test-utils")]
pub mod testing {
	use super::*;
	use std::{cell::RefCell, collections::BTreeMap};

	/// Account ids of the test runtimes.
	pub type AccountId = u64;
	/// Balances of the test runtimes.
	pub type Balance = u128;
	/// A slash the registry applied: who, role, fraction, amount.
	pub type Slash = (AccountId, Role, Perbill, Balance);

	std::thread_local! {
		/// Stakes by (account, role).
		static STAKES: RefCell<BTreeMap<(AccountId, u8), Balance>> = const { RefCell::new(BTreeMap::new()) };
		/// Slashes applied, in order.
		static SLASHES: RefCell<Vec<Slash>> = const { RefCell::new(Vec::new()) };
	}

	fn role_key(role: Role) -> u8 {
		match role {
			Role::Worker => 0,
			Role::Validator => 1,
		}
	}

	/// Forget every stake and slash (a test's start).
	pub fn reset() {
		STAKES.with(|s| s.borrow_mut().clear());
		SLASHES.with(|s| s.borrow_mut().clear());
	}

	/// Make `who` eligible in `role` with `stake`.
	pub fn set_stake(who: AccountId, role: Role, stake: Balance) {
		STAKES.with(|s| s.borrow_mut().insert((who, role_key(role)), stake));
	}

	/// Make `who` ineligible in `role`.
	pub fn remove_stake(who: AccountId, role: Role) {
		STAKES.with(|s| s.borrow_mut().remove(&(who, role_key(role))));
	}

	/// Make everyone ineligible in `role`.
	pub fn remove_role(role: Role) {
		STAKES.with(|s| s.borrow_mut().retain(|(_, r), _| *r != role_key(role)));
	}

	/// `who`'s stake in `role` (0 when not registered).
	pub fn stake_of(who: AccountId, role: Role) -> Balance {
		STAKES.with(|s| s.borrow().get(&(who, role_key(role))).copied().unwrap_or(0))
	}

	/// The slashes applied so far.
	pub fn slashes() -> Vec<Slash> {
		SLASHES.with(|s| s.borrow().clone())
	}

	/// A registry of stakes kept in memory: every registered worker declares a throughput of
	/// 10; a slash takes its fraction of the stake and is recorded.
	pub struct MockRegistry;
	impl ParticipantRegistry<AccountId, Balance> for MockRegistry {
		fn eligible_worker(who: &AccountId) -> Option<(Balance, u32)> {
			STAKES.with(|s| s.borrow().get(&(*who, 0)).map(|s| (*s, 10)))
		}
		fn eligible_validator(who: &AccountId) -> Option<Balance> {
			STAKES.with(|s| s.borrow().get(&(*who, 1)).copied())
		}
		fn eligible_validators() -> Vec<(AccountId, Balance)> {
			STAKES.with(|s| {
				s.borrow()
					.iter()
					.filter(|((_, r), _)| *r == 1)
					.map(|((a, _), s)| (*a, *s))
					.collect()
			})
		}
		fn shard_provider(_: &BlobHash) -> Option<AccountId> {
			None
		}
		fn slash(who: &AccountId, role: Role, fraction: Perbill) -> Balance {
			let taken = STAKES.with(|s| {
				let mut s = s.borrow_mut();
				match s.get_mut(&(*who, role_key(role))) {
					Some(stake) => {
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
		fn benchmark_register(who: &AccountId, role: Role, _throughput: u32) {
			set_stake(*who, role, 1_000);
		}
		#[cfg(feature = "runtime-benchmarks")]
		fn benchmark_register_shard(_: &BlobHash, _: &AccountId) {}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use sp_runtime::traits::BlakeTwo256;

	#[test]
	fn rng_is_deterministic_and_bounded() {
		let mut a = SeededRng::<BlakeTwo256>::new(H256::repeat_byte(1));
		let mut b = SeededRng::<BlakeTwo256>::new(H256::repeat_byte(1));
		for bound in 1..50u32 {
			let x = a.next_below(bound);
			assert_eq!(x, b.next_below(bound));
			assert!(x < bound);
		}
		assert_eq!(a.next_below(0), 0);
		let mut v: Vec<u32> = (0..10).collect();
		a.shuffle(&mut v);
		let mut s = v.clone();
		s.sort();
		assert_eq!(s, (0..10).collect::<Vec<_>>());
	}

	#[test]
	fn weighted_draws_follow_stake() {
		// One identity with 3,000, three with 1,000 each, one with nothing: over many seeds the
		// first is drawn first about half the time, the empty one never.
		let mut first = [0u32; 5];
		for seed in 0..10_000u32 {
			let mut rng = SeededRng::<BlakeTwo256>::new(BlakeTwo256::hash_of(&seed));
			let mut items: Vec<(usize, u128)> =
				vec![(0, 3_000), (1, 1_000), (2, 1_000), (3, 1_000), (4, 0)];
			let (index, _) = rng.take_weighted(&mut items).expect("something weighs");
			first[index] += 1;
			// Without replacement: every item with weight comes out exactly once.
			let mut rest = vec![index];
			while let Some((index, _)) = rng.take_weighted(&mut items) {
				rest.push(index);
			}
			rest.sort();
			assert_eq!(rest, vec![0, 1, 2, 3]);
		}
		assert!((4_800..5_200).contains(&first[0]), "{first:?}");
		assert!(first[1..4].iter().all(|n| (1_500..1_850).contains(n)), "{first:?}");
		assert_eq!(first[4], 0);
		let mut rng = SeededRng::<BlakeTwo256>::new(H256::zero());
		assert!(rng.take_weighted(&mut Vec::<((), u128)>::new()).is_none());
		assert_eq!(rng.next_u128_below(0), 0);
	}
}
