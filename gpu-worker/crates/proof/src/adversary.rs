//! Simulated dishonest workers, used by the tests and by the tolerance benchmark to measure
//! what the replay verifier sees from each kind of cheat. Every cheat commits the honest batch
//! indices (it claims to have done the work) but produces its checkpoints differently.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tch::Device;

use crate::{CheckpointLeaf, CommittedRun, TrainingCommitment};
use agora_ml::data::{BatchSchedule, Dataset};
use agora_ml::digest::Digest;
use agora_ml::error::Result;
use agora_ml::models::Architecture;
use agora_ml::train::{TrainConfig, Trainer, TrainingState};

/// How a simulated worker deviates from honest training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cheat {
	/// Honest training.
	None,
	/// Skips the update of every `period`-th step.
	SkipSteps { period: u64 },
	/// Publishes random weights of the initial scale at each checkpoint.
	RandomWeights,
	/// Publishes the previous checkpoint's weights again (no work done).
	CopiedWeights,
	/// Trains each step on only the first `keep_fraction` of its batch.
	FewerSamples { keep_fraction: f64 },
	/// Trains on other data of the same shape (a synthetic set drawn with `seed`).
	SubstitutedData { seed: u64 },
	/// Trains one step per segment: as many segments as the job's, each one step long (the
	/// caller runs `segments` steps with a checkpoint after each). Every segment replays
	/// exactly; only the schedule gives it away.
	FewerSteps,
}

/// Trains `steps` steps from `start` with checkpoints every `checkpoint_every` steps while
/// applying `cheat`, and commits the result as an honest worker would.
#[allow(clippy::too_many_arguments)]
pub fn dishonest_run(
	arch: &Architecture,
	start: &TrainingState,
	config: &TrainConfig,
	data: &Dataset,
	data_root: Digest,
	steps: u64,
	checkpoint_every: u64,
	cheat: Cheat,
	device: Device,
) -> Result<CommittedRun> {
	let mut schedule = BatchSchedule::new(config.seed, data.len(), config.batch_size)?;
	let substitute = match cheat {
		Cheat::SubstitutedData { seed } => Some(substitute_dataset(data, seed)?),
		_ => None,
	};
	let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
	let mut trainer = Trainer::new(arch, start, config, device)?;
	let mut checkpoints = vec![start.clone()];
	let mut leaves = vec![CheckpointLeaf::new(start, &[])];
	let mut batches = Vec::new();
	for step in start.step..start.step + steps {
		let indices = schedule.indices(step);
		match cheat {
			Cheat::SkipSteps { period } if (step + 1) % period == 0 => trainer.skip_step(),
			Cheat::FewerSamples { keep_fraction } => {
				let keep = ((indices.len() as f64 * keep_fraction).ceil() as usize).max(1);
				trainer.train_step(data, &indices[..keep])?;
			},
			_ => {
				let used = substitute.as_ref().unwrap_or(data);
				trainer.train_step(used, &indices)?;
			},
		}
		batches.push(indices);
		let done = step + 1 - start.step;
		if done.is_multiple_of(checkpoint_every) || done == steps {
			let mut state = trainer.state()?;
			let previous = checkpoints.last().expect("starts with one checkpoint");
			match cheat {
				Cheat::CopiedWeights => {
					state.params = previous.params.clone();
					state.optimizer = previous.optimizer.clone();
				},
				Cheat::RandomWeights => {
					let bound = previous.params.values().iter().fold(0f32, |m, v| m.max(v.abs()));
					for value in state.params.values_mut() {
						*value = rng.gen_range(-bound..=bound);
					}
				},
				_ => {},
			}
			// Later segments continue from what was published, as a cheater's would.
			trainer = Trainer::new(arch, &state, config, device)?;
			leaves.push(CheckpointLeaf::new(&state, &batches));
			checkpoints.push(state);
			batches.clear();
		}
	}
	let commitment = TrainingCommitment::new(arch, data_root, data.len(), config, leaves)?;
	Ok(CommittedRun { commitment, checkpoints })
}

/// Same shape, other content: the samples of `data` with labels shifted by one class (for
/// images) or tokens shifted by one (for text), shuffled by `seed`.
fn substitute_dataset(data: &Dataset, seed: u64) -> Result<Dataset> {
	let order = agora_ml::data::permutation(data.len(), seed);
	let shuffled = data.subset(&order)?;
	let kind = shuffled.kind();
	let classes = shuffled.num_classes();
	match kind {
		agora_ml::data::SampleKind::Image { .. } => {
			let relabelled: Vec<u8> =
				shuffled.labels().iter().map(|&l| ((usize::from(l) + 1) % classes) as u8).collect();
			shuffled.with_labels(relabelled)
		},
		agora_ml::data::SampleKind::Tokens { .. } => Ok(shuffled),
	}
}
