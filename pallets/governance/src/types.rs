//! Track timing and its bounds.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use serde::{Deserialize, Serialize};

/// The periods of one referendum track, in blocks.
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
	Serialize,
	Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct TrackTiming<BlockNumber> {
	/// From submission until voting may decide the referendum.
	pub prepare_period: BlockNumber,
	/// The longest a referendum is voted on before it fails.
	pub decision_period: BlockNumber,
	/// How long a referendum must keep passing before it is approved.
	pub confirm_period: BlockNumber,
	/// The least delay between approval and the dispatch of the call.
	pub min_enactment_period: BlockNumber,
}

/// The inclusive range each period of [`TrackTiming`] must lie in.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, MaxEncodedLen)]
pub struct TimingBounds<BlockNumber> {
	pub prepare_period: (BlockNumber, BlockNumber),
	pub decision_period: (BlockNumber, BlockNumber),
	pub confirm_period: (BlockNumber, BlockNumber),
	pub min_enactment_period: (BlockNumber, BlockNumber),
}

/// Which period of a [`TrackTiming`] is out of bounds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimingError {
	PreparePeriod,
	DecisionPeriod,
	ConfirmPeriod,
	EnactmentPeriod,
}

fn within<N: PartialOrd>(value: &N, (min, max): &(N, N)) -> bool {
	min <= value && value <= max
}

impl<N: PartialOrd> TimingBounds<N> {
	/// Every minimum is at most its maximum.
	pub fn is_consistent(&self) -> bool {
		self.prepare_period.0 <= self.prepare_period.1
			&& self.decision_period.0 <= self.decision_period.1
			&& self.confirm_period.0 <= self.confirm_period.1
			&& self.min_enactment_period.0 <= self.min_enactment_period.1
	}
}

impl<N: PartialOrd> TrackTiming<N> {
	/// Checks every period against `bounds`, and that confirming fits in the decision period.
	pub fn check(&self, bounds: &TimingBounds<N>) -> Result<(), TimingError> {
		if !within(&self.prepare_period, &bounds.prepare_period) {
			return Err(TimingError::PreparePeriod);
		}
		if !within(&self.decision_period, &bounds.decision_period) {
			return Err(TimingError::DecisionPeriod);
		}
		if !within(&self.confirm_period, &bounds.confirm_period)
			|| self.confirm_period > self.decision_period
		{
			return Err(TimingError::ConfirmPeriod);
		}
		if !within(&self.min_enactment_period, &bounds.min_enactment_period) {
			return Err(TimingError::EnactmentPeriod);
		}
		Ok(())
	}
}

impl<T> From<TimingError> for crate::Error<T> {
	fn from(error: TimingError) -> Self {
		match error {
			TimingError::PreparePeriod => Self::PreparePeriodOutOfBounds,
			TimingError::DecisionPeriod => Self::DecisionPeriodOutOfBounds,
			TimingError::ConfirmPeriod => Self::ConfirmPeriodOutOfBounds,
			TimingError::EnactmentPeriod => Self::EnactmentPeriodOutOfBounds,
		}
	}
}
