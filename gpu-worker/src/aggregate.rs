//! Aggregation of worker updates in plain Rust over f32 buffers.
//!
//! Every honest node must compute the bit-identical aggregate, since validators confirm its
//! hash. So: updates are first put in a canonical order (by their values' bits, then sample count),
//! which makes the result independent of the order they arrived in; all sums run in that
//! order, element by element, in plain IEEE f32/f64 arithmetic (Rust never contracts to FMA),
//! and no threads split a sum.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Result, WorkerError};
use crate::params::{Layout, ParamSet};

/// One worker's update: weights after local training minus the global weights.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerUpdate {
	pub delta: ParamSet,
	pub num_samples: u64,
}

/// Aggregation rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum Aggregator {
	/// Mean weighted by each update's sample count.
	FedAvg,
	/// Coordinate-wise median (mean of the two middle values for an even count).
	Median,
	/// Coordinate-wise mean after dropping the `trim` lowest and `trim` highest values.
	TrimmedMean { trim: usize },
	/// The single update whose summed squared distance to its n - f - 2 nearest neighbours is
	/// smallest (Blanchard et al., 2017), tolerating `byzantine` = f bad updates.
	Krum { byzantine: usize },
	/// Unweighted mean of the `select` updates with the best Krum scores.
	MultiKrum { byzantine: usize, select: usize },
}

impl Aggregator {
	fn check_count(&self, count: usize) -> Result<()> {
		let fail = |reason: String| Err(WorkerError::InvalidArgument(reason));
		match *self {
            Aggregator::FedAvg | Aggregator::Median => Ok(()),
            Aggregator::TrimmedMean { trim } if 2 * trim >= count => {
                fail(format!("cannot trim {trim} from each side of {count} updates"))
            }
            Aggregator::Krum { byzantine } | Aggregator::MultiKrum { byzantine, .. }
                if count < 2 * byzantine + 3 =>
            {
                fail(format!(
                    "Krum with {byzantine} byzantine updates needs at least {} updates, got {count}",
                    2 * byzantine + 3
                ))
            }
            Aggregator::MultiKrum { select, .. } if select == 0 || select > count => {
                fail(format!("multi-Krum cannot select {select} of {count} updates"))
            }
            _ => Ok(()),
        }
	}
}

/// The aggregate and what identifies it.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
	pub delta: ParamSet,
	/// Content hash of `delta`: what validators compare.
	pub hash: Digest,
	/// Indices (into the caller's slice) of the updates Krum / multi-Krum selected.
	pub selected: Vec<usize>,
}

/// Validates the updates against `layout` and aggregates them with `rule`.
///
/// Errors (never a silently wrong aggregate) on: no updates, an update whose tensors do not
/// match the layout, a NaN or infinity in an update, a zero total sample count for FedAvg, or
/// a rule that needs more updates than given.
pub fn aggregate(rule: Aggregator, layout: &Layout, updates: &[WorkerUpdate]) -> Result<Aggregate> {
	if updates.is_empty() {
		return Err(WorkerError::InvalidArgument("no updates to aggregate".into()));
	}
	for update in updates {
		layout.check_matches(update.delta.layout())?;
	}
	// FedAvg's weights are non-negative and sum to one, so its result is finite exactly when
	// every input is: a NaN or infinity anywhere propagates (even times a zero weight), and
	// finite inputs cannot overflow. Checking the result then replaces a pass over every
	// input. The other rules can drop a bad value (a median skips it), so their inputs are
	// checked first.
	let inputs_checked_by_result = rule == Aggregator::FedAvg;
	if !inputs_checked_by_result {
		for update in updates {
			update.delta.check_finite()?;
		}
	}

	// Canonical order: the result depends only on the set of updates. Updates are ordered by
	// their values' bit patterns (lexicographically), then sample count; equal keys mean equal
	// updates, whose relative order does not matter. Comparing usually stops at the first value,
	// so this costs far less than hashing every update.
	let mut order: Vec<usize> = (0..updates.len()).collect();
	order.sort_by(|&a, &b| {
		let bits = |i: usize| updates[i].delta.values().iter().map(|v| v.to_bits());
		bits(a).cmp(bits(b)).then(updates[a].num_samples.cmp(&updates[b].num_samples))
	});
	let ordered: Vec<&[f32]> = order.iter().map(|&i| updates[i].delta.values()).collect();
	let samples: Vec<u64> = order.iter().map(|&i| updates[i].num_samples).collect();
	let (values, positions) = combine(rule, &ordered, &samples, layout.num_values())?;
	let mut selected: Vec<usize> = positions.iter().map(|&p| order[p]).collect();
	selected.sort_unstable();
	let delta = ParamSet::new(layout.clone(), values)?;
	// Never hand on a non-finite aggregate; for FedAvg this is also the inputs' check, and on
	// failure the error names the offending input.
	if let Err(error) = delta.check_finite() {
		for update in updates {
			update.delta.check_finite()?;
		}
		return Err(error);
	}
	let hash = delta.content_hash();
	Ok(Aggregate { delta, hash, selected })
}

/// The arithmetic of `rule` over buffers already in canonical order, with their sample counts.
/// Returns the aggregate and the positions of the inputs Krum / multi-Krum selected.
///
/// This checks lengths and counts but not finiteness and does not reorder: [`aggregate`] is
/// the entry point for untrusted updates; this is public so benchmarks can time the rule alone.
pub fn combine(
	rule: Aggregator,
	inputs: &[&[f32]],
	samples: &[u64],
	len: usize,
) -> Result<(Vec<f32>, Vec<usize>)> {
	if inputs.is_empty() || inputs.len() != samples.len() || inputs.iter().any(|i| i.len() != len) {
		return Err(WorkerError::InvalidArgument(
			"inputs must be non-empty, of equal length, with one sample count each".into(),
		));
	}
	rule.check_count(inputs.len())?;
	Ok(match rule {
		Aggregator::FedAvg => {
			let total: u64 = samples.iter().sum();
			if total == 0 {
				return Err(WorkerError::InvalidArgument(
					"FedAvg needs a positive total sample count".into(),
				));
			}
			let weights: Vec<f32> =
				samples.iter().map(|&n| (n as f64 / total as f64) as f32).collect();
			(weighted_sum(inputs, &weights, len), Vec::new())
		},
		Aggregator::Median => (coordinate_wise(inputs, len, median_rows), Vec::new()),
		Aggregator::TrimmedMean { trim } => (
			coordinate_wise(inputs, len, |rows, out| trimmed_mean_rows(rows, trim, out)),
			Vec::new(),
		),
		Aggregator::Krum { byzantine } => {
			let best = krum_ranking(inputs, byzantine)[0];
			(inputs[best].to_vec(), vec![best])
		},
		Aggregator::MultiKrum { byzantine, select } => {
			let mut chosen: Vec<usize> =
				krum_ranking(inputs, byzantine).into_iter().take(select).collect();
			// Sum in canonical order, not in ranking order.
			chosen.sort_unstable();
			let picked: Vec<&[f32]> = chosen.iter().map(|&i| inputs[i]).collect();
			let weight = 1.0 / select as f32;
			(weighted_sum(&picked, &vec![weight; select], len), chosen)
		},
	})
}

/// `sum_i weights[i] * inputs[i]`, accumulated input by input in the given order.
fn weighted_sum(inputs: &[&[f32]], weights: &[f32], len: usize) -> Vec<f32> {
	let mut out = vec![0f32; len];
	for (input, &weight) in inputs.iter().zip(weights) {
		for (acc, &value) in out.iter_mut().zip(input.iter()) {
			*acc += weight * value;
		}
	}
	out
}

/// Coordinates per block: a block of every input stays in L1/L2 while it is sorted.
const BLOCK: usize = 1024;

/// Up to this many inputs, coordinates are sorted with a branch-free sorting network that
/// works on whole rows (vectorized); beyond it, coordinate by coordinate. Both give the same
/// result, because sorting finite values whose zeros are all +0.0 has a unique outcome.
const NETWORK_MAX_INPUTS: usize = 32;

/// Applies `reduce` to the sorted values of each coordinate across inputs. `reduce` receives
/// the sorted rows of a block and writes one output per column.
fn coordinate_wise(
	inputs: &[&[f32]],
	len: usize,
	reduce: impl Fn(&[Vec<f32>], &mut [f32]),
) -> Vec<f32> {
	let count = inputs.len();
	let mut out = vec![0f32; len];
	let mut rows = vec![vec![0f32; BLOCK]; count];
	let mut column = vec![0f32; count];
	for start in (0..len).step_by(BLOCK) {
		let width = BLOCK.min(len - start);
		for (row, input) in rows.iter_mut().zip(inputs) {
			row.truncate(width);
			row.resize(width, 0.0);
			for (slot, &value) in row.iter_mut().zip(&input[start..start + width]) {
				// -0.0 + 0.0 = +0.0: min/max then never have to order signed zeros, whose
				// treatment differs between instruction sets.
				*slot = value + 0.0;
			}
		}
		if count <= NETWORK_MAX_INPUTS {
			odd_even_transposition_sort(&mut rows);
		} else {
			for offset in 0..width {
				for (slot, row) in column.iter_mut().zip(&rows) {
					*slot = row[offset];
				}
				column.sort_unstable_by(f32::total_cmp);
				for (row, &value) in rows.iter_mut().zip(&column) {
					row[offset] = value;
				}
			}
		}
		reduce(&rows, &mut out[start..start + width]);
	}
	out
}

/// Sorts every column of `rows` ascending with an odd-even transposition network: `n` rounds
/// of compare-exchanges between neighbouring rows, each a vectorizable min/max over the row.
fn odd_even_transposition_sort(rows: &mut [Vec<f32>]) {
	let n = rows.len();
	for round in 0..n {
		let mut first = round % 2;
		while first + 1 < n {
			let (low, high) = rows.split_at_mut(first + 1);
			for (a, b) in low[first].iter_mut().zip(high[0].iter_mut()) {
				let (x, y) = (*a, *b);
				*a = x.min(y);
				*b = x.max(y);
			}
			first += 2;
		}
	}
}

fn median_rows(rows: &[Vec<f32>], out: &mut [f32]) {
	let n = rows.len();
	if n % 2 == 1 {
		out.copy_from_slice(&rows[n / 2]);
	} else {
		for ((slot, &a), &b) in out.iter_mut().zip(&rows[n / 2 - 1]).zip(&rows[n / 2]) {
			// Halve first: the sum of two large finite values could overflow.
			*slot = 0.5 * a + 0.5 * b;
		}
	}
}

fn trimmed_mean_rows(rows: &[Vec<f32>], trim: usize, out: &mut [f32]) {
	let kept = &rows[trim..rows.len() - trim];
	let mut sums = vec![0f64; out.len()];
	for row in kept {
		for (sum, &value) in sums.iter_mut().zip(row) {
			*sum += f64::from(value);
		}
	}
	for (slot, sum) in out.iter_mut().zip(sums) {
		*slot = (sum / kept.len() as f64) as f32;
	}
}

/// Independent accumulators of the distance sums: enough to vectorize, fixed so that the
/// summation order (and hence every bit of the result) is the same on every machine.
const LANES: usize = 8;

/// Squared Euclidean distances between all pairs, in f64. Coordinates are visited block by
/// block (all pairs per block, so each block is read from cache, not memory); within a pair,
/// coordinate k goes to accumulator k mod LANES; the lanes are added in order at the end.
fn pairwise_squared_distances(inputs: &[&[f32]]) -> Vec<f64> {
	let n = inputs.len();
	let len = inputs.first().map_or(0, |i| i.len());
	let mut lanes = vec![[0f64; LANES]; n * n];
	for start in (0..len).step_by(BLOCK) {
		let end = (start + BLOCK).min(len);
		for i in 0..n {
			for j in i + 1..n {
				let acc = &mut lanes[i * n + j];
				let a = &inputs[i][start..end];
				let b = &inputs[j][start..end];
				let mut chunks_a = a.chunks_exact(LANES);
				let mut chunks_b = b.chunks_exact(LANES);
				for (ca, cb) in (&mut chunks_a).zip(&mut chunks_b) {
					for lane in 0..LANES {
						let d = f64::from(ca[lane]) - f64::from(cb[lane]);
						acc[lane] += d * d;
					}
				}
				for (lane, (&x, &y)) in
					chunks_a.remainder().iter().zip(chunks_b.remainder()).enumerate()
				{
					let d = f64::from(x) - f64::from(y);
					acc[lane] += d * d;
				}
			}
		}
	}
	let mut distances = vec![0f64; n * n];
	for i in 0..n {
		for j in i + 1..n {
			let d = lanes[i * n + j].iter().fold(0f64, |sum, &lane| sum + lane);
			distances[i * n + j] = d;
			distances[j * n + i] = d;
		}
	}
	distances
}

/// Indices of the inputs sorted by Krum score (best first, ties by position).
fn krum_ranking(inputs: &[&[f32]], byzantine: usize) -> Vec<usize> {
	let n = inputs.len();
	let distances = pairwise_squared_distances(inputs);
	let neighbours = n - byzantine - 2;
	let scores: Vec<f64> = (0..n)
		.map(|i| {
			let mut others: Vec<f64> =
				(0..n).filter(|&j| j != i).map(|j| distances[i * n + j]).collect();
			others.sort_unstable_by(f64::total_cmp);
			others[..neighbours].iter().sum()
		})
		.collect();
	let mut ranking: Vec<usize> = (0..n).collect();
	ranking.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
	ranking
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::params::TensorSpec;
	use rand::{Rng, SeedableRng};
	use rand_chacha::ChaCha20Rng;

	fn layout() -> Layout {
		Layout::new(vec![
			TensorSpec { name: "w".into(), shape: vec![40, 25] },
			TensorSpec { name: "b".into(), shape: vec![25] },
		])
		.unwrap()
	}

	fn update(seed: u64, center: f32, spread: f32, samples: u64) -> WorkerUpdate {
		let layout = layout();
		let mut rng = ChaCha20Rng::seed_from_u64(seed);
		let values = (0..layout.num_values())
			.map(|_| center + spread * rng.gen_range(-1.0f32..1.0))
			.collect();
		WorkerUpdate { delta: ParamSet::new(layout, values).unwrap(), num_samples: samples }
	}

	const RULES: [Aggregator; 5] = [
		Aggregator::FedAvg,
		Aggregator::Median,
		Aggregator::TrimmedMean { trim: 2 },
		Aggregator::Krum { byzantine: 2 },
		Aggregator::MultiKrum { byzantine: 2, select: 4 },
	];

	#[test]
	fn aggregates_are_bit_identical_for_any_input_order() {
		let updates: Vec<WorkerUpdate> = (0..9).map(|i| update(i, 0.1, 1.0, 10 + i * 7)).collect();
		for rule in RULES {
			let reference = aggregate(rule, &layout(), &updates).unwrap();
			for seed in 0..5 {
				let mut shuffled = updates.clone();
				let order = crate::data::permutation(shuffled.len(), seed);
				shuffled = order.iter().map(|&i| updates[i as usize].clone()).collect();
				let again = aggregate(rule, &layout(), &shuffled).unwrap();
				assert_eq!(again.hash, reference.hash, "{rule:?}");
				assert_eq!(again.delta.values(), reference.delta.values());
			}
		}
	}

	#[test]
	fn sorting_network_and_fallback_match_a_naive_reference() {
		for count in [2usize, 9, 10, 40] {
			let mut updates: Vec<WorkerUpdate> =
				(0..count as u64).map(|i| update(i + 50, 0.0, 1.0, 1)).collect();
			// Signed zeros and ties must not make the result depend on the path taken.
			updates[0].delta.values_mut()[0] = -0.0;
			updates[1].delta.values_mut()[0] = 0.0;
			updates[0].delta.values_mut()[1] = 0.25;
			updates[1].delta.values_mut()[1] = 0.25;
			let trim = (count - 1) / 3;
			let naive = |reduce: &dyn Fn(&[f32]) -> f32| -> Vec<f32> {
				(0..layout().num_values())
					.map(|k| {
						let mut column: Vec<f32> =
							updates.iter().map(|u| u.delta.values()[k] + 0.0).collect();
						column.sort_by(f32::total_cmp);
						reduce(&column)
					})
					.collect()
			};
			let median = aggregate(Aggregator::Median, &layout(), &updates).unwrap();
			let expected = naive(&|c: &[f32]| {
				let n = c.len();
				if n % 2 == 1 {
					c[n / 2]
				} else {
					0.5 * c[n / 2 - 1] + 0.5 * c[n / 2]
				}
			});
			assert_eq!(median.delta.values(), expected.as_slice(), "median of {count}");
			let trimmed = aggregate(Aggregator::TrimmedMean { trim }, &layout(), &updates).unwrap();
			let expected = naive(&|c: &[f32]| {
				let kept = &c[trim..c.len() - trim];
				(kept.iter().map(|&v| f64::from(v)).sum::<f64>() / kept.len() as f64) as f32
			});
			assert_eq!(trimmed.delta.values(), expected.as_slice(), "trimmed mean of {count}");
		}
	}

	#[test]
	fn fedavg_is_the_sample_weighted_mean() {
		let layout = Layout::new(vec![TensorSpec { name: "x".into(), shape: vec![2] }]).unwrap();
		let make = |values: Vec<f32>, n| WorkerUpdate {
			delta: ParamSet::new(layout.clone(), values).unwrap(),
			num_samples: n,
		};
		let result = aggregate(
			Aggregator::FedAvg,
			&layout,
			&[make(vec![1.0, 2.0], 1), make(vec![4.0, -1.0], 3)],
		)
		.unwrap();
		assert_eq!(result.delta.values(), &[3.25, -0.25]);
		let median = aggregate(
			Aggregator::Median,
			&layout,
			&[make(vec![1.0, 2.0], 1), make(vec![4.0, -1.0], 3), make(vec![100.0, 0.0], 1)],
		)
		.unwrap();
		assert_eq!(median.delta.values(), &[4.0, 0.0]);
	}

	#[test]
	fn robust_rules_resist_poisoned_updates() {
		// 7 honest updates around +0.5, 3 attackers far away (30%).
		let mut updates: Vec<WorkerUpdate> = (0..7).map(|i| update(i, 0.5, 0.1, 100)).collect();
		updates.push(update(100, -50.0, 1.0, 100));
		updates.push(update(101, 80.0, 1.0, 100));
		updates.push(update(102, 0.0, 60.0, 100));
		let error = |rule| {
			let result = aggregate(rule, &layout(), &updates).unwrap();
			result.delta.values().iter().map(|v| (v - 0.5).abs()).fold(0f32, f32::max)
		};
		assert!(error(Aggregator::FedAvg) > 1.0);
		for rule in [
			Aggregator::Median,
			Aggregator::TrimmedMean { trim: 3 },
			Aggregator::Krum { byzantine: 3 },
			Aggregator::MultiKrum { byzantine: 3, select: 5 },
		] {
			assert!(error(rule) < 0.15, "{rule:?}: {}", error(rule));
		}
		let krum = aggregate(Aggregator::Krum { byzantine: 3 }, &layout(), &updates).unwrap();
		assert!(krum.selected[0] < 7);
	}

	#[test]
	fn bad_inputs_are_errors() {
		let good = update(1, 0.0, 1.0, 5);
		assert!(aggregate(Aggregator::FedAvg, &layout(), &[]).is_err());

		let mut nan = update(2, 0.0, 1.0, 5);
		nan.delta.values_mut()[10] = f32::NAN;
		assert!(matches!(
			aggregate(Aggregator::FedAvg, &layout(), &[good.clone(), nan]),
			Err(WorkerError::NonFinite { .. })
		));
		let mut inf = update(3, 0.0, 1.0, 5);
		inf.delta.values_mut()[0] = f32::INFINITY;
		assert!(aggregate(Aggregator::Median, &layout(), &[good.clone(), inf]).is_err());
		// FedAvg checks its inputs through its result: an infinity in an update that carries
		// no weight still makes it an error.
		let mut weightless = update(4, 0.0, 1.0, 0);
		weightless.delta.values_mut()[3] = f32::NEG_INFINITY;
		assert!(matches!(
			aggregate(Aggregator::FedAvg, &layout(), &[good.clone(), weightless]),
			Err(WorkerError::NonFinite { .. })
		));

		let wrong_shape = WorkerUpdate {
			delta: ParamSet::zeros(
				Layout::new(vec![TensorSpec { name: "w".into(), shape: vec![25, 40] }]).unwrap(),
			),
			num_samples: 5,
		};
		assert!(matches!(
			aggregate(Aggregator::FedAvg, &layout(), &[good.clone(), wrong_shape]),
			Err(WorkerError::ShapeMismatch { .. }) | Err(WorkerError::MissingTensor(_))
		));

		let no_samples = WorkerUpdate { num_samples: 0, ..good.clone() };
		assert!(aggregate(Aggregator::FedAvg, &layout(), &[no_samples]).is_err());
		assert!(aggregate(
			Aggregator::Krum { byzantine: 1 },
			&layout(),
			&[good.clone(), good.clone()]
		)
		.is_err());
		assert!(aggregate(Aggregator::TrimmedMean { trim: 1 }, &layout(), &[good.clone(), good])
			.is_err());
	}
}
