//! DiLoCo against centralized training of the same language model on the same tokens: the
//! figure behind Agora's language-model rounds (docs/language-models.md).
//!
//! `workers` workers each train `inner_steps` steps of batch `batch` from the round's model on
//! their share of the token windows, their int8-encoded updates are averaged and the outer
//! optimizer steps along the mean. The inner AdamW either starts fresh every round with its
//! schedule restarted, or carries its state across rounds (each worker's own, or the mean of
//! the workers') under one schedule over all rounds. Centralized training sees the same tokens:
//! one model, batch `workers × batch`, `rounds × inner_steps` steps with one schedule and one
//! AdamW state, the data-parallel baseline that exchanges gradients at every step.
//!
//! With `--overlap`, the job's setting runs as it is and overlapped, as workers would train if
//! each round's inner steps ran while the previous round is verified: round `r` cannot start
//! from round `r - 1`'s model, so it starts from the last verified one (round `r - 2`'s, with
//! its inner state), alone or stepped by the worker's own round-`r - 1` update, and its mean
//! update is applied to round `r - 1`'s model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use tch::Device;

use agora_ml::aggregate::{aggregate, Aggregator, WorkerUpdate};
use agora_ml::compress::{decompress, Compression, Compressor};
use agora_ml::data::{load_sharded, split_iid, BatchSchedule, Dataset, SampleKind};
use agora_ml::models::{Architecture, Model};
use agora_ml::outer::OuterOptimizer;
use agora_ml::params::ParamSet;
use agora_ml::train::{
	evaluate, local_update, LrSchedule, OptimizerConfig, TrainConfig, Trainer, TrainingState,
};

use crate::bench::table;

#[derive(Args)]
pub struct DilocoArgs {
	/// Token shards from `prepare-text` (a directory with `train/` and `holdout/`), for
	/// `diloco`.
	#[arg(long)]
	text: Option<PathBuf>,
	/// The language model (an architecture id).
	#[arg(long, default_value = "gpt:vocab=1024,ctx=64,width=64,heads=4,layers=2")]
	architecture: String,
	#[arg(long, default_value_t = 4)]
	workers: usize,
	#[arg(long, default_value_t = 6)]
	rounds: usize,
	/// Inner steps per round (DiLoCo's H).
	#[arg(long, default_value_t = 40)]
	inner_steps: u64,
	/// Windows per inner step of one worker.
	#[arg(long, default_value_t = 16)]
	batch: usize,
	/// Peak AdamW learning rate (inner and centralized).
	#[arg(long, default_value_t = 3e-3)]
	lr: f64,
	/// The outer optimizer's Nesterov rate and momentum.
	#[arg(long, default_value_t = 0.7)]
	outer_lr: f64,
	#[arg(long, default_value_t = 0.9)]
	outer_momentum: f64,
	#[arg(long, default_value_t = 1)]
	seed: u64,
	/// Sends updates as f32 instead of int8 (the bytes column still counts int8).
	#[arg(long)]
	uncompressed: bool,
	/// Prints every round's held-out loss.
	#[arg(long)]
	every_round: bool,
	/// Runs the averaged-state setting as it is and overlapped with the previous round's
	/// verification (from the stale model, and from it stepped by each worker's own last
	/// update), instead of every setting.
	#[arg(long)]
	overlap: bool,
}

impl DilocoArgs {
	/// The training windows of `--text` and their vocabulary, if given.
	pub fn token_windows(&self) -> Result<Option<(Dataset, usize)>> {
		let Some(text) = &self.text else { return Ok(None) };
		let (train, _) = load_sharded(&text.join("train/manifest.json"), None)?;
		let SampleKind::Tokens { vocab, .. } = train.kind() else {
			anyhow::bail!("{} holds no token windows", text.display());
		};
		Ok(Some((train, vocab)))
	}
}

/// Held-out loss of each setting, with its communication per worker and round.
struct Outcome {
	name: String,
	loss: f64,
	upload: u64,
	download: u64,
	seconds: f64,
}

/// What a worker's inner optimizer starts each round from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InnerMode {
	/// Zeroed buffers and the schedule restarted every round.
	FreshEachRound,
	/// Each worker's own buffers from its previous round, one schedule over all rounds (the
	/// DiLoCo paper's setting).
	KeptByEachWorker,
	/// The mean of the workers' buffers at the end of the previous round, one schedule.
	Averaged,
}

pub fn diloco(args: &DilocoArgs, device: Device) -> Result<()> {
	let arch = Architecture::from_id(&args.architecture)?;
	let text = args.text.as_ref().context("`bench diloco` needs --text (from prepare-text)")?;
	let (train, _) = load_sharded(&text.join("train/manifest.json"), None)
		.context("the training windows (run prepare-text first)")?;
	let (holdout, _) = load_sharded(&text.join("holdout/manifest.json"), None)?;
	let shards = split_iid(&train, args.workers, args.seed)?;
	let params = arch.layout()?.num_values() as u64;
	let tokens = args.workers as u64
		* args.batch as u64
		* args.inner_steps
		* args.rounds as u64
		* (train.kind().sample_len() as u64 - 1);

	let mut outcomes = Vec::new();
	let nesterov =
		Some(OuterOptimizer::Nesterov { lr: args.outer_lr, momentum: args.outer_momentum });
	let outer = format!("Nesterov {}, {}", args.outer_lr, args.outer_momentum);
	let mut settings = vec![
		(
			"federated averaging, fresh AdamW each round".into(),
			None,
			InnerMode::FreshEachRound,
			Overlap::None,
		),
		(
			format!("DiLoCo ({outer}), fresh AdamW each round"),
			nesterov,
			InnerMode::FreshEachRound,
			Overlap::None,
		),
		(
			format!("DiLoCo ({outer}), AdamW kept by each worker"),
			nesterov,
			InnerMode::KeptByEachWorker,
			Overlap::None,
		),
		(
			format!("DiLoCo ({outer}), AdamW averaged across workers"),
			nesterov,
			InnerMode::Averaged,
			Overlap::None,
		),
	];
	if args.overlap {
		// The job's setting against itself overlapped, both ways.
		settings.drain(..settings.len().saturating_sub(1));
		for (what, overlap) in [
			("from the last verified model", Overlap::Delayed),
			("from it stepped by the worker's own last update", Overlap::Eager),
		] {
			let name = format!("DiLoCo ({outer}), AdamW averaged, overlapped: {what}");
			settings.push((name, nesterov, InnerMode::Averaged, overlap));
		}
	}
	for (name, outer, inner, overlap) in settings {
		println!("{name}");
		let started = Instant::now();
		let rounds = Rounds { outer, inner, overlap };
		let (loss, upload) = rounds_of(args, &arch, &shards, &holdout, rounds, device)?;
		// The round's record: weights, the outer momentum, the averaged AdamW moments.
		let mut record = 1 + u64::from(outer.is_some());
		if inner == InnerMode::Averaged {
			record += 2;
		}
		outcomes.push(Outcome {
			name,
			loss,
			// With the averaged state, the last checkpoint (weights and both moments) goes to
			// the aggregator and voters too.
			upload: upload + if inner == InnerMode::Averaged { 12 * params } else { 0 },
			download: record * 4 * params,
			seconds: started.elapsed().as_secs_f64(),
		});
	}
	let started = Instant::now();
	let loss = centralized(args, &arch, &train, &holdout, device)?;
	// Data parallelism exchanges every step's f32 gradient: a ring all-reduce sends and
	// receives about one gradient's bytes per worker per step.
	let every_step = args.inner_steps * 4 * params;
	outcomes.push(Outcome {
		name: format!("centralized, batch {}", args.workers * args.batch),
		loss,
		upload: every_step,
		download: every_step,
		seconds: started.elapsed().as_secs_f64(),
	});

	let baseline = outcomes.last().map_or(loss, |o| o.loss);
	let rows: Vec<Vec<String>> = outcomes
		.iter()
		.map(|o| {
			vec![
				o.name.clone(),
				format!("{:.4}", o.loss),
				format!("{:.1}", o.loss.exp()),
				format!("{:+.2}%", 100.0 * (o.loss / baseline - 1.0)),
				format!("{:.2} / {:.2}", mib(o.upload), mib(o.download)),
				format!("{:.0}", o.seconds),
			]
		})
		.collect();
	table(
		&format!(
			"DiLoCo vs centralized: `{}` ({params} parameters), {} workers x {} rounds x {} inner \
			 steps of {} windows, {tokens} tokens each; AdamW lr {} warmup-cosine, clip 1.0; \
			 held-out loss on {} windows",
			args.architecture,
			args.workers,
			args.rounds,
			args.inner_steps,
			args.batch,
			args.lr,
			holdout.len()
		),
		&[
			"setting",
			"held-out loss",
			"perplexity",
			"vs centralized",
			"MiB per worker per round (up / down)",
			"seconds",
		],
		&rows,
	);
	Ok(())
}

fn mib(bytes: u64) -> f64 {
	bytes as f64 / (1024.0 * 1024.0)
}

fn inner_config(args: &DilocoArgs, batch: usize, steps: u64, seed: u64) -> TrainConfig {
	TrainConfig {
		schedule: LrSchedule::WarmupCosine {
			warmup_steps: (steps / 10).max(1),
			total_steps: steps,
			min_fraction: 0.1,
		},
		clip_norm: Some(1.0),
		..TrainConfig::new(OptimizerConfig::adamw(args.lr), batch, seed)
	}
}

/// How the rounds of one setting run.
struct Rounds {
	outer: Option<OuterOptimizer>,
	inner: InnerMode,
	overlap: Overlap,
}

/// Where a round's inner steps start when they run while the previous round is verified (its
/// model not known yet).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overlap {
	/// Not overlapped: every round starts from the previous round's model.
	None,
	/// From the last verified model (the one the previous round's mean is applied to); the mean
	/// update is applied to the previous round's model all the same (one round stale).
	Delayed,
	/// From the last verified model stepped by the worker's own update of the previous round,
	/// its stand-in for the mean it does not know yet (DiLoCo's "eager" updates, Kale et al.
	/// 2025). Both parts are on chain by then, so a validator can rebuild the start.
	Eager,
}

/// Trains `args.rounds` rounds; returns the held-out loss and the int8 update's bytes.
fn rounds_of(
	args: &DilocoArgs,
	arch: &Architecture,
	shards: &[Dataset],
	holdout: &Dataset,
	rounds: Rounds,
	device: Device,
) -> Result<(f64, u64)> {
	let Rounds { outer, inner, overlap } = rounds;
	let delay = usize::from(overlap != Overlap::None);
	let all_steps = args.inner_steps * args.rounds as u64;
	let mut global = arch.initial_params(args.seed)?;
	let mut momentum: Option<ParamSet> = None;
	let fresh = TrainingState::fresh(global.clone(), &OptimizerConfig::adamw(args.lr))?.optimizer;
	let mut kept = vec![fresh.clone(); shards.len()];
	let mut averaged = fresh.clone();
	// The verified models, averaged inner states and outer momenta, newest last: an overlapped
	// round starts from the one a round back (the initial ones until there are enough).
	let mut history = std::collections::VecDeque::from([(global.clone(), averaged.clone(), None)]);
	// Each worker's update of the previous round (for `Overlap::Eager`).
	let mut own: Vec<Option<ParamSet>> = vec![None; shards.len()];
	let mut upload = 0;
	for round in 0..args.rounds {
		let (verified, base_averaged, verified_momentum) = history
			.get(history.len().saturating_sub(1 + delay))
			.cloned()
			.context("no verified model")?;
		let mut updates = Vec::with_capacity(shards.len());
		let mut ends = Vec::with_capacity(shards.len());
		for (index, shard) in shards.iter().enumerate() {
			let (config, start, optimizer) = match inner {
				InnerMode::FreshEachRound => {
					let seed = args.seed * 1_000_000 + (round * 1000 + index) as u64;
					(inner_config(args, args.batch, args.inner_steps, seed), 0, fresh.clone())
				},
				InnerMode::KeptByEachWorker | InnerMode::Averaged => {
					let seed = args.seed * 1_000_000 + index as u64;
					let start = round as u64 * args.inner_steps;
					let buffers =
						if inner == InnerMode::Averaged { &base_averaged } else { &kept[index] };
					(inner_config(args, args.batch, all_steps, seed), start, buffers.clone())
				},
			};
			let base = match (&own[index], overlap) {
				(Some(last), Overlap::Eager) => match &outer {
					Some(outer) => outer.step(&verified, last, verified_momentum.as_ref())?.model,
					None => verified.add(last)?,
				},
				_ => verified.clone(),
			};
			let state = TrainingState { step: start, params: base.clone(), optimizer };
			let mut trainer = Trainer::new(arch, &state, &config, device)?;
			let mut batches = BatchSchedule::new(config.seed, shard.len(), args.batch)?;
			for step in start..start + args.inner_steps {
				trainer.train_step(shard, &batches.indices(step))?;
			}
			let end = trainer.state()?;
			let delta = end.params.sub(&base)?;
			let encoded = Compressor::new(Compression::Int8)?.compress(&delta)?;
			upload = encoded.len() as u64;
			let delta =
				if args.uncompressed { delta } else { decompress(delta.layout(), &encoded)? };
			if overlap == Overlap::Eager {
				own[index] = Some(delta.clone());
			}
			updates.push(WorkerUpdate { delta, num_samples: 1 });
			kept[index] = end.optimizer.clone();
			ends.push(WorkerUpdate { delta: end.optimizer, num_samples: 1 });
		}
		if inner == InnerMode::Averaged {
			averaged = aggregate(Aggregator::FedAvg, averaged.layout(), &ends)?.delta;
		}
		let mean = aggregate(Aggregator::FedAvg, global.layout(), &updates)?;
		match &outer {
			Some(outer) => {
				let step = outer.step(&global, &mean.delta, momentum.as_ref())?;
				global = step.model;
				momentum = Some(step.momentum);
			},
			None => global = global.add(&mean.delta)?,
		}
		history.push_back((global.clone(), averaged.clone(), momentum.clone()));
		if history.len() > delay + 1 {
			history.pop_front();
		}
		if args.every_round {
			let loss = evaluate(&Model::new(arch, &global, device)?, holdout, 64)?.loss;
			println!("round {round}: held-out loss {loss:.4}");
		}
	}
	let loss = evaluate(&Model::new(arch, &global, device)?, holdout, 64)?.loss;
	Ok((loss, upload))
}

fn centralized(
	args: &DilocoArgs,
	arch: &Architecture,
	train: &Dataset,
	holdout: &Dataset,
	device: Device,
) -> Result<f64> {
	let init = arch.initial_params(args.seed)?;
	let steps = args.inner_steps * args.rounds as u64;
	let config = inner_config(args, args.workers * args.batch, steps, args.seed);
	let (delta, _) = local_update(arch, &init, train, &config, steps, device)?;
	Ok(evaluate(&Model::new(arch, &init.add(&delta)?, device)?, holdout, 64)?.loss)
}
