//! `agora-worker`: command-line front end of the worker's ML core.
//!
//! Subcommands cover what the chain wiring will call: create a model, prepare committed
//! datasets, train with a commitment, prove and verify a segment, aggregate updates, and the
//! benchmarks that produced the figures in docs/worker-ml-core.md.

mod bench;
mod diloco_bench;
mod market_commands;
mod network_commands;
mod replay_bench;
mod serving_bench;
mod text_commands;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tch::Device;
use tracing_subscriber::EnvFilter;

use agora_core::Digest;
use agora_daemon::daemon::Role;
use agora_ml::aggregate::{aggregate, Aggregator, WorkerUpdate};
use agora_ml::data::{self, load_sharded, BatchSchedule};
use agora_ml::models::{load_model, save_model, Architecture};
use agora_ml::params::ParamSet;
use agora_ml::train::{
	train_with_checkpoints, LrSchedule, OptimizerConfig, RunOptions, TrainConfig, Trainer,
	TrainingState,
};
use agora_proof::{
	CheckpointLeaf, ReplayVerifier, SegmentProof, TrainingCommitment, DEFAULT_TOLERANCE,
};
use network_commands::LocalData;

#[derive(Parser)]
#[command(
	name = "agora-worker",
	version,
	about = "Agora GPU worker: train, prove, verify, aggregate"
)]
struct Cli {
	/// libtorch intra-op threads (default: libtorch's choice).
	#[arg(long, global = true)]
	threads: Option<i32>,
	#[command(subcommand)]
	command: Command,
}

#[derive(Subcommand)]
enum Command {
	/// Creates a model file with deterministic initial weights and prints its hash.
	Init {
		/// Architecture id or preset (e.g. mlp-digits, cnn-digits, transformer-char).
		#[arg(long)]
		arch: String,
		#[arg(long, default_value_t = 0)]
		seed: u64,
		#[arg(long)]
		out: PathBuf,
	},
	/// Prints the content hash of a model or update file after checking it.
	Hash { path: PathBuf },
	/// Writes committed datasets (shards + manifest) for training runs.
	PrepareData(PrepareData),
	/// Trains a BPE tokenizer on a text corpus (or takes one) and writes token shards for
	/// language models.
	PrepareText(text_commands::PrepareText),
	/// Continues a prompt with a trained language model.
	Generate(text_commands::Generate),
	/// Trains with checkpoints and writes the run's commitment.
	Train(TrainArgs),
	/// Writes the proof of one segment of a committed run.
	ProveSegment {
		/// Run directory written by `train`.
		#[arg(long)]
		run: PathBuf,
		#[arg(long)]
		segment: usize,
		#[arg(long)]
		out: PathBuf,
	},
	/// Replays one segment and prints the verdict; exits 0 if accepted, 2 if rejected.
	VerifySegment(VerifyArgs),
	/// Aggregates update files and writes the aggregate; prints its hash.
	Aggregate(AggregateArgs),
	/// Runs the benchmarks and prints their tables.
	Bench(bench::BenchArgs),
	/// Runs a worker: registers and stakes, applies to open rounds, trains when selected,
	/// submits updates with proof-of-training commitments, serves its blobs, aggregates.
	Worker {
		#[command(flatten)]
		daemon: network_commands::DaemonArgs,
		/// none; or plant: submit updates no training commitment matches and expose them once
		/// the verdicts are committed, to catch validators that approve without checking.
		/// Builds with the `cheats` feature (tests and demonstrations) also deviate from
		/// honest training: skip-steps, random-weights, copied-weights, fewer-samples,
		/// substituted-data, fewer-steps; or lie about it: inflated-samples, nudged-update,
		/// withheld-evidence, replayed-run, copied-update.
		#[arg(long, default_value = "none")]
		cheat: String,
		/// This worker's own data (a directory from prepare-data) for jobs on private data,
		/// which it never shares: their validators judge its updates on held-out data alone.
		/// Without it the worker does not apply to such jobs.
		#[arg(long)]
		private_data: Option<PathBuf>,
	},
	/// Runs a validator: re-executes challenged segments, scores updates on held-out data,
	/// commits and reveals verdicts, checks aggregates.
	Validator {
		#[command(flatten)]
		daemon: network_commands::DaemonArgs,
		/// Held-out data (a directory from prepare-data) to score the updates of jobs that
		/// commit to no held-out set of their own.
		#[arg(long)]
		holdout: Option<PathBuf>,
		/// Validate lazily (builds with the `cheats` feature, for tests and demonstrations):
		/// `approve-all` approves every update without fetching anything (planted updates catch
		/// it); `skip-replay` checks the evidence's hashes but replays nothing (cheaters in its
		/// assignments catch it).
		#[arg(long, num_args = 0..=1, default_missing_value = "approve-all",
			value_parser = ["approve-all", "skip-replay"])]
		lazy: Option<String>,
	},
	/// Submitter's client: create, watch, download and report jobs.
	#[command(subcommand)]
	Job(network_commands::JobCommand),
	/// Data provider's client.
	#[command(subcommand)]
	Data(network_commands::DataCommand),
	/// Runs a worker that also serves a catalogued model: offers it at a price per request,
	/// answers paying clients over libp2p, keeps the evidence of every answer for audits and
	/// settles the clients' receipts on chain in batches.
	Serve(market_commands::ServeArgs),
	/// Token holder's client: opens a prepaid channel with a provider of a catalogued model,
	/// sends a dataset's samples and prints the predictions, their latency and their cost.
	Infer(market_commands::InferArgs),
	/// Lists the inference market's catalogue: models, versions, scores and offers.
	Models {
		#[command(flatten)]
		chain: network_commands::ChainArgs,
	},
}

#[derive(Clone, Copy, ValueEnum)]
enum Source {
	Digits,
	Text,
	Synthetic,
}

#[derive(Clone, Copy, ValueEnum)]
enum Split {
	Iid,
	LabelSkew,
}

#[derive(Args)]
struct PrepareData {
	#[arg(long, value_enum)]
	source: Source,
	#[arg(long)]
	out: PathBuf,
	/// Number of worker datasets (1: one training set).
	#[arg(long, default_value_t = 1)]
	workers: usize,
	#[arg(long, value_enum, default_value = "iid")]
	split: Split,
	/// Dirichlet concentration of the label-skew split.
	#[arg(long, default_value_t = 0.5)]
	alpha: f64,
	#[arg(long, default_value_t = 0)]
	seed: u64,
	#[arg(long, default_value_t = 512)]
	shard_size: usize,
	/// Samples held out as the test set (digits and synthetic).
	#[arg(long, default_value_t = 360)]
	test_count: usize,
	/// Tokens of context (text).
	#[arg(long, default_value_t = 64)]
	context: usize,
	/// Number of samples (synthetic).
	#[arg(long, default_value_t = 10_000)]
	count: usize,
	/// Image side (synthetic).
	#[arg(long, default_value_t = 28)]
	side: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerName {
	Sgd,
	Adam,
	/// Adam with decoupled weight decay (betas 0.9 and 0.95), for language models.
	Adamw,
}

#[derive(Args, Clone)]
struct OptimizerArgs {
	#[arg(long, value_enum, default_value = "sgd")]
	optimizer: OptimizerName,
	#[arg(long, default_value_t = 0.05)]
	lr: f64,
	/// SGD momentum.
	#[arg(long, default_value_t = 0.9)]
	momentum: f64,
	/// AdamW's weight decay.
	#[arg(long, default_value_t = 0.1)]
	weight_decay: f64,
}

impl OptimizerArgs {
	fn config(&self) -> OptimizerConfig {
		match self.optimizer {
			OptimizerName::Sgd => OptimizerConfig::sgd(self.lr, self.momentum),
			OptimizerName::Adam => OptimizerConfig::adam(self.lr),
			OptimizerName::Adamw => OptimizerConfig::AdamW {
				lr: self.lr,
				beta1: 0.9,
				beta2: 0.95,
				eps: 1e-8,
				weight_decay: self.weight_decay,
			},
		}
	}
}

#[derive(Args)]
struct TrainArgs {
	/// Starting model file (from `init` or a previous round).
	#[arg(long)]
	model: PathBuf,
	/// Dataset manifest.
	#[arg(long)]
	data: PathBuf,
	/// Expected dataset commitment (hex); checked against the manifest when given.
	#[arg(long)]
	data_root: Option<Digest>,
	#[arg(long)]
	steps: u64,
	#[arg(long, default_value_t = 32)]
	batch_size: usize,
	#[command(flatten)]
	optimizer: OptimizerArgs,
	/// Seed of the batch schedule.
	#[arg(long, default_value_t = 0)]
	seed: u64,
	#[arg(long, default_value_t = 10)]
	checkpoint_every: u64,
	/// Warm the learning rate up over this many steps, then decay it on a cosine to
	/// `--min-lr-fraction` of its peak at the last step (a constant rate without it).
	#[arg(long)]
	warmup_steps: Option<u64>,
	#[arg(long, default_value_t = 0.1)]
	min_lr_fraction: f64,
	/// Clip the global gradient norm of every step to this.
	#[arg(long)]
	clip_norm: Option<f64>,
	/// Micro-batches per step (gradient accumulation: the same step in less memory).
	#[arg(long, default_value_t = 1)]
	micro_batches: usize,
	/// Arithmetic of the forward passes: f32, or bf16 autocast (for a GPU with bf16 units).
	#[arg(long, value_enum, default_value_t = bench::PrecisionArg::F32)]
	precision: bench::PrecisionArg,
	/// Output directory: checkpoints, commitment.json, model.safetensors, update.safetensors.
	#[arg(long)]
	out: PathBuf,
	#[arg(long)]
	no_progress: bool,
}

#[derive(Args)]
struct VerifyArgs {
	/// commitment.json of the run.
	#[arg(long)]
	commitment: PathBuf,
	/// Segment proof from `prove-segment`.
	#[arg(long)]
	proof: PathBuf,
	/// Checkpoint files at the start and the end of the segment.
	#[arg(long)]
	start: PathBuf,
	#[arg(long)]
	end: PathBuf,
	/// Dataset manifest; its root must equal the commitment's data root.
	#[arg(long)]
	data: PathBuf,
	#[arg(long, default_value_t = DEFAULT_TOLERANCE)]
	tolerance: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum RuleName {
	Fedavg,
	Median,
	TrimmedMean,
	Krum,
	MultiKrum,
}

#[derive(Args)]
struct AggregateArgs {
	#[arg(long, value_enum)]
	rule: RuleName,
	/// Values trimmed from each side (trimmed mean).
	#[arg(long, default_value_t = 1)]
	trim: usize,
	/// Byzantine updates tolerated (Krum, multi-Krum).
	#[arg(long, default_value_t = 1)]
	byzantine: usize,
	/// Updates averaged by multi-Krum.
	#[arg(long, default_value_t = 2)]
	select: usize,
	/// The global model the updates were computed from.
	#[arg(long)]
	base: PathBuf,
	/// Update files (`update.safetensors` from `train`).
	#[arg(long, num_args = 1.., required = true)]
	updates: Vec<PathBuf>,
	/// Where to write the new global model (base + aggregate).
	#[arg(long)]
	out: PathBuf,
}

/// A model from a file: one this program wrote (`init`, `train`), or a round's record as
/// `job download` writes it, exactly as the chain hashed it (the model without the optimizer
/// state a record may carry beside it).
pub(crate) fn load_any_model(path: &Path) -> Result<(Architecture, ParamSet)> {
	match load_model(path) {
		Ok(model) => Ok(model),
		Err(as_file) => {
			let bytes =
				std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
			agora_protocol::decode_any_model(&bytes).map_err(|as_record| {
				anyhow::anyhow!(
					"{}: not a model file ({as_file}) nor a round's record ({as_record})",
					path.display()
				)
			})
		},
	}
}

fn main() {
	tracing_subscriber::fmt()
		.with_env_filter(
			EnvFilter::try_from_default_env()
				.unwrap_or_else(|_| EnvFilter::new("info,libp2p_swarm=warn")),
		)
		.with_writer(std::io::stderr)
		.init();
	// Before libtorch allocates anything; after the logger, which reports a refusal.
	agora_ml::device::tune_host_allocator();
	match run() {
		Ok(code) => std::process::exit(code),
		Err(error) => {
			eprintln!("error: {error:#}");
			std::process::exit(1);
		},
	}
}

fn run() -> Result<i32> {
	let cli = Cli::parse();
	if let Some(threads) = cli.threads {
		tch::set_num_threads(threads);
	}
	let device = agora_ml::device::best_device();
	match cli.command {
		Command::Init { arch, seed, out } => {
			let arch = Architecture::from_id(&arch)?;
			let params = arch.initial_params(seed)?;
			let hash = save_model(&out, &arch, &params)?;
			println!("{hash}");
		},
		Command::Hash { path } => {
			let (_, params) = load_any_model(&path)?;
			println!("{}", params.content_hash());
		},
		Command::PrepareData(args) => prepare_data(&args)?,
		Command::PrepareText(args) => text_commands::prepare_text(&args)?,
		Command::Generate(args) => text_commands::generate(&args, device)?,
		Command::Train(args) => train(&args, device)?,
		Command::ProveSegment { run, segment, out } => {
			let commitment: TrainingCommitment = read_json(&run.join(COMMITMENT_FILE))?;
			let proof = commitment.segment_proof(segment)?;
			write_json(&out, &proof)?;
			println!(
				"segment {segment}: start {} end {}",
				checkpoint_file(proof.start.step),
				checkpoint_file(proof.end.step)
			);
		},
		Command::VerifySegment(args) => return verify_segment(&args, device),
		Command::Aggregate(args) => aggregate_files(&args)?,
		Command::Bench(args) => bench::run(&args, device)?,
		Command::Worker { daemon, cheat, private_data } => {
			let conduct = network_commands::conduct(&cheat, None)?;
			let local = LocalData { private: private_data, ..LocalData::default() };
			network_commands::run_daemon(daemon, Role::Worker, conduct, local, device, None)?
		},
		Command::Serve(args) => {
			let (daemon, terms) = args.split();
			let conduct = network_commands::conduct("none", None)?;
			let local = LocalData::default();
			network_commands::run_daemon(daemon, Role::Worker, conduct, local, device, Some(terms))?
		},
		Command::Infer(args) => market_commands::run_infer(args)?,
		Command::Validator { daemon, holdout, lazy } => {
			let conduct = network_commands::conduct("none", lazy.as_deref())?;
			let local = LocalData { holdout, ..LocalData::default() };
			network_commands::run_daemon(daemon, Role::Validator, conduct, local, device, None)?
		},
		Command::Job(command) => network_commands::run_job(command, device)?,
		Command::Data(command) => network_commands::run_data(command)?,
		Command::Models { chain } => network_commands::run_models(chain)?,
	}
	Ok(0)
}

const COMMITMENT_FILE: &str = "commitment.json";

fn checkpoint_file(step: u64) -> String {
	format!("checkpoint-{step:08}.safetensors")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
	let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
	serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
	std::fs::write(path, serde_json::to_string_pretty(value)?)
		.with_context(|| format!("writing {}", path.display()))
}

fn prepare_data(args: &PrepareData) -> Result<()> {
	let (train, test) = match args.source {
		Source::Digits => {
			let digits = data::load_digits(&data::digits_csv_path())?;
			let (train, test) = data::train_test_split(&digits, args.test_count, args.seed)?;
			(train, Some(test))
		},
		Source::Synthetic => {
			let all = data::synthetic_images(args.count, 10, 1, args.side, 96, args.seed)?;
			let (train, test) = data::train_test_split(&all, args.test_count, args.seed)?;
			(train, Some(test))
		},
		Source::Text => {
			let text = std::fs::read_to_string(data::genesis_text_path())?;
			(data::text_dataset(&text, args.context)?, None)
		},
	};
	if let Some(test) = test {
		let manifest = data::write_sharded(&test, &args.out.join("test"), "test", args.shard_size)?;
		println!("test\t{}\t{} samples", manifest.root, test.len());
	}
	let parts = if args.workers <= 1 {
		vec![train]
	} else {
		match args.split {
			Split::Iid => data::split_iid(&train, args.workers, args.seed)?,
			Split::LabelSkew => {
				data::split_label_skew(&train, args.workers, args.alpha, args.seed)?
			},
		}
	};
	for (index, part) in parts.iter().enumerate() {
		let name =
			if parts.len() == 1 { "train".to_string() } else { format!("worker-{index:02}") };
		let manifest = data::write_sharded(part, &args.out.join(&name), &name, args.shard_size)?;
		println!("{name}\t{}\t{} samples", manifest.root, part.len());
	}
	Ok(())
}

fn train(args: &TrainArgs, device: Device) -> Result<()> {
	let (arch, params) = load_any_model(&args.model)?;
	let (dataset, manifest) = load_sharded(&args.data, args.data_root.as_ref())?;
	let schedule = match args.warmup_steps {
		Some(warmup_steps) => LrSchedule::WarmupCosine {
			warmup_steps,
			total_steps: args.steps,
			min_fraction: args.min_lr_fraction,
		},
		None => LrSchedule::Constant,
	};
	let config = TrainConfig {
		schedule,
		clip_norm: args.clip_norm,
		micro_batches: args.micro_batches,
		precision: args.precision.precision(),
		..TrainConfig::new(args.optimizer.config(), args.batch_size, args.seed)
	};
	std::fs::create_dir_all(&args.out)?;
	let start = TrainingState::fresh(params.clone(), &config.optimizer)?;
	let mut trainer = Trainer::new(&arch, &start, &config, device)?;
	let mut schedule = BatchSchedule::new(config.seed, dataset.len(), config.batch_size)?;
	let mut leaves = Vec::new();
	let summary = train_with_checkpoints(
		&mut trainer,
		&dataset,
		&mut schedule,
		RunOptions {
			steps: args.steps,
			checkpoint_every: args.checkpoint_every,
			show_progress: !args.no_progress,
		},
		|state, batches| {
			state.save(&args.out.join(checkpoint_file(state.step)), &arch)?;
			leaves.push(CheckpointLeaf::new(state, batches));
			Ok(())
		},
	)?;
	let commitment = TrainingCommitment::new(&arch, manifest.root, dataset.len(), &config, leaves)?;
	write_json(&args.out.join(COMMITMENT_FILE), &commitment)?;
	let trained = trainer.model().params()?;
	save_model(&args.out.join("model.safetensors"), &arch, &trained)?;
	let delta = trained.sub(&params)?;
	let metadata = BTreeMap::from([
		(agora_ml::models::META_ARCH.to_string(), arch.id()),
		(agora_ml::models::META_HASH.to_string(), delta.content_hash().to_hex()),
		(META_SAMPLES.to_string(), summary.samples.to_string()),
		(META_BASE.to_string(), params.content_hash().to_hex()),
	]);
	delta.save(&args.out.join("update.safetensors"), &metadata)?;
	tracing::info!(
		steps = summary.steps,
		samples = summary.samples,
		seconds = summary.seconds,
		loss = summary.final_metrics.loss,
		accuracy = summary.final_metrics.accuracy,
		"training done"
	);
	if arch.is_language_model() {
		let perplexity = summary.final_metrics.loss.exp();
		println!(
			"last segment's training loss {:.4}, perplexity {perplexity:.2}",
			summary.final_metrics.loss
		);
	}
	println!("{}", commitment.root);
	Ok(())
}

const META_SAMPLES: &str = "agora.num_samples";
const META_BASE: &str = "agora.base_hash";

fn verify_segment(args: &VerifyArgs, device: Device) -> Result<i32> {
	let commitment: TrainingCommitment = read_json(&args.commitment)?;
	commitment.check_roots()?;
	let proof: SegmentProof = read_json(&args.proof)?;
	let arch = Architecture::from_id(&commitment.arch)?;
	let (dataset, _) = load_sharded(&args.data, Some(&commitment.data_root))?;
	if dataset.len() as u64 != commitment.dataset_len {
		bail!(
			"dataset has {} samples, the commitment says {}",
			dataset.len(),
			commitment.dataset_len
		);
	}
	let optimizer = commitment.config.optimizer;
	let start = TrainingState::load(&args.start, &arch, &optimizer)?;
	let end = TrainingState::load(&args.end, &arch, &optimizer)?;
	let verifier = ReplayVerifier {
		arch,
		config: commitment.config.clone(),
		tolerance: args.tolerance,
		device,
	};
	let verdict =
		verifier.verify_segment(&dataset, &commitment.leaves_root, &proof, &start, &end)?;
	println!("{}", serde_json::to_string_pretty(&verdict)?);
	Ok(if verdict.accepted { 0 } else { 2 })
}

fn load_update(path: &Path, base: &ParamSet) -> Result<WorkerUpdate> {
	let (delta, metadata) = ParamSet::load(path)?;
	base.layout().check_matches(delta.layout())?;
	let samples = metadata
		.get(META_SAMPLES)
		.and_then(|s| s.parse().ok())
		.with_context(|| format!("{} has no `{META_SAMPLES}`", path.display()))?;
	if let Some(expected) = metadata.get(META_BASE) {
		if *expected != base.content_hash().to_hex() {
			bail!("{} was computed from another base model", path.display());
		}
	}
	Ok(WorkerUpdate { delta, num_samples: samples })
}

fn aggregate_files(args: &AggregateArgs) -> Result<()> {
	let (arch, base) = load_any_model(&args.base)?;
	let updates =
		args.updates.iter().map(|path| load_update(path, &base)).collect::<Result<Vec<_>>>()?;
	let rule = match args.rule {
		RuleName::Fedavg => Aggregator::FedAvg,
		RuleName::Median => Aggregator::Median,
		RuleName::TrimmedMean => Aggregator::TrimmedMean { trim: args.trim },
		RuleName::Krum => Aggregator::Krum { byzantine: args.byzantine },
		RuleName::MultiKrum => {
			Aggregator::MultiKrum { byzantine: args.byzantine, select: args.select }
		},
	};
	let result = aggregate(rule, base.layout(), &updates)?;
	let next = base.add(&result.delta)?;
	save_model(&args.out, &arch, &next)?;
	println!("{}", result.hash);
	Ok(())
}
