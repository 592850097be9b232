//! Local training with tch: a trainer whose whole state (weights, optimizer buffers, step) is
//! plain data that can be hashed, checkpointed and replayed by a verifier.
//!
//! The optimizers are written out here (SGD with momentum, Adam and AdamW with PyTorch's update
//! rules) instead of using `tch::nn::Optimizer`: libtorch's optimizers keep their buffers inside
//! C++ objects that tch does not expose, and a replay from checkpoint i must start from exactly
//! the committed momentum / moment estimates.
//!
//! A step follows the recipe language models are trained with: its batch split into
//! micro-batches whose gradients are summed (accumulation: memory, not math), the global
//! gradient norm clipped, and a learning rate that warms up and decays on a cosine. Everything
//! a step does is a function of the committed state and the job's configuration (the rate of
//! step `s` included), so a verifier replays it exactly.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tch::nn::Module;
use tch::{Device, Kind, Tensor};

use crate::data::{Batch, BatchSchedule, Dataset, SampleKind};
use crate::device::Autocast;
use crate::digest::{Digest, Hasher};
use crate::error::{Result, WorkerError};
use crate::models::{Architecture, Model};
use crate::params::{Layout, ParamSet, TensorSpec};

/// Adam's buffer of second moments (running means of squared gradients).
const SECOND_MOMENT: &str = "adam_v";

/// Optimizer and its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
	/// `buf = momentum * buf + grad; w -= lr * buf` (PyTorch's SGD without dampening).
	Sgd { lr: f64, momentum: f64 },
	/// PyTorch's Adam (no weight decay, no amsgrad).
	Adam { lr: f64, beta1: f64, beta2: f64, eps: f64 },
	/// PyTorch's AdamW: Adam with decoupled weight decay (`w -= lr * weight_decay * w` before
	/// the Adam step, Loshchilov & Hutter), the optimizer language models are trained with.
	#[serde(rename = "adamw")]
	AdamW { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
}

impl OptimizerConfig {
	pub fn sgd(lr: f64, momentum: f64) -> Self {
		OptimizerConfig::Sgd { lr, momentum }
	}

	pub fn adam(lr: f64) -> Self {
		OptimizerConfig::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
	}

	/// AdamW with GPT-style settings (betas 0.9 and 0.95, weight decay 0.1).
	pub fn adamw(lr: f64) -> Self {
		OptimizerConfig::AdamW { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 }
	}

	/// The peak learning rate.
	pub fn lr(&self) -> f64 {
		match *self {
			OptimizerConfig::Sgd { lr, .. }
			| OptimizerConfig::Adam { lr, .. }
			| OptimizerConfig::AdamW { lr, .. } => lr,
		}
	}

	/// Buffer name prefixes, one buffer per parameter and prefix.
	fn buffer_prefixes(&self) -> &'static [&'static str] {
		match self {
			OptimizerConfig::Sgd { momentum, .. } if *momentum == 0.0 => &[],
			OptimizerConfig::Sgd { .. } => &["momentum"],
			OptimizerConfig::Adam { .. } | OptimizerConfig::AdamW { .. } => {
				&["adam_m", SECOND_MOMENT]
			},
		}
	}

	/// Checks what no honest run can produce in a state of this optimizer: a negative second
	/// moment (Adam's `v` is a running mean of squares), whose square root would turn every
	/// later step of a run that started from it into NaN.
	pub fn check_state(&self, optimizer: &ParamSet) -> Result<()> {
		if !self.buffer_prefixes().contains(&SECOND_MOMENT) {
			return Ok(());
		}
		let prefix = format!("{SECOND_MOMENT}/");
		for (position, spec) in optimizer.layout().specs().iter().enumerate() {
			if !spec.name.starts_with(&prefix) {
				continue;
			}
			if let Some(value) = optimizer.tensor(position).iter().find(|v| **v < 0.0) {
				return Err(WorkerError::InvalidArgument(format!(
					"second moment `{}` is negative ({value})",
					spec.name
				)));
			}
		}
		Ok(())
	}

	fn validate(&self) -> Result<()> {
		let ok = match *self {
			OptimizerConfig::Sgd { lr, momentum } => {
				lr.is_finite() && lr > 0.0 && (0.0..1.0).contains(&momentum)
			},
			OptimizerConfig::Adam { lr, beta1, beta2, eps } => {
				lr.is_finite()
					&& lr > 0.0 && (0.0..1.0).contains(&beta1)
					&& (0.0..1.0).contains(&beta2)
					&& eps > 0.0
			},
			OptimizerConfig::AdamW { lr, beta1, beta2, eps, weight_decay } => {
				lr.is_finite()
					&& lr > 0.0 && (0.0..1.0).contains(&beta1)
					&& (0.0..1.0).contains(&beta2)
					&& eps > 0.0 && (0.0..1.0).contains(&weight_decay)
					&& lr * weight_decay < 1.0
			},
		};
		if ok {
			Ok(())
		} else {
			Err(WorkerError::InvalidArgument(format!("invalid optimizer settings {self:?}")))
		}
	}

	/// Layout of the optimizer state for a model layout.
	pub fn state_layout(&self, params: &Layout) -> Result<Layout> {
		Layout::new(
			self.buffer_prefixes()
				.iter()
				.flat_map(|prefix| {
					params.specs().iter().map(move |spec| TensorSpec {
						name: format!("{prefix}/{}", spec.name),
						shape: spec.shape.clone(),
					})
				})
				.collect(),
		)
	}
}

/// The learning rate as a function of the step. A job's runs start every round from step 0 (a
/// fresh optimizer on the round's model: the schedule warms up and decays within each round),
/// or, for a job that carries its optimizer across rounds, where the previous rounds left off
/// (one schedule over all rounds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum LrSchedule {
	/// The optimizer's rate at every step.
	#[default]
	Constant,
	/// Linear warmup from 0 over `warmup_steps`, then a cosine decay to
	/// `min_fraction × lr` at `total_steps` (held there after).
	WarmupCosine { warmup_steps: u64, total_steps: u64, min_fraction: f64 },
}

impl LrSchedule {
	/// The rate of step `step` (1 for the first step) for the peak rate `peak`. Computed with
	/// `libm` (plain Rust) rather than the platform's maths library, so that every machine
	/// derives the same bits and replays stay exact.
	pub fn lr_at(&self, peak: f64, step: u64) -> f64 {
		match *self {
			LrSchedule::Constant => peak,
			LrSchedule::WarmupCosine { warmup_steps, total_steps, min_fraction } => {
				if step <= warmup_steps {
					return peak * step as f64 / warmup_steps.max(1) as f64;
				}
				let decay_steps = total_steps.saturating_sub(warmup_steps).max(1);
				let progress = (step - warmup_steps).min(decay_steps) as f64 / decay_steps as f64;
				let cosine = 0.5 * (1.0 + libm::cos(std::f64::consts::PI * progress));
				peak * (min_fraction + (1.0 - min_fraction) * cosine)
			},
		}
	}

	/// Whether the rate is the optimizer's at every step.
	pub fn is_constant(&self) -> bool {
		*self == LrSchedule::Constant
	}

	fn validate(&self) -> Result<()> {
		match *self {
			LrSchedule::Constant => Ok(()),
			LrSchedule::WarmupCosine { warmup_steps, total_steps, min_fraction } => {
				if warmup_steps <= total_steps && (0.0..=1.0).contains(&min_fraction) {
					Ok(())
				} else {
					Err(WorkerError::InvalidArgument(format!("invalid schedule {self:?}")))
				}
			},
		}
	}
}

/// What a training run needs besides the model and the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
	pub optimizer: OptimizerConfig,
	/// Samples per optimizer step.
	pub batch_size: usize,
	/// Seed of the batch schedule (see [`BatchSchedule`]).
	pub seed: u64,
	/// The learning rate by step. Defaults are left out of the serialized form, so that a
	/// configuration without them is written (and committed to) exactly as before they existed.
	#[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
	pub schedule: LrSchedule,
	/// The largest global L2 norm of a step's gradients (PyTorch's `clip_grad_norm_`), if any.
	#[serde(default, skip_serializing_if = "Option::is_none")]
	pub clip_norm: Option<f64>,
	/// Micro-batches a step's batch is split into, their gradients summed (weighted by their
	/// sizes) before the step: the same step as one batch, in a fraction of the activation
	/// memory.
	#[serde(default = "one_micro_batch", skip_serializing_if = "is_one_micro_batch")]
	pub micro_batches: usize,
	/// The arithmetic of the forward passes.
	#[serde(default, skip_serializing_if = "Precision::is_f32")]
	pub precision: Precision,
}

/// The arithmetic of a run's forward passes. Part of the job, not a worker's choice: a replay
/// reproduces a step only in the arithmetic it was trained in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
	/// float32 throughout (TF32 off, see [`crate::device::set_reproducible_numerics`]).
	#[default]
	F32,
	/// bf16 autocast ([`Autocast`]): matrix products in bfloat16, float32 weights, gradients,
	/// optimizer state and loss. 1.6x float32's training throughput on this repository's CPU
	/// (AMX); GPUs with bf16 tensor cores are expected to gain more (not measured yet), and a
	/// CPU without bf16 units is slower.
	Bf16,
}

impl Precision {
	pub fn is_f32(&self) -> bool {
		*self == Precision::F32
	}

	/// The autocast region a forward pass in this precision runs in, on `device`.
	fn autocast(self, device: Device) -> Option<Autocast> {
		(self == Precision::Bf16).then(|| Autocast::bf16(device))
	}
}

/// The smallest clipping norm a job may set: below it every step rounds to nothing in f32.
pub const MIN_CLIP_NORM: f64 = 1e-6;

fn one_micro_batch() -> usize {
	1
}

fn is_one_micro_batch(count: &usize) -> bool {
	*count == 1
}

impl TrainConfig {
	/// A plain configuration: constant rate, no clipping, one micro-batch per step.
	pub fn new(optimizer: OptimizerConfig, batch_size: usize, seed: u64) -> Self {
		TrainConfig {
			optimizer,
			batch_size,
			seed,
			schedule: LrSchedule::Constant,
			clip_norm: None,
			micro_batches: 1,
			precision: Precision::F32,
		}
	}

	/// Errors unless every setting is usable.
	pub fn validate(&self) -> Result<()> {
		self.optimizer.validate()?;
		self.schedule.validate()?;
		if self.batch_size == 0 {
			return Err(WorkerError::InvalidArgument("batch size must be positive".into()));
		}
		if !(1..=self.batch_size).contains(&self.micro_batches) {
			return Err(WorkerError::InvalidArgument(format!(
				"{} micro-batches cannot split a batch of {}",
				self.micro_batches, self.batch_size
			)));
		}
		if self.clip_norm.is_some_and(|norm| !(norm.is_finite() && norm >= MIN_CLIP_NORM)) {
			return Err(WorkerError::InvalidArgument(format!(
				"the clipping norm must be at least {MIN_CLIP_NORM}"
			)));
		}
		Ok(())
	}
}

/// Everything that determines the rest of a run: step count, weights, optimizer buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState {
	pub step: u64,
	pub params: ParamSet,
	pub optimizer: ParamSet,
}

const META_STEP: &str = "agora.step";
const META_STATE_HASH: &str = "agora.state_hash";
const PARAM_PREFIX: &str = "param/";
const OPTIMIZER_PREFIX: &str = "optimizer/";

impl TrainingState {
	/// A fresh state: `params` at step 0 with zeroed optimizer buffers.
	pub fn fresh(params: ParamSet, optimizer: &OptimizerConfig) -> Result<Self> {
		let layout = optimizer.state_layout(params.layout())?;
		Ok(TrainingState { step: 0, params, optimizer: ParamSet::zeros(layout) })
	}

	/// `H("agora/state/v1" || step || H(params) || H(optimizer))`.
	pub fn content_hash(&self) -> Digest {
		let mut hasher = Hasher::new();
		hasher.update(b"agora/state/v1");
		hasher.update_u64(self.step);
		hasher.update(self.params.content_hash().as_bytes());
		hasher.update(self.optimizer.content_hash().as_bytes());
		hasher.finish()
	}

	/// Saves as one safetensors file (`param/...`, `optimizer/...`) with step and hash in the
	/// metadata.
	pub fn save(&self, path: &Path, arch: &Architecture) -> Result<Digest> {
		let all = ParamSet::merge_prefixed(&[
			(PARAM_PREFIX, &self.params),
			(OPTIMIZER_PREFIX, &self.optimizer),
		])?;
		let hash = self.content_hash();
		let metadata = BTreeMap::from([
			(crate::models::META_ARCH.to_string(), arch.id()),
			(META_STEP.to_string(), self.step.to_string()),
			(META_STATE_HASH.to_string(), hash.to_hex()),
		]);
		all.save(path, &metadata)?;
		Ok(hash)
	}

	/// Loads a checkpoint and checks it against the architecture and optimizer: tensor names
	/// and shapes, finiteness and the recorded state hash.
	pub fn load(path: &Path, arch: &Architecture, optimizer: &OptimizerConfig) -> Result<Self> {
		let (all, metadata) = ParamSet::load(path)?;
		let step: u64 = metadata.get(META_STEP).and_then(|s| s.parse().ok()).ok_or_else(|| {
			WorkerError::Safetensors(format!("{} has no valid `{META_STEP}`", path.display()))
		})?;
		if let Some(stray) =
			all.layout().specs().iter().find(|s| {
				!s.name.starts_with(PARAM_PREFIX) && !s.name.starts_with(OPTIMIZER_PREFIX)
			}) {
			return Err(WorkerError::UnexpectedTensor(stray.name.clone()));
		}
		let params = all.strip_prefix(PARAM_PREFIX)?;
		let optimizer_state = all.strip_prefix(OPTIMIZER_PREFIX)?;
		let param_layout = arch.layout()?;
		param_layout.check_matches(params.layout())?;
		optimizer.state_layout(&param_layout)?.check_matches(optimizer_state.layout())?;
		params.check_finite()?;
		optimizer_state.check_finite()?;
		let state = TrainingState { step, params, optimizer: optimizer_state };
		let actual = state.content_hash();
		if let Some(recorded) = metadata.get(META_STATE_HASH) {
			if *recorded != actual.to_hex() {
				return Err(WorkerError::HashMismatch {
					what: path.display().to_string(),
					expected: recorded.clone(),
					actual: actual.to_hex(),
				});
			}
		}
		Ok(state)
	}
}

/// Loss and accuracy of one step or of an evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
	pub loss: f64,
	/// Fraction of correct predictions (classes or next tokens).
	pub accuracy: f64,
	pub samples: u64,
}

impl Metrics {
	/// Sample-weighted mean of several metrics.
	pub fn merge(parts: &[Metrics]) -> Metrics {
		let samples: u64 = parts.iter().map(|m| m.samples).sum();
		if samples == 0 {
			return Metrics::default();
		}
		let weight = |m: &Metrics| m.samples as f64 / samples as f64;
		Metrics {
			loss: parts.iter().map(|m| m.loss * weight(m)).sum(),
			accuracy: parts.iter().map(|m| m.accuracy * weight(m)).sum(),
			samples,
		}
	}
}

/// Loss (mean cross-entropy), number of correct predictions (a device tensor: reading it
/// would wait for the device) and number of predictions of a batch.
fn loss_and_correct(model: &Model, batch: &Batch) -> Result<(Tensor, Tensor, i64)> {
	let (logits, targets) = match batch {
		Batch::Classification { inputs, labels } => {
			(model.network().forward(inputs), labels.shallow_clone())
		},
		Batch::Language { inputs, targets } => {
			let logits = model.network().forward(inputs);
			let vocab = *logits.size().last().unwrap_or(&1);
			(logits.f_view([-1, vocab])?, targets.f_reshape([-1])?)
		},
	};
	let loss = logits.f_log_softmax(-1, Kind::Float)?.f_nll_loss::<Tensor>(
		&targets,
		None,
		tch::Reduction::Mean,
		-100,
	)?;
	let correct = logits.f_argmax(-1, false)?.f_eq_tensor(&targets)?.f_sum(Kind::Int64)?;
	Ok((loss, correct, targets.size()[0]))
}

/// A step's loss and correct predictions, left on the device: reading them waits for the
/// device to finish the step, so a training loop reads them only where it waits anyway (at a
/// checkpoint, which copies the state to the host), never once per step.
pub struct StepMetrics {
	/// The batch's mean loss (micro-batches' losses weighted by their shares), detached.
	loss: Tensor,
	/// Correct predictions in the batch.
	correct: Tensor,
	predictions: i64,
	pub samples: u64,
}

impl StepMetrics {
	/// Waits for the device and reads the values.
	pub fn read(&self) -> Result<Metrics> {
		Ok(Metrics {
			loss: self.loss.f_double_value(&[])?,
			accuracy: self.correct.f_int64_value(&[])? as f64 / self.predictions.max(1) as f64,
			samples: self.samples,
		})
	}

	/// Reads several steps' metrics and merges them, weighted by their samples.
	pub fn read_all(steps: &[StepMetrics]) -> Result<Metrics> {
		let parts = steps.iter().map(StepMetrics::read).collect::<Result<Vec<_>>>()?;
		Ok(Metrics::merge(&parts))
	}
}

/// The most logits one evaluation batch may hold (256 MiB of f32, and as much again for their
/// log-softmax): a language model's batches shrink to fit, whatever batch size was asked, so
/// that scoring a job's update never exhausts a validator's memory.
const EVALUATION_LOGITS: usize = 64 << 20;

/// Evaluates `model` on all of `data` (no gradients), in batches of at most `batch_size`.
pub fn evaluate(model: &Model, data: &Dataset, batch_size: usize) -> Result<Metrics> {
	data.check_compatible(model.architecture())?;
	let logits_per_sample = match (data.kind(), model.architecture().language_shape()) {
		(SampleKind::Tokens { length, .. }, Some((vocab, _))) => length.saturating_mul(vocab),
		_ => 1,
	};
	let batch_size = batch_size.min(EVALUATION_LOGITS / logits_per_sample.max(1)).max(1);
	let all: Vec<u32> = (0..data.len() as u32).collect();
	let mut parts = Vec::new();
	tch::no_grad(|| -> Result<()> {
		for chunk in all.chunks(batch_size) {
			let batch = data.batch(chunk, model.device())?;
			let (loss, correct, count) = loss_and_correct(model, &batch)?;
			parts.push(Metrics {
				loss: loss.f_double_value(&[])?,
				accuracy: correct.f_int64_value(&[])? as f64 / count as f64,
				samples: count as u64,
			});
		}
		Ok(())
	})?;
	Ok(Metrics::merge(&parts))
}

/// A model being trained, with its optimizer buffers on the same device.
pub struct Trainer {
	model: Model,
	config: TrainConfig,
	/// Model variables in canonical (name) order.
	variables: Vec<Tensor>,
	/// Optimizer buffers: `buffers[prefix][variable]`.
	buffers: Vec<Vec<Tensor>>,
	step: u64,
}

impl Trainer {
	/// Loads `state` onto `device`.
	pub fn new(
		arch: &Architecture,
		state: &TrainingState,
		config: &TrainConfig,
		device: Device,
	) -> Result<Self> {
		config.validate()?;
		let model = Model::new(arch, &state.params, device)?;
		let expected_optimizer = config.optimizer.state_layout(state.params.layout())?;
		expected_optimizer.check_matches(state.optimizer.layout())?;
		let mut named: Vec<(String, Tensor)> = model.var_store().variables().into_iter().collect();
		named.sort_by(|a, b| a.0.cmp(&b.0));
		let variables = named.into_iter().map(|(_, t)| t).collect();
		let prefixes = config.optimizer.buffer_prefixes();
		let per_prefix = state.params.layout().specs().len();
		let mut buffers = Vec::with_capacity(prefixes.len());
		for prefix in prefixes {
			let mut group = Vec::with_capacity(per_prefix);
			for spec in state.params.layout().specs() {
				let name = format!("{prefix}/{}", spec.name);
				let index = state
					.optimizer
					.layout()
					.specs()
					.iter()
					.position(|s| s.name == name)
					.ok_or_else(|| WorkerError::MissingTensor(name.clone()))?;
				let dims: Vec<i64> = spec.shape.iter().map(|&d| d as i64).collect();
				group.push(
					Tensor::f_from_slice(state.optimizer.tensor(index))?
						.f_view(dims.as_slice())?
						.f_to_device(device)?,
				);
			}
			buffers.push(group);
		}
		Ok(Trainer { model, config: config.clone(), variables, buffers, step: state.step })
	}

	pub fn model(&self) -> &Model {
		&self.model
	}

	pub fn step(&self) -> u64 {
		self.step
	}

	pub fn config(&self) -> &TrainConfig {
		&self.config
	}

	/// Copies the current state off the device.
	pub fn state(&self) -> Result<TrainingState> {
		let params = self.model.params()?;
		let layout = self.config.optimizer.state_layout(params.layout())?;
		let mut optimizer = ParamSet::zeros(layout);
		for (prefix, group) in self.config.optimizer.buffer_prefixes().iter().zip(&self.buffers) {
			for (spec, buffer) in params.layout().specs().iter().zip(group) {
				let name = format!("{prefix}/{}", spec.name);
				let index = optimizer
					.layout()
					.specs()
					.iter()
					.position(|s| s.name == name)
					.ok_or_else(|| WorkerError::MissingTensor(name.clone()))?;
				let range = optimizer.layout().range(index);
				let numel = range.len();
				buffer
					.f_to_device(Device::Cpu)?
					.f_contiguous()?
					.f_copy_data(&mut optimizer.values_mut()[range], numel)?;
			}
		}
		Ok(TrainingState { step: self.step, params, optimizer })
	}

	/// One optimizer step on the samples `indices` of `data`.
	pub fn train_step(&mut self, data: &Dataset, indices: &[u32]) -> Result<StepMetrics> {
		// Checked every step (it is a few comparisons): a mismatch would otherwise surface as a
		// libtorch shape error deep inside the forward pass.
		data.check_compatible(self.model.architecture())?;
		if indices.is_empty() {
			return Err(WorkerError::Data("empty batch".into()));
		}
		// Micro-batches of `ceil(len / parts)` samples (the last one smaller, and fewer parts
		// when they divide unevenly); each one's mean loss is weighted by its share of the
		// batch, so the summed gradients are the whole batch's mean-loss gradients.
		let parts = self.config.micro_batches.min(indices.len());
		let part_len = indices.len().div_ceil(parts);
		let mut grads: Vec<Tensor> = Vec::new();
		let mut losses: Vec<Tensor> = Vec::with_capacity(parts);
		let mut corrects: Vec<Tensor> = Vec::with_capacity(parts);
		let mut predictions = 0i64;
		for part in indices.chunks(part_len) {
			let batch = data.batch(part, self.model.device())?;
			// Only the forward pass in the job's precision: the backward pass follows the
			// graph's own casts, and scoring (`evaluate`) stays in float32 on every device so
			// that validators' scores agree.
			let (loss, correct, count) = {
				let _autocast = self.config.precision.autocast(self.model.device());
				loss_and_correct(&self.model, &batch)?
			};
			let share = part.len() as f64 / indices.len() as f64;
			let weighted =
				if parts == 1 { loss.shallow_clone() } else { loss.f_mul_scalar(share)? };
			// Gradients are returned rather than accumulated into `.grad`: nothing to zero
			// before the next step (as PyTorch's `zero_grad(set_to_none=True)`).
			let part_grads = Tensor::f_run_backward(&[&weighted], &self.variables, false, false)?;
			if grads.is_empty() {
				grads = part_grads;
			} else {
				tch::no_grad(|| -> Result<()> {
					for (sum, grad) in grads.iter_mut().zip(&part_grads) {
						if grad.defined() {
							let _ = sum.f_add_(grad)?;
						}
					}
					Ok(())
				})?;
			}
			losses.push(weighted.f_detach()?);
			corrects.push(correct);
			predictions += count;
		}
		if let Some(max_norm) = self.config.clip_norm {
			clip_grad_norm(&mut grads, max_norm)?;
		}
		self.step += 1;
		self.apply_update(&grads)?;
		Ok(StepMetrics {
			loss: Tensor::f_stack(&losses, 0)?.f_sum(Kind::Float)?,
			correct: Tensor::f_stack(&corrects, 0)?.f_sum(Kind::Int64)?,
			predictions,
			samples: indices.len() as u64,
		})
	}

	/// Counts a step without touching the weights (used to simulate a cheating worker).
	pub fn skip_step(&mut self) {
		self.step += 1;
	}

	fn apply_update(&mut self, grads: &[Tensor]) -> Result<()> {
		let step = i32::try_from(self.step).unwrap_or(i32::MAX);
		let optimizer = self.config.optimizer;
		let lr = self.config.schedule.lr_at(optimizer.lr(), self.step);
		let device = self.model.device();
		tch::no_grad(|| -> Result<()> {
			match optimizer {
				OptimizerConfig::Sgd { momentum, .. } => {
					// `w += buf * (-lr)` as one fused, allocation-free addcmul. The rate is filled
					// in on the device: a copy from the host would wait for the GPU every step.
					let minus_lr = Tensor::f_full(
						[] as [i64; 0],
						f64::from(-lr as f32),
						(Kind::Float, device),
					)?;
					for (index, (variable, grad)) in
						self.variables.iter_mut().zip(grads).enumerate()
					{
						if !grad.defined() {
							continue;
						}
						if momentum == 0.0 {
							let _ = variable.f_addcmul_(grad, &minus_lr)?;
						} else {
							let buffer = &mut self.buffers[0][index];
							let _ = buffer.f_mul_scalar_(momentum)?;
							let _ = buffer.f_add_(grad)?;
							let _ = variable.f_addcmul_(buffer, &minus_lr)?;
						}
					}
				},
				OptimizerConfig::Adam { beta1, beta2, eps, .. }
				| OptimizerConfig::AdamW { beta1, beta2, eps, .. } => {
					// `libm::pow`, not `powi`, whose result Rust lets differ by platform.
					let bias1 = 1.0 - libm::pow(beta1, f64::from(step));
					let bias2 = 1.0 - libm::pow(beta2, f64::from(step));
					let decay = match optimizer {
						OptimizerConfig::AdamW { weight_decay, .. } => 1.0 - lr * weight_decay,
						_ => 1.0,
					};
					for (index, (variable, grad)) in
						self.variables.iter_mut().zip(grads).enumerate()
					{
						if !grad.defined() {
							continue;
						}
						if decay != 1.0 {
							let _ = variable.f_mul_scalar_(decay)?;
						}
						let (first, rest) = self.buffers.split_at_mut(1);
						let m = &mut first[0][index];
						let v = &mut rest[0][index];
						let _ = m.f_mul_scalar_(beta1)?;
						let _ = m.f_add_(&grad.f_mul_scalar(1.0 - beta1)?)?;
						let _ = v.f_mul_scalar_(beta2)?;
						let _ = v.f_addcmul_(grad, &grad.f_mul_scalar(1.0 - beta2)?)?;
						let denom = v.f_sqrt()?.f_div_scalar(bias2.sqrt())?.f_add_scalar(eps)?;
						let _ = variable.f_sub_(&m.f_div(&denom)?.f_mul_scalar(lr / bias1)?)?;
					}
				},
			}
			Ok(())
		})
	}
}

/// Scales `grads` so that their global L2 norm is at most `max_norm`, as PyTorch's
/// `clip_grad_norm_` does (coefficient `max_norm / (norm + 1e-6)`, capped at 1), on the device:
/// the coefficient stays a tensor, so clipping adds no host synchronisation.
fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<()> {
	tch::no_grad(|| -> Result<()> {
		let mut squares: Option<Tensor> = None;
		for grad in grads.iter().filter(|g| g.defined()) {
			let square = grad.f_square()?.f_sum(Kind::Float)?;
			squares = Some(match squares {
				None => square,
				Some(sum) => sum.f_add(&square)?,
			});
		}
		let Some(squares) = squares else { return Ok(()) };
		let coefficient =
			squares.f_sqrt()?.f_add_scalar(1e-6)?.f_reciprocal()?.f_mul_scalar(max_norm)?;
		let coefficient = coefficient.f_clamp_max(1.0)?;
		for grad in grads.iter_mut().filter(|g| g.defined()) {
			let _ = grad.f_mul_(&coefficient)?;
		}
		Ok(())
	})
}

/// Options of [`train_with_checkpoints`].
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
	pub steps: u64,
	/// A checkpoint every `checkpoint_every` steps, plus one at the start and one at the end.
	pub checkpoint_every: u64,
	pub show_progress: bool,
}

/// Summary of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunSummary {
	pub steps: u64,
	pub samples: u64,
	pub seconds: f64,
	pub final_metrics: Metrics,
}

/// Trains `steps` steps from the trainer's current step, following `schedule`. At every
/// checkpoint (the start, every `checkpoint_every` steps, the end) calls `on_checkpoint` with
/// the state and the batch indices of the steps since the previous checkpoint.
pub fn train_with_checkpoints(
	trainer: &mut Trainer,
	data: &Dataset,
	schedule: &mut BatchSchedule,
	options: RunOptions,
	mut on_checkpoint: impl FnMut(&TrainingState, &[Vec<u32>]) -> Result<()>,
) -> Result<RunSummary> {
	data.check_compatible(trainer.model().architecture())?;
	if options.checkpoint_every == 0 {
		return Err(WorkerError::InvalidArgument("checkpoint interval must be positive".into()));
	}
	let progress = if options.show_progress {
		let bar = ProgressBar::new(options.steps);
		bar.set_style(
			ProgressStyle::with_template(
				"{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps {msg}",
			)
			.map_err(|e| WorkerError::InvalidArgument(e.to_string()))?,
		);
		bar
	} else {
		ProgressBar::hidden()
	};
	let started = Instant::now();
	on_checkpoint(&trainer.state()?, &[])?;
	let first_step = trainer.step();
	let mut segment_batches: Vec<Vec<u32>> = Vec::new();
	let mut segment_metrics = Vec::new();
	let mut last = Metrics::default();
	let mut samples = 0u64;
	for step in first_step..first_step + options.steps {
		let indices = schedule.indices(step);
		let metrics = trainer.train_step(data, &indices)?;
		samples += metrics.samples;
		segment_metrics.push(metrics);
		segment_batches.push(indices);
		progress.inc(1);
		let done = step + 1 - first_step;
		if done.is_multiple_of(options.checkpoint_every) || done == options.steps {
			last = StepMetrics::read_all(&segment_metrics)?;
			progress.set_message(format!("loss {:.4} acc {:.3}", last.loss, last.accuracy));
			tracing::info!(
				step = step + 1,
				loss = last.loss,
				accuracy = last.accuracy,
				"checkpoint"
			);
			on_checkpoint(&trainer.state()?, &segment_batches)?;
			segment_batches.clear();
			segment_metrics.clear();
		}
	}
	progress.finish_and_clear();
	Ok(RunSummary {
		steps: options.steps,
		samples,
		seconds: started.elapsed().as_secs_f64(),
		final_metrics: last,
	})
}

/// One federated round on a worker: trains `steps` steps from the global weights with fresh
/// optimizer state and returns the update (local weights minus global weights).
pub fn local_update(
	arch: &Architecture,
	global: &ParamSet,
	data: &Dataset,
	config: &TrainConfig,
	steps: u64,
	device: Device,
) -> Result<(ParamSet, Metrics)> {
	data.check_compatible(arch)?;
	let state = TrainingState::fresh(global.clone(), &config.optimizer)?;
	let mut trainer = Trainer::new(arch, &state, config, device)?;
	let mut schedule = BatchSchedule::new(config.seed, data.len(), config.batch_size)?;
	let mut metrics = Vec::with_capacity(steps as usize);
	for step in 0..steps {
		metrics.push(trainer.train_step(data, &schedule.indices(step))?);
	}
	let local = trainer.model().params()?;
	Ok((local.sub(global)?, StepMetrics::read_all(&metrics)?))
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::data::{digits_csv_path, load_digits, train_test_split};

	fn digits_setup() -> (Architecture, Dataset, Dataset) {
		let digits = load_digits(&digits_csv_path()).unwrap();
		let (train, test) = train_test_split(&digits, 360, 0).unwrap();
		(Architecture::from_id("mlp-digits").unwrap(), train, test)
	}

	#[test]
	fn training_learns_digits_and_is_reproducible() {
		let (arch, train, test) = digits_setup();
		let config = TrainConfig::new(OptimizerConfig::sgd(0.1, 0.9), 32, 5);
		let run = || {
			let state =
				TrainingState::fresh(arch.initial_params(1).unwrap(), &config.optimizer).unwrap();
			let mut trainer = Trainer::new(&arch, &state, &config, Device::Cpu).unwrap();
			let mut schedule = BatchSchedule::new(config.seed, train.len(), 32).unwrap();
			let mut hashes = Vec::new();
			train_with_checkpoints(
				&mut trainer,
				&train,
				&mut schedule,
				RunOptions { steps: 150, checkpoint_every: 50, show_progress: false },
				|state, _| {
					hashes.push(state.content_hash());
					Ok(())
				},
			)
			.unwrap();
			(trainer, hashes)
		};
		let (trainer, hashes) = run();
		assert_eq!(hashes.len(), 4);
		let accuracy = evaluate(trainer.model(), &test, 256).unwrap().accuracy;
		assert!(accuracy > 0.9, "test accuracy {accuracy}");
		// Same seed, same thread count, same process: bit-identical checkpoints.
		assert_eq!(run().1, hashes);
	}

	#[test]
	fn adam_state_round_trips_through_checkpoint_files() {
		let (arch, train, _) = digits_setup();
		let config = TrainConfig::new(OptimizerConfig::adam(1e-3), 16, 2);
		let state =
			TrainingState::fresh(arch.initial_params(4).unwrap(), &config.optimizer).unwrap();
		let mut trainer = Trainer::new(&arch, &state, &config, Device::Cpu).unwrap();
		let mut schedule = BatchSchedule::new(2, train.len(), 16).unwrap();
		for step in 0..5 {
			trainer.train_step(&train, &schedule.indices(step)).unwrap();
		}
		let state = trainer.state().unwrap();
		assert_eq!(state.step, 5);
		assert!(state.optimizer.l2_norm() > 0.0);
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("ckpt.safetensors");
		let hash = state.save(&path, &arch).unwrap();
		let loaded = TrainingState::load(&path, &arch, &config.optimizer).unwrap();
		assert_eq!(loaded.content_hash(), hash);
		assert_eq!(loaded, state);
		// Loading with the wrong optimizer is a layout error, not a panic.
		assert!(TrainingState::load(&path, &arch, &OptimizerConfig::sgd(0.1, 0.9)).is_err());
	}

	#[test]
	fn a_negative_second_moment_is_an_impossible_state() {
		let (arch, train, _) = digits_setup();
		let config = TrainConfig::new(OptimizerConfig::adam(1e-3), 16, 2);
		let state =
			TrainingState::fresh(arch.initial_params(4).unwrap(), &config.optimizer).unwrap();
		let mut trainer = Trainer::new(&arch, &state, &config, Device::Cpu).unwrap();
		for step in 0..2 {
			trainer
				.train_step(&train, &BatchSchedule::new(2, train.len(), 16).unwrap().indices(step))
				.unwrap();
		}
		let mut buffers = trainer.state().unwrap().optimizer;
		config.optimizer.check_state(&buffers).unwrap();
		let second = buffers
			.layout()
			.specs()
			.iter()
			.position(|spec| spec.name.starts_with("adam_v/"))
			.unwrap();
		let at = buffers.layout().range(second).start;
		buffers.values_mut()[at] = -1e-12;
		assert!(config.optimizer.check_state(&buffers).is_err());
		// A first moment (or SGD's momentum) may well be negative.
		let first = buffers.layout().specs().iter().position(|s| s.name.starts_with("adam_m/"));
		let at = buffers.layout().range(first.unwrap()).start;
		buffers.values_mut()[at] = -1.0;
		let sgd = OptimizerConfig::sgd(0.1, 0.9);
		let momentum = ParamSet::new(
			sgd.state_layout(&arch.layout().unwrap()).unwrap(),
			vec![-1.0; arch.layout().unwrap().num_values()],
		)
		.unwrap();
		sgd.check_state(&momentum).unwrap();
	}

	/// One step of `config` from `params` on the samples `indices`; the new parameters.
	fn one_step(
		arch: &Architecture,
		params: &ParamSet,
		config: &TrainConfig,
		data: &Dataset,
		indices: &[u32],
	) -> ParamSet {
		let state = TrainingState::fresh(params.clone(), &config.optimizer).unwrap();
		let mut trainer = Trainer::new(arch, &state, config, Device::Cpu).unwrap();
		trainer.train_step(data, indices).unwrap();
		trainer.model().params().unwrap()
	}

	#[test]
	fn adamw_decays_every_weight_before_its_adam_step() {
		let (arch, train, _) = digits_setup();
		let params = arch.initial_params(3).unwrap();
		let indices: Vec<u32> = (0..32).collect();
		let (lr, weight_decay) = (1e-2, 0.1);
		let adam = OptimizerConfig::Adam { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8 };
		let adamw = OptimizerConfig::AdamW { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay };
		let after_adam = one_step(&arch, &params, &TrainConfig::new(adam, 32, 0), &train, &indices);
		let after_adamw =
			one_step(&arch, &params, &TrainConfig::new(adamw, 32, 0), &train, &indices);
		// PyTorch's AdamW: w ← w·(1 − lr·wd) − adam_step(grad at w), i.e. Adam's result less
		// lr·wd·w.
		for ((adam, adamw), start) in
			after_adam.values().iter().zip(after_adamw.values()).zip(params.values())
		{
			let expected = adam - (lr * weight_decay) as f32 * start;
			assert!((adamw - expected).abs() < 1e-6, "{adamw} vs {expected}");
		}
		// Without decay, AdamW is Adam bit for bit.
		let no_decay =
			OptimizerConfig::AdamW { lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.0 };
		let plain = one_step(&arch, &params, &TrainConfig::new(no_decay, 32, 0), &train, &indices);
		assert_eq!(plain, after_adam);
	}

	#[test]
	fn a_bf16_step_is_reproducible_close_to_float32_and_keeps_float32_state() {
		let (arch, train, _) = digits_setup();
		let params = arch.initial_params(3).unwrap();
		let indices: Vec<u32> = (0..64).collect();
		let f32_config = TrainConfig::new(OptimizerConfig::sgd(0.1, 0.0), 64, 0);
		let bf16_config = TrainConfig { precision: Precision::Bf16, ..f32_config.clone() };
		let in_f32 = one_step(&arch, &params, &f32_config, &train, &indices);
		let in_bf16 = one_step(&arch, &params, &bf16_config, &train, &indices);
		// The same bits every time (what a replay on the same kind of device relies on).
		assert_eq!(one_step(&arch, &params, &bf16_config, &train, &indices), in_bf16);
		// bf16 products change the step, by about bf16's precision (8 bits of mantissa) and no
		// more.
		assert_ne!(in_bf16, in_f32);
		let step_in_f32 = in_f32.sub(&params).unwrap();
		let deviation = in_bf16.sub(&in_f32).unwrap().l2_norm() / step_in_f32.l2_norm();
		assert!(deviation < 3e-2, "bf16 step {deviation:e} from the float32 step");
		// Autocast ends with the forward pass: nothing after the step runs in bf16.
		assert!(!crate::device::autocast_enabled(Device::Cpu));
		// A job that says nothing trains in float32 and serializes as before.
		let json = serde_json::to_string(&bf16_config).unwrap();
		assert!(json.contains(r#""precision":"bf16""#));
		assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), bf16_config);
		assert!(!serde_json::to_string(&f32_config).unwrap().contains("precision"));
	}

	#[test]
	fn a_plain_configuration_serializes_as_before_the_recipe_existed() {
		// Commitments of runs without a schedule, clipping or micro-batches keep their bytes.
		let config = TrainConfig::new(OptimizerConfig::sgd(0.5, 0.9), 32, 5);
		let json = serde_json::to_string(&config).unwrap();
		assert_eq!(
			json,
			r#"{"optimizer":{"name":"sgd","lr":0.5,"momentum":0.9},"batch_size":32,"seed":5}"#
		);
		assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), config);
		let recipe = TrainConfig { clip_norm: Some(1.0), micro_batches: 4, ..config };
		let json = serde_json::to_string(&recipe).unwrap();
		assert!(json.contains(r#""clip_norm":1.0"#) && json.contains(r#""micro_batches":4"#));
		assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), recipe);
	}

	#[test]
	fn the_learning_rate_warms_up_then_decays_on_a_cosine() {
		let schedule =
			LrSchedule::WarmupCosine { warmup_steps: 10, total_steps: 110, min_fraction: 0.1 };
		let lr = |step| schedule.lr_at(1.0, step);
		assert_eq!(lr(0), 0.0);
		assert_eq!(lr(5), 0.5);
		assert_eq!(lr(10), 1.0);
		// Halfway through the decay: the middle of peak and floor.
		assert!((lr(60) - 0.55).abs() < 1e-12, "{}", lr(60));
		assert!((lr(110) - 0.1).abs() < 1e-12);
		assert!((lr(1_000) - 0.1).abs() < 1e-12, "held at the floor after the end");
		assert!((1..110).all(|step| lr(step + 1) <= lr(step) || step < 10));
		assert_eq!(LrSchedule::Constant.lr_at(0.3, 7), 0.3);
		let bad = LrSchedule::WarmupCosine { warmup_steps: 20, total_steps: 10, min_fraction: 0.0 };
		assert!(bad.validate().is_err());
	}

	#[test]
	fn micro_batches_take_the_same_step_as_one_batch() {
		let (arch, train, _) = digits_setup();
		let params = arch.initial_params(5).unwrap();
		let indices: Vec<u32> = (0..30).collect();
		let whole = TrainConfig::new(OptimizerConfig::sgd(0.1, 0.9), 30, 0);
		// 30 samples in 4 micro-batches of 8, 8, 8 and 6: unequal parts are weighted.
		let split = TrainConfig { micro_batches: 4, ..whole.clone() };
		let once = one_step(&arch, &params, &whole, &train, &indices);
		let accumulated = one_step(&arch, &params, &split, &train, &indices);
		let moved = once.sub(&params).unwrap().l2_norm();
		let apart = once.sub(&accumulated).unwrap().l2_norm();
		assert!(moved > 1e-3 && apart < 1e-5 * moved, "moved {moved}, apart {apart}");
		// More micro-batches than samples, or none, is refused.
		assert!(TrainConfig { micro_batches: 31, ..whole.clone() }.validate().is_err());
		assert!(TrainConfig { micro_batches: 0, ..whole }.validate().is_err());
	}

	#[test]
	fn clipping_bounds_the_gradient_norm_of_a_step() {
		let (arch, train, _) = digits_setup();
		let params = arch.initial_params(6).unwrap();
		let indices: Vec<u32> = (0..32).collect();
		let lr = 0.5;
		let plain = TrainConfig::new(OptimizerConfig::sgd(lr, 0.0), 32, 0);
		let unclipped = one_step(&arch, &params, &plain, &train, &indices).sub(&params).unwrap();
		let max_norm = 1e-3;
		let clipped_config = TrainConfig { clip_norm: Some(max_norm), ..plain.clone() };
		let clipped =
			one_step(&arch, &params, &clipped_config, &train, &indices).sub(&params).unwrap();
		// Plain SGD moves by lr·grad: the clipped step is at most lr·max_norm long, in the same
		// direction as the unclipped one.
		assert!(unclipped.l2_norm() > 10.0 * lr * max_norm);
		assert!(clipped.l2_norm() <= lr * max_norm * (1.0 + 1e-3), "{}", clipped.l2_norm());
		let cosine: f64 = clipped
			.values()
			.iter()
			.zip(unclipped.values())
			.map(|(a, b)| f64::from(a * b))
			.sum::<f64>()
			/ (clipped.l2_norm() * unclipped.l2_norm());
		assert!(cosine > 0.999, "direction kept: {cosine}");
		// A bound above the norm changes nothing.
		let loose = TrainConfig { clip_norm: Some(1e9), ..plain };
		let loose = one_step(&arch, &params, &loose, &train, &indices).sub(&params).unwrap();
		assert!(loose.sub(&unclipped).unwrap().l2_norm() < 1e-6 * unclipped.l2_norm());
	}

	#[test]
	fn incompatible_data_is_rejected() {
		let (_, train, _) = digits_setup();
		let arch = Architecture::from_id("cnn:ch=1,side=28,conv=8,out=10").unwrap();
		let config = TrainConfig::new(OptimizerConfig::sgd(0.1, 0.0), 8, 0);
		let result =
			local_update(&arch, &arch.initial_params(0).unwrap(), &train, &config, 1, Device::Cpu);
		assert!(matches!(result, Err(WorkerError::Data(_))));
	}
}
