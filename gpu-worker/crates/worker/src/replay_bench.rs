//! Replay deviations of a language model by segment length and by the device that replays:
//! the tolerance that judges GPT segments, measured for GPT segments (docs/language-models.md).
//!
//! A GPT trains with the LM recipe (AdamW, warmup-cosine, clipping) on the training device, with
//! a checkpoint every `L` steps for several `L`; every segment is replayed on the same device
//! and, from a GPU, on the CPU (or, on a CPU, with another thread count), and the honest
//! deviations are set against the tolerance and against the deviations of a subtle cheat
//! (training on 90% of every batch, the smallest cheat of the catalogue) and of a run in the
//! other precision claimed as the job's (bf16 autocast for a float32 job: faster, so a cheat
//! where it passes). It fails if an honest segment exceeds the tolerance or the 90% cheat stays
//! within it.

use anyhow::{bail, Result};
use tch::Device;

use agora_core::Digest;
use agora_ml::data::Dataset;
use agora_ml::models::Architecture;
use agora_ml::train::{LrSchedule, OptimizerConfig, Precision, TrainConfig, TrainingState};
use agora_proof::{committed_run, replay_tolerance, CommittedRun, ReplayVerifier, SegmentVerdict};

use crate::bench::table;

/// Steps of every run; segment lengths divide it.
const STEPS: u64 = 40;
const SEGMENT_LENGTHS: [u64; 5] = [1, 5, 10, 20, 40];

/// The language model and its windows: `data` from `prepare-text` if given, else the
/// repository's own text as bytes.
pub fn lm_replay(
	data: Option<(Dataset, usize)>,
	precision: Precision,
	device: Device,
) -> Result<()> {
	let (data, vocab) = match data {
		Some(data) => data,
		None => (crate::bench::genesis(64)?, 128),
	};
	let (width, layers) = if device.is_cuda() { (256, 4) } else { (64, 2) };
	let arch = Architecture::from_id(&format!(
		"gpt:vocab={vocab},ctx=64,width={width},heads=4,layers={layers}"
	))?;
	let config = TrainConfig {
		schedule: LrSchedule::WarmupCosine {
			warmup_steps: 4,
			total_steps: STEPS,
			min_fraction: 0.1,
		},
		clip_norm: Some(1.0),
		precision,
		..TrainConfig::new(OptimizerConfig::adamw(3e-3), 16, 5)
	};
	let tolerance = replay_tolerance(precision);
	let start = TrainingState::fresh(arch.initial_params(0)?, &config.optimizer)?;
	let threads = tch::get_num_threads();
	let replayers: Vec<(String, Device, i32)> = if device.is_cuda() {
		vec![
			(format!("{device:?} (as trained)"), device, threads),
			(format!("CPU, {threads} threads"), Device::Cpu, threads),
		]
	} else {
		let other = if threads > 1 { 1 } else { 2 };
		vec![
			(format!("CPU, {threads} threads (as trained)"), Device::Cpu, threads),
			(format!("CPU, {other} threads"), Device::Cpu, other),
		]
	};
	let mut rows = Vec::new();
	let (mut honest_max, mut cheat_min) = (0f64, f64::INFINITY);
	// Segments of a bf16 run claimed for a float32 job (training in float32 for a bf16 job is
	// more work, not less: only this way round is a cheat), and how many were caught. Short
	// segments of it can pass: reported, not a failure (docs/language-models.md).
	let (mut swapped_caught_all, mut swapped_all) = (0usize, 0usize);
	for length in SEGMENT_LENGTHS {
		let honest =
			committed_run(&arch, &start, &config, &data, Digest::default(), STEPS, length, device)?;
		let cheat = subtle_cheat(&arch, &start, &config, &data, length, device)?;
		// A worker that trains in the other precision and claims the job's (bf16 for a float32
		// job is the faster one): replayed in the job's precision, it must not pass.
		let other_precision = TrainConfig {
			precision: match precision {
				Precision::F32 => Precision::Bf16,
				Precision::Bf16 => Precision::F32,
			},
			..config.clone()
		};
		let swapped = committed_run(
			&arch,
			&start,
			&other_precision,
			&data,
			Digest::default(),
			STEPS,
			length,
			device,
		)?;
		for (label, replay_device, replay_threads) in &replayers {
			tch::set_num_threads(*replay_threads);
			let verifier = ReplayVerifier {
				arch: arch.clone(),
				config: config.clone(),
				tolerance,
				device: *replay_device,
			};
			let honest_verdicts = verify_all(&verifier, &data, &honest)?;
			let cheat_verdicts = match &cheat {
				Some(run) => Some(verify_all(&verifier, &data, run)?),
				None => None,
			};
			let swapped_verdicts = verify_all(&verifier, &data, &swapped)?;
			tch::set_num_threads(threads);
			let max = honest_verdicts.iter().map(SegmentVerdict::deviation).fold(0f64, f64::max);
			let accepted = honest_verdicts.iter().filter(|v| v.accepted).count();
			honest_max = honest_max.max(max);
			let cheat_cell = match cheat_verdicts {
				Some(verdicts) => {
					let min = verdicts
						.iter()
						.map(SegmentVerdict::deviation)
						.fold(f64::INFINITY, f64::min);
					let caught = verdicts.iter().filter(|v| !v.accepted).count();
					cheat_min = cheat_min.min(min);
					format!("{min:.2e} ({caught}/{} caught)", verdicts.len())
				},
				None => "(build with `cheats`)".into(),
			};
			let swapped_min = swapped_verdicts
				.iter()
				.map(SegmentVerdict::deviation)
				.fold(f64::INFINITY, f64::min);
			let swapped_caught = swapped_verdicts.iter().filter(|v| !v.accepted).count();
			if precision == Precision::F32 {
				swapped_caught_all += swapped_caught;
				swapped_all += swapped_verdicts.len();
			}
			rows.push(vec![
				length.to_string(),
				label.clone(),
				format!("{max:.2e}"),
				format!("{accepted}/{}", honest_verdicts.len()),
				cheat_cell,
				format!("{swapped_min:.2e} ({swapped_caught}/{} caught)", swapped_verdicts.len()),
			]);
		}
	}
	table(
		&format!(
			"Replay deviation of `{}` (AdamW 3e-3, warmup-cosine, clip 1.0, batch 16, {precision:?}), \
			 trained on {device:?}, {STEPS} steps; tolerance {tolerance:e}",
			arch.id()
		),
		&[
			"segment steps",
			"replayed on",
			"largest honest deviation",
			"honest segments accepted",
			"smallest deviation, 90%-of-batch cheat",
			"smallest deviation, trained in the other precision",
		],
		&rows,
	);
	println!(
		"\nlargest honest deviation {honest_max:.2e}, smallest cheat deviation {cheat_min:.2e}, \
		 tolerance {tolerance:e}"
	);
	if honest_max > tolerance {
		bail!("an honest language-model segment deviated beyond the tolerance");
	}
	if swapped_all > 0 {
		println!(
			"segments of a bf16 run claimed as float32 caught: {swapped_caught_all}/{swapped_all}"
		);
	}
	if cheat_min <= tolerance {
		bail!("a segment trained on 90% of its batches deviated within the tolerance");
	}
	Ok(())
}

fn verify_all(
	verifier: &ReplayVerifier,
	data: &Dataset,
	run: &CommittedRun,
) -> Result<Vec<SegmentVerdict>> {
	(0..run.commitment.segments())
		.map(|segment| {
			let proof = run.commitment.segment_proof(segment)?;
			Ok(verifier.verify_segment(
				data,
				&run.commitment.leaves_root,
				&proof,
				&run.checkpoints[segment],
				&run.checkpoints[segment + 1],
			)?)
		})
		.collect()
}

/// A run that trains on 90% of every batch, with a checkpoint every `length` steps.
#[cfg(feature = "cheats")]
fn subtle_cheat(
	arch: &Architecture,
	start: &TrainingState,
	config: &TrainConfig,
	data: &Dataset,
	length: u64,
	device: Device,
) -> Result<Option<CommittedRun>> {
	use agora_proof::adversary::{dishonest_run, Cheat};
	let cheat = Cheat::FewerSamples { keep_fraction: 0.9 };
	let run =
		dishonest_run(arch, start, config, data, Digest::default(), STEPS, length, cheat, device)?;
	Ok(Some(run))
}

#[cfg(not(feature = "cheats"))]
fn subtle_cheat(
	_arch: &Architecture,
	_start: &TrainingState,
	_config: &TrainConfig,
	_data: &Dataset,
	_length: u64,
	_device: Device,
) -> Result<Option<CommittedRun>> {
	Ok(None)
}
