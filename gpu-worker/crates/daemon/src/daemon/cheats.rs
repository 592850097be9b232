//! Submission cheats (the `cheats` feature): the worker-side rows of the threat model that are
//! not training deviations. Each turns an honest worker's record into a cheater's, so that the
//! tests and the demonstration network show every one of them caught.

use anyhow::{anyhow, bail, Result};

use agora_chain::{to_digest, ChainApi};
use agora_core::state;
use agora_p2p::{BlobKey, BlobNetwork};

use super::{Daemon, SubmittedUpdate};

/// How a worker lies about, or withholds, what it trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmissionCheat {
	/// Declares twice the samples its steps process (a larger FedAvg and reward weight).
	InflatedSamples,
	/// Submits an update one int8 step away from its run's result on one weight (a backdoor
	/// hidden inside a tolerance).
	NudgedUpdate,
	/// Trains, then serves none of its evidence (commitment and checkpoints).
	WithheldEvidence,
	/// Submits its previous round's run again (an old commitment replayed into a new round).
	ReplayedRun,
	/// Submits another worker's update of the round as its own.
	CopiedUpdate,
}

impl SubmissionCheat {
	pub const NAMES: [&'static str; 5] =
		["inflated-samples", "nudged-update", "withheld-evidence", "replayed-run", "copied-update"];

	pub fn parse(name: &str) -> Option<Self> {
		Some(match name {
			"inflated-samples" => SubmissionCheat::InflatedSamples,
			"nudged-update" => SubmissionCheat::NudgedUpdate,
			"withheld-evidence" => SubmissionCheat::WithheldEvidence,
			"replayed-run" => SubmissionCheat::ReplayedRun,
			"copied-update" => SubmissionCheat::CopiedUpdate,
			_ => return None,
		})
	}
}

impl<C: ChainApi, N: BlobNetwork> Daemon<C, N> {
	/// Turns the honest record of `(job, round)`, whose blobs are in the store, into `cheat`'s.
	pub(super) async fn deviate(
		&self,
		cheat: SubmissionCheat,
		job: u64,
		round: u32,
		honest: SubmittedUpdate,
	) -> Result<SubmittedUpdate> {
		let store = self.net.store();
		tracing::info!(job, round, ?cheat, "cheating");
		Ok(match cheat {
			SubmissionCheat::InflatedSamples => {
				SubmittedUpdate { samples: honest.samples.saturating_mul(2), ..honest }
			},
			SubmissionCheat::NudgedUpdate => {
				let mut blob = store
					.get(&BlobKey::Blob(honest.delta))?
					.ok_or_else(|| anyhow!("own update {} is not stored", honest.delta))?;
				let last = blob.last_mut().ok_or_else(|| anyhow!("empty update"))?;
				*last = last.wrapping_add(1);
				SubmittedUpdate { delta: store.put_blob(&blob)?, ..honest }
			},
			SubmissionCheat::WithheldEvidence => {
				let root = honest.checkpoint_root;
				std::fs::remove_file(store.path(&BlobKey::Commitment(root)))?;
				for index in 0..=honest.checkpoints {
					std::fs::remove_file(store.path(&BlobKey::Checkpoint { root, index }))?;
				}
				honest
			},
			SubmissionCheat::ReplayedRun => {
				let previous = match round.checked_sub(1) {
					Some(previous) => state::read_json(&self.update_record_path(job, previous))?,
					None => None,
				};
				previous.unwrap_or_else(|| {
					tracing::info!(job, round, "no earlier run to replay: honest this round");
					honest
				})
			},
			SubmissionCheat::CopiedUpdate => {
				let status = self
					.chain
					.round_status(job)
					.await?
					.ok_or_else(|| anyhow!("job {job} has no round"))?;
				for (worker, _, _) in
					status.workers.iter().filter(|(worker, ..)| *worker != self.me)
				{
					if let Some(update) = self.chain.update(job, worker).await? {
						tracing::info!(job, round, %worker, "copying the update of");
						return Ok(SubmittedUpdate {
							delta: to_digest(&update.delta),
							samples: update.samples,
							loss_micros: update.loss_micros,
							checkpoint_root: to_digest(&update.checkpoint_root),
							checkpoints: update.checkpoints,
							plant_secret: None,
						});
					}
				}
				bail!("no other update of round {round} to copy yet")
			},
		})
	}
}
