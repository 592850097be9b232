//! Types of pallet-inference.

use agora_primitives::{BlobHash, JobId, MaxArchLen, PeerId, RoundIndex, H256};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{
	pallet_prelude::{ConstU32, Get},
	BoundedVec, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound,
};
use scale_info::TypeInfo;
use sp_runtime::Perbill;

/// A catalogue entry is named by the job that trained its model.
pub type ModelId = JobId;
/// Identifier of a client↔provider channel (never reused).
pub type ChannelId = u64;
/// Identifier of a settled batch of requests (never reused).
pub type BatchId = u64;
/// Identifier of an audit (never reused).
pub type AuditId = u64;
/// Maximum length of a license identifier (an SPDX expression or a short name).
pub type MaxLicenseLen = ConstU32<64>;
/// Maximum bytes of a challenged request's input, and of its answer on chain: every model in
/// Agora's zoo takes and gives far less (MNIST's 784 features are 3,136 bytes).
pub type MaxChallengeBytes = ConstU32<16_384>;

/// Who may buy predictions from a model.
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
pub enum Access {
	/// Anyone.
	Public,
	/// Only the model's owner (the job's submitter). The default until the owner chooses.
	OwnerOnly,
}

/// A model in the catalogue: the job that trained it, its terms, and how many versions (the
/// models of its completed rounds) are listed.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct ModelEntry<AccountId, Balance> {
	/// The job's submitter: sets the terms, may delist.
	pub owner: AccountId,
	/// The architecture id the job trained (what a provider must be able to run).
	pub architecture: BoundedVec<u8, MaxArchLen>,
	/// The license the owner chose (empty until chosen).
	pub license: BoundedVec<u8, MaxLicenseLen>,
	/// Who may buy predictions.
	pub access: Access,
	/// Versions listed.
	pub versions: u32,
	/// The latest version (round).
	pub latest: RoundIndex,
	/// Offers of providers serving one of its versions (the entry cannot be delisted while any
	/// is open).
	pub offers: u32,
	/// Held from the owner: the versions' storage ([`crate::Params::version_deposit`] each).
	pub deposit: Balance,
}

/// One version of a catalogued model: a completed round's aggregate.
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct ModelVersion<BlockNumber> {
	/// Content hash of the weights (what a provider checks after fetching them).
	pub model: BlobHash,
	/// The validators' consensus holdout score of the updates it aggregates.
	pub score: Perbill,
	/// When it was listed.
	pub listed_at: BlockNumber,
}

/// A provider's offer to serve a version of a model.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Offer<Balance> {
	/// The version served.
	pub version: RoundIndex,
	/// Price per request.
	pub price: Balance,
	/// The provider's libp2p peer id (clients dial it).
	pub peer_id: PeerId,
	/// Held from the provider for the offer's storage.
	pub deposit: Balance,
}

/// A client's prepaid channel with a provider.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Channel<AccountId, Balance, BlockNumber> {
	/// Pays.
	pub client: AccountId,
	/// Serves.
	pub provider: AccountId,
	/// The model.
	pub model: ModelId,
	/// The version served (pinned for the channel's life).
	pub version: RoundIndex,
	/// Price per request, fixed when the channel opened.
	pub price: Balance,
	/// Prepaid funds still held from the client (the pending batches' amounts included).
	pub balance: Balance,
	/// What the pending batches owe: part of `balance`, not available to new settlements.
	pub pending_amount: Balance,
	/// Held from the client for the channel's storage.
	pub deposit: Balance,
	/// Requests settled so far (the latest receipt's count).
	pub settled_requests: u64,
	/// Amount settled so far (the latest receipt's amount).
	pub settled_amount: Balance,
	/// The transcript head of the latest settled receipt.
	pub transcript: H256,
	/// Settled batches not yet cleared (paid) or refunded.
	pub pending_batches: u32,
	/// Once closing: the block from which the channel may be finished (no settlement after).
	pub closes_at: Option<BlockNumber>,
}

/// A receipt the client signs after each answer: everything it owes for the channel so far.
/// The provider settles the latest one; a receipt is worth nothing on another channel or chain,
/// and never twice.
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
pub struct Receipt<Balance> {
	/// The channel.
	pub channel: ChannelId,
	/// Requests answered so far.
	pub requests: u64,
	/// Amount owed so far: at most the channel's price per request answered.
	pub amount: Balance,
	/// Head of the transcript hash chain after the `requests`-th answer
	/// ([`crate::transcript_step`]).
	pub transcript: H256,
}

/// Where a settled batch stands.
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
pub enum BatchStatus {
	/// Waiting for the audit draw (from randomness of a later block).
	AwaitingDraw,
	/// Not drawn (or its audit passed): disputable until the window ends, then payable.
	Open,
	/// Under audit.
	Audited(AuditId),
}

/// A client's dispute of one request of a batch, waiting for its auditors' draw.
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Dispute<Balance, BlockNumber> {
	/// The disputed request.
	pub request: u64,
	/// The client's bond.
	pub bond: Balance,
	/// The block whose randomness draws the auditors: later than the dispute, so that the
	/// client could not choose its auditors by choosing when to dispute.
	pub draw_at: BlockNumber,
}

/// A request a client put on chain because its provider did not answer it over the network.
/// The provider answers it on chain before `deadline` (it becomes the channel's next request,
/// settled and audited like any other) or is slashed and the channel closed.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Challenge<Balance, BlockNumber> {
	/// The request's input, as it would have travelled over the network.
	pub input: BoundedVec<u8, MaxChallengeBytes>,
	/// Held from the client (it pays for the input's storage) until the challenge ends.
	pub bond: Balance,
	/// Last block the provider may answer in.
	pub deadline: BlockNumber,
}

/// Requests settled together by one receipt.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Batch<Balance, BlockNumber> {
	/// The channel.
	pub channel: ChannelId,
	/// First request of the batch (1-based, counted over the channel).
	pub first_request: u64,
	/// Last request of the batch.
	pub last_request: u64,
	/// What the batch's requests cost the client (still held from it).
	pub amount: Balance,
	/// The transcript head before the batch's first request.
	pub transcript_before: H256,
	/// The transcript head after its last request (signed by the client).
	pub transcript: H256,
	/// When it was settled.
	pub settled_at: BlockNumber,
	/// Where it stands.
	pub status: BatchStatus,
	/// A dispute waiting for its draw.
	pub dispute: Option<Dispute<Balance, BlockNumber>>,
}

/// What an auditor found when it re-ran the audited request.
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
pub enum AuditVerdict {
	/// The model's output on the input matches the answer (within the tolerance of the devices).
	Correct,
	/// It does not.
	Wrong,
	/// The provider did not serve the audited input, answer and transcript proof.
	Unavailable,
}

/// One validator drawn to audit.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Auditor<AccountId> {
	/// The validator.
	pub who: AccountId,
	/// Its stake when drawn (its weight).
	pub stake: u128,
	/// Its commitment ([`crate::audit_commitment_of`]).
	pub commitment: Option<H256>,
	/// Its revealed verdict.
	pub verdict: Option<AuditVerdict>,
}

/// The audit of one request of a batch.
#[derive(
	Encode, Decode, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound, TypeInfo, MaxEncodedLen,
)]
#[scale_info(skip_type_params(MaxA))]
pub struct Audit<
	AccountId: Clone + PartialEq + Eq + core::fmt::Debug,
	Balance: Clone + PartialEq + Eq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + Eq + core::fmt::Debug,
	MaxA: Get<u32>,
> {
	/// The batch.
	pub batch: BatchId,
	/// The audited request (within the batch).
	pub request: u64,
	/// The client that disputed it, with its bond (a random audit has none).
	pub disputed_by: Option<(AccountId, Balance)>,
	/// The auditors.
	pub auditors: BoundedVec<Auditor<AccountId>, MaxA>,
	/// Last block to commit.
	pub commit_deadline: BlockNumber,
	/// Last block to reveal.
	pub reveal_deadline: BlockNumber,
}

/// The outcome of an audit.
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
pub enum AuditOutcome {
	/// A strict majority of the revealed stake found the answer correct.
	Passed,
	/// A strict majority found it wrong or not served: the provider is slashed, the batch
	/// refunded.
	Failed,
	/// No majority (nobody revealed, or a tie): the batch stands, nobody is slashed.
	Undecided,
}

/// The pallet's parameters (governed, within [`crate::Pallet::check_params`]' bounds).
#[derive(
	serde::Serialize,
	serde::Deserialize,
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
pub struct Params<Balance, BlockNumber> {
	/// Share of each cleared batch paid to the treasury.
	pub protocol_fee: Perbill,
	/// Share of each cleared batch paid into the audit pot, which pays the auditors.
	pub audit_fee: Perbill,
	/// Probability that a settled batch is audited.
	pub audit_rate: Perbill,
	/// Validators drawn per audit.
	pub auditors: u32,
	/// Paid from the audit pot to each auditor whose revealed verdict agrees with the outcome.
	pub audit_reward: Balance,
	/// Share of the provider's worker stake slashed when an audit fails.
	pub wrong_answer_slash: Perbill,
	/// Share of an auditor's validator stake slashed when its revealed verdict contradicts a
	/// decided outcome.
	pub dissent_slash: Perbill,
	/// Blocks between a settlement and its audit draw (the randomness did not exist before).
	pub audit_delay: BlockNumber,
	/// Blocks auditors have to commit.
	pub commit_period: BlockNumber,
	/// Blocks auditors then have to reveal.
	pub reveal_period: BlockNumber,
	/// Blocks after a settlement during which its client may dispute it; the provider is paid
	/// after.
	pub dispute_window: BlockNumber,
	/// Held from a disputing client: returned (with the refund) if the audit fails, paid to the
	/// provider if it passes.
	pub dispute_bond: Balance,
	/// Blocks a provider has to settle its latest receipt once the client starts closing.
	pub close_delay: BlockNumber,
	/// Held from the owner per listed version.
	pub version_deposit: Balance,
	/// Held from a provider per offer.
	pub offer_deposit: Balance,
	/// Held from a client per channel.
	pub channel_deposit: Balance,
}
