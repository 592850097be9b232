//! Fault injection for tests and demonstrations (the `cheats` feature): a network whose
//! downloads fail now and then, as a real one's do, so that the end-to-end job shows that an
//! honest participant behind a flaky network is neither slashed nor unpaid.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Result};

use agora_p2p::{BlobKey, BlobNetwork, BlobStore, Peer, PeerId, Traffic};

/// A [`BlobNetwork`] whose first download of every blob fails: each blob this node does not
/// hold yet is refused once with a transient error, then fetched normally.
pub struct FlakyNetwork<N> {
	inner: N,
	failed_once: Mutex<HashSet<BlobKey>>,
}

impl<N: BlobNetwork> FlakyNetwork<N> {
	pub fn new(inner: N) -> Self {
		FlakyNetwork { inner, failed_once: Mutex::new(HashSet::new()) }
	}

	/// Fails the first download of `key`; what is already stored needs no download.
	fn inject(&self, key: BlobKey) -> Result<()> {
		if self.inner.store().contains(&key) {
			return Ok(());
		}
		let mut failed = self.failed_once.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
		if failed.insert(key) {
			bail!("{key:?}: connection reset by peer (injected transient failure)");
		}
		Ok(())
	}
}

impl<N: BlobNetwork> BlobNetwork for FlakyNetwork<N> {
	fn peer_id(&self) -> PeerId {
		self.inner.peer_id()
	}

	fn store(&self) -> &BlobStore {
		self.inner.store()
	}

	async fn fetch(
		&self,
		key: BlobKey,
		limit: u64,
		peers: &[Peer],
		verify: impl Fn(&[u8]) -> Result<()>,
	) -> Result<Vec<u8>> {
		self.inject(key)?;
		self.inner.fetch(key, limit, peers, verify).await
	}

	async fn fetch_to_store(&self, key: BlobKey, limit: u64, peers: &[Peer]) -> Result<PathBuf> {
		self.inject(key)?;
		self.inner.fetch_to_store(key, limit, peers).await
	}

	async fn traffic(&self) -> Traffic {
		self.inner.traffic().await
	}
}
