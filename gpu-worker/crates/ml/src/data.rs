//! Datasets, shard files with a content commitment, federated splits and the deterministic
//! batch schedule.
//!
//! A dataset is held as bytes: images are `u8` pixels times a per-dataset `pixel_scale`,
//! text is byte tokens cut into windows of `context + 1` tokens. On disk a dataset is a set of
//! shard files plus a `manifest.json`; the dataset's commitment is the Merkle root over the
//! shards' blake2b-256 hashes (format in docs/worker-ml-core.md).

use std::io::Read;
use std::path::{Path, PathBuf};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::digest::{Digest, Hasher};
use crate::error::{read_file, write_file, Result, WorkerError};
use crate::models::Architecture;
use agora_core::merkle::merkle_root;

/// What one sample is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
	/// A labelled image of `channels x height x width` u8 pixels.
	Image { channels: usize, height: usize, width: usize },
	/// A window of `length` tokens (inputs are the first `length - 1`, targets the last
	/// `length - 1`), every token below `vocab`: one byte each for a vocabulary of up to 256
	/// tokens (bytes, characters), else two (little-endian u16, up to 65,536: a BPE
	/// tokenizer's).
	Tokens { length: usize, vocab: usize },
}

/// The largest vocabulary a token dataset can hold (two-byte tokens).
pub const MAX_VOCAB: usize = 1 << 16;

/// Bytes per token of a `vocab`-token vocabulary: 1 up to 256 tokens, else 2.
pub fn token_bytes(vocab: usize) -> usize {
	if vocab <= 256 {
		1
	} else {
		2
	}
}

/// The tokens stored in `bytes` for a `vocab`-token vocabulary (see [`SampleKind::Tokens`]);
/// a trailing odd byte of two-byte tokens is ignored.
pub fn decode_tokens(bytes: &[u8], vocab: usize) -> impl Iterator<Item = usize> + '_ {
	let width = token_bytes(vocab);
	bytes.chunks_exact(width).map(move |token| match token {
		[byte] => usize::from(*byte),
		[low, high, ..] => usize::from(u16::from_le_bytes([*low, *high])),
		[] => 0,
	})
}

/// `tokens` stored for a `vocab`-token vocabulary; errors on a token outside it.
pub fn encode_tokens(tokens: &[u32], vocab: usize) -> Result<Vec<u8>> {
	if vocab > MAX_VOCAB {
		return Err(WorkerError::Data(format!("vocabulary of {vocab} above {MAX_VOCAB}")));
	}
	let mut bytes = Vec::with_capacity(tokens.len() * token_bytes(vocab));
	for &token in tokens {
		if token as usize >= vocab {
			return Err(WorkerError::Data(format!(
				"token {token} is not below the vocabulary of {vocab}"
			)));
		}
		match token_bytes(vocab) {
			1 => bytes.push(token as u8),
			_ => bytes.extend_from_slice(&(token as u16).to_le_bytes()),
		}
	}
	Ok(bytes)
}

impl SampleKind {
	/// Bytes per sample.
	pub fn sample_len(&self) -> usize {
		match *self {
			SampleKind::Image { channels, height, width } => channels * height * width,
			SampleKind::Tokens { length, vocab } => length.saturating_mul(token_bytes(vocab)),
		}
	}

	fn has_labels(&self) -> bool {
		matches!(self, SampleKind::Image { .. })
	}
}

/// An in-memory dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
	kind: SampleKind,
	num_classes: usize,
	pixel_scale: f32,
	features: Vec<u8>,
	labels: Vec<u8>,
}

/// A batch on a device, ready for the network.
pub enum Batch {
	Classification { inputs: Tensor, labels: Tensor },
	Language { inputs: Tensor, targets: Tensor },
}

/// Moves a batch built in host memory to `device`. For a GPU, through pinned (page-locked)
/// memory and an asynchronous copy: the copy runs on the DMA engine while the host builds the
/// next batch, and the training step that uses the batch is queued behind it on the same stream.
fn to_device(host: Tensor, device: Device) -> Result<Tensor> {
	if !device.is_cuda() {
		return Ok(host);
	}
	let kind = host.kind();
	Ok(host.f_pin_memory(device)?.f_to_device_(device, kind, true, false)?)
}

impl Dataset {
	/// Builds a dataset and checks its internal consistency.
	pub fn new(
		kind: SampleKind,
		num_classes: usize,
		pixel_scale: f32,
		features: Vec<u8>,
		labels: Vec<u8>,
	) -> Result<Self> {
		let sample_len = kind.sample_len();
		if sample_len == 0 {
			return Err(WorkerError::Data("samples must not be empty".into()));
		}
		if !features.len().is_multiple_of(sample_len) {
			return Err(WorkerError::Data(format!(
				"{} feature bytes are not a whole number of {sample_len}-byte samples",
				features.len()
			)));
		}
		let count = features.len() / sample_len;
		match kind {
			SampleKind::Image { .. } => {
				if labels.len() != count {
					return Err(WorkerError::Data(format!(
						"{count} images but {} labels",
						labels.len()
					)));
				}
				if let Some(label) = labels.iter().find(|&&l| usize::from(l) >= num_classes) {
					return Err(WorkerError::Data(format!(
						"label {label} is not below the {num_classes} classes"
					)));
				}
				if !(pixel_scale.is_finite() && pixel_scale > 0.0) {
					return Err(WorkerError::Data(format!(
						"pixel scale {pixel_scale} must be positive"
					)));
				}
			},
			SampleKind::Tokens { length, vocab } => {
				if !labels.is_empty() {
					return Err(WorkerError::Data("token datasets carry no labels".into()));
				}
				if length < 2 {
					return Err(WorkerError::Data("token windows need at least 2 tokens".into()));
				}
				if vocab > MAX_VOCAB {
					return Err(WorkerError::Data(format!(
						"vocabulary of {vocab} above {MAX_VOCAB}"
					)));
				}
				if let Some(token) = decode_tokens(&features, vocab).find(|&t| t >= vocab) {
					return Err(WorkerError::Data(format!(
						"token {token} is not below the vocabulary of {vocab}"
					)));
				}
			},
		}
		Ok(Dataset { kind, num_classes, pixel_scale, features, labels })
	}

	pub fn kind(&self) -> SampleKind {
		self.kind
	}

	pub fn num_classes(&self) -> usize {
		self.num_classes
	}

	pub fn len(&self) -> usize {
		self.features.len() / self.kind.sample_len()
	}

	pub fn is_empty(&self) -> bool {
		self.len() == 0
	}

	/// Labels of an image dataset (empty for text).
	pub fn labels(&self) -> &[u8] {
		&self.labels
	}

	/// The same samples with other labels (image datasets only).
	pub fn with_labels(&self, labels: Vec<u8>) -> Result<Dataset> {
		Dataset::new(self.kind, self.num_classes, self.pixel_scale, self.features.clone(), labels)
	}

	/// Samples `indices` in that order, as a new dataset.
	pub fn subset(&self, indices: &[u32]) -> Result<Dataset> {
		let sample_len = self.kind.sample_len();
		let mut features = Vec::with_capacity(indices.len() * sample_len);
		let mut labels = Vec::with_capacity(if self.kind.has_labels() { indices.len() } else { 0 });
		for &index in indices {
			let index = self.check_index(index)?;
			features.extend_from_slice(&self.features[index * sample_len..][..sample_len]);
			if self.kind.has_labels() {
				labels.push(self.labels[index]);
			}
		}
		Dataset::new(self.kind, self.num_classes, self.pixel_scale, features, labels)
	}

	/// Concatenation of datasets of the same kind.
	pub fn concat(parts: &[Dataset]) -> Result<Dataset> {
		let first =
			parts.first().ok_or_else(|| WorkerError::Data("nothing to concatenate".into()))?;
		let mut features = Vec::new();
		let mut labels = Vec::new();
		for part in parts {
			if part.kind != first.kind
				|| part.num_classes != first.num_classes
				|| part.pixel_scale != first.pixel_scale
			{
				return Err(WorkerError::Data(
					"cannot concatenate datasets of different kinds".into(),
				));
			}
			features.extend_from_slice(&part.features);
			labels.extend_from_slice(&part.labels);
		}
		Dataset::new(first.kind, first.num_classes, first.pixel_scale, features, labels)
	}

	fn check_index(&self, index: u32) -> Result<usize> {
		let index = index as usize;
		if index >= self.len() {
			return Err(WorkerError::Data(format!("sample index {index} out of {}", self.len())));
		}
		Ok(index)
	}

	/// Builds the tensors of the samples at `indices` on `device`.
	pub fn batch(&self, indices: &[u32], device: Device) -> Result<Batch> {
		if indices.is_empty() {
			return Err(WorkerError::Data("empty batch".into()));
		}
		let sample_len = self.kind.sample_len();
		let mut bytes = Vec::with_capacity(indices.len() * sample_len);
		for &index in indices {
			let index = self.check_index(index)?;
			bytes.extend_from_slice(&self.features[index * sample_len..][..sample_len]);
		}
		let count = indices.len() as i64;
		match self.kind {
			SampleKind::Image { channels, height, width } => {
				let pixels: Vec<f32> =
					bytes.iter().map(|&b| f32::from(b) * self.pixel_scale).collect();
				let inputs = to_device(
					Tensor::f_from_slice(&pixels)?.f_view([
						count,
						channels as i64,
						height as i64,
						width as i64,
					])?,
					device,
				)?;
				let labels: Vec<i64> =
					indices.iter().map(|&i| i64::from(self.labels[i as usize])).collect();
				let labels = to_device(Tensor::f_from_slice(&labels)?, device)?;
				Ok(Batch::Classification { inputs, labels })
			},
			SampleKind::Tokens { length, vocab } => {
				let tokens: Vec<i64> = decode_tokens(&bytes, vocab).map(|t| t as i64).collect();
				let tokens = to_device(
					Tensor::f_from_slice(&tokens)?.f_view([count, length as i64])?,
					device,
				)?;
				let time = length as i64 - 1;
				Ok(Batch::Language {
					inputs: tokens.f_narrow(1, 0, time)?,
					targets: tokens.f_narrow(1, 1, time)?,
				})
			},
		}
	}

	/// Errors unless `arch` can consume this dataset's samples.
	pub fn check_compatible(&self, arch: &Architecture) -> Result<()> {
		let ok = match (arch, self.kind) {
			(Architecture::Mlp { inputs, classes, .. }, SampleKind::Image { .. }) => {
				*inputs == self.kind.sample_len() && *classes >= self.num_classes
			},
			(
				Architecture::Cnn { channels, side, classes, .. },
				SampleKind::Image { channels: c, height, width },
			) => *channels == c && *side == height && *side == width && *classes >= self.num_classes,
			(arch, SampleKind::Tokens { length, vocab: v }) => arch
				.language_shape()
				.is_some_and(|(vocab, context)| length <= context + 1 && v <= vocab),
			_ => false,
		};
		if ok {
			Ok(())
		} else {
			Err(WorkerError::Data(format!(
				"architecture {arch} cannot consume samples of kind {:?} with {} classes",
				self.kind, self.num_classes
			)))
		}
	}

	/// Encodes the dataset as one shard file (see [`decode_shard`]).
	pub fn encode_shard(&self) -> Result<Vec<u8>> {
		let header = serde_json::to_vec(&ShardHeader {
			version: SHARD_VERSION,
			kind: self.kind,
			num_samples: self.len() as u64,
			num_classes: self.num_classes,
			pixel_scale: self.pixel_scale,
		})?;
		let mut bytes =
			Vec::with_capacity(12 + header.len() + self.features.len() + self.labels.len());
		bytes.extend_from_slice(SHARD_MAGIC);
		bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
		bytes.extend_from_slice(&header);
		bytes.extend_from_slice(&self.features);
		bytes.extend_from_slice(&self.labels);
		Ok(bytes)
	}
}

const SHARD_MAGIC: &[u8; 8] = b"AGSHARD\x01";
const SHARD_VERSION: u32 = 1;
/// Refuse absurd headers before allocating for them.
const MAX_SHARD_HEADER: usize = 1 << 16;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardHeader {
	version: u32,
	kind: SampleKind,
	num_samples: u64,
	num_classes: usize,
	pixel_scale: f32,
}

/// Parses a shard file: magic, u32 LE header length, JSON header, feature bytes, label bytes.
/// The file must be exactly as long as the header says.
pub fn decode_shard(bytes: &[u8]) -> Result<Dataset> {
	let malformed = |reason: &str| WorkerError::Data(format!("malformed shard: {reason}"));
	if bytes.len() < 12 || &bytes[..8] != SHARD_MAGIC {
		return Err(malformed("bad magic"));
	}
	let header_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
	if header_len > MAX_SHARD_HEADER || bytes.len() < 12 + header_len {
		return Err(malformed("bad header length"));
	}
	let header: ShardHeader = serde_json::from_slice(&bytes[12..12 + header_len])
		.map_err(|e| malformed(&format!("header: {e}")))?;
	if header.version != SHARD_VERSION {
		return Err(malformed(&format!("unsupported version {}", header.version)));
	}
	let count = usize::try_from(header.num_samples).map_err(|_| malformed("too many samples"))?;
	let feature_len =
		count.checked_mul(header.kind.sample_len()).ok_or_else(|| malformed("size overflow"))?;
	let label_len = if header.kind.has_labels() { count } else { 0 };
	let body = &bytes[12 + header_len..];
	if body.len() != feature_len + label_len {
		return Err(malformed(&format!(
			"body is {} bytes, header announces {}",
			body.len(),
			feature_len + label_len
		)));
	}
	Dataset::new(
		header.kind,
		header.num_classes,
		header.pixel_scale,
		body[..feature_len].to_vec(),
		body[feature_len..].to_vec(),
	)
}

/// One shard as listed in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
	/// File name, relative to the manifest's directory.
	pub file: String,
	/// blake2b-256 of the whole shard file.
	pub hash: Digest,
	pub num_samples: u64,
}

/// A sharded dataset's description and commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
	pub name: String,
	pub shards: Vec<ShardEntry>,
	/// Merkle root over the shard hashes, in manifest order.
	pub root: Digest,
}

pub const MANIFEST_FILE: &str = "manifest.json";

/// Writes `dataset` as shards of at most `shard_size` samples into `dir`, plus the manifest.
pub fn write_sharded(
	dataset: &Dataset,
	dir: &Path,
	name: &str,
	shard_size: usize,
) -> Result<Manifest> {
	if shard_size == 0 || dataset.is_empty() {
		return Err(WorkerError::Data("need a positive shard size and at least one sample".into()));
	}
	let mut writer = ShardWriter::new(dir, name);
	let all: Vec<u32> = (0..dataset.len() as u32).collect();
	for chunk in all.chunks(shard_size) {
		writer.push(&dataset.subset(chunk)?)?;
	}
	writer.finish()
}

/// Writes a dataset shard by shard, then its manifest: a dataset produced as a stream (a text
/// corpus being tokenized) is never held whole in memory.
pub struct ShardWriter {
	dir: PathBuf,
	name: String,
	shards: Vec<ShardEntry>,
}

impl ShardWriter {
	/// A writer of the dataset `name` into `dir` (created with the first shard).
	pub fn new(dir: &Path, name: &str) -> Self {
		ShardWriter { dir: dir.to_path_buf(), name: name.to_string(), shards: Vec::new() }
	}

	/// Writes `shard` as the next shard file.
	pub fn push(&mut self, shard: &Dataset) -> Result<()> {
		let bytes = shard.encode_shard()?;
		let file = format!("shard-{:05}.agshard", self.shards.len());
		write_file(&self.dir.join(&file), &bytes)?;
		self.shards.push(ShardEntry {
			file,
			hash: Digest::of(&[&bytes]),
			num_samples: shard.len() as u64,
		});
		Ok(())
	}

	/// Writes the manifest (the Merkle root over the shards' hashes commits to them all).
	pub fn finish(self) -> Result<Manifest> {
		if self.shards.is_empty() {
			return Err(WorkerError::Data(format!("dataset {} has no shard", self.name)));
		}
		let root = merkle_root(&self.shards.iter().map(|s| s.hash).collect::<Vec<_>>())?;
		let manifest = Manifest { name: self.name, shards: self.shards, root };
		write_file(
			&self.dir.join(MANIFEST_FILE),
			serde_json::to_string_pretty(&manifest)?.as_bytes(),
		)?;
		Ok(manifest)
	}
}

/// Loads a sharded dataset and checks its commitment: the manifest's root must follow from
/// its shard hashes (and equal `expected_root` when given), and every shard file must hash to
/// its listed hash and hold the listed number of samples.
pub fn load_sharded(
	manifest_path: &Path,
	expected_root: Option<&Digest>,
) -> Result<(Dataset, Manifest)> {
	let manifest: Manifest = serde_json::from_slice(&read_file(manifest_path)?)?;
	let computed = merkle_root(&manifest.shards.iter().map(|s| s.hash).collect::<Vec<_>>())?;
	if computed != manifest.root {
		return Err(WorkerError::HashMismatch {
			what: format!("{} (root over its shards)", manifest_path.display()),
			expected: manifest.root.to_hex(),
			actual: computed.to_hex(),
		});
	}
	if let Some(expected) = expected_root {
		if *expected != manifest.root {
			return Err(WorkerError::HashMismatch {
				what: format!("{} (dataset commitment)", manifest_path.display()),
				expected: expected.to_hex(),
				actual: manifest.root.to_hex(),
			});
		}
	}
	let dir = manifest_path.parent().map(Path::to_path_buf).unwrap_or_default();
	let mut parts = Vec::with_capacity(manifest.shards.len());
	for shard in &manifest.shards {
		let path = shard_path(&dir, &shard.file)?;
		let bytes = read_file(&path)?;
		let actual = Digest::of(&[&bytes]);
		if actual != shard.hash {
			return Err(WorkerError::HashMismatch {
				what: format!("shard {}", path.display()),
				expected: shard.hash.to_hex(),
				actual: actual.to_hex(),
			});
		}
		let part = decode_shard(&bytes)?;
		if part.len() as u64 != shard.num_samples {
			return Err(WorkerError::Data(format!(
				"shard {} holds {} samples, the manifest says {}",
				path.display(),
				part.len(),
				shard.num_samples
			)));
		}
		parts.push(part);
	}
	Ok((Dataset::concat(&parts)?, manifest))
}

/// Shard files must sit next to the manifest: no directories, no `..`.
fn shard_path(dir: &Path, file: &str) -> Result<PathBuf> {
	if file.is_empty() || file.contains(['/', '\\']) || file == "." || file == ".." {
		return Err(WorkerError::Data(format!("shard file name `{file}` is not a plain name")));
	}
	Ok(dir.join(file))
}

/// The scikit-learn copy of the UCI optical digits (1797 8x8 images, pixels 0..16) carried in
/// the repository: in `$AGORA_DATA_DIR` where that is set (an installed binary, such as the
/// container image's, has no source tree), else in the source tree it was built from.
pub fn digits_csv_path() -> PathBuf {
	std::env::var_os("AGORA_DATA_DIR")
		.map(PathBuf::from)
		.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data"))
		.join("digits.csv.gz")
}

/// Genesis from the King James Bible (public domain), carried in the repository.
pub fn genesis_text_path() -> PathBuf {
	Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/genesis-kjv.txt")
}

/// Parses the digits CSV (gzip): 64 pixel values then the label on each line.
pub fn load_digits(path: &Path) -> Result<Dataset> {
	let compressed = read_file(path)?;
	let mut text = String::new();
	flate2::read::GzDecoder::new(compressed.as_slice())
		.read_to_string(&mut text)
		.map_err(|e| WorkerError::io(path, e))?;
	let mut features = Vec::new();
	let mut labels = Vec::new();
	for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
		let values: Vec<u8> = line
			.split(',')
			.map(|v| v.trim().parse::<f64>().ok().filter(|x| (0.0..=16.0).contains(x)))
			.map(|v| v.map(|x| x as u8))
			.collect::<Option<_>>()
			.ok_or_else(|| WorkerError::Data(format!("digits line {}: bad value", number + 1)))?;
		if values.len() != 65 {
			return Err(WorkerError::Data(format!(
				"digits line {}: {} values, expected 65",
				number + 1,
				values.len()
			)));
		}
		features.extend_from_slice(&values[..64]);
		labels.push(values[64]);
	}
	Dataset::new(
		SampleKind::Image { channels: 1, height: 8, width: 8 },
		10,
		1.0 / 16.0,
		features,
		labels,
	)
}

/// Cuts ASCII text into non-overlapping windows of `context + 1` byte tokens (vocabulary 128).
pub fn text_dataset(text: &str, context: usize) -> Result<Dataset> {
	if let Some(c) = text.chars().find(|c| !c.is_ascii()) {
		return Err(WorkerError::Data(format!("non-ASCII character {c:?} in text")));
	}
	let length = context + 1;
	let usable = text.len() / length * length;
	Dataset::new(
		SampleKind::Tokens { length, vocab: 128 },
		0,
		1.0,
		text.as_bytes()[..usable].to_vec(),
		Vec::new(),
	)
}

/// Synthetic labelled images for scale tests: each class has a random prototype image and a
/// sample is its prototype plus uniform noise of `noise` (0..255), clamped to u8. Fully
/// determined by `seed`.
pub fn synthetic_images(
	count: usize,
	classes: usize,
	channels: usize,
	side: usize,
	noise: u8,
	seed: u64,
) -> Result<Dataset> {
	if classes == 0 || classes > 256 {
		return Err(WorkerError::Data("1 to 256 classes".into()));
	}
	let sample_len = channels * side * side;
	let mut rng = ChaCha20Rng::seed_from_u64(seed);
	let prototypes: Vec<u8> = (0..classes * sample_len).map(|_| rng.gen()).collect();
	let mut features = Vec::with_capacity(count * sample_len);
	let mut labels = Vec::with_capacity(count);
	for _ in 0..count {
		let label = rng.gen_range(0..classes);
		labels.push(label as u8);
		for &p in &prototypes[label * sample_len..][..sample_len] {
			let jitter = i32::from(rng.gen_range(0..=noise)) - i32::from(noise / 2);
			features.push((i32::from(p) + jitter).clamp(0, 255) as u8);
		}
	}
	Dataset::new(
		SampleKind::Image { channels, height: side, width: side },
		classes,
		1.0 / 255.0,
		features,
		labels,
	)
}

/// A seeded permutation of `0..len`.
pub fn permutation(len: usize, seed: u64) -> Vec<u32> {
	let mut rng = ChaCha20Rng::seed_from_u64(seed);
	let mut order: Vec<u32> = (0..len as u32).collect();
	shuffle(&mut order, &mut rng);
	order
}

/// Fisher-Yates with u32 draws, so the order is the same on 32- and 64-bit machines.
fn shuffle(values: &mut [u32], rng: &mut impl RngCore) {
	for i in (1..values.len()).rev() {
		let j = rng.gen_range(0..=i as u32) as usize;
		values.swap(i, j);
	}
}

/// Seeded split into (train, test) with `test_count` test samples.
pub fn train_test_split(
	dataset: &Dataset,
	test_count: usize,
	seed: u64,
) -> Result<(Dataset, Dataset)> {
	if test_count >= dataset.len() {
		return Err(WorkerError::Data("test split would leave no training data".into()));
	}
	let order = permutation(dataset.len(), seed);
	let (test, train) = order.split_at(test_count);
	Ok((dataset.subset(train)?, dataset.subset(test)?))
}

/// IID split: a seeded shuffle dealt round-robin to `workers`.
pub fn split_iid(dataset: &Dataset, workers: usize, seed: u64) -> Result<Vec<Dataset>> {
	check_split(dataset, workers)?;
	let order = permutation(dataset.len(), seed);
	(0..workers)
		.map(|w| {
			let mine: Vec<u32> = order.iter().skip(w).step_by(workers).copied().collect();
			dataset.subset(&mine)
		})
		.collect()
}

/// Label-skew (non-IID) split: for every class, the class's samples are divided among the
/// workers in proportions drawn from a symmetric Dirichlet(`alpha`); small `alpha` gives each
/// worker a few dominant classes. Errors if a worker ends up with no sample.
pub fn split_label_skew(
	dataset: &Dataset,
	workers: usize,
	alpha: f64,
	seed: u64,
) -> Result<Vec<Dataset>> {
	check_split(dataset, workers)?;
	if !dataset.kind.has_labels() {
		return Err(WorkerError::Data("label skew needs a labelled dataset".into()));
	}
	let gamma = Gamma::new(alpha, 1.0)
		.map_err(|e| WorkerError::InvalidArgument(format!("Dirichlet alpha {alpha}: {e}")))?;
	let mut rng = ChaCha20Rng::seed_from_u64(seed);
	let mut assigned: Vec<Vec<u32>> = vec![Vec::new(); workers];
	for class in 0..dataset.num_classes {
		let mut members: Vec<u32> = (0..dataset.len() as u32)
			.filter(|&i| usize::from(dataset.labels[i as usize]) == class)
			.collect();
		shuffle(&mut members, &mut rng);
		let draws: Vec<f64> = (0..workers).map(|_| gamma.sample(&mut rng)).collect();
		let total: f64 = draws.iter().sum();
		let mut start = 0usize;
		let mut cumulative = 0.0;
		for (worker, draw) in draws.iter().enumerate() {
			cumulative += draw / total;
			let end = if worker + 1 == workers {
				members.len()
			} else {
				((cumulative * members.len() as f64).round() as usize).min(members.len())
			};
			assigned[worker].extend_from_slice(&members[start..end.max(start)]);
			start = end.max(start);
		}
	}
	assigned
        .into_iter()
        .enumerate()
        .map(|(worker, mut indices)| {
            if indices.is_empty() {
                return Err(WorkerError::Data(format!(
                    "label-skew split left worker {worker} without data; raise alpha or use fewer workers"
                )));
            }
            shuffle(&mut indices, &mut rng);
            dataset.subset(&indices)
        })
        .collect()
}

fn check_split(dataset: &Dataset, workers: usize) -> Result<()> {
	if workers == 0 || workers > dataset.len() {
		return Err(WorkerError::Data(format!(
			"cannot split {} samples among {workers} workers",
			dataset.len()
		)));
	}
	Ok(())
}

/// The batches a training run uses, fixed by a seed: the sample stream is the concatenation
/// of per-epoch seeded permutations of the dataset, cut into consecutive batches. Anyone who
/// knows (seed, dataset length, batch size) can recompute the indices of any step.
#[derive(Clone, Debug)]
pub struct BatchSchedule {
	seed: u64,
	dataset_len: usize,
	batch_size: usize,
	cached_epoch: Option<(u64, Vec<u32>)>,
}

impl BatchSchedule {
	pub fn new(seed: u64, dataset_len: usize, batch_size: usize) -> Result<Self> {
		if dataset_len == 0 || batch_size == 0 || dataset_len > u32::MAX as usize {
			return Err(WorkerError::InvalidArgument(format!(
                "batch schedule needs a non-empty dataset and batch (got {dataset_len} samples, batch {batch_size})"
            )));
		}
		Ok(BatchSchedule { seed, dataset_len, batch_size, cached_epoch: None })
	}

	pub fn batch_size(&self) -> usize {
		self.batch_size
	}

	fn epoch_order(&mut self, epoch: u64) -> &[u32] {
		let stale = self.cached_epoch.as_ref().is_none_or(|(e, _)| *e != epoch);
		if stale {
			let mut hasher = Hasher::new();
			hasher.update(b"agora/batches/v1");
			hasher.update_u64(self.seed);
			hasher.update_u64(epoch);
			let mut rng = ChaCha20Rng::from_seed(hasher.finish().0);
			let mut order: Vec<u32> = (0..self.dataset_len as u32).collect();
			shuffle(&mut order, &mut rng);
			self.cached_epoch = Some((epoch, order));
		}
		&self.cached_epoch.as_ref().expect("filled above").1
	}

	/// Sample indices of training step `step` (0-based).
	pub fn indices(&mut self, step: u64) -> Vec<u32> {
		let n = self.dataset_len as u64;
		let first = step * self.batch_size as u64;
		(first..first + self.batch_size as u64)
			.map(|position| self.epoch_order(position / n)[(position % n) as usize])
			.collect()
	}
}

/// Hash of the batch indices of consecutive steps: per step, the count then the indices
/// (u32 LE).
pub fn batch_indices_hash(steps: &[Vec<u32>]) -> Digest {
	let mut hasher = Hasher::new();
	hasher.update(b"agora/batch-indices/v1");
	hasher.update_u64(steps.len() as u64);
	for indices in steps {
		hasher.update_u32(indices.len() as u32);
		for &index in indices {
			hasher.update_u32(index);
		}
	}
	hasher.finish()
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn digits_load_with_expected_size_and_class_balance() {
		let digits = load_digits(&digits_csv_path()).unwrap();
		assert_eq!(digits.len(), 1797);
		let mut counts = [0usize; 10];
		for &label in digits.labels() {
			counts[usize::from(label)] += 1;
		}
		assert!(counts.iter().all(|&c| (170..=190).contains(&c)), "{counts:?}");
	}

	#[test]
	fn text_windows_cover_the_text() {
		let text = std::fs::read_to_string(genesis_text_path()).unwrap();
		let data = text_dataset(&text, 64).unwrap();
		assert_eq!(data.len(), text.len() / 65);
		assert!(text_dataset("caf\u{e9}", 2).is_err());
	}

	#[test]
	fn wide_vocabularies_store_two_byte_tokens_and_train_a_gpt() {
		let vocab = 1_000;
		let tokens: Vec<u32> = (0..4 * 9).map(|i| (i * 37 % vocab) as u32).collect();
		let bytes = encode_tokens(&tokens, vocab).unwrap();
		assert_eq!(bytes.len(), tokens.len() * 2);
		let kind = SampleKind::Tokens { length: 9, vocab };
		assert_eq!(kind.sample_len(), 18);
		let data = Dataset::new(kind, 0, 1.0, bytes, Vec::new()).unwrap();
		assert_eq!(data.len(), 4);
		let Batch::Language { inputs, targets } = data.batch(&[1, 3], Device::Cpu).unwrap() else {
			panic!("a language batch")
		};
		assert_eq!(Vec::<i64>::try_from(inputs.get(0)).unwrap()[0], i64::from(tokens[9]));
		assert_eq!(Vec::<i64>::try_from(targets.get(1)).unwrap()[7], i64::from(tokens[35]));
		// Byte vocabularies keep one byte per token (existing shards are unchanged).
		assert_eq!(encode_tokens(&[3, 255], 256).unwrap(), vec![3, 255]);
		// Out-of-vocabulary tokens and vocabularies beyond two bytes are refused.
		assert!(encode_tokens(&[1_000], vocab).is_err());
		let out = 1_000u16.to_le_bytes().repeat(9);
		assert!(Dataset::new(kind, 0, 1.0, out, Vec::new()).is_err());
		let huge = SampleKind::Tokens { length: 2, vocab: MAX_VOCAB + 1 };
		assert!(Dataset::new(huge, 0, 1.0, vec![0; 4], Vec::new()).is_err());
		// A GPT over the vocabulary takes them; a smaller one does not.
		let gpt = Architecture::from_id("gpt:vocab=1000,ctx=8,width=16,heads=2,layers=1").unwrap();
		data.check_compatible(&gpt).unwrap();
		let small = Architecture::from_id("gpt:vocab=999,ctx=8,width=16,heads=2,layers=1").unwrap();
		assert!(data.check_compatible(&small).is_err());
		let config =
			crate::train::TrainConfig::new(crate::train::OptimizerConfig::adamw(1e-3), 2, 0);
		let (update, metrics) = crate::train::local_update(
			&gpt,
			&gpt.initial_params(0).unwrap(),
			&data,
			&config,
			2,
			Device::Cpu,
		)
		.unwrap();
		assert!(update.l2_norm() > 0.0 && metrics.loss > 0.0);
	}

	#[test]
	fn shards_round_trip_and_detect_tampering() {
		let dir = tempfile::tempdir().unwrap();
		let data = synthetic_images(50, 4, 1, 4, 30, 1).unwrap();
		let manifest = write_sharded(&data, dir.path(), "synthetic", 16).unwrap();
		assert_eq!(manifest.shards.len(), 4);
		let manifest_path = dir.path().join(MANIFEST_FILE);
		let (loaded, _) = load_sharded(&manifest_path, Some(&manifest.root)).unwrap();
		assert_eq!(loaded, data);

		// Another commitment expected.
		let other = Digest::of(&[b"other"]);
		assert!(matches!(
			load_sharded(&manifest_path, Some(&other)),
			Err(WorkerError::HashMismatch { .. })
		));

		// A flipped byte in a shard.
		let shard = dir.path().join(&manifest.shards[2].file);
		let mut bytes = std::fs::read(&shard).unwrap();
		let last = bytes.len() - 1;
		bytes[last] ^= 1;
		std::fs::write(&shard, &bytes).unwrap();
		assert!(matches!(
			load_sharded(&manifest_path, None),
			Err(WorkerError::HashMismatch { .. })
		));
	}

	#[test]
	fn malformed_shards_are_errors() {
		let data = synthetic_images(3, 2, 1, 2, 10, 2).unwrap();
		let bytes = data.encode_shard().unwrap();
		assert_eq!(decode_shard(&bytes).unwrap(), data);
		assert!(decode_shard(&bytes[..bytes.len() - 1]).is_err());
		assert!(decode_shard(b"AGSHARD\x01\xff\xff\xff\xff").is_err());
		assert!(decode_shard(b"garbage").is_err());
	}

	#[test]
	fn splits_partition_the_data() {
		let digits = load_digits(&digits_csv_path()).unwrap();
		for parts in
			[split_iid(&digits, 8, 1).unwrap(), split_label_skew(&digits, 8, 0.5, 1).unwrap()]
		{
			assert_eq!(parts.iter().map(Dataset::len).sum::<usize>(), digits.len());
		}
		// Label skew: some worker's most common class is far above the 10% of an IID split.
		let skewed = split_label_skew(&digits, 8, 0.5, 1).unwrap();
		let max_share = skewed
			.iter()
			.map(|part| {
				let mut counts = [0usize; 10];
				for &l in part.labels() {
					counts[usize::from(l)] += 1;
				}
				*counts.iter().max().unwrap() as f64 / part.len() as f64
			})
			.fold(0.0, f64::max);
		assert!(max_share > 0.3, "max class share {max_share}");
	}

	#[test]
	fn batch_schedule_is_deterministic_and_covers_each_epoch() {
		let mut a = BatchSchedule::new(9, 10, 4).unwrap();
		let mut b = BatchSchedule::new(9, 10, 4).unwrap();
		let first: Vec<u32> = (0..5).flat_map(|s| a.indices(s)).collect();
		assert_eq!(first, (0..5).flat_map(|s| b.indices(s)).collect::<Vec<_>>());
		let mut epoch0 = first[..10].to_vec();
		epoch0.sort();
		assert_eq!(epoch0, (0..10).collect::<Vec<_>>());
		// Random access gives the same batch as sequential access.
		assert_eq!(BatchSchedule::new(9, 10, 4).unwrap().indices(3), a.indices(3));
		assert_ne!(batch_indices_hash(&[a.indices(0)]), batch_indices_hash(&[a.indices(1)]));
	}
}
