//! Subcommands that talk to the chain and to peers: `worker`, `validator`, `job`, `data`,
//! `models`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use tch::Device;

use agora_chain::{self as chain, load_signer, Chain, AGR};
use agora_daemon::client::{self, JobConfig};
use agora_daemon::daemon::{
	load_holdout, load_prepared, Conduct, Daemon, DaemonConfig, Role, FETCH_BUDGET_PER_PASS,
};
use agora_p2p::{load_or_create_identity, BlobStore, Network};
use tokio::sync::mpsc;

use crate::market_commands::{market_duties, ServeTerms, QUERY_QUEUE};

#[derive(Args, Clone)]
pub struct ChainArgs {
	/// The node's RPC endpoint.
	#[arg(long, default_value = "ws://127.0.0.1:9944", env = "AGORA_NODE_URL")]
	node: String,
	/// Secret URI of the account (a dev seed such as `//Alice`, or a mnemonic). Prefer
	/// --key-file outside development chains.
	#[arg(long, env = "AGORA_SURI")]
	suri: Option<String>,
	/// File whose first line is the account's secret URI.
	#[arg(long)]
	key_file: Option<PathBuf>,
}

impl ChainArgs {
	pub async fn connect(&self) -> Result<Chain> {
		let signer = load_signer(self.suri.as_deref(), self.key_file.as_deref())?;
		Chain::connect(&self.node, signer).await
	}
}

#[derive(Args)]
pub struct DaemonArgs {
	#[command(flatten)]
	chain: ChainArgs,
	/// State directory: p2p identity, blob store, submitted updates, verdicts.
	#[arg(long, env = "AGORA_STATE_DIR")]
	state_dir: PathBuf,
	/// TCP port of the p2p node (0: any free port; the chosen one is registered). The container
	/// image's health check reads the same variable.
	#[arg(long, default_value_t = 30400, env = "AGORA_P2P_PORT")]
	p2p_port: u16,
	/// IP address to listen on.
	#[arg(long, default_value = "127.0.0.1", env = "AGORA_P2P_IP")]
	p2p_ip: std::net::IpAddr,
	/// The multiaddr registered on chain, where peers reach this node (default: the listen
	/// address; set it behind NAT or when listening on 0.0.0.0).
	#[arg(long)]
	public_addr: Option<agora_p2p::Multiaddr>,
	/// Stake to bond at registration, in AGR (at least the chain's minimum); the stake is
	/// topped back up to it after a slash.
	#[arg(long)]
	stake: Option<u64>,
	/// Device memory to declare at registration, in MiB (default: the machine's memory on a
	/// CPU; give the GPU's memory on a GPU).
	#[arg(long)]
	memory_mib: Option<u32>,
	/// Fail the first download of every blob once, as a flaky network would (fault injection
	/// for tests and demonstrations: builds with the `cheats` feature).
	#[cfg(feature = "cheats")]
	#[arg(long)]
	flaky_network: bool,
}

#[derive(Subcommand)]
pub enum JobCommand {
	/// Creates a job from a JSON config and prints its id.
	Create {
		#[command(flatten)]
		chain: ChainArgs,
		#[arg(long)]
		config: PathBuf,
		/// The training set's directory (overrides the config's `dataset`).
		#[arg(long)]
		dataset: Option<PathBuf>,
		/// The held-out set's directory (overrides the config's `holdout`).
		#[arg(long)]
		holdout: Option<PathBuf>,
		/// A language-model job's tokenizer file (overrides the config's `tokenizer`): its hash
		/// goes into the job's spec.
		#[arg(long)]
		tokenizer: Option<PathBuf>,
	},
	/// Prints the job's progress until it is finalized or cancelled.
	Watch {
		#[command(flatten)]
		chain: ChainArgs,
		#[arg(long)]
		job: u64,
	},
	/// Downloads the job's final model from the network, checks its hash against the chain,
	/// and evaluates it on a prepared test set.
	Download {
		#[command(flatten)]
		chain: ChainArgs,
		#[arg(long)]
		job: u64,
		/// Where to write the model (safetensors).
		#[arg(long)]
		out: PathBuf,
		/// A prepared test set (directory with manifest.json) to evaluate the model on.
		#[arg(long)]
		test_data: Option<PathBuf>,
		/// Also download and evaluate the model of every round (a language model's held-out
		/// loss and perplexity round by round).
		#[arg(long)]
		every_round: bool,
		/// Blob cache of this client.
		#[arg(long, default_value = "/tmp/agora-client")]
		store: PathBuf,
	},
	/// Prints the job's on-chain record and every participant's balance, stake and reward.
	Report {
		#[command(flatten)]
		chain: ChainArgs,
		#[arg(long)]
		job: u64,
	},
}

#[derive(Subcommand)]
pub enum DataCommand {
	/// Puts a prepared dataset's shards in a state directory's blob store (so the node using
	/// it serves them) and registers them on chain as their data provider; with `--tokenizer`,
	/// the tokenizer they were cut with too (served to the workers of jobs that pin it).
	Publish {
		#[command(flatten)]
		chain: ChainArgs,
		/// Directory with manifest.json and shards (from `prepare-data` or `prepare-text`).
		#[arg(long)]
		dataset: PathBuf,
		/// `prepare-text`'s `tokenizer-<hash>.json`.
		#[arg(long)]
		tokenizer: Option<PathBuf>,
		/// State directory of the daemon that will serve the shards.
		#[arg(long)]
		state_dir: PathBuf,
	},
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
	Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// How a worker given `--cheat NAME` (and a validator given `--lazy HOW`) behaves: `none` and
/// `plant` always exist; training deviations and lazy validation only in builds with the
/// `cheats` feature (tests and demonstrations).
pub fn conduct(cheat: &str, lazy: Option<&str>) -> Result<Conduct> {
	match (cheat, lazy) {
		("none", None) => Ok(Conduct::Honest),
		("plant", None) => Ok(Conduct::Plant),
		#[cfg(feature = "cheats")]
		("none", Some("approve-all")) => Ok(Conduct::Lazy),
		#[cfg(feature = "cheats")]
		("none", Some("skip-replay")) => Ok(Conduct::SkipReplay),
		#[cfg(feature = "cheats")]
		(cheat, None) => match agora_daemon::daemon::SubmissionCheat::parse(cheat) {
			Some(cheat) => Ok(Conduct::Submission(cheat)),
			None => agora_protocol::parse_cheat(cheat).map(Conduct::Cheat).map_err(|e| {
				anyhow::anyhow!(
					"{e}; or {}",
					agora_daemon::daemon::SubmissionCheat::NAMES.join(", ")
				)
			}),
		},
		_ => bail!(
			"`--cheat {cheat}`{}: not available in this build (the `cheats` feature is for tests \
			 and demonstrations)",
			lazy.map(|how| format!(" with --lazy {how}")).unwrap_or_default()
		),
	}
}

/// Data a daemon reads from its own disk rather than from the network.
#[derive(Default)]
pub struct LocalData {
	/// A validator's held-out set (a `prepare-data` directory), for jobs that commit to none.
	pub holdout: Option<PathBuf>,
	/// A worker's private data (a `prepare-data` directory), for jobs on private data.
	pub private: Option<PathBuf>,
}

/// Runs a worker or a validator; a validator audits the inference market beside its duties,
/// and a worker given `serving` terms serves a catalogued model.
pub fn run_daemon(
	args: DaemonArgs,
	role: Role,
	conduct: Conduct,
	local: LocalData,
	device: Device,
	serving: Option<ServeTerms>,
) -> Result<()> {
	let holdout = local.holdout.map(|dir| load_holdout(&dir)).transpose()?;
	let private_data = match local.private {
		Some(dir) => Some(
			load_prepared(&dir)
				.with_context(|| format!("loading the private data in {}", dir.display()))?,
		),
		None => None,
	};
	runtime()?.block_on(async move {
		let chain = args.chain.connect().await?;
		std::fs::create_dir_all(&args.state_dir)
			.with_context(|| format!("creating {}", args.state_dir.display()))?;
		let identity = load_or_create_identity(&args.state_dir.join("p2p-key"))?;
		let store = BlobStore::open(&args.state_dir.join("store"))?;
		let listen = format!("/{}/{}/tcp/{}", ip_kind(args.p2p_ip), args.p2p_ip, args.p2p_port);
		let (queries, serving) = match serving {
			Some(terms) => {
				let (sender, receiver) = mpsc::channel(QUERY_QUEUE);
				(Some(sender), Some((terms, receiver)))
			},
			None => (None, None),
		};
		let net =
			Network::start_with_queries(identity, Some(listen.parse()?), store, queries).await?;
		let default_stake = if role == Role::Worker { 100 } else { 1_000 };
		let config = DaemonConfig {
			role,
			state_dir: args.state_dir.clone(),
			stake: u128::from(args.stake.unwrap_or(default_stake)) * AGR,
			public_addr: match args.public_addr {
				Some(addr) => addr.to_string(),
				None => net.listen_addr().map(|a| a.to_string()).unwrap_or(listen),
			},
			conduct,
			holdout,
			private_data,
			device,
			memory_mib: args.memory_mib.unwrap_or_else(system_memory_mib),
			fetch_budget_per_pass: FETCH_BUDGET_PER_PASS,
		};
		let market =
			market_duties(role, chain.clone(), net.clone(), &args.state_dir, device, serving);
		let daemon = async {
			#[cfg(feature = "cheats")]
			if args.flaky_network {
				tracing::warn!(
					"injecting a transient failure into the first download of every blob"
				);
				let net = agora_daemon::faults::FlakyNetwork::new(net);
				return Daemon::new(chain, net, config)?.run().await;
			}
			Daemon::new(chain, net, config)?.run().await
		};
		// The daemon returns on Ctrl-C; the market's duties only on an error.
		tokio::select! {
			result = daemon => result,
			result = market => result,
		}
	})
}

/// Total memory of this machine in MiB (`MemTotal` of /proc/meminfo; 0 where unknown).
fn system_memory_mib() -> u32 {
	std::fs::read_to_string("/proc/meminfo")
		.ok()
		.and_then(|info| {
			let line = info.lines().find(|line| line.starts_with("MemTotal:"))?;
			let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
			u32::try_from(kib / 1024).ok()
		})
		.unwrap_or(0)
}

fn ip_kind(ip: std::net::IpAddr) -> &'static str {
	if ip.is_ipv4() {
		"ip4"
	} else {
		"ip6"
	}
}

pub fn run_job(command: JobCommand, device: Device) -> Result<()> {
	runtime()?.block_on(async move {
		match command {
			JobCommand::Create { chain, config, dataset, holdout, tokenizer } => {
				let chain = chain.connect().await?;
				let mut config = JobConfig::load(&config)?;
				if let Some(dataset) = dataset {
					config.dataset = dataset;
				}
				if holdout.is_some() {
					config.holdout = holdout;
				}
				if tokenizer.is_some() {
					config.tokenizer = tokenizer;
				}
				let job = client::create_job(&chain, &config).await?;
				println!("{job}");
			},
			JobCommand::Watch { chain, job } => {
				let chain = chain.connect().await?;
				let details = client::watch_job(&chain, job).await?;
				println!(
					"job {job} {:?}: {} completed rounds, final model {}",
					details.status,
					details.models.len(),
					chain::to_digest(&details.latest_model)
				);
			},
			JobCommand::Download { chain, job, out, test_data, every_round, store } => {
				let chain = chain.connect().await?;
				let downloaded =
					client::download_models(&chain, job, &store, &out, every_round).await?;
				let arch = &downloaded.arch;
				if let Some((hash, path)) = &downloaded.tokenizer {
					println!(
						"tokenizer {hash} verified against the job, written to {}",
						path.display()
					);
				}
				let data = test_data.map(|dir| load_holdout(&dir)).transpose()?;
				for (round, hash, params) in &downloaded.models {
					let Some(round) = round else {
						println!(
							"model {hash} ({arch}) verified against the chain, written to {}",
							out.display()
						);
						continue;
					};
					println!("round {round}: model {hash} verified against the chain");
					if let Some(data) = &data {
						print_language_model_metrics(
							arch,
							params,
							data,
							device,
							&format!("round {round}"),
						)?;
					}
				}
				let (Some(data), Some((_, _, params))) = (&data, downloaded.models.last()) else {
					return Ok(());
				};
				if arch.is_language_model() {
					print_language_model_metrics(arch, params, data, device, "final model")?;
				} else {
					let (accuracy, predictions) = client::infer(arch, params, data, device)?;
					println!("test accuracy {:.2}% on {} samples", accuracy * 100.0, data.len());
					let shown: Vec<String> =
						predictions.iter().map(|(label, p)| format!("{label}->{p}")).collect();
					println!("label->prediction: {}", shown.join(" "));
				}
			},
			JobCommand::Report { chain, job } => {
				let chain = chain.connect().await?;
				client::report(&chain, job).await?;
			},
		}
		Ok(())
	})
}

pub fn run_data(command: DataCommand) -> Result<()> {
	runtime()?.block_on(async move {
		match command {
			DataCommand::Publish { chain, dataset, tokenizer, state_dir } => {
				if let Some(path) = tokenizer {
					let tokenizer = client::publish_tokenizer(&state_dir.join("store"), &path)?;
					println!(
						"tokenizer {} ({} tokens) published",
						tokenizer.hash(),
						tokenizer.vocab_size()
					);
				}
				let chain = chain.connect().await?;
				let manifest =
					client::publish_dataset(&chain, &state_dir.join("store"), &dataset).await?;
				println!("dataset {} ({} shards) published", manifest.root, manifest.shards.len());
			},
		}
		Ok(())
	})
}

/// A language model's held-out loss, perplexity and next-token accuracy on `data` (nothing for
/// a classifier).
fn print_language_model_metrics(
	arch: &agora_ml::models::Architecture,
	params: &agora_ml::params::ParamSet,
	data: &agora_ml::data::Dataset,
	device: Device,
	what: &str,
) -> Result<()> {
	if !arch.is_language_model() {
		return Ok(());
	}
	let model = agora_ml::models::Model::new(arch, params, device)?;
	let metrics = agora_ml::train::evaluate(&model, data, 64)?;
	println!(
		"{what}: held-out loss {:.4}, perplexity {:.2}, next-token accuracy {:.2}% ({} windows)",
		metrics.loss,
		metrics.loss.exp(),
		metrics.accuracy * 100.0,
		data.len()
	);
	Ok(())
}

/// Prints the inference market's catalogue: each model with its terms, versions (weights hash
/// and the validators' holdout score) and the providers offering it.
pub fn run_models(chain: ChainArgs) -> Result<()> {
	runtime()?.block_on(async move {
		let chain = chain.connect().await?;
		let catalogue = chain.catalogue().await?;
		if catalogue.is_empty() {
			println!("the catalogue is empty: no training round has completed yet");
		}
		for entry in catalogue {
			let license = if entry.license.is_empty() { "(none chosen)" } else { &entry.license };
			println!(
				"model {} ({}), owner {}, license {license}, access {}",
				entry.model, entry.architecture, entry.owner, entry.access
			);
			for (round, weights, score) in &entry.versions {
				println!(
					"  version {round}: weights {}, holdout score {:.2}%",
					chain::to_digest(weights),
					f64::from(*score) / 1e7
				);
			}
			for (provider, version, price, peer_id) in &entry.offers {
				println!(
					"  offer: {provider} serves version {version} at {} per request (peer {})",
					chain::format_agr(*price),
					agora_p2p::PeerId::from_bytes(peer_id)
						.map_or_else(|_| "not a libp2p peer id".to_string(), |id| id.to_string())
				);
			}
		}
		Ok(())
	})
}
