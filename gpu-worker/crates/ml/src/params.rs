//! Model parameters as plain Rust data: named f32 tensors in one flat buffer, in name order.
//!
//! This is the representation that is hashed, saved as safetensors, aggregated, compressed and
//! compared. Keeping it outside libtorch makes the hash and the aggregate independent of the
//! device and of libtorch's thread count.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::digest::{Digest, Hasher};
use crate::error::{read_file, write_file, Result, WorkerError};

/// Name and shape of one tensor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TensorSpec {
	pub name: String,
	pub shape: Vec<usize>,
}

impl TensorSpec {
	pub fn numel(&self) -> usize {
		self.shape.iter().product()
	}
}

/// The ordered list of tensors of a model (or of an optimizer state), with their offsets in
/// the flat buffer. Tensors are sorted by name, which is the canonical order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
	specs: Vec<TensorSpec>,
	offsets: Vec<usize>,
	total: usize,
}

impl Layout {
	/// Sorts the specs by name; duplicate names are an error.
	pub fn new(mut specs: Vec<TensorSpec>) -> Result<Self> {
		specs.sort_by(|a, b| a.name.cmp(&b.name));
		if let Some(pair) = specs.windows(2).find(|pair| pair[0].name == pair[1].name) {
			return Err(WorkerError::InvalidArgument(format!(
				"tensor name `{}` appears twice",
				pair[0].name
			)));
		}
		let mut offsets = Vec::with_capacity(specs.len());
		let mut total = 0usize;
		for spec in &specs {
			offsets.push(total);
			total = total.checked_add(spec.numel()).ok_or_else(|| {
				WorkerError::InvalidArgument("parameter count overflows usize".into())
			})?;
		}
		Ok(Layout { specs, offsets, total })
	}

	pub fn specs(&self) -> &[TensorSpec] {
		&self.specs
	}

	/// Number of f32 values in all tensors together.
	pub fn num_values(&self) -> usize {
		self.total
	}

	/// Range of tensor `index` in the flat buffer.
	pub fn range(&self, index: usize) -> std::ops::Range<usize> {
		let start = self.offsets[index];
		start..start + self.specs[index].numel()
	}

	/// Checks that `other` names exactly the same tensors with the same shapes.
	pub fn check_matches(&self, other: &Layout) -> Result<()> {
		let mut expected = self.specs.iter().peekable();
		let mut actual = other.specs.iter().peekable();
		loop {
			match (expected.peek(), actual.peek()) {
				(None, None) => return Ok(()),
				(Some(e), None) => return Err(WorkerError::MissingTensor(e.name.clone())),
				(None, Some(a)) => return Err(WorkerError::UnexpectedTensor(a.name.clone())),
				(Some(e), Some(a)) => match e.name.cmp(&a.name) {
					std::cmp::Ordering::Less => {
						return Err(WorkerError::MissingTensor(e.name.clone()))
					},
					std::cmp::Ordering::Greater => {
						return Err(WorkerError::UnexpectedTensor(a.name.clone()))
					},
					std::cmp::Ordering::Equal => {
						if e.shape != a.shape {
							return Err(WorkerError::ShapeMismatch {
								name: e.name.clone(),
								expected: e.shape.clone(),
								actual: a.shape.clone(),
							});
						}
						expected.next();
						actual.next();
					},
				},
			}
		}
	}
}

/// Named f32 tensors stored in one flat buffer following a [`Layout`].
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSet {
	layout: Layout,
	values: Vec<f32>,
}

/// Domain tag of the canonical encoding; bump it if the encoding ever changes.
const PARAMS_ENCODING_TAG: &[u8] = b"agora/params/v1";

impl ParamSet {
	pub fn new(layout: Layout, values: Vec<f32>) -> Result<Self> {
		if values.len() != layout.num_values() {
			return Err(WorkerError::InvalidArgument(format!(
				"{} values for a layout of {}",
				values.len(),
				layout.num_values()
			)));
		}
		Ok(ParamSet { layout, values })
	}

	pub fn zeros(layout: Layout) -> Self {
		let values = vec![0.0; layout.num_values()];
		ParamSet { layout, values }
	}

	pub fn layout(&self) -> &Layout {
		&self.layout
	}

	pub fn values(&self) -> &[f32] {
		&self.values
	}

	pub fn values_mut(&mut self) -> &mut [f32] {
		&mut self.values
	}

	pub fn into_values(self) -> Vec<f32> {
		self.values
	}

	/// Values of one tensor.
	pub fn tensor(&self, index: usize) -> &[f32] {
		&self.values[self.layout.range(index)]
	}

	/// blake2b-256 over the canonical encoding: tag, tensor count, then for each tensor in name
	/// order its name, rank, dims (u64) and values (f32), all little-endian. The same bits give
	/// the same hash on every machine.
	pub fn content_hash(&self) -> Digest {
		let mut hasher = Hasher::new();
		hasher.update(PARAMS_ENCODING_TAG);
		hasher.update_u32(self.layout.specs.len() as u32);
		for (index, spec) in self.layout.specs.iter().enumerate() {
			hasher.update_u32(spec.name.len() as u32);
			hasher.update(spec.name.as_bytes());
			hasher.update_u32(spec.shape.len() as u32);
			for &dim in &spec.shape {
				hasher.update_u64(dim as u64);
			}
			hasher.update_f32s(self.tensor(index));
		}
		hasher.finish()
	}

	/// Errors on the first NaN or infinity, naming the tensor.
	pub fn check_finite(&self) -> Result<()> {
		// Fast path: locate the culprit only on failure.
		if all_finite(&self.values) {
			return Ok(());
		}
		for (index, spec) in self.layout.specs.iter().enumerate() {
			if let Some((position, value)) =
				self.tensor(index).iter().enumerate().find(|(_, v)| !v.is_finite())
			{
				return Err(WorkerError::NonFinite {
					name: spec.name.clone(),
					index: position,
					value: *value,
				});
			}
		}
		Ok(())
	}

	/// Euclidean norm, accumulated in f64 in index order.
	pub fn l2_norm(&self) -> f64 {
		self.values.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt()
	}

	/// `self - other`, element-wise; the layouts must match.
	pub fn sub(&self, other: &ParamSet) -> Result<ParamSet> {
		self.layout.check_matches(&other.layout)?;
		let values = self.values.iter().zip(&other.values).map(|(a, b)| a - b).collect();
		Ok(ParamSet { layout: self.layout.clone(), values })
	}

	/// `self + other`, element-wise; the layouts must match.
	pub fn add(&self, other: &ParamSet) -> Result<ParamSet> {
		self.layout.check_matches(&other.layout)?;
		let values = self.values.iter().zip(&other.values).map(|(a, b)| a + b).collect();
		Ok(ParamSet { layout: self.layout.clone(), values })
	}

	/// Several sets in one, each tensor's name prefixed by its set's prefix: how a checkpoint
	/// keeps weights beside optimizer buffers, or a round's model its outer optimizer's state,
	/// in one file. Prefixes that make two names equal are an error.
	pub fn merge_prefixed(parts: &[(&str, &ParamSet)]) -> Result<ParamSet> {
		let mut named: Vec<(TensorSpec, &[f32])> = Vec::new();
		for (prefix, set) in parts {
			for (index, spec) in set.layout.specs.iter().enumerate() {
				let name = format!("{prefix}{}", spec.name);
				named.push((TensorSpec { name, shape: spec.shape.clone() }, set.tensor(index)));
			}
		}
		named.sort_by(|a, b| a.0.name.cmp(&b.0.name));
		let mut values = Vec::with_capacity(named.iter().map(|(_, data)| data.len()).sum());
		for (_, data) in &named {
			values.extend_from_slice(data);
		}
		ParamSet::new(Layout::new(named.into_iter().map(|(spec, _)| spec).collect())?, values)
	}

	/// The tensors whose names start with `prefix`, with the prefix removed (the inverse of
	/// [`Self::merge_prefixed`] for one part).
	pub fn strip_prefix(&self, prefix: &str) -> Result<ParamSet> {
		let mut specs = Vec::new();
		let mut values = Vec::new();
		for (index, spec) in self.layout.specs.iter().enumerate() {
			if let Some(name) = spec.name.strip_prefix(prefix) {
				specs.push(TensorSpec { name: name.to_string(), shape: spec.shape.clone() });
				values.extend_from_slice(self.tensor(index));
			}
		}
		ParamSet::new(Layout::new(specs)?, values)
	}

	/// The tensors whose names start with none of `prefixes`.
	pub fn without_prefixes(&self, prefixes: &[&str]) -> Result<ParamSet> {
		let mut specs = Vec::new();
		let mut values = Vec::new();
		for (index, spec) in self.layout.specs.iter().enumerate() {
			if !prefixes.iter().any(|prefix| spec.name.starts_with(prefix)) {
				specs.push(spec.clone());
				values.extend_from_slice(self.tensor(index));
			}
		}
		ParamSet::new(Layout::new(specs)?, values)
	}

	/// Serializes as safetensors (F32, little-endian) with string metadata.
	pub fn to_safetensors(&self, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
		let bytes: Vec<Vec<u8>> = (0..self.layout.specs.len())
			.map(|index| self.tensor(index).iter().flat_map(|v| v.to_le_bytes()).collect())
			.collect();
		let mut views = Vec::with_capacity(bytes.len());
		for (spec, data) in self.layout.specs.iter().zip(&bytes) {
			let view = TensorView::new(Dtype::F32, spec.shape.clone(), data)
				.map_err(|e| WorkerError::Safetensors(format!("{e:?}")))?;
			views.push((spec.name.as_str(), view));
		}
		let metadata: HashMap<String, String> = metadata.clone().into_iter().collect();
		safetensors::tensor::serialize(views, &Some(metadata))
			.map_err(|e| WorkerError::Safetensors(format!("{e:?}")))
	}

	/// Parses safetensors bytes: every tensor must be F32; returns the metadata too.
	pub fn from_safetensors(bytes: &[u8]) -> Result<(ParamSet, BTreeMap<String, String>)> {
		let tensors = SafeTensors::deserialize(bytes)
			.map_err(|e| WorkerError::Safetensors(format!("{e:?}")))?;
		let (_, header) = SafeTensors::read_metadata(bytes)
			.map_err(|e| WorkerError::Safetensors(format!("{e:?}")))?;
		let metadata: BTreeMap<String, String> =
			header.metadata().clone().unwrap_or_default().into_iter().collect();
		let mut entries = tensors.tensors();
		entries.sort_by(|a, b| a.0.cmp(&b.0));
		let specs = entries
			.iter()
			.map(|(name, view)| TensorSpec { name: name.clone(), shape: view.shape().to_vec() })
			.collect();
		let layout = Layout::new(specs)?;
		let mut values = Vec::with_capacity(layout.num_values());
		for (name, view) in &entries {
			if view.dtype() != Dtype::F32 {
				return Err(WorkerError::Safetensors(format!(
					"tensor `{name}` has dtype {:?}, expected F32",
					view.dtype()
				)));
			}
			values.extend(
				view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
			);
		}
		Ok((ParamSet::new(layout, values)?, metadata))
	}

	pub fn save(&self, path: &Path, metadata: &BTreeMap<String, String>) -> Result<()> {
		write_file(path, &self.to_safetensors(metadata)?)
	}

	pub fn load(path: &Path) -> Result<(ParamSet, BTreeMap<String, String>)> {
		Self::from_safetensors(&read_file(path)?)
	}

	/// Copies the variables of a VarStore (any device) into plain f32 buffers.
	pub fn from_var_store(vs: &VarStore) -> Result<ParamSet> {
		let variables = vs.variables();
		let mut named: Vec<(&String, &Tensor)> = variables.iter().collect();
		named.sort_by(|a, b| a.0.cmp(b.0));
		let specs = named
			.iter()
			.map(|(name, tensor)| TensorSpec {
				name: (*name).clone(),
				shape: tensor.size().iter().map(|&d| d as usize).collect(),
			})
			.collect();
		let layout = Layout::new(specs)?;
		let mut values = vec![0f32; layout.num_values()];
		for (index, (_, tensor)) in named.iter().enumerate() {
			let range = layout.range(index);
			let numel = range.len();
			let cpu = tensor
				.f_detach()?
				.f_to_kind(Kind::Float)?
				.f_to_device(Device::Cpu)?
				.f_contiguous()?;
			cpu.f_copy_data(&mut values[range], numel)?;
		}
		Ok(ParamSet { layout, values })
	}

	/// Overwrites the VarStore's variables with these values; the layouts must match.
	pub fn copy_into_var_store(&self, vs: &VarStore) -> Result<()> {
		let current = Self::layout_of_var_store(vs)?;
		current.check_matches(&self.layout)?;
		let mut variables = vs.variables();
		tch::no_grad(|| -> Result<()> {
			for (index, spec) in self.layout.specs.iter().enumerate() {
				let variable = variables
					.get_mut(&spec.name)
					.ok_or_else(|| WorkerError::MissingTensor(spec.name.clone()))?;
				let dims: Vec<i64> = spec.shape.iter().map(|&d| d as i64).collect();
				let source = Tensor::f_from_slice(self.tensor(index))?
					.f_view(dims.as_slice())?
					.f_to_device(variable.device())?;
				variable.f_copy_(&source)?;
			}
			Ok(())
		})
	}

	/// The layout of a VarStore's variables without copying their values.
	pub fn layout_of_var_store(vs: &VarStore) -> Result<Layout> {
		Layout::new(
			vs.variables()
				.iter()
				.map(|(name, tensor)| TensorSpec {
					name: name.clone(),
					shape: tensor.size().iter().map(|&d| d as usize).collect(),
				})
				.collect(),
		)
	}
}

/// Whether every value is finite: a branch-free scan per chunk, which vectorizes (inlined so
/// that it vectorizes as wide as its caller is compiled for).
#[inline(always)]
pub(crate) fn all_finite(values: &[f32]) -> bool {
	values.chunks(4096).all(|chunk| chunk.iter().fold(true, |ok, v| ok & v.is_finite()))
}

#[cfg(test)]
mod tests {
	use super::*;

	fn sample() -> ParamSet {
		let layout = Layout::new(vec![
			TensorSpec { name: "b".into(), shape: vec![2] },
			TensorSpec { name: "a".into(), shape: vec![2, 3] },
		])
		.unwrap();
		ParamSet::new(layout, (0..8).map(|i| i as f32 * 0.25).collect()).unwrap()
	}

	#[test]
	fn layout_is_sorted_and_rejects_duplicates() {
		let params = sample();
		assert_eq!(params.layout().specs()[0].name, "a");
		assert_eq!(params.layout().range(1), 6..8);
		let duplicate = Layout::new(vec![
			TensorSpec { name: "x".into(), shape: vec![1] },
			TensorSpec { name: "x".into(), shape: vec![2] },
		]);
		assert!(matches!(duplicate, Err(WorkerError::InvalidArgument(_))));
	}

	#[test]
	fn safetensors_round_trip_keeps_hash_and_metadata() {
		let params = sample();
		let metadata = BTreeMap::from([("agora.arch".to_string(), "test".to_string())]);
		let bytes = params.to_safetensors(&metadata).unwrap();
		let (back, meta) = ParamSet::from_safetensors(&bytes).unwrap();
		assert_eq!(back, params);
		assert_eq!(back.content_hash(), params.content_hash());
		assert_eq!(meta, metadata);
	}

	#[test]
	fn corrupt_safetensors_is_an_error() {
		let bytes = sample().to_safetensors(&BTreeMap::new()).unwrap();
		assert!(matches!(
			ParamSet::from_safetensors(&bytes[..bytes.len() - 3]),
			Err(WorkerError::Safetensors(_))
		));
		assert!(matches!(
			ParamSet::from_safetensors(b"not a safetensors file"),
			Err(WorkerError::Safetensors(_))
		));
	}

	#[test]
	fn hash_depends_on_values_names_and_shapes() {
		let params = sample();
		let mut changed = params.clone();
		changed.values_mut()[3] = f32::from_bits(changed.values()[3].to_bits() ^ 1);
		assert_ne!(params.content_hash(), changed.content_hash());
		let reshaped = ParamSet::new(
			Layout::new(vec![
				TensorSpec { name: "a".into(), shape: vec![3, 2] },
				TensorSpec { name: "b".into(), shape: vec![2] },
			])
			.unwrap(),
			params.values().to_vec(),
		)
		.unwrap();
		assert_ne!(params.content_hash(), reshaped.content_hash());
	}

	#[test]
	fn layout_mismatch_and_non_finite_are_errors() {
		let params = sample();
		let other = ParamSet::zeros(
			Layout::new(vec![TensorSpec { name: "a".into(), shape: vec![6] }]).unwrap(),
		);
		assert!(matches!(params.sub(&other), Err(WorkerError::ShapeMismatch { .. })));
		let mut bad = params.clone();
		bad.values_mut()[7] = f32::NAN;
		assert!(matches!(bad.check_finite(), Err(WorkerError::NonFinite { index: 1, .. })));
	}
}
