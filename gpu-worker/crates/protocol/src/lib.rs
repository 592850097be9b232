//! What a job means off chain: its hyperparameters, the data each selected worker trains on,
//! the blob formats of models and updates, and the checks a validator runs on an update.
//!
//! Everything here is deterministic and chain-independent, so that every worker, validator
//! and aggregator derives the same values from the same on-chain record.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tch::Device;

use agora_core::merkle::merkle_root;
use agora_ml::aggregate::{aggregate, Aggregator, WorkerUpdate};
use agora_ml::compress::{decompress, Compression, Compressor};
use agora_ml::data::{decode_shard, Dataset};
use agora_ml::digest::Digest;
use agora_ml::error::{Result, WorkerError};
use agora_ml::models::{Architecture, Model};
use agora_ml::outer::OuterOptimizer;
use agora_ml::params::ParamSet;
use agora_ml::train::{
	evaluate, LrSchedule, OptimizerConfig, Precision, TrainConfig, TrainingState,
};
#[cfg(any(test, feature = "cheats"))]
use agora_proof::adversary::{dishonest_run, Cheat};
use agora_proof::{
	committed_run, committed_run_until, CommittedRun, ReplayVerifier, RunBinding,
	TrainingCommitment,
};

/// A job's off-chain hyperparameters, stored as JSON in `JobSpec::hyperparameters`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hyperparameters {
	pub optimizer: OptimizerConfig,
	pub batch_size: usize,
	/// Base seed of the batch schedule; round `r` uses `seed + r`.
	pub seed: u64,
	/// The initial weights are `Architecture::initial_params(init_seed)`, so any participant
	/// can rebuild them and check them against the job's `initial_weights`.
	pub init_seed: u64,
	pub aggregator: Aggregator,
	/// Update compression; `None` sends updates as safetensors.
	#[serde(default)]
	pub compression: Option<Compression>,
	/// The held-out shards (content hashes of `prepare-data` shards) on which validators score
	/// every update. They are under the job's on-chain spec, so every validator scores on the
	/// same data and honest validators agree; a job without them leaves each validator to its
	/// own held-out set.
	#[serde(default, skip_serializing_if = "Vec::is_empty")]
	pub holdout: Vec<Digest>,
	/// A language-model job's tokenizer: the content hash of its JSON (`prepare-text`'s
	/// `tokenizer-<hash>.json`), the one its token shards were cut with. Under the on-chain spec,
	/// so the job's workers fetch and check it before applying and serve it after, and whoever
	/// downloads the model decodes with exactly that tokenizer.
	#[serde(default, skip_serializing_if = "Option::is_none")]
	pub tokenizer: Option<Digest>,
	/// The learning rate by step (constant unless the job says otherwise).
	#[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
	pub schedule: LrSchedule,
	/// The largest global gradient norm of a step, if clipped.
	#[serde(default, skip_serializing_if = "Option::is_none")]
	pub clip_norm: Option<f64>,
	/// Micro-batches per step (gradient accumulation). Part of the job, not each worker's
	/// choice: the split fixes the order in which gradients are summed, so every replay of a
	/// step adds them up the same way.
	#[serde(default = "one", skip_serializing_if = "is_one")]
	pub micro_batches: usize,
	/// DiLoCo's outer optimizer over the aggregated update; `None` adds the aggregate to the
	/// model as it is (federated averaging).
	#[serde(default, skip_serializing_if = "Option::is_none")]
	pub outer: Option<OuterOptimizer>,
	/// What the inner optimizer starts each round from.
	#[serde(default, skip_serializing_if = "InnerState::is_fresh")]
	pub inner_state: InnerState,
	/// The arithmetic of the forward passes (float32 unless the job says `bf16`). A validator
	/// replays in the same precision; see docs/language-models.md for what a bf16 job's replay
	/// tolerance rests on.
	#[serde(default, skip_serializing_if = "Precision::is_f32")]
	pub precision: Precision,
	/// Whether the next round may train while a round is verified.
	#[serde(default, skip_serializing_if = "Overlap::is_sequential")]
	pub overlap: Overlap,
}

/// Whether a job's rounds overlap: the next round's runs starting while a round is verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
	/// Every round trains from the previous round's record, once it exists.
	#[default]
	Sequential,
	/// A worker drawn for the next round whose update to this round is aggregated may train
	/// the next round from its eager start ([`RoundContext::eager_start`]) while this round is
	/// verified: the verification's wait hides behind training, at a cost in held-out loss that
	/// shrinks as rounds lengthen (docs/language-models.md). For jobs whose training outlasts
	/// the verification; short rounds pay the cost and gain little.
	Eager,
}

impl Overlap {
	fn is_sequential(&self) -> bool {
		*self == Overlap::Sequential
	}
}

/// What the inner optimizer (the job's AdamW or SGD) starts each round from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InnerState {
	/// Zeroed buffers at step 0 every round: the schedule restarts every round.
	#[default]
	Fresh,
	/// The accepted workers' buffers at the end of the previous round, combined by the job's
	/// aggregation rule (their mean under FedAvg) and kept in the round's record, at step
	/// `completed rounds × local_steps`: the optimizer and its schedule run on across rounds as
	/// in one long run. Combined rather than each worker's own so that the state is checked by
	/// hash like the model: a worker free to choose its starting momentum could steer its update
	/// while every step it replays is honest.
	Averaged,
}

impl InnerState {
	fn is_fresh(&self) -> bool {
		*self == InnerState::Fresh
	}
}

fn one() -> usize {
	1
}

fn is_one(count: &usize) -> bool {
	*count == 1
}

impl Hyperparameters {
	pub fn from_json(bytes: &[u8]) -> Result<Self> {
		let parsed: Self = serde_json::from_slice(bytes)
			.map_err(|e| WorkerError::InvalidArgument(format!("job hyperparameters: {e}")))?;
		parsed.train_config(0).validate()?;
		if let Some(outer) = &parsed.outer {
			outer.validate()?;
		}
		if matches!(parsed.compression, Some(Compression::TopK { .. })) {
			// Top-k carries an error-feedback residual between rounds, which a validator
			// cannot reproduce; only stateless compression is verifiable.
			return Err(WorkerError::InvalidArgument(
				"top-k compression is not verifiable; use int8 or none".into(),
			));
		}
		Ok(parsed)
	}

	/// Errors if a run of these hyperparameters with a checkpoint every `checkpoint_interval`
	/// steps could not be judged fairly: bf16 segments longer than
	/// [`agora_proof::MAX_BF16_SEGMENT_STEPS`].
	pub fn check_segment_length(&self, checkpoint_interval: u32) -> Result<()> {
		let longest = agora_proof::MAX_BF16_SEGMENT_STEPS;
		if self.precision == Precision::Bf16 && checkpoint_interval > longest {
			return Err(WorkerError::InvalidArgument(format!(
				"bf16 segments of {checkpoint_interval} steps: the bf16 replay tolerance holds for \
				 {longest} at most"
			)));
		}
		Ok(())
	}

	/// The training configuration of `round`.
	pub fn train_config(&self, round: u32) -> TrainConfig {
		TrainConfig {
			schedule: self.schedule,
			clip_norm: self.clip_norm,
			micro_batches: self.micro_batches,
			precision: self.precision,
			..TrainConfig::new(
				self.optimizer,
				self.batch_size,
				self.seed.wrapping_add(u64::from(round)),
			)
		}
	}
}

/// Encodes a model as the canonical blob whose hash goes on chain: safetensors with the
/// architecture id as its only metadata (one key, so the header is byte-for-byte stable).
pub fn model_blob(arch: &Architecture, params: &ParamSet) -> Result<Vec<u8>> {
	params.to_safetensors(&BTreeMap::from([("arch".to_string(), arch.id())]))
}

/// Prefix of the outer optimizer's momentum in a round's model blob.
const OUTER_MOMENTUM_PREFIX: &str = "outer.momentum/";
/// Prefix of the carried inner optimizer buffers in a round's model blob.
const INNER_OPTIMIZER_PREFIX: &str = "inner.optimizer/";
/// Prefix of the updates a round's model record aggregated: one tensor per update, named by
/// its worker's account id in hex, whose 32 values are the bytes of the update's hash. The
/// safetensors header keeps one metadata key (a second would be written in a random order,
/// and every participant must produce the same bytes), so the list travels as tensors.
const AGGREGATED_PREFIX: &str = "aggregated/";
/// The most updates a round's record names: far above the runtime's `MaxWorkersPerRound` (16),
/// and what bounds the record's size.
pub const MAX_AGGREGATED_UPDATES: usize = 64;

/// An update a round's record aggregated, and whose it was: what lets a validator of the next
/// round rebuild the eager start of that update's worker ([`RoundContext::eager_start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AggregatedUpdate {
	/// The worker's account id.
	pub worker: [u8; 32],
	/// Hash of the update blob the worker submitted.
	pub update: Digest,
}

/// The updates of a record as tensors under [`AGGREGATED_PREFIX`] (see there).
fn aggregated_tensors(updates: &[AggregatedUpdate]) -> Result<ParamSet> {
	if updates.len() > MAX_AGGREGATED_UPDATES {
		return Err(WorkerError::InvalidArgument(format!(
			"a record names at most {MAX_AGGREGATED_UPDATES} updates, not {}",
			updates.len()
		)));
	}
	let specs = updates
		.iter()
		.map(|u| agora_ml::params::TensorSpec { name: Digest(u.worker).to_hex(), shape: vec![32] })
		.collect();
	let layout = agora_ml::params::Layout::new(specs)?;
	let mut values = Vec::with_capacity(32 * updates.len());
	let mut sorted = updates.to_vec();
	sorted.sort();
	for update in &sorted {
		values.extend(update.update.0.iter().map(|&byte| f32::from(byte)));
	}
	ParamSet::new(layout, values)
}

/// The updates a record's [`AGGREGATED_PREFIX`] tensors name, rejecting anything that is not
/// a worker id and a hash's 32 bytes.
fn aggregated_updates(tensors: &ParamSet) -> Result<Vec<AggregatedUpdate>> {
	let specs = tensors.layout().specs();
	if specs.len() > MAX_AGGREGATED_UPDATES {
		return Err(WorkerError::Safetensors(format!(
			"record names {} updates, more than {MAX_AGGREGATED_UPDATES}",
			specs.len()
		)));
	}
	let malformed = |name: &str| WorkerError::Safetensors(format!("aggregated update `{name}`"));
	specs
		.iter()
		.enumerate()
		.map(|(index, spec)| {
			let worker: Digest = spec.name.parse().map_err(|_| malformed(&spec.name))?;
			let mut hash = [0u8; 32];
			let values = tensors.tensor(index);
			if spec.shape != [32] || values.len() != 32 {
				return Err(malformed(&spec.name));
			}
			for (byte, value) in hash.iter_mut().zip(values) {
				if !(0.0..=255.0).contains(value) || value.fract() != 0.0 {
					return Err(malformed(&spec.name));
				}
				*byte = *value as u8;
			}
			Ok(AggregatedUpdate { worker: worker.0, update: Digest(hash) })
		})
		.collect()
}

/// A round's model record: the model, and for a job with an outer optimizer that optimizer's
/// momentum, which the next round's outer step needs. Both are in the one blob whose hash the
/// chain records, so the state every participant steps from is checked with the model.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundModel {
	pub params: ParamSet,
	/// `None` before the first outer step (the job's initial weights): zero momentum.
	pub outer_momentum: Option<ParamSet>,
	/// The inner optimizer's buffers the next round starts from ([`InnerState::Averaged`]);
	/// named as in a checkpoint (`exp_avg/fc0.weight`, ...). `None`: zeroed.
	pub inner_optimizer: Option<ParamSet>,
	/// The updates this record aggregated, by worker (none for a job's initial weights).
	pub aggregated: Vec<AggregatedUpdate>,
}

/// Encodes a round's model record: [`model_blob`] when it has no optimizer state and names no
/// updates, else the model, the states (tensors prefixed `outer.momentum/` and
/// `inner.optimizer/`) and the aggregated updates (`aggregated/`) in one safetensors file.
pub fn round_model_blob(arch: &Architecture, model: &RoundModel) -> Result<Vec<u8>> {
	let mut parts: Vec<(&str, &ParamSet)> = vec![("", &model.params)];
	if let Some(momentum) = &model.outer_momentum {
		parts.push((OUTER_MOMENTUM_PREFIX, momentum));
	}
	if let Some(inner) = &model.inner_optimizer {
		parts.push((INNER_OPTIMIZER_PREFIX, inner));
	}
	let aggregated = aggregated_tensors(&model.aggregated)?;
	if !model.aggregated.is_empty() {
		parts.push((AGGREGATED_PREFIX, &aggregated));
	}
	match parts.as_slice() {
		[_] => model_blob(arch, &model.params),
		_ => model_blob(arch, &ParamSet::merge_prefixed(&parts)?),
	}
}

/// Decodes a round's model record of architecture `arch`, rejecting another architecture, a
/// stray tensor, weights or momentum of another shape, and non-finite values. The inner
/// optimizer's buffers are checked against the job's optimizer when a round starts from them
/// ([`RoundContext::start_state`]). Every record is also checked by hash against the one the
/// chain recorded, which the participants recomputed.
pub fn decode_round_model(arch: &Architecture, bytes: &[u8]) -> Result<RoundModel> {
	let (all, metadata) = ParamSet::from_safetensors(bytes)?;
	if metadata.get("arch").map(String::as_str) != Some(arch.id().as_str()) {
		return Err(WorkerError::Safetensors(format!("model blob is not of architecture {arch}")));
	}
	let layout = arch.layout()?;
	let params =
		all.without_prefixes(&[OUTER_MOMENTUM_PREFIX, INNER_OPTIMIZER_PREFIX, AGGREGATED_PREFIX])?;
	layout.check_matches(params.layout())?;
	params.check_finite()?;
	let part = |prefix: &str| -> Result<Option<ParamSet>> {
		let set = all.strip_prefix(prefix)?;
		if set.layout().specs().is_empty() {
			return Ok(None);
		}
		set.check_finite()?;
		Ok(Some(set))
	};
	let outer_momentum = part(OUTER_MOMENTUM_PREFIX)?;
	if let Some(momentum) = &outer_momentum {
		layout.check_matches(momentum.layout())?;
	}
	let aggregated = aggregated_updates(&all.strip_prefix(AGGREGATED_PREFIX)?)?;
	Ok(RoundModel {
		params,
		outer_momentum,
		inner_optimizer: part(INNER_OPTIMIZER_PREFIX)?,
		aggregated,
	})
}

/// Decodes the model of a model blob of architecture `arch` (a round's record, whose outer
/// state a model's user does not need), rejecting other layouts and non-finite values.
pub fn decode_model(arch: &Architecture, bytes: &[u8]) -> Result<ParamSet> {
	Ok(decode_round_model(arch, bytes)?.params)
}

/// Decodes a model blob of whatever architecture it names (a downloaded model, checked against
/// that architecture as [`decode_model`] does).
pub fn decode_any_model(bytes: &[u8]) -> Result<(Architecture, ParamSet)> {
	let (_, metadata) = ParamSet::from_safetensors(bytes)?;
	let id = metadata
		.get("arch")
		.ok_or_else(|| WorkerError::Safetensors("model blob names no architecture".into()))?;
	let arch = Architecture::from_id(id)?;
	let params = decode_model(&arch, bytes)?;
	Ok((arch, params))
}

/// Encodes an update (local weights minus global weights) as the blob a worker publishes.
pub fn update_blob(
	arch: &Architecture,
	delta: &ParamSet,
	compression: Option<Compression>,
) -> Result<Vec<u8>> {
	match compression {
		None => model_blob(arch, delta),
		Some(method) => Compressor::new(method)?.compress(delta),
	}
}

/// Decodes an update blob.
pub fn decode_update(
	arch: &Architecture,
	bytes: &[u8],
	compression: Option<Compression>,
) -> Result<ParamSet> {
	let delta = match compression {
		None => decode_model(arch, bytes)?,
		Some(_) => decompress(&arch.layout()?, bytes)?,
	};
	delta.check_finite()?;
	Ok(delta)
}

/// The shards a selected worker trains on: shard `i` of the job goes to the worker at position
/// `i mod n` of the round's selected workers (the convention of pallet-tasks).
pub fn worker_shards(shards: &[Digest], position: usize, workers: usize) -> Vec<Digest> {
	shards
		.iter()
		.enumerate()
		.filter(|(index, _)| workers > 0 && index % workers == position)
		.map(|(_, hash)| *hash)
		.collect()
}

/// Builds a worker's dataset from its shard blobs (in order) and its commitment root.
pub fn assemble_dataset(shards: &[(Digest, Vec<u8>)]) -> Result<(Dataset, Digest)> {
	if shards.is_empty() {
		return Err(WorkerError::Data("no shards assigned".into()));
	}
	let mut parts = Vec::with_capacity(shards.len());
	for (hash, bytes) in shards {
		let actual = Digest::of(&[bytes]);
		if actual != *hash {
			return Err(WorkerError::HashMismatch {
				what: "shard".into(),
				expected: hash.to_hex(),
				actual: actual.to_hex(),
			});
		}
		parts.push(decode_shard(bytes)?);
	}
	let root = merkle_root(&shards.iter().map(|(hash, _)| *hash).collect::<Vec<_>>())?;
	Ok((Dataset::concat(&parts)?, root))
}

/// The most bytes a peer may send for each kind of blob a round uses, derived from what the
/// blob is, so that a peer that announces more is refused before anything is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLimits {
	/// A round's record (the global model, an aggregate): the architecture's weights as f32,
	/// as the job asks as many again for the outer optimizer's momentum and one set per buffer
	/// of the inner optimizer, and the updates it aggregated.
	pub model: u64,
	/// An update, compressed or not (top-k keeps an index beside each value).
	pub update: u64,
	/// A checkpoint: weights and the optimizer's buffers.
	pub checkpoint: u64,
}

/// Bytes of safetensors framing allowed beyond `tensors` tensors' data: an 8-byte length and a
/// JSON header that names each tensor with its dtype, shape and offsets.
fn framing(tensors: usize) -> u64 {
	8 + 4096 + 512 * tensors as u64
}

fn f32_bytes(layout: &agora_ml::params::Layout) -> u64 {
	4 * layout.specs().iter().map(|spec| spec.numel() as u64).sum::<u64>()
}

/// The most bytes of the aggregated updates a round's record names: 32 values and a header
/// entry each.
fn aggregated_bytes() -> u64 {
	MAX_AGGREGATED_UPDATES as u64 * (32 * 4 + 512)
}

/// The most bytes a model blob of `arch` can be: its weights and, for a round's record, as many
/// values again for the outer optimizer's momentum, twice as many for the inner optimizer's
/// buffers (Adam's two moments), and the updates it aggregated.
pub fn max_model_bytes(arch: &Architecture) -> Result<u64> {
	let layout = arch.layout()?;
	Ok(4 * f32_bytes(&layout) + framing(4 * layout.specs().len()) + aggregated_bytes())
}

impl BlobLimits {
	pub fn new(arch: &Architecture, hyperparameters: &Hyperparameters) -> Result<Self> {
		let layout = arch.layout()?;
		let buffers = hyperparameters.optimizer.state_layout(&layout)?;
		let weights = f32_bytes(&layout) + framing(layout.specs().len());
		let mut model = weights + aggregated_bytes();
		if hyperparameters.outer.is_some() {
			model += weights;
		}
		if hyperparameters.inner_state == InnerState::Averaged {
			model += f32_bytes(&buffers) + framing(buffers.specs().len());
		}
		Ok(BlobLimits {
			model,
			update: 2 * weights,
			checkpoint: weights + f32_bytes(&buffers) + framing(buffers.specs().len()),
		})
	}
}

/// The most bytes of a training commitment (JSON) with `checkpoints` segments: a fixed part
/// (binding, architecture, configuration) and one leaf per checkpoint.
pub fn max_commitment_bytes(checkpoints: u32) -> u64 {
	16 * 1024 + 1024 * (u64::from(checkpoints) + 1)
}

/// The most bytes of one dataset shard a peer may send: 64 MiB (`prepare-data` writes shards
/// of a few megabytes; a job's data is many shards).
pub const MAX_SHARD_BYTES: u64 = 64 << 20;

/// Everything about one round that its participants agree on.
pub struct RoundContext {
	pub arch: Architecture,
	pub hyperparameters: Hyperparameters,
	pub job: u64,
	pub round: u32,
	pub local_steps: u64,
	pub checkpoint_interval: u64,
	/// The global model the round starts from.
	pub global: ParamSet,
	/// The outer optimizer's momentum in the round's model record (`None`: zero).
	pub outer_momentum: Option<ParamSet>,
	/// The inner optimizer's buffers in the round's model record (`None`: zero).
	pub inner_optimizer: Option<ParamSet>,
	/// Rounds of the job completed so far (records on chain): a job that carries its optimizer
	/// goes on from step `completed_rounds × local_steps`. Voided rounds do not count, since
	/// they left no record to go on from.
	pub completed_rounds: u32,
	/// The updates the record this round starts from aggregated (none for the job's initial
	/// weights): their workers may have started this round eagerly ([`Self::eager_start`]).
	pub aggregated: Vec<AggregatedUpdate>,
}

impl RoundContext {
	pub fn train_config(&self) -> TrainConfig {
		self.hyperparameters.train_config(self.round)
	}

	/// The state every honest run of the round starts from: the global model, and a fresh
	/// optimizer or (for [`InnerState::Averaged`]) the record's buffers at the step where the
	/// previous rounds left off.
	pub fn start_state(&self) -> Result<TrainingState> {
		let optimizer = self.train_config().optimizer;
		let fresh = TrainingState::fresh(self.global.clone(), &optimizer)?;
		if self.hyperparameters.inner_state == InnerState::Fresh {
			return Ok(fresh);
		}
		let buffers = match &self.inner_optimizer {
			Some(buffers) => {
				fresh.optimizer.layout().check_matches(buffers.layout())?;
				optimizer.check_state(buffers)?;
				buffers.clone()
			},
			None => fresh.optimizer,
		};
		let step = u64::from(self.completed_rounds).saturating_mul(self.local_steps);
		Ok(TrainingState { step, params: self.global.clone(), optimizer: buffers })
	}

	/// Where a worker whose update to this round is `own_update` may start the next round
	/// before this round's record exists: this round's start stepped by its own update in
	/// place of the aggregate it does not know yet (the outer optimizer's step with this
	/// round's momentum, or the plain sum without one), with this round's starting optimizer
	/// buffers at the step the next round starts from ("eager" updates, Kale et al. 2025). A
	/// validator of the next round rebuilds it from this round's record and that update, which
	/// the next record names as aggregated: only a worker whose update was accepted may start
	/// there.
	pub fn eager_start(&self, own_update: &ParamSet) -> Result<TrainingState> {
		let start = self.start_state()?;
		let params = match &self.hyperparameters.outer {
			None => self.global.add(own_update)?,
			Some(outer) => {
				outer.step(&self.global, own_update, self.outer_momentum.as_ref())?.model
			},
		};
		let step = match self.hyperparameters.inner_state {
			InnerState::Fresh => start.step,
			InnerState::Averaged => start.step.saturating_add(self.local_steps),
		};
		Ok(TrainingState { step, params, optimizer: start.optimizer })
	}

	/// `worker`'s honest run of the next round from its eager start (see
	/// [`Self::eager_start`]), trained while this round is verified: committed for the next
	/// round, with the next round's configuration. Given up at the first checkpoint after
	/// `stop` is set (the run turned out not to be needed).
	pub fn train_next_round_early(
		&self,
		own_update: &ParamSet,
		worker: [u8; 32],
		(data, data_root): (&Dataset, Digest),
		device: Device,
		stop: &AtomicBool,
	) -> Result<CommittedRun> {
		let next_round = self.round.checked_add(1).ok_or_else(|| {
			WorkerError::InvalidArgument("no round follows the last round index".into())
		})?;
		let config = self.hyperparameters.train_config(next_round);
		let run = committed_run_until(
			&self.arch,
			&self.eager_start(own_update)?,
			&config,
			data,
			data_root,
			self.local_steps,
			self.checkpoint_interval,
			device,
			stop,
		)?;
		let binding = RunBinding { job: self.job, round: next_round, worker };
		Ok(CommittedRun { commitment: run.commitment.bind(binding)?, ..run })
	}

	/// The samples every selected worker trains on: `local_steps` batches. This, not what a
	/// worker declares, weighs its update in the aggregate; a declared count that differs
	/// makes the update invalid.
	pub fn samples_per_worker(&self) -> u32 {
		let samples = self.local_steps.saturating_mul(self.hyperparameters.batch_size as u64);
		u32::try_from(samples).unwrap_or(u32::MAX)
	}

	/// What binds a run of `worker` to this round.
	pub fn binding(&self, worker: [u8; 32]) -> RunBinding {
		RunBinding { job: self.job, round: self.round, worker }
	}

	/// `worker`'s honest run: `local_steps` steps with a checkpoint every
	/// `checkpoint_interval`, committed for this round and worker.
	pub fn train(
		&self,
		worker: [u8; 32],
		data: &Dataset,
		data_root: Digest,
		device: Device,
	) -> Result<CommittedRun> {
		let run = committed_run(
			&self.arch,
			&self.start_state()?,
			&self.train_config(),
			data,
			data_root,
			self.local_steps,
			self.checkpoint_interval,
			device,
		)?;
		Ok(CommittedRun { commitment: run.commitment.bind(self.binding(worker))?, ..run })
	}

	/// [`Self::train`], deviating as `cheat` says (tests and demonstrations only).
	#[cfg(any(test, feature = "cheats"))]
	pub fn train_cheating(
		&self,
		worker: [u8; 32],
		data: &Dataset,
		data_root: Digest,
		cheat: Cheat,
		device: Device,
	) -> Result<CommittedRun> {
		let (steps, checkpoint_every) = match cheat {
			Cheat::FewerSteps => (self.local_steps.div_ceil(self.checkpoint_interval.max(1)), 1),
			_ => (self.local_steps, self.checkpoint_interval),
		};
		let run = dishonest_run(
			&self.arch,
			&self.start_state()?,
			&self.train_config(),
			data,
			data_root,
			steps,
			checkpoint_every,
			cheat,
			device,
		)?;
		Ok(CommittedRun { commitment: run.commitment.bind(self.binding(worker))?, ..run })
	}

	/// The runs' final optimizer buffers combined with the job's aggregation rule (the mean, or
	/// a robust rule's choice), in the aggregate's canonical order, so that every participant
	/// gets the same bits. Validators refused every accepted run whose buffers no honest run
	/// could end with (a negative second moment), so the combination is a valid state too.
	fn combined_optimizer_state(
		&self,
		params: &agora_ml::params::Layout,
		updates: &[WorkerUpdate],
		final_states: &[TrainingState],
	) -> Result<ParamSet> {
		if final_states.len() != updates.len() {
			return Err(WorkerError::InvalidArgument(format!(
				"{} final optimizer states for {} updates",
				final_states.len(),
				updates.len()
			)));
		}
		let layout = self.train_config().optimizer.state_layout(params)?;
		let buffers: Vec<WorkerUpdate> = final_states
			.iter()
			.map(|state| WorkerUpdate { delta: state.optimizer.clone(), num_samples: 1 })
			.collect();
		let combined = aggregate(self.hyperparameters.aggregator, &layout, &buffers)?.delta;
		self.train_config().optimizer.check_state(&combined)?;
		Ok(combined)
	}

	/// How big each of the round's blobs may be.
	pub fn blob_limits(&self) -> Result<BlobLimits> {
		BlobLimits::new(&self.arch, &self.hyperparameters)
	}

	/// The update of a finished run: its last state's weights minus its first's (the round's
	/// model, or the worker's eager start).
	pub fn delta_of(&self, run: &CommittedRun) -> Result<ParamSet> {
		let (Some(first), Some(last)) = (run.checkpoints.first(), run.checkpoints.last()) else {
			return Err(WorkerError::InvalidArgument("run has no checkpoints".into()));
		};
		last.params.sub(&first.params)
	}

	/// Aggregates accepted updates with the job's rule, takes the outer optimizer's step if the
	/// job has one, averages the accepted runs' final optimizer buffers if the job carries them
	/// (`final_states`, one per accepted update, ignored otherwise), names the updates by
	/// worker (`aggregated`, one per update; recorded if the job overlaps its rounds), and
	/// returns the next round's model record as a blob and its hash
	/// (what the aggregator posts and the validators recompute).
	pub fn aggregate(
		&self,
		updates: &[WorkerUpdate],
		final_states: &[TrainingState],
		aggregated: Vec<AggregatedUpdate>,
	) -> Result<(Vec<u8>, Digest)> {
		if aggregated.len() != updates.len() {
			return Err(WorkerError::InvalidArgument(format!(
				"{} updates named for {} aggregated",
				aggregated.len(),
				updates.len()
			)));
		}
		let layout = self.arch.layout()?;
		let aggregate = aggregate(self.hyperparameters.aggregator, &layout, updates)?;
		let (params, outer_momentum) = match &self.hyperparameters.outer {
			None => (self.global.add(&aggregate.delta)?, None),
			Some(outer) => {
				let step =
					outer.step(&self.global, &aggregate.delta, self.outer_momentum.as_ref())?;
				(step.model, Some(step.momentum))
			},
		};
		let inner_optimizer = match self.hyperparameters.inner_state {
			InnerState::Fresh => None,
			InnerState::Averaged => {
				Some(self.combined_optimizer_state(&layout, updates, final_states)?)
			},
		};
		// Named only where a next round may start from them: a job that does not overlap its
		// rounds keeps the records of daemons that name nothing.
		let aggregated = match self.hyperparameters.overlap {
			Overlap::Eager => aggregated,
			Overlap::Sequential => Vec::new(),
		};
		let next = RoundModel { params, outer_momentum, inner_optimizer, aggregated };
		let blob = round_model_blob(&self.arch, &next)?;
		let hash = Digest::of(&[&blob]);
		Ok((blob, hash))
	}
}

/// Evidence a validator gathered for one update.
pub struct UpdateEvidence {
	pub commitment: TrainingCommitment,
	/// Checkpoint states by index: the challenged segments' ends and the last checkpoint.
	pub checkpoints: BTreeMap<u32, TrainingState>,
	pub delta: ParamSet,
	/// Data the worker was assigned, and its root; `None` for a job on private data, which
	/// only its worker has: nothing can be replayed, and the update is judged on its run's
	/// commitment and on held-out data alone.
	pub data: Option<(Dataset, Digest)>,
	/// The worker's eager start ([`RoundContext::eager_start`] of the previous round, rebuilt
	/// from that round's record and the worker's update the round's record names as
	/// aggregated), if it has one: its run may start there instead of at the round's model.
	pub eager_start: Option<TrainingState>,
}

/// A validator's judgement of one update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
	pub valid: bool,
	/// Accuracy of global + update on the validator's held-out data, in [0, 1].
	pub score: f64,
	pub reason: Option<String>,
}

/// What a worker submitted on chain for its update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
	/// The worker's account id.
	pub worker: [u8; 32],
	/// Hash of the update blob.
	pub update: Digest,
	pub samples: u32,
	pub checkpoint_root: Digest,
	/// Number of checkpoint segments.
	pub checkpoints: u32,
}

/// Checks an update the way every assigned validator does in replay mode. Nothing the worker
/// claims counts until it is checked here:
/// - the commitment hashes to the submitted root, which binds this job, round and worker, the
///   job's architecture and configuration, the worker's assigned data and every leaf;
/// - its checkpoints are exactly the job's schedule (one every `checkpoint_interval` steps up
///   to `local_steps`), so no segment can be shorter than the job's;
/// - the run starts from the round's global model, or, in a job whose rounds overlap, from the
///   worker's eager start if the evidence carries one (the worker's update to the previous
///   round was aggregated), and the
///   declared sample count is the one the job's steps process;
/// - the update is, bit for bit, the encoding of the last checkpoint minus that start (both
///   the subtraction and the int8 encoding are deterministic), so the model never uses
///   anything the replay did not cover;
/// - every challenged segment (always including the last) replays within the tolerance.
///
/// Then scores the update on `holdout` with [`improvement_score`] (`0.5`, no information,
/// without one). Passing no `segments` checks everything but the replay (what a validator that
/// skips the replay would do).
pub fn judge_update(
	ctx: &RoundContext,
	claim: &Claim,
	segments: &[u32],
	evidence: &UpdateEvidence,
	holdout: Option<&Dataset>,
	device: Device,
	stop: &AtomicBool,
) -> Result<Judgement> {
	let commitment = &evidence.commitment;
	let invalid = |reason: String| Ok(Judgement { valid: false, score: 0.0, reason: Some(reason) });
	let expected_config = ctx.train_config();
	if commitment.root != claim.checkpoint_root {
		return invalid(format!("commitment root {} is not the submitted one", commitment.root));
	}
	if let Err(e) = commitment.check_roots() {
		return invalid(format!("commitment does not hash to its root: {e}"));
	}
	if commitment.binding != ctx.binding(claim.worker) {
		return invalid("run was committed for another job, round or worker".into());
	}
	let first = commitment.leaves.first().map(|leaf| leaf.state_hash);
	let start = match &evidence.eager_start {
		Some(eager)
			if ctx.hyperparameters.overlap == Overlap::Eager
				&& first == Some(eager.content_hash()) =>
		{
			eager.clone()
		},
		_ => ctx.start_state()?,
	};
	if let Err(e) = commitment.check_schedule(start.step, ctx.local_steps, ctx.checkpoint_interval)
	{
		return invalid(format!("checkpoints are not the job's schedule: {e}"));
	}
	let checkpoints = claim.checkpoints;
	if commitment.segments() != checkpoints as usize {
		return invalid(format!(
			"{} segments committed, {checkpoints} submitted",
			commitment.segments()
		));
	}
	if claim.samples != ctx.samples_per_worker() {
		return invalid(format!(
			"declared {} samples, the job's steps process {}",
			claim.samples,
			ctx.samples_per_worker()
		));
	}
	if commitment.arch != ctx.arch.id() || commitment.config != expected_config {
		return invalid("run used another architecture or configuration than the job's".into());
	}
	if let Some((data, data_root)) = &evidence.data {
		if commitment.data_root != *data_root || commitment.dataset_len != data.len() as u64 {
			return invalid("run trained on other data than the worker's shards".into());
		}
	}
	if first != Some(start.content_hash()) {
		return invalid(
			"run did not start from the round's global model or its eager start".into(),
		);
	}
	let Some(last) = evidence.checkpoints.get(&checkpoints) else {
		return invalid("last checkpoint not provided".into());
	};
	if Some(last.content_hash()) != commitment.leaves.last().map(|leaf| leaf.state_hash) {
		return invalid("last checkpoint does not match its leaf".into());
	}
	// Within the replay tolerance a worker could still plant one impossible value in its
	// buffers; a job that carries them into the next round would then train on NaN.
	if let Err(e) = expected_config.optimizer.check_state(&last.optimizer) {
		return invalid(format!("last checkpoint's optimizer state is impossible: {e}"));
	}
	let claimed = last.params.sub(&start.params)?;
	let encoded = update_blob(&ctx.arch, &claimed, ctx.hyperparameters.compression)?;
	if Digest::of(&[&encoded]) != claim.update {
		return invalid("update is not the encoding of the run's last checkpoint".into());
	}

	let verifier = ReplayVerifier {
		arch: ctx.arch.clone(),
		tolerance: agora_proof::replay_tolerance(expected_config.precision),
		config: expected_config,
		device,
	};
	for &segment in segments {
		// Checked between segments: a validator that gives up on a replay (its commit deadline
		// is near) gets its thread back after at most one more segment.
		if stop.load(Ordering::Relaxed) {
			return Err(WorkerError::Stopped(format!("replay given up before segment {segment}")));
		}
		let Some((data, _)) = &evidence.data else {
			return Err(WorkerError::InvalidArgument(
				"a segment cannot be replayed without the worker's data".into(),
			));
		};
		let start = evidence.checkpoints.get(&segment);
		let end = evidence.checkpoints.get(&(segment + 1));
		let (Some(start), Some(end)) = (start, end) else {
			return invalid(format!("checkpoints of segment {segment} not provided"));
		};
		let proof = match commitment.segment_proof(segment as usize) {
			Ok(proof) => proof,
			Err(e) => return invalid(format!("segment {segment}: {e}")),
		};
		match verifier.verify_segment(data, &commitment.leaves_root, &proof, start, end) {
			Ok(verdict) if verdict.accepted => {
				tracing::info!(segment, deviation = verdict.deviation(), "segment replayed");
			},
			Ok(verdict) => {
				return invalid(format!(
					"segment {segment}: {}",
					verdict.reason.unwrap_or_else(|| "rejected".into())
				))
			},
			Err(e) => return invalid(format!("segment {segment}: {e}")),
		}
	}
	let private = evidence.data.is_none();
	let Some(holdout) = holdout else {
		if private {
			// The held-out set is all there is to judge a run on private data by.
			return Err(WorkerError::HeldOutMissing(
				"an update on private data is judged by the job's held-out data alone".into(),
			));
		}
		return Ok(Judgement { valid: true, score: 0.5, reason: None });
	};
	if stop.load(Ordering::Relaxed) {
		return Err(WorkerError::Stopped("judgement given up before the evaluation".into()));
	}
	let updated = ctx.global.add(&evidence.delta)?;
	let before = evaluate(&Model::new(&ctx.arch, &ctx.global, device)?, holdout, 256)?.accuracy;
	let after = evaluate(&Model::new(&ctx.arch, &updated, device)?, holdout, 256)?.accuracy;
	// Nothing was replayed on private data, so the held-out set is the only check of what the
	// run did. Its pay follows the held-out gain alone: an update that changes nothing (a
	// worker that trained nothing and committed its start as its end) earns nothing, where a
	// replayed run is paid for the work replay proved.
	let score =
		if private { private_data_score(before, after) } else { improvement_score(before, after) };
	// An update that makes the model worse (poisoned data, a careless run) is not aggregated.
	// Every validator scores on the held-out set the job commits to (required for private
	// data), deterministically, so honest validators agree.
	if private && after + PRIVATE_DATA_ACCURACY_SLACK < before {
		let reason = format!(
			"held-out accuracy falls from {:.2}% to {:.2}% (private data: nothing to replay)",
			before * 100.0,
			after * 100.0
		);
		return Ok(Judgement { valid: false, score, reason: Some(reason) });
	}
	Ok(Judgement { valid: true, score, reason: None })
}

/// How much held-out accuracy an update on private data may lose and still be accepted: one
/// point, so that an honest run whose last steps wobble is still aggregated.
pub const PRIVATE_DATA_ACCURACY_SLACK: f64 = 0.01;

/// The score a validator reports for an update: how much it improves the held-out accuracy of
/// the round's starting model, mapped to `[0, 1]` (`0.5` is no change, `1` a gain from 0 % to
/// 100 %, `0` the reverse). Scoring the gain rather than the accuracy rewards what the update
/// adds, not the quality the round started from.
pub fn improvement_score(accuracy_before: f64, accuracy_after: f64) -> f64 {
	((1.0 + accuracy_after - accuracy_before) / 2.0).clamp(0.0, 1.0)
}

/// The score of an update on private data: its held-out accuracy gain, `0` for none or a loss
/// (`1` a gain from 0 % to 100 %). Only what the held-out set shows is paid for, since nothing
/// proves the work.
pub fn private_data_score(accuracy_before: f64, accuracy_after: f64) -> f64 {
	(accuracy_after - accuracy_before).clamp(0.0, 1.0)
}

/// The cheats a worker can be told to commit (for tests and demonstrations).
#[cfg(any(test, feature = "cheats"))]
pub fn parse_cheat(name: &str) -> Result<Cheat> {
	Ok(match name {
		"none" => Cheat::None,
		"skip-steps" => Cheat::SkipSteps { period: 2 },
		"random-weights" => Cheat::RandomWeights,
		"copied-weights" => Cheat::CopiedWeights,
		"fewer-samples" => Cheat::FewerSamples { keep_fraction: 0.5 },
		"substituted-data" => Cheat::SubstitutedData { seed: 7 },
		"fewer-steps" => Cheat::FewerSteps,
		other => {
			return Err(WorkerError::InvalidArgument(format!(
				"unknown cheat `{other}` (none, skip-steps, random-weights, copied-weights, \
				 fewer-samples, substituted-data, fewer-steps)"
			)))
		},
	})
}

#[cfg(test)]
mod tests {
	use super::*;
	use agora_ml::data::{digits_csv_path, load_digits, train_test_split};
	use agora_proof::adversary::Cheat;

	fn context() -> (RoundContext, Dataset, Dataset, Vec<(Digest, Vec<u8>)>) {
		let digits = load_digits(&digits_csv_path()).unwrap();
		let (train, test) = train_test_split(&digits, 360, 0).unwrap();
		let arch = Architecture::from_id("mlp-digits").unwrap();
		let hyperparameters = Hyperparameters {
			optimizer: OptimizerConfig::sgd(0.1, 0.9),
			batch_size: 32,
			seed: 3,
			init_seed: 1,
			aggregator: Aggregator::FedAvg,
			compression: Some(Compression::Int8),
			holdout: vec![],
			tokenizer: None,
			schedule: LrSchedule::Constant,
			clip_norm: None,
			micro_batches: 1,
			outer: None,
			inner_state: InnerState::Fresh,
			precision: Precision::F32,
			overlap: Overlap::Sequential,
		};
		let global = arch.initial_params(hyperparameters.init_seed).unwrap();
		let ctx = RoundContext {
			arch,
			hyperparameters,
			job: 7,
			round: 1,
			local_steps: 20,
			checkpoint_interval: 5,
			global,
			outer_momentum: None,
			inner_optimizer: None,
			completed_rounds: 0,
			aggregated: Vec::new(),
		};
		let half: Vec<u32> = (0..train.len() as u32 / 2).collect();
		let rest: Vec<u32> = (train.len() as u32 / 2..train.len() as u32).collect();
		let shards = [half, rest]
			.iter()
			.map(|indices| {
				let bytes = train.subset(indices).unwrap().encode_shard().unwrap();
				(Digest::of(&[&bytes]), bytes)
			})
			.collect();
		(ctx, train, test, shards)
	}

	const WORKER: [u8; 32] = [5; 32];

	/// `count` updates of distinct workers, as a record names them.
	fn named(count: u8) -> Vec<AggregatedUpdate> {
		(0..count)
			.map(|i| AggregatedUpdate {
				worker: [i; 32],
				update: Digest([i.wrapping_add(100); 32]),
			})
			.collect()
	}

	/// A run of `ctx` by `WORKER` on `shards`: its evidence and the claim it submits.
	fn evidence(
		ctx: &RoundContext,
		shards: &[(Digest, Vec<u8>)],
		cheat: Cheat,
	) -> (UpdateEvidence, Claim) {
		let (data, data_root) = assemble_dataset(shards).unwrap();
		let run = ctx.train_cheating(WORKER, &data, data_root, cheat, Device::Cpu).unwrap();
		let delta = ctx.delta_of(&run).unwrap();
		let blob = update_blob(&ctx.arch, &delta, ctx.hyperparameters.compression).unwrap();
		let delta = decode_update(&ctx.arch, &blob, ctx.hyperparameters.compression).unwrap();
		let checkpoints =
			run.checkpoints.iter().enumerate().map(|(i, s)| (i as u32, s.clone())).collect();
		let claim = Claim {
			worker: WORKER,
			update: Digest::of(&[&blob]),
			samples: ctx.samples_per_worker(),
			checkpoint_root: run.commitment.root,
			checkpoints: run.commitment.segments() as u32,
		};
		(
			UpdateEvidence {
				commitment: run.commitment,
				checkpoints,
				delta,
				data: Some((data, data_root)),
				eager_start: None,
			},
			claim,
		)
	}

	/// An honest run of `ctx` on each of `shards`: the runs, their updates as the aggregate
	/// weighs them, and their final states.
	fn honest_round(
		ctx: &RoundContext,
		shards: &[(Digest, Vec<u8>)],
	) -> (Vec<(UpdateEvidence, Claim)>, Vec<WorkerUpdate>, Vec<TrainingState>) {
		let runs: Vec<(UpdateEvidence, Claim)> =
			shards.chunks(1).map(|shard| evidence(ctx, shard, Cheat::None)).collect();
		let updates = runs
			.iter()
			.map(|(evidence, _)| WorkerUpdate { delta: evidence.delta.clone(), num_samples: 640 })
			.collect();
		let finals = runs
			.iter()
			.map(|(evidence, claim)| evidence.checkpoints[&claim.checkpoints].clone())
			.collect();
		(runs, updates, finals)
	}

	fn judge(
		ctx: &RoundContext,
		claim: &Claim,
		segments: &[u32],
		evidence: &UpdateEvidence,
		holdout: &Dataset,
	) -> Judgement {
		let keep_going = AtomicBool::new(false);
		judge_update(ctx, claim, segments, evidence, Some(holdout), Device::Cpu, &keep_going)
			.unwrap()
	}

	#[test]
	fn honest_update_is_valid_and_cheats_are_not() {
		let (ctx, _, test, shards) = context();
		honest_valid_cheats_not(&ctx, &test, &shards);
	}

	#[test]
	fn a_bf16_job_is_replayed_in_bf16_and_judged_by_its_tolerance() {
		let (mut ctx, _, test, shards) = context();
		let (float32_run, float32_claim) = evidence(&ctx, &shards, Cheat::None);
		ctx.hyperparameters.precision = Precision::Bf16;
		// Segments longer than the tolerance was measured on are refused.
		ctx.hyperparameters.check_segment_length(40).unwrap();
		assert!(ctx.hyperparameters.check_segment_length(41).is_err());
		honest_valid_cheats_not(&ctx, &test, &shards);
		// A float32 run claimed for a bf16 job is another run than the job's.
		let judgement = judge(&ctx, &float32_claim, &[0, 3], &float32_run, &test);
		assert!(!judgement.valid, "{judgement:?}");
	}

	fn honest_valid_cheats_not(ctx: &RoundContext, test: &Dataset, shards: &[(Digest, Vec<u8>)]) {
		let segments = [0, 3];
		for (cheat, valid) in [
			(Cheat::None, true),
			(Cheat::SkipSteps { period: 2 }, false),
			(Cheat::CopiedWeights, false),
		] {
			let (evidence, claim) = evidence(ctx, shards, cheat);
			let judgement = judge(ctx, &claim, &segments, &evidence, test);
			assert_eq!(judgement.valid, valid, "{cheat:?}: {judgement:?}");
			if valid {
				assert!(judgement.score > 0.5, "score {}", judgement.score);
			}
		}
	}

	#[test]
	fn on_private_data_only_held_out_gain_is_paid_and_a_loss_is_rejected() {
		let (mut ctx, _, test, shards) = context();
		let private = |(mut evidence, claim): (UpdateEvidence, Claim)| {
			evidence.data = None;
			(evidence, claim)
		};
		// Nothing to replay: an honest run is judged on its commitment and held-out gain.
		let (honest, claim) = private(evidence(&ctx, &shards, Cheat::None));
		let judgement = judge(&ctx, &claim, &[], &honest, &test);
		assert!(judgement.valid && judgement.score > 0.0, "{judgement:?}");
		let keep_going = AtomicBool::new(false);
		let replay =
			judge_update(&ctx, &claim, &[3], &honest, Some(&test), Device::Cpu, &keep_going);
		assert!(matches!(replay, Err(WorkerError::InvalidArgument(_))), "{replay:?}");
		// Without held-out data there is nothing to judge it by: the validator cannot judge
		// (and reports `HeldOutUnavailable`, the submitter's doing), rather than approve it
		// unseen.
		let blind = judge_update(&ctx, &claim, &[], &honest, None, Device::Cpu, &keep_going);
		assert!(matches!(blind, Err(WorkerError::HeldOutMissing(_))), "{blind:?}");
		// Pay follows the held-out gain alone: a run that changed nothing (its start committed
		// as its end) or lost accuracy earns nothing, where replayed work scores 0.5 for no gain.
		assert_eq!(private_data_score(0.8, 0.8), 0.0);
		assert_eq!(private_data_score(0.8, 0.79), 0.0);
		assert!((private_data_score(0.5, 0.75) - 0.25).abs() < 1e-12);
		assert_eq!(improvement_score(0.8, 0.8), 0.5);
		// From the trained model, a run on other data than it claims makes the model worse:
		// rejected, since the held-out set is all there is to catch it.
		ctx.global = ctx.global.add(&honest.delta).unwrap();
		ctx.round += 1;
		let (poisoned, claim) =
			private(evidence(&ctx, &shards, Cheat::SubstitutedData { seed: 7 }));
		let judgement = judge(&ctx, &claim, &[], &poisoned, &test);
		assert!(!judgement.valid, "{judgement:?}");
		assert!(judgement.reason.unwrap().contains("held-out accuracy falls"));
	}

	#[test]
	fn a_replay_given_up_stops_before_its_next_segment() {
		let (ctx, _, test, shards) = context();
		let (evidence, claim) = evidence(&ctx, &shards, Cheat::None);
		let stop = AtomicBool::new(true);
		let judged =
			judge_update(&ctx, &claim, &[0, 3], &evidence, Some(&test), Device::Cpu, &stop);
		assert!(matches!(judged, Err(WorkerError::Stopped(_))), "{judged:?}");
	}

	#[test]
	fn skipping_the_replay_approves_what_replay_rejects() {
		// A validator that fetches the evidence and checks every hash, schedule and binding but
		// replays nothing approves a run with skipped steps: its commitment is well formed. The
		// replaying validators judge it `Invalid`, so on chain the skipper contradicts the
		// consensus and is slashed (pallet-validation's
		// `cheating_worker_non_revealer_and_contradictor_are_slashed`).
		let (ctx, _, test, shards) = context();
		let (evidence, claim) = evidence(&ctx, &shards, Cheat::SkipSteps { period: 2 });
		assert!(judge(&ctx, &claim, &[], &evidence, &test).valid, "no replay, no detection");
		assert!(!judge(&ctx, &claim, &[3], &evidence, &test).valid, "the last segment replayed");
	}

	#[test]
	fn the_score_is_the_gain_over_the_round_start_and_validators_agree_on_it() {
		let (ctx, _, test, shards) = context();
		let (evidence, claim) = evidence(&ctx, &shards, Cheat::None);
		let scores: Vec<f64> =
			(0..2).map(|_| judge(&ctx, &claim, &[3], &evidence, &test).score).collect();
		assert_eq!(scores[0], scores[1], "the same held-out set gives the same score");
		assert!(scores[0] > 0.5, "training from the initial weights gains: {}", scores[0]);
		// The gain, not the accuracy: the same trained model scores 0.5 as the next start.
		let trained = ctx.global.add(&evidence.delta).unwrap();
		let model = Model::new(&ctx.arch, &trained, Device::Cpu).unwrap();
		let accuracy = evaluate(&model, &test, 256).unwrap().accuracy;
		assert!(accuracy > 0.5, "accuracy {accuracy}");
		assert_eq!(improvement_score(accuracy, accuracy), 0.5);
		assert_eq!(improvement_score(0.0, 1.0), 1.0);
		assert!((improvement_score(0.9, 0.4) - 0.25).abs() < 1e-12);
	}

	#[test]
	fn fewer_shorter_segments_are_invalid() {
		// The job asks for 20 steps with a checkpoint every 5 (4 segments). A run of 4
		// one-step segments replays perfectly, segment by segment, but is not the job's run.
		let (ctx, _, test, shards) = context();
		let lazy = RoundContext { local_steps: 4, checkpoint_interval: 1, ..context().0 };
		let (evidence, claim) = evidence(&lazy, &shards, Cheat::None);
		assert_eq!(claim.checkpoints, 4);
		let judgement = judge(&ctx, &claim, &[0, 1, 2, 3], &evidence, &test);
		assert!(!judgement.valid);
		assert!(judgement.reason.unwrap().contains("schedule"), "rejected before any replay");
	}

	#[test]
	fn run_replayed_into_another_round_job_or_worker_is_invalid() {
		let (ctx, _, test, shards) = context();
		let (evidence, claim) = evidence(&ctx, &shards, Cheat::None);
		let next_round = RoundContext { round: 2, ..context().0 };
		let other_job = RoundContext { job: 8, ..context().0 };
		for other in [&next_round, &other_job] {
			let judgement = judge(other, &claim, &[3], &evidence, &test);
			assert!(judgement.reason.unwrap().contains("another job, round or worker"));
		}
		// Another worker submitting this worker's run under its own name.
		let thief = Claim { worker: [6; 32], ..claim };
		assert!(!judge(&ctx, &thief, &[3], &evidence, &test).valid);
		// A commitment whose description was edited after hashing.
		let mut edited = evidence;
		edited.commitment.binding.worker = [6; 32];
		let judgement = judge(&ctx, &thief, &[3], &edited, &test);
		assert!(judgement.reason.unwrap().contains("does not hash"));
	}

	#[test]
	fn inflated_sample_count_is_invalid() {
		let (ctx, _, test, shards) = context();
		let (evidence, claim) = evidence(&ctx, &shards, Cheat::None);
		let inflated = Claim { samples: u32::MAX, ..claim };
		let judgement = judge(&ctx, &inflated, &[3], &evidence, &test);
		assert!(judgement.reason.unwrap().contains("samples"));
		assert_eq!(ctx.samples_per_worker(), 20 * 32);
	}

	#[test]
	fn update_on_other_data_or_other_delta_is_invalid() {
		let (ctx, _, test, shards) = context();
		let (mut evidence, claim) = evidence(&ctx, &shards[..1], Cheat::None);
		// Claimed to be trained on both shards.
		let (both, both_root) = assemble_dataset(&shards).unwrap();
		let honest_data = evidence.data.replace((both, both_root));
		assert!(!judge(&ctx, &claim, &[1], &evidence, &test).valid);
		evidence.data = honest_data;
		assert!(judge(&ctx, &claim, &[1], &evidence, &test).valid);
		// A submitted update that is not the run's result, however close: one weight of the
		// int8 encoding moved by one step (a backdoor spends its budget on a few weights).
		let last = evidence.checkpoints[&claim.checkpoints].params.sub(&ctx.global).unwrap();
		let mut blob = update_blob(&ctx.arch, &last, ctx.hyperparameters.compression).unwrap();
		let end = blob.len() - 1;
		blob[end] = blob[end].wrapping_add(1);
		let nudged = Claim { update: Digest::of(&[&blob]), ..claim };
		let judgement = judge(&ctx, &nudged, &[1], &evidence, &test);
		assert!(judgement.reason.unwrap().contains("not the encoding"));
	}

	#[test]
	fn aggregate_is_reproducible_and_model_blobs_round_trip() {
		let (ctx, _, _, shards) = context();
		let updates: Vec<WorkerUpdate> = shards
			.chunks(1)
			.map(|shard| {
				let (evidence, _) = evidence(&ctx, shard, Cheat::None);
				WorkerUpdate { delta: evidence.delta, num_samples: 640 }
			})
			.collect();
		let (blob, hash) = ctx.aggregate(&updates, &[], named(2)).unwrap();
		let reversed: Vec<WorkerUpdate> = updates.iter().rev().cloned().collect();
		assert_eq!(ctx.aggregate(&reversed, &[], named(2)).unwrap().1, hash);
		let record = decode_round_model(&ctx.arch, &blob).unwrap();
		assert!(record.aggregated.is_empty(), "a job whose rounds do not overlap names none");
		assert_eq!(Digest::of(&[&round_model_blob(&ctx.arch, &record).unwrap()]), hash);
		let overlapping = RoundContext {
			hyperparameters: Hyperparameters {
				overlap: Overlap::Eager,
				..ctx.hyperparameters.clone()
			},
			..context().0
		};
		let (named_blob, named_hash) = overlapping.aggregate(&updates, &[], named(2)).unwrap();
		let named_record = decode_round_model(&ctx.arch, &named_blob).unwrap();
		assert_eq!(named_record.aggregated, named(2), "the record names the updates it aggregated");
		assert_eq!(named_record.params, record.params);
		assert_eq!(Digest::of(&[&round_model_blob(&ctx.arch, &named_record).unwrap()]), named_hash);
		assert_eq!(decode_model(&ctx.arch, &blob).unwrap(), record.params);
		let other = Architecture::from_id("cnn-digits").unwrap();
		assert!(decode_model(&other, &blob).is_err());
		assert!(ctx.aggregate(&updates, &[], named(1)).is_err(), "every update is named");
		let mut twice = named(2);
		twice[1].worker = twice[0].worker;
		assert!(overlapping.aggregate(&updates, &[], twice).is_err(), "one update per worker");
	}

	/// The updates a record names are hashes' bytes under workers' ids, and nothing else.
	#[test]
	fn a_record_naming_its_updates_wrongly_is_refused() {
		let (ctx, ..) = context();
		let record = |name: &str, values: Vec<f32>| {
			let layout = agora_ml::params::Layout::new(vec![agora_ml::params::TensorSpec {
				name: name.to_string(),
				shape: vec![values.len()],
			}])
			.unwrap();
			let named = ParamSet::new(layout, values).unwrap();
			let all = ParamSet::merge_prefixed(&[("", &ctx.global), (AGGREGATED_PREFIX, &named)])
				.unwrap();
			model_blob(&ctx.arch, &all).unwrap()
		};
		let worker = Digest([1; 32]).to_hex();
		assert!(decode_round_model(&ctx.arch, &record(&worker, vec![7.0; 32])).is_ok());
		assert!(decode_round_model(&ctx.arch, &record("not-a-worker", vec![7.0; 32])).is_err());
		assert!(decode_round_model(&ctx.arch, &record(&worker, vec![7.0; 31])).is_err());
		assert!(decode_round_model(&ctx.arch, &record(&worker, vec![7.5; 32])).is_err());
		assert!(decode_round_model(&ctx.arch, &record(&worker, vec![256.0; 32])).is_err());
		assert!(decode_round_model(&ctx.arch, &record(&worker, vec![-1.0; 32])).is_err());
	}

	/// A worker that trains the next round while this one is verified starts from this round's
	/// model stepped by its own update (eager start): valid when the job overlaps its rounds
	/// and the validator knows that start (the worker's update was aggregated), invalid
	/// otherwise, and invalid from another worker's update; its update is its run's end minus that start, applied to the round's
	/// model like anyone's.
	#[test]
	fn an_eager_start_is_valid_only_where_the_workers_own_update_was_aggregated() {
		let (plain, _, test, shards) = context();
		let hyperparameters = Hyperparameters {
			optimizer: OptimizerConfig::adam(1e-3),
			inner_state: InnerState::Averaged,
			outer: Some(OuterOptimizer::Nesterov { lr: 0.7, momentum: 0.5 }),
			overlap: Overlap::Eager,
			..plain.hyperparameters.clone()
		};
		let first = RoundContext { hyperparameters: hyperparameters.clone(), ..context().0 };
		let (runs, updates, finals) = honest_round(&first, &shards);
		let (blob, _) = first.aggregate(&updates, &finals, named(2)).unwrap();
		let record = decode_round_model(&first.arch, &blob).unwrap();

		// Trained while round 1 was verified, from the worker's own round-1 update.
		let own = &runs[0].0.delta;
		let (data, data_root) = assemble_dataset(&shards[..1]).unwrap();
		let keep_going = AtomicBool::new(false);
		let early = first
			.train_next_round_early(own, WORKER, (&data, data_root), Device::Cpu, &keep_going)
			.unwrap();
		let given_up = AtomicBool::new(true);
		let stopped =
			first.train_next_round_early(own, WORKER, (&data, data_root), Device::Cpu, &given_up);
		assert!(matches!(stopped, Err(WorkerError::Stopped(_))), "a run not needed stops");
		let eager = first.eager_start(own).unwrap();
		assert_eq!(early.checkpoints[0], eager);
		assert_eq!(eager.step, first.local_steps, "it goes on where round 1 left off");
		let expected = OuterOptimizer::Nesterov { lr: 0.7, momentum: 0.5 }
			.step(&first.global, own, None)
			.unwrap()
			.model;
		assert_eq!(eager.params, expected);

		let second = || RoundContext {
			hyperparameters: hyperparameters.clone(),
			round: 2,
			completed_rounds: 1,
			global: record.params.clone(),
			outer_momentum: record.outer_momentum.clone(),
			inner_optimizer: record.inner_optimizer.clone(),
			aggregated: record.aggregated.clone(),
			..context().0
		};
		let delta = second().delta_of(&early).unwrap();
		let blob = update_blob(&first.arch, &delta, hyperparameters.compression).unwrap();
		let claim = Claim {
			worker: WORKER,
			update: Digest::of(&[&blob]),
			samples: second().samples_per_worker(),
			checkpoint_root: early.commitment.root,
			checkpoints: early.commitment.segments() as u32,
		};
		let evidence_of = |eager_start: Option<TrainingState>| UpdateEvidence {
			commitment: early.commitment.clone(),
			checkpoints: early
				.checkpoints
				.iter()
				.enumerate()
				.map(|(i, s)| (i as u32, s.clone()))
				.collect(),
			delta: decode_update(&first.arch, &blob, hyperparameters.compression).unwrap(),
			data: Some((data.clone(), data_root)),
			eager_start,
		};
		let judged = judge(&second(), &claim, &[0, 3], &evidence_of(Some(eager.clone())), &test);
		assert!(judged.valid, "{judged:?}");
		let unknown = judge(&second(), &claim, &[0, 3], &evidence_of(None), &test);
		assert!(unknown.reason.unwrap().contains("did not start"));
		let others = first.eager_start(&runs[1].0.delta).unwrap();
		let judged = judge(&second(), &claim, &[0, 3], &evidence_of(Some(others)), &test);
		assert!(judged.reason.unwrap().contains("did not start"));
		// A job whose rounds do not overlap accepts no eager start.
		let sequential = RoundContext {
			hyperparameters: Hyperparameters {
				overlap: Overlap::Sequential,
				..hyperparameters.clone()
			},
			..second()
		};
		let judged = judge(&sequential, &claim, &[0, 3], &evidence_of(Some(eager.clone())), &test);
		assert!(judged.reason.unwrap().contains("did not start"));
		// Round 2's honest run from round 1's record is valid whatever eager start is known.
		let (in_sequence, claim) = evidence(&second(), &shards[..1], Cheat::None);
		let in_sequence = UpdateEvidence { eager_start: Some(eager), ..in_sequence };
		assert!(judge(&second(), &claim, &[0, 3], &in_sequence, &test).valid);
	}

	/// Two DiLoCo rounds: the first record carries the outer momentum, the second round steps
	/// from it, and every participant computes the same record whatever order updates arrive.
	#[test]
	fn outer_steps_carry_their_momentum_in_the_round_record() {
		let (plain, _, _, shards) = context();
		let outer = OuterOptimizer::Nesterov { lr: 0.7, momentum: 0.9 };
		let diloco = |global: ParamSet, outer_momentum: Option<ParamSet>| RoundContext {
			hyperparameters: Hyperparameters {
				outer: Some(outer),
				..plain.hyperparameters.clone()
			},
			global,
			outer_momentum,
			..context().0
		};
		let updates_of = |ctx: &RoundContext| -> Vec<WorkerUpdate> {
			shards
				.chunks(1)
				.map(|shard| WorkerUpdate {
					delta: evidence(ctx, shard, Cheat::None).0.delta,
					num_samples: 640,
				})
				.collect()
		};
		let first = diloco(plain.global.clone(), None);
		let updates = updates_of(&first);
		let (blob, hash) = first.aggregate(&updates, &[], named(2)).unwrap();
		let reversed: Vec<WorkerUpdate> = updates.iter().rev().cloned().collect();
		assert_eq!(first.aggregate(&reversed, &[], named(2)).unwrap().1, hash);
		let record = decode_round_model(&first.arch, &blob).unwrap();
		let mean = aggregate(Aggregator::FedAvg, &first.arch.layout().unwrap(), &updates).unwrap();
		let expected = outer.step(&first.global, &mean.delta, None).unwrap();
		assert_eq!(record.params, expected.model);
		assert_eq!(record.outer_momentum.as_ref(), Some(&expected.momentum));
		// A model's user reads the model alone; the plain sum is another model.
		assert_eq!(decode_model(&first.arch, &blob).unwrap(), expected.model);
		assert_ne!(plain.aggregate(&updates, &[], named(2)).unwrap().1, hash);
		assert_eq!(
			Digest::of(&[&round_model_blob(&first.arch, &record).unwrap()]),
			hash,
			"the record re-encodes to the same bytes"
		);

		let second = diloco(record.params.clone(), record.outer_momentum.clone());
		let updates = updates_of(&second);
		let (blob, _) = second.aggregate(&updates, &[], named(2)).unwrap();
		let next = decode_round_model(&second.arch, &blob).unwrap();
		let mean = aggregate(Aggregator::FedAvg, &second.arch.layout().unwrap(), &updates).unwrap();
		let expected =
			outer.step(&record.params, &mean.delta, record.outer_momentum.as_ref()).unwrap();
		assert_eq!(next.params, expected.model);
		assert_eq!(next.outer_momentum, Some(expected.momentum));
		// Stepping from zero momentum instead is another record.
		let forgetful = diloco(record.params, None);
		assert_ne!(forgetful.aggregate(&updates, &[], named(2)).unwrap().0, blob);
	}

	/// A job that carries its inner optimizer: the record holds the mean of the accepted runs'
	/// final buffers, the next round starts from them where the previous left off, and a run
	/// that starts from anything else (a fresh optimizer) is invalid.
	#[test]
	fn an_averaged_inner_state_carries_into_the_next_round() {
		let (plain, _, test, shards) = context();
		let carrying = Hyperparameters {
			optimizer: OptimizerConfig::adam(1e-3),
			inner_state: InnerState::Averaged,
			..plain.hyperparameters.clone()
		};
		let first = RoundContext { hyperparameters: carrying.clone(), ..context().0 };
		assert_eq!(first.start_state().unwrap().step, 0, "the first round starts at step 0");
		let (_, updates, finals) = honest_round(&first, &shards);
		assert!(
			first.aggregate(&updates, &finals[..1], named(2)).is_err(),
			"one final state per update"
		);
		let (blob, hash) = first.aggregate(&updates, &finals, named(2)).unwrap();
		let reversed: Vec<TrainingState> = finals.iter().rev().cloned().collect();
		let reordered: Vec<WorkerUpdate> = updates.iter().rev().cloned().collect();
		assert_eq!(first.aggregate(&reordered, &reversed, named(2)).unwrap().1, hash);
		let record = decode_round_model(&first.arch, &blob).unwrap();
		let carried = record.inner_optimizer.clone().expect("the record carries the buffers");
		for (index, value) in carried.values().iter().enumerate() {
			let mean =
				(finals[0].optimizer.values()[index] + finals[1].optimizer.values()[index]) / 2.0;
			assert!((value - mean).abs() <= 1e-6 * mean.abs().max(1e-6), "buffer {index}");
		}

		let second = || RoundContext {
			hyperparameters: carrying.clone(),
			round: 2,
			completed_rounds: 1,
			global: record.params.clone(),
			inner_optimizer: record.inner_optimizer.clone(),
			..context().0
		};
		let start = second().start_state().unwrap();
		assert_eq!(start.step, second().local_steps, "round 2 goes on from step 20");
		assert_eq!(start.optimizer, carried);
		let (evidence_two, claim) = evidence(&second(), &shards[..1], Cheat::None);
		assert!(judge(&second(), &claim, &[0, 3], &evidence_two, &test).valid);
		// The same round started from a fresh optimizer: every step replays, yet it is not the
		// round's run.
		let forgetful = RoundContext { inner_optimizer: None, ..second() };
		let (evidence_fresh, claim) = evidence(&forgetful, &shards[..1], Cheat::None);
		let judgement = judge(&second(), &claim, &[0, 3], &evidence_fresh, &test);
		assert!(!judgement.valid);
		assert!(judgement.reason.unwrap().contains("did not start"));
	}

	#[test]
	fn a_round_record_with_a_stray_or_misshapen_tensor_is_refused() {
		let (ctx, ..) = context();
		let momentum = ParamSet::zeros(ctx.arch.layout().unwrap());
		let record = RoundModel {
			params: ctx.global.clone(),
			outer_momentum: Some(momentum),
			inner_optimizer: None,
			aggregated: named(3),
		};
		let blob = round_model_blob(&ctx.arch, &record).unwrap();
		assert_eq!(decode_round_model(&ctx.arch, &blob).unwrap(), record);
		let half = ctx.global.strip_prefix("out").unwrap();
		let misshapen =
			ParamSet::merge_prefixed(&[("", &ctx.global), (OUTER_MOMENTUM_PREFIX, &half)]).unwrap();
		assert!(decode_round_model(&ctx.arch, &model_blob(&ctx.arch, &misshapen).unwrap()).is_err());
		let stray =
			ParamSet::merge_prefixed(&[("", &ctx.global), ("extra/", &ctx.global)]).unwrap();
		assert!(decode_round_model(&ctx.arch, &model_blob(&ctx.arch, &stray).unwrap()).is_err());
	}

	#[test]
	fn shards_are_dealt_round_robin() {
		let shards: Vec<Digest> = (0..5u8).map(|i| Digest([i; 32])).collect();
		assert_eq!(worker_shards(&shards, 1, 2), vec![shards[1], shards[3]]);
		assert_eq!(worker_shards(&shards, 0, 3), vec![shards[0], shards[3]]);
		assert!(worker_shards(&shards, 0, 0).is_empty());
	}

	#[test]
	fn hyperparameters_reject_unverifiable_settings() {
		let json = br#"{"optimizer":{"name":"sgd","lr":0.1,"momentum":0.9},"batch_size":32,
			"seed":1,"init_seed":1,"aggregator":{"rule":"fed-avg"},
			"compression":{"method":"top-k","fraction":0.1}}"#;
		assert!(Hyperparameters::from_json(json).is_err());
		assert!(Hyperparameters::from_json(b"{}").is_err());
		// A committed held-out set travels in the spec; without one the field is left out.
		let mut hyperparameters = context().0.hyperparameters;
		assert!(!String::from_utf8(serde_json::to_vec(&hyperparameters).unwrap())
			.unwrap()
			.contains("holdout"));
		hyperparameters.holdout = vec![Digest([9; 32])];
		let json = serde_json::to_vec(&hyperparameters).unwrap();
		assert_eq!(Hyperparameters::from_json(&json).unwrap(), hyperparameters);
		// An outer optimizer that cannot train.
		hyperparameters.outer = Some(OuterOptimizer::Nesterov { lr: 0.7, momentum: 1.0 });
		let json = serde_json::to_vec(&hyperparameters).unwrap();
		assert!(Hyperparameters::from_json(&json).is_err());
	}
}
