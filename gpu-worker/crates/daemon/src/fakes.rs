//! In-memory stand-ins for the chain and the peer-to-peer network, for the daemon's tests: a
//! [`World`] that several daemons share, with the faults a real network has (a node that is
//! away, a transaction a reorganization drops, a fetch that fails).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_chain::{
	AccountId32, Balance, BlockNumber, ChainApi, Duty, Endpoint, JobInfo, Pending, PendingDuty,
	ProtocolCall, RoundInfo, Seats, Update, VerificationStage,
};
use agora_core::Digest;
use agora_p2p::{BlobKey, BlobNetwork, BlobStore, Peer, PeerId, Traffic};
use anyhow::{anyhow, bail, Result};

/// The chain's state as the fakes see it, and the faults to inject.
#[derive(Default)]
pub struct World {
	pub best: BlockNumber,
	pub jobs: BTreeMap<u64, JobInfo>,
	pub rounds: BTreeMap<u64, RoundInfo>,
	pub duties: BTreeMap<AccountId32, Vec<PendingDuty>>,
	pub updates: BTreeMap<(u64, AccountId32), Update>,
	/// The round being aggregated and its accepted workers, per job.
	pub accepted: BTreeMap<u64, (u32, Vec<AccountId32>)>,
	/// The workers drawn for each job's next round.
	pub next_round: BTreeMap<u64, Vec<AccountId32>>,
	/// Every transaction sent, by whom, in order (dropped ones too).
	pub sent: Vec<(AccountId32, ProtocolCall)>,
	/// Reads and sends fail while the node is away.
	pub node_down: bool,
	/// The pool drops this many of the next transactions (as a reorganization would).
	pub drop_next: usize,
	/// This many of the next fetches from peers fail (a peer unreachable for a moment).
	pub failing_fetches: usize,
	/// Training evidence (commitments and checkpoints) under these roots, and blobs with these
	/// hashes, never arrive from peers: a holder that answers each request just inside its
	/// timeout, for as long as it likes.
	pub stalled: Vec<Digest>,
	/// What a peer serves under a key in place of the blob (a forger), when it is the first
	/// peer asked.
	pub forged: Vec<(PeerId, BlobKey, Vec<u8>)>,
	/// Every daemon's blob store, which the fake network fetches from.
	pub stores: Vec<BlobStore>,
	/// Registrations by account and role (`true` for a worker); none unless a test adds them.
	pub registrations: BTreeMap<(AccountId32, bool), Endpoint>,
	/// The validator seats.
	pub seats: Seats,
	/// The chain's block time (`None`: 6 seconds, the runtime's).
	pub block_time: Option<Duration>,
}

pub type Shared = Arc<Mutex<World>>;

fn lock(world: &Shared) -> std::sync::MutexGuard<'_, World> {
	world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The chain as seen by `me`.
pub struct FakeChain {
	pub me: AccountId32,
	pub world: Shared,
}

impl FakeChain {
	fn read<T>(&self, f: impl FnOnce(&World) -> T) -> Result<T> {
		let world = lock(&self.world);
		if world.node_down {
			bail!("connection refused (the node is away)");
		}
		Ok(f(&world))
	}
}

/// Removes the duty that `call` by `who` performs, and records what it changes.
fn include(world: &mut World, who: &AccountId32, call: &ProtocolCall) {
	let duties = world.duties.entry(*who).or_default();
	match call {
		ProtocolCall::SubmitUpdate { job, round, update } => {
			duties.retain(
				|d| !matches!(d, Duty::Train { job: j, round: r, .. } if j == job && r == round),
			);
			world.updates.insert((*job, *who), update.clone());
		},
		ProtocolCall::CommitVerdict { job, worker, .. } => {
			duties.retain(
				|d| !matches!(d, Duty::Commit { job: j, worker: w, .. } if j == job && w == worker),
			);
		},
		ProtocolCall::RevealVerdict { job, worker, .. } => {
			duties.retain(
				|d| !matches!(d, Duty::Reveal { job: j, worker: w, .. } if j == job && w == worker),
			);
		},
		ProtocolCall::PostAggregate { job, round, .. }
		| ProtocolCall::VoteAggregate { job, round, .. } => {
			duties.retain(|d| {
				!matches!(d, Duty::Aggregate { job: j, round: r, .. }
					| Duty::VoteAggregate { job: j, round: r, .. } if j == job && r == round)
			});
		},
		ProtocolCall::RevealAggregate { job, round, .. } => {
			duties.retain(
				|d| !matches!(d, Duty::RevealAggregate { job: j, round: r, .. } if j == job && r == round),
			);
		},
		ProtocolCall::ClaimSeat => {
			let stake = world.registrations.get(&(*who, false)).map(|r| r.stake);
			if let Some(stake) = stake {
				let seats = &mut world.seats;
				if !seats.holds(who) && seats.would_seat(stake) {
					if seats.seated.len() >= seats.capacity as usize {
						// The chain unseats the lowest stake (the latest seated of equals).
						let lowest = seats
							.seated
							.iter()
							.rposition(|(_, s)| seats.seated.iter().all(|(_, other)| s <= other));
						if let Some(lowest) = lowest {
							seats.seated.remove(lowest);
						}
					}
					seats.seated.push((*who, stake));
				}
			}
		},
		ProtocolCall::ApplyForRound { job } => {
			if let Some(round) = world.rounds.get_mut(job) {
				round.applicants.push(*who);
			}
		},
		_ => {},
	}
}

impl ChainApi for FakeChain {
	fn account(&self) -> AccountId32 {
		self.me
	}

	fn block_time(&self) -> Duration {
		lock(&self.world).block_time.unwrap_or(Duration::from_secs(6))
	}

	async fn best_number(&self) -> Result<BlockNumber> {
		self.read(|w| w.best)
	}

	async fn next_block(&self, _timeout: Duration) -> Option<BlockNumber> {
		let mut world = lock(&self.world);
		world.best += 1;
		Some(world.best)
	}

	async fn job(&self, job: u64) -> Result<Option<JobInfo>> {
		self.read(|w| w.jobs.get(&job).cloned())
	}

	async fn round_status(&self, job: u64) -> Result<Option<RoundInfo>> {
		self.read(|w| w.rounds.get(&job).cloned())
	}

	async fn duties(&self, who: &AccountId32) -> Result<Vec<PendingDuty>> {
		self.read(|w| w.duties.get(who).cloned().unwrap_or_default())
	}

	async fn active_jobs(&self) -> Result<Vec<u64>> {
		self.read(|w| {
			let mut jobs: Vec<u64> = w.jobs.keys().copied().collect();
			jobs.sort_unstable();
			jobs
		})
	}

	async fn registration(&self, who: &AccountId32, as_worker: bool) -> Result<Option<Endpoint>> {
		self.read(|w| w.registrations.get(&(*who, as_worker)).cloned())
	}

	async fn all_endpoints(&self) -> Result<Vec<Endpoint>> {
		self.read(|w| w.registrations.values().cloned().collect())
	}

	async fn seats(&self) -> Result<Seats> {
		self.read(|w| w.seats.clone())
	}

	async fn update(&self, job: u64, worker: &AccountId32) -> Result<Option<Update>> {
		self.read(|w| w.updates.get(&(job, *worker)).cloned())
	}

	async fn accepted_workers(&self, job: u64) -> Result<Option<(u32, Vec<AccountId32>)>> {
		self.read(|w| w.accepted.get(&job).cloned())
	}

	async fn next_round_workers(&self, job: u64) -> Result<Vec<AccountId32>> {
		self.read(|w| w.next_round.get(&job).cloned().unwrap_or_default())
	}

	async fn verification_stage(&self, _job: u64) -> Result<Option<(u32, VerificationStage)>> {
		self.read(|_| None)
	}

	async fn plant_exposed(&self, _job: u64, _worker: &AccountId32) -> Result<bool> {
		self.read(|_| false)
	}

	async fn pending_reward(&self, _who: &AccountId32) -> Result<Balance> {
		self.read(|_| 0)
	}

	async fn send(&self, call: ProtocolCall) -> Result<Pending> {
		let mut world = lock(&self.world);
		if world.node_down {
			bail!("submitting {}: connection refused", call.name());
		}
		world.sent.push((self.me, call.clone()));
		if world.drop_next > 0 {
			world.drop_next -= 1;
			let name = call.name();
			return Ok(Box::pin(async move { Err(anyhow!("{name} was not included: dropped")) }));
		}
		include(&mut world, &self.me, &call);
		Ok(Box::pin(async { Ok(()) }))
	}
}

/// A peer-to-peer node that fetches from every store in the world.
pub struct FakeNet {
	pub id: PeerId,
	pub store: BlobStore,
	pub world: Shared,
}

impl FakeNet {
	/// A node with its own store under `dir`, known to the world.
	pub fn new(world: &Shared, dir: &std::path::Path) -> Self {
		let store = BlobStore::open(dir).expect("a temporary directory");
		lock(world).stores.push(store.clone());
		FakeNet { id: PeerId::random(), store, world: world.clone() }
	}
}

impl BlobNetwork for FakeNet {
	fn peer_id(&self) -> PeerId {
		self.id
	}

	fn store(&self) -> &BlobStore {
		&self.store
	}

	async fn fetch(
		&self,
		key: BlobKey,
		limit: u64,
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>> {
		if let Some(bytes) = self.store.get(&key)? {
			if bytes.len() as u64 > limit {
				bail!("{key:?} is larger than {limit} bytes");
			}
			// As `Network::fetch`: a stored blob is verified too, and a rejected one removed
			// unless it is a plain blob.
			if let Err(e) = verify(&bytes) {
				if agora_p2p::discard_rejected(&key) {
					let _ = std::fs::remove_file(self.store.path(&key));
				}
				return Err(e.context(format!("{key:?} rejected")));
			}
			return Ok(bytes);
		}
		let stalled = match key {
			BlobKey::Commitment(root) | BlobKey::Checkpoint { root, .. } => {
				lock(&self.world).stalled.contains(&root)
			},
			BlobKey::Blob(hash) => lock(&self.world).stalled.contains(&hash),
		};
		if stalled {
			std::future::pending::<()>().await;
		}
		let found = {
			let mut world = lock(&self.world);
			if world.failing_fetches > 0 {
				world.failing_fetches -= 1;
				bail!("{key:?}: peer unreachable (injected)");
			}
			let first = peers.first().map(|peer| peer.id);
			let forged = world
				.forged
				.iter()
				.find(|(peer, forged_key, _)| Some(*peer) == first && *forged_key == key);
			match forged {
				Some((_, _, bytes)) => Some(bytes.clone()),
				None => world.stores.iter().find_map(|store| store.get(&key).ok().flatten()),
			}
		};
		let bytes = found.ok_or_else(|| anyhow!("no peer provided {key:?}"))?;
		if bytes.len() as u64 > limit {
			bail!("{key:?} is larger than {limit} bytes");
		}
		if let BlobKey::Blob(hash) = key {
			if Digest::of(&[&bytes]) != hash {
				bail!("blob hash mismatch");
			}
		}
		verify(&bytes)?;
		self.store.put(&key, &bytes)?;
		Ok(bytes)
	}

	async fn fetch_to_store(&self, key: BlobKey, limit: u64, peers: &[Peer]) -> Result<PathBuf> {
		self.fetch(key, limit, peers, |_| Ok(())).await?;
		Ok(self.store.path(&key))
	}

	async fn traffic(&self) -> Traffic {
		Traffic::default()
	}
}
