//! The timing of sessions, eras and unbonding.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_staking::EraIndex;

/// How long a chain's sessions, eras, unbonding and slash deferral last.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	TypeInfo,
	MaxEncodedLen,
	serde::Serialize,
	serde::Deserialize,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionTiming<BlockNumber> {
	/// Blocks (BABE slots) per session; a session is one BABE epoch, and the validator set can
	/// change only at a session's end.
	pub session_length: BlockNumber,
	/// Sessions per staking era: an election runs once per era, and rewards are paid per era.
	pub sessions_per_era: u32,
	/// Eras that unbonded stake stays locked (and slashable) before it can be withdrawn.
	pub bonding_duration: EraIndex,
	/// Eras between an offence's report and its slash, during which governance may cancel it.
	/// Shorter than `bonding_duration`, so that an offender cannot unbond before the slash.
	pub slash_defer_duration: EraIndex,
}

/// Why a [`SessionTiming`] is refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimingError {
	/// A session shorter than `MinSessionLength` blocks.
	SessionTooShort,
	/// An era of no sessions.
	NoSessionsPerEra,
	/// Unbonding of no eras: stake could leave before its offences are reported.
	NoBondingDuration,
	/// A slash deferred as long as (or longer than) unbonding: the offender withdraws first.
	SlashDeferredPastUnbonding,
}

impl<BlockNumber: PartialOrd + Copy> SessionTiming<BlockNumber> {
	/// Whether this timing is one a chain can run on.
	pub fn check(&self, min_session_length: BlockNumber) -> Result<(), TimingError> {
		if self.session_length < min_session_length {
			return Err(TimingError::SessionTooShort);
		}
		if self.sessions_per_era == 0 {
			return Err(TimingError::NoSessionsPerEra);
		}
		if self.bonding_duration == 0 {
			return Err(TimingError::NoBondingDuration);
		}
		if self.slash_defer_duration >= self.bonding_duration {
			return Err(TimingError::SlashDeferredPastUnbonding);
		}
		Ok(())
	}
}
