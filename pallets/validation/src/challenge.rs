//! Which checkpoint segments of a run the validators re-execute (pure functions).
//!
//! The last segment is always challenged: it produces the update the model will use. Among the
//! other segments, enough are drawn uniformly without replacement that a run in which at least
//! `detectable_fraction` of the segments are faked has one of them challenged with probability
//! at least `detection_probability`. The count is computed exactly (hypergeometric), in integer
//! arithmetic, from the run's number of segments: short runs are checked in full, long runs
//! converge to the bound of sampling with replacement, `ln(1 - p) / ln(1 - f)` (44 for
//! f = 10 %, p = 99 %).

use agora_primitives::SeededRng;
use alloc::collections::BTreeSet;
use sp_runtime::{traits::Hash, PerThing, Perbill};

/// Fixed-point unit of the miss probabilities below.
const ONE: u128 = 1_000_000_000_000_000_000;

fn miss_allowed(probability: Perbill) -> u128 {
	// Perbill has 1e9 parts; ONE is 1e18.
	u128::from(probability.left_from_one().deconstruct()).saturating_mul(1_000_000_000)
}

/// Segments to challenge among `segments`, uniformly without replacement, so that at least one
/// of `⌈fraction × segments⌉` faked ones is drawn with probability ≥ `probability`. Never more
/// than `segments`; 0 when there is nothing to draw from.
pub fn challenges_needed(segments: u32, fraction: Perbill, probability: Perbill) -> u32 {
	if segments == 0 {
		return 0;
	}
	let faked = fraction.mul_ceil(segments).max(1);
	let target = miss_allowed(probability);
	// P(miss | k draws) = Π_{i<k} (n - m - i) / (n - i).
	let mut miss = ONE;
	for drawn in 0..segments {
		if miss <= target {
			return drawn;
		}
		let clean_left = u128::from(segments.saturating_sub(faked).saturating_sub(drawn));
		let left = u128::from(segments.saturating_sub(drawn)).max(1);
		miss = miss.saturating_mul(clean_left) / left;
	}
	segments
}

/// The most segments [`challenges_needed`] can ask for, whatever the run's length: the bound of
/// sampling with replacement, the smallest `k` with `(1 - fraction)^k ≤ 1 - probability`.
/// `None` when it exceeds `limit`.
pub fn worst_case_challenges(fraction: Perbill, probability: Perbill, limit: u32) -> Option<u32> {
	let target = miss_allowed(probability);
	let keep = u128::from(fraction.left_from_one().deconstruct());
	let mut miss = ONE;
	for k in 0..=limit {
		if miss <= target {
			return Some(k);
		}
		miss = miss.saturating_mul(keep) / 1_000_000_000;
	}
	None
}

/// The challenged segments of a run of `segments` segments, in increasing order: the last one
/// and [`challenges_needed`] of the others, drawn with Floyd's algorithm (one draw per
/// challenged segment, no allocation proportional to the run).
pub fn draw<H: Hash>(
	rng: &mut SeededRng<H>,
	segments: u32,
	fraction: Perbill,
	probability: Perbill,
) -> BTreeSet<u32> {
	let mut chosen = BTreeSet::new();
	let Some(last) = segments.checked_sub(1) else {
		return chosen;
	};
	let others = last;
	let wanted = challenges_needed(others, fraction, probability);
	for j in others.saturating_sub(wanted)..others {
		let pick = rng.next_below(j.saturating_add(1));
		if !chosen.insert(pick) {
			chosen.insert(j);
		}
	}
	chosen.insert(last);
	chosen
}

#[cfg(test)]
mod tests {
	use super::*;
	use sp_runtime::traits::BlakeTwo256;

	fn p(x: u32) -> Perbill {
		Perbill::from_percent(x)
	}

	/// The miss probability of `k` draws, in f64 (test reference only).
	fn miss(n: u32, m: u32, k: u32) -> f64 {
		(0..k).map(|i| (n - m).saturating_sub(i) as f64 / (n - i) as f64).product()
	}

	#[test]
	fn short_runs_are_checked_in_full() {
		for n in 1..=10 {
			assert_eq!(challenges_needed(n, p(10), p(99)), n, "n = {n}");
		}
	}

	#[test]
	fn count_is_the_smallest_that_reaches_the_target() {
		for n in 1..=500u32 {
			let k = challenges_needed(n, p(10), p(99));
			let m = p(10).mul_ceil(n).max(1);
			assert!(miss(n, m, k) <= 0.01 + 1e-12, "n = {n}: {k} draws miss too often");
			if k > 0 {
				assert!(
					miss(n, m, k - 1) > 0.01 - 1e-12,
					"n = {n}: {k} draws are more than needed"
				);
			}
			assert!(k <= 44, "never more than sampling with replacement needs");
		}
		// Long runs converge to the bound of sampling with replacement.
		assert_eq!(challenges_needed(1_000_000, p(10), p(99)), 44);
		assert_eq!(worst_case_challenges(p(10), p(99), 64), Some(44));
		assert_eq!(worst_case_challenges(p(1), p(99), 64), None);
		assert_eq!(worst_case_challenges(p(50), p(99), 64), Some(7));
	}

	#[test]
	fn draw_always_holds_the_last_segment_and_enough_others() {
		let mut rng = SeededRng::<BlakeTwo256>::new(BlakeTwo256::hash(b"seed"));
		assert!(draw(&mut rng, 0, p(10), p(99)).is_empty());
		assert_eq!(draw(&mut rng, 1, p(10), p(99)).into_iter().collect::<Vec<_>>(), vec![0]);
		for n in [2u32, 4, 20, 100, 1000, 100_000] {
			for _ in 0..20 {
				let drawn = draw(&mut rng, n, p(10), p(99));
				assert!(drawn.contains(&(n - 1)));
				assert_eq!(drawn.len() as u32, 1 + challenges_needed(n - 1, p(10), p(99)));
				assert!(drawn.iter().all(|s| *s < n));
			}
		}
	}

	#[test]
	fn faked_segments_are_caught_as_often_as_promised() {
		// A run of 100 segments with 10 faked ones (none of them the last, which is always
		// caught): measured over 20,000 seeded draws.
		let n = 100u32;
		let faked: BTreeSet<u32> = (0..10).map(|i| i * 9 + 3).collect();
		let trials = 20_000;
		let mut caught = 0;
		let mut rng = SeededRng::<BlakeTwo256>::new(BlakeTwo256::hash(b"trials"));
		for _ in 0..trials {
			if draw(&mut rng, n, p(10), p(99)).iter().any(|s| faked.contains(s)) {
				caught += 1;
			}
		}
		let rate = caught as f64 / trials as f64;
		assert!(rate >= 0.985, "caught {rate}");
	}
}
