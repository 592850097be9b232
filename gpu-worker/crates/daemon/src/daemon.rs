//! The long-running worker and validator: register on chain, then follow the account's duties.
//!
//! Every few seconds the daemon reads the chain (its pending duties through `TasksApi`, the
//! open rounds) and acts: a **worker** applies to open rounds it can serve, trains when
//! selected and submits its update with the proof-of-training commitment, and aggregates when
//! drawn as aggregator; a **validator** re-executes the challenged segments of the updates
//! assigned to it and scores them on held-out data, commits and reveals its verdicts, and
//! recomputes the round's aggregate to vote on it. Aggregator and voters commit to the
//! aggregate's hash first and reveal it once commitments close, so nobody can copy another's
//! vote. Both claim their rewards.
//!
//! What must survive a restart is on disk under the state directory: the libp2p identity
//! (registered on chain), the blob store (models, updates, checkpoints, shards it serves),
//! a record of every submitted update, and every verdict and aggregate hash with its salt (what
//! was committed before a restart is revealed after it).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

use agora_chain::{
	self as chain, to_digest, to_h256, AccountId32, Balance, Capability, ChainApi, DeviceKind,
	Duty, JobInfo, JobStatusView, Pending, PendingDuty, Perbill, ProtocolCall, RegistryRole,
	Update, Verdict, VerificationStage, AGR,
};
use agora_core::state;
use agora_ml::aggregate::WorkerUpdate;
use agora_ml::data::Dataset;
use agora_ml::digest::Digest;
use agora_ml::models::Architecture;
use agora_ml::train::TrainingState;
use agora_ml::WorkerError;
use agora_p2p::{BlobKey, BlobNetwork, Peer};
#[cfg(feature = "cheats")]
use agora_proof::adversary::Cheat;
#[cfg(feature = "cheats")]
pub use cheats::SubmissionCheat;

#[cfg(feature = "cheats")]
mod cheats;
mod early;
use agora_proof::{CommittedRun, RunBinding, TrainingCommitment};
use agora_protocol::{
	assemble_dataset, decode_round_model, decode_update, judge_update, max_commitment_bytes,
	model_blob, update_blob, worker_shards, AggregatedUpdate, BlobLimits, Claim, Hyperparameters,
	InnerState, Overlap, RoundContext, RoundModel, UpdateEvidence, MAX_SHARD_BYTES,
};
use agora_text::tokenizer::{TextTokenizer, MAX_TOKENIZER_BYTES};

/// The longest a worker spends fetching a job's tokenizer before it declines the round (it
/// tries again the next round): the fetch comes before the pass's duties, which a submitter
/// naming an unserved hash must not hold up for long.
const TOKENIZER_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest the daemon waits for a new block before it looks at the chain anyway (a
/// stalled or restarting node).
const BLOCK_WAIT: Duration = Duration::from_secs(12);
/// Rewards are claimed once this much is owed (claims cost a fee).
const CLAIM_THRESHOLD: Balance = AGR / 10;

/// Which registry the daemon serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
	Worker,
	Validator,
}

/// Settings of a daemon.
pub struct DaemonConfig {
	pub role: Role,
	pub state_dir: PathBuf,
	/// Stake to bond when registering, in plancks.
	pub stake: Balance,
	/// The multiaddr registered on chain (where peers reach this node).
	pub public_addr: String,
	/// Honest, or a policing or (with the `cheats` feature) deviating participant.
	pub conduct: Conduct,
	/// A validator's own held-out data, for jobs that commit to none.
	pub holdout: Option<Dataset>,
	/// A worker's own data and its root, for jobs that train on private data
	/// (`--private-data`); a worker without it does not apply to them.
	pub private_data: Option<(Dataset, Digest)>,
	/// Device memory declared at registration.
	pub memory_mib: u32,
	pub device: Device,
	/// How long one pass waits for evidence still arriving ([`FETCH_BUDGET_PER_PASS`]).
	pub fetch_budget_per_pass: Duration,
}

/// How long one pass of the duties waits for evidence still arriving (a large download, or a
/// peer that serves slowly) before it goes on: the pass ends, the other duties that fell due
/// meanwhile are done at the next one, and the download resumes where it stopped (the partial
/// file stays). Longer than one request's timeout (10 s), so that every pass can complete a
/// request. Without it a worker serving its evidence just inside each request's timeout would
/// hold its validators' passes, and every duty of theirs, until the commit margin.
pub const FETCH_BUDGET_PER_PASS: Duration = Duration::from_secs(15);

/// How a daemon behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Conduct {
	Honest,
	/// A worker that plants updates no training commitment can match, and exposes them once
	/// the validators' verdicts are committed: it tests the validators (tests, demonstrations,
	/// and anyone who polices a network).
	Plant,
	/// A worker that deviates from honest training (tests and demonstrations only).
	#[cfg(feature = "cheats")]
	Cheat(Cheat),
	/// A worker that trains honestly, then lies about it or withholds it (tests and
	/// demonstrations only).
	#[cfg(feature = "cheats")]
	Submission(SubmissionCheat),
	/// A validator that approves every update without checking (tests and demonstrations:
	/// planted updates catch it).
	#[cfg(feature = "cheats")]
	Lazy,
	/// A validator that fetches the evidence and checks its hashes, schedule and binding, but
	/// replays nothing (tests and demonstrations: a cheater in its assignment catches it).
	#[cfg(feature = "cheats")]
	SkipReplay,
}

/// A record of a trained update, so that a restarted worker submits it without training again.
#[derive(Serialize, Deserialize)]
struct SubmittedUpdate {
	delta: Digest,
	samples: u32,
	loss_micros: u64,
	checkpoint_root: Digest,
	checkpoints: u32,
	/// For a planted update: the secret whose plant root is `checkpoint_root`.
	#[serde(default)]
	plant_secret: Option<[u8; 32]>,
}

/// The checkpoint root of a planted update (`pallet_validation::plant_root`:
/// `blake2_256(SCALE(*b"agora/plant/v1", job, worker, secret))`, all fixed-size fields).
pub fn plant_root(job: u64, worker: &AccountId32, secret: &[u8; 32]) -> Digest {
	Digest::of(&[b"agora/plant/v1", &job.to_le_bytes(), &worker.0, secret])
}

/// A validator's verdict, kept until revealed.
#[derive(Serialize, Deserialize)]
struct StoredVerdict {
	valid: bool,
	/// The worker did not serve its evidence although it was asked until
	/// [`unavailable_margin`] blocks before the commit deadline.
	#[serde(default)]
	unavailable: bool,
	/// The job trains on private data, so the held-out data its submitter must serve is all
	/// the update can be judged by, and it did not arrive.
	#[serde(default)]
	held_out_unavailable: bool,
	score_parts: u32,
	salt: [u8; 32],
	reason: Option<String>,
}

impl StoredVerdict {
	/// The verdict of a validator that could not judge the update: `Unavailable`, which never
	/// slashes the validator (and slashes the worker only when most of the stake says so).
	fn unavailable(reason: String) -> Self {
		StoredVerdict {
			valid: false,
			unavailable: true,
			held_out_unavailable: false,
			score_parts: 0,
			salt: rand::random(),
			reason: Some(reason),
		}
	}
}

/// Sets its flag when dropped: a judgement nobody waits for any more (given up at the
/// deadline, or the daemon stopping) ends at its next check instead of holding a thread and the
/// device while the next update is judged.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
	fn drop(&mut self) {
		self.0.store(true, Ordering::Relaxed);
	}
}

/// The aggregate hash an aggregator or voter committed to, kept until revealed.
#[derive(Serialize, Deserialize)]
struct StoredAggregate {
	model: [u8; 32],
	salt: [u8; 32],
}

/// Where a participant's time went in one round (seconds, summed over its duties), written
/// to `timings/job-J-round-R.json` for the protocol-overhead measurement.
#[derive(Default, Serialize, Deserialize)]
pub struct RoundTimings {
	/// Downloading models, shards, updates and checkpoints.
	pub fetch_seconds: f64,
	/// Local training (workers).
	pub training_seconds: f64,
	/// Re-executing challenged segments and scoring updates (validators).
	pub verification_seconds: f64,
	/// Computing the aggregate (aggregator and validators).
	pub aggregation_seconds: f64,
	/// Waiting for the daemon's transactions to be included in a block.
	pub chain_seconds: f64,
}

pub struct Daemon<C, N> {
	chain: C,
	net: N,
	config: DaemonConfig,
	me: AccountId32,
	/// Held while an update is judged: validators fetch evidence concurrently but replay one
	/// update at a time.
	judging: tokio::sync::Mutex<()>,
	/// The block at which an update's evidence was first in while the job's held-out data was
	/// not, and the commit deadline, by job, round and worker: the held-out data is waited for
	/// until half of the time then left for judging has passed (see `commit`). Entries past
	/// their deadline are dropped.
	held_out_waits: std::sync::Mutex<BTreeMap<UpdateKey, (u32, u32)>>,
	/// Rounds this worker will not apply to (the job is not one it can run, or applying
	/// failed). Everything else is decided from the chain's state at the best block, so a duty
	/// whose transaction was lost in a reorganization shows up again and is done again.
	declined: HashSet<(u64, u32)>,
	/// Rounds whose application while the previous round trained failed: not asked again
	/// before the round opens, if it does.
	failed_early: HashSet<(u64, u32)>,
	/// The next rounds' runs training in the background while the current rounds are
	/// verified, by job and round ([`early`]).
	early_training: BTreeMap<(u64, u32), early::EarlyTraining>,
	/// Rounds whose early run could not be started or failed: trained in sequence.
	early_failed: HashSet<(u64, u32)>,
	/// The block of the last top-up that failed (the account cannot afford it): not tried
	/// again for [`TOP_UP_RETRY_BLOCKS`], so that a failing `bond_extra` does not cost a fee
	/// every block.
	top_up_failed_at: Option<u32>,
}

/// Blocks between attempts to top the stake up after one failed.
const TOP_UP_RETRY_BLOCKS: u32 = 100;

/// Chain time before the commit deadline at which a validator that still cannot get a
/// worker's evidence (or finish its replay) gives up and commits `Unavailable`, long enough for
/// that commitment to be signed, gossiped and included. Until then a failed fetch is retried at
/// every pass: a network failure is not proof of fraud, and one validator's `Unavailable`
/// slashes nobody (the chain needs several, and a majority of the stake), whereas a commitment
/// that lands after the deadline is a missed verdict, which does slash.
const UNAVAILABLE_MARGIN_TIME: Duration = Duration::from_secs(12);
/// The fewest blocks of that margin, however long the blocks.
const MIN_UNAVAILABLE_MARGIN: u32 = 2;

/// [`UNAVAILABLE_MARGIN_TIME`] in blocks of `block_time`, at least
/// [`MIN_UNAVAILABLE_MARGIN`]: 2 blocks at 6-second blocks, 6 at 2-second blocks. A margin in
/// blocks alone was too short on a chain with shorter blocks: honest validators' `Unavailable`
/// commitments landed after the deadline and were slashed as missed (measured at 2-second
/// blocks, docs/language-models.md).
pub(crate) fn unavailable_margin(block_time: Duration) -> u32 {
	let millis = block_time.as_millis().max(1);
	let blocks = UNAVAILABLE_MARGIN_TIME.as_millis().div_ceil(millis);
	u32::try_from(blocks).unwrap_or(u32::MAX).max(MIN_UNAVAILABLE_MARGIN)
}

/// How often a validator busy judging an update looks at the chain's height, to give up in time.
const DEADLINE_POLL: Duration = Duration::from_secs(1);

/// An update by its job, round and worker.
type UpdateKey = (u64, u32, AccountId32);

/// Locks a map of waits, whatever a panicking holder left in it (entries are only inserted and
/// removed).
fn lock_waits<T>(waits: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
	waits.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The output of `work`, unless the chain reaches [`unavailable_margin`] blocks before
/// `deadline` first (`None`: too late to finish; the caller stops the work). The height is
/// first looked at after one [`DEADLINE_POLL`], so work that finishes quickly is never given up,
/// however late it started; a node that cannot be reached is asked again at the next poll.
pub(crate) async fn within_deadline<C: ChainApi, F: std::future::Future>(
	chain: &C,
	deadline: u32,
	work: F,
) -> Option<F::Output> {
	let margin = unavailable_margin(chain.block_time());
	let too_late = async {
		loop {
			tokio::time::sleep(DEADLINE_POLL).await;
			match chain.best_number().await {
				Ok(now) if now.saturating_add(margin) >= deadline => return,
				Ok(_) => {},
				Err(e) => tracing::debug!("cannot read the best block: {e:#}"),
			}
		}
	};
	tokio::select! {
		biased;
		output = work => Some(output),
		() = too_late => None,
	}
}

/// Attempts of one download within a pass, [`FETCH_RETRY_DELAY`] apart (doubling): a peer that
/// drops a request for a moment (a restart, a full connection limit, a lost connection) is
/// asked again at once rather than a block later.
pub(crate) const FETCH_ATTEMPTS: u32 = 3;
const FETCH_RETRY_DELAY: Duration = Duration::from_millis(200);

/// Runs `attempt` up to [`FETCH_ATTEMPTS`] times until it succeeds; the last error otherwise.
async fn retrying<T, F>(key: BlobKey, mut attempt: impl FnMut() -> F) -> Result<T>
where
	F: std::future::Future<Output = Result<T>>,
{
	let mut delay = FETCH_RETRY_DELAY;
	let mut tries = 1;
	loop {
		match attempt().await {
			Ok(value) => return Ok(value),
			Err(e) if tries < FETCH_ATTEMPTS => {
				tracing::info!(?key, tries, "fetch failed, asking again: {e:#}");
				tokio::time::sleep(delay).await;
				delay *= 2;
				tries += 1;
			},
			Err(e) => return Err(e),
		}
	}
}

impl StoredVerdict {
	fn verdict(&self) -> Verdict {
		if self.unavailable {
			Verdict::Unavailable
		} else if self.held_out_unavailable {
			Verdict::HeldOutUnavailable
		} else if self.valid {
			Verdict::Valid
		} else {
			Verdict::Invalid
		}
	}
}

impl<C: ChainApi, N: BlobNetwork> Daemon<C, N> {
	pub fn new(chain: C, net: N, config: DaemonConfig) -> Result<Self> {
		for dir in ["updates", "early", "verdicts", "timings"] {
			std::fs::create_dir_all(config.state_dir.join(dir))?;
		}
		let me = chain.account();
		Ok(Daemon {
			chain,
			net,
			config,
			me,
			judging: tokio::sync::Mutex::new(()),
			held_out_waits: Default::default(),
			declined: HashSet::new(),
			failed_early: HashSet::new(),
			early_training: BTreeMap::new(),
			early_failed: HashSet::new(),
			top_up_failed_at: None,
		})
	}

	/// Registers (or updates the registered endpoint), then follows duties at every new best
	/// block until Ctrl-C. Nothing the node does stops it: while the node is unreachable every
	/// pass fails and is retried at the next block (or after [`BLOCK_WAIT`]), and the chain
	/// client reconnects on its own.
	pub async fn run(mut self) -> Result<()> {
		let shutdown = tokio::signal::ctrl_c();
		tokio::pin!(shutdown);
		let mut registered = false;
		let mut recorded = None;
		loop {
			if !registered {
				match self.register().await {
					Ok(()) => registered = true,
					Err(e) => tracing::warn!("cannot register yet: {e:#}"),
				}
			} else if let Err(e) = self.tick().await {
				tracing::warn!("{e:#}");
			}
			// The traffic record is rewritten only when the counters moved.
			let traffic = self.net.traffic().await;
			let counters = (traffic.downloaded, traffic.uploaded);
			if recorded != Some(counters) {
				let summary = serde_json::json!({
					"downloaded_bytes": traffic.downloaded,
					"uploaded_bytes": traffic.uploaded,
				});
				// A measurement, not state: failing to write it must not stop the daemon.
				let path = self.config.state_dir.join("traffic.json");
				match state::write_atomic(&path, summary.to_string().as_bytes()) {
					Ok(()) => recorded = Some(counters),
					Err(e) => tracing::warn!("cannot record the traffic: {e}"),
				}
			}
			tokio::select! {
				_ = &mut shutdown => {
					tracing::info!("stopping (Ctrl-C)");
					return Ok(());
				}
				_ = self.chain.next_block(BLOCK_WAIT) => {}
			}
		}
	}

	async fn register(&self) -> Result<()> {
		let peer_id = self.net.peer_id().to_bytes();
		let multiaddr = self.config.public_addr.as_bytes().to_vec();
		let role = self.registry_role();
		let registered =
			self.chain.registration(&self.me, self.config.role == Role::Worker).await?;
		if let Some(current) = registered {
			if (&current.peer_id, &current.multiaddr) != (&peer_id, &multiaddr) {
				let capability = self.capability();
				let call = ProtocolCall::UpdateEndpoint { role, peer_id, multiaddr, capability };
				self.chain.submit(call).await?;
			}
			tracing::info!(account = %self.me, "already registered");
			return Ok(());
		}
		let stake = self.config.stake;
		let capability = self.capability();
		let call = ProtocolCall::Register { role, stake, peer_id, multiaddr, capability };
		self.chain.submit(call).await?;
		tracing::info!(account = %self.me, stake = %chain::format_agr(stake), role = ?self.config.role, "registered");
		Ok(())
	}

	fn registry_role(&self) -> RegistryRole {
		match self.config.role {
			Role::Worker => RegistryRole::Worker,
			Role::Validator => RegistryRole::Validator,
		}
	}

	/// Keeps the participant eligible for duties by itself: tops the bonded stake back up to
	/// `--stake` after a slash (a missed deadline, a restart), and a validator without a seat
	/// (outbid, or slashed below the minimum) claims one as soon as one is there for its stake.
	async fn keep_eligible(&mut self) -> Result<()> {
		let as_worker = self.config.role == Role::Worker;
		let Some(registered) = self.chain.registration(&self.me, as_worker).await? else {
			return Ok(());
		};
		if !registered.active {
			// Leaving: the chain refuses both, and each refusal would cost a fee.
			return Ok(());
		}
		let now = self.chain.best_number().await?;
		let retry_due = self
			.top_up_failed_at
			.is_none_or(|failed| now >= failed.saturating_add(TOP_UP_RETRY_BLOCKS));
		if registered.stake < self.config.stake && retry_due {
			// `bond_extra` also seats the validator where its new stake can take a seat.
			let amount = self.config.stake - registered.stake;
			let role = self.registry_role();
			match self.chain.submit(ProtocolCall::BondExtra { role, amount }).await {
				Ok(()) => {
					self.top_up_failed_at = None;
					tracing::info!(added = %chain::format_agr(amount), "stake topped up");
					return Ok(());
				},
				// Still seatable with the stake it has: go on to the seat below.
				Err(e) => {
					self.top_up_failed_at = Some(now);
					tracing::warn!(
						"cannot top up the stake (retried in {TOP_UP_RETRY_BLOCKS} blocks): {e:#}"
					);
				},
			}
		}
		if !as_worker {
			let seats = self.chain.seats().await?;
			if !seats.holds(&self.me) && seats.would_seat(registered.stake) {
				self.chain.submit(ProtocolCall::ClaimSeat).await?;
				tracing::info!(stake = %chain::format_agr(registered.stake), "validator seat claimed");
			}
		}
		Ok(())
	}

	fn capability(&self) -> Capability {
		Capability {
			device: if self.config.device.is_cuda() { DeviceKind::Cuda } else { DeviceKind::Cpu },
			memory_mib: self.config.memory_mib,
			throughput: measure_throughput(self.config.device).unwrap_or(1).max(1),
		}
	}

	/// One pass over the duties: every duty does its work and sends its transaction; then all
	/// the transactions are awaited together, so a validator's verdicts on several updates
	/// land in one block rather than one block each.
	pub async fn tick(&mut self) -> Result<()> {
		// Neither failure stops the duties below.
		if let Err(e) = self.keep_eligible().await {
			tracing::warn!("cannot top up the stake or claim a seat: {e:#}");
		}
		if self.config.role == Role::Worker {
			if let Err(e) = self.apply_to_open_rounds().await {
				tracing::warn!("cannot apply to open rounds: {e:#}");
			}
			if let Err(e) = self.train_next_rounds_early().await {
				tracing::warn!("cannot train the next rounds early: {e:#}");
			}
		}
		if self.config.conduct == Conduct::Plant {
			if let Err(e) = self.expose_plants().await {
				tracing::warn!("cannot expose planted updates: {e:#}");
			}
		}
		let mut sent = Vec::new();
		let (commits, others): (Vec<_>, Vec<_>) = self
			.chain
			.duties(&self.me)
			.await?
			.into_iter()
			.partition(|duty| matches!(duty, Duty::Commit { .. }));
		for duty in others {
			let (job, round) = duty_round(&duty);
			let result = match (&duty, self.config.role) {
				(Duty::Train { job, round, quota, .. }, Role::Worker) => {
					self.train(*job, *round, *quota).await
				},
				(Duty::Aggregate { job, round, .. }, Role::Worker) => {
					self.aggregate(*job, *round, true).await
				},
				(Duty::Reveal { job, round, worker, .. }, Role::Validator) => {
					self.reveal(*job, *round, worker).await
				},
				(Duty::VoteAggregate { job, round, .. }, Role::Validator) => {
					self.aggregate(*job, *round, false).await
				},
				(Duty::RevealAggregate { job, round, .. }, _) => {
					self.reveal_aggregate(*job, *round).await
				},
				_ => continue,
			};
			match result {
				Ok(pending) => sent.push((duty, job, round, pending)),
				Err(e) => tracing::warn!(?duty, "duty failed: {e:#}"),
			}
		}
		if self.config.role == Role::Validator {
			for (duty, result) in self.commit_all(commits).await {
				let (job, round) = duty_round(&duty);
				match result {
					Ok(pending) => sent.push((duty, job, round, pending)),
					Err(e) => tracing::warn!(?duty, "duty failed: {e:#}"),
				}
			}
		}
		let waiting = Instant::now();
		let rounds: BTreeSet<(u64, u32)> =
			sent.iter().map(|(_, job, round, _)| (*job, *round)).collect();
		let waits =
			sent.into_iter().map(|(duty, _, _, pending)| async move { (duty, pending.await) });
		for (duty, result) in futures::future::join_all(waits).await {
			match result {
				Ok(_) => tracing::info!(?duty, "done"),
				Err(e) => tracing::warn!(?duty, "duty failed: {e:#}"),
			}
		}
		// The transactions were awaited together: their rounds each waited this long once.
		let seconds = waiting.elapsed().as_secs_f64();
		for (job, round) in rounds {
			self.add_timings(job, round, |t| t.chain_seconds += seconds);
		}
		self.claim().await
	}

	/// Applies to every round taking applications of a job this node can train: a round while
	/// it is open, and the next round while the current one trains (its workers are drawn when
	/// the training closes, and it starts training as soon as the current round ends).
	async fn apply_to_open_rounds(&mut self) -> Result<()> {
		for job in self.chain.active_jobs().await? {
			let Some(status) = self.chain.round_status(job).await? else { continue };
			let applying_to = match status.phase {
				JobStatusView::Open => status.round,
				JobStatusView::Training => status.round.saturating_add(1),
				_ => continue,
			};
			let round = (job, applying_to);
			let early = status.phase == JobStatusView::Training;
			if status.applicants.contains(&self.me)
				|| self.declined.contains(&round)
				|| (early && self.failed_early.contains(&round))
			{
				continue;
			}
			let Some(details) = self.chain.job(job).await? else { continue };
			if applying_to > details.spec.rounds {
				continue;
			}
			let runnable = match supported(&details) {
				Ok((arch, hyperparameters)) => {
					self.check_runnable(&details, &arch, &hyperparameters).await
				},
				Err(e) => Err(e),
			};
			if let Err(e) = runnable {
				tracing::info!(job, "not applying: {e:#}");
				self.declined.insert(round);
				continue;
			}
			match self.chain.submit(ProtocolCall::ApplyForRound { job }).await {
				Ok(()) => tracing::info!(job, round = applying_to, "applied"),
				Err(e) => {
					tracing::warn!(job, "apply failed: {e:#}");
					// Not asked again for this round, except that an application while the
					// previous round trained may have met that training's close: the round,
					// if it then opens for applications, is asked once more.
					if early {
						self.failed_early.insert(round);
					} else {
						self.declined.insert(round);
					}
				},
			}
		}
		Ok(())
	}

	/// Whether this worker takes the job: its own data fits a job on private data (a worker
	/// that applied and then could not train would pay `no_show_slash` every round), and a
	/// language-model job's pinned tokenizer is served and fits the model (training does not
	/// need it, but a model nobody can decode is not worth the work, and every worker that
	/// takes the job then serves its tokenizer to the model's users).
	async fn check_runnable(
		&self,
		details: &JobInfo,
		arch: &Architecture,
		hyperparameters: &Hyperparameters,
	) -> Result<()> {
		if details.spec.dataset == chain::Dataset::Private {
			let Some((own, _)) = &self.config.private_data else {
				bail!("the job trains on private data, and this worker has none")
			};
			own.check_compatible(arch).context("this worker's private data")?;
		}
		if let Some(hash) = hyperparameters.tokenizer {
			self.fetch_tokenizer(arch, hash).await?;
		}
		Ok(())
	}

	/// Fetches a job's pinned tokenizer into the store (from where this node serves it to
	/// anyone who downloads the job's model) and checks that it is a tokenizer and that every
	/// token it produces is one the model reads. Whatever the check says, nothing is removed
	/// from the store: the hash is the submitter's choice and may name a blob this node serves
	/// for another purpose. At most [`TOKENIZER_FETCH_TIMEOUT`]: it runs before the duties.
	async fn fetch_tokenizer(&self, arch: &Architecture, hash: Digest) -> Result<()> {
		let (vocab, _) = arch
			.language_shape()
			.ok_or_else(|| anyhow!("the job pins a tokenizer for a model that reads no tokens"))?;
		// In a new order each round: within the time limit only the first few peers are asked,
		// and unreachable endpoints listed before the holders must not decline every round.
		let mut peers = self.peers(None).await?;
		rand::seq::SliceRandom::shuffle(peers.as_mut_slice(), &mut rand::thread_rng());
		let fetch = self.fetch(BlobKey::Blob(hash), MAX_TOKENIZER_BYTES, &peers, |_| Ok(()));
		let json = tokio::time::timeout(TOKENIZER_FETCH_TIMEOUT, fetch)
			.await
			.map_err(|_| anyhow!("not fetched in {TOKENIZER_FETCH_TIMEOUT:?}"))
			.and_then(|fetched| fetched)
			.with_context(|| format!("the job's tokenizer {hash}"))?;
		TextTokenizer::from_json(json)?.check_fits(vocab)?;
		Ok(())
	}

	/// Peers to ask for something `first` holds: `first`, then every registered participant.
	async fn peers(&self, first: Option<&AccountId32>) -> Result<Vec<Peer>> {
		let mut endpoints = self.chain.all_endpoints().await?;
		if let Some(first) = first {
			endpoints.sort_by_key(|e| e.account != *first);
		}
		Ok(endpoints
			.into_iter()
			.filter_map(|e| Peer::from_chain(&e.peer_id, &e.multiaddr).ok())
			.collect())
	}

	/// [`BlobNetwork::fetch`], retried within the pass.
	async fn fetch(
		&self,
		key: BlobKey,
		limit: u64,
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>> {
		retrying(key, || self.net.fetch(key, limit, peers, &verify)).await
	}

	/// [`BlobNetwork::fetch_to_store`], retried within the pass.
	async fn fetch_to_store(&self, key: BlobKey, limit: u64, peers: &[Peer]) -> Result<PathBuf> {
		retrying(key, || self.net.fetch_to_store(key, limit, peers)).await
	}

	/// The round's shared context: architecture, hyperparameters and the global model.
	async fn context(&self, job: u64, round: u32) -> Result<(JobInfo, RoundContext)> {
		let details = self.chain.job(job).await?.ok_or_else(|| anyhow!("job {job} not found"))?;
		let completed_rounds = u32::try_from(details.models.len()).unwrap_or(u32::MAX);
		let latest = to_digest(&details.latest_model);
		let ctx = self.context_at(job, &details, round, latest, completed_rounds).await?;
		Ok((details, ctx))
	}

	/// The context of `round` of `job` (`details`), started from the record `global_hash` with
	/// `completed_rounds` rounds completed before it.
	async fn context_at(
		&self,
		job: u64,
		details: &JobInfo,
		round: u32,
		global_hash: Digest,
		completed_rounds: u32,
	) -> Result<RoundContext> {
		let (arch, hyperparameters) = supported(details)?;
		let record = if global_hash == to_digest(&details.spec.initial_weights)
			&& !self.net.store().contains(&BlobKey::Blob(global_hash))
		{
			// Rebuild the initial weights from their seed rather than download them.
			let params = arch.initial_params(hyperparameters.init_seed)?;
			let blob = model_blob(&arch, &params)?;
			if Digest::of(&[&blob]) != global_hash {
				bail!(
					"job {job}'s initial weights are not the architecture's seed-{} weights",
					hyperparameters.init_seed
				);
			}
			self.net.store().put_blob(&blob)?;
			RoundModel { params, outer_momentum: None, inner_optimizer: None, aggregated: vec![] }
		} else {
			let peers = self.peers(None).await?;
			let limits = BlobLimits::new(&arch, &hyperparameters)?;
			let blob = self
				.fetch(BlobKey::Blob(global_hash), limits.model, &peers, |bytes| {
					decode_round_model(&arch, bytes).map(|_| ()).map_err(Into::into)
				})
				.await
				.context("fetching the global model")?;
			decode_round_model(&arch, &blob)?
		};
		let ctx = RoundContext {
			arch,
			hyperparameters,
			job,
			round,
			local_steps: u64::from(details.spec.local_steps),
			checkpoint_interval: u64::from(details.spec.checkpoint_interval),
			global: record.params,
			outer_momentum: record.outer_momentum,
			inner_optimizer: record.inner_optimizer,
			completed_rounds,
			aggregated: record.aggregated,
		};
		Ok(ctx)
	}

	/// `worker`'s eager start in `ctx`'s round ([`RoundContext::eager_start`] of the round
	/// before), if it has one: the record the round starts from is the previous round's and
	/// names the worker's update to it as aggregated (after a voided round there is none).
	/// Rebuilt from the record before it and that update, both asked of everyone (the previous
	/// round's participants hold them), not of the worker first: a worker serving its old
	/// update slowly must not hold this validator's turn to judge.
	async fn eager_start_of(
		&self,
		details: &JobInfo,
		ctx: &RoundContext,
		worker: &AccountId32,
	) -> Result<Option<TrainingState>> {
		let previous_round = ctx.round.saturating_sub(1);
		if details.models.last().map(|(round, _)| *round) != Some(previous_round) {
			return Ok(None);
		}
		let Some(own) = ctx.aggregated.iter().find(|named| named.worker == worker.0) else {
			return Ok(None);
		};
		let Some((record, completed_rounds)) = previous_record(details) else { return Ok(None) };
		let previous =
			self.context_at(ctx.job, details, previous_round, record, completed_rounds).await?;
		let peers = self.peers(None).await?;
		let limit = ctx.blob_limits()?.update;
		let bytes = self
			.fetch(BlobKey::Blob(own.update), limit, &peers, |_| Ok(()))
			.await
			.context("fetching the worker's update to the previous round")?;
		let update = decode_update(&ctx.arch, &bytes, ctx.hyperparameters.compression)?;
		Ok(Some(previous.eager_start(&update)?))
	}

	/// The data `worker` trains on and its root: its shards of the job's dataset (fetched, or
	/// read from the store), or this worker's own for a job on private data.
	async fn worker_data(
		&self,
		job: u64,
		details: &JobInfo,
		worker: &AccountId32,
	) -> Result<(Dataset, Digest)> {
		let workers = self.round_workers(job).await?;
		self.worker_data_among(details, &workers, worker).await
	}

	/// The data `worker` trains on among `workers` (a round's selected workers, in order): its
	/// shards of the job's dataset, or this worker's own for a job on private data.
	async fn worker_data_among(
		&self,
		details: &JobInfo,
		workers: &[AccountId32],
		worker: &AccountId32,
	) -> Result<(Dataset, Digest)> {
		let Some(mine) = shards_among(details, workers, worker)? else {
			return match &self.config.private_data {
				Some(own) if *worker == self.me => Ok(own.clone()),
				_ => bail!("job trains on private data, which only its worker has"),
			};
		};
		let peers = self.peers(None).await?;
		let mut blobs = Vec::with_capacity(mine.len());
		for hash in mine {
			let bytes = self
				.fetch(BlobKey::Blob(hash), MAX_SHARD_BYTES, &peers, |_| Ok(()))
				.await
				.with_context(|| format!("fetching shard {hash}"))?;
			blobs.push((hash, bytes));
		}
		Ok(assemble_dataset(&blobs)?)
	}

	/// The shards of the job's dataset that `worker` trains on in this round (`None` for a job
	/// on private data).
	async fn worker_shard_hashes(
		&self,
		job: u64,
		details: &JobInfo,
		worker: &AccountId32,
	) -> Result<Option<Vec<Digest>>> {
		shards_among(details, &self.round_workers(job).await?, worker)
	}

	/// The workers selected in `job`'s current round, in the order that deals the shards.
	async fn round_workers(&self, job: u64) -> Result<Vec<AccountId32>> {
		let status =
			self.chain.round_status(job).await?.ok_or_else(|| anyhow!("no round status"))?;
		Ok(status.workers.into_iter().map(|(account, _, _)| account).collect())
	}

	/// The held-out set a job's updates are scored on: the shards the job commits to (fetched
	/// once, then read from the store), or this validator's own for a job that commits to none.
	async fn holdout(&self, hyperparameters: &Hyperparameters) -> Result<Dataset> {
		if hyperparameters.holdout.is_empty() {
			return self.config.holdout.clone().ok_or_else(|| {
				anyhow!(
					"the job commits to no held-out set and this validator has none (--holdout)"
				)
			});
		}
		let peers = self.peers(None).await?;
		let mut blobs = Vec::with_capacity(hyperparameters.holdout.len());
		for &hash in &hyperparameters.holdout {
			let bytes = self
				.fetch(BlobKey::Blob(hash), MAX_SHARD_BYTES, &peers, |_| Ok(()))
				.await
				.with_context(|| format!("fetching held-out shard {hash}"))?;
			blobs.push((hash, bytes));
		}
		Ok(assemble_dataset(&blobs)?.0)
	}

	fn update_record_path(&self, job: u64, round: u32) -> PathBuf {
		self.config.state_dir.join(format!("updates/job-{job}-round-{round}.json"))
	}

	/// A planted update: a random delta and the plant root of a fresh secret, of the shape the
	/// job expects, so that only a validator that fetches the evidence can tell.
	async fn plant(&mut self, job: u64, round: u32) -> Result<SubmittedUpdate> {
		let (_, ctx) = self.context(job, round).await?;
		let secret: [u8; 32] = rand::random();
		let segments = ctx.local_steps.div_ceil(ctx.checkpoint_interval.max(1));
		let record = SubmittedUpdate {
			delta: Digest(rand::random()),
			samples: ctx.samples_per_worker(),
			loss_micros: 250_000,
			checkpoint_root: plant_root(job, &self.me, &secret),
			checkpoints: u32::try_from(segments)?,
			plant_secret: Some(secret),
		};
		tracing::info!(job, round, "planting an update to test the validators");
		Ok(record)
	}

	/// Exposes each planted update whose verification is in its reveal stage: the verdicts
	/// are committed by then, and exposing is what makes approving it slashable.
	async fn expose_plants(&mut self) -> Result<()> {
		for entry in std::fs::read_dir(self.config.state_dir.join("updates"))? {
			let path = entry?.path();
			let Some((job, round)) = parse_record_name(&path) else { continue };
			let record = match state::read_json::<SubmittedUpdate>(&path) {
				Ok(Some(record)) => record,
				Ok(None) => continue,
				Err(e) => {
					tracing::warn!("{e}");
					continue;
				},
			};
			let Some(secret) = record.plant_secret else { continue };
			if self.chain.verification_stage(job).await? != Some((round, VerificationStage::Reveal))
				|| self.chain.plant_exposed(job, &self.me).await?
			{
				continue;
			}
			self.chain.submit(ProtocolCall::ExposePlant { job, secret }).await?;
			tracing::info!(job, round, "planted update exposed");
		}
		Ok(())
	}

	async fn train(&mut self, job: u64, round: u32, quota: u32) -> Result<Pending> {
		let record_path = self.update_record_path(job, round);
		let stored = state::read_json::<SubmittedUpdate>(&record_path).unwrap_or_else(|e| {
			tracing::warn!(job, round, "training again: {e}");
			None
		});
		let record: SubmittedUpdate = if let Some(record) = stored {
			tracing::info!(job, round, "resuming: update already trained");
			record
		} else if self.config.conduct == Conduct::Plant {
			let record = self.plant(job, round).await?;
			state::write_json(&record_path, &record)?;
			record
		} else if let Some(record) = self.early_update(job, round).await? {
			state::write_json(&record_path, &record)?;
			record
		} else {
			let started = Instant::now();
			let (details, ctx) = self.context(job, round).await?;
			let (data, data_root) = self.worker_data(job, &details, &self.me).await?;
			let fetch_seconds = started.elapsed().as_secs_f64();
			let conduct = self.config.conduct;
			let device = self.config.device;
			let me = self.me.0;
			tracing::info!(job, round, samples = data.len(), quota, ?conduct, "training");
			let training = Instant::now();
			let (ctx, run, loss) = tokio::task::spawn_blocking(move || {
				let run = match conduct {
					#[cfg(feature = "cheats")]
					Conduct::Cheat(cheat) => ctx.train_cheating(me, &data, data_root, cheat, device),
					_ => ctx.train(me, &data, data_root, device),
				};
				let loss = run
					.as_ref()
					.ok()
					.and_then(|run| last_loss(&ctx, &run.checkpoints, &data, device).ok());
				(ctx, run, loss.unwrap_or(0.0))
			})
			.await?;
			let run = run?;
			let training_seconds = training.elapsed().as_secs_f64();
			let record = store_run(self.net.store(), &ctx, &run, loss)?;
			let delta_hash = record.delta;
			#[cfg(feature = "cheats")]
			let record = match self.config.conduct {
				Conduct::Submission(cheat) => self.deviate(cheat, job, round, record).await?,
				_ => record,
			};
			state::write_json(&record_path, &record)?;
			self.add_timings(job, round, |t| {
				t.fetch_seconds += fetch_seconds;
				t.training_seconds += training_seconds;
			});
			tracing::info!(job, round, update = %delta_hash, training_seconds, "trained");
			record
		};
		let update = Update {
			delta: to_h256(&record.delta),
			samples: record.samples,
			loss_micros: record.loss_micros,
			checkpoint_root: to_h256(&record.checkpoint_root),
			checkpoints: record.checkpoints,
		};
		self.chain.send(ProtocolCall::SubmitUpdate { job, round, update }).await
	}

	/// Adds to the round's timing record. A measurement, not state: a failure is logged and
	/// never fails the duty that was measured.
	fn add_timings(&self, job: u64, round: u32, add: impl FnOnce(&mut RoundTimings)) {
		let path = self.config.state_dir.join(format!("timings/job-{job}-round-{round}.json"));
		let mut timings: RoundTimings = match state::read_json(&path) {
			Ok(timings) => timings.unwrap_or_default(),
			Err(e) => {
				tracing::warn!("{e}");
				RoundTimings::default()
			},
		};
		add(&mut timings);
		if let Err(e) = state::write_json(&path, &timings) {
			tracing::warn!(job, round, "cannot record timings: {e}");
		}
	}

	/// Gathers the evidence for `worker`'s update: its commitment and the checkpoints the
	/// challenged segments need, from the worker, plus its data from whoever holds it.
	async fn gather_evidence(
		&self,
		job: u64,
		details: &JobInfo,
		ctx: &RoundContext,
		worker: &AccountId32,
		update: &Update,
		segments: &[u32],
	) -> Result<UpdateEvidence> {
		let peers = self.peers(Some(worker)).await?;
		let root = to_digest(&update.checkpoint_root);
		let limits = ctx.blob_limits()?;
		let holder = &peers[..1.min(peers.len())];
		let commitment = self.fetch_commitment(update, holder).await?;
		let mut checkpoints = BTreeMap::new();
		// A run bound to someone else is judged invalid before its checkpoints or data are
		// looked at, and they are not fetched (see `bound_to`).
		let bound = bound_to(&commitment, ctx.job, ctx.round, worker);
		let needed = if bound { needed_checkpoints(details, update, segments) } else { Vec::new() };
		for index in needed {
			let state = self.fetch_checkpoint(ctx, root, index, limits.checkpoint, holder, None);
			checkpoints.insert(index, state.await?);
		}
		let delta_bytes = self
			.fetch(BlobKey::Blob(to_digest(&update.delta)), limits.update, &peers, |_| Ok(()))
			.await
			.context("fetching the update")?;
		let delta = decode_update(&ctx.arch, &delta_bytes, ctx.hyperparameters.compression)?;
		let data = match details.spec.dataset {
			chain::Dataset::Shards(_) if bound => {
				Some(self.worker_data(job, details, worker).await?)
			},
			_ => None,
		};
		// Rebuilt only for a run that does not start from the round's model.
		let first = commitment.leaves.first().map(|leaf| leaf.state_hash);
		let eager_start = if ctx.hyperparameters.overlap == Overlap::Eager
			&& bound && first != Some(ctx.start_state()?.content_hash())
		{
			self.eager_start_of(details, ctx, worker).await?
		} else {
			None
		};
		Ok(UpdateEvidence { commitment, checkpoints, delta, data, eager_start })
	}

	/// Downloads into the store what judging `worker`'s update needs from the network (the
	/// round's model, the worker's commitment, the checkpoints the challenged segments need,
	/// the update and the worker's shards), holding none of the large files in memory: the
	/// updates a validator judges are prefetched together, then loaded and judged one at a
	/// time.
	async fn prefetch_evidence(
		&self,
		job: u64,
		round: u32,
		worker: &AccountId32,
		segments: &[u32],
	) -> Result<()> {
		let details = self.chain.job(job).await?.ok_or_else(|| anyhow!("job {job} not found"))?;
		let (arch, hyperparameters) = supported(&details)?;
		let limits = BlobLimits::new(&arch, &hyperparameters)?;
		let update = self
			.chain
			.update(job, worker)
			.await?
			.ok_or_else(|| anyhow!("no update from {worker}"))?;
		let global = to_digest(&details.latest_model);
		if global != to_digest(&details.spec.initial_weights) {
			// From everyone, not the judged worker first: every update of the round needs the
			// model, and the worker that would serve it slowly is not to be asked first.
			let everyone = self.peers(None).await?;
			self.download_once(BlobKey::Blob(global), limits.model, &everyone)
				.await
				.context("fetching the global model")?;
		}
		if hyperparameters.overlap == Overlap::Eager {
			// An eager start is rebuilt from the record before the round's (see
			// `eager_start_of`), which the judging turn then reads from the store.
			if let Some((previous, _)) = previous_record(&details) {
				if previous != to_digest(&details.spec.initial_weights) {
					let everyone = self.peers(None).await?;
					self.download_once(BlobKey::Blob(previous), limits.model, &everyone)
						.await
						.context("fetching the record before the round's")?;
				}
			}
		}
		let peers = self.peers(Some(worker)).await?;
		let holder = &peers[..1.min(peers.len())];
		let commitment = self.fetch_commitment(&update, holder).await?;
		if !bound_to(&commitment, job, round, worker) {
			// Invalid on its face (see `bound_to`): nothing more to fetch.
			return Ok(());
		}
		let root = to_digest(&update.checkpoint_root);
		for index in needed_checkpoints(&details, &update, segments) {
			self.download_once(BlobKey::Checkpoint { root, index }, limits.checkpoint, holder)
				.await
				.with_context(|| format!("fetching checkpoint {index}"))?;
		}
		self.download_once(BlobKey::Blob(to_digest(&update.delta)), limits.update, &peers)
			.await
			.context("fetching the update")?;
		if let Some(shards) = self.worker_shard_hashes(job, &details, worker).await? {
			let everyone = self.peers(None).await?;
			for hash in shards {
				self.download_once(BlobKey::Blob(hash), MAX_SHARD_BYTES, &everyone)
					.await
					.with_context(|| format!("fetching shard {hash}"))?;
			}
		}
		Ok(())
	}

	/// [`Self::fetch_to_store`] for what is not stored yet. What is stored is checked once,
	/// when the judgement loads it (a plain blob against its hash, a corrupt one downloaded
	/// again then), not at every prefetch as well: the round's model is prefetched for every
	/// update of the round at every pass.
	async fn download_once(&self, key: BlobKey, limit: u64, peers: &[Peer]) -> Result<()> {
		if !self.net.store().contains(&key) {
			self.fetch_to_store(key, limit, peers).await?;
		}
		Ok(())
	}

	/// The held-out set `job`'s updates are scored on (see [`Self::holdout`]).
	async fn job_holdout(&self, job: u64) -> Result<Dataset> {
		let details = self.chain.job(job).await?.ok_or_else(|| anyhow!("job {job} not found"))?;
		let (_, hyperparameters) = supported(&details)?;
		self.holdout(&hyperparameters).await
	}

	/// The training commitment under `update`'s root, from `holders`.
	async fn fetch_commitment(
		&self,
		update: &Update,
		holders: &[Peer],
	) -> Result<TrainingCommitment> {
		let root = to_digest(&update.checkpoint_root);
		let bytes = self
			.fetch(
				BlobKey::Commitment(root),
				max_commitment_bytes(update.checkpoints),
				holders,
				|bytes| {
					let commitment: TrainingCommitment = serde_json::from_slice(bytes)?;
					if commitment.root != root {
						bail!("commitment is for another root");
					}
					// Only the commitment that hashes to the key's root is stored under it:
					// another (served by a worker that copied this root) would be read as the
					// evidence of every update submitted with the root.
					commitment.check_roots()?;
					Ok(())
				},
			)
			.await
			.context("fetching the training commitment")?;
		Ok(serde_json::from_slice(&bytes)?)
	}

	/// Checkpoint `index` of the run under `root` (at most `limit` bytes: the round's
	/// [`BlobLimits`], computed once by the caller since it builds the model), loaded and checked
	/// against the job's architecture and optimizer, and against `expected` (its state hash) if
	/// given. One that fails is dropped from the store, so that it is asked for again.
	async fn fetch_checkpoint(
		&self,
		ctx: &RoundContext,
		root: Digest,
		index: u32,
		limit: u64,
		holders: &[Peer],
		expected: Option<Digest>,
	) -> Result<TrainingState> {
		let key = BlobKey::Checkpoint { root, index };
		let path = self
			.fetch_to_store(key, limit, holders)
			.await
			.with_context(|| format!("fetching checkpoint {index}"))?;
		let loaded = TrainingState::load(&path, &ctx.arch, &ctx.train_config().optimizer)
			.map_err(|e| anyhow!("checkpoint {index} is malformed: {e}"))
			.and_then(|state| match expected {
				Some(hash) if state.content_hash() != hash => {
					Err(anyhow!("checkpoint {index} is not the committed one"))
				},
				_ => Ok(state),
			});
		if loaded.is_err() {
			let _ = std::fs::remove_file(&path);
		}
		loaded
	}

	/// The last state of `worker`'s accepted run: its last checkpoint, checked against the
	/// commitment whose root the worker submitted on chain. What a job with
	/// [`agora_protocol::InnerState::Averaged`] carries into the next round.
	async fn final_state(
		&self,
		ctx: &RoundContext,
		limits: &BlobLimits,
		worker: &AccountId32,
		update: &Update,
	) -> Result<TrainingState> {
		// From the worker and everyone else: the validators that judged the run fetched both
		// files and serve them, so a worker that withholds or alters them once accepted cannot
		// stall the round (and get an honest aggregator slashed for it).
		let peers = self.peers(Some(worker)).await?;
		let commitment = self.fetch_commitment(update, &peers).await?;
		commitment.check_roots()?;
		let last = commitment.leaves.last().map(|leaf| leaf.state_hash);
		let root = to_digest(&update.checkpoint_root);
		let index = update.checkpoints;
		let limit = limits.checkpoint;
		match self.fetch_checkpoint(ctx, root, index, limit, &peers, last).await {
			Ok(state) => Ok(state),
			// Someone (the worker, say) served another file: ask all but the worker.
			Err(e) if peers.len() > 1 => {
				tracing::warn!(%worker, "last checkpoint refused ({e:#}); asking other holders");
				self.fetch_checkpoint(ctx, root, index, limit, &peers[1..], last).await
			},
			Err(e) => Err(e),
		}
	}

	/// Does the commit duties together: every update's evidence is fetched at once, each
	/// under its commit deadline, and the updates are judged one at a time as their evidence
	/// arrives. Done one after another, a worker that serves its evidence as slowly as it likes
	/// would hold up the verdicts on every update assigned after its own, and get the honest
	/// workers behind it reported `Unavailable` at the deadline.
	async fn commit_all(&self, duties: Vec<PendingDuty>) -> Vec<(PendingDuty, Result<Pending>)> {
		let commits = duties.into_iter().filter_map(|duty| {
			let Duty::Commit { job, round, worker, segments, deadline } = duty.clone() else {
				return None;
			};
			Some(async move {
				let result = self.commit(job, round, &worker, &segments, deadline).await;
				(duty, result)
			})
		});
		futures::future::join_all(commits).await
	}

	async fn commit(
		&self,
		job: u64,
		round: u32,
		worker: &AccountId32,
		segments: &[u32],
		deadline: u32,
	) -> Result<Pending> {
		let path = self.verdict_path(job, round, worker);
		let existing = state::read_json::<StoredVerdict>(&path).unwrap_or_else(|e| {
			tracing::warn!(job, round, %worker, "judging again: {e}");
			None
		});
		let stored = if let Some(stored) = existing {
			stored
		} else if self.is_lazy() {
			let stored = StoredVerdict {
				valid: true,
				unavailable: false,
				held_out_unavailable: false,
				score_parts: 900_000_000,
				salt: rand::random(),
				reason: Some("lazy: approved without checking".into()),
			};
			state::write_json(&path, &stored)?;
			stored
		} else {
			// Downloaded beside the other updates this validator judges (see `commit_all`) and
			// under the commit deadline: a peer that answers just inside each request's timeout
			// delays only the verdict on its own update, and cannot hold this validator past
			// the deadline (a missed commitment slashes the validator; evidence that comes too
			// late is reported `Unavailable` instead).
			// The held-out data comes from the job's submitter, not the worker, and is fetched
			// beside the evidence, outside the turn below: a submitter that stalls it must not
			// hold up the judgement of other jobs' updates. Nor of its own job's: once the
			// evidence is here, the held-out data gets what is left of this pass's budget, and
			// the update is then judged without it (a neutral score) rather than left until
			// the margin, when no time would be left to replay it and its honest worker would
			// be reported `Unavailable` for the submitter's doing.
			let prefetching = Instant::now();
			let evidence = within_deadline(
				&self.chain,
				deadline,
				self.prefetch_evidence(job, round, worker, segments),
			);
			let holdout = within_deadline(&self.chain, deadline, self.job_holdout(job));
			let budget = tokio::time::sleep(self.config.fetch_budget_per_pass);
			tokio::pin!(evidence, holdout, budget);
			let mut holdout_arrived = None;
			let prefetched = loop {
				tokio::select! {
					fetched = &mut holdout, if holdout_arrived.is_none() => {
						holdout_arrived = Some(fetched);
					},
					prefetched = &mut evidence => break Some(prefetched),
					() = &mut budget => break None,
				}
			};
			let Some(prefetched) = prefetched else {
				// Nothing is stored: the duty comes back at the next pass, which resumes the
				// downloads (and gives up on them at the margin).
				self.add_timings(job, round, |t| {
					t.fetch_seconds += prefetching.elapsed().as_secs_f64()
				});
				bail!(
					"evidence still arriving after this pass's {:?}; resumed at the next pass",
					self.config.fetch_budget_per_pass
				);
			};
			let prefetched = prefetched
				.unwrap_or_else(|| Err(anyhow!("the evidence did not arrive before the deadline")));
			if let Err(e) = prefetched {
				let reason = format!("evidence unavailable: {e:#}");
				// Retry at the next pass while there is time: nothing is stored, so the duty
				// comes back.
				self.retry_while_time_is_left(deadline, e, "evidence not available yet").await?;
				let stored = StoredVerdict::unavailable(reason);
				state::write_json(&path, &stored)?;
				return self.send_commitment(job, round, worker, &stored).await;
			}
			let holdout = match holdout_arrived {
				Some(fetched) => fetched,
				None => tokio::select! {
					fetched = &mut holdout => fetched,
					() = &mut budget => None,
				},
			};
			let waited_key = (job, round, *worker);
			let holdout = match holdout {
				Some(Ok(holdout)) => Some(holdout),
				missing => {
					let why = match missing {
						Some(Err(e)) => format!("{e:#}"),
						_ => "still arriving".to_string(),
					};
					// The submitter's doing, never the worker's: waited for (the duty comes
					// back at the next pass) until half of the time left for judging when the
					// evidence came in has passed, so that a submitter stalling or refusing it
					// cannot leave the replay without time; then judged without it. A run on
					// private data is judged by the held-out data alone (nothing of it can be
					// replayed), and its checks take moments: the data is waited for until a
					// margin's worth of blocks before the margin, then reported missing
					// (`HeldOutUnavailable`, which slashes neither the worker nor this
					// validator, where `Unavailable` would slash the worker).
					let now = self.chain.best_number().await?;
					let margin = unavailable_margin(self.chain.block_time());
					let since = {
						let mut waits = lock_waits(&self.held_out_waits);
						waits.retain(|_, (_, its_deadline)| *its_deadline >= now);
						waits.entry(waited_key).or_insert((now, deadline)).0
					};
					let until = if self.trains_on_private_data(job).await? {
						deadline.saturating_sub(margin.saturating_mul(2))
					} else {
						since.saturating_add(
							deadline.saturating_sub(margin).saturating_sub(since) / 2,
						)
					};
					if now < until {
						bail!("held-out data not here yet ({why}); waited for until block {until}");
					}
					tracing::warn!(job, round, "judging without the held-out data: {why}");
					None
				},
			};
			lock_waits(&self.held_out_waits).remove(&waited_key);
			let prefetch_seconds = prefetching.elapsed().as_secs_f64();
			// Loaded and judged one update at a time: replays share the device and the CPU's
			// threads, and the checkpoints of a large model must not all be in memory at once.
			let Some(_turn) = within_deadline(&self.chain, deadline, self.judging.lock()).await
			else {
				let reason = "no time was left to judge the update before the deadline";
				let stored = StoredVerdict::unavailable(reason.into());
				state::write_json(&path, &stored)?;
				return self.send_commitment(job, round, worker, &stored).await;
			};
			// What was prefetched is read from the store; a fetch that still has to go to the
			// network (a file dropped as malformed) is bounded by the deadline too.
			let context = within_deadline(&self.chain, deadline, self.context(job, round))
				.await
				.unwrap_or_else(|| Err(anyhow!("the round's model did not arrive in time")));
			let (details, ctx) = match context {
				Ok(context) => context,
				Err(e) => {
					let reason = format!("the job cannot be verified: {e:#}");
					// A job this validator cannot verify at all (an architecture it does not
					// know, private data, a round model nobody serves): retry while there is
					// time, then report `Unavailable`, which never slashes a validator. Staying
					// silent would (`no_reveal_slash`) although nobody could have verified.
					self.retry_while_time_is_left(deadline, e, "cannot verify the job yet").await?;
					let stored = StoredVerdict::unavailable(reason);
					state::write_json(&path, &stored)?;
					return self.send_commitment(job, round, worker, &stored).await;
				},
			};
			let update = self
				.chain
				.update(job, worker)
				.await?
				.ok_or_else(|| anyhow!("no update from {worker}"))?;
			let fetching = Instant::now();
			let gathering = self.gather_evidence(job, &details, &ctx, worker, &update, segments);
			let evidence =
				within_deadline(&self.chain, deadline, gathering).await.unwrap_or_else(|| {
					Err(anyhow!("the evidence did not arrive before the commit deadline"))
				});
			let fetch_seconds = fetching.elapsed().as_secs_f64();
			let verifying = Instant::now();
			let (judgement, unavailable, held_out_unavailable) = match evidence {
				Ok(evidence) => {
					let device = self.config.device;
					let claim = Claim {
						worker: worker.0,
						update: to_digest(&update.delta),
						samples: update.samples,
						checkpoint_root: to_digest(&update.checkpoint_root),
						checkpoints: update.checkpoints,
					};
					// Private data is the worker's alone: nothing to replay it on (the chain
					// accepts such a job only for evaluation on held-out data).
					let replayable = evidence.data.is_some() && !self.skips_replay();
					let segments = if replayable { segments.to_vec() } else { Vec::new() };
					let stop = Arc::new(AtomicBool::new(false));
					let _stop_when_not_awaited = StopOnDrop(stop.clone());
					let judging = tokio::task::spawn_blocking({
						let stop = stop.clone();
						move || {
							let holdout = holdout.as_ref();
							judge_update(&ctx, &claim, &segments, &evidence, holdout, device, &stop)
						}
					});
					let judged =
						within_deadline(&self.chain, deadline, judging).await.map(|judged| {
							judged
								.map_err(anyhow::Error::from)
								.and_then(|judged| judged.map_err(anyhow::Error::from))
						});
					match judged {
						// The replay cannot finish before the commit deadline on this machine
						// (a job heavier than its Commit phase allows for this hardware): report
						// that it could not judge, which never slashes a validator, rather than
						// miss the deadline, which would (`no_reveal_slash`).
						None => {
							tracing::warn!(job, round, %worker, "replay given up: the commit deadline is near");
							let judgement = agora_protocol::Judgement {
								valid: false,
								score: 0.0,
								reason: Some(
									"the replay did not finish before the commit deadline".into(),
								),
							};
							(judgement, true, false)
						},
						Some(Ok(judgement)) => (judgement, false, false),
						// Every check that needs no held-out data passed, and the update is
						// judged by that data alone (a run on private data): the submitter's
						// doing.
						Some(Err(e)) if held_out_missing(&e) => {
							let judgement = agora_protocol::Judgement {
								valid: false,
								score: 0.0,
								reason: Some(format!("{e:#}")),
							};
							(judgement, false, true)
						},
						// The replay itself failed here (out of memory, a libtorch error):
						// this validator's trouble, not proof of fraud. Retry while there is
						// time, then report that it could not judge rather than stay silent.
						Some(Err(e)) => {
							let reason = format!("could not judge the evidence: {e:#}");
							self.retry_while_time_is_left(deadline, e, "judging failed").await?;
							let judgement = agora_protocol::Judgement {
								valid: false,
								score: 0.0,
								reason: Some(reason),
							};
							(judgement, true, false)
						},
					}
				},
				Err(e) => {
					// Retry at the next pass while there is time: nothing is stored, so the
					// duty comes back.
					let reason = format!("evidence unavailable: {e:#}");
					self.retry_while_time_is_left(deadline, e, "evidence not available yet")
						.await?;
					(
						agora_protocol::Judgement {
							valid: false,
							score: 0.0,
							reason: Some(reason),
						},
						true,
						false,
					)
				},
			};
			let verification_seconds = verifying.elapsed().as_secs_f64();
			self.add_timings(job, round, |t| {
				t.fetch_seconds += prefetch_seconds + fetch_seconds;
				t.verification_seconds += verification_seconds;
			});
			let stored = StoredVerdict {
				valid: judgement.valid,
				unavailable,
				held_out_unavailable,
				score_parts: (judgement.score.clamp(0.0, 1.0) * 1e9) as u32,
				salt: rand::random(),
				reason: judgement.reason,
			};
			state::write_json(&path, &stored)?;
			stored
		};
		self.send_commitment(job, round, worker, &stored).await
	}

	/// Whether `job` trains on its workers' private data (and so is judged on held-out data
	/// alone).
	async fn trains_on_private_data(&self, job: u64) -> Result<bool> {
		let details = self.chain.job(job).await?.ok_or_else(|| anyhow!("job {job} not found"))?;
		Ok(details.spec.dataset == chain::Dataset::Private)
	}

	/// `Err(e)`, so that the duty comes back at the next pass, while the commit deadline is more
	/// than [`unavailable_margin`] blocks away; `Ok` once it is time to give up and report.
	async fn retry_while_time_is_left(
		&self,
		deadline: u32,
		e: anyhow::Error,
		what: &'static str,
	) -> Result<()> {
		let now = self.chain.best_number().await?;
		if now.saturating_add(unavailable_margin(self.chain.block_time())) < deadline {
			return Err(e.context(format!("{what}, will retry")));
		}
		tracing::warn!("{what}, giving up: {e:#}");
		Ok(())
	}

	/// Commits the stored verdict on `worker`'s update.
	async fn send_commitment(
		&self,
		job: u64,
		round: u32,
		worker: &AccountId32,
		stored: &StoredVerdict,
	) -> Result<Pending> {
		tracing::info!(job, round, %worker, verdict = ?stored.verdict(), score = stored.score_parts as f64 / 1e9, reason = ?stored.reason, "verdict");
		let commitment = chain::verdict_commitment(
			job,
			worker,
			&stored.verdict(),
			stored.score_parts,
			&stored.salt,
			&self.me,
		);
		self.chain.send(ProtocolCall::CommitVerdict { job, worker: *worker, commitment }).await
	}

	async fn reveal(&mut self, job: u64, round: u32, worker: &AccountId32) -> Result<Pending> {
		let path = self.verdict_path(job, round, worker);
		let stored: StoredVerdict = state::read_json(&path)?
			.with_context(|| format!("no stored verdict to reveal at {}", path.display()))?;
		let verdict = stored.verdict();
		let call = ProtocolCall::RevealVerdict {
			job,
			worker: *worker,
			verdict,
			score: Perbill(stored.score_parts),
			salt: stored.salt,
		};
		tracing::info!(job, round, %worker, "revealing verdict");
		self.chain.send(call).await
	}

	/// Whether this validator approves without checking (only with the `cheats` feature).
	fn is_lazy(&self) -> bool {
		#[cfg(feature = "cheats")]
		if self.config.conduct == Conduct::Lazy {
			return true;
		}
		false
	}

	/// Whether this validator skips the replay (only with the `cheats` feature).
	fn skips_replay(&self) -> bool {
		#[cfg(feature = "cheats")]
		if self.config.conduct == Conduct::SkipReplay {
			return true;
		}
		false
	}

	fn verdict_path(&self, job: u64, round: u32, worker: &AccountId32) -> PathBuf {
		self.config
			.state_dir
			.join(format!("verdicts/job-{job}-round-{round}-{}.json", hex::encode(worker.0)))
	}

	/// Computes the round's aggregate from the accepted updates; posts it (aggregator) or
	/// votes with it (validator).
	async fn aggregate(&mut self, job: u64, round: u32, post: bool) -> Result<Pending> {
		let (_, ctx) = self.context(job, round).await?;
		let (verified_round, accepted) = self
			.chain
			.accepted_workers(job)
			.await?
			.ok_or_else(|| anyhow!("job {job} is not being verified"))?;
		if verified_round != round {
			bail!("verification is of round {verified_round}, not {round}");
		}
		let started = Instant::now();
		let limits = ctx.blob_limits()?;
		let mut updates = Vec::with_capacity(accepted.len());
		let mut aggregated = Vec::with_capacity(accepted.len());
		let mut final_states = Vec::new();
		for worker in &accepted {
			let update = self
				.chain
				.update(job, worker)
				.await?
				.ok_or_else(|| anyhow!("no update from {worker}"))?;
			let peers = self.peers(Some(worker)).await?;
			let bytes = self
				.fetch(BlobKey::Blob(to_digest(&update.delta)), limits.update, &peers, |_| Ok(()))
				.await
				.with_context(|| format!("fetching {worker}'s update"))?;
			// Every accepted update ran the job's steps (validators checked its schedule and
			// its declared count): each weighs the same, whatever a worker declares.
			updates.push(WorkerUpdate {
				delta: decode_update(&ctx.arch, &bytes, ctx.hyperparameters.compression)?,
				num_samples: u64::from(ctx.samples_per_worker()),
			});
			aggregated
				.push(AggregatedUpdate { worker: worker.0, update: to_digest(&update.delta) });
			if ctx.hyperparameters.inner_state == InnerState::Averaged {
				final_states.push(
					self.final_state(&ctx, &limits, worker, &update)
						.await
						.with_context(|| format!("fetching {worker}'s final optimizer state"))?,
				);
			}
		}
		let fetch_seconds = started.elapsed().as_secs_f64();
		let aggregating = Instant::now();
		let (blob, hash) =
			tokio::task::spawn_blocking(move || ctx.aggregate(&updates, &final_states, aggregated))
				.await??;
		self.net.store().put_blob(&blob)?;
		let aggregation_seconds = aggregating.elapsed().as_secs_f64();
		self.add_timings(job, round, |t| {
			t.fetch_seconds += fetch_seconds;
			t.aggregation_seconds += aggregation_seconds;
		});
		tracing::info!(job, round, model = %hash, updates = accepted.len(), aggregation_seconds, posted = post, "aggregate");
		// Kept before the commitment leaves: a restart between the two still reveals it. A
		// commitment already made to this hash is sent again as it was: a transaction that
		// looked dropped may still land, and a new salt would then leave it unrevealable.
		let path = self.aggregate_path(job, round);
		let model = to_h256(&hash).0;
		let stored = match state::read_json::<StoredAggregate>(&path) {
			Ok(Some(stored)) if stored.model == model => stored,
			_ => {
				let stored = StoredAggregate { model, salt: rand::random() };
				state::write_json(&path, &stored)?;
				stored
			},
		};
		let commitment = chain::aggregate_commitment(
			job,
			round,
			&chain::H256(stored.model),
			&stored.salt,
			&self.me,
		);
		if post {
			self.chain.send(ProtocolCall::PostAggregate { job, round, commitment }).await
		} else {
			self.chain.send(ProtocolCall::VoteAggregate { job, round, commitment }).await
		}
	}

	/// Reveals the aggregate hash committed to in `job`'s `round`.
	async fn reveal_aggregate(&mut self, job: u64, round: u32) -> Result<Pending> {
		let path = self.aggregate_path(job, round);
		let stored: StoredAggregate = state::read_json(&path)?
			.with_context(|| format!("no stored aggregate to reveal at {}", path.display()))?;
		tracing::info!(job, round, model = %hex::encode(stored.model), "revealing aggregate");
		let call = ProtocolCall::RevealAggregate {
			job,
			round,
			model: chain::H256(stored.model),
			salt: stored.salt,
		};
		self.chain.send(call).await
	}

	fn aggregate_path(&self, job: u64, round: u32) -> PathBuf {
		self.config.state_dir.join(format!("aggregates/job-{job}-round-{round}.json"))
	}

	async fn claim(&self) -> Result<()> {
		let pending = self.chain.pending_reward(&self.me).await?;
		if pending >= CLAIM_THRESHOLD {
			self.chain.submit(ProtocolCall::Claim).await?;
			tracing::info!(amount = %chain::format_agr(pending), "reward claimed");
		}
		Ok(())
	}
}

/// The shards of the job's dataset that `worker` trains on among `workers` (a round's selected
/// workers, in order); `None` for a job on private data.
fn shards_among(
	details: &JobInfo,
	workers: &[AccountId32],
	worker: &AccountId32,
) -> Result<Option<Vec<Digest>>> {
	let chain::Dataset::Shards(shards) = &details.spec.dataset else { return Ok(None) };
	let shards: Vec<Digest> = shards.0.iter().map(to_digest).collect();
	let position = workers
		.iter()
		.position(|account| account == worker)
		.ok_or_else(|| anyhow!("{worker} is not selected in this round"))?;
	Ok(Some(worker_shards(&shards, position, workers.len())))
}

/// The record the job's latest record stepped from, and the rounds completed before it: the
/// start of the round that produced the latest record. `None` before any completed round.
fn previous_record(details: &JobInfo) -> Option<(Digest, u32)> {
	let completed = details.models.len().checked_sub(1)?;
	let record = match completed.checked_sub(1) {
		Some(index) => details.models.get(index)?.1,
		None => details.spec.initial_weights,
	};
	Some((to_digest(&record), u32::try_from(completed).ok()?))
}

/// Puts a finished run in the store, whence the worker serves it as evidence (its checkpoints,
/// its commitment and its update), and returns the record of what to submit for it.
fn store_run(
	store: &agora_p2p::BlobStore,
	ctx: &RoundContext,
	run: &CommittedRun,
	loss: f64,
) -> Result<SubmittedUpdate> {
	let root = run.commitment.root;
	for (index, state) in run.checkpoints.iter().enumerate() {
		let key = BlobKey::Checkpoint { root, index: index as u32 };
		let path = store.path(&key);
		if let Some(parent) = path.parent() {
			std::fs::create_dir_all(parent)?;
		}
		state.save(&path, &ctx.arch)?;
	}
	store.put(&BlobKey::Commitment(root), &serde_json::to_vec(&run.commitment)?)?;
	let blob = update_blob(&ctx.arch, &ctx.delta_of(run)?, ctx.hyperparameters.compression)?;
	Ok(SubmittedUpdate {
		delta: store.put_blob(&blob)?,
		samples: ctx.samples_per_worker(),
		loss_micros: (loss.max(0.0) * 1e6) as u64,
		checkpoint_root: root,
		checkpoints: run.commitment.segments() as u32,
		plant_secret: None,
	})
}

/// Whether `commitment` binds its run to `worker` in `round` of `job`. A validator's store keeps
/// checkpoints by the run's root, so the checkpoints of a run are fetched only while judging
/// the worker its commitment is bound to: a worker that submitted a copy of another's root
/// (invalid on its face: the run is bound to the other) could otherwise serve forged files
/// under the copied root, to be stored and then judged as the copied worker's evidence.
fn bound_to(commitment: &TrainingCommitment, job: u64, round: u32, worker: &AccountId32) -> bool {
	commitment.binding == RunBinding { job, round, worker: worker.0 }
}

/// Whether a judgement failed only for want of the held-out data the update is judged by (a
/// run on private data, whose other checks all passed).
fn held_out_missing(e: &anyhow::Error) -> bool {
	matches!(e.downcast_ref::<WorkerError>(), Some(WorkerError::HeldOutMissing(_)))
}

/// The checkpoints a validator needs to judge `update`: both ends of every challenged segment
/// and the run's last state. On private data nothing is replayed: only the last checkpoint (the
/// update's end) is needed, not the drawn segments' intermediate states of a run on the
/// worker's data.
fn needed_checkpoints(details: &JobInfo, update: &Update, segments: &[u32]) -> Vec<u32> {
	let replayed = match details.spec.dataset {
		chain::Dataset::Private => &[][..],
		chain::Dataset::Shards(_) => segments,
	};
	let mut needed: Vec<u32> = replayed.iter().flat_map(|&s| [s, s.saturating_add(1)]).collect();
	needed.push(update.checkpoints);
	needed.sort_unstable();
	needed.dedup();
	needed
}

fn duty_round(duty: &Duty<AccountId32, u32>) -> (u64, u32) {
	match duty {
		Duty::Train { job, round, .. }
		| Duty::Commit { job, round, .. }
		| Duty::Reveal { job, round, .. }
		| Duty::Aggregate { job, round, .. }
		| Duty::VoteAggregate { job, round, .. }
		| Duty::RevealAggregate { job, round, .. } => (*job, *round),
	}
}

/// The job's architecture and hyperparameters, if this worker can run it.
pub fn supported(details: &JobInfo) -> Result<(Architecture, Hyperparameters)> {
	let arch_id =
		std::str::from_utf8(&details.spec.architecture.0).context("architecture id is not text")?;
	let arch = Architecture::from_id(arch_id)?;
	let hyperparameters = Hyperparameters::from_json(&details.spec.hyperparameters.0)?;
	hyperparameters.check_segment_length(details.spec.checkpoint_interval)?;
	if details.spec.dataset == chain::Dataset::Private {
		if details.spec.mode == chain::VerificationMode::Replay {
			bail!("a job on private data cannot be verified by replay");
		}
		// Nothing is replayed: the held-out set is the only check, so every validator must
		// score on the same one (a validator's own `--holdout` would split their verdicts).
		if hyperparameters.holdout.is_empty() {
			bail!("a job on private data must commit to a held-out set");
		}
		// Its runs are never replayed, so their final optimizer buffers are unchecked: averaged
		// into the next round's start, they would let a worker steer everyone's training.
		if hyperparameters.inner_state == InnerState::Averaged {
			bail!("a job on private data cannot carry its optimizer state across rounds");
		}
	}
	Ok((arch, hyperparameters))
}

/// Mean training loss over the run's last segment, recomputed on the last checkpoint.
fn last_loss(
	ctx: &RoundContext,
	checkpoints: &[TrainingState],
	data: &Dataset,
	device: Device,
) -> Result<f64> {
	let last = checkpoints.last().ok_or_else(|| anyhow!("no checkpoints"))?;
	let model = agora_ml::models::Model::new(&ctx.arch, &last.params, device)?;
	Ok(agora_ml::train::evaluate(&model, data, 256)?.loss)
}

/// Samples per second of a short training run of the digits MLP (the capability declared at
/// registration; informative only: the chain gives every selected worker an equal share).
fn measure_throughput(device: Device) -> Result<u32> {
	use agora_ml::data::synthetic_images;
	use agora_ml::train::{OptimizerConfig, TrainConfig, Trainer};
	let arch = Architecture::from_id("mlp-digits")?;
	let data = synthetic_images(512, 10, 1, 8, 16, 0)?;
	let config = TrainConfig::new(OptimizerConfig::sgd(0.05, 0.9), 64, 0);
	let state = TrainingState::fresh(arch.initial_params(0)?, &config.optimizer)?;
	let mut trainer = Trainer::new(&arch, &state, &config, device)?;
	let indices: Vec<u32> = (0..64).collect();
	let started = Instant::now();
	for _ in 0..20 {
		trainer.train_step(&data, &indices)?;
	}
	Ok((20.0 * 64.0 / started.elapsed().as_secs_f64()) as u32)
}

/// Loads a held-out dataset from a manifest directory written by `prepare-data`.
pub fn load_holdout(dir: &Path) -> Result<Dataset> {
	Ok(load_prepared(dir)?.0)
}

/// A dataset directory written by `prepare-data` and its root (the Merkle root over its shard
/// hashes, as for a job's shards): a worker's private data.
pub fn load_prepared(dir: &Path) -> Result<(Dataset, Digest)> {
	let (data, manifest) =
		agora_ml::data::load_sharded(&dir.join(agora_ml::data::MANIFEST_FILE), None)?;
	Ok((data, manifest.root))
}

/// `(job, round)` of an update record's file name, `job-J-round-R.json`.
fn parse_record_name(path: &std::path::Path) -> Option<(u64, u32)> {
	let name = path.file_name()?.to_str()?.strip_suffix(".json")?;
	let (job, round) = name.strip_prefix("job-")?.split_once("-round-")?;
	Some((job.parse().ok()?, round.parse().ok()?))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn plant_root_matches_the_runtime() {
		// The vector of pallet-validation's `plant_root_is_the_documented_hash`.
		let root = plant_root(7, &AccountId32([1; 32]), &[2; 32]);
		assert_eq!(
			root.to_hex(),
			"e8b43ac6618e99812c5caa8a7c8b767a07a0192b9c3ab6e7cf2799f0f22e73bd"
		);
	}

	#[test]
	fn aggregate_commitment_matches_the_runtime() {
		// The vector of pallet-validation's `aggregate_commitment_is_the_documented_hash`.
		let commitment = chain::aggregate_commitment(
			7,
			2,
			&chain::H256([0xaa; 32]),
			&[0x55; 32],
			&AccountId32([0x11; 32]),
		);
		assert_eq!(
			hex::encode(commitment.0),
			"e801c757e4e669115d8eca4e84a93212348fde296da92bb50e80d948d950e42a"
		);
	}

	#[test]
	fn record_names_parse() {
		let path = std::path::Path::new("/state/updates/job-12-round-3.json");
		assert_eq!(parse_record_name(path), Some((12, 3)));
		assert_eq!(parse_record_name(std::path::Path::new("/state/updates/other.json")), None);
	}
}
