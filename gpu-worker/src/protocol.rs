//! What a job means off chain: its hyperparameters, the data each selected worker trains on,
//! the blob formats of models and updates, and the checks a validator runs on an update.
//!
//! Everything here is deterministic and chain-independent, so that every worker, validator
//! and aggregator derives the same values from the same on-chain record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::aggregate::{aggregate, Aggregator, WorkerUpdate};
use crate::compress::{decompress, Compression, Compressor};
use crate::data::{decode_shard, Dataset};
use crate::digest::Digest;
use crate::error::{Result, WorkerError};
use crate::models::{Architecture, Model};
use crate::params::ParamSet;
use crate::proof::adversary::{dishonest_run, Cheat, CommittedRun};
use crate::proof::merkle::merkle_root;
use crate::proof::{relative_deviation, ReplayVerifier, TrainingCommitment};
use crate::train::{evaluate, OptimizerConfig, TrainConfig, TrainingState};

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
}

impl Hyperparameters {
	pub fn from_json(bytes: &[u8]) -> Result<Self> {
		let parsed: Self = serde_json::from_slice(bytes)
			.map_err(|e| WorkerError::InvalidArgument(format!("job hyperparameters: {e}")))?;
		if parsed.batch_size == 0 {
			return Err(WorkerError::InvalidArgument("batch size must be positive".into()));
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

	/// The training configuration of `round`.
	pub fn train_config(&self, round: u32) -> TrainConfig {
		TrainConfig {
			optimizer: self.optimizer,
			batch_size: self.batch_size,
			seed: self.seed.wrapping_add(u64::from(round)),
		}
	}
}

/// Encodes a model as the canonical blob whose hash goes on chain: safetensors with the
/// architecture id as its only metadata (one key, so the header is byte-for-byte stable).
pub fn model_blob(arch: &Architecture, params: &ParamSet) -> Result<Vec<u8>> {
	params.to_safetensors(&BTreeMap::from([("arch".to_string(), arch.id())]))
}

/// Decodes a model blob of architecture `arch`, rejecting other layouts and non-finite values.
pub fn decode_model(arch: &Architecture, bytes: &[u8]) -> Result<ParamSet> {
	let (params, metadata) = ParamSet::from_safetensors(bytes)?;
	if metadata.get("arch").map(String::as_str) != Some(arch.id().as_str()) {
		return Err(WorkerError::Safetensors(format!("model blob is not of architecture {arch}")));
	}
	arch.layout()?.check_matches(params.layout())?;
	params.check_finite()?;
	Ok(params)
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

/// Everything about one round that its participants agree on.
pub struct RoundContext {
	pub arch: Architecture,
	pub hyperparameters: Hyperparameters,
	pub round: u32,
	pub local_steps: u64,
	pub checkpoint_interval: u64,
	/// The global model the round starts from.
	pub global: ParamSet,
}

impl RoundContext {
	pub fn train_config(&self) -> TrainConfig {
		self.hyperparameters.train_config(self.round)
	}

	/// The state every honest run of the round starts from: the global model, fresh optimizer.
	pub fn start_state(&self) -> Result<TrainingState> {
		TrainingState::fresh(self.global.clone(), &self.train_config().optimizer)
	}

	/// A worker's run: `local_steps` steps with a checkpoint every `checkpoint_interval`,
	/// deviating as `cheat` says (`Cheat::None` for an honest worker).
	pub fn train(
		&self,
		data: &Dataset,
		data_root: Digest,
		cheat: Cheat,
		device: Device,
	) -> Result<CommittedRun> {
		dishonest_run(
			&self.arch,
			&self.start_state()?,
			&self.train_config(),
			data,
			data_root,
			self.local_steps,
			self.checkpoint_interval,
			cheat,
			device,
		)
	}

	/// The update of a finished run.
	pub fn delta_of(&self, run: &CommittedRun) -> Result<ParamSet> {
		let last = run
			.checkpoints
			.last()
			.ok_or_else(|| WorkerError::InvalidArgument("run has no checkpoints".into()))?;
		last.params.sub(&self.global)
	}

	/// Aggregates accepted updates with the job's rule and returns the new global model's
	/// blob and hash (what the aggregator posts and the validators recompute).
	pub fn aggregate(&self, updates: &[WorkerUpdate]) -> Result<(Vec<u8>, Digest)> {
		let aggregate = aggregate(self.hyperparameters.aggregator, &self.arch.layout()?, updates)?;
		let model = self.global.add(&aggregate.delta)?;
		let blob = model_blob(&self.arch, &model)?;
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
	/// Data the worker was assigned, and its root.
	pub data: Dataset,
	pub data_root: Digest,
}

/// A validator's judgement of one update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
	pub valid: bool,
	/// Accuracy of global + update on the validator's held-out data, in [0, 1].
	pub score: f64,
	pub reason: Option<String>,
}

/// Deviation allowed between a submitted update and the run's last checkpoint minus the global
/// model: zero without compression, int8 rounding with it (at most half a step of 1/127 of
/// each tensor's largest value; 2% of the update's norm is well above that and far below any
/// substitution).
const DELTA_TOLERANCE: f64 = 2e-2;

/// Checks an update the way every assigned validator does in replay mode: the commitment
/// binds the right architecture, configuration, data and start; the update is the run's
/// result; every challenged segment replays within the tolerance. Then scores the updated
/// model on `holdout`.
pub fn judge_update(
	ctx: &RoundContext,
	checkpoint_root: &Digest,
	checkpoints: u32,
	segments: &[u32],
	evidence: &UpdateEvidence,
	holdout: &Dataset,
	device: Device,
) -> Result<Judgement> {
	let commitment = &evidence.commitment;
	let invalid = |reason: String| Ok(Judgement { valid: false, score: 0.0, reason: Some(reason) });
	let expected_config = ctx.train_config();
	if commitment.root != *checkpoint_root {
		return invalid(format!("commitment root {} is not the submitted one", commitment.root));
	}
	let leaves = commitment.leaves.iter().map(|leaf| leaf.digest()).collect::<Vec<_>>();
	if merkle_root(&leaves)? != commitment.root {
		return invalid("checkpoint leaves do not hash to the committed root".into());
	}
	if commitment.segments() != checkpoints as usize {
		return invalid(format!(
			"{} segments committed, {checkpoints} submitted",
			commitment.segments()
		));
	}
	if commitment.arch != ctx.arch.id() || commitment.config != expected_config {
		return invalid("run used another architecture or configuration than the job's".into());
	}
	if commitment.data_root != evidence.data_root
		|| commitment.dataset_len != evidence.data.len() as u64
	{
		return invalid("run trained on other data than the worker's shards".into());
	}
	let first = commitment.leaves.first().map(|leaf| leaf.state_hash);
	if first != Some(ctx.start_state()?.content_hash()) {
		return invalid("run did not start from the round's global model".into());
	}
	let last_index = checkpoints;
	let Some(last) = evidence.checkpoints.get(&last_index) else {
		return invalid("last checkpoint not provided".into());
	};
	if Some(last.content_hash()) != commitment.leaves.last().map(|leaf| leaf.state_hash) {
		return invalid("last checkpoint does not match its leaf".into());
	}
	let claimed = last.params.sub(&ctx.global)?;
	let zero = ParamSet::zeros(ctx.global.layout().clone());
	let deviation = relative_deviation(&zero, &claimed, &evidence.delta)?;
	if deviation.is_nan() || deviation > DELTA_TOLERANCE {
		return invalid(format!("update deviates from the run's result by {deviation:.3e}"));
	}

	let verifier = ReplayVerifier {
		arch: ctx.arch.clone(),
		config: expected_config,
		tolerance: crate::proof::DEFAULT_TOLERANCE,
		device,
	};
	for &segment in segments {
		let start = evidence.checkpoints.get(&segment);
		let end = evidence.checkpoints.get(&(segment + 1));
		let (Some(start), Some(end)) = (start, end) else {
			return invalid(format!("checkpoints of segment {segment} not provided"));
		};
		let proof = match commitment.segment_proof(segment as usize) {
			Ok(proof) => proof,
			Err(e) => return invalid(format!("segment {segment}: {e}")),
		};
		match verifier.verify_segment(&evidence.data, checkpoint_root, &proof, start, end) {
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
	let updated = ctx.global.add(&evidence.delta)?;
	let score = evaluate(&Model::new(&ctx.arch, &updated, device)?, holdout, 256)?.accuracy;
	Ok(Judgement { valid: true, score, reason: None })
}

/// The cheats a worker can be told to commit (for tests and demonstrations).
pub fn parse_cheat(name: &str) -> Result<Cheat> {
	Ok(match name {
		"none" => Cheat::None,
		"skip-steps" => Cheat::SkipSteps { period: 2 },
		"random-weights" => Cheat::RandomWeights,
		"copied-weights" => Cheat::CopiedWeights,
		"fewer-samples" => Cheat::FewerSamples { keep_fraction: 0.5 },
		"substituted-data" => Cheat::SubstitutedData { seed: 7 },
		other => {
			return Err(WorkerError::InvalidArgument(format!(
				"unknown cheat `{other}` (none, skip-steps, random-weights, copied-weights, \
				 fewer-samples, substituted-data)"
			)))
		},
	})
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::data::{digits_csv_path, load_digits, train_test_split};

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
		};
		let global = arch.initial_params(hyperparameters.init_seed).unwrap();
		let ctx = RoundContext {
			arch,
			hyperparameters,
			round: 1,
			local_steps: 20,
			checkpoint_interval: 5,
			global,
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

	fn evidence(ctx: &RoundContext, shards: &[(Digest, Vec<u8>)], cheat: Cheat) -> UpdateEvidence {
		let (data, data_root) = assemble_dataset(shards).unwrap();
		let run = ctx.train(&data, data_root, cheat, Device::Cpu).unwrap();
		let delta = ctx.delta_of(&run).unwrap();
		let blob = update_blob(&ctx.arch, &delta, ctx.hyperparameters.compression).unwrap();
		let delta = decode_update(&ctx.arch, &blob, ctx.hyperparameters.compression).unwrap();
		let checkpoints =
			run.checkpoints.iter().enumerate().map(|(i, s)| (i as u32, s.clone())).collect();
		UpdateEvidence { commitment: run.commitment, checkpoints, delta, data, data_root }
	}

	#[test]
	fn honest_update_is_valid_and_cheats_are_not() {
		let (ctx, _, test, shards) = context();
		let segments = [0, 3];
		for (cheat, valid) in [
			(Cheat::None, true),
			(Cheat::SkipSteps { period: 2 }, false),
			(Cheat::CopiedWeights, false),
		] {
			let evidence = evidence(&ctx, &shards, cheat);
			let root = evidence.commitment.root;
			let judgement =
				judge_update(&ctx, &root, 4, &segments, &evidence, &test, Device::Cpu).unwrap();
			assert_eq!(judgement.valid, valid, "{cheat:?}: {judgement:?}");
			if valid {
				assert!(judgement.score > 0.5, "score {}", judgement.score);
			}
		}
	}

	#[test]
	fn update_on_other_data_or_other_delta_is_invalid() {
		let (ctx, _, test, shards) = context();
		let mut evidence = evidence(&ctx, &shards[..1], Cheat::None);
		let root = evidence.commitment.root;
		// Claimed to be trained on both shards.
		let (both, both_root) = assemble_dataset(&shards).unwrap();
		let honest_data = std::mem::replace(&mut evidence.data, both);
		let honest_root = std::mem::replace(&mut evidence.data_root, both_root);
		let judgement = judge_update(&ctx, &root, 4, &[1], &evidence, &test, Device::Cpu).unwrap();
		assert!(!judgement.valid);
		evidence.data = honest_data;
		evidence.data_root = honest_root;
		// A submitted update that is not the run's result.
		evidence.delta = evidence.delta.add(&evidence.delta).unwrap();
		let judgement = judge_update(&ctx, &root, 4, &[1], &evidence, &test, Device::Cpu).unwrap();
		assert!(!judgement.valid);
		assert!(judgement.reason.unwrap().contains("deviates"));
	}

	#[test]
	fn aggregate_is_reproducible_and_model_blobs_round_trip() {
		let (ctx, _, _, shards) = context();
		let updates: Vec<WorkerUpdate> = shards
			.chunks(1)
			.map(|shard| {
				let evidence = evidence(&ctx, shard, Cheat::None);
				WorkerUpdate { delta: evidence.delta, num_samples: 640 }
			})
			.collect();
		let (blob, hash) = ctx.aggregate(&updates).unwrap();
		let reversed: Vec<WorkerUpdate> = updates.iter().rev().cloned().collect();
		assert_eq!(ctx.aggregate(&reversed).unwrap().1, hash);
		let model = decode_model(&ctx.arch, &blob).unwrap();
		assert_eq!(Digest::of(&[&model_blob(&ctx.arch, &model).unwrap()]), hash);
		let other = Architecture::from_id("cnn-digits").unwrap();
		assert!(decode_model(&other, &blob).is_err());
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
	}
}
