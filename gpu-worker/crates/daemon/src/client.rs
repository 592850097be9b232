//! The submitter's and data provider's side: publish dataset shards, create a job from a
//! config file, watch it, download its final model and run inference on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use agora_chain::{
	self as chain, agora, bounded, to_digest, to_h256, AccountId32, Balance, Chain, JobStatusView,
	PhasePeriods, VerificationMode, AGR,
};
use agora_ml::data::{load_sharded, Dataset, Manifest, SampleKind, MANIFEST_FILE};
use agora_ml::digest::Digest;
use agora_ml::models::{Architecture, Model};
use agora_ml::train::evaluate;
use agora_p2p::{BlobKey, Network, Peer};
use agora_protocol::{decode_model, model_blob, BlobLimits, Hyperparameters};
use agora_text::tokenizer::{TextTokenizer, MAX_TOKENIZER_BYTES};

/// The longest hyperparameter record a job spec holds (`agora_primitives::MaxHyperparamsLen`).
const MAX_HYPERPARAMETERS_BYTES: usize = 1024;

/// A job as its submitter describes it (JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
	/// Architecture id (e.g. `mlp-digits`).
	pub architecture: String,
	pub hyperparameters: Hyperparameters,
	/// The training set's manifest (written by `prepare-data`, published by `data publish`);
	/// relative paths are relative to the config file.
	pub dataset: PathBuf,
	/// The held-out set's directory (from `prepare-data`, published with `data publish`): its
	/// shards go into the job's spec, and every validator scores updates on them. Relative
	/// paths are relative to the config file. Without it each validator scores on its own.
	#[serde(default)]
	pub holdout: Option<PathBuf>,
	/// A language-model job's tokenizer (`prepare-text`'s `tokenizer-<hash>.json`, published
	/// with `data publish --tokenizer`): its hash goes into the job's spec. Relative paths are
	/// relative to the config file.
	#[serde(default)]
	pub tokenizer: Option<PathBuf>,
	pub rounds: u32,
	pub local_steps: u32,
	pub checkpoint_interval: u32,
	pub samples_per_round: u32,
	pub workers_per_round: u32,
	pub validators_per_update: u32,
	/// `replay` or `evaluation`.
	pub mode: String,
	pub periods: Periods,
	/// Budget in AGR.
	pub budget: u64,
}

/// Phase lengths in blocks.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Periods {
	pub open: u32,
	pub training: u32,
	pub commit: u32,
	pub reveal: u32,
	pub aggregation: u32,
}

impl JobConfig {
	pub fn load(path: &Path) -> Result<Self> {
		let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
		let mut config: JobConfig = serde_json::from_slice(&bytes)
			.with_context(|| format!("{} is not a job config", path.display()))?;
		let base = path.parent().unwrap_or(Path::new("."));
		if config.dataset.is_relative() {
			config.dataset = base.join(&config.dataset);
		}
		for path in [&mut config.holdout, &mut config.tokenizer] {
			if let Some(path) = path.as_mut().filter(|path| path.is_relative()) {
				*path = base.join(&*path);
			}
		}
		Ok(config)
	}
}

/// Copies a prepared dataset's shards into the blob store (so the node behind `store` serves
/// them) and registers every shard on chain that is not registered yet.
pub async fn publish_dataset(
	chain: &Chain,
	store_dir: &Path,
	dataset_dir: &Path,
) -> Result<Manifest> {
	let manifest_path = dataset_dir.join(MANIFEST_FILE);
	let (_, manifest) = load_sharded(&manifest_path, None)?;
	let store = agora_p2p::BlobStore::open(store_dir)?;
	for shard in &manifest.shards {
		let bytes = std::fs::read(dataset_dir.join(&shard.file))?;
		store.put(&BlobKey::Blob(shard.hash), &bytes)?;
		if chain.shard_samples(to_h256(&shard.hash)).await?.is_some() {
			tracing::info!(shard = %shard.hash, "already registered");
			continue;
		}
		let samples = u32::try_from(shard.num_samples).context("shard too large")?;
		chain
			.submit(
				"register_shard",
				agora::transactions().contributions().register_shard(to_h256(&shard.hash), samples),
			)
			.await?;
		println!("registered shard {} ({} samples)", shard.hash, shard.num_samples);
	}
	Ok(manifest)
}

/// Puts a tokenizer file in a state directory's blob store, so that the daemon using it serves
/// the tokenizer to the workers of the jobs that pin it; returns it.
pub fn publish_tokenizer(store_dir: &Path, path: &Path) -> Result<TextTokenizer> {
	let tokenizer = TextTokenizer::load(path, None)
		.with_context(|| format!("loading the tokenizer {}", path.display()))?;
	let store = agora_p2p::BlobStore::open(store_dir)?;
	store.put(&BlobKey::Blob(tokenizer.hash()), tokenizer.json())?;
	Ok(tokenizer)
}

/// The hash a language-model job pins its tokenizer by: the config's tokenizer, checked to fit
/// the model and to be the one the held-out shards were cut with (as many tokens). `None` for
/// a classifier.
fn pinned_tokenizer(
	config: &JobConfig,
	arch: &Architecture,
	holdout: Option<&Dataset>,
) -> Result<Option<Digest>> {
	let Some((vocab, _)) = arch.language_shape() else {
		if config.tokenizer.is_some() {
			bail!("a tokenizer for {arch}, which reads no tokens");
		}
		return Ok(None);
	};
	let path = config.tokenizer.as_ref().ok_or_else(|| {
		anyhow!(
			"a language-model job names the tokenizer its shards were cut with (`tokenizer` in \
			 the config or --tokenizer: prepare-text's tokenizer-<hash>.json)"
		)
	})?;
	let tokenizer = TextTokenizer::load(path, None)
		.with_context(|| format!("loading the tokenizer {}", path.display()))?;
	tokenizer.check_fits(vocab)?;
	if let Some(SampleKind::Tokens { vocab: shards, .. }) = holdout.map(Dataset::kind) {
		if shards != tokenizer.vocab_size() {
			bail!(
				"the held-out shards were cut with a {shards}-token tokenizer, {} has {}",
				path.display(),
				tokenizer.vocab_size()
			);
		}
	}
	Ok(Some(tokenizer.hash()))
}

/// Creates the job described by `config`; returns its id.
pub async fn create_job(chain: &Chain, config: &JobConfig) -> Result<u64> {
	let arch = Architecture::from_id(&config.architecture)?;
	config.hyperparameters.check_segment_length(config.checkpoint_interval)?;
	let initial = arch.initial_params(config.hyperparameters.init_seed)?;
	let initial_hash = Digest::of(&[&model_blob(&arch, &initial)?]);
	let manifest: Manifest = serde_json::from_slice(
		&std::fs::read(config.dataset.join(MANIFEST_FILE))
			.or_else(|_| std::fs::read(&config.dataset))
			.with_context(|| format!("reading dataset manifest {}", config.dataset.display()))?,
	)?;
	let shards = manifest.shards.iter().map(|s| to_h256(&s.hash)).collect();
	let mut hyperparameters = config.hyperparameters.clone();
	let holdout = config
		.holdout
		.as_ref()
		.map(|dir| {
			load_sharded(&dir.join(MANIFEST_FILE), None)
				.with_context(|| format!("reading the held-out set in {}", dir.display()))
		})
		.transpose()?;
	if let Some((_, manifest)) = &holdout {
		hyperparameters.holdout = manifest.shards.iter().map(|shard| shard.hash).collect();
	}
	let tokenizer = pinned_tokenizer(config, &arch, holdout.as_ref().map(|(data, _)| data))?;
	match (hyperparameters.tokenizer, tokenizer) {
		(Some(named), Some(given)) if named != given => {
			bail!("the hyperparameters pin tokenizer {named}, the config's file is {given}")
		},
		(_, Some(given)) => hyperparameters.tokenizer = Some(given),
		(Some(_), None) => bail!("a tokenizer for {arch}, which reads no tokens"),
		(None, None) => {},
	}
	let hyperparameters_json = serde_json::to_vec(&hyperparameters)?;
	if hyperparameters_json.len() > MAX_HYPERPARAMETERS_BYTES {
		bail!(
			"the job's hyperparameters take {} bytes, more than the chain's {MAX_HYPERPARAMETERS_BYTES} \
			 (a held-out set of fewer, larger shards fits)",
			hyperparameters_json.len()
		);
	}
	let mode = match config.mode.as_str() {
		"replay" => VerificationMode::Replay,
		"evaluation" => VerificationMode::Evaluation,
		other => bail!("unknown verification mode `{other}` (replay, evaluation)"),
	};
	let p = config.periods;
	let spec = chain::JobSpec {
		architecture: bounded(config.architecture.as_bytes().to_vec()),
		hyperparameters: bounded(hyperparameters_json),
		initial_weights: to_h256(&initial_hash),
		dataset: chain::Dataset::Shards(chain::BoundedVec(shards)),
		rounds: config.rounds,
		local_steps: config.local_steps,
		checkpoint_interval: config.checkpoint_interval,
		samples_per_round: config.samples_per_round,
		workers_per_round: config.workers_per_round,
		validators_per_update: config.validators_per_update,
		mode,
		periods: PhasePeriods {
			open: p.open,
			training: p.training,
			commit: p.commit,
			reveal: p.reveal,
			aggregation: p.aggregation,
		},
	};
	let budget = Balance::from(config.budget).checked_mul(AGR).context("budget overflows")?;
	let events = chain
		.submit_with_events("create_job", agora::transactions().tasks().create_job(spec, budget))
		.await?;
	let created = events
		.find_first::<agora::tasks::events::JobCreated>()
		.ok_or_else(|| anyhow!("create_job succeeded without a JobCreated event"))??;
	Ok(created.job)
}

/// Prints the job's progress until it ends; returns its final details.
pub async fn watch_job(
	chain: &Chain,
	job: u64,
) -> Result<chain::JobDetails<AccountId32, Balance, u32>> {
	let mut last = String::new();
	loop {
		let details = chain.job(job).await?.ok_or_else(|| anyhow!("job {job} not found"))?;
		let line = match chain.round_status(job).await? {
			Some(status) => {
				let submitted = status.workers.iter().filter(|(_, _, done)| *done).count();
				// While a round trains, the applications are the next round's.
				let next = status.round.saturating_add(1);
				let applicants = match status.phase {
					JobStatusView::Training if next <= details.spec.rounds => {
						format!("applicants for round {next} {}", status.applicants.len())
					},
					_ => format!("applicants {}", status.applicants.len()),
				};
				format!(
					"job {job}: round {}/{} {:?} ({applicants}, selected {}, updates {}), models so far {}",
					status.round,
					details.spec.rounds,
					status.phase,
					status.workers.len(),
					submitted,
					details.models.len()
				)
			},
			None => format!("job {job}: {:?}", details.status),
		};
		if line != last {
			println!("#{} {line}", chain.best_number().await?);
			last = line;
		}
		if matches!(details.status, JobStatusView::Finalized | JobStatusView::Cancelled) {
			return Ok(details);
		}
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
}

/// A job's models as they were downloaded: its architecture, and each model's round (`None`
/// for the final one), hash and weights; and the tokenizer the job pins, if any, where it was
/// written.
pub struct DownloadedModels {
	pub arch: Architecture,
	pub models: Vec<(Option<u32>, Digest, agora_ml::params::ParamSet)>,
	pub tokenizer: Option<(Digest, PathBuf)>,
}

/// Downloads a job's final model from the registered participants, verifies it against the
/// on-chain hash and writes it to `out`; with `every_round`, each round's model before it too
/// (each checked against the hash the chain recorded for its round).
pub async fn download_models(
	chain: &Chain,
	job: u64,
	store_dir: &Path,
	out: &Path,
	every_round: bool,
) -> Result<DownloadedModels> {
	let details = chain.job(job).await?.ok_or_else(|| anyhow!("job {job} not found"))?;
	let arch = Architecture::from_id(
		std::str::from_utf8(&details.spec.architecture.0).context("architecture id is not text")?,
	)?;
	let hyperparameters = Hyperparameters::from_json(&details.spec.hyperparameters.0)?;
	let limits = BlobLimits::new(&arch, &hyperparameters)?;
	let peers: Vec<Peer> = chain
		.all_endpoints()
		.await?
		.into_iter()
		.filter_map(|e| Peer::from_chain(&e.peer_id, &e.multiaddr).ok())
		.collect();
	let identity = agora_p2p::identity::Keypair::generate_ed25519();
	let net = Network::start(identity, None, agora_p2p::BlobStore::open(store_dir)?).await?;
	let mut wanted: Vec<(Option<u32>, Digest)> = Vec::new();
	if every_round {
		wanted.extend(details.models.iter().map(|(round, hash)| (Some(*round), to_digest(hash))));
	}
	let latest = to_digest(&details.latest_model);
	wanted.push((None, latest));
	// The tokenizer first: without it a language model's downloads are of no use.
	let tokenizer = match hyperparameters.tokenizer {
		Some(hash) => {
			let json = net
				.fetch(BlobKey::Blob(hash), MAX_TOKENIZER_BYTES, &peers, |_| Ok(()))
				.await
				.with_context(|| format!("downloading the job's tokenizer {hash}"))?;
			let tokenizer = TextTokenizer::from_json(json)?;
			if let Some((vocab, _)) = arch.language_shape() {
				tokenizer.check_fits(vocab)?;
			}
			let dir =
				out.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
			Some((hash, tokenizer.save_in(dir)?))
		},
		None => None,
	};
	let mut models = Vec::with_capacity(wanted.len());
	for (round, hash) in wanted {
		let bytes = net
			.fetch(BlobKey::Blob(hash), limits.model, &peers, |bytes| {
				decode_model(&arch, bytes).map(|_| ()).map_err(Into::into)
			})
			.await
			.with_context(|| format!("downloading model {hash}"))?;
		if round.is_none() {
			std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
		}
		models.push((round, hash, decode_model(&arch, &bytes)?));
	}
	Ok(DownloadedModels { arch, models, tokenizer })
}

/// Accuracy of a model on a prepared dataset, and its predictions for the first samples.
pub fn infer(
	arch: &Architecture,
	params: &agora_ml::params::ParamSet,
	data: &Dataset,
	device: tch::Device,
) -> Result<(f64, Vec<(u8, i64)>)> {
	let model = Model::new(arch, params, device)?;
	let accuracy = evaluate(&model, data, 256)?.accuracy;
	let count = data.len().min(10) as u32;
	let indices: Vec<u32> = (0..count).collect();
	let predictions = tch::no_grad(|| -> Result<Vec<i64>> {
		let agora_ml::data::Batch::Classification { inputs, .. } = data.batch(&indices, device)?
		else {
			bail!("inference is shown for classification models");
		};
		let logits = tch::nn::Module::forward(model.network(), &inputs);
		Ok(Vec::<i64>::try_from(logits.argmax(-1, false))?)
	})?;
	let labels = data.labels().iter().take(count as usize).copied();
	Ok((accuracy, labels.zip(predictions).collect()))
}

/// Prints the job's on-chain record and who holds, has staked and is owed what.
pub async fn report(chain: &Chain, job: u64) -> Result<()> {
	let details = chain.job(job).await?.ok_or_else(|| anyhow!("job {job} not found"))?;
	println!("job {job}: {:?}, submitted by {}", details.status, details.submitter);
	println!(
		"  budget {}, spent {}, still escrowed {}",
		chain::format_agr(details.budget),
		chain::format_agr(details.spent),
		chain::format_agr(details.escrow)
	);
	for (round, model) in &details.models {
		println!("  round {round}: model {}", to_digest(model));
	}
	println!("  final model {}", to_digest(&details.latest_model));
	let ledger = chain.ledger().await?;
	println!(
		"{:<10} {:<49} {:>20} {:>16} {:>16} {:>16}",
		"role", "account", "free", "stake", "earned", "slashed"
	);
	let mut rows: Vec<(String, AccountId32, Balance)> = vec![
		("submitter".into(), details.submitter, 0),
		("treasury".into(), chain::pallet_account(b"py/trsry"), 0),
	];
	for endpoint in chain.all_endpoints().await? {
		let role = if endpoint.is_worker { "worker" } else { "validator" };
		rows.push((role.into(), endpoint.account, endpoint.stake));
	}
	for (role, account, stake) in rows {
		// Earned: claimed so far plus still owed by the reward pool.
		let earned = ledger.claimed.get(&account.0).copied().unwrap_or(0)
			+ chain.pending_reward(&account).await?;
		println!(
			"{role:<10} {:<49} {:>20} {:>16} {:>16} {:>16}",
			account.to_string(),
			chain::format_agr(chain.free_balance(&account).await?),
			chain::format_agr(stake),
			chain::format_agr(earned),
			chain::format_agr(ledger.slashed.get(&account.0).copied().unwrap_or(0)),
		);
	}
	println!("(earned: rewards claimed plus still owed, on this chain so far; the treasury's fees are owed until paid out)");
	Ok(())
}

#[cfg(test)]
mod tests {
	use super::*;

	/// The job configs the repository ships (the demo's digits and language-model jobs) load,
	/// name a known architecture, and carry hyperparameters a worker accepts and a job spec holds.
	#[test]
	fn the_shipped_job_configs_are_valid() {
		let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../jobs");
		let mut checked = 0;
		for entry in std::fs::read_dir(&dir).unwrap() {
			let path = entry.unwrap().path();
			let config = JobConfig::load(&path).unwrap();
			let arch = Architecture::from_id(&config.architecture).unwrap();
			let bytes = serde_json::to_vec(&config.hyperparameters).unwrap();
			assert!(bytes.len() <= MAX_HYPERPARAMETERS_BYTES, "{}", path.display());
			let parsed = Hyperparameters::from_json(&bytes).unwrap();
			assert_eq!(parsed, config.hyperparameters, "{}", path.display());
			let samples = config.local_steps as usize * parsed.batch_size;
			assert_eq!(
				config.samples_per_round as usize,
				samples * config.workers_per_round as usize,
				"{}",
				path.display()
			);
			if path.ends_with("text-gpt.json") {
				assert!(arch.is_language_model());
				assert!(parsed.clip_norm.is_some() && !parsed.schedule.is_constant());
			}
			checked += 1;
		}
		assert!(checked >= 3);
	}

	/// `job create` pins a language-model job's tokenizer only if it fits the model and is the
	/// one the held-out shards were cut with, and refuses a language-model job without one.
	#[test]
	fn a_language_model_job_pins_a_tokenizer_that_fits_its_model_and_shards() {
		let dir = tempfile::tempdir().unwrap();
		let documents = (0..200).map(|i| format!("a sentence about token {i} and the next one"));
		let tokenizer = TextTokenizer::train(documents, 300).unwrap();
		let path = tokenizer.save_in(dir.path()).unwrap();
		let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../jobs");
		let mut config = JobConfig::load(&jobs.join("text-gpt.json")).unwrap();
		let arch = Architecture::from_id(&config.architecture).unwrap();
		let shards_of = |vocab: usize| {
			let kind = SampleKind::Tokens { length: 3, vocab };
			let tokens = agora_ml::data::encode_tokens(&[1, 2, 3], vocab).unwrap();
			Dataset::new(kind, 0, 1.0, tokens, Vec::new()).unwrap()
		};
		let error = |config: &JobConfig, arch: &Architecture, holdout: Option<&Dataset>| {
			pinned_tokenizer(config, arch, holdout).unwrap_err().to_string()
		};

		assert!(error(&config, &arch, None).contains("names the tokenizer"));
		config.tokenizer = Some(path.clone());
		let vocab = tokenizer.vocab_size();
		let pinned = pinned_tokenizer(&config, &arch, Some(&shards_of(vocab))).unwrap();
		assert_eq!(pinned, Some(tokenizer.hash()));
		assert!(error(&config, &arch, Some(&shards_of(vocab + 1))).contains("held-out shards"));
		let small = Architecture::from_id("gpt:vocab=256,ctx=8,width=16,heads=2,layers=1").unwrap();
		assert!(error(&config, &small, None).contains("the model 256"));
		let digits = Architecture::from_id("mlp-digits").unwrap();
		assert!(error(&config, &digits, None).contains("reads no tokens"));
		config.tokenizer = None;
		assert_eq!(pinned_tokenizer(&config, &digits, None).unwrap(), None);
	}
}
