//! Peer-to-peer exchange of content-addressed blobs over libp2p.
//!
//! Transport: TCP with noise encryption and yamux multiplexing. Protocol `/agora/blob/1`: a
//! request-response protocol with CBOR frames. A request names a blob and an offset; the
//! response carries at most [`CHUNK_SIZE`] bytes from that offset and the blob's total size.
//! A fetch appends chunks to a partial file, so an interrupted download resumes where it
//! stopped (also after a restart), and the complete blob is verified before it is used:
//! by its blake2b-256 for a plain blob, by the caller's check for commitments and checkpoints.
//!
//! Every participant serves what it holds in its [`BlobStore`]; whom to ask comes from the
//! chain (the registered peer id and multiaddr of the worker that submitted an update, of the
//! round's aggregator, of any registered participant).
//!
//! The same connections carry the inference market's queries ([`query`]): a node started with
//! a query handler answers them, any node can send them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
pub use libp2p::{identity, Multiaddr, PeerId};
use libp2p::{noise, tcp, yamux, StreamProtocol, Swarm};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use agora_core::Digest;

pub mod query;
pub use query::{InboundQuery, QueryRequest, QueryResponse, SignedReceipt};

/// Largest chunk in one response (the CBOR codec accepts responses up to 10 MiB).
pub const CHUNK_SIZE: u64 = 1 << 20;
const PROTOCOL: &str = "/agora/blob/2";
const QUERY_PROTOCOL: &str = "/agora/query/1";
/// Queries this node's handler may have in flight for all peers together; more are answered
/// `Busy`.
const MAX_QUERIES_IN_FLIGHT: usize = 256;
/// Queries one peer may have in flight on this node; more are answered `Busy`. A client asks one
/// request at a time and an auditor one evidence at a time: a peer flooding the provider takes
/// at most this many of [`MAX_QUERIES_IN_FLIGHT`], the rest stay for everyone else.
const MAX_QUERIES_PER_PEER: usize = 8;
/// A query the provider does not answer within this fails (model compute included).
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// A peer that does not answer one chunk request within this is given up for that fetch.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many holders are asked at once for the first chunk of a blob; the first to answer
/// serves the rest.
const PARALLEL_HOLDERS: usize = 3;
/// The slowest a holder may serve a chunk (1 MiB: 256 KiB/s) while other holders are left to
/// ask; a slower one hands the rest of the download to them and is asked again only when none
/// is left (it is left out of their races, so answering the next race at once does not win it
/// the download back). Without it a holder answering the first chunk at once and every later
/// one just inside [`REQUEST_TIMEOUT`] would take the download at 100 KiB/s.
const SLOW_CHUNK: Duration = Duration::from_secs(4);
/// Chunk reads one requester may have in flight on this node; more are answered `Busy`.
const MAX_IN_FLIGHT_PER_PEER: usize = 4;
/// Chunk reads in flight on this node for all requesters together.
const MAX_IN_FLIGHT: usize = 64;
/// Requests one requester may make per second (64 chunks: 64 MiB/s); more are answered `Busy`.
const MAX_REQUESTS_PER_SECOND: u32 = 64;
/// How long a download answered `Busy` waits before asking again, and how many times in a row.
const BUSY_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BUSY_RETRIES: u32 = 50;

/// What a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobKey {
	/// A blob whose blake2b-256 is the key (models, updates, aggregates, dataset shards).
	Blob(Digest),
	/// The training commitment (JSON) whose checkpoint Merkle root is the key.
	Commitment(Digest),
	/// Checkpoint `index` of the run committed under `root`.
	Checkpoint { root: Digest, index: u32 },
}

impl BlobKey {
	fn file_name(&self) -> String {
		match self {
			BlobKey::Blob(hash) => format!("blobs/{hash}"),
			BlobKey::Commitment(root) => format!("runs/{root}/commitment.json"),
			BlobKey::Checkpoint { root, index } => format!("runs/{root}/checkpoint-{index:05}"),
		}
	}
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlobRequest {
	pub key: BlobKey,
	pub offset: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BlobResponse {
	Chunk {
		total: u64,
		#[serde(with = "serde_bytes")]
		bytes: Vec<u8>,
	},
	NotFound,
	/// The peer serves too many requests (from this requester, or in all) to take this one now.
	Busy,
}

/// A directory of blobs by key, served to peers.
#[derive(Clone, Debug)]
pub struct BlobStore {
	root: PathBuf,
}

impl BlobStore {
	pub fn open(root: &Path) -> Result<Self> {
		for dir in ["blobs", "runs", "partial"] {
			std::fs::create_dir_all(root.join(dir))
				.with_context(|| format!("creating {}", root.join(dir).display()))?;
		}
		Ok(BlobStore { root: root.to_path_buf() })
	}

	pub fn path(&self, key: &BlobKey) -> PathBuf {
		self.root.join(key.file_name())
	}

	pub fn contains(&self, key: &BlobKey) -> bool {
		self.path(key).is_file()
	}

	pub fn get(&self, key: &BlobKey) -> Result<Option<Vec<u8>>> {
		match std::fs::read(self.path(key)) {
			Ok(bytes) => Ok(Some(bytes)),
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
			Err(e) => Err(e).with_context(|| format!("reading {}", self.path(key).display())),
		}
	}

	/// Stores `bytes` under `key` (atomically: readers never see a half-written blob).
	pub fn put(&self, key: &BlobKey, bytes: &[u8]) -> Result<()> {
		let path = self.path(key);
		if let Some(parent) = path.parent() {
			std::fs::create_dir_all(parent)?;
		}
		let temporary = path.with_extension("tmp");
		std::fs::write(&temporary, bytes)
			.with_context(|| format!("writing {}", temporary.display()))?;
		std::fs::rename(&temporary, &path)
			.with_context(|| format!("writing {}", path.display()))?;
		Ok(())
	}

	/// Stores a plain blob under its hash and returns the hash.
	pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
		let hash = Digest::of(&[bytes]);
		self.put(&BlobKey::Blob(hash), bytes)?;
		Ok(hash)
	}

	fn partial_path(&self, key: &BlobKey) -> PathBuf {
		let name = Digest::of(&[key.file_name().as_bytes()]);
		self.root.join("partial").join(name.to_hex())
	}

	/// Serves `length` bytes of a blob from `offset`.
	fn read_chunk(&self, key: &BlobKey, offset: u64) -> Result<BlobResponse> {
		use std::io::{Read, Seek, SeekFrom};
		let mut file = match std::fs::File::open(self.path(key)) {
			Ok(file) => file,
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
				return Ok(BlobResponse::NotFound)
			},
			Err(e) => return Err(e.into()),
		};
		let total = file.metadata()?.len();
		let start = offset.min(total);
		file.seek(SeekFrom::Start(start))?;
		let mut bytes = Vec::with_capacity((total - start).min(CHUNK_SIZE) as usize);
		file.take(CHUNK_SIZE).read_to_end(&mut bytes)?;
		Ok(BlobResponse::Chunk { total, bytes })
	}
}

/// A peer to ask: its libp2p id and address, as registered on chain.
#[derive(Clone, Debug)]
pub struct Peer {
	pub id: PeerId,
	pub addr: Multiaddr,
}

impl Peer {
	/// Parses an on-chain registration (peer id bytes, multiaddr text).
	pub fn from_chain(peer_id: &[u8], multiaddr: &[u8]) -> Result<Self> {
		let id = PeerId::from_bytes(peer_id).context("registered peer id is not a libp2p id")?;
		let text = std::str::from_utf8(multiaddr).context("registered multiaddr is not text")?;
		let addr = text.parse().with_context(|| format!("registered multiaddr `{text}`"))?;
		Ok(Peer { id, addr })
	}
}

/// Traffic counters of a node, in bytes of blob payload.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
	pub downloaded: u64,
	pub uploaded: u64,
}

enum Command {
	Request { peer: Peer, request: BlobRequest, reply: oneshot::Sender<Result<BlobResponse>> },
	Query { peer: Peer, request: QueryRequest, reply: oneshot::Sender<Result<QueryResponse>> },
	Traffic(oneshot::Sender<Traffic>),
}

/// Whether a stored blob that a caller's `verify` rejects is removed. A plain blob never is:
/// [`Network::fetch_to_store`] has just checked its bytes against its hash, so they are exactly
/// the ones its key names and the rejection says the caller expected something else. Removing it would let
/// whoever chooses what a daemon fetches (a job's submitter naming any hash as its tokenizer,
/// say) delete the blobs that daemon serves, its own submitted update among them. A checkpoint
/// or commitment is keyed by a root, not by its content: a rejected one may be a bad copy, and
/// removing it lets the next attempt ask another holder.
pub fn discard_rejected(key: &BlobKey) -> bool {
	!matches!(key, BlobKey::Blob(_))
}

/// What the daemons need from the peer-to-peer network: the local store they serve from, and
/// verified downloads from peers. [`Network`] implements it over libp2p; tests implement it in
/// memory to inject failures.
#[allow(async_fn_in_trait)]
pub trait BlobNetwork {
	/// This node's libp2p id (registered on chain).
	fn peer_id(&self) -> PeerId;
	/// The blobs this node holds and serves.
	fn store(&self) -> &BlobStore;
	/// The blob under `key`: from the local store, or downloaded from `peers` and accepted only
	/// if `verify` accepts the complete bytes (a plain blob is also checked against its hash);
	/// a verified download is added to the store. A blob of more than `limit` bytes is refused.
	async fn fetch(
		&self,
		key: BlobKey,
		limit: u64,
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>>;
	/// The blob under `key` in the local store (downloaded from `peers` if needed, a plain
	/// blob checked against its hash) without reading it into memory; its path.
	async fn fetch_to_store(&self, key: BlobKey, limit: u64, peers: &[Peer]) -> Result<PathBuf>;
	/// Blob payload bytes downloaded and uploaded so far.
	async fn traffic(&self) -> Traffic;
}

/// Handle of the running libp2p node.
#[derive(Clone)]
pub struct Network {
	commands: mpsc::Sender<Command>,
	store: BlobStore,
	peer_id: PeerId,
	listen_addr: Option<Multiaddr>,
	downloads: Downloads,
}

/// One download per key at a time: callers that want the same blob at once (a validator
/// fetching several updates' evidence concurrently, each needing the round's model) wait for
/// the first download and then find the blob stored, rather than append to the same partial
/// file. Downloads of different keys never wait for each other, so a peer that stalls one blob
/// holds up nothing else. Each key's lock counts its holder and waiters, and goes when the
/// last of them does, whether it finished or was given up while waiting.
#[derive(Clone, Default)]
struct Downloads(Arc<std::sync::Mutex<HashMap<BlobKey, KeyLock>>>);

/// A key's lock and how many downloads hold it or wait for it.
type KeyLock = (Arc<tokio::sync::Mutex<()>>, usize);

impl Downloads {
	/// Waits until no other download of `key` runs; the guard ends this one.
	async fn start(&self, key: BlobKey) -> DownloadGuard {
		let lock = {
			let mut map = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
			let (lock, users) = map.entry(key).or_default();
			*users += 1;
			lock.clone()
		};
		// Counted from here: dropped while waiting, the guard still gives its count back.
		let mut guard = DownloadGuard { downloads: self.clone(), key, held: None };
		guard.held = Some(lock.lock_owned().await);
		guard
	}
}

/// A download of one key, running or waiting for its turn (see [`Downloads`]).
struct DownloadGuard {
	downloads: Downloads,
	key: BlobKey,
	held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for DownloadGuard {
	fn drop(&mut self) {
		self.held.take();
		let mut map = self.downloads.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		if let std::collections::hash_map::Entry::Occupied(mut entry) = map.entry(self.key) {
			let users = &mut entry.get_mut().1;
			*users = users.saturating_sub(1);
			if *users == 0 {
				entry.remove();
			}
		}
	}
}

type BlobBehaviour = request_response::cbor::Behaviour<BlobRequest, BlobResponse>;
type QueryBehaviour = request_response::cbor::Behaviour<QueryRequest, QueryResponse>;

/// Both protocols on one swarm.
#[derive(NetworkBehaviour)]
struct Behaviour {
	blobs: BlobBehaviour,
	queries: QueryBehaviour,
}

/// Loads the node's ed25519 identity from `path`, creating it on first start (the peer id is
/// registered on chain, so it must survive restarts).
pub fn load_or_create_identity(path: &Path) -> Result<identity::Keypair> {
	if let Ok(bytes) = std::fs::read(path) {
		return identity::Keypair::from_protobuf_encoding(&bytes)
			.with_context(|| format!("{} is not a libp2p key", path.display()));
	}
	let keypair = identity::Keypair::generate_ed25519();
	if let Some(parent) = path.parent() {
		std::fs::create_dir_all(parent)?;
	}
	std::fs::write(path, keypair.to_protobuf_encoding()?)
		.with_context(|| format!("writing {}", path.display()))?;
	Ok(keypair)
}

impl Network {
	/// Starts a node with `identity` serving `store`; listens on `listen` if given (a client
	/// that only downloads does not listen). It answers no queries.
	pub async fn start(
		identity: identity::Keypair,
		listen: Option<Multiaddr>,
		store: BlobStore,
	) -> Result<Self> {
		Network::start_with_queries(identity, listen, store, None).await
	}

	/// [`Network::start`], handing the queries peers send to `queries` (a provider's handler).
	pub async fn start_with_queries(
		identity: identity::Keypair,
		listen: Option<Multiaddr>,
		store: BlobStore,
		queries: Option<mpsc::Sender<InboundQuery>>,
	) -> Result<Self> {
		let peer_id = identity.public().to_peer_id();
		let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
			.with_tokio()
			.with_tcp(
				tcp::Config::default().nodelay(true),
				noise::Config::new,
				yamux::Config::default,
			)?
			.with_behaviour(|_| Behaviour {
				blobs: BlobBehaviour::new(
					[(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
					request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
				),
				queries: QueryBehaviour::new(
					[(StreamProtocol::new(QUERY_PROTOCOL), ProtocolSupport::Full)],
					request_response::Config::default().with_request_timeout(QUERY_TIMEOUT),
				),
			})?
			.with_swarm_config(|config| {
				config.with_idle_connection_timeout(Duration::from_secs(60))
			})
			.build();
		let mut listen_addr = None;
		if let Some(addr) = listen {
			swarm.listen_on(addr.clone()).with_context(|| format!("listening on {addr}"))?;
			// Wait for the listener so that a port already in use is an error here.
			loop {
				match swarm.select_next_some().await {
					SwarmEvent::NewListenAddr { address, .. } => {
						tracing::info!(%peer_id, %address, "p2p listening");
						listen_addr = Some(address);
						break;
					},
					SwarmEvent::ListenerClosed { reason: Err(e), .. }
					| SwarmEvent::ListenerError { error: e, .. } => bail!("cannot listen on {addr}: {e}"),
					_ => {},
				}
			}
		}
		let (commands, receiver) = mpsc::channel(64);
		tokio::spawn(run_swarm(swarm, receiver, store.clone(), queries));
		Ok(Network { commands, store, peer_id, listen_addr, downloads: Downloads::default() })
	}

	pub fn peer_id(&self) -> PeerId {
		self.peer_id
	}

	/// The address the node listens on (with the port chosen for port 0).
	pub fn listen_addr(&self) -> Option<&Multiaddr> {
		self.listen_addr.as_ref()
	}

	pub fn store(&self) -> &BlobStore {
		&self.store
	}

	pub async fn traffic(&self) -> Traffic {
		let (reply, receive) = oneshot::channel();
		if self.commands.send(Command::Traffic(reply)).await.is_err() {
			return Traffic::default();
		}
		receive.await.unwrap_or_default()
	}

	async fn request(&self, peer: &Peer, request: BlobRequest) -> Result<BlobResponse> {
		let (reply, receive) = oneshot::channel();
		self.commands
			.send(Command::Request { peer: peer.clone(), request, reply })
			.await
			.map_err(|_| anyhow!("the p2p node has stopped"))?;
		receive.await.map_err(|_| anyhow!("the p2p node has stopped"))?
	}

	/// Sends `request` to `peer` and waits for its answer (at most [`QUERY_TIMEOUT`]).
	pub async fn query(&self, peer: &Peer, request: QueryRequest) -> Result<QueryResponse> {
		let (reply, receive) = oneshot::channel();
		self.commands
			.send(Command::Query { peer: peer.clone(), request, reply })
			.await
			.map_err(|_| anyhow!("the p2p node has stopped"))?;
		receive.await.map_err(|_| anyhow!("the p2p node has stopped"))?
	}

	/// Returns the blob under `key`: [`Network::fetch_to_store`], then read and accepted only
	/// if `verify` accepts its bytes. A rejected checkpoint or commitment is removed, so that
	/// the next attempt asks another holder; a rejected plain blob is kept, see
	/// [`discard_rejected`].
	pub async fn fetch(
		&self,
		key: BlobKey,
		limit: u64,
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>> {
		let path = self.fetch_to_store(key, limit, peers).await?;
		let bytes =
			tokio::fs::read(&path).await.with_context(|| format!("reading {}", path.display()))?;
		if let Err(e) = verify(&bytes) {
			if discard_rejected(&key) {
				let _ = tokio::fs::remove_file(&path).await;
			}
			return Err(e.context(format!("{key:?} rejected")));
		}
		Ok(bytes)
	}

	/// Puts the blob under `key` in the local store, downloading it from `peers` if it is not
	/// there yet, and returns its path. Up to [`PARALLEL_HOLDERS`] holders are asked at once for
	/// the first chunk and the first to answer serves the rest; chunks are appended to a
	/// partial file as they arrive, so an interrupted download resumes (also after a restart)
	/// and memory holds one chunk at a time. A holder that announces more than `limit` bytes is
	/// refused before anything is written. A plain blob is checked against its hash (read back
	/// in pieces) before it enters the store; this node serves it from then on. A stored blob
	/// counts only within `limit` (checked before it is read: whoever names the key may name a
	/// large blob this node holds for something else), and a stored plain blob only if its
	/// bytes still match its hash; a corrupt one is downloaded again.
	pub async fn fetch_to_store(
		&self,
		key: BlobKey,
		limit: u64,
		peers: &[Peer],
	) -> Result<PathBuf> {
		let _only_download_of_key = self.downloads.start(key).await;
		let path = self.store.path(&key);
		if self.store.contains(&key) {
			let size = tokio::fs::metadata(&path)
				.await
				.with_context(|| format!("reading {}", path.display()))?
				.len();
			if size > limit {
				bail!("{key:?} is {size} bytes, more than {limit}");
			}
			match check_hash(&key, &path).await {
				Ok(()) => return Ok(path),
				Err(e) => {
					tracing::warn!(?key, "stored copy is corrupt, downloading it again: {e:#}");
					let _ = std::fs::remove_file(&path);
				},
			}
		}
		let partial = self.store.partial_path(&key);
		let mut candidates: Vec<&Peer> =
			peers.iter().filter(|peer| peer.id != self.peer_id).collect();
		let mut failures = Vec::new();
		// Holders that served a chunk too slowly: left out of every race until no other holder
		// is left, then asked with the full request timeout (`patient`).
		let mut slow: Vec<&Peer> = Vec::new();
		let mut patient = false;
		// The size announced by the holder whose bytes the partial file holds: a holder asked
		// to continue it that announces another size is refused before it writes anything.
		let mut announced: Option<u64> = None;
		loop {
			if candidates.is_empty() {
				if patient || slow.is_empty() {
					break;
				}
				candidates = std::mem::take(&mut slow);
				patient = true;
			}
			let batch: Vec<&Peer> =
				candidates.drain(..PARALLEL_HOLDERS.min(candidates.len())).collect();
			let offset = partial_len(&partial).await;
			let known = announced.filter(|_| offset > 0);
			let mut asks: futures::stream::FuturesUnordered<_> = batch
				.iter()
				.map(|&peer| async move {
					let response = self.request(peer, BlobRequest { key, offset }).await;
					let chunk = response.and_then(|r| accept_chunk(r, offset, limit));
					(peer, chunk.and_then(|chunk| continues(chunk, known)))
				})
				.collect();
			let mut first = None;
			let mut failed = Vec::new();
			while let Some((peer, answer)) = asks.next().await {
				match answer {
					Ok(chunk) => {
						first = Some((peer, chunk));
						break;
					},
					Err(e) => {
						failed.push(peer.id);
						failures.push(format!("{}: {e:#}", peer.id));
					},
				}
			}
			drop(asks);
			let Some((peer, first)) = first else { continue };
			announced = Some(first.0);
			// The holders that were still answering go first if this one stops.
			for (position, &other) in batch
				.iter()
				.filter(|other| other.id != peer.id && !failed.contains(&other.id))
				.enumerate()
			{
				candidates.insert(position, other);
			}
			let last_resort = patient || (candidates.is_empty() && slow.is_empty());
			let patience = if last_resort { REQUEST_TIMEOUT } else { SLOW_CHUNK };
			// What arrived stays in the partial file for the next holder to continue.
			match self.download(&key, peer, &partial, limit, offset, first, patience).await {
				Ok(Continued::Completed) => {},
				Ok(Continued::TooSlow) if !last_resort => {
					tracing::debug!(peer = %peer.id, ?key, "holder too slow, asking others");
					slow.push(peer);
					continue;
				},
				Ok(Continued::TooSlow) => {
					failures.push(format!("{}: no chunk within {patience:?}", peer.id));
					continue;
				},
				Err(e) => {
					tracing::debug!(peer = %peer.id, ?key, "fetch failed: {e:#}");
					failures.push(format!("{}: {e:#}", peer.id));
					continue;
				},
			}
			match check_hash(&key, &partial).await {
				Ok(()) => {
					if let Some(parent) = path.parent() {
						std::fs::create_dir_all(parent)?;
					}
					// Synchronous for the same reason as the writes (see `download`).
					std::fs::rename(&partial, &path)
						.with_context(|| format!("storing {}", path.display()))?;
					return Ok(path);
				},
				Err(e) => {
					// A bad blob is discarded whole: a resumed download must not build on
					// bytes from a peer that lied.
					let _ = std::fs::remove_file(&partial);
					tracing::warn!(peer = %peer.id, ?key, "rejected blob: {e:#}");
					failures.push(format!("{}: {e:#}", peer.id));
					if offset > 0 {
						// The bad bytes may be another peer's, from before this one continued:
						// this one is asked once more, from the start.
						candidates.insert(0, peer);
					}
				},
			}
		}
		// Nobody could continue the partial download: start afresh next time (its bytes may
		// come from a peer that served something else).
		let _ = std::fs::remove_file(&partial);
		bail!("no peer provided {key:?} ({})", failures.join("; "))
	}

	/// Appends `first` (the chunk at `offset`) and then the rest of the blob from `peer` to
	/// the partial file, stopping with [`Continued::TooSlow`] at a chunk that takes longer
	/// than `patience` (its `Busy` answers included). The file is written synchronously (a
	/// chunk to the page cache takes a millisecond): a download given up at an `await` (a
	/// deadline reached) leaves no write in flight on another thread, whose bytes could land
	/// after the next download of the key has read the partial file's length and so be
	/// appended twice.
	#[allow(clippy::too_many_arguments)]
	async fn download(
		&self,
		key: &BlobKey,
		peer: &Peer,
		partial: &Path,
		limit: u64,
		offset: u64,
		first: (u64, Vec<u8>),
		patience: Duration,
	) -> Result<Continued> {
		use std::io::Write;
		let (total, chunk) = first;
		let mut file = std::fs::OpenOptions::new()
			.create(true)
			.append(true)
			.open(partial)
			.with_context(|| format!("opening {}", partial.display()))?;
		file.write_all(&chunk)?;
		let mut offset = offset + chunk.len() as u64;
		let mut busy = 0;
		let mut chunk_deadline = tokio::time::Instant::now() + patience;
		while offset < total {
			let request = self.request(peer, BlobRequest { key: *key, offset });
			let Ok(response) = tokio::time::timeout_at(chunk_deadline, request).await else {
				return Ok(Continued::TooSlow);
			};
			let response = response?;
			if matches!(response, BlobResponse::Busy) {
				// The holder throttles this node: slow down rather than give up.
				busy += 1;
				if busy > MAX_BUSY_RETRIES {
					bail!("busy for {busy} requests in a row");
				}
				if tokio::time::Instant::now() + BUSY_BACKOFF > chunk_deadline {
					return Ok(Continued::TooSlow);
				}
				tokio::time::sleep(BUSY_BACKOFF).await;
				continue;
			}
			busy = 0;
			let (announced, chunk) = accept_chunk(response, offset, limit)?;
			if announced != total {
				bail!("peer changed the blob's size from {total} to {announced} bytes");
			}
			file.write_all(&chunk)?;
			offset += chunk.len() as u64;
			chunk_deadline = tokio::time::Instant::now() + patience;
		}
		Ok(Continued::Completed)
	}
}

/// Accepts a chunk that continues a partial download only from a holder announcing the size
/// (`known`) that its earlier bytes came with.
fn continues(chunk: (u64, Vec<u8>), known: Option<u64>) -> Result<(u64, Vec<u8>)> {
	match known {
		Some(known) if chunk.0 != known => {
			bail!("peer announces {} bytes, not the {known} the download continues", chunk.0)
		},
		_ => Ok(chunk),
	}
}

/// How a download from one holder ended, short of an error.
enum Continued {
	/// The whole blob is in the partial file.
	Completed,
	/// A chunk took longer than the holder was given; what arrived is in the partial file.
	TooSlow,
}

/// Checks the file at `path` against the hash a plain blob's key names (other keys are checked
/// by whoever uses them), reading it in pieces.
async fn check_hash(key: &BlobKey, path: &Path) -> Result<()> {
	let BlobKey::Blob(expected) = *key else { return Ok(()) };
	let path = path.to_path_buf();
	let actual = tokio::task::spawn_blocking(move || -> Result<Digest> {
		use std::io::Read;
		let mut file =
			std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
		let mut hasher = agora_core::Hasher::new();
		let mut buffer = vec![0u8; 1 << 20];
		loop {
			let read = file.read(&mut buffer)?;
			if read == 0 {
				break;
			}
			hasher.update(&buffer[..read]);
		}
		Ok(hasher.finish())
	})
	.await??;
	if actual != expected {
		bail!("blob hash mismatch: expected {expected}, received {actual}");
	}
	Ok(())
}

/// Bytes already in a partial download (0 when there is none).
async fn partial_len(path: &Path) -> u64 {
	tokio::fs::metadata(path).await.map(|m| m.len()).unwrap_or(0)
}

/// Checks a response to a request at `offset` for a blob of at most `limit` bytes: returns the
/// blob's announced size and the chunk.
fn accept_chunk(response: BlobResponse, offset: u64, limit: u64) -> Result<(u64, Vec<u8>)> {
	match response {
		BlobResponse::NotFound => bail!("not found"),
		BlobResponse::Busy => bail!("busy"),
		BlobResponse::Chunk { total, bytes } => {
			if total > limit {
				bail!("peer announces {total} bytes, more than the {limit} this blob can be");
			}
			if offset > total {
				bail!("peer announces {total} bytes, fewer than the {offset} already received");
			}
			// An honest holder always sends a full chunk (or the rest of the blob): a peer that
			// drips a few bytes per request cannot stall a download that it answered first.
			let expected = CHUNK_SIZE.min(total - offset);
			if bytes.len() as u64 != expected {
				bail!(
					"peer sent {} bytes at offset {offset}, not the {expected} a chunk holds",
					bytes.len()
				);
			}
			Ok((total, bytes))
		},
	}
}

impl BlobNetwork for Network {
	fn peer_id(&self) -> PeerId {
		Network::peer_id(self)
	}

	fn store(&self) -> &BlobStore {
		Network::store(self)
	}

	async fn fetch(
		&self,
		key: BlobKey,
		limit: u64,
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>> {
		Network::fetch(self, key, limit, peers, verify).await
	}

	async fn fetch_to_store(&self, key: BlobKey, limit: u64, peers: &[Peer]) -> Result<PathBuf> {
		Network::fetch_to_store(self, key, limit, peers).await
	}

	async fn traffic(&self) -> Traffic {
		Network::traffic(self).await
	}
}

/// What one requester has asked of this node lately.
#[derive(Default)]
struct PeerLoad {
	in_flight: usize,
	window_start: Option<Instant>,
	requests_in_window: u32,
}

impl PeerLoad {
	/// Whether one more request may be served now (and counts it if so).
	fn admit(&mut self, now: Instant) -> bool {
		match self.window_start {
			Some(start) if now.duration_since(start) < Duration::from_secs(1) => {},
			_ => {
				self.window_start = Some(now);
				self.requests_in_window = 0;
			},
		}
		if self.in_flight >= MAX_IN_FLIGHT_PER_PEER
			|| self.requests_in_window >= MAX_REQUESTS_PER_SECOND
		{
			return false;
		}
		self.in_flight += 1;
		self.requests_in_window += 1;
		true
	}
}

type Served = (PeerId, request_response::ResponseChannel<BlobResponse>, BlobResponse);
type Answered = (PeerId, request_response::ResponseChannel<QueryResponse>, QueryResponse);

/// Requests this node sent and waits to hear back about.
#[derive(Default)]
struct Outbound {
	blobs: HashMap<OutboundRequestId, oneshot::Sender<Result<BlobResponse>>>,
	queries: HashMap<OutboundRequestId, oneshot::Sender<Result<QueryResponse>>>,
}

async fn run_swarm(
	mut swarm: Swarm<Behaviour>,
	mut commands: mpsc::Receiver<Command>,
	store: BlobStore,
	queries: Option<mpsc::Sender<InboundQuery>>,
) {
	let mut outbound = Outbound::default();
	let mut traffic = Traffic::default();
	// Chunks are read from disk off this loop; their responses come back through `served`.
	let (served_tx, mut served) = mpsc::channel::<Served>(MAX_IN_FLIGHT);
	// The handler answers queries off this loop too.
	let (answered_tx, mut answered) = mpsc::channel::<Answered>(MAX_QUERIES_IN_FLIGHT);
	let mut queries_in_flight = 0usize;
	// Per peer, only while it has queries in flight (at most `MAX_QUERIES_IN_FLIGHT` entries).
	let mut queries_per_peer: HashMap<PeerId, usize> = HashMap::new();
	let mut loads: HashMap<PeerId, PeerLoad> = HashMap::new();
	let mut in_flight = 0usize;
	loop {
		tokio::select! {
			command = commands.recv() => match command {
				None => return,
				Some(Command::Traffic(reply)) => {
					let _ = reply.send(traffic);
				}
				Some(Command::Request { peer, request, reply }) => {
					swarm.add_peer_address(peer.id, peer.addr.clone());
					let id = swarm.behaviour_mut().blobs.send_request(&peer.id, request);
					outbound.blobs.insert(id, reply);
				}
				Some(Command::Query { peer, request, reply }) => {
					swarm.add_peer_address(peer.id, peer.addr.clone());
					let id = swarm.behaviour_mut().queries.send_request(&peer.id, request);
					outbound.queries.insert(id, reply);
				}
			},
			Some((peer, channel, response)) = served.recv() => {
				in_flight = in_flight.saturating_sub(1);
				if let Some(load) = loads.get_mut(&peer) {
					load.in_flight = load.in_flight.saturating_sub(1);
				}
				if let BlobResponse::Chunk { bytes, .. } = &response {
					traffic.uploaded += bytes.len() as u64;
				}
				let _ = swarm.behaviour_mut().blobs.send_response(channel, response);
			},
			Some((peer, channel, response)) = answered.recv() => {
				queries_in_flight = queries_in_flight.saturating_sub(1);
				if let Some(n) = queries_per_peer.get_mut(&peer) {
					*n = n.saturating_sub(1);
					if *n == 0 {
						queries_per_peer.remove(&peer);
					}
				}
				let _ = swarm.behaviour_mut().queries.send_response(channel, response);
			},
			event = swarm.select_next_some() => match event {
				SwarmEvent::Behaviour(BehaviourEvent::Blobs(event)) => on_blob_event(
					&mut swarm,
					event,
					&mut outbound,
					&mut traffic,
					&mut loads,
					&mut in_flight,
					&store,
					&served_tx,
				),
				SwarmEvent::Behaviour(BehaviourEvent::Queries(event)) => match event {
					request_response::Event::Message { peer, message, .. } => match message {
						request_response::Message::Request { request, channel, .. } => {
							let refusal = match &queries {
								None => Some(QueryResponse::Refused {
									reason: "this node serves no models".into(),
								}),
								Some(_) if !request.within_bounds() => Some(QueryResponse::Refused {
									reason: "request out of the protocol's bounds".into(),
								}),
								Some(_) if queries_in_flight >= MAX_QUERIES_IN_FLIGHT
									|| queries_per_peer.get(&peer).is_some_and(|n| *n >= MAX_QUERIES_PER_PEER) =>
								{
									Some(QueryResponse::Busy)
								}
								Some(_) => None,
							};
							if let Some(refusal) = refusal {
								let _ = swarm.behaviour_mut().queries.send_response(channel, refusal);
								continue;
							}
							let Some(handler) = queries.clone() else { continue };
							queries_in_flight += 1;
							*queries_per_peer.entry(peer).or_default() += 1;
							let answered_tx = answered_tx.clone();
							tokio::spawn(async move {
								let (reply, receive) = oneshot::channel();
								let response = match handler.send(InboundQuery { peer, request, reply }).await {
									Ok(()) => receive.await.unwrap_or(QueryResponse::Busy),
									Err(_) => QueryResponse::Busy,
								};
								let _ = answered_tx.send((peer, channel, response)).await;
							});
						}
						request_response::Message::Response { request_id, response } => {
							if let Some(reply) = outbound.queries.remove(&request_id) {
								let _ = reply.send(Ok(response));
							}
						}
					},
					request_response::Event::OutboundFailure { request_id, error, .. } => {
						if let Some(reply) = outbound.queries.remove(&request_id) {
							let _ = reply.send(Err(anyhow!("query failed: {error}")));
						}
					}
					_ => {}
				},
				_ => {}
			},
		}
	}
}

/// Handles an event of the blob protocol: serves inbound chunk requests (within each
/// requester's allowance) and hands responses to the requests this node sent.
#[allow(clippy::too_many_arguments)]
fn on_blob_event(
	swarm: &mut Swarm<Behaviour>,
	event: request_response::Event<BlobRequest, BlobResponse>,
	outbound: &mut Outbound,
	traffic: &mut Traffic,
	loads: &mut HashMap<PeerId, PeerLoad>,
	in_flight: &mut usize,
	store: &BlobStore,
	served_tx: &mpsc::Sender<Served>,
) {
	match event {
		request_response::Event::Message { peer, message, .. } => match message {
			request_response::Message::Request { request, channel, .. } => {
				let now = Instant::now();
				if loads.len() > 4096 {
					loads.retain(|_, load| load.in_flight > 0);
				}
				let admitted =
					*in_flight < MAX_IN_FLIGHT && loads.entry(peer).or_default().admit(now);
				if !admitted {
					let _ = swarm.behaviour_mut().blobs.send_response(channel, BlobResponse::Busy);
					return;
				}
				*in_flight += 1;
				let (store, served_tx) = (store.clone(), served_tx.clone());
				tokio::spawn(async move {
					let key = request.key;
					let response = tokio::task::spawn_blocking(move || {
						store.read_chunk(&request.key, request.offset)
					})
					.await
					.map_err(|e| anyhow!("{e}"))
					.and_then(|read| read)
					.unwrap_or_else(|e| {
						tracing::warn!(?key, "cannot serve blob: {e:#}");
						BlobResponse::NotFound
					});
					let _ = served_tx.send((peer, channel, response)).await;
				});
			},
			request_response::Message::Response { request_id, response } => {
				if let BlobResponse::Chunk { bytes, .. } = &response {
					traffic.downloaded += bytes.len() as u64;
				}
				if let Some(reply) = outbound.blobs.remove(&request_id) {
					let _ = reply.send(Ok(response));
				}
			},
		},
		request_response::Event::OutboundFailure { request_id, error, .. } => {
			if let Some(reply) = outbound.blobs.remove(&request_id) {
				let _ = reply.send(Err(anyhow!("request failed: {error}")));
			}
		},
		_ => {},
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	async fn node(dir: &Path, listen: bool) -> Network {
		let store = BlobStore::open(dir).unwrap();
		let addr = listen.then(|| "/ip4/127.0.0.1/tcp/0".parse().unwrap());
		Network::start(identity::Keypair::generate_ed25519(), addr, store).await.unwrap()
	}

	const LIMIT: u64 = 64 << 20;

	fn peer_of(network: &Network) -> Peer {
		Peer { id: network.peer_id(), addr: network.listen_addr().unwrap().clone() }
	}

	#[tokio::test]
	async fn blobs_are_fetched_in_chunks_resumed_and_verified() {
		let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
		let server = node(dirs[0].path(), true).await;
		let client = node(dirs[1].path(), false).await;
		let peers = [peer_of(&server)];

		// Two and a half chunks; the client already holds the first chunk from an earlier try.
		let blob: Vec<u8> = (0..(5 * CHUNK_SIZE / 2)).map(|i| (i % 251) as u8).collect();
		let hash = server.store().put_blob(&blob).unwrap();
		let key = BlobKey::Blob(hash);
		std::fs::write(client.store().partial_path(&key), &blob[..CHUNK_SIZE as usize]).unwrap();
		let fetched = client.fetch(key, LIMIT, &peers, |_| Ok(())).await.unwrap();
		assert_eq!(fetched, blob);
		assert!(client.store().contains(&key));
		let traffic = client.traffic().await;
		assert_eq!(traffic.downloaded, blob.len() as u64 - CHUNK_SIZE);
		assert!(!client.store().partial_path(&key).exists());

		// A peer serving other bytes under a hash: rejected, nothing kept.
		let liar_key = BlobKey::Blob(Digest::of(&[b"the real content"]));
		server.store().put(&liar_key, b"something else").unwrap();
		let error = client.fetch(liar_key, LIMIT, &peers, |_| Ok(())).await.unwrap_err();
		assert!(format!("{error:#}").contains("hash mismatch"), "{error:#}");
		assert!(!client.store().contains(&liar_key));

		// The caller's check applies to keys that are not hashes.
		let commitment = BlobKey::Commitment(Digest([7; 32]));
		server.store().put(&commitment, b"{}").unwrap();
		let rejected = client.fetch(commitment, LIMIT, &peers, |_| bail!("not a commitment")).await;
		assert!(rejected.is_err());
		assert!(!client.store().contains(&commitment), "a rejected copy is dropped, to ask again");

		// A plain blob the caller did not expect stays: its hash names exactly these bytes, and
		// whoever named it to this node must not be able to delete what the node serves.
		let rejected = client.fetch(key, LIMIT, &peers, |_| bail!("not a tokenizer")).await;
		assert!(rejected.is_err());
		assert_eq!(client.store().get(&key).unwrap().as_deref(), Some(&blob[..]));
		let too_small = client.fetch(key, 16, &peers, |_| Ok(())).await.unwrap_err();
		assert!(format!("{too_small:#}").contains("more than 16"), "{too_small:#}");
		// A stored copy whose bytes no longer match its hash is downloaded again.
		std::fs::write(client.store().path(&key), b"bit rot").unwrap();
		assert_eq!(client.fetch(key, LIMIT, &peers, |_| Ok(())).await.unwrap(), blob);

		// A blob nobody has.
		let missing = BlobKey::Blob(Digest([9; 32]));
		let error = client.fetch(missing, LIMIT, &peers, |_| Ok(())).await.unwrap_err();
		assert!(format!("{error:#}").contains("not found"), "{error:#}");
	}

	#[tokio::test]
	async fn fetches_of_one_blob_at_once_download_it_once_and_get_it_whole() {
		let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
		let server = node(dirs[0].path(), true).await;
		let client = node(dirs[1].path(), false).await;
		let peers = [peer_of(&server)];
		let blob: Vec<u8> = (0..(7 * CHUNK_SIZE / 2)).map(|i| (i % 241) as u8).collect();
		let key = BlobKey::Blob(server.store().put_blob(&blob).unwrap());
		// Without the per-key lock both would append chunks to one partial file.
		let fetches = (0..4).map(|_| client.fetch(key, LIMIT, &peers, |_| Ok(())));
		for fetched in futures::future::join_all(fetches).await {
			assert_eq!(fetched.unwrap(), blob);
		}
		assert_eq!(client.traffic().await.downloaded, blob.len() as u64, "downloaded once");
		assert!(client.downloads.0.lock().unwrap().is_empty(), "no lock left behind");
	}

	#[tokio::test]
	async fn a_download_given_up_while_waiting_for_its_turn_leaves_no_lock_behind() {
		let downloads = Downloads::default();
		let key = BlobKey::Blob(Digest([5; 32]));
		let running = downloads.start(key).await;
		let waiting = downloads.start(key);
		let given_up = tokio::time::timeout(Duration::from_millis(50), waiting).await;
		assert!(given_up.is_err(), "the second download waits for the first");
		assert_eq!(downloads.0.lock().unwrap()[&key].1, 1, "the waiter gave its count back");
		drop(running);
		assert!(downloads.0.lock().unwrap().is_empty());
		// The next download of the key starts at once.
		let again = tokio::time::timeout(Duration::from_millis(50), downloads.start(key)).await;
		assert!(again.is_ok());
	}

	#[tokio::test]
	async fn a_partial_download_poisoned_by_a_liar_does_not_cost_the_honest_holder() {
		let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
		let server = node(dirs[0].path(), true).await;
		let client = node(dirs[1].path(), false).await;
		let blob: Vec<u8> = (0..(3 * CHUNK_SIZE / 2)).map(|i| (i % 249) as u8).collect();
		let key = BlobKey::Blob(server.store().put_blob(&blob).unwrap());
		// What a lying peer left before it stopped: a first chunk of other bytes.
		std::fs::write(client.store().partial_path(&key), vec![0u8; CHUNK_SIZE as usize]).unwrap();
		let fetched = client.fetch(key, LIMIT, &[peer_of(&server)], |_| Ok(())).await.unwrap();
		assert_eq!(fetched, blob);
	}

	#[tokio::test]
	async fn an_unreachable_peer_is_skipped_for_the_next() {
		let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
		let server = node(dirs[0].path(), true).await;
		let client = node(dirs[1].path(), false).await;
		let hash = server.store().put_blob(b"model").unwrap();
		let gone = Peer {
			id: identity::Keypair::generate_ed25519().public().to_peer_id(),
			addr: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
		};
		let fetched = client
			.fetch(BlobKey::Blob(hash), LIMIT, &[gone, peer_of(&server)], |_| Ok(()))
			.await
			.unwrap();
		assert_eq!(fetched, b"model");
	}

	/// A peer that answers each chunk request, after the delay `answer` gives for its offset,
	/// with the response it gives.
	async fn scripted_holder(
		answer: impl Fn(u64) -> (Duration, BlobResponse) + Send + 'static,
	) -> Peer {
		let identity = identity::Keypair::generate_ed25519();
		let id = identity.public().to_peer_id();
		let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
			.with_tokio()
			.with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
			.unwrap()
			.with_behaviour(|_| {
				BlobBehaviour::new(
					[(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
					request_response::Config::default(),
				)
			})
			.unwrap()
			.with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
			.build();
		swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
		let addr = loop {
			if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
				break address;
			}
		};
		tokio::spawn(async move {
			let (answered, mut to_send) = mpsc::unbounded_channel();
			loop {
				tokio::select! {
					event = swarm.select_next_some() => {
						if let SwarmEvent::Behaviour(request_response::Event::Message {
							message: request_response::Message::Request { request, channel, .. },
							..
						}) = event
						{
							let (delay, response) = answer(request.offset);
							let answered = answered.clone();
							tokio::spawn(async move {
								tokio::time::sleep(delay).await;
								let _ = answered.send((channel, response));
							});
						}
					},
					Some((channel, response)) = to_send.recv() => {
						let _ = swarm.behaviour_mut().send_response(channel, response);
					},
				}
			}
		});
		Peer { id, addr }
	}

	/// A peer that answers every request with a chunk of a blob it says is 1 TiB.
	async fn liar() -> Peer {
		scripted_holder(|_| {
			let bytes = vec![0u8; CHUNK_SIZE as usize];
			(Duration::ZERO, BlobResponse::Chunk { total: 1 << 40, bytes })
		})
		.await
	}

	/// A holder of `blob` that serves the chunk at each offset after `delay(offset)`.
	async fn holder_of(blob: &[u8], delay: impl Fn(u64) -> Duration + Send + 'static) -> Peer {
		let blob = blob.to_vec();
		scripted_holder(move |offset| {
			let end = (offset + CHUNK_SIZE).min(blob.len() as u64);
			let bytes = blob[offset as usize..end as usize].to_vec();
			(delay(offset), BlobResponse::Chunk { total: blob.len() as u64, bytes })
		})
		.await
	}

	#[tokio::test]
	async fn a_holder_dripping_its_chunks_hands_the_download_to_the_others() {
		let dir = tempfile::tempdir().unwrap();
		let client = node(dir.path(), false).await;
		let blob: Vec<u8> = (0..4 * CHUNK_SIZE).map(|i| (i % 239) as u8).collect();
		let key = BlobKey::Blob(Digest::of(&[&blob]));
		// The dripper wins the race for the first chunk, then serves each later one just
		// inside the request timeout (27 s for the blob if it kept the download), and answers
		// at once an offset asked again, so as to win the race that hands the download on.
		let asked = std::sync::Mutex::new(std::collections::HashSet::new());
		let dripper = holder_of(&blob, move |offset| {
			let again = !asked.lock().unwrap().insert(offset);
			match offset {
				0 => Duration::ZERO,
				_ if again => Duration::ZERO,
				_ => REQUEST_TIMEOUT - Duration::from_secs(1),
			}
		})
		.await;
		// An honest holder on a slower link than the dripper's instant answers.
		let honest = holder_of(&blob, |offset| match offset {
			0 => Duration::from_millis(500),
			_ => Duration::from_millis(300),
		})
		.await;
		let started = Instant::now();
		let fetched = client.fetch(key, LIMIT, &[dripper, honest], |_| Ok(())).await.unwrap();
		assert_eq!(fetched, blob);
		let took = started.elapsed();
		assert!(took < REQUEST_TIMEOUT, "took {took:?}: the dripper kept the download");
	}

	#[tokio::test]
	async fn a_slow_holder_that_is_the_only_one_is_waited_for() {
		let dir = tempfile::tempdir().unwrap();
		let client = node(dir.path(), false).await;
		let blob: Vec<u8> = (0..2 * CHUNK_SIZE).map(|i| (i % 233) as u8).collect();
		let key = BlobKey::Blob(Digest::of(&[&blob]));
		let slow = holder_of(&blob, |offset| match offset {
			0 => Duration::ZERO,
			_ => SLOW_CHUNK + Duration::from_secs(1),
		})
		.await;
		assert_eq!(client.fetch(key, LIMIT, &[slow], |_| Ok(())).await.unwrap(), blob);
	}

	#[tokio::test]
	async fn a_peer_announcing_a_terabyte_is_refused_before_anything_is_stored() {
		let dir = tempfile::tempdir().unwrap();
		let client = node(dir.path(), false).await;
		let key = BlobKey::Blob(Digest([3; 32]));
		let error = client.fetch(key, LIMIT, &[liar().await], |_| Ok(())).await.unwrap_err();
		assert!(format!("{error:#}").contains("more than the"), "{error:#}");
		assert!(!client.store().partial_path(&key).exists());
		assert!(!client.store().contains(&key));
		assert_eq!(client.traffic().await.downloaded, CHUNK_SIZE, "one chunk, then refused");
	}

	#[tokio::test]
	async fn a_flooding_peer_is_answered_busy_and_others_are_still_served() {
		let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
		let server = node(dirs[0].path(), true).await;
		let hash = server.store().put_blob(&vec![7u8; 4096]).unwrap();
		let flooder = node(dirs[1].path(), false).await;
		let target = peer_of(&server);
		let requests = (0..300)
			.map(|_| flooder.request(&target, BlobRequest { key: BlobKey::Blob(hash), offset: 0 }));
		let started = Instant::now();
		let responses = futures::future::join_all(requests).await;
		let seconds = started.elapsed().as_secs() as usize + 1;
		let busy = responses.iter().filter(|r| matches!(r, Ok(BlobResponse::Busy))).count();
		let served =
			responses.iter().filter(|r| matches!(r, Ok(BlobResponse::Chunk { .. }))).count();
		// The rest were refused before reaching the store: answered `Busy` here, or dropped by
		// libp2p's own limit on concurrent inbound streams.
		assert!(busy > 0 && served < 300, "a flood is refused in part ({busy} busy)");
		// Never more than the per-second allowance in any window of a second.
		assert!(
			served <= MAX_REQUESTS_PER_SECOND as usize * (seconds + 1),
			"served {served} in {seconds} s"
		);
		// Another requester is served meanwhile.
		let other_dir = tempfile::tempdir().unwrap();
		let other = node(other_dir.path(), false).await;
		let fetched = other.fetch(BlobKey::Blob(hash), LIMIT, &[target], |_| Ok(())).await;
		assert_eq!(fetched.unwrap().len(), 4096);
	}

	#[tokio::test]
	async fn a_download_beyond_the_per_second_allowance_is_throttled_not_cut_off() {
		let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
		let server = node(dirs[0].path(), true).await;
		let client = node(dirs[1].path(), false).await;
		let chunks = u64::from(MAX_REQUESTS_PER_SECOND) + 6;
		let blob: Vec<u8> = (0..chunks * CHUNK_SIZE).map(|i| (i % 253) as u8).collect();
		let key = BlobKey::Blob(server.store().put_blob(&blob).unwrap());
		let path =
			client.fetch_to_store(key, blob.len() as u64, &[peer_of(&server)]).await.unwrap();
		assert_eq!(std::fs::metadata(path).unwrap().len(), blob.len() as u64);
	}

	#[test]
	fn only_full_chunks_within_the_limit_are_accepted() {
		let chunk = |total: u64, len: usize| BlobResponse::Chunk { total, bytes: vec![0; len] };
		let full = CHUNK_SIZE as usize;
		assert!(accept_chunk(chunk(3 * CHUNK_SIZE, full), 0, LIMIT).is_ok());
		assert!(accept_chunk(chunk(CHUNK_SIZE + 5, 5), CHUNK_SIZE, LIMIT).is_ok(), "the rest");
		assert!(accept_chunk(chunk(0, 0), 0, LIMIT).is_ok(), "an empty blob");
		for (response, offset) in [
			(chunk(3 * CHUNK_SIZE, 1), 0),          // a drip
			(chunk(3 * CHUNK_SIZE, full + 1), 0),   // more than a chunk
			(chunk(CHUNK_SIZE + 5, 6), CHUNK_SIZE), // more than the rest
			(chunk(10, 0), 20),                     // behind what was received
			(chunk(LIMIT + 1, full), 0),            // beyond the limit
		] {
			assert!(accept_chunk(response, offset, LIMIT).is_err());
		}
	}

	#[tokio::test]
	async fn queries_reach_the_handler_and_nodes_without_one_refuse_them() {
		let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
		let (handler, mut inbound) = mpsc::channel::<InboundQuery>(8);
		let store = BlobStore::open(dirs[0].path()).unwrap();
		let provider = Network::start_with_queries(
			identity::Keypair::generate_ed25519(),
			Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
			store,
			Some(handler),
		)
		.await
		.unwrap();
		tokio::spawn(async move {
			while let Some(query) = inbound.recv().await {
				let QueryRequest::Predict { mut input, .. } = query.request else { continue };
				input.reverse();
				let _ = query.reply.send(QueryResponse::Answer { output: input });
			}
		});
		let client = node(dirs[1].path(), true).await;
		let predict =
			|input: Vec<u8>| QueryRequest::Predict { channel: 1, index: 1, input, receipt: None };
		let answer = client.query(&peer_of(&provider), predict(vec![1, 2, 3])).await.unwrap();
		assert_eq!(answer, QueryResponse::Answer { output: vec![3, 2, 1] });

		// Out of bounds: refused before the handler sees it.
		let huge = predict(vec![0; query::MAX_QUERY_INPUT + 1]);
		let refused = client.query(&peer_of(&provider), huge).await.unwrap();
		assert!(matches!(refused, QueryResponse::Refused { .. }), "{refused:?}");
		let evidence = QueryRequest::Evidence { channel: 1, first: 1, last: 1 << 40, request: 2 };
		let refused = client.query(&peer_of(&provider), evidence).await.unwrap();
		assert!(matches!(refused, QueryResponse::Refused { .. }), "{refused:?}");

		// A node without a handler serves no models.
		let refused = provider.query(&peer_of(&client), predict(vec![1])).await.unwrap();
		assert!(matches!(refused, QueryResponse::Refused { .. }), "{refused:?}");
	}

	/// A peer that floods a provider with queries it does not answer yet gets `Busy` beyond its
	/// own allowance, and another peer's query still reaches the handler.
	#[tokio::test]
	async fn one_peer_cannot_take_every_query_slot() {
		let dirs = [
			tempfile::tempdir().unwrap(),
			tempfile::tempdir().unwrap(),
			tempfile::tempdir().unwrap(),
		];
		let (handler, mut inbound) = mpsc::channel::<InboundQuery>(64);
		let store = BlobStore::open(dirs[0].path()).unwrap();
		let provider = Network::start_with_queries(
			identity::Keypair::generate_ed25519(),
			Some("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
			store,
			Some(handler),
		)
		.await
		.unwrap();
		let flooder = node(dirs[1].path(), true).await;
		let honest = node(dirs[2].path(), true).await;
		let (flooder_peer, honest_peer) = (flooder.peer_id(), honest.peer_id());
		// The handler holds the flooder's queries (a slow model) and answers the others.
		let held = tokio::spawn(async move {
			let mut held = Vec::new();
			while let Some(query) = inbound.recv().await {
				if query.peer == flooder_peer {
					held.push(query);
				} else {
					assert_eq!(query.peer, honest_peer);
					let _ = query.reply.send(QueryResponse::Accepted);
					return held;
				}
			}
			held
		});
		let predict =
			|| QueryRequest::Predict { channel: 1, index: 1, input: vec![1], receipt: None };
		let target = peer_of(&provider);
		// Connected first (a request out of bounds, refused before the handler): a dozen dials
		// at once to a peer not connected yet race each other.
		let connect = QueryRequest::Predict {
			channel: 1,
			index: 1,
			input: vec![0; query::MAX_QUERY_INPUT + 1],
			receipt: None,
		};
		let refused = flooder.query(&target, connect).await.unwrap();
		assert!(matches!(refused, QueryResponse::Refused { .. }), "{refused:?}");
		let (results, mut result) = mpsc::channel(MAX_QUERIES_PER_PEER + 4);
		for _ in 0..MAX_QUERIES_PER_PEER + 4 {
			let (flooder, target, results) = (flooder.clone(), target.clone(), results.clone());
			tokio::spawn(async move {
				let _ = results.send(flooder.query(&target, predict()).await).await;
			});
		}
		// The queries beyond the allowance come back `Busy` at once; the others wait.
		for _ in 0..4 {
			let response = tokio::time::timeout(Duration::from_secs(10), result.recv()).await;
			assert!(matches!(response, Ok(Some(Ok(QueryResponse::Busy)))), "{response:?}");
		}
		let answer = honest.query(&target, predict()).await.unwrap();
		assert_eq!(answer, QueryResponse::Accepted);
		assert_eq!(held.await.unwrap().len(), MAX_QUERIES_PER_PEER);
	}

	mod parsers {
		use super::*;
		use proptest::prelude::*;

		proptest! {
			#![proptest_config(ProptestConfig::with_cases(2000))]

			/// Whatever a peer answers, a chunk is accepted only within the announced size and
			/// the limit, and never panics.
			#[test]
			fn accept_chunk_never_exceeds_its_bounds(
				total in any::<u64>(),
				len in 0usize..4096,
				offset in any::<u64>(),
				limit in any::<u64>(),
			) {
				let response = BlobResponse::Chunk { total, bytes: vec![0; len] };
				if let Ok((announced, bytes)) = accept_chunk(response, offset, limit) {
					prop_assert!(announced <= limit);
					prop_assert!(offset <= announced);
					prop_assert_eq!(bytes.len() as u64, CHUNK_SIZE.min(announced - offset));
				}
			}
		}
	}
}
