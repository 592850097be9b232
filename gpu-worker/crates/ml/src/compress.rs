//! Update compression: int8 quantization with a per-tensor scale, and top-k sparsification
//! (int8 values, varint-coded index gaps) with error feedback.
//!
//! Wire format (all little-endian): magic `AGCU`, version 1, method byte (0 = dense int8,
//! 1 = top-k), u32 tensor count, then per tensor in layout order:
//! dense: f32 scale, one i8 per value; top-k: u32 k, f32 scale, k LEB128 index gaps (first
//! index, then `index - previous - 1`), k i8 values. A value decodes as `q * scale`.
//! Names and shapes are not sent: the receiver knows the architecture's layout.

use serde::{Deserialize, Serialize};

use crate::error::{Result, WorkerError};
use crate::params::{Layout, ParamSet};

const MAGIC: &[u8; 4] = b"AGCU";
const VERSION: u8 = 1;

/// How updates are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Compression {
	/// Every value as int8 with one scale per tensor (4x smaller).
	Int8,
	/// The `fraction` largest-magnitude values of each tensor, int8-quantized; what is dropped
	/// or rounded away is carried to the next round (error feedback).
	TopK { fraction: f64 },
}

/// A worker-side compressor; keeps the error-feedback residual between rounds.
pub struct Compressor {
	method: Compression,
	residual: Option<ParamSet>,
}

impl Compressor {
	pub fn new(method: Compression) -> Result<Self> {
		if let Compression::TopK { fraction } = method {
			if !(fraction > 0.0 && fraction <= 1.0) {
				return Err(WorkerError::InvalidArgument(format!(
					"top-k fraction {fraction} must be in (0, 1]"
				)));
			}
		}
		Ok(Compressor { method, residual: None })
	}

	/// Encodes `delta` (plus the carried residual for top-k) and updates the residual.
	pub fn compress(&mut self, delta: &ParamSet) -> Result<Vec<u8>> {
		delta.check_finite()?;
		let corrected = match (&self.residual, self.method) {
			(Some(residual), Compression::TopK { .. }) => delta.add(residual)?,
			_ => delta.clone(),
		};
		let layout = corrected.layout().clone();
		let mut out = Vec::new();
		out.extend_from_slice(MAGIC);
		out.push(VERSION);
		out.push(match self.method {
			Compression::Int8 => 0,
			Compression::TopK { .. } => 1,
		});
		out.extend_from_slice(&(layout.specs().len() as u32).to_le_bytes());
		let mut decoded = ParamSet::zeros(layout.clone());
		for index in 0..layout.specs().len() {
			let values = corrected.tensor(index);
			let range = layout.range(index);
			let target = &mut decoded.values_mut()[range];
			match self.method {
				Compression::Int8 => {
					let scale = int8_scale(values);
					out.extend_from_slice(&scale.to_le_bytes());
					for (slot, &value) in target.iter_mut().zip(values) {
						let q = quantize(value, scale);
						out.push(q as u8);
						*slot = f32::from(q) * scale;
					}
				},
				Compression::TopK { fraction } => {
					let selected = top_k_indices(values, fraction);
					let kept: Vec<f32> = selected.iter().map(|&i| values[i as usize]).collect();
					let scale = int8_scale(&kept);
					out.extend_from_slice(&(selected.len() as u32).to_le_bytes());
					out.extend_from_slice(&scale.to_le_bytes());
					let mut previous: Option<u32> = None;
					for &i in &selected {
						let gap = previous.map_or(i, |p| i - p - 1);
						write_varint(&mut out, gap);
						previous = Some(i);
					}
					for (&i, &value) in selected.iter().zip(&kept) {
						let q = quantize(value, scale);
						out.push(q as u8);
						target[i as usize] = f32::from(q) * scale;
					}
				},
			}
		}
		if let Compression::TopK { .. } = self.method {
			self.residual = Some(corrected.sub(&decoded)?);
		}
		Ok(out)
	}
}

fn int8_scale(values: &[f32]) -> f32 {
	values.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0
}

fn quantize(value: f32, scale: f32) -> i8 {
	if scale == 0.0 {
		0
	} else {
		(value / scale).round().clamp(-127.0, 127.0) as i8
	}
}

/// Indices of the `ceil(fraction * n)` largest |values|, ascending; ties broken by index so
/// the choice is deterministic.
fn top_k_indices(values: &[f32], fraction: f64) -> Vec<u32> {
	let n = values.len();
	if n == 0 {
		return Vec::new();
	}
	let k = ((n as f64 * fraction).ceil() as usize).clamp(1, n);
	let mut order: Vec<u32> = (0..n as u32).collect();
	let by_magnitude = |a: &u32, b: &u32| {
		values[*b as usize].abs().total_cmp(&values[*a as usize].abs()).then(a.cmp(b))
	};
	if k < n {
		order.select_nth_unstable_by(k - 1, by_magnitude);
	}
	order.truncate(k);
	order.sort_unstable();
	order
}

fn write_varint(out: &mut Vec<u8>, mut value: u32) {
	while value >= 0x80 {
		out.push((value as u8 & 0x7f) | 0x80);
		value >>= 7;
	}
	out.push(value as u8);
}

/// Bounds-checked reader over the encoded bytes.
struct Reader<'a> {
	bytes: &'a [u8],
	position: usize,
}

impl<'a> Reader<'a> {
	fn take(&mut self, count: usize) -> Result<&'a [u8]> {
		let end = self
			.position
			.checked_add(count)
			.filter(|&end| end <= self.bytes.len())
			.ok_or_else(|| WorkerError::Compression("truncated update".into()))?;
		let slice = &self.bytes[self.position..end];
		self.position = end;
		Ok(slice)
	}

	fn u8(&mut self) -> Result<u8> {
		Ok(self.take(1)?[0])
	}

	fn u32(&mut self) -> Result<u32> {
		let b = self.take(4)?;
		Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
	}

	fn scale(&mut self) -> Result<f32> {
		let b = self.take(4)?;
		let scale = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
		if !(scale.is_finite() && scale >= 0.0) {
			return Err(WorkerError::Compression(format!("invalid scale {scale}")));
		}
		Ok(scale)
	}

	fn varint(&mut self) -> Result<u32> {
		let mut value = 0u64;
		for shift in (0..35).step_by(7) {
			let byte = self.u8()?;
			value |= u64::from(byte & 0x7f) << shift;
			if byte & 0x80 == 0 {
				return u32::try_from(value)
					.map_err(|_| WorkerError::Compression("varint overflows u32".into()));
			}
		}
		Err(WorkerError::Compression("varint longer than 5 bytes".into()))
	}
}

/// Decodes an update for `layout`; any inconsistency is an error.
pub fn decompress(layout: &Layout, bytes: &[u8]) -> Result<ParamSet> {
	let mut reader = Reader { bytes, position: 0 };
	if reader.take(4)? != MAGIC {
		return Err(WorkerError::Compression("bad magic".into()));
	}
	let version = reader.u8()?;
	if version != VERSION {
		return Err(WorkerError::Compression(format!("unsupported version {version}")));
	}
	let method = reader.u8()?;
	let count = reader.u32()? as usize;
	if count != layout.specs().len() {
		return Err(WorkerError::Compression(format!(
			"{count} tensors, the architecture has {}",
			layout.specs().len()
		)));
	}
	let mut out = ParamSet::zeros(layout.clone());
	for index in 0..count {
		let range = layout.range(index);
		let numel = range.len();
		let target = &mut out.values_mut()[range];
		match method {
			0 => {
				let scale = reader.scale()?;
				for (slot, &byte) in target.iter_mut().zip(reader.take(numel)?) {
					*slot = f32::from(byte as i8) * scale;
				}
			},
			1 => {
				let k = reader.u32()? as usize;
				if k > numel {
					return Err(WorkerError::Compression(format!(
						"{k} values for a tensor of {numel}"
					)));
				}
				let scale = reader.scale()?;
				let mut indices = Vec::with_capacity(k);
				let mut next = 0u64;
				for _ in 0..k {
					let position = next + u64::from(reader.varint()?);
					if position >= numel as u64 {
						return Err(WorkerError::Compression(format!(
							"index {position} out of a tensor of {numel}"
						)));
					}
					indices.push(position as usize);
					next = position + 1;
				}
				for (&i, &byte) in indices.iter().zip(reader.take(k)?) {
					target[i] = f32::from(byte as i8) * scale;
				}
			},
			other => {
				return Err(WorkerError::Compression(format!("unknown method {other}")));
			},
		}
	}
	if reader.position != bytes.len() {
		return Err(WorkerError::Compression(format!(
			"{} trailing bytes",
			bytes.len() - reader.position
		)));
	}
	Ok(out)
}

/// Uncompressed size over compressed size (f32 values vs encoded bytes).
pub fn compression_ratio(layout: &Layout, encoded: &[u8]) -> f64 {
	(layout.num_values() * 4) as f64 / encoded.len().max(1) as f64
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::params::TensorSpec;
	use rand::{Rng, SeedableRng};
	use rand_chacha::ChaCha20Rng;

	fn delta(seed: u64) -> ParamSet {
		let layout = Layout::new(vec![
			TensorSpec { name: "a".into(), shape: vec![100, 50] },
			TensorSpec { name: "b".into(), shape: vec![7] },
		])
		.unwrap();
		let mut rng = ChaCha20Rng::seed_from_u64(seed);
		let values =
			(0..layout.num_values()).map(|_| rng.gen_range(-1.0f32..1.0).powi(3)).collect();
		ParamSet::new(layout, values).unwrap()
	}

	#[test]
	fn int8_round_trip_is_close() {
		let d = delta(1);
		let bytes = Compressor::new(Compression::Int8).unwrap().compress(&d).unwrap();
		let back = decompress(d.layout(), &bytes).unwrap();
		let max_error =
			d.values().iter().zip(back.values()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
		assert!(max_error <= 1.0 / 254.0 + 1e-6, "{max_error}");
		assert!(compression_ratio(d.layout(), &bytes) > 3.9);
	}

	#[test]
	fn top_k_keeps_the_largest_values_and_error_feedback_accumulates() {
		let d = delta(2);
		let mut compressor = Compressor::new(Compression::TopK { fraction: 0.01 }).unwrap();
		let bytes = compressor.compress(&d).unwrap();
		assert!(compression_ratio(d.layout(), &bytes) > 100.0);
		let back = decompress(d.layout(), &bytes).unwrap();
		// Tensor "a" has 5000 values: exactly its 50 largest magnitudes are sent.
		let original = d.tensor(0);
		let mut by_magnitude: Vec<usize> = (0..original.len()).collect();
		by_magnitude.sort_by(|&a, &b| original[b].abs().total_cmp(&original[a].abs()));
		let top: std::collections::HashSet<usize> = by_magnitude[..50].iter().copied().collect();
		let sent_indices: Vec<usize> =
			(0..original.len()).filter(|&i| back.tensor(0)[i] != 0.0).collect();
		assert_eq!(sent_indices.len(), 50);
		assert!(sent_indices.iter().all(|i| top.contains(i)));
		// Sum over rounds of decoded updates tracks the sum of true updates (error feedback).
		let mut sent = decompress(d.layout(), &bytes).unwrap();
		let mut truth = d.clone();
		for round in 3..40 {
			let next = delta(round);
			let encoded = compressor.compress(&next).unwrap();
			sent = sent.add(&decompress(d.layout(), &encoded).unwrap()).unwrap();
			truth = truth.add(&next).unwrap();
		}
		let residual = truth.sub(&sent).unwrap().l2_norm();
		assert!(residual < truth.l2_norm(), "{residual} vs {}", truth.l2_norm());
	}

	#[test]
	fn malformed_encodings_are_errors() {
		let d = delta(3);
		let bytes =
			Compressor::new(Compression::TopK { fraction: 0.05 }).unwrap().compress(&d).unwrap();
		assert!(decompress(d.layout(), &bytes[..bytes.len() - 1]).is_err());
		let mut extra = bytes.clone();
		extra.push(0);
		assert!(decompress(d.layout(), &extra).is_err());
		let mut bad_magic = bytes.clone();
		bad_magic[0] = b'X';
		assert!(decompress(d.layout(), &bad_magic).is_err());
		// Index past the end of the first tensor: k = 1, gap = 5000.
		let mut far = Vec::from(&bytes[..10]);
		far.extend_from_slice(&1u32.to_le_bytes());
		far.extend_from_slice(&1f32.to_le_bytes());
		write_varint(&mut far, 5000);
		far.push(1);
		assert!(matches!(decompress(d.layout(), &far), Err(WorkerError::Compression(_))));
		let other_layout =
			Layout::new(vec![TensorSpec { name: "a".into(), shape: vec![3] }]).unwrap();
		assert!(decompress(&other_layout, &bytes).is_err());
		let mut nan = d.clone();
		nan.values_mut()[0] = f32::NAN;
		assert!(Compressor::new(Compression::Int8).unwrap().compress(&nan).is_err());
		assert!(Compressor::new(Compression::TopK { fraction: 0.0 }).is_err());
	}
}
