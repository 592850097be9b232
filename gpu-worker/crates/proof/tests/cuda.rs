//! The GPU path: training on CUDA under the worker's numerics, and replays of it on CUDA and on
//! the CPU. Every test here needs a GPU; without one they return at once, unless
//! `AGORA_REQUIRE_CUDA=1` (as `scripts/gpu-check.sh` sets), which makes a missing GPU a failure.

use agora_core::Digest;
use agora_ml::data::{genesis_text_path, text_dataset, Dataset};
use agora_ml::device::{best_device, numerics_are_reproducible};
use agora_ml::models::Architecture;
use agora_ml::train::{LrSchedule, OptimizerConfig, Precision, TrainConfig, TrainingState};
use agora_proof::{committed_run, replay_tolerance, ReplayVerifier};
use tch::Device;

/// The GPU, or `None` (after saying so) where there is none and none is required.
fn gpu() -> Option<Device> {
	let device = best_device();
	if device.is_cuda() {
		return Some(device);
	}
	assert!(
		std::env::var("AGORA_REQUIRE_CUDA").as_deref() != Ok("1"),
		"AGORA_REQUIRE_CUDA=1 but libtorch sees no CUDA device"
	);
	eprintln!("no CUDA device: skipped");
	None
}

fn language_job() -> (Architecture, Dataset, TrainConfig) {
	let text = std::fs::read_to_string(genesis_text_path()).unwrap();
	let data = text_dataset(&text, 64).unwrap();
	let arch = Architecture::from_id("gpt:vocab=128,ctx=64,width=128,heads=4,layers=2").unwrap();
	let config = TrainConfig {
		schedule: LrSchedule::WarmupCosine { warmup_steps: 2, total_steps: 12, min_fraction: 0.1 },
		clip_norm: Some(1.0),
		micro_batches: 2,
		..TrainConfig::new(OptimizerConfig::adamw(3e-3), 16, 9)
	};
	(arch, data, config)
}

#[test]
fn cuda_runs_are_bit_identical_and_replay_within_tolerance_on_the_cpu() {
	let Some(device) = gpu() else { return };
	assert!(numerics_are_reproducible(), "deterministic algorithms on, TF32 off");
	let (arch, data, config) = language_job();
	runs_are_bit_identical_and_replay_within_tolerance(device, &arch, &data, &config);
}

#[test]
fn bf16_cuda_runs_are_bit_identical_and_replay_within_their_tolerance_on_the_cpu() {
	let Some(device) = gpu() else { return };
	let (arch, data, config) = language_job();
	let config = TrainConfig { precision: Precision::Bf16, ..config };
	runs_are_bit_identical_and_replay_within_tolerance(device, &arch, &data, &config);
}

/// Two runs of `config` on `device` commit to the same root, and every segment of one replays
/// within the precision's tolerance on `device` and on the CPU.
fn runs_are_bit_identical_and_replay_within_tolerance(
	device: Device,
	arch: &Architecture,
	data: &Dataset,
	config: &TrainConfig,
) {
	let start = TrainingState::fresh(arch.initial_params(3).unwrap(), &config.optimizer).unwrap();
	let run = || committed_run(arch, &start, config, data, Digest::default(), 12, 4, device);
	let (first, second) = (run().unwrap(), run().unwrap());
	assert_eq!(first.commitment.root, second.commitment.root, "two CUDA runs, one commitment");
	for replay_device in [device, Device::Cpu] {
		let verifier = ReplayVerifier {
			arch: arch.clone(),
			config: config.clone(),
			tolerance: replay_tolerance(config.precision),
			device: replay_device,
		};
		for segment in 0..first.commitment.segments() {
			let proof = first.commitment.segment_proof(segment).unwrap();
			let verdict = verifier
				.verify_segment(
					data,
					&first.commitment.leaves_root,
					&proof,
					&first.checkpoints[segment],
					&first.checkpoints[segment + 1],
				)
				.unwrap();
			eprintln!(
				"{:?} segment {segment} replayed on {replay_device:?}: {:.2e}",
				config.precision,
				verdict.deviation()
			);
			assert!(verdict.accepted, "segment {segment} on {replay_device:?}: {verdict:?}");
		}
	}
}

#[test]
fn batches_reach_the_gpu_intact_through_pinned_memory() {
	let Some(device) = gpu() else { return };
	let (_, data, _) = language_job();
	let indices: Vec<u32> = (0..32).collect();
	let on_gpu = data.batch(&indices, device).unwrap();
	let on_cpu = data.batch(&indices, Device::Cpu).unwrap();
	let (
		agora_ml::data::Batch::Language { inputs: a, .. },
		agora_ml::data::Batch::Language { inputs: b, .. },
	) = (on_gpu, on_cpu)
	else {
		panic!("token windows make language batches");
	};
	assert_eq!(a.device(), device);
	assert!(a.to_device(Device::Cpu).equal(&b));
}
