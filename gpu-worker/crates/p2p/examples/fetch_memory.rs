//! Peak memory of a download: two nodes in one process, one serving a blob of `--mb` MB (100 by
//! default), the other fetching it, either into the store without a copy in memory
//! (`to-store`, how a validator fetches checkpoints) or into memory (`in-memory`, how a caller
//! that decodes the blob fetches it). Prints the process's peak resident set size (VmHWM)
//! before and after the download.
//!
//! `cargo run --release -p agora-p2p --example fetch_memory -- to-store 100`

use std::io::Write;

use agora_core::Hasher;
use agora_p2p::{identity, BlobKey, BlobStore, Network, Peer};

fn peak_rss_mib() -> f64 {
	let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
	let kib: f64 = status
		.lines()
		.find(|line| line.starts_with("VmHWM:"))
		.and_then(|line| line.split_whitespace().nth(1))
		.and_then(|value| value.parse().ok())
		.unwrap_or(0.0);
	kib / 1024.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
	let mut args = std::env::args().skip(1);
	let mode = args.next().unwrap_or_else(|| "to-store".into());
	let megabytes: u64 = args.next().map(|m| m.parse()).transpose()?.unwrap_or(100);
	let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
	let server_store = BlobStore::open(dirs[0].path())?;

	// The served blob, written and hashed a mebibyte at a time.
	let mut hasher = Hasher::new();
	let partial = dirs[0].path().join("blob.tmp");
	let mut file = std::fs::File::create(&partial)?;
	for piece in 0..megabytes {
		let bytes: Vec<u8> = (0..1u32 << 20).map(|i| (i as u64 * 31 + piece) as u8).collect();
		hasher.update(&bytes);
		file.write_all(&bytes)?;
	}
	drop(file);
	let key = BlobKey::Blob(hasher.finish());
	std::fs::rename(&partial, server_store.path(&key))?;

	let server = Network::start(
		identity::Keypair::generate_ed25519(),
		Some("/ip4/127.0.0.1/tcp/0".parse()?),
		server_store,
	)
	.await?;
	let client = Network::start(
		identity::Keypair::generate_ed25519(),
		None,
		BlobStore::open(dirs[1].path())?,
	)
	.await?;
	let peers =
		[Peer { id: server.peer_id(), addr: server.listen_addr().expect("listening").clone() }];
	let before = peak_rss_mib();
	let started = std::time::Instant::now();
	let limit = (megabytes + 1) << 20;
	match mode.as_str() {
		"to-store" => {
			client.fetch_to_store(key, limit, &peers).await?;
		},
		"in-memory" => {
			let bytes = client.fetch(key, limit, &peers, |_| Ok(())).await?;
			assert_eq!(bytes.len() as u64, megabytes << 20);
		},
		other => anyhow::bail!("unknown mode `{other}` (to-store, in-memory)"),
	}
	println!(
		"{mode}: {megabytes} MB in {:.1} s; peak RSS {before:.0} MiB before the download, {:.0} MiB after",
		started.elapsed().as_secs_f64(),
		peak_rss_mib()
	);
	Ok(())
}
