//! Proof of training.
//!
//! A worker commits to its run with a Merkle tree over one leaf per checkpoint:
//! `leaf = H("agora/checkpoint/v1" || step || state hash || batch-indices hash)`, where the
//! state hash covers weights *and* optimizer buffers and the batch-indices hash covers the
//! indices of the steps since the previous checkpoint. The root it submits on chain binds that
//! tree to everything else the run claims ([`TrainingCommitment::bound_root`]): the job, round
//! and worker it was trained for, the architecture, the configuration and the data, so a run
//! cannot be replayed into another round, job or worker's name. To check segment i, a verifier takes
//! the checkpoint files i and i+1 with Merkle proofs of their leaves, recomputes the batches
//! from the public schedule, replays the steps from checkpoint i and accepts when the result is
//! within a relative tolerance of checkpoint i+1 (see [`ReplayVerifier`] and
//! docs/worker-ml-core.md for how the tolerance was chosen).

/// Simulated dishonest workers: for tests, the tolerance benchmark and demonstrations only
/// (the `cheats` feature; release builds leave it out).
#[cfg(any(test, feature = "cheats"))]
pub mod adversary;

pub use agora_core::merkle;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::Device;

use agora_ml::data::{batch_indices_hash, BatchSchedule, Dataset};
use agora_ml::digest::{Digest, Hasher};
use agora_ml::error::{Result, WorkerError};
use agora_ml::models::Architecture;
use agora_ml::params::ParamSet;
use agora_ml::train::{
	train_with_checkpoints, Precision, RunOptions, TrainConfig, Trainer, TrainingState,
};
use merkle::{MerkleProof, MerkleTree};

/// Default acceptance threshold of [`ReplayVerifier`]: the relative deviation between the
/// claimed and the replayed checkpoint. Chosen from the table in docs/worker-ml-core.md
/// (segments of 10 steps on CPU): the largest honest deviation measured was 2.6e-4 (a
/// transformer with Adam, replayed with another thread count; identical thread counts give 0),
/// the smallest cheat 3.6e-2 (training on 90% of each batch). 3e-3 is near their geometric
/// mean, about 10x from each.
pub const DEFAULT_TOLERANCE: f64 = 3e-3;

/// Acceptance threshold for a run trained in bf16 autocast. A bf16 product rounds its result
/// to 8 bits of mantissa, so a replay that sums in another order (another thread count or
/// device) lands further from the claim than in float32: up to 2.7e-3 over 10 steps and 6.5e-3
/// over 40 for a GPT replayed on the CPU with another thread count (`bench lm-replay
/// --precision bf16`, docs/language-models.md), against 6.8e-5 in float32; the smallest cheat
/// of that grid (training on 90% of every batch) deviated 5.3e-2. 1.5e-2 is near their
/// geometric mean, 2.3x above the largest honest deviation and 3.5x below the cheat.
pub const BF16_TOLERANCE: f64 = 1.5e-2;

/// The longest segment, in steps, of a run in bf16: the longest [`BF16_TOLERANCE`] was measured
/// on. Honest bf16 deviation grows with the segment, so a job with longer ones is refused
/// rather than left to slash honest workers.
pub const MAX_BF16_SEGMENT_STEPS: u32 = 40;

/// The tolerance that judges replays of a run in `precision`.
pub fn replay_tolerance(precision: Precision) -> f64 {
	match precision {
		Precision::F32 => DEFAULT_TOLERANCE,
		Precision::Bf16 => BF16_TOLERANCE,
	}
}

/// One checkpoint of a committed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointLeaf {
	pub step: u64,
	pub state_hash: Digest,
	/// Hash of the batch indices of the steps since the previous checkpoint (of no steps for
	/// the first checkpoint).
	pub batch_hash: Digest,
}

impl CheckpointLeaf {
	pub fn new(state: &TrainingState, batches: &[Vec<u32>]) -> Self {
		CheckpointLeaf {
			step: state.step,
			state_hash: state.content_hash(),
			batch_hash: batch_indices_hash(batches),
		}
	}

	/// The Merkle leaf.
	pub fn digest(&self) -> Digest {
		let mut hasher = Hasher::new();
		hasher.update(b"agora/checkpoint/v1");
		hasher.update_u64(self.step);
		hasher.update(self.state_hash.as_bytes());
		hasher.update(self.batch_hash.as_bytes());
		hasher.finish()
	}
}

/// Who and what a run was trained for: bound under the root a worker submits on chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunBinding {
	pub job: u64,
	pub round: u32,
	/// The worker's account id.
	pub worker: [u8; 32],
}

/// What a worker publishes about a run: enough for anyone to recompute the batches and to
/// check segment proofs against `leaves_root`, and to check that `root` binds it all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingCommitment {
	pub binding: RunBinding,
	pub arch: String,
	/// Merkle root of the dataset the run trained on.
	pub data_root: Digest,
	pub dataset_len: u64,
	pub config: TrainConfig,
	pub leaves: Vec<CheckpointLeaf>,
	/// Merkle root of the leaves: what segment proofs prove against.
	pub leaves_root: Digest,
	/// [`Self::bound_root`]: what goes on chain.
	pub root: Digest,
}

/// A committed run and its checkpoint states.
pub struct CommittedRun {
	pub commitment: TrainingCommitment,
	pub checkpoints: Vec<TrainingState>,
}

/// Trains `steps` steps from `start` following the public batch schedule, with a checkpoint
/// every `checkpoint_every` steps (and at the end), and commits the run: the one training path
/// of honest workers, whatever runs them.
#[allow(clippy::too_many_arguments)]
pub fn committed_run(
	arch: &Architecture,
	start: &TrainingState,
	config: &TrainConfig,
	data: &Dataset,
	data_root: Digest,
	steps: u64,
	checkpoint_every: u64,
	device: Device,
) -> Result<CommittedRun> {
	let never = std::sync::atomic::AtomicBool::new(false);
	committed_run_until(
		arch,
		start,
		config,
		data,
		data_root,
		steps,
		checkpoint_every,
		device,
		&never,
	)
}

/// [`committed_run`], given up at the first checkpoint after `stop` is set
/// ([`WorkerError::Stopped`]): a run that turned out not to be needed gives its device back.
#[allow(clippy::too_many_arguments)]
pub fn committed_run_until(
	arch: &Architecture,
	start: &TrainingState,
	config: &TrainConfig,
	data: &Dataset,
	data_root: Digest,
	steps: u64,
	checkpoint_every: u64,
	device: Device,
	stop: &std::sync::atomic::AtomicBool,
) -> Result<CommittedRun> {
	let mut schedule = BatchSchedule::new(config.seed, data.len(), config.batch_size)?;
	let mut trainer = Trainer::new(arch, start, config, device)?;
	let options = RunOptions { steps, checkpoint_every, show_progress: false };
	let mut leaves = Vec::new();
	let mut checkpoints = Vec::new();
	train_with_checkpoints(&mut trainer, data, &mut schedule, options, |state, batches| {
		if stop.load(std::sync::atomic::Ordering::Relaxed) {
			return Err(WorkerError::Stopped(format!("run given up at step {}", state.step)));
		}
		leaves.push(CheckpointLeaf::new(state, batches));
		checkpoints.push(state.clone());
		Ok(())
	})?;
	let commitment = TrainingCommitment::new(arch, data_root, data.len(), config, leaves)?;
	Ok(CommittedRun { commitment, checkpoints })
}

impl TrainingCommitment {
	/// A commitment to a run that is not for any on-chain round (benchmarks, the `train`
	/// command): its binding is all zeros until [`Self::bind`].
	pub fn new(
		arch: &Architecture,
		data_root: Digest,
		dataset_len: usize,
		config: &TrainConfig,
		leaves: Vec<CheckpointLeaf>,
	) -> Result<Self> {
		let leaves_root = Self::tree(&leaves)?.root();
		let mut commitment = TrainingCommitment {
			binding: RunBinding::default(),
			arch: arch.id(),
			data_root,
			dataset_len: dataset_len as u64,
			config: config.clone(),
			leaves,
			leaves_root,
			root: Digest::default(),
		};
		commitment.root = commitment.bound_root()?;
		Ok(commitment)
	}

	/// The same run, committed as trained for `binding`.
	pub fn bind(mut self, binding: RunBinding) -> Result<Self> {
		self.binding = binding;
		self.root = self.bound_root()?;
		Ok(self)
	}

	/// `H("agora/run/v2" || job || round || worker || arch || config || data root || dataset
	/// length || leaves root)`: the root a worker submits. Anything a verifier checks about a
	/// run is under it.
	pub fn bound_root(&self) -> Result<Digest> {
		let config = serde_json::to_vec(&self.config)
			.map_err(|e| WorkerError::InvalidArgument(format!("training configuration: {e}")))?;
		let mut hasher = Hasher::new();
		hasher.update(b"agora/run/v2");
		hasher.update_u64(self.binding.job);
		hasher.update_u32(self.binding.round);
		hasher.update(&self.binding.worker);
		hasher.update_u64(self.arch.len() as u64);
		hasher.update(self.arch.as_bytes());
		hasher.update_u64(config.len() as u64);
		hasher.update(&config);
		hasher.update(self.data_root.as_bytes());
		hasher.update_u64(self.dataset_len);
		hasher.update(self.leaves_root.as_bytes());
		Ok(hasher.finish())
	}

	fn tree(leaves: &[CheckpointLeaf]) -> Result<MerkleTree> {
		Ok(MerkleTree::new(&leaves.iter().map(CheckpointLeaf::digest).collect::<Vec<_>>())?)
	}

	/// Checks that the leaves hash to `leaves_root` and everything to `root`.
	pub fn check_roots(&self) -> Result<()> {
		let leaves_root = Self::tree(&self.leaves)?.root();
		if leaves_root != self.leaves_root {
			return Err(WorkerError::HashMismatch {
				what: "checkpoint leaves root".into(),
				expected: self.leaves_root.to_hex(),
				actual: leaves_root.to_hex(),
			});
		}
		let root = self.bound_root()?;
		if root != self.root {
			return Err(WorkerError::HashMismatch {
				what: "training commitment root".into(),
				expected: self.root.to_hex(),
				actual: root.to_hex(),
			});
		}
		Ok(())
	}

	/// Checks that the leaves are the checkpoints of a run of `steps` steps from `start_step`
	/// with one every `interval` steps (the last segment possibly shorter): one leaf at each
	/// checkpoint, at exactly its step. A run that skipped steps or cut its segments short
	/// fails here, before any replay.
	pub fn check_schedule(&self, start_step: u64, steps: u64, interval: u64) -> Result<()> {
		if interval == 0 || steps == 0 {
			return Err(WorkerError::InvalidArgument("a run has steps and an interval".into()));
		}
		let segments = steps.div_ceil(interval);
		if self.leaves.len() as u64 != segments + 1 {
			return Err(WorkerError::InvalidProof(format!(
				"{} checkpoints committed, a run of {steps} steps every {interval} has {}",
				self.leaves.len(),
				segments + 1
			)));
		}
		for (index, leaf) in self.leaves.iter().enumerate() {
			let expected = start_step + (index as u64 * interval).min(steps);
			if leaf.step != expected {
				return Err(WorkerError::InvalidProof(format!(
					"checkpoint {index} is at step {}, the schedule puts it at {expected}",
					leaf.step
				)));
			}
		}
		Ok(())
	}

	/// Number of segments (pairs of consecutive checkpoints).
	pub fn segments(&self) -> usize {
		self.leaves.len().saturating_sub(1)
	}

	/// Proof for segment `segment` (from checkpoint `segment` to `segment + 1`).
	pub fn segment_proof(&self, segment: usize) -> Result<SegmentProof> {
		if segment >= self.segments() {
			return Err(WorkerError::InvalidArgument(format!(
				"segment {segment} out of {}",
				self.segments()
			)));
		}
		let tree = Self::tree(&self.leaves)?;
		if tree.root() != self.leaves_root {
			return Err(WorkerError::HashMismatch {
				what: "checkpoint leaves root".into(),
				expected: self.leaves_root.to_hex(),
				actual: tree.root().to_hex(),
			});
		}
		Ok(SegmentProof {
			root: self.leaves_root,
			start: self.leaves[segment],
			end: self.leaves[segment + 1],
			start_proof: tree.proof(segment)?,
			end_proof: tree.proof(segment + 1)?,
		})
	}
}

/// Everything but the checkpoint files that a verifier needs for one segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentProof {
	/// The run's leaves root ([`TrainingCommitment::leaves_root`]).
	pub root: Digest,
	pub start: CheckpointLeaf,
	pub end: CheckpointLeaf,
	pub start_proof: MerkleProof,
	pub end_proof: MerkleProof,
}

/// Outcome of a replay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentVerdict {
	pub accepted: bool,
	/// `||claimed - replayed|| / ||replayed - start||` over the weights.
	pub params_deviation: f64,
	/// The same over the optimizer buffers (0 when the optimizer has none).
	pub optimizer_deviation: f64,
	pub steps: u64,
	pub replay_seconds: f64,
	/// Why the segment was rejected, if it was.
	pub reason: Option<String>,
}

impl SegmentVerdict {
	pub fn deviation(&self) -> f64 {
		self.params_deviation.max(self.optimizer_deviation)
	}
}

/// `||claimed - replayed|| / ||replayed - start||`: the error relative to the distance the
/// segment moved. Infinite when the replay did not move but the claim differs.
pub fn relative_deviation(
	start: &ParamSet,
	claimed: &ParamSet,
	replayed: &ParamSet,
) -> Result<f64> {
	let error = claimed.sub(replayed)?.l2_norm();
	let movement = replayed.sub(start)?.l2_norm();
	Ok(if error == 0.0 {
		0.0
	} else if movement == 0.0 {
		f64::INFINITY
	} else {
		error / movement
	})
}

/// Re-executes committed segments.
pub struct ReplayVerifier {
	pub arch: Architecture,
	pub config: TrainConfig,
	pub tolerance: f64,
	pub device: Device,
}

impl ReplayVerifier {
	/// Checks `proof` against the run's leaves root `root` ([`TrainingCommitment::leaves_root`])
	/// and replays the segment on `data`.
	///
	/// Malformed evidence (a proof for another root, a checkpoint whose hash is not the
	/// committed one, inconsistent steps) is an error; a well-formed segment whose replay does
	/// not match is a verdict with `accepted: false`.
	pub fn verify_segment(
		&self,
		data: &Dataset,
		root: &Digest,
		proof: &SegmentProof,
		start: &TrainingState,
		end: &TrainingState,
	) -> Result<SegmentVerdict> {
		data.check_compatible(&self.arch)?;
		if proof.root != *root {
			return Err(WorkerError::InvalidProof(format!(
				"proof is for root {}, expected {root}",
				proof.root
			)));
		}
		proof.start_proof.verify(root, &proof.start.digest())?;
		proof.end_proof.verify(root, &proof.end.digest())?;
		if proof.end_proof.leaf_index != proof.start_proof.leaf_index + 1 {
			return Err(WorkerError::InvalidProof(
				"segment checkpoints are not consecutive leaves".into(),
			));
		}
		for (what, leaf, state) in [("start", &proof.start, start), ("end", &proof.end, end)] {
			let actual = state.content_hash();
			if actual != leaf.state_hash {
				return Err(WorkerError::HashMismatch {
					what: format!("{what} checkpoint"),
					expected: leaf.state_hash.to_hex(),
					actual: actual.to_hex(),
				});
			}
			if state.step != leaf.step {
				return Err(WorkerError::InvalidProof(format!(
					"{what} checkpoint is at step {}, its leaf says {}",
					state.step, leaf.step
				)));
			}
		}
		if proof.end.step <= proof.start.step {
			return Err(WorkerError::InvalidProof("segment has no steps".into()));
		}
		let steps = proof.end.step - proof.start.step;
		let mut schedule =
			BatchSchedule::new(self.config.seed, data.len(), self.config.batch_size)?;
		let batches: Vec<Vec<u32>> =
			(proof.start.step..proof.end.step).map(|step| schedule.indices(step)).collect();
		if batch_indices_hash(&batches) != proof.end.batch_hash {
			return Ok(SegmentVerdict {
				accepted: false,
				params_deviation: f64::INFINITY,
				optimizer_deviation: f64::INFINITY,
				steps,
				replay_seconds: 0.0,
				reason: Some("committed batch indices differ from the schedule".into()),
			});
		}

		let started = Instant::now();
		let mut trainer = Trainer::new(&self.arch, start, &self.config, self.device)?;
		for indices in &batches {
			trainer.train_step(data, indices)?;
		}
		let replayed = trainer.state()?;
		let replay_seconds = started.elapsed().as_secs_f64();

		let params_deviation = relative_deviation(&start.params, &end.params, &replayed.params)?;
		let optimizer_deviation =
			relative_deviation(&start.optimizer, &end.optimizer, &replayed.optimizer)?;
		let accepted = params_deviation <= self.tolerance && optimizer_deviation <= self.tolerance;
		Ok(SegmentVerdict {
			accepted,
			params_deviation,
			optimizer_deviation,
			steps,
			replay_seconds,
			reason: (!accepted).then(|| {
				format!(
					"replay deviates by {:.3e} (tolerance {:.1e})",
					params_deviation.max(optimizer_deviation),
					self.tolerance
				)
			}),
		})
	}
}

/// Probability that auditing `sampled` of `segments` segments, drawn uniformly without
/// replacement, hits at least one of `bad` bad segments.
pub fn detection_probability(segments: u64, bad: u64, sampled: u64) -> f64 {
	if bad == 0 {
		return 0.0;
	}
	if sampled + bad > segments {
		return 1.0;
	}
	// P(miss) = C(n - b, s) / C(n, s) = prod_{i<s} (n - b - i) / (n - i)
	let miss: f64 =
		(0..sampled).map(|i| (segments - bad - i) as f64 / (segments - i) as f64).product();
	1.0 - miss
}

#[cfg(test)]
mod tests {
	use super::adversary::{dishonest_run, Cheat};
	use super::*;
	use agora_ml::data::{digits_csv_path, load_digits, train_test_split};
	use agora_ml::train::OptimizerConfig;

	struct Setup {
		arch: Architecture,
		config: TrainConfig,
		data: Dataset,
		start: TrainingState,
	}

	fn setup() -> Setup {
		let digits = load_digits(&digits_csv_path()).unwrap();
		let (data, _) = train_test_split(&digits, 360, 0).unwrap();
		let arch = Architecture::from_id("mlp:in=64,hidden=32,out=10").unwrap();
		let config = TrainConfig::new(OptimizerConfig::sgd(0.05, 0.9), 32, 11);
		let start =
			TrainingState::fresh(arch.initial_params(0).unwrap(), &config.optimizer).unwrap();
		Setup { arch, config, data, start }
	}

	fn verify_all(setup: &Setup, cheat: Cheat) -> Vec<SegmentVerdict> {
		let run = dishonest_run(
			&setup.arch,
			&setup.start,
			&setup.config,
			&setup.data,
			Digest::default(),
			30,
			10,
			cheat,
			Device::Cpu,
		)
		.unwrap();
		let verifier = ReplayVerifier {
			arch: setup.arch.clone(),
			config: setup.config.clone(),
			tolerance: replay_tolerance(setup.config.precision),
			device: Device::Cpu,
		};
		(0..run.commitment.segments())
			.map(|segment| {
				let proof = run.commitment.segment_proof(segment).unwrap();
				verifier
					.verify_segment(
						&setup.data,
						&run.commitment.leaves_root,
						&proof,
						&run.checkpoints[segment],
						&run.checkpoints[segment + 1],
					)
					.unwrap()
			})
			.collect()
	}

	#[test]
	fn honest_segments_are_accepted_exactly() {
		let setup = setup();
		for verdict in verify_all(&setup, Cheat::None) {
			assert!(verdict.accepted, "{verdict:?}");
			assert_eq!(verdict.deviation(), 0.0);
		}
	}

	#[test]
	fn cheats_are_rejected() {
		let setup = setup();
		for cheat in [
			Cheat::SkipSteps { period: 10 },
			Cheat::RandomWeights,
			Cheat::CopiedWeights,
			Cheat::FewerSamples { keep_fraction: 0.5 },
			Cheat::SubstitutedData { seed: 3 },
		] {
			let verdicts = verify_all(&setup, cheat);
			assert!(verdicts.iter().all(|v| !v.accepted), "{cheat:?} accepted: {verdicts:?}");
		}
	}

	#[test]
	fn bf16_runs_replay_exactly_on_the_same_device_and_cheats_exceed_their_tolerance() {
		let mut setup = setup();
		setup.config.precision = Precision::Bf16;
		for verdict in verify_all(&setup, Cheat::None) {
			assert!(verdict.accepted, "{verdict:?}");
			assert_eq!(verdict.deviation(), 0.0);
		}
		for cheat in [
			Cheat::SkipSteps { period: 10 },
			Cheat::FewerSamples { keep_fraction: 0.9 },
			Cheat::SubstitutedData { seed: 3 },
		] {
			let verdicts = verify_all(&setup, cheat);
			assert!(verdicts.iter().all(|v| !v.accepted), "{cheat:?} accepted: {verdicts:?}");
		}
	}

	#[test]
	fn proofs_for_another_run_or_tampered_checkpoints_are_errors() {
		let setup = setup();
		let honest = |seed| {
			let mut config = setup.config.clone();
			config.seed = seed;
			dishonest_run(
				&setup.arch,
				&setup.start,
				&config,
				&setup.data,
				Digest::default(),
				20,
				10,
				Cheat::None,
				Device::Cpu,
			)
			.unwrap()
		};
		let (run, other) = (honest(11), honest(12));
		let verifier = ReplayVerifier {
			arch: setup.arch.clone(),
			config: setup.config.clone(),
			tolerance: DEFAULT_TOLERANCE,
			device: Device::Cpu,
		};
		let proof = run.commitment.segment_proof(0).unwrap();
		let check = |root: &Digest, proof: &SegmentProof, start, end| {
			verifier.verify_segment(&setup.data, root, proof, start, end)
		};
		// Proof checked against another run's root.
		assert!(matches!(
			check(&other.commitment.leaves_root, &proof, &run.checkpoints[0], &run.checkpoints[1]),
			Err(WorkerError::InvalidProof(_))
		));
		// Another run's proof relabelled with this root.
		let mut foreign = other.commitment.segment_proof(0).unwrap();
		foreign.root = run.commitment.leaves_root;
		assert!(matches!(
			check(
				&run.commitment.leaves_root,
				&foreign,
				&other.checkpoints[0],
				&other.checkpoints[1]
			),
			Err(WorkerError::InvalidProof(_))
		));
		// A checkpoint file that is not the committed one.
		assert!(matches!(
			check(&run.commitment.leaves_root, &proof, &run.checkpoints[0], &other.checkpoints[1]),
			Err(WorkerError::HashMismatch { .. })
		));
		// Non-consecutive leaves.
		let mut gap = proof.clone();
		gap.end = run.commitment.leaves[2];
		gap.end_proof = run.commitment.segment_proof(1).unwrap().end_proof;
		assert!(check(&run.commitment.leaves_root, &gap, &run.checkpoints[0], &run.checkpoints[2])
			.is_err());
	}

	#[test]
	fn root_binds_the_run_description_and_schedule_is_exact() {
		let setup = setup();
		let run = dishonest_run(
			&setup.arch,
			&setup.start,
			&setup.config,
			&setup.data,
			Digest::default(),
			25,
			10,
			Cheat::None,
			Device::Cpu,
		)
		.unwrap();
		let commitment = run.commitment;
		commitment.check_roots().unwrap();
		// Steps 0, 10, 20 and 25: the last segment is shorter.
		commitment.check_schedule(0, 25, 10).unwrap();
		assert!(commitment.check_schedule(0, 30, 10).is_err());
		assert!(commitment.check_schedule(0, 25, 5).is_err());
		assert!(commitment.check_schedule(1, 25, 10).is_err());
		let bound =
			commitment.clone().bind(RunBinding { job: 1, round: 2, worker: [3; 32] }).unwrap();
		bound.check_roots().unwrap();
		assert_ne!(bound.root, commitment.root);
		assert_eq!(bound.leaves_root, commitment.leaves_root);
		// Every described field is under the root.
		let edits: [fn(&mut TrainingCommitment); 6] = [
			|c| c.binding.round = 3,
			|c| c.arch.push('x'),
			|c| c.data_root = Digest([9; 32]),
			|c| c.dataset_len += 1,
			|c| c.config.seed += 1,
			|c| c.leaves[1].step += 1,
		];
		for edit in edits {
			let mut edited = bound.clone();
			edit(&mut edited);
			assert!(edited.check_roots().is_err());
		}
	}

	#[test]
	fn detection_probability_matches_hand_computation() {
		assert_eq!(detection_probability(10, 0, 3), 0.0);
		assert_eq!(detection_probability(10, 8, 3), 1.0);
		// 1 - C(8,2)/C(10,2) = 1 - 28/45
		assert!((detection_probability(10, 2, 2) - (1.0 - 28.0 / 45.0)).abs() < 1e-12);
	}
}
