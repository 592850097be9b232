//! # pallet-validation
//!
//! Verification of a training round: who checks which update, commit-reveal verdicts,
//! stake-weighted consensus, the aggregation check, and the slashes.
//!
//! ## Terms
//!
//! * **Assignment**: when a round's training closes, pallet-tasks calls
//!   [`RoundVerifier::start_verification`]. For every update, `validators_per_update`
//!   eligible validators are drawn by randomness (never the update's own worker), and the
//!   checkpoint segments they must re-execute (mode `Replay`): always the last one, which
//!   produces the update, and as many others as it takes to catch a run that faked
//!   `detectable_fraction` of its segments with probability `detection_probability`
//!   (`challenge.rs`). The randomness is taken after the worker's Merkle root was committed and
//!   is mixed with it, so the worker could not foresee its challenge.
//! * **Commit / Reveal**: a validator commits
//!   `blake2_256(SCALE(job, worker, verdict, score, salt, validator))` ([`commitment_of`]), then
//!   reveals `(verdict, score, salt)`.
//! * **Consensus** per update, over revealed validators weighted by stake: `Unavailable` (the
//!   worker's evidence missing) if it holds a strict majority; else `HeldOutUnavailable` (in an
//!   evaluation, the submitter's held-out data missing) if it outweighs the stake that judged
//!   the evidence; else the verdict with a strict majority of the stake that judged the
//!   evidence, else (a tie) no decision. The score is the stake-weighted median of the
//!   winning side. A validator's agreement (its reward weight) falls linearly to zero at
//!   `score_tolerance` from the median.
//! * **Slashes**: no reveal (`no_reveal_slash`); in `Replay` mode a judged verdict
//!   contradicting the consensus (`contradiction_slash`) and a worker whose update fails replay
//!   (`fraud_slash`); a worker whose evidence at least `min_unavailable_reports` validators, a
//!   majority of the stake, could not get (`unavailable_slash`); an aggregator whose aggregate
//!   is missing or outvoted by a majority of the round's other validators (`aggregator_slash`).
//!   A tie or a failed fetch reported by a minority never slashes anyone.
//! * **Aggregation**: an accepted worker drawn by randomness commits to the aggregate's hash
//!   and the round's other validators commit to the hash each recomputed
//!   ([`aggregate_commitment_of`]); once commitments close, all reveal. Nobody can copy a hash
//!   they did not compute: while votes are open, every hash is hidden. A majority of the stake
//!   of the validators that revealed a verdict (the aggregator excluded) accepts the aggregate
//!   (its voters earn [`AGGREGATE_VOTE_WEIGHT`] of reward weight each, its opponents are
//!   slashed `contradiction_slash`) or rejects it (the aggregator and those who backed it are
//!   slashed); otherwise another accepted worker is drawn, up to `max_aggregation_attempts`.
//!   A committed vote left unrevealed is slashed `no_reveal_slash`.
//!
//! The result goes back to pallet-tasks through [`VerificationObserver::on_verified`].
//! Stage changes happen in `on_initialize` (at most `MaxTransitionsPerBlock` per block), at the
//! deadline or as soon as every expected action is in (except the reveal stage, which always
//! lasts its whole period: planters expose their plants during it).
//!
//! ## Calls
//!
//! `commit_verdict`, `reveal_verdict` (assigned validators), `post_aggregate` (the aggregator),
//! `vote_aggregate` (the round's validators), `reveal_aggregate` (both), `expose_plant` (a
//! worker whose update was a planted test of the validators), `set_params` (`ParamsOrigin`).
//!
//! ## Planted updates
//!
//! A validator that votes `Valid` without checking would otherwise be paid for nothing while
//! nobody cheats. Anyone running a worker may plant an update whose checkpoint root is
//! [`plant_root`] of a secret: indistinguishable from a real one until checked, and provably
//! invalid once the secret is exposed in the reveal stage, when the committed verdicts can no
//! longer change. Approving it is slashed as a contradiction of the known truth.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

mod api;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod challenge;
mod consensus;
pub mod migrations;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod types;
mod verify;
pub mod weights;

pub use agora_primitives::{BlobHash, JobId, RoundIndex, Verdict};
pub use types::*;
pub use weights::WeightInfo;

use codec::Encode;

/// The commitment a validator submits for `(job, worker)`.
pub fn commitment_of<AccountId: Encode>(
	job: JobId,
	worker: &AccountId,
	verdict: Verdict,
	score: sp_runtime::Perbill,
	salt: &[u8; 32],
	validator: &AccountId,
) -> agora_primitives::H256 {
	agora_primitives::H256(sp_io::hashing::blake2_256(
		&(job, worker, verdict, score, salt, validator).encode(),
	))
}

/// Domain tag of [`aggregate_commitment_of`].
pub const AGGREGATE_TAG: [u8; 18] = *b"agora/aggregate/v1";

/// The commitment to an aggregate hash that the aggregator posts and a validator votes:
/// `blake2_256(SCALE(AGGREGATE_TAG, job, round, aggregate, salt, who))`. Bound to its author,
/// so one account's commitment is worthless to another.
pub fn aggregate_commitment_of<AccountId: Encode>(
	job: JobId,
	round: RoundIndex,
	aggregate: &BlobHash,
	salt: &[u8; 32],
	who: &AccountId,
) -> agora_primitives::H256 {
	agora_primitives::H256(sp_io::hashing::blake2_256(
		&(AGGREGATE_TAG, job, round, aggregate, salt, who).encode(),
	))
}

/// Domain tag of [`plant_root`].
pub const PLANT_TAG: [u8; 14] = *b"agora/plant/v1";

/// The checkpoint root of a planted update: `blake2_256(SCALE(PLANT_TAG, job, worker, secret))`.
///
/// A planter submits it in place of a training commitment's root. No commitment can hash to it
/// (that would take a preimage of blake2 in another domain), so an honest validator can never
/// find such an update valid; once [`Pallet::expose_plant`] reveals `secret`, the chain knows that
/// for certain and slashes every validator that approved it (a lazy validator's verdict).
pub fn plant_root<AccountId: Encode>(
	job: JobId,
	worker: &AccountId,
	secret: &[u8; 32],
) -> agora_primitives::H256 {
	agora_primitives::H256(sp_io::hashing::blake2_256(&(PLANT_TAG, job, worker, secret).encode()))
}

/// A verification in progress.
pub type VerificationOf<T> = Verification<
	<T as frame_system::Config>::AccountId,
	frame_system::pallet_prelude::BlockNumberFor<T>,
	<T as Config>::MaxWorkersPerRound,
>;
/// The check of one update.
pub type UpdateCheckOf<T> = UpdateCheck<
	<T as frame_system::Config>::AccountId,
	<T as Config>::MaxValidatorsPerUpdate,
	<T as Config>::MaxSegments,
>;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use agora_primitives::{ParticipantRegistry, VerificationObserver, H256};
	use frame_support::{pallet_prelude::*, traits::Randomness};
	use frame_system::pallet_prelude::*;
	use sp_runtime::{traits::AtLeast32BitUnsigned, Perbill};

	/// The in-code storage version: 1 replaced `Params::segments_per_update` by the detection
	/// target and added the unavailability fields (`migrations::v1`); 2 made aggregate votes
	/// commit-reveal (`migrations::v2`).
	pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(2);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The balance type of stakes (the runtime's `Balance`).
		type Balance: Parameter + AtLeast32BitUnsigned + Copy + MaxEncodedLen;
		/// Validator eligibility and stake, slashing (pallet-contributions).
		type Registry: ParticipantRegistry<Self::AccountId, Self::Balance>;
		/// Receives the result of each round (pallet-tasks).
		type Observer: VerificationObserver<Self::AccountId>;
		/// Randomness for assignments, challenges and aggregators (runtime: BABE parent-block
		/// VRF randomness).
		type Randomness: Randomness<Self::Hash, BlockNumberFor<Self>>;
		/// Origin allowed to change [`Params`].
		type ParamsOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Parameters used until genesis or governance sets them.
		type DefaultParams: Get<Params>;
		/// Maximum verifications in progress (at least pallet-tasks' `MaxActiveJobs`).
		#[pallet::constant]
		type MaxActiveJobs: Get<u32>;
		/// Maximum updates per round (pallet-tasks' `MaxWorkersPerRound`).
		#[pallet::constant]
		type MaxWorkersPerRound: Get<u32>;
		/// Maximum validators per update.
		#[pallet::constant]
		type MaxValidatorsPerUpdate: Get<u32>;
		/// Maximum challenged segments per update.
		#[pallet::constant]
		type MaxSegments: Get<u32>;
		/// Maximum distinct validators in one round.
		#[pallet::constant]
		type MaxRoundValidators: Get<u32>;
		/// Maximum stage transitions per block.
		#[pallet::constant]
		type MaxTransitionsPerBlock: Get<u32>;
		/// Weights.
		type WeightInfo: WeightInfo;
	}

	#[pallet::type_value]
	pub fn DefaultParamsValue<T: Config>() -> Params {
		T::DefaultParams::get()
	}

	/// The pallet's parameters.
	#[pallet::storage]
	pub type ProtocolParams<T: Config> = StorageValue<_, Params, ValueQuery, DefaultParamsValue<T>>;

	/// Verifications in progress, by job.
	#[pallet::storage]
	pub type Verifications<T: Config> = StorageMap<_, Twox64Concat, JobId, VerificationOf<T>>;

	/// Jobs being verified, with the deadline of their current stage.
	#[pallet::storage]
	pub type ActiveVerifications<T: Config> =
		StorageValue<_, BoundedVec<(JobId, BlockNumberFor<T>), T::MaxActiveJobs>, ValueQuery>;

	/// The check of each update of the round being verified.
	#[pallet::storage]
	pub type Checks<T: Config> =
		StorageDoubleMap<_, Twox64Concat, JobId, Blake2_128Concat, T::AccountId, UpdateCheckOf<T>>;

	/// The checkpoint root of each update of the round being verified (the subject of its
	/// challenge draw, and what a planted update's secret must hash to).
	#[pallet::storage]
	pub type CheckpointRoots<T: Config> =
		StorageDoubleMap<_, Twox64Concat, JobId, Blake2_128Concat, T::AccountId, H256>;

	/// Updates of the round being verified that their workers exposed as planted.
	#[pallet::storage]
	pub type ExposedPlants<T: Config> =
		StorageDoubleMap<_, Twox64Concat, JobId, Blake2_128Concat, T::AccountId, ()>;

	/// The distinct validators of the round being verified.
	#[pallet::storage]
	pub type RoundValidators<T: Config> = StorageMap<
		_,
		Twox64Concat,
		JobId,
		BoundedVec<RoundValidator<T::AccountId>, T::MaxRoundValidators>,
		ValueQuery,
	>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Initial parameters; `None` keeps `Config::DefaultParams`.
		pub params: Option<Params>,
		#[serde(skip)]
		pub _config: core::marker::PhantomData<T>,
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
		/// Validators and challenged segments were assigned to an update.
		ValidatorsAssigned {
			job: JobId,
			round: RoundIndex,
			worker: T::AccountId,
			validators: BoundedVec<T::AccountId, T::MaxValidatorsPerUpdate>,
			segments: BoundedVec<u32, T::MaxSegments>,
		},
		/// The commit stage started.
		CommitStarted { job: JobId, round: RoundIndex, deadline: BlockNumberFor<T> },
		/// A validator committed.
		VerdictCommitted { job: JobId, worker: T::AccountId, validator: T::AccountId },
		/// The reveal stage started.
		RevealStarted { job: JobId, round: RoundIndex, deadline: BlockNumberFor<T> },
		/// A validator revealed.
		VerdictRevealed {
			job: JobId,
			worker: T::AccountId,
			validator: T::AccountId,
			verdict: Verdict,
			score: Perbill,
		},
		/// Consensus on an update.
		UpdateVerified {
			job: JobId,
			round: RoundIndex,
			worker: T::AccountId,
			verdict: Verdict,
			score: Perbill,
		},
		/// Nobody revealed for an update: excluded without slashing its worker.
		UpdateUnverified { job: JobId, round: RoundIndex, worker: T::AccountId },
		/// A participant was slashed.
		Slashed { job: JobId, who: T::AccountId, reason: SlashReason, amount: T::Balance },
		/// An aggregator was drawn.
		AggregatorSelected {
			job: JobId,
			round: RoundIndex,
			aggregator: T::AccountId,
			deadline: BlockNumberFor<T>,
		},
		/// The aggregator committed to its aggregate (`commitment`, see
		/// [`aggregate_commitment_of`]).
		AggregatePosted { job: JobId, round: RoundIndex, commitment: H256 },
		/// A validator committed to the aggregate hash it recomputed.
		AggregateVoted { job: JobId, round: RoundIndex, validator: T::AccountId, commitment: H256 },
		/// Aggregate commitments closed; the aggregator and the voters reveal until `deadline`.
		AggregateRevealStarted { job: JobId, round: RoundIndex, deadline: BlockNumberFor<T> },
		/// `who` (the aggregator or a voter) revealed the aggregate hash it committed to.
		AggregateRevealed { job: JobId, round: RoundIndex, who: T::AccountId, aggregate: BlobHash },
		/// The aggregate was confirmed.
		AggregateAccepted { job: JobId, round: RoundIndex, aggregate: BlobHash },
		/// The aggregate was not confirmed.
		AggregateRejected { job: JobId, round: RoundIndex, aggregator: T::AccountId, slashed: bool },
		/// The verification ended (result handed to pallet-tasks).
		VerificationEnded { job: JobId, round: RoundIndex, completed: bool },
		/// The parameters changed.
		ParamsUpdated { params: Params },
		/// The revealed stake was split evenly: the update is excluded and nobody is slashed
		/// or paid for it.
		UpdateUndecided { job: JobId, round: RoundIndex, worker: T::AccountId },
		/// A worker proved that its update was planted: no training commitment has its root.
		/// Validators that approved it are slashed at the end of the reveal stage.
		PlantExposed { job: JobId, round: RoundIndex, worker: T::AccountId },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No verification in progress for this job.
		UnknownVerification,
		/// The verification is not in the stage this call needs.
		WrongStage,
		/// The round given is not the round being verified.
		WrongRound,
		/// The stage's deadline has passed.
		PhaseClosed,
		/// The reveal stage is over.
		LateReveal,
		/// The caller is not assigned to this update or round.
		NotAssigned,
		/// The caller already committed.
		AlreadyCommitted,
		/// The caller did not commit.
		NotCommitted,
		/// The caller already revealed.
		AlreadyRevealed,
		/// The reveal does not match the commitment.
		CommitmentMismatch,
		/// The caller is not the current aggregator.
		NotAggregator,
		/// The aggregate was already posted.
		AlreadyPosted,
		/// The caller already voted.
		AlreadyVoted,
		/// No eligible validator can verify these updates.
		NoValidators,
		/// A verification for this job is already in progress.
		AlreadyVerifying,
		/// Too many verifications in progress.
		TooManyVerifications,
		/// Too many updates for one round.
		TooManyUpdates,
		/// A parameter is outside its bounds.
		ParamOutOfBounds,
		/// The caller has no update in this verification.
		UnknownUpdate,
		/// The secret does not hash to the update's checkpoint root.
		NotPlant,
		/// The plant was already exposed.
		AlreadyExposed,
		/// The aggregator votes through its own aggregate, not with a vote.
		AggregatorVote,
		/// The verdict does not apply to this verification's mode (`HeldOutUnavailable` in a
		/// replay).
		VerdictNotInMode,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			Self::process_deadlines(now)
		}

		fn integrity_test() {
			assert!(T::MaxActiveJobs::get() > 0, "MaxActiveJobs must be positive");
			assert!(
				T::MaxValidatorsPerUpdate::get() > 0,
				"MaxValidatorsPerUpdate must be positive"
			);
			assert!(T::MaxSegments::get() > 0, "MaxSegments must be positive");
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
		/// Commit to a verdict on `worker`'s update of `job`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::commit_verdict())]
		pub fn commit_verdict(
			origin: OriginFor<T>,
			job: JobId,
			worker: T::AccountId,
			commitment: H256,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_commit(who, job, worker, commitment)
		}

		/// Reveal the committed verdict and quality score.
		///
		/// Origin: a validator assigned to `worker`'s update that committed to this verdict,
		/// during the reveal stage. `HeldOutUnavailable` is refused (`VerdictNotInMode`) unless
		/// the round is verified by evaluation. Emits `VerdictRevealed`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::reveal_verdict())]
		pub fn reveal_verdict(
			origin: OriginFor<T>,
			job: JobId,
			worker: T::AccountId,
			verdict: Verdict,
			score: Perbill,
			salt: [u8; 32],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_reveal(who, job, worker, verdict, score, salt)
		}

		/// Commit to the hash of the aggregate: `commitment` is [`aggregate_commitment_of`] the
		/// hash, a secret salt and the caller.
		///
		/// Origin: the current aggregator, during the aggregation stage, once per attempt.
		/// Emits `AggregatePosted`. The hash is revealed with `reveal_aggregate`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::post_aggregate())]
		pub fn post_aggregate(
			origin: OriginFor<T>,
			job: JobId,
			round: RoundIndex,
			commitment: H256,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_post_aggregate(who, job, round, commitment)
		}

		/// Commit to the aggregate hash one recomputed from the round's accepted updates
		/// (`commitment` as in `post_aggregate`).
		///
		/// Origin: a validator of the round other than the aggregator, during the aggregation
		/// stage, once per attempt. Emits `AggregateVoted`. The vote counts once revealed with
		/// `reveal_aggregate`: for the accepted aggregate it earns reward weight, against the
		/// majority it is slashed, and unrevealed it is slashed `no_reveal_slash`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::vote_aggregate())]
		pub fn vote_aggregate(
			origin: OriginFor<T>,
			job: JobId,
			round: RoundIndex,
			commitment: H256,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_vote_aggregate(who, job, round, commitment)
		}

		/// Reveal the aggregate hash and salt one committed to with `post_aggregate` or
		/// `vote_aggregate`.
		///
		/// Origin: the aggregator or a voter of the attempt, during the aggregate reveal stage.
		/// Emits `AggregateRevealed`; once everyone revealed, the tally runs at the next block.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::reveal_aggregate())]
		pub fn reveal_aggregate(
			origin: OriginFor<T>,
			job: JobId,
			round: RoundIndex,
			aggregate: BlobHash,
			salt: [u8; 32],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_reveal_aggregate(who, job, round, aggregate, salt)
		}

		/// Expose one's own update of `job` as planted, by revealing the `secret` whose
		/// [`plant_root`] the update gave as its checkpoint root.
		///
		/// Origin: the worker of the update, during the reveal stage (validators committed their
		/// verdicts before, and cannot change them). At the end of the stage the update is
		/// `Invalid` whatever the votes: every validator that revealed `Valid` is slashed
		/// `contradiction_slash` (`ApprovedPlant`) and forfeits its reward for the whole round,
		/// those that reported it `Invalid` or
		/// `Unavailable` get full agreement, and the planter is slashed `fraud_slash`
		/// (`Planted`): planting costs its operator, so only those who mean to police validators
		/// do it. Emits `PlantExposed`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::expose_plant())]
		pub fn expose_plant(origin: OriginFor<T>, job: JobId, secret: [u8; 32]) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_expose_plant(who, job, secret)
		}

		/// Set the parameters (governance). Every field is checked against its bounds.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::set_params())]
		pub fn set_params(origin: OriginFor<T>, params: Params) -> DispatchResult {
			T::ParamsOrigin::ensure_origin(origin)?;
			Self::check_params(&params)?;
			ProtocolParams::<T>::put(params);
			Self::deposit_event(Event::ParamsUpdated { params });
			Ok(())
		}
	}
}
