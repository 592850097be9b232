//! The squared-distance kernel of Krum, once per instruction set.
//!
//! LLVM does not reliably vectorize this reduction from scalar code (it stayed scalar, at a
//! quarter of the memory bandwidth), so the x86-64 variants use intrinsics. All variants compute
//! the same [`LANES`] partial sums with the same IEEE f32 operations in the same order: lane k
//! accumulates `(a[i] - b[i])²` for i = k, k + LANES, k + 2·LANES, … So they agree bit for bit,
//! and the choice of variant never changes an aggregate.

/// Partial sums per block pair: 8 SSE or 4 AVX registers, enough independent additions to hide
/// their latency.
pub(super) const LANES: usize = 32;

/// Which kernel variants this CPU can run. Only [`Kernels::detect`] (and, in tests, the
/// baseline) makes one, so `avx2` is true only where the CPU has AVX2.
#[derive(Clone, Copy, Debug)]
pub(super) struct Kernels {
	avx2: bool,
}

impl Kernels {
	/// The best variants of this CPU.
	pub(super) fn detect() -> Self {
		#[cfg(target_arch = "x86_64")]
		let avx2 = std::arch::is_x86_feature_detected!("avx2");
		#[cfg(not(target_arch = "x86_64"))]
		let avx2 = false;
		Self { avx2 }
	}

	/// The variants of the architecture's baseline (SSE2 on x86-64), to test the others against.
	#[cfg(test)]
	pub(super) fn portable() -> Self {
		Self { avx2: false }
	}

	#[cfg(target_arch = "x86_64")]
	pub(super) fn has_avx2(self) -> bool {
		self.avx2
	}

	/// Per-lane sums of squared differences of `a` and `b` (equal lengths).
	#[inline(always)]
	pub(super) fn lane_sums(self, a: &[f32], b: &[f32]) -> [f32; LANES] {
		#[cfg(target_arch = "x86_64")]
		{
			if self.avx2 {
				// SAFETY: `avx2` is true only when the CPU was found to have AVX2.
				return unsafe { x86::lane_sums_avx2(a, b) };
			}
			// SAFETY: every x86-64 CPU has SSE2.
			unsafe { x86::lane_sums_sse2(a, b) }
		}
		#[cfg(not(target_arch = "x86_64"))]
		lane_sums_scalar(a, b)
	}
}

/// The reference definition of the lanes, in scalar code.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn lane_sums_scalar(a: &[f32], b: &[f32]) -> [f32; LANES] {
	let mut lanes = [0f32; LANES];
	for (index, (&x, &y)) in a.iter().zip(b).enumerate() {
		let d = x - y;
		lanes[index % LANES] += d * d;
	}
	lanes
}

/// Adds the coordinates past the last whole chunk: the tail starts at a multiple of
/// [`LANES`], so its coordinate r belongs to lane r.
#[inline(always)]
fn add_tail(lanes: &mut [f32; LANES], a: &[f32], b: &[f32]) {
	for (lane, (&x, &y)) in lanes.iter_mut().zip(a.iter().zip(b)) {
		let d = x - y;
		*lane += d * d;
	}
}

#[cfg(target_arch = "x86_64")]
mod x86 {
	use super::{add_tail, LANES};
	use std::arch::x86_64::*;

	/// SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
	#[target_feature(enable = "sse2")]
	pub(super) fn lane_sums_sse2(a: &[f32], b: &[f32]) -> [f32; LANES] {
		const REGISTERS: usize = LANES / 4;
		let (chunks_a, tail_a) = a.as_chunks::<LANES>();
		let (chunks_b, tail_b) = b.as_chunks::<LANES>();
		let mut sums = [_mm_setzero_ps(); REGISTERS];
		for (chunk_a, chunk_b) in chunks_a.iter().zip(chunks_b) {
			for (register, sum) in sums.iter_mut().enumerate() {
				// SAFETY: each chunk holds LANES floats and 4 * register + 4 <= LANES.
				let (x, y) = unsafe {
					(
						_mm_loadu_ps(chunk_a.as_ptr().add(4 * register)),
						_mm_loadu_ps(chunk_b.as_ptr().add(4 * register)),
					)
				};
				let d = _mm_sub_ps(x, y);
				*sum = _mm_add_ps(*sum, _mm_mul_ps(d, d));
			}
		}
		let mut lanes = [0f32; LANES];
		for (register, sum) in sums.iter().enumerate() {
			// SAFETY: 4 * register + 4 <= LANES floats of `lanes`.
			unsafe { _mm_storeu_ps(lanes.as_mut_ptr().add(4 * register), *sum) };
		}
		add_tail(&mut lanes, tail_a, tail_b);
		lanes
	}

	#[target_feature(enable = "avx2")]
	pub(super) fn lane_sums_avx2(a: &[f32], b: &[f32]) -> [f32; LANES] {
		const REGISTERS: usize = LANES / 8;
		let (chunks_a, tail_a) = a.as_chunks::<LANES>();
		let (chunks_b, tail_b) = b.as_chunks::<LANES>();
		let mut sums = [_mm256_setzero_ps(); REGISTERS];
		for (chunk_a, chunk_b) in chunks_a.iter().zip(chunks_b) {
			for (register, sum) in sums.iter_mut().enumerate() {
				// SAFETY: each chunk holds LANES floats and 8 * register + 8 <= LANES.
				let (x, y) = unsafe {
					(
						_mm256_loadu_ps(chunk_a.as_ptr().add(8 * register)),
						_mm256_loadu_ps(chunk_b.as_ptr().add(8 * register)),
					)
				};
				let d = _mm256_sub_ps(x, y);
				*sum = _mm256_add_ps(*sum, _mm256_mul_ps(d, d));
			}
		}
		let mut lanes = [0f32; LANES];
		for (register, sum) in sums.iter().enumerate() {
			// SAFETY: 8 * register + 8 <= LANES floats of `lanes`.
			unsafe { _mm256_storeu_ps(lanes.as_mut_ptr().add(8 * register), *sum) };
		}
		add_tail(&mut lanes, tail_a, tail_b);
		lanes
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use rand::{Rng, SeedableRng};
	use rand_chacha::ChaCha20Rng;

	#[test]
	fn every_variant_computes_the_reference_lanes_bit_for_bit() {
		let mut rng = ChaCha20Rng::seed_from_u64(9);
		for len in [0usize, 1, 7, 31, 32, 33, 1000, 1024] {
			let a: Vec<f32> = (0..len).map(|_| rng.gen_range(-3.0f32..3.0)).collect();
			let b: Vec<f32> = (0..len).map(|_| rng.gen_range(-3.0f32..3.0)).collect();
			let bits = |lanes: [f32; LANES]| lanes.map(f32::to_bits);
			let reference = bits(lane_sums_scalar(&a, &b));
			assert_eq!(bits(Kernels::portable().lane_sums(&a, &b)), reference, "len {len}");
			assert_eq!(bits(Kernels::detect().lane_sums(&a, &b)), reference, "len {len}");
		}
	}
}
