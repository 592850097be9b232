//! Training the next round while the current one is verified, in a job that overlaps its rounds
//! ([`Overlap::Eager`]; docs/protocol.md). A worker drawn for round `r + 1` while round `r` is
//! verified starts `r + 1`'s run at once, in the background, from its eager start: the record
//! round `r` started from, stepped by the worker's own round-`r` update
//! ([`agora_protocol::RoundContext::eager_start`]). When round `r + 1` starts, the run is
//! submitted if nothing it assumed changed ([`Premises`]): the worker's round-`r` update is
//! among those round `r`'s record aggregated (which is also what lets validators rebuild the
//! start), the record before it is the one the run started from, and the round's workers are
//! the ones drawn, in the same order (so its shards are the ones it trained on). Otherwise the
//! run is stopped and dropped, and the worker trains from round `r`'s record at once: a
//! speculation that fails costs the worker some compute, never a slash.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use agora_chain::{to_digest, AccountId32, ChainApi, JobInfo, JobStatusView};
use agora_core::state;
use agora_ml::digest::Digest;
use agora_p2p::{BlobKey, BlobNetwork};
use agora_protocol::{decode_update, AggregatedUpdate, Overlap, RoundContext};

use super::{
	last_loss, parse_record_name, previous_record, store_run, supported, Conduct, Daemon,
	SubmittedUpdate,
};

/// What a run trained early assumed about the round it is for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Premises {
	/// The worker's update to the round before, which its start stepped from: the round's
	/// record must name it as aggregated.
	own_previous: Digest,
	/// The record the round before started from, and the rounds completed before it: the
	/// round's record must have stepped from it.
	base: Digest,
	completed_rounds: u32,
	/// The workers drawn for the round, in the draw's order: the shards it trained on are its
	/// share among them.
	drawn: Vec<[u8; 32]>,
}

impl Premises {
	/// Why the run cannot be submitted in the round `ctx` describes (`details`, with `workers`
	/// selected), if it cannot.
	fn failure(
		&self,
		me: [u8; 32],
		details: &JobInfo,
		ctx: &RoundContext,
		workers: &[AccountId32],
	) -> Option<&'static str> {
		let own = AggregatedUpdate { worker: me, update: self.own_previous };
		if !ctx.aggregated.contains(&own) {
			return Some("this worker's previous update was not aggregated");
		}
		if previous_record(details) != Some((self.base, self.completed_rounds)) {
			return Some("the round's record did not step from the record the run started from");
		}
		if !workers.iter().map(|account| account.0).eq(self.drawn.iter().copied()) {
			return Some("the round's workers are not the ones drawn");
		}
		None
	}
}

/// A run of the next round trained early, kept until that round starts.
#[derive(Serialize, Deserialize)]
struct EarlyRun {
	/// What to submit for it.
	update: SubmittedUpdate,
	premises: Premises,
	/// Seconds it trained.
	training_seconds: f64,
}

/// A run of the next round training in the background.
pub(super) struct EarlyTraining {
	handle: tokio::task::JoinHandle<Result<()>>,
	premises: Premises,
	/// Set to give the run up at its next checkpoint.
	stop: Arc<AtomicBool>,
}

impl<C: ChainApi, N: BlobNetwork> Daemon<C, N> {
	fn early_run_path(&self, job: u64, round: u32) -> PathBuf {
		self.config.state_dir.join(format!("early/job-{job}-round-{round}.json"))
	}

	/// Starts, in the background, the next round's run of every job that overlaps its rounds,
	/// whose current round is verified and whose next round drew this worker after it trained
	/// in the current one, from its eager start (honest workers only: the others train in
	/// sequence). Runs that finished are reaped, and runs of rounds gone by dropped.
	pub(super) async fn train_next_rounds_early(&mut self) -> Result<()> {
		let finished: Vec<(u64, u32)> = self
			.early_training
			.iter()
			.filter(|(_, running)| running.handle.is_finished())
			.map(|(key, _)| *key)
			.collect();
		for key in finished {
			if let Some(running) = self.early_training.remove(&key) {
				if !log_early_outcome(key, running.handle.await) {
					self.early_failed.insert(key);
				}
			}
		}
		if self.config.conduct != Conduct::Honest {
			return Ok(());
		}
		let mut current = BTreeSet::new();
		for job in self.chain.active_jobs().await? {
			let Some(status) = self.chain.round_status(job).await? else { continue };
			current.insert((job, status.round));
			if status.phase != JobStatusView::Verifying {
				continue;
			}
			let (round, next) = (status.round, status.round.saturating_add(1));
			if self.early_training.contains_key(&(job, next))
				|| self.early_failed.contains(&(job, next))
				|| self.early_run_path(job, next).exists()
				|| self.update_record_path(job, next).exists()
				|| !self.update_record_path(job, round).exists()
			{
				continue;
			}
			let Some(details) = self.chain.job(job).await? else { continue };
			if !supported(&details).is_ok_and(|(_, h)| h.overlap == Overlap::Eager) {
				continue;
			}
			let drawn = self.chain.next_round_workers(job).await?;
			if !drawn.contains(&self.me) {
				continue;
			}
			if let Err(e) = self.start_early_run(job, round, &details, drawn).await {
				tracing::warn!(job, round = next, "not training early: {e:#}");
				self.early_failed.insert((job, next));
			}
		}
		self.drop_early_runs_gone_by(&current);
		Ok(())
	}

	/// Spawns the run of round `round + 1` of `job` from this worker's eager start, from the
	/// job as `details` shows it while round `round` is verified: the record round `round`
	/// started from is `details`' latest.
	async fn start_early_run(
		&mut self,
		job: u64,
		round: u32,
		details: &JobInfo,
		drawn: Vec<AccountId32>,
	) -> Result<()> {
		if details.round != round || details.status != JobStatusView::Verifying {
			bail!("round {round} is no longer verified");
		}
		let own: SubmittedUpdate = state::read_json(&self.update_record_path(job, round))?
			.ok_or_else(|| anyhow!("no update of this worker in round {round}"))?;
		if own.plant_secret.is_some() {
			bail!("a planted update has no run to go on from");
		}
		let base = to_digest(&details.latest_model);
		let completed_rounds = u32::try_from(details.models.len())?;
		let ctx = self.context_at(job, details, round, base, completed_rounds).await?;
		let bytes = self
			.net
			.store()
			.get(&BlobKey::Blob(own.delta))?
			.ok_or_else(|| anyhow!("this worker's round-{round} update is not in its store"))?;
		let own_update = decode_update(&ctx.arch, &bytes, ctx.hyperparameters.compression)?;
		let (data, data_root) = self.worker_data_among(details, &drawn, &self.me).await?;
		let next = round.saturating_add(1);
		tracing::info!(job, round = next, samples = data.len(), "training the next round early");
		let premises = Premises {
			own_previous: own.delta,
			base,
			completed_rounds,
			drawn: drawn.iter().map(|account| account.0).collect(),
		};
		let stop = Arc::new(AtomicBool::new(false));
		let handle = tokio::task::spawn_blocking({
			let path = self.early_run_path(job, next);
			let store = self.net.store().clone();
			let device = self.config.device;
			let me = self.me.0;
			let premises = premises.clone();
			let stop = stop.clone();
			move || -> Result<()> {
				let started = Instant::now();
				let run =
					ctx.train_next_round_early(&own_update, me, (&data, data_root), device, &stop)?;
				let training_seconds = started.elapsed().as_secs_f64();
				let loss = last_loss(&ctx, &run.checkpoints, &data, device).unwrap_or(0.0);
				let update = store_run(&store, &ctx, &run, loss)?;
				state::write_json(&path, &EarlyRun { update, premises, training_seconds })?;
				Ok(())
			}
		});
		self.early_training.insert((job, next), EarlyTraining { handle, premises, stop });
		Ok(())
	}

	/// The update to submit for `round` of `job` from a run trained early, if there is one and
	/// its premises held; a run still training is waited for only then (one whose premises
	/// failed is stopped, and the round trained at once). Nothing is dropped before the
	/// premises are read from the chain: a failed read fails the duty, which comes back.
	pub(super) async fn early_update(
		&mut self,
		job: u64,
		round: u32,
	) -> Result<Option<SubmittedUpdate>> {
		let path = self.early_run_path(job, round);
		let premises = match self.early_training.get(&(job, round)) {
			Some(running) => running.premises.clone(),
			None => match state::read_json::<EarlyRun>(&path)? {
				Some(early) => early.premises,
				None => return Ok(None),
			},
		};
		let (details, ctx) = self.context(job, round).await?;
		let workers = self.round_workers(job).await?;
		if let Some(reason) = premises.failure(self.me.0, &details, &ctx, &workers) {
			if let Some(running) = self.early_training.remove(&(job, round)) {
				running.stop.store(true, Ordering::Relaxed);
			}
			remove_if_present(&path)?;
			tracing::info!(job, round, "early run dropped: {reason}");
			return Ok(None);
		}
		if let Some(running) = self.early_training.remove(&(job, round)) {
			// Still training: it finishes sooner than a run started now would.
			log_early_outcome((job, round), running.handle.await);
		}
		let Some(early) = state::read_json::<EarlyRun>(&path)? else { return Ok(None) };
		remove_if_present(&path)?;
		self.add_timings(job, round, |t| t.training_seconds += early.training_seconds);
		tracing::info!(job, round, update = %early.update.delta, "submitting the run trained early");
		Ok(Some(early.update))
	}

	/// Stops the runs, and removes the records of runs, for rounds no longer ahead: a job that
	/// ended, or a round that started without using them (`current`: each active job's round).
	fn drop_early_runs_gone_by(&mut self, current: &BTreeSet<(u64, u32)>) {
		let ahead = |(job, round): (u64, u32)| {
			current.iter().any(|&(active, now)| active == job && now <= round)
		};
		self.early_training.retain(|&key, running| {
			let keep = ahead(key);
			if !keep {
				running.stop.store(true, Ordering::Relaxed);
			}
			keep
		});
		let Ok(entries) = std::fs::read_dir(self.config.state_dir.join("early")) else { return };
		for path in entries.filter_map(|entry| entry.ok().map(|entry| entry.path())) {
			let gone_by = parse_record_name(&path).is_some_and(|key| !ahead(key));
			if gone_by {
				if let Err(e) = std::fs::remove_file(&path) {
					tracing::warn!("cannot remove {}: {e}", path.display());
				}
			}
		}
	}
}

fn remove_if_present(path: &std::path::Path) -> Result<()> {
	match std::fs::remove_file(path) {
		Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
		_ => Ok(()),
	}
}

/// Logs how a run trained early ended; whether it succeeded.
fn log_early_outcome(
	(job, round): (u64, u32),
	outcome: std::result::Result<Result<()>, tokio::task::JoinError>,
) -> bool {
	match outcome {
		Ok(Ok(())) => {
			tracing::info!(job, round, "trained the next round early");
			true
		},
		Ok(Err(e)) => {
			tracing::warn!(job, round, "training early failed: {e:#}");
			false
		},
		Err(e) => {
			tracing::warn!(job, round, "training early stopped: {e}");
			false
		},
	}
}
