//! Types of pallet-contributions.

use agora_primitives::{BlobHash, Capability, Multiaddr, PeerId};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Whether a participant can take new duties.
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub enum ParticipantStatus<BlockNumber> {
	/// Bonded and available.
	Active,
	/// Leaving: the stake stays on hold (and slashable) until `until`.
	Unbonding {
		/// First block at which `withdraw_unbonded` succeeds.
		until: BlockNumber,
	},
}

/// Why a validator lost its seat.
#[derive(
	Encode, Decode, DecodeWithMemTracking, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen,
)]
pub enum UnseatReason<AccountId> {
	/// Every seat was taken and `by` registered or bonded a higher stake.
	Outbid {
		/// The validator that took the seat.
		by: AccountId,
	},
	/// A slash left the stake below `min_validator_stake`.
	BelowMinimum,
}

/// A registered worker or validator.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Participant<Balance, BlockNumber> {
	/// Stake on hold.
	pub stake: Balance,
	/// libp2p peer id.
	pub peer_id: PeerId,
	/// Multiaddr where the participant's blobs can be fetched.
	pub multiaddr: Multiaddr,
	/// Declared capability.
	pub capability: Capability,
	/// Status.
	pub status: ParticipantStatus<BlockNumber>,
	/// Block of registration.
	pub registered_at: BlockNumber,
}

/// A registered dataset shard.
#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Shard<AccountId, Balance> {
	/// Who registered (and is paid for) the shard.
	pub provider: AccountId,
	/// Number of samples in the shard.
	pub samples: u32,
	/// Deposit on hold.
	pub deposit: Balance,
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
	/// Minimum stake of a worker (at least the existential deposit).
	pub min_worker_stake: Balance,
	/// Minimum stake of a validator (at least the existential deposit).
	pub min_validator_stake: Balance,
	/// Deposit held per registered shard.
	pub shard_deposit: Balance,
	/// Blocks between `unbond` and `withdraw_unbonded`.
	pub unbonding_delay: BlockNumber,
}

/// Bounds of [`Params::unbonding_delay`], in blocks.
pub const MIN_UNBONDING_DELAY: u32 = 10;
/// Upper bound of [`Params::unbonding_delay`] (two weeks of 6 s blocks).
pub const MAX_UNBONDING_DELAY: u32 = 201_600;

/// A shard's hash, re-exported for convenience.
pub type ShardId = BlobHash;
