//! Benchmarks behind the figures in docs/worker-ml-core.md. Each prints a Markdown table.
//! Run with `agora-worker --threads N bench <name>...` from a release build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tch::Device;

use agora_core::Digest;
use agora_ml::aggregate::{aggregate, combine, Aggregator, WorkerUpdate};
use agora_ml::compress::{compression_ratio, decompress, Compression, Compressor};
use agora_ml::data::{self, BatchSchedule, Dataset};
use agora_ml::device::{MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES};
use agora_ml::models::{Architecture, Model};
use agora_ml::params::{Layout, ParamSet, TensorSpec};
use agora_ml::privacy::{epsilon, privatize, DpConfig};
use agora_ml::train::{
	evaluate, local_update, OptimizerConfig, Precision, TrainConfig, Trainer, TrainingState,
};
#[cfg(feature = "cheats")]
use agora_proof::{
	adversary::{dishonest_run, Cheat},
	SegmentVerdict,
};
use agora_proof::{committed_run, detection_probability, ReplayVerifier, DEFAULT_TOLERANCE};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
	Throughput,
	Aggregation,
	Federated,
	Robust,
	Compression,
	Privacy,
	Replay,
	/// Request latency and requests per second of a provider over libp2p.
	Serving,
	/// Deviations of honest replays and of simulated cheats (the `cheats` feature).
	#[cfg(feature = "cheats")]
	Tolerance,
	/// DiLoCo against centralized training of a language model (needs `--text`).
	Diloco,
	/// Replay deviations of a GPT by segment length and replaying device (`--text` or the
	/// repository's text).
	LmReplay,
	All,
}

#[derive(Args)]
pub struct BenchArgs {
	/// Benchmarks to run (default: all).
	#[arg(value_enum)]
	which: Vec<Which>,
	/// Python interpreter with torch for the PyTorch side of `throughput` (default: the venv's
	/// from `$AGORA_VENV`, set by scripts/worker-env.sh, else `python` on PATH).
	#[arg(long)]
	python: Option<PathBuf>,
	/// Training epochs of the federated experiments.
	#[arg(long, default_value_t = 20)]
	epochs: usize,
	/// Repetitions (seeds) of the federated experiments.
	#[arg(long, default_value_t = 3)]
	seeds: u64,
	/// Restricts `throughput` to these presets (default: mlp-bench, cnn-bench, transformer-char,
	/// gpt-cpu).
	#[arg(long, num_args = 1..)]
	models: Vec<String>,
	/// Batch size of each worker in the federated experiments (centralized training uses 32).
	#[arg(long, default_value_t = 4)]
	local_batch_size: usize,
	/// Arithmetic of the forward passes in `throughput` and `lm-replay`: f32, or bf16 autocast
	/// (on both sides of `throughput`).
	#[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
	pub precision: PrecisionArg,
	#[command(flatten)]
	diloco: crate::diloco_bench::DilocoArgs,
}

/// A job's [`Precision`] on the command line.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
	F32,
	Bf16,
}

impl PrecisionArg {
	pub fn precision(self) -> Precision {
		match self {
			PrecisionArg::F32 => Precision::F32,
			PrecisionArg::Bf16 => Precision::Bf16,
		}
	}

	fn name(self) -> &'static str {
		match self {
			PrecisionArg::F32 => "f32",
			PrecisionArg::Bf16 => "bf16",
		}
	}
}

pub fn run(args: &BenchArgs, device: Device) -> Result<()> {
	let all = args.which.is_empty() || args.which.contains(&Which::All);
	let wants = |w| all || args.which.contains(&w);
	println!("device: {device:?}, libtorch intra-op threads: {}", tch::get_num_threads());
	if wants(Which::Throughput) {
		throughput(args, device)?;
	}
	if wants(Which::Aggregation) {
		aggregation()?;
	}
	if wants(Which::Federated) {
		federated(args, device)?;
	}
	if wants(Which::Robust) {
		robust(args, device)?;
	}
	if wants(Which::Compression) {
		compression(args, device)?;
	}
	if wants(Which::Privacy) {
		privacy(args, device)?;
	}
	if wants(Which::Replay) {
		replay(device)?;
	}
	if wants(Which::Serving) {
		let (_, test) = digits_split()?;
		crate::serving_bench::serving(device, &test, genesis)?;
	}
	#[cfg(feature = "cheats")]
	if wants(Which::Tolerance) {
		tolerance(device)?;
	}
	// Only on request: it needs token shards from `prepare-text`.
	if args.which.contains(&Which::Diloco) {
		crate::diloco_bench::diloco(&args.diloco, device)?;
	}
	if wants(Which::LmReplay) {
		crate::replay_bench::lm_replay(
			args.diloco.token_windows()?,
			args.precision.precision(),
			device,
		)?;
	}
	Ok(())
}

pub(crate) fn table(title: &str, header: &[&str], rows: &[Vec<String>]) {
	println!("\n### {title}\n");
	println!("| {} |", header.join(" | "));
	println!("|{}", " --- |".repeat(header.len()));
	for row in rows {
		println!("| {} |", row.join(" | "));
	}
}

fn digits_split() -> Result<(Dataset, Dataset)> {
	let digits = data::load_digits(&data::digits_csv_path())?;
	Ok(data::train_test_split(&digits, 360, 0)?)
}

pub(crate) fn genesis(context: usize) -> Result<Dataset> {
	let text = std::fs::read_to_string(data::genesis_text_path())?;
	Ok(data::text_dataset(&text, context)?)
}

// ---------------------------------------------------------------------------------------
// Training step throughput: tch versus PyTorch from Python.

/// Alternating runs per side in the throughput comparison.
const REPEATS: usize = 5;

fn throughput(args: &BenchArgs, device: Device) -> Result<()> {
	let threads = tch::get_num_threads();
	let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/torch_step_throughput.py");
	let python = args.python.clone().unwrap_or_else(|| match std::env::var_os("AGORA_VENV") {
		Some(venv) => Path::new(&venv).join("bin/python"),
		None => PathBuf::from("python"),
	});
	let cases: [(&str, usize, u64); 5] = [
		("mlp-bench", 128, 300),
		("cnn-bench", 64, 100),
		("transformer-char", 32, 100),
		// About 10M parameters, windows of 256 tokens (genesis' bytes in its 8,192 vocabulary).
		("gpt-cpu", 8, 4),
		// GPT-2 small's shape, windows of 1,024 tokens: by default on a GPU only.
		("gpt2-small", 8, 10),
	];
	let mut rows = Vec::new();
	for (preset, batch_size, steps) in cases {
		let default = preset != "gpt2-small" || device.is_cuda();
		let asked = args.models.iter().any(|m| m == preset);
		if !(asked || args.models.is_empty() && default) {
			continue;
		}
		let arch = Architecture::from_id(preset)?;
		let dataset = match &arch {
			Architecture::Transformer { context, .. } | Architecture::Gpt { context, .. } => {
				genesis(*context)?
			},
			Architecture::Mlp { .. } => {
				// Flattened 28x28 synthetic images.
				data::synthetic_images(1024, 10, 1, 28, 96, 0)?
			},
			Architecture::Cnn { side, .. } => data::synthetic_images(1024, 10, 1, *side, 96, 0)?,
		};
		let config = TrainConfig {
			precision: args.precision.precision(),
			..TrainConfig::new(OptimizerConfig::sgd(0.01, 0.9), batch_size, 0)
		};
		let initial = arch.initial_params(0)?;
		// Python trains the same model from the same weights on the same samples: kernels such
		// as max pooling run at data-dependent speed, so other data would be another benchmark.
		let inputs_dir = tempfile_dir()?;
		let shard_path = inputs_dir.join(format!("{preset}.shard"));
		let init_path = inputs_dir.join(format!("{preset}.safetensors"));
		std::fs::write(&shard_path, dataset.encode_shard()?)?;
		initial.save(&init_path, &Default::default())?;
		let state = TrainingState::fresh(initial, &config.optimizer)?;
		let mut trainer = Trainer::new(&arch, &state, &config, device)?;
		let mut schedule = BatchSchedule::new(0, dataset.len(), batch_size)?;
		for step in 0..5 {
			trainer.train_step(&dataset, &schedule.indices(step))?;
		}
		agora_ml::device::synchronize(device);
		// Alternate the two sides and keep each one's best, so that load from other processes
		// on the machine penalizes neither side systematically.
		let (mut tch_rate, mut torch_rate) = (0f64, 0f64);
		let mut next_step = 5;
		for _ in 0..REPEATS {
			let started = Instant::now();
			for step in next_step..next_step + steps {
				trainer.train_step(&dataset, &schedule.indices(step))?;
			}
			// Steps are queued on a GPU: the clock is read once they have run.
			agora_ml::device::synchronize(device);
			next_step += steps;
			tch_rate = tch_rate.max(steps as f64 / started.elapsed().as_secs_f64());

			let output = Command::new(&python)
				.arg(&script)
				.args(["--arch", &arch.id()])
				.args(["--batch-size", &batch_size.to_string()])
				.args(["--steps", &steps.to_string()])
				.args(["--threads", &threads.to_string()])
				.args(["--device", if device.is_cuda() { "cuda" } else { "cpu" }])
				.args(["--precision", args.precision.name()])
				.arg("--shard")
				.arg(&shard_path)
				.arg("--init")
				.arg(&init_path)
				// The allocator settings this process runs with (see `tune_host_allocator`).
				.env("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD_BYTES.to_string())
				.env("MALLOC_TRIM_THRESHOLD_", TRIM_THRESHOLD_BYTES.to_string())
				.output()
				.with_context(|| format!("running {} {}", python.display(), script.display()))?;
			if !output.status.success() {
				bail!("PyTorch benchmark failed: {}", String::from_utf8_lossy(&output.stderr));
			}
			let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
			let rate = report["steps_per_second"].as_f64().context("no steps_per_second")?;
			torch_rate = torch_rate.max(rate);
		}
		std::fs::remove_dir_all(&inputs_dir).ok();
		let tokens = match arch.language_shape() {
			Some((_, context)) => {
				let per_step = (batch_size * context) as f64;
				format!("{:.0} / {:.0}", tch_rate * per_step, torch_rate * per_step)
			},
			None => "-".into(),
		};
		rows.push(vec![
			format!("`{}`", arch.id()),
			batch_size.to_string(),
			threads.to_string(),
			format!("{tch_rate:.1}"),
			format!("{torch_rate:.1}"),
			tokens,
			format!("{:.2}", tch_rate / torch_rate),
		]);
	}
	table(
		&format!(
			"Training step throughput on {device:?} in {}, tch vs PyTorch (same libtorch, same \
			 threads, SGD momentum; best of 5 alternating runs, the device synchronized before \
			 each clock reading)",
			args.precision.name()
		),
		&[
			"model",
			"batch",
			"threads",
			"tch steps/s",
			"PyTorch steps/s",
			"tokens/s (tch / PyTorch)",
			"tch / PyTorch",
		],
		&rows,
	);
	Ok(())
}

// ---------------------------------------------------------------------------------------
// Aggregation throughput against memcpy.

fn aggregation() -> Result<()> {
	let workers = 10usize;
	let len = 2_500_000usize;
	let layout = Layout::new(vec![TensorSpec { name: "w".into(), shape: vec![len] }])?;
	let mut rng = ChaCha20Rng::seed_from_u64(1);
	let updates: Vec<WorkerUpdate> = (0..workers)
		.map(|_| {
			let values = (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
			Ok(WorkerUpdate {
				delta: ParamSet::new(layout.clone(), values)?,
				num_samples: rng.gen_range(100..1000),
			})
		})
		.collect::<Result<_>>()?;
	let bytes = (workers * len * 4) as f64;
	let best_of = |repeats: usize, f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
		let mut best = f64::INFINITY;
		for _ in 0..repeats {
			let started = Instant::now();
			f()?;
			best = best.min(started.elapsed().as_secs_f64());
		}
		Ok(best)
	};
	let mut sink = vec![0f32; workers * len];
	let memcpy = best_of(5, &mut || {
		for (slot, update) in sink.chunks_exact_mut(len).zip(&updates) {
			slot.copy_from_slice(update.delta.values());
		}
		std::hint::black_box(&sink);
		Ok(())
	})?;
	let inputs: Vec<&[f32]> = updates.iter().map(|u| u.delta.values()).collect();
	let samples: Vec<u64> = updates.iter().map(|u| u.num_samples).collect();
	let gbps = |seconds: f64| bytes / seconds / 1e9;
	let mut rows = vec![vec![
		"memcpy".to_string(),
		format!("{:.1}", memcpy * 1e3),
		format!("{:.2}", gbps(memcpy)),
		"100%".to_string(),
		"".into(),
		"".into(),
	]];
	for rule in [
		Aggregator::FedAvg,
		Aggregator::Median,
		Aggregator::TrimmedMean { trim: 2 },
		Aggregator::Krum { byzantine: 3 },
		Aggregator::MultiKrum { byzantine: 3, select: 5 },
	] {
		let kernel = best_of(3, &mut || {
			std::hint::black_box(combine(rule, &inputs, &samples, len)?);
			Ok(())
		})?;
		let full = best_of(3, &mut || {
			std::hint::black_box(aggregate(rule, &layout, &updates)?);
			Ok(())
		})?;
		rows.push(vec![
			format!("{rule:?}"),
			format!("{:.1}", kernel * 1e3),
			format!("{:.2}", gbps(kernel)),
			format!("{:.0}%", 100.0 * memcpy / kernel),
			format!("{:.1}", full * 1e3),
			format!("{:.0}%", 100.0 * memcpy / full),
		]);
	}
	table(
		&format!(
			"Aggregation of {workers} updates x {len} f32 ({:.0} MB read), single thread",
			bytes / 1e6
		),
		&[
			"rule",
			"rule ms",
			"GB/s",
			"vs memcpy",
			"checked ms (validate + hash + rule)",
			"checked vs memcpy",
		],
		&rows,
	);
	Ok(())
}

// ---------------------------------------------------------------------------------------
// Federated learning experiments on the digits.

#[derive(Clone, Copy, Debug)]
enum Attack {
	None,
	/// The attacker sends -3x its honest update.
	SignFlip,
	/// The attacker sends 10x its honest update.
	Scaled,
	/// The attacker sends Gaussian noise with 10x the RMS of its honest update.
	Random,
}

struct FederatedSetup<'a> {
	arch: Architecture,
	workers: Vec<Dataset>,
	test: &'a Dataset,
	rounds: usize,
	/// Local epochs per round.
	local_epochs: f64,
	batch_size: usize,
	optimizer: OptimizerConfig,
}

/// Per-round options of [`federated_run`].
struct RoundOptions<'a> {
	rule: Aggregator,
	attackers: usize,
	attack: Attack,
	compression: Option<Compression>,
	dp: Option<DpConfig>,
	/// Filled with each compressed update's size ratio.
	ratios: Option<&'a mut Vec<f64>>,
}

fn federated_run(
	setup: &FederatedSetup,
	seed: u64,
	mut options: RoundOptions,
	device: Device,
) -> Result<f64> {
	let mut global = setup.arch.initial_params(seed)?;
	let mut compressors = match options.compression {
		Some(method) => Some(
			(0..setup.workers.len())
				.map(|_| Compressor::new(method))
				.collect::<agora_ml::Result<Vec<_>>>()?,
		),
		None => None,
	};
	let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0xa77ac);
	for round in 0..setup.rounds {
		let mut updates = Vec::with_capacity(setup.workers.len());
		for (index, local) in setup.workers.iter().enumerate() {
			let config = TrainConfig::new(
				setup.optimizer,
				setup.batch_size,
				seed * 1_000_000 + (round * 1000 + index) as u64,
			);
			let steps =
				((local.len() as f64 * setup.local_epochs) / setup.batch_size as f64).ceil() as u64;
			let (mut delta, _) =
				local_update(&setup.arch, &global, local, &config, steps.max(1), device)?;
			if index < options.attackers {
				poison(&mut delta, options.attack, &mut rng);
			}
			if let Some(dp) = &options.dp {
				privatize(&mut delta, dp, &mut rng)?;
			}
			if let Some(compressors) = compressors.as_mut() {
				let encoded = compressors[index].compress(&delta)?;
				if let Some(ratios) = options.ratios.as_deref_mut() {
					ratios.push(compression_ratio(delta.layout(), &encoded));
				}
				delta = decompress(delta.layout(), &encoded)?;
			}
			updates.push(WorkerUpdate {
				delta,
				num_samples: (local.len() as f64 * setup.local_epochs).round() as u64,
			});
		}
		let result = aggregate(options.rule, global.layout(), &updates)?;
		global = global.add(&result.delta)?;
	}
	let model = Model::new(&setup.arch, &global, device)?;
	Ok(evaluate(&model, setup.test, 512)?.accuracy)
}

fn poison(delta: &mut ParamSet, attack: Attack, rng: &mut ChaCha20Rng) {
	let rms = (delta.l2_norm() / (delta.values().len() as f64).sqrt()) as f32;
	for value in delta.values_mut() {
		*value = match attack {
			Attack::None => *value,
			Attack::SignFlip => -3.0 * *value,
			Attack::Scaled => 10.0 * *value,
			Attack::Random => 10.0 * rms * rng.gen_range(-1.732f32..1.732),
		};
	}
}

fn centralized(
	setup: &FederatedSetup,
	train: &Dataset,
	epochs: usize,
	seed: u64,
	device: Device,
) -> Result<f64> {
	let init = setup.arch.initial_params(seed)?;
	let config = TrainConfig::new(setup.optimizer, CENTRAL_BATCH, seed);
	let steps = (train.len() * epochs).div_ceil(CENTRAL_BATCH) as u64;
	let (delta, _) = local_update(&setup.arch, &init, train, &config, steps, device)?;
	let model = Model::new(&setup.arch, &init.add(&delta)?, device)?;
	Ok(evaluate(&model, setup.test, 512)?.accuracy)
}

fn mean_std(values: &[f64]) -> String {
	let mean = values.iter().sum::<f64>() / values.len() as f64;
	let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
	format!("{:.2} ± {:.2}", 100.0 * mean, 100.0 * var.sqrt())
}

fn plain(rule: Aggregator) -> RoundOptions<'static> {
	RoundOptions {
		rule,
		attackers: 0,
		attack: Attack::None,
		compression: None,
		dp: None,
		ratios: None,
	}
}

/// Batch size of centralized training in the federated comparisons.
const CENTRAL_BATCH: usize = 32;

fn digits_setup<'a>(
	test: &'a Dataset,
	workers: Vec<Dataset>,
	args: &BenchArgs,
) -> Result<FederatedSetup<'a>> {
	Ok(FederatedSetup {
		arch: Architecture::from_id("mlp-digits")?,
		workers,
		test,
		rounds: args.epochs,
		local_epochs: 1.0,
		batch_size: args.local_batch_size,
		optimizer: OptimizerConfig::sgd(0.05, 0.9),
	})
}

fn federated(args: &BenchArgs, device: Device) -> Result<()> {
	let (train, test) = digits_split()?;
	let mut rows = Vec::new();
	let mut central = Vec::new();
	let mut non_iid = Vec::new();
	let mut iid = Vec::new();
	for seed in 0..args.seeds {
		let skewed = digits_setup(&test, data::split_label_skew(&train, 8, 0.5, seed)?, args)?;
		central.push(centralized(&skewed, &train, args.epochs, seed, device)?);
		non_iid.push(federated_run(&skewed, seed, plain(Aggregator::FedAvg), device)?);
		let balanced = digits_setup(&test, data::split_iid(&train, 8, seed)?, args)?;
		iid.push(federated_run(&balanced, seed, plain(Aggregator::FedAvg), device)?);
	}
	let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
	for (name, values) in [
		("centralized (1 worker, all data)", &central),
		("FedAvg, 8 workers, label skew Dirichlet(0.5)", &non_iid),
		("FedAvg, 8 workers, IID", &iid),
	] {
		rows.push(vec![
			name.to_string(),
			mean_std(values),
			format!("{:+.2}", 100.0 * (mean(values) - mean(&central))),
		]);
	}
	table(
        &format!(
            "FedAvg vs centralized: digits, `mlp-digits`, SGD lr 0.05 momentum 0.9, {} epochs; centralized batch {CENTRAL_BATCH}; federated {} rounds x 1 local epoch, worker batch {}; {} seeds",
			args.epochs, args.epochs, args.local_batch_size, args.seeds
        ),
        &["setting", "test accuracy % (mean ± std)", "vs centralized (points)"],
        &rows,
    );
	Ok(())
}

fn robust(args: &BenchArgs, device: Device) -> Result<()> {
	let (train, test) = digits_split()?;
	let workers = 10;
	let attackers = 3;
	let rules = [
		Aggregator::FedAvg,
		Aggregator::Median,
		Aggregator::TrimmedMean { trim: attackers },
		Aggregator::Krum { byzantine: attackers },
		Aggregator::MultiKrum { byzantine: attackers, select: workers - attackers },
	];
	let attacks = [Attack::None, Attack::SignFlip, Attack::Scaled, Attack::Random];
	let seeds = args.seeds.min(2);
	let mut clean_fedavg = 0.0;
	let mut rows = Vec::new();
	for rule in rules {
		let mut row = vec![format!("{rule:?}")];
		for attack in attacks {
			let mut accuracies = Vec::new();
			for seed in 0..seeds {
				let setup = digits_setup(&test, data::split_iid(&train, workers, seed)?, args)?;
				let options = RoundOptions {
					attackers: if matches!(attack, Attack::None) { 0 } else { attackers },
					attack,
					..plain(rule)
				};
				accuracies.push(federated_run(&setup, seed, options, device)?);
			}
			let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
			if matches!(rule, Aggregator::FedAvg) && matches!(attack, Attack::None) {
				clean_fedavg = mean;
			}
			row.push(format!("{:.2} ({:+.2})", 100.0 * mean, 100.0 * (mean - clean_fedavg)));
		}
		rows.push(row);
	}
	table(
        &format!(
            "Poisoning: digits, `mlp-digits`, {workers} IID workers of which {attackers} (30%) attack, {} rounds x 1 local epoch, worker batch {}, mean of {seeds} seeds; test accuracy % (points vs clean FedAvg)",
            args.epochs, args.local_batch_size
        ),
        &["rule", "clean", "sign-flip (-3x)", "scaled (10x)", "random (10x RMS)"],
        &rows,
    );
	Ok(())
}

fn compression(args: &BenchArgs, device: Device) -> Result<()> {
	let (train, test) = digits_split()?;
	let methods: [(&str, Option<Compression>); 7] = [
		("none (f32)", None),
		("int8", Some(Compression::Int8)),
		("top-5% + int8 + error feedback", Some(Compression::TopK { fraction: 0.05 })),
		("top-4% + int8 + error feedback", Some(Compression::TopK { fraction: 0.04 })),
		("top-3% + int8 + error feedback", Some(Compression::TopK { fraction: 0.03 })),
		("top-2% + int8 + error feedback", Some(Compression::TopK { fraction: 0.02 })),
		("top-1% + int8 + error feedback", Some(Compression::TopK { fraction: 0.01 })),
	];
	let mut baseline = 0.0;
	let mut rows = Vec::new();
	for (name, method) in methods {
		let mut accuracies = Vec::new();
		let mut ratios = Vec::new();
		for seed in 0..args.seeds {
			let setup = digits_setup(&test, data::split_label_skew(&train, 8, 0.5, seed)?, args)?;
			let options = RoundOptions {
				compression: method,
				ratios: Some(&mut ratios),
				..plain(Aggregator::FedAvg)
			};
			accuracies.push(federated_run(&setup, seed, options, device)?);
		}
		let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
		if method.is_none() {
			baseline = mean;
		}
		let ratio =
			if ratios.is_empty() { 1.0 } else { ratios.iter().sum::<f64>() / ratios.len() as f64 };
		rows.push(vec![
			name.to_string(),
			format!("{ratio:.1}x"),
			mean_std(&accuracies),
			format!("{:+.2}", 100.0 * (mean - baseline)),
		]);
	}
	table(
		&format!(
			"Update compression: FedAvg, digits, `mlp-digits`, 8 label-skew workers, {} rounds x 1 local epoch, worker batch {}, {} seeds; ratio = f32 bytes / encoded bytes",
			args.epochs, args.local_batch_size, args.seeds
		),
		&["method", "size ratio", "test accuracy %", "vs uncompressed (points)"],
		&rows,
	);
	Ok(())
}

fn privacy(args: &BenchArgs, device: Device) -> Result<()> {
	let (train, test) = digits_split()?;
	let delta_target = 1e-5;
	let mut rows = Vec::new();
	for (clip, sigma) in
		[(f64::NAN, 0.0), (1.0, 0.0), (1.0, 0.01), (1.0, 0.05), (1.0, 0.2), (1.0, 1.0)]
	{
		let mut accuracies = Vec::new();
		for seed in 0..args.seeds {
			let setup = digits_setup(&test, data::split_iid(&train, 8, seed)?, args)?;
			let options = RoundOptions {
				dp: (!clip.is_nan())
					.then_some(DpConfig { clip_norm: clip, noise_multiplier: sigma }),
				..plain(Aggregator::FedAvg)
			};
			accuracies.push(federated_run(&setup, seed, options, device)?);
		}
		let eps = epsilon(sigma, args.epochs as u64, delta_target)?;
		rows.push(vec![
			if clip.is_nan() { "off".into() } else { format!("{clip}") },
			format!("{sigma}"),
			mean_std(&accuracies),
			if eps.is_finite() { format!("{eps:.3e}") } else { "∞".into() },
		]);
	}
	table(
        &format!(
            "Differential privacy per update (clip + Gaussian noise), FedAvg, digits, `mlp-digits`, 8 IID workers, {} rounds, worker batch {}, δ = {delta_target}, {} seeds",
            args.epochs, args.local_batch_size, args.seeds
        ),
        &["clip C", "noise multiplier σ", "test accuracy %", "ε per worker (RDP, no subsampling)"],
        &rows,
    );
	Ok(())
}

// ---------------------------------------------------------------------------------------
// Proof of training: replay cost, detection probability, tolerance table.

fn replay(device: Device) -> Result<()> {
	let (train, _) = digits_split()?;
	let arch = Architecture::from_id("cnn-digits")?;
	let config = TrainConfig::new(OptimizerConfig::sgd(0.05, 0.9), 32, 3);
	let start = TrainingState::fresh(arch.initial_params(0)?, &config.optimizer)?;
	let (steps, every) = (400u64, 10u64);
	let started = Instant::now();
	let run =
		committed_run(&arch, &start, &config, &train, Digest::default(), steps, every, device)?;
	let train_seconds = started.elapsed().as_secs_f64();
	let segments = run.commitment.segments();
	let verifier = ReplayVerifier {
		arch: arch.clone(),
		config: config.clone(),
		tolerance: DEFAULT_TOLERANCE,
		device,
	};
	let mut replay_seconds = Vec::new();
	let mut verify_seconds = Vec::new();
	for segment in (0..segments).step_by(4) {
		let t = Instant::now();
		let proof = run.commitment.segment_proof(segment)?;
		let verdict = verifier.verify_segment(
			&train,
			&run.commitment.leaves_root,
			&proof,
			&run.checkpoints[segment],
			&run.checkpoints[segment + 1],
		)?;
		verify_seconds.push(t.elapsed().as_secs_f64());
		replay_seconds.push(verdict.replay_seconds);
		if !verdict.accepted {
			bail!("honest segment {segment} rejected: {verdict:?}");
		}
	}
	let per_segment_train = train_seconds / segments as f64;
	let per_segment_verify = verify_seconds.iter().sum::<f64>() / verify_seconds.len() as f64;
	let per_segment_replay = replay_seconds.iter().sum::<f64>() / replay_seconds.len() as f64;
	table(
        &format!("Replay cost: `cnn-digits`, {steps} steps, checkpoint every {every} ({segments} segments)"),
        &["quantity", "value"],
        &[
            vec!["training incl. checkpoint hashing, per segment".into(), format!("{:.1} ms", per_segment_train * 1e3)],
            vec!["replay of one segment (re-execution only)".into(), format!("{:.1} ms", per_segment_replay * 1e3)],
            vec!["verification of one segment (proofs + hashes + replay)".into(), format!("{:.1} ms", per_segment_verify * 1e3)],
            vec!["one segment's verification / one segment's training".into(), format!("{:.2}", per_segment_verify / per_segment_train)],
        ],
    );
	let mut rows = Vec::new();
	for sampled_fraction in [0.05, 0.1, 0.2, 0.3] {
		let n = 100u64;
		let sampled = (n as f64 * sampled_fraction).round() as u64;
		rows.push(vec![
			format!("{:.0}%", sampled_fraction * 100.0),
			format!("{:.2}", sampled_fraction * per_segment_verify / per_segment_train),
			format!("{:.3}", detection_probability(n, 10, sampled)),
			"1.000".into(),
		]);
	}
	table(
		"Catching a worker that skips 10% of its steps (100 segments of 10 steps)",
		&[
			"segments replayed",
			"verification cost / training cost",
			"P(catch), skips packed into 10 whole segments",
			"P(catch), skips spread (every segment has one)",
		],
		&rows,
	);
	Ok(())
}

#[cfg(feature = "cheats")]
struct ToleranceCase {
	name: &'static str,
	arch: Architecture,
	data: Dataset,
	config: TrainConfig,
}

#[cfg(feature = "cheats")]
fn tolerance(device: Device) -> Result<()> {
	let (train, _) = digits_split()?;
	let cases = vec![
		ToleranceCase {
			name: "mlp-digits, SGD",
			arch: Architecture::from_id("mlp-digits")?,
			data: train.clone(),
			config: TrainConfig::new(OptimizerConfig::sgd(0.05, 0.9), 32, 1),
		},
		ToleranceCase {
			name: "cnn-digits, Adam",
			arch: Architecture::from_id("cnn-digits")?,
			data: train.clone(),
			config: TrainConfig::new(OptimizerConfig::adam(1e-3), 32, 2),
		},
		ToleranceCase {
			name: "transformer (vocab 128, ctx 32, width 32), Adam",
			arch: Architecture::from_id("transformer:vocab=128,ctx=32,width=32,heads=2,layers=1")?,
			data: genesis(32)?,
			config: TrainConfig::new(OptimizerConfig::adam(1e-3), 16, 3),
		},
	];
	let original_threads = tch::get_num_threads();
	let other_threads = if original_threads > 1 { 1 } else { 2 };
	let cheats: [(&str, Cheat); 7] = [
		("skip 1 step in 10", Cheat::SkipSteps { period: 10 }),
		("random weights", Cheat::RandomWeights),
		("copied weights (no work)", Cheat::CopiedWeights),
		("50% of each batch", Cheat::FewerSamples { keep_fraction: 0.5 }),
		("90% of each batch", Cheat::FewerSamples { keep_fraction: 0.9 }),
		("substituted data", Cheat::SubstitutedData { seed: 9 }),
		("honest (reference)", Cheat::None),
	];
	let mut rows = Vec::new();
	let (mut honest_total, mut honest_rejected, mut cheat_total, mut cheat_accepted) = (0, 0, 0, 0);
	let mut honest_max = 0f64;
	let mut cheat_min = f64::INFINITY;
	for case in &cases {
		let start = TrainingState::fresh(case.arch.initial_params(0)?, &case.config.optimizer)?;
		let verify =
			|run: &agora_proof::CommittedRun, threads: i32| -> Result<Vec<SegmentVerdict>> {
				tch::set_num_threads(threads);
				let verifier = ReplayVerifier {
					arch: case.arch.clone(),
					config: case.config.clone(),
					tolerance: DEFAULT_TOLERANCE,
					device,
				};
				let verdicts = (0..run.commitment.segments())
					.map(|s| {
						let proof = run.commitment.segment_proof(s)?;
						Ok(verifier.verify_segment(
							&case.data,
							&run.commitment.leaves_root,
							&proof,
							&run.checkpoints[s],
							&run.checkpoints[s + 1],
						)?)
					})
					.collect::<Result<Vec<_>>>();
				tch::set_num_threads(original_threads);
				verdicts
			};
		let mut record = |label: String, honest: bool, verdicts: &[SegmentVerdict]| {
			let deviations: Vec<f64> = verdicts.iter().map(SegmentVerdict::deviation).collect();
			let min = deviations.iter().copied().fold(f64::INFINITY, f64::min);
			let max = deviations.iter().copied().fold(0f64, f64::max);
			let accepted = verdicts.iter().filter(|v| v.accepted).count();
			if honest {
				honest_total += verdicts.len();
				honest_rejected += verdicts.len() - accepted;
				honest_max = honest_max.max(max);
			} else {
				cheat_total += verdicts.len();
				cheat_accepted += accepted;
				cheat_min = cheat_min.min(min);
			}
			rows.push(vec![
				case.name.to_string(),
				label,
				format!("{min:.2e}"),
				format!("{max:.2e}"),
				format!("{accepted}/{}", verdicts.len()),
			]);
		};
		for (label, cheat) in cheats {
			let run = dishonest_run(
				&case.arch,
				&start,
				&case.config,
				&case.data,
				Digest::default(),
				40,
				10,
				cheat,
				device,
			)?;
			let honest = matches!(cheat, Cheat::None);
			let name = if honest {
				format!("honest, replay with {original_threads} threads (same as training)")
			} else {
				label.to_string()
			};
			record(name, honest, &verify(&run, original_threads)?);
			if honest {
				record(
                    format!("honest, trained with {original_threads} threads, replayed with {other_threads}"),
                    true,
                    &verify(&run, other_threads)?,
                );
			}
		}
	}
	// Fresh processes: train in one process, verify in others, through the CLI.
	let fresh = fresh_process_deviations(original_threads, other_threads)?;
	for (label, verdicts) in fresh {
		let deviations: Vec<f64> = verdicts.iter().map(SegmentVerdict::deviation).collect();
		let accepted = verdicts.iter().filter(|v| v.accepted).count();
		honest_total += verdicts.len();
		honest_rejected += verdicts.len() - accepted;
		let max = deviations.iter().copied().fold(0f64, f64::max);
		honest_max = honest_max.max(max);
		rows.push(vec![
			"mlp-digits, SGD (CLI)".into(),
			label,
			format!("{:.2e}", deviations.iter().copied().fold(f64::INFINITY, f64::min)),
			format!("{max:.2e}"),
			format!("{accepted}/{}", verdicts.len()),
		]);
	}
	table(
        &format!("Replay deviation ||claimed - replayed|| / ||replayed - start|| (max of weights and optimizer state), segments of 10 steps, tolerance {DEFAULT_TOLERANCE:e}"),
        &["model", "run", "min deviation", "max deviation", "accepted"],
        &rows,
    );
	println!(
        "\nhonest segments: {honest_total}, falsely rejected: {honest_rejected} (largest honest deviation {honest_max:.2e}); \
         cheating segments: {cheat_total}, falsely accepted: {cheat_accepted} (smallest cheat deviation {cheat_min:.2e})"
    );
	Ok(())
}

/// Runs `prepare-data`, `init`, `train` and `verify-segment` as separate processes of this
/// binary and returns the verdicts per verifier thread count.
#[cfg(feature = "cheats")]
fn fresh_process_deviations(
	train_threads: i32,
	other_threads: i32,
) -> Result<Vec<(String, Vec<SegmentVerdict>)>> {
	let exe = std::env::current_exe()?;
	let dir = tempfile_dir()?;
	let run = |args: &[&str]| -> Result<std::process::Output> {
		let output = Command::new(&exe).args(args).env("RUST_LOG", "warn").output()?;
		if !output.status.success() && output.status.code() != Some(2) {
			bail!("{:?} failed: {}", args, String::from_utf8_lossy(&output.stderr));
		}
		Ok(output)
	};
	let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
	run(&["prepare-data", "--source", "digits", "--out", &path("data")])?;
	run(&["init", "--arch", "mlp-digits", "--seed", "0", "--out", &path("init.safetensors")])?;
	let threads = train_threads.to_string();
	run(&[
		"--threads",
		&threads,
		"train",
		"--model",
		&path("init.safetensors"),
		"--data",
		&path("data/train/manifest.json"),
		"--steps",
		"40",
		"--checkpoint-every",
		"10",
		"--seed",
		"1",
		"--out",
		&path("run"),
		"--no-progress",
	])?;
	let mut results = Vec::new();
	for verifier_threads in [train_threads, other_threads] {
		let mut verdicts = Vec::new();
		for segment in 0..4u64 {
			let proof = path(&format!("proof-{segment}.json"));
			run(&[
				"prove-segment",
				"--run",
				&path("run"),
				"--segment",
				&segment.to_string(),
				"--out",
				&proof,
			])?;
			let start = path(&format!("run/checkpoint-{:08}.safetensors", segment * 10));
			let end = path(&format!("run/checkpoint-{:08}.safetensors", segment * 10 + 10));
			let output = run(&[
				"--threads",
				&verifier_threads.to_string(),
				"verify-segment",
				"--commitment",
				&path("run/commitment.json"),
				"--proof",
				&proof,
				"--start",
				&start,
				"--end",
				&end,
				"--data",
				&path("data/train/manifest.json"),
			])?;
			verdicts.push(serde_json::from_slice(&output.stdout)?);
		}
		results.push((
            format!("honest, fresh processes: trained with {train_threads} threads, replayed with {verifier_threads}"),
            verdicts,
        ));
	}
	std::fs::remove_dir_all(&dir).ok();
	Ok(results)
}

pub(crate) fn tempfile_dir() -> Result<PathBuf> {
	let dir = std::env::temp_dir().join(format!("agora-worker-bench-{}", std::process::id()));
	std::fs::create_dir_all(&dir)?;
	Ok(dir)
}
