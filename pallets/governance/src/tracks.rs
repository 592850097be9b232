//! Agora's referendum tracks: `root`, `protocol_params` and `treasurer`.
//!
//! Every track passes by the same rule, stricter early and looser late in its decision period:
//! approval (ayes over all votes, conviction-weighted) must exceed a threshold that falls from
//! 100% to 50%, and support (ayes over active issuance, without conviction) a threshold that
//! falls from its track's ceiling to its floor. Runtime upgrades (root) need the most support.

use crate::types::TrackTiming;
use alloc::borrow::Cow;
use pallet_referenda::{Curve, Track, TrackInfo};
use sp_runtime::Perbill;

/// A referendum track's id.
pub type TrackId = u16;

/// Runtime upgrades and anything else that needs root.
pub const ROOT: TrackId = 0;
/// Parameter changes of the protocol pallets ([`crate::Origin::ProtocolParameters`]).
pub const PROTOCOL_PARAMS: TrackId = 1;
/// Treasury spends ([`crate::Origin::Treasurer`]).
pub const TREASURER: TrackId = 2;

/// All tracks, sorted by id as pallet-referenda requires.
pub const ALL: [TrackId; 3] = [ROOT, PROTOCOL_PARAMS, TREASURER];

/// Whether `track` is one of Agora's tracks.
pub fn is_known(track: TrackId) -> bool {
	ALL.contains(&track)
}

/// The decision deposit of each track: what it costs to put a referendum to the vote.
pub struct TrackDeposits<Balance> {
	pub root: Balance,
	pub protocol_params: Balance,
	pub treasurer: Balance,
}

/// The length of a track name in pallet-referenda's default `Track` type.
const TRACK_NAME_LEN: usize = 25;

/// A track name as pallet-referenda stores it: UTF-8, zero-padded.
const fn name(text: &str) -> [u8; TRACK_NAME_LEN] {
	let mut out = [0u8; TRACK_NAME_LEN];
	let bytes = text.as_bytes();
	let mut i = 0;
	while i < bytes.len() && i < out.len() {
		out[i] = bytes[i];
		i += 1;
	}
	out
}

const APPROVAL: Curve = Curve::LinearDecreasing {
	length: Perbill::from_percent(100),
	floor: Perbill::from_percent(50),
	ceil: Perbill::from_percent(100),
};

fn support(ceil_percent: u32, floor_percent: u32) -> Curve {
	Curve::LinearDecreasing {
		length: Perbill::from_percent(100),
		floor: Perbill::from_percent(floor_percent),
		ceil: Perbill::from_percent(ceil_percent),
	}
}

/// The full description of track `id` with the given deposits and timing; `None` for an unknown
/// track.
pub fn track<Balance: Clone, BlockNumber: Clone>(
	id: TrackId,
	deposits: &TrackDeposits<Balance>,
	timing: TrackTiming<BlockNumber>,
) -> Option<Cow<'static, Track<TrackId, Balance, BlockNumber>>> {
	let (track_name, max_deciding, decision_deposit, min_support) = match id {
		ROOT => (name("root"), 1, deposits.root.clone(), support(25, 10)),
		PROTOCOL_PARAMS => {
			(name("protocol_params"), 10, deposits.protocol_params.clone(), support(20, 5))
		},
		TREASURER => (name("treasurer"), 10, deposits.treasurer.clone(), support(20, 5)),
		_ => return None,
	};
	Some(Cow::Owned(Track {
		id,
		info: TrackInfo {
			name: track_name,
			max_deciding,
			decision_deposit,
			prepare_period: timing.prepare_period,
			decision_period: timing.decision_period,
			confirm_period: timing.confirm_period,
			min_enactment_period: timing.min_enactment_period,
			min_approval: APPROVAL,
			min_support,
		},
	}))
}
