//! # pallet-tasks
//!
//! Training jobs: the submitter's budget escrow, the job spec, and the round state machine.
//!
//! ## Terms
//!
//! * **Job**: a training job with a [`JobSpec`] (architecture, hyperparameters, initial
//!   weights hash, dataset, rounds, local steps, checkpoint interval, samples per round,
//!   workers per round, validators per update, verification mode, phase periods) and a
//!   **budget** escrowed on the submitter's account (hold `JobEscrow`).
//! * **Round**: `Open` (eligible workers apply) → `Training` (selected workers submit updates)
//!   → `Verifying` (handed to `Config::Verifier`, i.e. pallet-validation) → *Completed* (an
//!   aggregate was confirmed: its hash is recorded forever in [`RoundModels`], the round's
//!   budget slice moves to the reward pool and `Config::Rewards` settles it) or *Voided*
//!   (nothing spent). Then the next round, or the job is **Finalized** and the unspent escrow
//!   refunded.
//! * **Selection**: at the end of `Open`, `workers_per_round` applicants are drawn uniformly at
//!   random; the round's `samples_per_round` are split equally among them (each runs the spec's
//!   `local_steps`, which replay verifies; a declared capability buys no larger share).
//! * **Updates** commit to exactly `⌈local_steps / checkpoint_interval⌉` checkpoint segments
//!   (a run with fewer, shorter segments is rejected), and no two workers of a round may submit
//!   the same update or checkpoint root.
//!
//! Phase changes happen in `on_initialize` for at most `MaxTransitionsPerBlock` jobs per block,
//! when the deadline has passed (or a phase completed early).
//!
//! ## Calls
//!
//! `create_job`, `cancel_job` (submitter, before round 1 leaves `Open`), `apply_for_round`
//! (eligible worker), `submit_update` (selected worker, during `Training`), `set_params`
//! (`ParamsOrigin`).

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

mod api;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod jobs;
pub mod migrations;
#[cfg(test)]
mod mock;
mod rounds;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use agora_primitives::{BlobHash, JobId, JobSpec, RoundIndex, Update};
pub use types::*;
pub use weights::WeightInfo;

/// The balance type of the pallet's currency.
pub type BalanceOf<T> = <<T as Config>::Currency as frame_support::traits::fungible::Inspect<
	<T as frame_system::Config>::AccountId,
>>::Balance;
/// This pallet's parameter struct.
pub type ParamsOf<T> = Params<BalanceOf<T>, frame_system::pallet_prelude::BlockNumberFor<T>>;
/// A job.
pub type JobOf<T> = Job<
	<T as frame_system::Config>::AccountId,
	BalanceOf<T>,
	frame_system::pallet_prelude::BlockNumberFor<T>,
>;
/// The workers of a round, in the order they were drawn.
pub type WorkerSlotsOf<T> = frame_support::BoundedVec<
	WorkerSlot<<T as frame_system::Config>::AccountId>,
	<T as Config>::MaxWorkersPerRound,
>;

/// The number of active jobs, as a `Get<u32>` (pallet-rewards mints emission while it is not
/// zero).
pub struct ActiveJobCount<T>(core::marker::PhantomData<T>);
impl<T: Config> frame_support::traits::Get<u32> for ActiveJobCount<T> {
	fn get() -> u32 {
		ActiveJobs::<T>::decode_len().unwrap_or(0) as u32
	}
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use agora_primitives::{
		ModelCatalogue, ParticipantRegistry, RewardPool, RoundVerifier, VoidReason,
	};
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, Mutate, MutateHold},
			Randomness,
		},
	};
	use frame_system::pallet_prelude::*;

	/// The in-code storage version: 1 added the job slot deposit, the voided-round streaks and
	/// the per-submitter job count (`migrations::v1`).
	pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A job's unspent budget.
		JobEscrow,
		/// A job's deposit ([`Params::job_deposit`]): held from creation until its record is
		/// reaped, so that the storage a job takes is paid for while it exists.
		JobDeposit,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency budgets are escrowed in.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;
		/// Worker eligibility, throughput, shards, slashing (pallet-contributions).
		type Registry: ParticipantRegistry<Self::AccountId, BalanceOf<Self>>;
		/// Verifies rounds (pallet-validation).
		type Verifier: RoundVerifier<Self::AccountId, BlockNumberFor<Self>>;
		/// The reward pool (pallet-rewards).
		type Rewards: RewardPool<Self::AccountId, BalanceOf<Self>>;
		/// The model catalogue every completed round's model is listed in (pallet-inference).
		type Catalogue: ModelCatalogue<Self::AccountId>;
		/// Randomness for worker selection (runtime: BABE parent-block VRF randomness).
		type Randomness: Randomness<Self::Hash, BlockNumberFor<Self>>;
		/// Origin allowed to change [`Params`].
		type ParamsOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Parameters used until genesis or governance sets them.
		type DefaultParams: Get<ParamsOf<Self>>;
		/// Maximum number of active jobs.
		#[pallet::constant]
		type MaxActiveJobs: Get<u32>;
		/// Maximum applicants per round.
		#[pallet::constant]
		type MaxApplicants: Get<u32>;
		/// Maximum selected workers per round.
		#[pallet::constant]
		type MaxWorkersPerRound: Get<u32>;
		/// Maximum validators per update (must not exceed pallet-validation's).
		#[pallet::constant]
		type MaxValidatorsPerUpdate: Get<u32>;
		/// Maximum phase transitions processed per block.
		#[pallet::constant]
		type MaxTransitionsPerBlock: Get<u32>;
		/// Blocks an ended job's record (its spec, round models and settlements) stays
		/// queryable before anyone may reap it with `reap_job`.
		#[pallet::constant]
		type JobRetention: Get<BlockNumberFor<Self>>;
		/// Weights.
		type WeightInfo: WeightInfo;
	}

	#[pallet::type_value]
	pub fn DefaultParamsValue<T: Config>() -> ParamsOf<T> {
		T::DefaultParams::get()
	}

	/// The pallet's parameters.
	#[pallet::storage]
	pub type ProtocolParams<T: Config> =
		StorageValue<_, ParamsOf<T>, ValueQuery, DefaultParamsValue<T>>;

	/// The next job id.
	#[pallet::storage]
	pub type NextJobId<T> = StorageValue<_, JobId, ValueQuery>;

	/// All jobs (kept after they end, until reaped: their history is queryable).
	#[pallet::storage]
	pub type Jobs<T: Config> = StorageMap<_, Twox64Concat, JobId, JobOf<T>>;

	/// Active jobs with the deadline of their current tasks phase (`max` while verifying).
	#[pallet::storage]
	pub type ActiveJobs<T: Config> =
		StorageValue<_, BoundedVec<(JobId, BlockNumberFor<T>), T::MaxActiveJobs>, ValueQuery>;

	/// The budget all active jobs still hold in escrow (what shares the reward pool's emission
	/// with a completed round).
	#[pallet::storage]
	pub type TotalEscrow<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

	/// Number of active jobs of each submitter (at most `Params::max_jobs_per_submitter` when
	/// created).
	#[pallet::storage]
	pub type SubmitterJobs<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Applicants of the round of a job that takes applications: the current round while it is
	/// open, the next round while the current one trains (drawn when its training closes).
	#[pallet::storage]
	pub type Applicants<T: Config> =
		StorageMap<_, Twox64Concat, JobId, BoundedVec<T::AccountId, T::MaxApplicants>, ValueQuery>;

	/// Selected workers of a job's current round (Training, Verifying).
	#[pallet::storage]
	pub type RoundWorkers<T: Config> =
		StorageMap<_, Twox64Concat, JobId, WorkerSlotsOf<T>, ValueQuery>;

	/// The workers drawn for a job's next round when its current round's training closed, from
	/// the applications taken while it trained: the next round starts training with them as
	/// soon as the current one ends, with no application phase, and each of them knows from
	/// the draw on that it will train, on which share of the data, for how many samples.
	#[pallet::storage]
	pub type NextRoundWorkers<T: Config> =
		StorageMap<_, Twox64Concat, JobId, WorkerSlotsOf<T>, ValueQuery>;

	/// Updates of the current round.
	#[pallet::storage]
	pub type Updates<T: Config> =
		StorageDoubleMap<_, Twox64Concat, JobId, Blake2_128Concat, T::AccountId, Update>;

	/// The block each ended job ended at (until its record is reaped). A job that ended before
	/// this was recorded has none, and may be reaped at once.
	#[pallet::storage]
	pub type EndedAt<T: Config> = StorageMap<_, Twox64Concat, JobId, BlockNumberFor<T>>;

	/// What stays of a reaped job: its final model and how many rounds produced it.
	#[pallet::storage]
	pub type ArchivedModels<T: Config> = StorageMap<_, Twox64Concat, JobId, ArchivedModel>;

	/// Model hash of every completed round, kept until the job is reaped (model versioning;
	/// the final model stays in [`ArchivedModels`]).
	#[pallet::storage]
	pub type RoundModels<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		JobId,
		Twox64Concat,
		RoundIndex,
		RoundRecord<BalanceOf<T>, BlockNumberFor<T>>,
	>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Initial parameters; `None` keeps `Config::DefaultParams`.
		pub params: Option<ParamsOf<T>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if let Some(p) = self.params {
				assert!(Pallet::<T>::check_params(&p).is_ok(), "genesis params out of bounds");
				ProtocolParams::<T>::put(p);
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A job was created and its budget escrowed.
		JobCreated { job: JobId, submitter: T::AccountId, budget: BalanceOf<T>, rounds: RoundIndex },
		/// A job was cancelled before start and its budget refunded.
		JobCancelled { job: JobId, refunded: BalanceOf<T> },
		/// A round opened for applications.
		RoundOpened { job: JobId, round: RoundIndex, deadline: BlockNumberFor<T> },
		/// A worker applied to a round: the current one while it is open, the next one while
		/// the current one trains.
		Applied { job: JobId, round: RoundIndex, worker: T::AccountId },
		/// Workers were selected; training started.
		TrainingStarted {
			job: JobId,
			round: RoundIndex,
			workers: BoundedVec<(T::AccountId, u32), T::MaxWorkersPerRound>,
			deadline: BlockNumberFor<T>,
		},
		/// When `round - 1`'s training closed, `workers` (with their sample quotas) were drawn
		/// for `round` from the applications taken while it trained: `round` starts training
		/// with them as soon as `round - 1` ends.
		NextRoundDrawn {
			job: JobId,
			round: RoundIndex,
			workers: BoundedVec<(T::AccountId, u32), T::MaxWorkersPerRound>,
		},
		/// A worker submitted its update.
		UpdateSubmitted {
			job: JobId,
			round: RoundIndex,
			worker: T::AccountId,
			delta: BlobHash,
			samples: u32,
		},
		/// A selected worker submitted nothing and was slashed.
		NoShowSlashed { job: JobId, round: RoundIndex, worker: T::AccountId, slashed: BalanceOf<T> },
		/// The round's updates went to verification.
		VerificationStarted { job: JobId, round: RoundIndex, updates: u32 },
		/// A round completed with an aggregated model; its budget slice was paid to the pool.
		RoundCompleted { job: JobId, round: RoundIndex, model: BlobHash, paid: BalanceOf<T> },
		/// A round produced no model; nothing was spent.
		RoundVoided { job: JobId, round: RoundIndex, reason: VoidReason },
		/// A job ended; the unspent budget was refunded.
		JobFinalized { job: JobId, final_model: BlobHash, refunded: BalanceOf<T> },
		/// A job ended early after `voided` rounds voided in a row; its unspent budget was
		/// refunded (in the `JobFinalized` that follows) and `forfeited` of its deposit went to
		/// the reward pool (zero unless no worker applied to any of those rounds).
		JobAbandoned { job: JobId, voided: RoundIndex, forfeited: BalanceOf<T> },
		/// The parameters changed.
		ParamsUpdated { params: ParamsOf<T> },
		/// An ended job's record was removed: its deposit went back to its submitter and its
		/// final model (if any round completed) is kept in `ArchivedModels`.
		JobReaped { job: JobId, deposit: BalanceOf<T>, final_model: Option<BlobHash> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No job with this id.
		UnknownJob,
		/// The job is not active.
		JobNotActive,
		/// The job's round is not in the phase this call needs.
		WrongPhase,
		/// The round given is not the job's current round.
		WrongRound,
		/// The phase's deadline has passed.
		PhaseClosed,
		/// Only the submitter may do this.
		NotSubmitter,
		/// The job has started; it can no longer be cancelled.
		AlreadyStarted,
		/// The budget is below the minimum or smaller than the number of rounds.
		BudgetTooLow,
		/// Not enough free balance to escrow the budget.
		InsufficientBalance,
		/// The spec is inconsistent (zero rounds, steps, samples, empty architecture, …).
		InvalidSpec,
		/// The spec exceeds a size limit (rounds, shards).
		SpecTooLarge,
		/// Too many workers per round.
		TooManyWorkers,
		/// Too many (or zero) validators per update.
		InvalidValidatorCount,
		/// A phase period is outside the allowed range.
		PeriodOutOfBounds,
		/// A dataset shard is not registered.
		UnknownShard,
		/// Too many active jobs.
		TooManyActiveJobs,
		/// The submitter has `max_jobs_per_submitter` active jobs already.
		TooManySubmitterJobs,
		/// The caller is not an eligible worker.
		NotEligible,
		/// The caller already applied to this round.
		AlreadyApplied,
		/// The round has the maximum number of applicants.
		TooManyApplicants,
		/// The caller was not selected for this round.
		NotSelected,
		/// The caller already submitted its update.
		DuplicateSubmission,
		/// The update has zero samples or checkpoints.
		InvalidUpdate,
		/// The update commits to another number of checkpoint segments than the spec's
		/// `⌈local_steps / checkpoint_interval⌉`: it did not run the job's steps.
		WrongCheckpointCount,
		/// A parameter is outside its bounds.
		ParamOutOfBounds,
		/// No validator could verify updates of this spec: replay needs the data the worker
		/// trained on, and private data is only the worker's (use `Evaluation`).
		UnverifiableSpec,
		/// The job has not ended.
		JobNotEnded,
		/// The job ended less than `JobRetention` blocks ago.
		RetentionNotOver,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			Self::process_deadlines(now)
		}

		fn integrity_test() {
			assert!(T::MaxActiveJobs::get() > 0, "MaxActiveJobs must be positive");
			assert!(
				T::MaxApplicants::get() >= T::MaxWorkersPerRound::get(),
				"MaxApplicants < MaxWorkersPerRound"
			);
			assert!(T::MaxWorkersPerRound::get() > 0, "MaxWorkersPerRound must be positive");
			assert!(
				T::MaxTransitionsPerBlock::get() > 0,
				"MaxTransitionsPerBlock must be positive"
			);
			assert!(
				Pallet::<T>::check_params(&T::DefaultParams::get()).is_ok(),
				"DefaultParams out of bounds"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Create a job, escrowing `budget` and holding `job_deposit`; round 1 opens at once.
		///
		/// Origin: signed. The spec must be one validators can verify: replay only on public
		/// shards (`UnverifiableSpec`), Training and Commit phases of at least three blocks
		/// (`PeriodOutOfBounds`). Events: `JobCreated`, `RoundOpened`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::create_job(match &spec.dataset {
			agora_primitives::Dataset::Shards(s) => s.len() as u32,
			agora_primitives::Dataset::Private => 0,
		}))]
		pub fn create_job(
			origin: OriginFor<T>,
			spec: JobSpec<BlockNumberFor<T>>,
			budget: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_create_job(who, spec, budget).map(|_| ())
		}

		/// Cancel a job whose first round is still open; refunds the whole budget.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::cancel_job())]
		pub fn cancel_job(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_cancel_job(who, job)
		}

		/// Apply to the current (open) round of a job.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::apply_for_round())]
		pub fn apply_for_round(origin: OriginFor<T>, job: JobId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_apply(who, job)
		}

		/// Submit one's update for `round` of `job` (selected workers, Training phase).
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::submit_update())]
		pub fn submit_update(
			origin: OriginFor<T>,
			job: JobId,
			round: RoundIndex,
			update: Update,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_submit_update(who, job, round, update)
		}

		/// Remove the record of a job that ended at least `JobRetention` blocks ago: the job, its
		/// round models and its settlements. Its deposit goes back to its submitter, and its
		/// final model hash stays in `ArchivedModels` (the rest of its history is in events).
		///
		/// Origin: signed, anyone (the submitter has the reason to: the deposit). Emits
		/// `JobReaped`.
		#[pallet::call_index(5)]
		#[pallet::weight(Pallet::<T>::reap_job_weight(MAX_ROUNDS))]
		pub fn reap_job(origin: OriginFor<T>, job: JobId) -> DispatchResultWithPostInfo {
			ensure_signed(origin)?;
			let rounds = Self::do_reap_job(job)?;
			Ok(Some(Self::reap_job_weight(rounds)).into())
		}

		/// Set the parameters (governance). Every field is checked against its bounds.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::set_params())]
		pub fn set_params(origin: OriginFor<T>, params: ParamsOf<T>) -> DispatchResult {
			T::ParamsOrigin::ensure_origin(origin)?;
			Self::check_params(&params)?;
			ProtocolParams::<T>::put(params);
			Self::deposit_event(Event::ParamsUpdated { params });
			Ok(())
		}
	}
}
