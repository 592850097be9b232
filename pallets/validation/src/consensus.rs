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

/// The consensus verdict: `Valid` iff the stake saying `Valid` is strictly larger.
pub fn weighted_verdict(entries: &[(Verdict, u128)]) -> Verdict {
	let (valid, invalid) =
		entries.iter().fold((0u128, 0u128), |(v, i), (verdict, w)| match verdict {
			Verdict::Valid => (v.saturating_add((*w).max(1)), i),
			Verdict::Invalid => (v, i.saturating_add((*w).max(1))),
		});
	if valid > invalid {
		Verdict::Valid
	} else {
		Verdict::Invalid
	}
}

/// Agreement of a validator with the consensus, in parts per billion: zero if its verdict
/// differs, else `1 - |score - median| / tolerance`, clamped at zero.
pub fn agreement(
	verdict: Verdict,
	score: Perbill,
	consensus: Verdict,
	median: Perbill,
	tolerance: Perbill,
) -> u128 {
	if verdict != consensus {
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
		assert_eq!(
			weighted_verdict(&[(Verdict::Valid, 5), (Verdict::Invalid, 5)]),
			Verdict::Invalid
		);
		assert_eq!(weighted_verdict(&[(Verdict::Valid, 6), (Verdict::Invalid, 5)]), Verdict::Valid);
		assert_eq!(
			weighted_verdict(&[(Verdict::Valid, 1), (Verdict::Invalid, 1), (Verdict::Valid, 1)]),
			Verdict::Valid
		);
	}

	#[test]
	fn agreement_falls_linearly() {
		let t = p(20);
		assert_eq!(agreement(Verdict::Valid, p(50), Verdict::Valid, p(50), t), 1_000_000_000);
		assert_eq!(agreement(Verdict::Valid, p(60), Verdict::Valid, p(50), t), 500_000_000);
		assert_eq!(agreement(Verdict::Valid, p(80), Verdict::Valid, p(50), t), 0);
		assert_eq!(agreement(Verdict::Invalid, p(50), Verdict::Valid, p(50), t), 0);
	}
}
