//! Types of pallet-rewards.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::Perbill;

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
pub struct Params<Balance> {
	/// Minted into the reward pool each block while a job is active
	/// (≤ `Config::MaxEmissionPerBlock`).
	pub emission_per_block: Balance,
	/// Share of each settlement owed to the treasury (≤ [`MAX_PROTOCOL_FEE`]).
	pub protocol_fee: Perbill,
	/// Share of the rest paid to validators (≤ [`MAX_SHARE`]).
	pub validator_share: Perbill,
	/// Share of the rest paid to data providers (≤ [`MAX_SHARE`]; with `validator_share`
	/// ≤ [`MAX_COMBINED_SHARE`]).
	pub data_share: Perbill,
}

/// Upper bound of [`Params::protocol_fee`].
pub const MAX_PROTOCOL_FEE: Perbill = Perbill::from_percent(20);
/// Upper bound of [`Params::validator_share`] and [`Params::data_share`].
pub const MAX_SHARE: Perbill = Perbill::from_percent(50);
/// Upper bound of `validator_share + data_share`: workers always get at least 10 %.
pub const MAX_COMBINED_SHARE: Perbill = Perbill::from_percent(90);

/// How a round's reward was split (kept for queries).
#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, TypeInfo, MaxEncodedLen)]
pub struct Settlement<Balance> {
	/// Budget slice paid by the submitter.
	pub budget: Balance,
	/// Emission (and slashed stake) allocated to the round.
	pub emission: Balance,
	/// Owed to the treasury.
	pub fee: Balance,
	/// Credited to workers.
	pub workers: Balance,
	/// Credited to validators.
	pub validators: Balance,
	/// Credited to data providers.
	pub providers: Balance,
}
