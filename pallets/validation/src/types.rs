//! Types of pallet-validation.

use agora_primitives::{BlobHash, RoundIndex, Verdict, VerificationMode, H256};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::Get, BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use scale_info::TypeInfo;
use sp_runtime::Perbill;

/// Stage of a round's verification.
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum Stage {
	/// Assigned validators commit to their verdicts.
	Commit,
	/// Validators reveal their verdicts.
	Reveal,
	/// The aggregator and the round's validators commit to the aggregate hash each computed.
	Aggregation,
	/// They reveal the hashes they committed to; the tally follows.
	AggregateReveal,
}

/// A commitment to an aggregate hash ([`crate::aggregate_commitment_of`]), then the hash.
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum AggregateVote {
	/// Committed, not revealed yet.
	Committed(H256),
	/// Revealed: the aggregate hash.
	Revealed(BlobHash),
}

impl AggregateVote {
	/// The revealed hash, if any.
	pub fn revealed(&self) -> Option<BlobHash> {
		match self {
			AggregateVote::Revealed(hash) => Some(*hash),
			AggregateVote::Committed(_) => None,
		}
	}
}

/// Reward weight of a vote for the accepted aggregate: as much as one verdict in full
/// agreement with the consensus (`Perbill::one()` in parts per billion).
pub const AGGREGATE_VOTE_WEIGHT: u128 = 1_000_000_000;

/// One validator assigned to one update.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Assignment<AccountId> {
	/// The validator.
	pub validator: AccountId,
	/// Its stake when assigned (its weight in the consensus).
	pub stake: u128,
	/// Its commitment.
	pub commitment: Option<H256>,
	/// Its revealed verdict and quality score.
	pub revealed: Option<(Verdict, Perbill)>,
}

/// The verification of one worker's update.
#[derive(
	Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxV, MaxS))]
pub struct UpdateCheck<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxV: Get<u32>,
	MaxS: Get<u32>,
> {
	/// Number of checkpoints the worker committed to.
	pub checkpoints: u32,
	/// Checkpoint segments every assigned validator must re-execute (replay mode).
	pub segments: BoundedVec<u32, MaxS>,
	/// Assigned validators.
	pub assignments: BoundedVec<Assignment<AccountId>, MaxV>,
	/// Consensus verdict and score, once concluded.
	pub outcome: Option<(Verdict, Perbill)>,
}

/// A validator of a round: aggregate vote and reward weight.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct RoundValidator<AccountId> {
	/// The validator.
	pub who: AccountId,
	/// Its stake when first assigned this round.
	pub stake: u128,
	/// Summed agreement with consensus over its revealed assignments, plus
	/// [`AGGREGATE_VOTE_WEIGHT`] for a vote for the accepted aggregate (parts per billion).
	pub weight: u128,
	/// Its vote on the current aggregation attempt's aggregate.
	pub vote: Option<AggregateVote>,
	/// It approved a planted update: it earns nothing this round, votes included.
	pub forfeited: bool,
}

/// A round's verification in progress.
#[derive(
	Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxW))]
pub struct Verification<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxW: Get<u32>,
> {
	/// The round.
	pub round: RoundIndex,
	/// Verification mode.
	pub mode: VerificationMode,
	/// Current stage.
	pub stage: Stage,
	/// Deadline of the current stage.
	pub deadline: BlockNumber,
	/// Reveal stage length.
	pub reveal_period: BlockNumber,
	/// Aggregation stage length (per attempt).
	pub aggregation_period: BlockNumber,
	/// Workers whose updates are verified.
	pub workers: BoundedVec<AccountId, MaxW>,
	/// Actions still expected in the current stage (the stage closes early at zero).
	pub pending: u32,
	/// Accepted workers and their consensus score.
	pub accepted: BoundedVec<(AccountId, Perbill), MaxW>,
	/// Current aggregator.
	pub aggregator: Option<AccountId>,
	/// Aggregators already tried.
	pub tried: BoundedVec<AccountId, MaxW>,
	/// The current aggregator's commitment, then its aggregate hash.
	pub posted: Option<AggregateVote>,
}

/// Why a participant was slashed.
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
pub enum SlashReason {
	/// Assigned validator that did not reveal.
	NoReveal,
	/// Validator whose verdict contradicts a replay consensus.
	Contradiction,
	/// Worker whose update failed replay.
	FailedReplay,
	/// Aggregator that posted a wrong aggregate or none.
	BadAggregate,
	/// Worker whose evidence a majority of its validators could not obtain.
	EvidenceUnavailable,
	/// Validator that approved an update its worker then exposed as planted.
	ApprovedPlant,
	/// Worker that exposed its own update as planted (the price of testing the validators).
	Planted,
	/// Validator whose revealed aggregate hash contradicts the majority of the round's
	/// validators (it backed a rejected aggregate or opposed the accepted one).
	AggregateContradiction,
	/// Validator that committed to an aggregate hash and did not reveal it.
	AggregateNoReveal,
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
pub struct Params {
	/// Smallest fraction of a run's segments that, faked, must be detected
	/// (≥ [`MIN_DETECTABLE_FRACTION`]).
	pub detectable_fraction: Perbill,
	/// Probability of challenging at least one faked segment of such a run
	/// ([`MIN_DETECTION_PROBABILITY`] ..= [`MAX_DETECTION_PROBABILITY`]). With
	/// `detectable_fraction` it sets how many segments are challenged (see `challenge.rs`); the
	/// worst case over all run lengths must fit in `Config::MaxSegments`.
	pub detection_probability: Perbill,
	/// Score distance from consensus at which a validator's agreement drops to zero
	/// (1 % ..= 100 %).
	pub score_tolerance: Perbill,
	/// Slash of a validator that does not reveal (≤ [`MAX_NO_REVEAL_SLASH`]).
	pub no_reveal_slash: Perbill,
	/// Slash of a validator contradicting a replay consensus (≤ [`MAX_CONTRADICTION_SLASH`]).
	pub contradiction_slash: Perbill,
	/// Slash of a worker whose update fails replay ([`MIN_FRAUD_SLASH`] ..= 100 %).
	pub fraud_slash: Perbill,
	/// Slash of a worker whose evidence a majority of its validators could not get
	/// (≤ `fraud_slash`).
	pub unavailable_slash: Perbill,
	/// Distinct validators that must report the evidence unavailable before its worker is
	/// slashed for it (2 ..= `Config::MaxValidatorsPerUpdate`): one validator's network failure
	/// never slashes anyone.
	pub min_unavailable_reports: u32,
	/// Slash of an aggregator whose aggregate is outvoted or missing
	/// (≤ [`MAX_AGGREGATOR_SLASH`]).
	pub aggregator_slash: Perbill,
	/// Aggregation attempts before the round is voided (1 ..= [`MAX_AGGREGATION_ATTEMPTS`]).
	pub max_aggregation_attempts: u32,
}

/// Upper bound of [`Params::max_aggregation_attempts`].
pub const MAX_AGGREGATION_ATTEMPTS: u32 = 5;
/// Upper bound of [`Params::no_reveal_slash`].
pub const MAX_NO_REVEAL_SLASH: Perbill = Perbill::from_percent(50);
/// Upper bound of [`Params::contradiction_slash`].
pub const MAX_CONTRADICTION_SLASH: Perbill = Perbill::from_percent(50);
/// Lower bound of [`Params::fraud_slash`]: a caught cheat must always cost more than the
/// reward it was after (see the threat model in docs/protocol.md).
pub const MIN_FRAUD_SLASH: Perbill = Perbill::from_percent(5);
/// Upper bound of [`Params::aggregator_slash`].
pub const MAX_AGGREGATOR_SLASH: Perbill = Perbill::from_percent(50);
/// Lower bound of [`Params::score_tolerance`].
pub const MIN_SCORE_TOLERANCE: Perbill = Perbill::from_percent(1);
/// Lower bound of [`Params::detectable_fraction`].
pub const MIN_DETECTABLE_FRACTION: Perbill = Perbill::from_percent(1);
/// Lower bound of [`Params::detection_probability`].
pub const MIN_DETECTION_PROBABILITY: Perbill = Perbill::from_percent(90);
/// Upper bound of [`Params::detection_probability`] (certainty would challenge every segment).
pub const MAX_DETECTION_PROBABILITY: Perbill = Perbill::from_parts(999_999_000);
