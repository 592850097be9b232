//! Stake-weighted consensus on one update (pure functions).

use agora_primitives::Verdict;
use alloc::vec::Vec;
use sp_runtime::Perbill;

/// The stake-weighted median of `(score, stake)` pairs: the smallest score at which the
/// cumulative stake reaches half of the total. Zero stakes count as 1. `None` if empty.
pub fn weighted_median(mut entries: Vec<(Perbill, u128)>) -> Option<Perbill> {
	if entries.is_empty() {
		return None;
	}
	entries.sort_by_key(|(s, _)| *s);
	let total: u128 = entries.iter().fold(0u128, |acc, (_, w)| acc.saturating_add((*w).max(1)));
	let mut acc: u128 = 0;
	for (score, w) in entries.iter() {
		acc = acc.saturating_add((*w).max(1));
		if acc.saturating_mul(2) >= total {
			return Some(*score);
		}
	}
	entries.last().map(|(s, _)| *s)
}

/// The consensus verdict of one update from its revealed `(verdict, stake)` pairs, or `None`
/// when there is no decision (nobody is slashed and the update is excluded).
///
/// * `Unavailable` (the worker's evidence missing: its fault) when it holds a strict majority
///   of the revealed stake. A `HeldOutUnavailable` report says that the evidence arrived, so it
///   counts against that majority, never for it.
/// * Otherwise `HeldOutUnavailable` (in an evaluation, the submitter's held-out data missing:
///   the update is not judged, and nobody is slashed) when it holds more stake than the
///   validators who judged the evidence; the `Unavailable` reports abstain.
/// * Otherwise those reports abstain, and `Valid` or `Invalid` wins with a strict majority of
///   the stake of the validators who judged the evidence. A tie decides nothing, so a split
///   vote never slashes an honest worker or validator.
///
/// Zero stakes count as 1.
pub fn decide(entries: &[(Verdict, u128)]) -> Option<Verdict> {
	let stake_of = |wanted: Verdict| {
		entries
			.iter()
			.filter(|(verdict, _)| *verdict == wanted)
			.fold(0u128, |acc, (_, w)| acc.saturating_add((*w).max(1)))
	};
	let (valid, invalid) = (stake_of(Verdict::Valid), stake_of(Verdict::Invalid));
	let (unavailable, held_out_unavailable) =
		(stake_of(Verdict::Unavailable), stake_of(Verdict::HeldOutUnavailable));
	let judged = valid.saturating_add(invalid);
	if unavailable > judged.saturating_add(held_out_unavailable) {
		return Some(Verdict::Unavailable);
	}
	if held_out_unavailable > judged {
		return Some(Verdict::HeldOutUnavailable);
	}
	match valid.cmp(&invalid) {
		core::cmp::Ordering::Greater => Some(Verdict::Valid),
		core::cmp::Ordering::Less => Some(Verdict::Invalid),
		core::cmp::Ordering::Equal => None,
	}
}

/// Whether `verdict` says that the update was judged: `Valid` or `Invalid`.
pub fn judged(verdict: Verdict) -> bool {
	matches!(verdict, Verdict::Valid | Verdict::Invalid)
}

/// Whether a validator that revealed `verdict` provably contradicts a replay consensus: it
/// judged the evidence (`Valid` or `Invalid`) and came to the other conclusion. Reporting the
/// evidence unavailable is never a contradiction: a network failure is not a lie.
pub fn contradicts(verdict: Verdict, consensus: Verdict) -> bool {
	matches!(
		(verdict, consensus),
		(Verdict::Valid, Verdict::Invalid) | (Verdict::Invalid, Verdict::Valid)
	)
}

/// Agreement of a validator with the consensus, in parts per billion: zero if its verdict
/// differs or the consensus is that nobody could judge (`Unavailable`, `HeldOutUnavailable`:
/// nobody checked anything, nobody is paid for it),
/// else `1 - |score - median| / tolerance`, clamped at zero.
pub fn agreement(
	verdict: Verdict,
	score: Perbill,
	consensus: Verdict,
	median: Perbill,
	tolerance: Perbill,
) -> u128 {
	if verdict != consensus || !judged(consensus) {
		return 0;
	}
	let diff = score.deconstruct().abs_diff(median.deconstruct());
	let tol = tolerance.deconstruct().max(1);
	if diff >= tol {
		return 0;
	}
	let left = u128::from(tol.saturating_sub(diff));
	left.saturating_mul(1_000_000_000) / u128::from(tol)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn p(x: u32) -> Perbill {
		Perbill::from_percent(x)
	}

	#[test]
	fn median_is_stake_weighted() {
		assert_eq!(weighted_median(vec![]), None);
		assert_eq!(weighted_median(vec![(p(10), 1), (p(50), 1), (p(90), 1)]), Some(p(50)));
		// A heavy validator pulls the median to itself.
		assert_eq!(weighted_median(vec![(p(10), 1), (p(50), 1), (p(90), 10)]), Some(p(90)));
		// A minority of stake cannot move it.
		assert_eq!(weighted_median(vec![(p(60), 5), (p(61), 5), (p(0), 3)]), Some(p(60)));
	}

	#[test]
	fn verdict_needs_strict_majority_of_stake() {
		use Verdict::*;
		assert_eq!(decide(&[]), None);
		assert_eq!(decide(&[(Valid, 6), (Invalid, 5)]), Some(Valid));
		assert_eq!(decide(&[(Valid, 1), (Invalid, 1), (Valid, 1)]), Some(Valid));
		assert_eq!(decide(&[(Invalid, 2), (Valid, 1)]), Some(Invalid));
	}

	#[test]
	fn tie_decides_nothing() {
		use Verdict::*;
		assert_eq!(decide(&[(Valid, 5), (Invalid, 5)]), None);
		assert_eq!(decide(&[(Valid, 0), (Invalid, 0)]), None);
		assert_eq!(decide(&[(Valid, 3), (Invalid, 3), (Unavailable, 1)]), None);
	}

	#[test]
	fn unavailable_needs_a_majority_and_otherwise_abstains() {
		use Verdict::*;
		// One validator's failed fetch does not outweigh one that judged the evidence.
		assert_eq!(decide(&[(Valid, 5), (Unavailable, 5)]), Some(Valid));
		assert_eq!(decide(&[(Invalid, 5), (Unavailable, 5)]), Some(Invalid));
		assert_eq!(decide(&[(Valid, 2), (Unavailable, 3)]), Some(Unavailable));
		assert_eq!(decide(&[(Unavailable, 1)]), Some(Unavailable));
		// Serving evidence to one friendly validator only does not win against the others.
		assert_eq!(decide(&[(Valid, 1), (Unavailable, 1), (Unavailable, 1)]), Some(Unavailable));
	}

	#[test]
	fn missing_held_out_data_blames_nobody_unless_the_evidence_was_missing_for_more() {
		use Verdict::*;
		// A submitter withholding its held-out data: nobody could judge, the worker is not
		// to blame.
		assert_eq!(
			decide(&[(HeldOutUnavailable, 1), (HeldOutUnavailable, 1)]),
			Some(HeldOutUnavailable)
		);
		// Like `Unavailable`, it abstains against validators that judged.
		assert_eq!(decide(&[(Invalid, 5), (HeldOutUnavailable, 5)]), Some(Invalid));
		assert_eq!(decide(&[(Valid, 5), (HeldOutUnavailable, 3), (Unavailable, 1)]), Some(Valid));
		// A report that the held-out data was missing says that the evidence arrived: it never
		// helps blame the worker, so one such report cannot turn a valid update into a slash.
		assert_eq!(decide(&[(Valid, 2), (Unavailable, 2), (HeldOutUnavailable, 1)]), Some(Valid));
		assert_eq!(decide(&[(Valid, 3), (HeldOutUnavailable, 1), (Unavailable, 3)]), Some(Valid));
		assert_eq!(decide(&[(HeldOutUnavailable, 2), (Unavailable, 3)]), Some(Unavailable));
		// A tie between the two blames nobody.
		assert_eq!(decide(&[(HeldOutUnavailable, 2), (Unavailable, 2)]), Some(HeldOutUnavailable));
	}

	#[test]
	fn only_judged_disagreement_contradicts() {
		use Verdict::*;
		assert!(contradicts(Valid, Invalid));
		assert!(contradicts(Invalid, Valid));
		assert!(!contradicts(Unavailable, Valid));
		assert!(!contradicts(Unavailable, Invalid));
		assert!(!contradicts(Valid, Unavailable));
		assert!(!contradicts(HeldOutUnavailable, Invalid));
		assert!(!contradicts(Invalid, HeldOutUnavailable));
		assert!(!contradicts(Valid, Valid));
	}

	#[test]
	fn agreement_falls_linearly() {
		let t = p(20);
		assert_eq!(agreement(Verdict::Valid, p(50), Verdict::Valid, p(50), t), 1_000_000_000);
		assert_eq!(agreement(Verdict::Valid, p(60), Verdict::Valid, p(50), t), 500_000_000);
		assert_eq!(agreement(Verdict::Valid, p(80), Verdict::Valid, p(50), t), 0);
		assert_eq!(agreement(Verdict::Invalid, p(50), Verdict::Valid, p(50), t), 0);
		assert_eq!(agreement(Verdict::Unavailable, p(0), Verdict::Unavailable, p(0), t), 0);
		let missing = Verdict::HeldOutUnavailable;
		assert_eq!(agreement(missing, p(0), missing, p(0), t), 0);
	}
}
