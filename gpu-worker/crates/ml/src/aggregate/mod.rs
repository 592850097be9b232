//! Aggregation of worker updates in plain Rust over f32 buffers.
//!
//! Every honest node must compute the bit-identical aggregate, since validators confirm its
//! hash. So: updates are first put in a canonical order (by their values' bits, then sample count),
//! which makes the result independent of the order they arrived in; all sums run in that
//! order, element by element, in plain IEEE f32/f64 arithmetic (Rust never contracts to FMA),
//! and no threads split a sum. Where the CPU has AVX2, the same arithmetic runs compiled for
//! it, with the same bits as a result (see [`combine`] and `kernels`).

mod kernels;

use serde::{Deserialize, Serialize};

use self::kernels::Kernels;
use crate::digest::Digest;
use crate::error::{Result, WorkerError};
use crate::params::{all_finite, Layout, ParamSet};

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
	let combined = combine(rule, &ordered, &samples, layout.num_values())?;
	// Every rule notices a NaN or infinity in its inputs during its own pass over them (see
	// `Combined::inputs_finite`), which spares a separate scan of every input; only then are the
	// inputs scanned, to name the culprit.
	if !combined.inputs_finite {
		for update in updates {
			update.delta.check_finite()?;
		}
	}
	let mut selected: Vec<usize> = combined.selected.iter().map(|&p| order[p]).collect();
	selected.sort_unstable();
	let delta = ParamSet::new(layout.clone(), combined.values)?;
	// Never hand on a non-finite aggregate (FedAvg of huge finite values can overflow).
	delta.check_finite()?;
	let hash = delta.content_hash();
	Ok(Aggregate { delta, hash, selected })
}

/// What [`combine`] computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Combined {
	/// The aggregate's values.
	pub values: Vec<f32>,
	/// Positions of the inputs Krum / multi-Krum selected.
	pub selected: Vec<usize>,
	/// False if the rule met a NaN or infinity among its inputs, or (FedAvg) produced one. Each
	/// rule finds out in its own pass: FedAvg from its result (its weights are non-negative, so
	/// a NaN or infinity propagates even through a zero weight), median and trimmed mean while
	/// they copy each block, Krum from the pairwise distances (every input is in some pair).
	pub inputs_finite: bool,
}

/// The arithmetic of `rule` over buffers already in canonical order, with their sample counts.
///
/// This checks lengths and counts but does not reorder: [`aggregate`] is the entry point for
/// untrusted updates; this is public so benchmarks can time the rule alone.
///
/// On x86-64 CPUs with AVX2 the same code runs compiled for AVX2. The results are bit-identical
/// to the baseline build: every sum has a fixed order and fixed accumulator lanes, Rust never
/// contracts a multiply and an add into an FMA, and the remaining operations (add, subtract,
/// multiply, min and max of finite values with normalized zeros, conversions) are exact IEEE
/// operations whatever the vector width.
pub fn combine(
	rule: Aggregator,
	inputs: &[&[f32]],
	samples: &[u64],
	len: usize,
) -> Result<Combined> {
	if inputs.is_empty() || inputs.len() != samples.len() || inputs.iter().any(|i| i.len() != len) {
		return Err(WorkerError::InvalidArgument(
			"inputs must be non-empty, of equal length, with one sample count each".into(),
		));
	}
	rule.check_count(inputs.len())?;
	if rule == Aggregator::FedAvg && samples.iter().all(|&n| n == 0) {
		return Err(WorkerError::InvalidArgument(
			"FedAvg needs a positive total sample count".into(),
		));
	}
	let kernels = Kernels::detect();
	#[cfg(target_arch = "x86_64")]
	if kernels.has_avx2() {
		// SAFETY: `combine_avx2` requires AVX2, which the CPU was just found to have.
		return Ok(unsafe { combine_avx2(rule, inputs, samples, len, kernels) });
	}
	Ok(combine_checked_inputs(rule, inputs, samples, len, kernels))
}

/// [`combine_checked_inputs`] compiled for AVX2, so that its loops vectorize 8 wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn combine_avx2(
	rule: Aggregator,
	inputs: &[&[f32]],
	samples: &[u64],
	len: usize,
	kernels: Kernels,
) -> Combined {
	combine_checked_inputs(rule, inputs, samples, len, kernels)
}

/// [`combine`] after its argument checks. Inlined, with everything it calls, into each
/// instruction-set variant.
#[inline(always)]
fn combine_checked_inputs(
	rule: Aggregator,
	inputs: &[&[f32]],
	samples: &[u64],
	len: usize,
	kernels: Kernels,
) -> Combined {
	match rule {
		Aggregator::FedAvg => {
			let total = samples.iter().fold(0u64, |sum, &n| sum.saturating_add(n));
			let weights: Vec<f32> =
				samples.iter().map(|&n| (n as f64 / total as f64) as f32).collect();
			let values = weighted_sum(inputs, &weights, len);
			let inputs_finite = all_finite(&values);
			Combined { values, selected: Vec::new(), inputs_finite }
		},
		Aggregator::Median => {
			let (values, inputs_finite) = coordinate_wise(inputs, len, median_rows);
			Combined { values, selected: Vec::new(), inputs_finite }
		},
		Aggregator::TrimmedMean { trim } => {
			let (values, inputs_finite) =
				coordinate_wise(inputs, len, |rows, out| trimmed_mean_rows(rows, trim, out));
			Combined { values, selected: Vec::new(), inputs_finite }
		},
		Aggregator::Krum { byzantine } => {
			let (ranking, inputs_finite) = krum_ranking(inputs, byzantine, kernels);
			let best = ranking[0];
			Combined { values: inputs[best].to_vec(), selected: vec![best], inputs_finite }
		},
		Aggregator::MultiKrum { byzantine, select } => {
			let (ranking, inputs_finite) = krum_ranking(inputs, byzantine, kernels);
			let mut chosen: Vec<usize> = ranking.into_iter().take(select).collect();
			// Sum in canonical order, not in ranking order.
			chosen.sort_unstable();
			let picked: Vec<&[f32]> = chosen.iter().map(|&i| inputs[i]).collect();
			let weight = 1.0 / select as f32;
			let values = weighted_sum(&picked, &vec![weight; select], len);
			Combined { values, selected: chosen, inputs_finite }
		},
	}
}

/// `sum_i weights[i] * inputs[i]`, accumulated input by input in the given order.
#[inline(always)]
fn weighted_sum(inputs: &[&[f32]], weights: &[f32], len: usize) -> Vec<f32> {
	let mut out = vec![0f32; len];
	for (input, &weight) in inputs.iter().zip(weights) {
		for (acc, &value) in out.iter_mut().zip(input.iter()) {
			*acc += weight * value;
		}
	}
	out
}

/// Coordinates per block: a block of every input stays in L1/L2 while it is sorted or compared.
const BLOCK: usize = 1024;

/// Up to this many inputs, coordinates are sorted with a branch-free sorting network that
/// works on whole rows (vectorized); beyond it, coordinate by coordinate. Both give the same
/// result, because sorting finite values whose zeros are all +0.0 has a unique outcome.
const NETWORK_MAX_INPUTS: usize = 32;

/// Applies `reduce` to the sorted values of each coordinate across inputs. `reduce` receives
/// the sorted rows of a block and writes one output per column. Also returns whether every
/// input value was finite (the result is meaningless otherwise).
#[inline(always)]
fn coordinate_wise(
	inputs: &[&[f32]],
	len: usize,
	reduce: impl Fn(&[Vec<f32>], &mut [f32]),
) -> (Vec<f32>, bool) {
	let count = inputs.len();
	let mut out = vec![0f32; len];
	let mut rows = vec![vec![0f32; BLOCK]; count];
	let mut column = vec![0f32; count];
	let network = sorting_network(count);
	let mut inputs_finite = true;
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
			inputs_finite &= all_finite(row);
		}
		if count <= NETWORK_MAX_INPUTS {
			sort_columns(&mut rows, &network);
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
	(out, inputs_finite)
}

/// The comparators of Batcher's odd-even merge sort for `n` inputs, in the order they apply:
/// the network for the next power of two, without the comparators that reach past `n` (those
/// positions act as +infinity, which such a comparator never moves). 32 comparators for 10
/// inputs, against 45 for odd-even transposition.
fn sorting_network(n: usize) -> Vec<(usize, usize)> {
	let size = n.next_power_of_two();
	let mut comparators = Vec::new();
	let mut merged = 1;
	while merged < size {
		let mut distance = merged;
		while distance >= 1 {
			for first in (distance % merged..size - distance).step_by(2 * distance) {
				for offset in 0..distance.min(size - first - distance) {
					let (low, high) = (first + offset, first + offset + distance);
					// Only pairs inside one of the blocks of 2 * merged being merged.
					if low / (2 * merged) == high / (2 * merged) && high < n {
						comparators.push((low, high));
					}
				}
			}
			distance /= 2;
		}
		merged *= 2;
	}
	comparators
}

/// Sorts every column of `rows` ascending by applying `network`: each comparator is a
/// vectorizable min/max over two whole rows.
#[inline(always)]
fn sort_columns(rows: &mut [Vec<f32>], network: &[(usize, usize)]) {
	for &(low, high) in network {
		let (head, tail) = rows.split_at_mut(high);
		for (a, b) in head[low].iter_mut().zip(tail[0].iter_mut()) {
			let (x, y) = (*a, *b);
			*a = x.min(y);
			*b = x.max(y);
		}
	}
}

#[inline(always)]
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

#[inline(always)]
fn trimmed_mean_rows(rows: &[Vec<f32>], trim: usize, out: &mut [f32]) {
	let kept = &rows[trim..rows.len() - trim];
	let mut sums = [0f64; BLOCK];
	let sums = &mut sums[..out.len()];
	for row in kept {
		for (sum, &value) in sums.iter_mut().zip(row) {
			*sum += f64::from(value);
		}
	}
	for (slot, &sum) in out.iter_mut().zip(sums.iter()) {
		*slot = (sum / kept.len() as f64) as f32;
	}
}

/// Squared Euclidean distance between two blocks of at most [`BLOCK`] coordinates.
///
/// In f32 ([`kernels::LANES`] partial sums, added in lane order), which is exact enough to rank Krum
/// scores and twice as wide per instruction as f64. If that overflows (coordinates beyond about
/// 1e19) or meets a NaN or infinity, the block is redone in f64, where finite f32 inputs cannot
/// overflow: the result is then non-finite exactly when an input is.
#[inline(always)]
fn block_squared_distance(a: &[f32], b: &[f32], kernels: Kernels) -> f64 {
	let sum = kernels.lane_sums(a, b).iter().fold(0f32, |sum, &lane| sum + lane);
	if sum.is_finite() {
		return f64::from(sum);
	}
	a.iter().zip(b).fold(0f64, |sum, (&x, &y)| {
		let d = f64::from(x) - f64::from(y);
		sum + d * d
	})
}

/// Squared Euclidean distances between all pairs (row-major n x n), block sums added in f64
/// in block order. Coordinates are visited block by block, all pairs per block, so each
/// input is read from memory once and compared from cache.
#[inline(always)]
fn pairwise_squared_distances(inputs: &[&[f32]], kernels: Kernels) -> Vec<f64> {
	let n = inputs.len();
	let len = inputs.first().map_or(0, |i| i.len());
	let mut distances = vec![0f64; n * n];
	for start in (0..len).step_by(BLOCK) {
		let end = (start + BLOCK).min(len);
		for i in 0..n {
			let a = &inputs[i][start..end];
			for j in i + 1..n {
				distances[i * n + j] += block_squared_distance(a, &inputs[j][start..end], kernels);
			}
		}
	}
	for i in 0..n {
		for j in i + 1..n {
			distances[j * n + i] = distances[i * n + j];
		}
	}
	distances
}

/// Indices of the inputs sorted by Krum score (best first, ties by position), and whether all
/// pairwise distances were finite, which holds exactly when every input is finite.
#[inline(always)]
fn krum_ranking(inputs: &[&[f32]], byzantine: usize, kernels: Kernels) -> (Vec<usize>, bool) {
	let n = inputs.len();
	let distances = pairwise_squared_distances(inputs, kernels);
	let inputs_finite = distances.iter().all(|d| d.is_finite());
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
	(ranking, inputs_finite)
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
	fn sorting_networks_sort_every_zero_one_input() {
		// The 0-1 principle: a comparator network sorts everything if it sorts all 0/1 inputs.
		for n in 1..=16usize {
			let network = sorting_network(n);
			for pattern in 0u32..1 << n {
				let mut values: Vec<u32> = (0..n).map(|bit| pattern >> bit & 1).collect();
				for &(low, high) in &network {
					if values[low] > values[high] {
						values.swap(low, high);
					}
				}
				assert!(values.windows(2).all(|pair| pair[0] <= pair[1]), "n = {n}");
			}
		}
		assert_eq!(sorting_network(10).len(), 32);
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
	fn instruction_set_variants_are_bit_identical() {
		let updates: Vec<WorkerUpdate> = (0..9).map(|i| update(i, 0.1, 1.0, 10 + i * 7)).collect();
		let inputs: Vec<&[f32]> = updates.iter().map(|u| u.delta.values()).collect();
		let samples: Vec<u64> = updates.iter().map(|u| u.num_samples).collect();
		let len = layout().num_values();
		for rule in RULES {
			// `combine` dispatches to the AVX2 build and kernels where the CPU has them.
			let dispatched = combine(rule, &inputs, &samples, len).unwrap();
			let baseline =
				combine_checked_inputs(rule, &inputs, &samples, len, Kernels::portable());
			let bits = |c: &Combined| c.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
			assert_eq!(bits(&dispatched), bits(&baseline), "{rule:?}");
			assert_eq!(dispatched.selected, baseline.selected);
		}
	}

	#[test]
	fn krum_ranks_like_an_f64_reference_even_when_f32_squares_overflow() {
		let naive_ranking = |updates: &[WorkerUpdate], byzantine: usize| -> Vec<usize> {
			let n = updates.len();
			let distance = |i: usize, j: usize| -> f64 {
				let (a, b) = (updates[i].delta.values(), updates[j].delta.values());
				a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum()
			};
			let scores: Vec<f64> = (0..n)
				.map(|i| {
					let mut others: Vec<f64> =
						(0..n).filter(|&j| j != i).map(|j| distance(i, j)).collect();
					others.sort_by(f64::total_cmp);
					others[..n - byzantine - 2].iter().sum()
				})
				.collect();
			let mut ranking: Vec<usize> = (0..n).collect();
			ranking.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
			ranking
		};
		// Spreads of 1 and of 1e20: squares of the latter overflow f32 and take the f64 path.
		for spread in [1.0f32, 1e20] {
			let updates: Vec<WorkerUpdate> =
				(0..8).map(|i| update(i + 200, 0.0, spread * (1.0 + i as f32), 1)).collect();
			let inputs: Vec<&[f32]> = updates.iter().map(|u| u.delta.values()).collect();
			let (ranking, inputs_finite) = krum_ranking(&inputs, 2, Kernels::detect());
			assert!(inputs_finite);
			assert_eq!(ranking, naive_ranking(&updates, 2), "spread {spread}");
		}
	}

	#[test]
	fn every_rule_rejects_and_names_a_non_finite_input() {
		for rule in RULES {
			for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
				let mut updates: Vec<WorkerUpdate> =
					(0..9).map(|i| update(i, 0.1, 1.0, 10)).collect();
				// Tensors are laid out by name: b (25 values), then w.
				updates[4].delta.values_mut()[25 + 978] = bad;
				match aggregate(rule, &layout(), &updates) {
					Err(WorkerError::NonFinite { name, index, .. }) => {
						assert_eq!((name.as_str(), index), ("w", 978), "{rule:?} {bad}")
					},
					other => panic!("{rule:?} with {bad}: {other:?}"),
				}
			}
		}
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
