//! Training the next round while the current one is verified (the second half of the overlap;
//! docs/language-models.md). A worker drawn for round `r + 1` while round `r` is verified
//! starts `r + 1`'s run at once, in the background, from its eager start: the model round `r`
//! started from, stepped by the worker's own round-`r` update ([`RoundContext::eager_start`]).
//! When round `r + 1` starts, the run is submitted as it stands if nothing it assumed changed:
//! the worker's round-`r` update is among those round `r`'s record aggregated (which is also
//! what lets validators rebuild the start), and the round's workers are the ones drawn, in the
//! same order (so its shards are the ones it trained on). Otherwise it is dropped, and the
//! worker trains from round `r`'s record as before: a speculation that fails costs the worker
//! some compute and never a slash.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use agora_chain::{AccountId32, ChainApi, JobStatusView};
use agora_core::state;
use agora_ml::digest::Digest;
use agora_p2p::{BlobKey, BlobNetwork};
use agora_protocol::{decode_update, AggregatedUpdate, Overlap};

use super::{last_loss, store_run, supported, Conduct, Daemon, SubmittedUpdate};

/// A run of the next round trained early, kept until that round starts.
#[derive(Serialize, Deserialize)]
pub(super) struct EarlyRun {
	/// What to submit for it.
	update: SubmittedUpdate,
	/// The worker's update to the round before, which its start stepped from: the round's
	/// record must name it as aggregated.
	own_previous: Digest,
	/// The workers drawn for the round, in the draw's order: the shards it trained on are its
	/// share among them.
	drawn: Vec<[u8; 32]>,
	/// Seconds it trained.
	training_seconds: f64,
}

/// A run of the next round being trained in the background.
pub(super) type EarlyTraining = tokio::task::JoinHandle<Result<()>>;

impl<C: ChainApi, N: BlobNetwork> Daemon<C, N> {
	fn early_run_path(&self, job: u64, round: u32) -> PathBuf {
		self.config.state_dir.join(format!("early/job-{job}-round-{round}.json"))
	}

	/// Starts, in the background, the next round's run of every job that overlaps its rounds
	/// ([`Overlap::Eager`]), whose current round is verified and whose next round drew this
	/// worker, from its eager start (honest workers only: the others train in sequence). Runs
	/// that finished are reaped.
	pub(super) async fn train_next_rounds_early(&mut self) -> Result<()> {
		let finished: Vec<(u64, u32)> = self
			.early_training
			.iter()
			.filter(|(_, handle)| handle.is_finished())
			.map(|(key, _)| *key)
			.collect();
		for key in finished {
			if let Some(handle) = self.early_training.remove(&key) {
				log_early_outcome(key, handle.await);
			}
		}
		if self.config.conduct != Conduct::Honest {
			return Ok(());
		}
		for job in self.chain.active_jobs().await? {
			let Some(status) = self.chain.round_status(job).await? else { continue };
			if status.phase != JobStatusView::Verifying {
				continue;
			}
			let overlaps = match self.chain.job(job).await? {
				Some(details) => {
					supported(&details).is_ok_and(|(_, h)| h.overlap == Overlap::Eager)
				},
				None => false,
			};
			if !overlaps {
				continue;
			}
			let (round, next) = (status.round, status.round.saturating_add(1));
			if self.early_training.contains_key(&(job, next))
				|| self.early_run_path(job, next).exists()
				|| self.update_record_path(job, next).exists()
			{
				continue;
			}
			let drawn = self.chain.next_round_workers(job).await?;
			if !drawn.contains(&self.me) {
				continue;
			}
			if let Err(e) = self.start_early_run(job, round, drawn).await {
				tracing::warn!(job, round = next, "not training early: {e:#}");
			}
		}
		Ok(())
	}

	/// Spawns the run of round `round + 1` of `job` from this worker's eager start.
	async fn start_early_run(
		&mut self,
		job: u64,
		round: u32,
		drawn: Vec<AccountId32>,
	) -> Result<()> {
		let own: SubmittedUpdate = state::read_json(&self.update_record_path(job, round))?
			.ok_or_else(|| anyhow!("no update of this worker in round {round}"))?;
		let (details, ctx) = self.context(job, round).await?;
		let bytes = self
			.net
			.store()
			.get(&BlobKey::Blob(own.delta))?
			.ok_or_else(|| anyhow!("this worker's round-{round} update is not in its store"))?;
		let own_update = decode_update(&ctx.arch, &bytes, ctx.hyperparameters.compression)?;
		let (data, data_root) = self.worker_data_among(&details, &drawn, &self.me).await?;
		let next = round.saturating_add(1);
		tracing::info!(job, round = next, samples = data.len(), "training the next round early");
		let path = self.early_run_path(job, next);
		let store = self.net.store().clone();
		let device = self.config.device;
		let me = self.me.0;
		let own_previous = own.delta;
		let handle = tokio::task::spawn_blocking(move || -> Result<()> {
			let started = Instant::now();
			let run = ctx.train_next_round_early(&own_update, me, &data, data_root, device)?;
			let training_seconds = started.elapsed().as_secs_f64();
			let loss = last_loss(&ctx, &run.checkpoints, &data, device).unwrap_or(0.0);
			let update = store_run(&store, &ctx, &run, loss)?;
			let drawn = drawn.iter().map(|account| account.0).collect();
			let early = EarlyRun { update, own_previous, drawn, training_seconds };
			state::write_json(&path, &early)?;
			Ok(())
		});
		self.early_training.insert((job, next), handle);
		Ok(())
	}

	/// The update to submit for `round` of `job` from a run trained early, if there is one
	/// and nothing it assumed changed (see the module's documentation); the run's record is
	/// dropped either way.
	pub(super) async fn early_update(
		&mut self,
		job: u64,
		round: u32,
	) -> Result<Option<SubmittedUpdate>> {
		if let Some(handle) = self.early_training.remove(&(job, round)) {
			// Still training: it finishes sooner than a run started now would.
			log_early_outcome((job, round), handle.await);
		}
		let path = self.early_run_path(job, round);
		let Some(early) = state::read_json::<EarlyRun>(&path)? else { return Ok(None) };
		std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
		let (_, ctx) = self.context(job, round).await?;
		let own = AggregatedUpdate { worker: self.me.0, update: early.own_previous };
		if !ctx.aggregated.contains(&own) {
			tracing::info!(
				job,
				round,
				"early run dropped: this worker's previous update was not aggregated"
			);
			return Ok(None);
		}
		let workers: Vec<[u8; 32]> =
			self.round_workers(job).await?.iter().map(|account| account.0).collect();
		if workers != early.drawn {
			tracing::info!(
				job,
				round,
				"early run dropped: the round's workers are not the ones drawn"
			);
			return Ok(None);
		}
		self.add_timings(job, round, |t| t.training_seconds += early.training_seconds);
		tracing::info!(job, round, update = %early.update.delta, "submitting the run trained early");
		Ok(Some(early.update))
	}
}

fn log_early_outcome(
	(job, round): (u64, u32),
	outcome: std::result::Result<Result<()>, tokio::task::JoinError>,
) {
	match outcome {
		Ok(Ok(())) => tracing::info!(job, round, "trained the next round early"),
		Ok(Err(e)) => tracing::warn!(job, round, "training early failed: {e:#}"),
		Err(e) => tracing::warn!(job, round, "training early stopped: {e}"),
	}
}
