//! `bench serving`: one provider answering one client over libp2p on loopback, as
//! `agora-worker serve` and `infer` do (signed receipts, transcript, evidence log, the model),
//! with the chain in memory: request latency against the model's own compute time, and
//! requests served per second, for the digits MLP and the character transformer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use subxt_signer::sr25519;
use tch::Device;
use tokio::sync::mpsc;

use agora_inference::answer::{answer, inputs_of};
use agora_inference::client::{percentile, Session};
use agora_inference::market::ChannelView;
use agora_inference::memory::{MemoryMarket, World};
use agora_inference::provider::{Provider, ProviderConfig};
use agora_ml::data::Dataset;
use agora_ml::models::{Architecture, Model};
use agora_p2p::{identity, BlobStore, Network, Peer};

/// Requests per model (after [`WARMUP`] unmeasured ones).
const REQUESTS: usize = 500;
const WARMUP: usize = 20;
const PRICE: u128 = 10_000_000_000;

pub fn serving(
	device: Device,
	digits: &Dataset,
	text: impl Fn(usize) -> Result<Dataset>,
) -> Result<()> {
	let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
	let mut rows = Vec::new();
	for arch_id in ["mlp-digits", "transformer-char"] {
		let arch = Architecture::from_id(arch_id)?;
		let data = match arch.language_shape() {
			Some((_, context)) => text(context)?,
			None => digits.clone(),
		};
		let indices: Vec<u32> =
			(0..(REQUESTS + WARMUP) as u32).map(|i| i % data.len() as u32).collect();
		let inputs: Vec<Vec<u8>> =
			inputs_of(&data, &indices)?.into_iter().map(|(x, _)| x).collect();
		let model = Model::new(&arch, &arch.initial_params(1)?, device)?;
		let compute = compute_times(&model, &inputs)?;
		let model = Model::new(&arch, &arch.initial_params(1)?, device)?;
		let (latencies, elapsed) = runtime.block_on(session(model, &inputs, device))?;
		rows.push(vec![
			arch_id.to_string(),
			format!("{:.2}", ms(percentile(&compute, 50))),
			format!("{:.2}", ms(percentile(&latencies, 50))),
			format!("{:.2}", ms(percentile(&latencies, 95))),
			format!("{:.0}", REQUESTS as f64 / elapsed.as_secs_f64()),
		]);
	}
	crate::bench::table(
		&format!("Serving over libp2p on loopback ({REQUESTS} sequential requests, one client)"),
		&["model", "compute p50 (ms)", "latency p50 (ms)", "latency p95 (ms)", "requests/s"],
		&rows,
	);
	Ok(())
}

fn ms(d: Duration) -> f64 {
	d.as_secs_f64() * 1e3
}

/// The model's own time per answer (what the provider spends on each request).
fn compute_times(model: &Model, inputs: &[Vec<u8>]) -> Result<Vec<Duration>> {
	let mut times = Vec::with_capacity(REQUESTS);
	for (i, input) in inputs.iter().enumerate() {
		let started = Instant::now();
		answer(model, input)?;
		if i >= WARMUP {
			times.push(started.elapsed());
		}
	}
	Ok(times)
}

/// One client's session of sequential requests; their latencies and the measured time.
async fn session(
	model: Model,
	inputs: &[Vec<u8>],
	device: Device,
) -> Result<(Vec<Duration>, Duration)> {
	let dir = crate::bench::tempfile_dir()?;
	let listen = Some("/ip4/127.0.0.1/tcp/0".parse()?);
	let (queries_tx, queries) = mpsc::channel(crate::market_commands::QUERY_QUEUE);
	let provider_net = Network::start_with_queries(
		identity::Keypair::generate_ed25519(),
		listen,
		BlobStore::open(&dir.join("provider"))?,
		Some(queries_tx),
	)
	.await?;
	let client_net = Network::start(
		identity::Keypair::generate_ed25519(),
		None,
		BlobStore::open(&dir.join("client"))?,
	)
	.await?;
	let client = sr25519::dev::alice();
	let provider_account = sr25519::dev::dave().public_key().to_account_id();
	let genesis = [7; 32];
	let mut world = World { genesis, now: 1, dispute_window: 600, ..Default::default() };
	world.open(ChannelView {
		id: 1,
		client: client.public_key().to_account_id(),
		provider: provider_account,
		model: 1,
		version: 1,
		price: PRICE,
		balance: PRICE * inputs.len() as u128,
		pending_amount: 0,
		settled_requests: 0,
		settled_amount: 0,
		closes_at: None,
	});
	let chain = MemoryMarket { me: provider_account, world: Arc::new(Mutex::new(world)) };
	let config = ProviderConfig {
		state_dir: dir.join("serving"),
		model: 1,
		version: 1,
		price: PRICE,
		settle_every: 100,
		settle_after: Duration::from_secs(60),
		device,
	};
	let provider = Provider::with_model(chain, model, config)?;
	let peer = Peer {
		id: provider_net.peer_id(),
		addr: provider_net.listen_addr().ok_or_else(|| anyhow!("no listen address"))?.clone(),
	};
	let requests = async {
		let mut session = Session::new(&client_net, peer, &client, genesis, 1, PRICE);
		let mut latencies = Vec::with_capacity(REQUESTS);
		let mut started = Instant::now();
		for (i, input) in inputs.iter().enumerate() {
			if i == WARMUP {
				started = Instant::now();
			}
			let answered = session.predict(input.clone()).await?;
			if i >= WARMUP {
				latencies.push(answered.latency);
			}
		}
		Ok::<_, anyhow::Error>((latencies, started.elapsed()))
	};
	let result = tokio::select! {
		result = provider.run(queries) => Err(anyhow!("the provider stopped: {result:?}")),
		result = requests => result,
	};
	let _ = std::fs::remove_dir_all(&dir);
	result
}
