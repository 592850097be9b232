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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
pub use libp2p::{identity, Multiaddr, PeerId};
use libp2p::{noise, tcp, yamux, StreamProtocol, Swarm};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use agora_core::Digest;

/// Largest chunk in one response (the CBOR codec accepts responses up to 10 MiB).
pub const CHUNK_SIZE: u64 = 1 << 20;
const PROTOCOL: &str = "/agora/blob/1";

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
	Traffic(oneshot::Sender<Traffic>),
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
	/// a verified download is added to the store.
	async fn fetch(
		&self,
		key: BlobKey,
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>>;
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
}

type Behaviour = request_response::cbor::Behaviour<BlobRequest, BlobResponse>;

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
	/// that only downloads does not listen).
	pub async fn start(
		identity: identity::Keypair,
		listen: Option<Multiaddr>,
		store: BlobStore,
	) -> Result<Self> {
		let peer_id = identity.public().to_peer_id();
		let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
			.with_tokio()
			.with_tcp(
				tcp::Config::default().nodelay(true),
				noise::Config::new,
				yamux::Config::default,
			)?
			.with_behaviour(|_| {
				Behaviour::new(
					[(StreamProtocol::new(PROTOCOL), ProtocolSupport::Full)],
					request_response::Config::default()
						.with_request_timeout(Duration::from_secs(30)),
				)
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
		tokio::spawn(run_swarm(swarm, receiver, store.clone()));
		Ok(Network { commands, store, peer_id, listen_addr })
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

	/// Returns the blob under `key`: from the local store, or downloaded from the first of
	/// `peers` that has it, in chunks, resuming a partial download, and accepted only if
	/// `verify` accepts the complete bytes (a plain blob is also checked against its hash).
	/// A verified download is added to the store, so this node serves it from then on.
	pub async fn fetch(
		&self,
		key: BlobKey,
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>> {
		let check = |bytes: &[u8]| -> Result<()> {
			if let BlobKey::Blob(hash) = key {
				let actual = Digest::of(&[bytes]);
				if actual != hash {
					bail!("blob hash mismatch: expected {hash}, received {actual}");
				}
			}
			verify(bytes)
		};
		if let Some(bytes) = self.store.get(&key)? {
			check(&bytes).with_context(|| format!("stored {key:?} is corrupt"))?;
			return Ok(bytes);
		}
		let partial = self.store.partial_path(&key);
		let mut failures = Vec::new();
		for peer in peers.iter().filter(|peer| peer.id != self.peer_id) {
			match self.download(&key, peer, &partial).await {
				Ok(bytes) => match check(&bytes) {
					Ok(()) => {
						self.store.put(&key, &bytes)?;
						let _ = std::fs::remove_file(&partial);
						return Ok(bytes);
					},
					Err(e) => {
						// A bad blob is discarded whole: a resumed download must not build
						// on bytes from a peer that lied.
						let _ = std::fs::remove_file(&partial);
						tracing::warn!(peer = %peer.id, ?key, "rejected blob: {e:#}");
						failures.push(format!("{}: {e:#}", peer.id));
					},
				},
				Err(e) => {
					tracing::debug!(peer = %peer.id, ?key, "fetch failed: {e:#}");
					failures.push(format!("{}: {e:#}", peer.id));
				},
			}
		}
		bail!("no peer provided {key:?} ({})", failures.join("; "))
	}

	async fn download(&self, key: &BlobKey, peer: &Peer, partial: &Path) -> Result<Vec<u8>> {
		let mut bytes = std::fs::read(partial).unwrap_or_default();
		// Each chunk is appended to the partial file (rewriting it whole at every chunk would
		// write a blob of n chunks n²/2 times).
		let mut partial_file = std::fs::OpenOptions::new()
			.create(true)
			.append(true)
			.open(partial)
			.with_context(|| format!("opening {}", partial.display()))?;
		loop {
			let offset = bytes.len() as u64;
			match self.request(peer, BlobRequest { key: *key, offset }).await? {
				BlobResponse::NotFound => bail!("not found"),
				BlobResponse::Chunk { total, bytes: chunk } => {
					if offset > total || (chunk.is_empty() && offset < total) {
						bail!("peer sent an inconsistent chunk");
					}
					if chunk.len() as u64 > total - offset {
						bail!("peer sent more than the blob's size");
					}
					bytes.extend_from_slice(&chunk);
					if bytes.len() as u64 == total {
						return Ok(bytes);
					}
					// Keep what arrived, so that a later attempt resumes from here.
					std::io::Write::write_all(&mut partial_file, &chunk)?;
				},
			}
		}
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
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>> {
		Network::fetch(self, key, peers, verify).await
	}

	async fn traffic(&self) -> Traffic {
		Network::traffic(self).await
	}
}

async fn run_swarm(
	mut swarm: Swarm<Behaviour>,
	mut commands: mpsc::Receiver<Command>,
	store: BlobStore,
) {
	let mut pending: HashMap<OutboundRequestId, oneshot::Sender<Result<BlobResponse>>> =
		HashMap::new();
	let mut traffic = Traffic::default();
	loop {
		tokio::select! {
			command = commands.recv() => match command {
				None => return,
				Some(Command::Traffic(reply)) => {
					let _ = reply.send(traffic);
				}
				Some(Command::Request { peer, request, reply }) => {
					swarm.add_peer_address(peer.id, peer.addr.clone());
					let id = swarm.behaviour_mut().send_request(&peer.id, request);
					pending.insert(id, reply);
				}
			},
			event = swarm.select_next_some() => match event {
				SwarmEvent::Behaviour(request_response::Event::Message { message, .. }) => match message {
					request_response::Message::Request { request, channel, .. } => {
						let response = store.read_chunk(&request.key, request.offset).unwrap_or_else(|e| {
							tracing::warn!(?request.key, "cannot serve blob: {e:#}");
							BlobResponse::NotFound
						});
						if let BlobResponse::Chunk { bytes, .. } = &response {
							traffic.uploaded += bytes.len() as u64;
						}
						let _ = swarm.behaviour_mut().send_response(channel, response);
					}
					request_response::Message::Response { request_id, response } => {
						if let BlobResponse::Chunk { bytes, .. } = &response {
							traffic.downloaded += bytes.len() as u64;
						}
						if let Some(reply) = pending.remove(&request_id) {
							let _ = reply.send(Ok(response));
						}
					}
				},
				SwarmEvent::Behaviour(request_response::Event::OutboundFailure { request_id, error, .. }) => {
					if let Some(reply) = pending.remove(&request_id) {
						let _ = reply.send(Err(anyhow!("request failed: {error}")));
					}
				}
				_ => {}
			},
		}
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
		let fetched = client.fetch(key, &peers, |_| Ok(())).await.unwrap();
		assert_eq!(fetched, blob);
		assert!(client.store().contains(&key));
		let traffic = client.traffic().await;
		assert_eq!(traffic.downloaded, blob.len() as u64 - CHUNK_SIZE);
		assert!(!client.store().partial_path(&key).exists());

		// A peer serving other bytes under a hash: rejected, nothing kept.
		let liar_key = BlobKey::Blob(Digest::of(&[b"the real content"]));
		server.store().put(&liar_key, b"something else").unwrap();
		let error = client.fetch(liar_key, &peers, |_| Ok(())).await.unwrap_err();
		assert!(format!("{error:#}").contains("hash mismatch"), "{error:#}");
		assert!(!client.store().contains(&liar_key));

		// The caller's check applies to keys that are not hashes.
		let commitment = BlobKey::Commitment(Digest([7; 32]));
		server.store().put(&commitment, b"{}").unwrap();
		let rejected = client.fetch(commitment, &peers, |_| bail!("not a commitment")).await;
		assert!(rejected.is_err());

		// A blob nobody has.
		let missing = BlobKey::Blob(Digest([9; 32]));
		let error = client.fetch(missing, &peers, |_| Ok(())).await.unwrap_err();
		assert!(format!("{error:#}").contains("not found"), "{error:#}");
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
		let fetched =
			client.fetch(BlobKey::Blob(hash), &[gone, peer_of(&server)], |_| Ok(())).await.unwrap();
		assert_eq!(fetched, b"model");
	}
}
