//! The inference market's commands: `serve` (a worker that also answers requests for a
//! catalogued model), the auditor that runs beside every validator, and `infer` (a token
//! holder's client: open a channel, send inputs, print the answers and what they cost).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use tch::Device;
use tokio::sync::mpsc;

use agora_chain::{self as chain, agora, format_agr, AccountId32, Balance, Chain, AGR};
use agora_daemon::daemon::Role;
use agora_inference::answer::{inputs_of, logits, top_class};
use agora_inference::auditor::Auditor;
use agora_inference::client::{percentile, Answered, Refused, Session};
use agora_inference::market::MarketChain;
use agora_inference::provider::{Provider, ProviderConfig};
use agora_inference::receipt::Receipt;
use agora_p2p::{identity, BlobStore, InboundQuery, Network};

use crate::network_commands::{runtime, ChainArgs, DaemonArgs};

/// Queries waiting for the provider; more are answered `Busy`.
pub const QUERY_QUEUE: usize = 256;

/// What `serve` adds to a worker.
#[derive(Args)]
pub struct ServeArgs {
	#[command(flatten)]
	pub daemon: DaemonArgs,
	/// The catalogue's model to serve (`agora-worker models` lists them).
	#[arg(long)]
	model: u64,
	/// The version to serve (default: the latest listed).
	#[arg(long)]
	version: Option<u32>,
	/// Price per request, in AGR (e.g. 0.01).
	#[arg(long, value_parser = parse_agr)]
	price: Balance,
	/// Settle a channel on chain once this many of its answers are receipted but unsettled...
	#[arg(long, default_value_t = 100)]
	settle_every: u64,
	/// ...or once its latest receipt is this many seconds old.
	#[arg(long, default_value_t = 60)]
	settle_after: u64,
}

/// An amount of AGR written as a decimal (`2`, `0.01`), in plancks.
pub fn parse_agr(text: &str) -> Result<Balance, String> {
	let invalid = || format!("`{text}` is not an amount of AGR (e.g. 2 or 0.01)");
	let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
	let digits = AGR.ilog10() as usize;
	if (whole.is_empty() && fraction.is_empty())
		|| fraction.len() > digits
		|| !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit())
	{
		return Err(invalid());
	}
	let whole: Balance = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
	let fraction: Balance = if fraction.is_empty() {
		0
	} else {
		format!("{fraction:0<digits$}").parse().map_err(|_| invalid())?
	};
	whole.checked_mul(AGR).and_then(|w| w.checked_add(fraction)).ok_or_else(invalid)
}

/// A provider's terms, as `serve` was given them.
pub struct ServeTerms {
	model: u64,
	version: Option<u32>,
	price: Balance,
	settle_every: u64,
	settle_after: Duration,
}

impl ServeArgs {
	pub fn split(self) -> (DaemonArgs, ServeTerms) {
		let terms = ServeTerms {
			model: self.model,
			version: self.version,
			price: self.price,
			settle_every: self.settle_every,
			settle_after: Duration::from_secs(self.settle_after),
		};
		(self.daemon, terms)
	}
}

/// The market's side of a daemon, run beside it on the same libp2p node: a serving worker's
/// provider, a validator's auditor, nothing otherwise.
pub async fn market_duties(
	role: Role,
	chain: Chain,
	net: Network,
	state_dir: &Path,
	device: Device,
	serving: Option<(ServeTerms, mpsc::Receiver<InboundQuery>)>,
) -> Result<()> {
	let dir = state_dir.join("inference");
	std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
	match (role, serving) {
		(Role::Validator, _) => Auditor::new(chain, net, &dir, device)?.run().await,
		(Role::Worker, Some((terms, queries))) => {
			serve(chain, net, dir, device, terms, queries).await
		},
		(Role::Worker, None) => std::future::pending().await,
	}
}

async fn serve(
	chain: Chain,
	net: Network,
	state_dir: PathBuf,
	device: Device,
	terms: ServeTerms,
	queries: mpsc::Receiver<InboundQuery>,
) -> Result<()> {
	let version = match terms.version {
		Some(version) => version,
		None => latest_version(&chain, terms.model).await?,
	};
	let config = || ProviderConfig {
		state_dir: state_dir.clone(),
		model: terms.model,
		version,
		price: terms.price,
		settle_every: terms.settle_every,
		settle_after: terms.settle_after,
		device,
	};
	// The version is listed, so its weights exist; a failed download is the network's hiccup
	// (or the holders' restart) and is tried again.
	let provider = loop {
		match Provider::start(chain.clone(), &net, config()).await {
			Ok(provider) => break provider,
			Err(e) => {
				tracing::warn!("cannot load the model yet: {e:#}");
				tokio::time::sleep(Duration::from_secs(6)).await;
			},
		}
	};
	tracing::info!(
		model = terms.model,
		version,
		"serving: weights fetched and checked against the catalogue"
	);
	// The offer needs the worker's registration, which the daemon beside this sends first.
	let peer_id = net.peer_id().to_bytes();
	while let Err(e) = provider.offer(peer_id.clone()).await {
		tracing::info!("cannot offer yet: {e:#}");
		tokio::time::sleep(Duration::from_secs(6)).await;
	}
	tracing::info!(model = terms.model, price = %format_agr(terms.price), "offer on chain; answering requests");
	provider.run(queries).await
}

async fn latest_version(chain: &Chain, model: u64) -> Result<u32> {
	let catalogue = chain.catalogue().await?;
	let entry = catalogue
		.iter()
		.find(|entry| entry.model == model)
		.ok_or_else(|| anyhow!("model {model} is not in the catalogue"))?;
	entry
		.versions
		.iter()
		.map(|(round, _, _)| *round)
		.max()
		.ok_or_else(|| anyhow!("model {model} has no version listed"))
}

#[derive(Args)]
pub struct InferArgs {
	#[command(flatten)]
	chain: ChainArgs,
	/// The catalogue's model (`agora-worker models` lists them and their offers).
	#[arg(long)]
	model: u64,
	/// The provider's account (SS58); default: the cheapest offer of the model.
	#[arg(long)]
	provider: Option<String>,
	/// A prepared dataset (a directory from `prepare-data`) whose first samples are sent.
	#[arg(long)]
	data: PathBuf,
	/// How many samples to send.
	#[arg(long, default_value_t = 20)]
	count: usize,
	/// Prepaid into the channel, in AGR (default: the price of `--count` requests); what is
	/// not spent comes back when the channel closes.
	#[arg(long, value_parser = parse_agr)]
	deposit: Option<Balance>,
	/// After the answers, close the channel and follow it until it is closed: settlement,
	/// audits, the provider's payment and the refund.
	#[arg(long)]
	follow: bool,
	/// Give up following after this many seconds.
	#[arg(long, default_value_t = 600)]
	follow_timeout: u64,
}

/// One offer of a model, as the client chooses among them.
struct Offer {
	provider: AccountId32,
	version: u32,
	price: Balance,
}

fn choose_offer(
	chain: &[chain::CatalogueEntry],
	model: u64,
	provider: Option<&str>,
) -> Result<Offer> {
	let entry = chain
		.iter()
		.find(|entry| entry.model == model)
		.ok_or_else(|| anyhow!("model {model} is not in the catalogue"))?;
	let wanted = provider
		.map(|p| AccountId32::from_str(p).map_err(|e| anyhow!("--provider {p}: {e}")))
		.transpose()?;
	entry
		.offers
		.iter()
		.filter(|(who, ..)| wanted.as_ref().is_none_or(|w| w == who))
		.min_by_key(|(_, _, price, _)| *price)
		.map(|(provider, version, price, _)| Offer {
			provider: *provider,
			version: *version,
			price: *price,
		})
		.ok_or_else(|| match wanted {
			Some(w) => anyhow!("{w} offers no version of model {model}"),
			None => anyhow!("nobody offers model {model} yet"),
		})
}

pub fn run_infer(args: InferArgs) -> Result<()> {
	runtime()?.block_on(async move {
		let chain = args.chain.connect().await?;
		let catalogue = chain.catalogue().await?;
		let offer = choose_offer(&catalogue, args.model, args.provider.as_deref())?;
		let (dataset, _) =
			agora_ml::data::load_sharded(&args.data.join(agora_ml::data::MANIFEST_FILE), None)?;
		let count = args.count.min(dataset.len());
		if count == 0 {
			bail!("{} holds no samples", args.data.display());
		}
		let indices: Vec<u32> = (0..count as u32).collect();
		let samples = inputs_of(&dataset, &indices)?;
		let deposit = match args.deposit {
			Some(deposit) => deposit,
			None => offer.price.saturating_mul(count as Balance),
		};
		let provider_peer =
			MarketChain::worker_peer(&chain, &offer.provider).await?.ok_or_else(|| {
				anyhow!("the provider {} has no registered p2p address", offer.provider)
			})?;

		println!(
			"model {} version {} from {} at {} per request; prepaying {}",
			args.model,
			offer.version,
			offer.provider,
			format_agr(offer.price),
			format_agr(deposit)
		);
		let opened_at = chain.best_number().await?;
		let market = agora::transactions().inference();
		let events = chain
			.submit_with_events(
				"open_channel",
				market.open_channel(offer.provider, args.model, offer.price, deposit),
			)
			.await?;
		let channel = events
			.find_first::<agora::inference::events::ChannelOpened>()
			.ok_or_else(|| anyhow!("open_channel succeeded without a ChannelOpened event"))??
			.channel;
		println!("channel {channel} opened");

		// A client's node listens nowhere: it only asks.
		let store_dir = client_store_dir()?;
		let net = Network::start(
			identity::Keypair::generate_ed25519(),
			None,
			BlobStore::open(&store_dir)?,
		)
		.await?;
		let genesis = chain.genesis_hash().0;
		let mut session =
			Session::new(&net, provider_peer, chain.signer(), genesis, channel, offer.price);
		let mut latencies = Vec::with_capacity(count);
		let mut correct = 0;
		let started = Instant::now();
		for (index, (input, label)) in samples.into_iter().enumerate() {
			let answered = match session.predict(input.clone()).await {
				Ok(answered) => answered,
				Err(e) if e.is::<Refused>() => {
					return Err(e.context(format!("request {} of {count}", index + 1)))
				},
				// Unreachable, silent or busy for seconds: make it answer on chain.
				Err(e) => {
					println!(
						"  request {:>3}: not answered ({e:#}); putting it on chain",
						index + 1
					);
					match challenge(&chain, channel, &input).await? {
						Some(output) => {
							session.resume(settled_receipt(&chain, channel).await?);
							let index = session.receipt().requests;
							Answered { index, output, latency: Duration::ZERO }
						},
						None => {
							// The provider was slashed and the channel is closing: take the
							// refund.
							follow(
								&chain,
								channel,
								opened_at,
								Duration::from_secs(args.follow_timeout),
							)
							.await?;
							bail!("the provider answered neither over the network nor on chain");
						},
					}
				},
			};
			let predicted = logits(&answered.output).as_deref().and_then(top_class);
			let shown = |v: Option<usize>| v.map_or("?".to_string(), |v| v.to_string());
			if predicted.is_some() && predicted == label {
				correct += 1;
			}
			// An answer given on chain took blocks, not network time: not a latency.
			let took = if answered.latency.is_zero() {
				"on chain".to_string()
			} else {
				latencies.push(answered.latency);
				format!("{:.1} ms", answered.latency.as_secs_f64() * 1e3)
			};
			println!(
				"  request {:>3}: label {} -> prediction {}  ({took})",
				answered.index,
				shown(label),
				shown(predicted),
			);
		}
		let elapsed = started.elapsed();
		session.finish().await?;
		let receipt = session.receipt();
		println!(
			"{count} predictions, {correct} match their labels ({:.1}%); latency p50 {:.1} ms, \
			 p95 {:.1} ms; {:.0} requests/s",
			100.0 * correct as f64 / count as f64,
			percentile(&latencies, 50).as_secs_f64() * 1e3,
			percentile(&latencies, 95).as_secs_f64() * 1e3,
			count as f64 / elapsed.as_secs_f64()
		);
		println!(
			"owed for {} answers: {} (receipt signed for the provider to settle)",
			receipt.requests,
			format_agr(receipt.amount)
		);
		let _ = std::fs::remove_dir_all(&store_dir);
		if !args.follow {
			println!("the channel stays open: close it with inference.closeChannel({channel})");
			return Ok(());
		}
		chain.submit("close_channel", market.close_channel(channel)).await?;
		follow(&chain, channel, opened_at, Duration::from_secs(args.follow_timeout)).await
	})
}

/// The channel's settled count, amount and transcript head, as the chain holds them.
async fn settled_receipt(chain: &Chain, channel: u64) -> Result<Receipt> {
	let at = chain.at_best().await?;
	let settled = at
		.storage()
		.try_fetch(agora::storage().inference().channels(), (channel,))
		.await?
		.ok_or_else(|| anyhow!("channel {channel} is gone"))?
		.decode()?;
	Ok(Receipt {
		channel,
		requests: settled.settled_requests,
		amount: settled.settled_amount,
		transcript: settled.transcript.0,
	})
}

/// Puts a request its provider did not answer on chain and waits: its answer, or `None` once
/// the provider let the deadline pass and was slashed for it (the channel then closes).
async fn challenge(chain: &Chain, channel: u64, input: &[u8]) -> Result<Option<Vec<u8>>> {
	use agora::inference::events as ev;
	let market = agora::transactions().inference();
	// The answer may land in the very next block: look from here.
	let mut next = chain.best_number().await?;
	let events = chain
		.submit_with_events(
			"challenge",
			market.challenge(channel, agora_chain::bounded(input.to_vec())),
		)
		.await?;
	let challenged = events
		.find_first::<ev::Challenged>()
		.ok_or_else(|| anyhow!("challenge succeeded without a Challenged event"))??;
	println!(
		"  the provider must answer on chain by block {} or lose part of its stake",
		challenged.deadline
	);
	loop {
		let best = chain.best_number().await?;
		while next <= best {
			let events = chain.at_number(next).await?.events().fetch().await?;
			for expired in events.find::<ev::ChallengeExpired>() {
				let expired = expired?;
				if expired.channel == channel {
					println!(
						"  the provider did not answer by block {}: it lost {} of its stake",
						challenged.deadline,
						format_agr(expired.slashed)
					);
					return Ok(None);
				}
			}
			for answered in events.find::<ev::ChallengeAnswered>() {
				let answered = answered?;
				if answered.channel == channel {
					println!(
						"  block {next}: answered on chain as request {}, settled for {}",
						answered.request,
						format_agr(answered.amount)
					);
					return Ok(Some(answered.output.0));
				}
			}
			next += 1;
		}
		if best > challenged.deadline {
			// Its `ChallengeExpired` is read above; if someone else expired it first (or the
			// answer landed), this fails and the scan finds what happened.
			if let Err(e) = chain.submit("expire_challenge", market.expire_challenge(channel)).await
			{
				tracing::debug!("expiring the challenge: {e:#}");
			}
		}
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
}

/// A fresh directory for the client's blob store (it stores nothing it keeps).
fn client_store_dir() -> Result<PathBuf> {
	let dir = std::env::temp_dir().join(format!("agora-infer-{}", std::process::id()));
	std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
	Ok(dir)
}

/// Prints what happens to `channel` from block `from` on, and finishes closing it once it can,
/// until it is closed.
async fn follow(chain: &Chain, channel: u64, from: u32, timeout: Duration) -> Result<()> {
	use agora::inference::events as ev;
	let deadline = Instant::now() + timeout;
	let mut batches = std::collections::BTreeSet::new();
	let mut audits = std::collections::BTreeSet::new();
	let mut next = from;
	let mut closes_at = None;
	while Instant::now() < deadline {
		let best = chain.best_number().await?;
		while next <= best {
			let events = chain.at_number(next).await?.events().fetch().await?;
			for settled in events.find::<ev::Settled>() {
				let settled = settled?;
				if settled.channel == channel {
					batches.insert(settled.batch);
					println!(
						"block {next}: the provider settled requests {}..={} as batch {} for {}; \
						 audit draw at block {}",
						settled.first,
						settled.last,
						settled.batch,
						format_agr(settled.amount),
						settled.draw_at
					);
				}
			}
			for drawn in events.find::<ev::AuditStarted>() {
				let drawn = drawn?;
				if batches.contains(&drawn.batch) {
					audits.insert(drawn.audit);
					println!(
						"block {next}: audit {} of request {} of batch {} by {} validators",
						drawn.audit,
						drawn.request,
						drawn.batch,
						drawn.auditors.0.len()
					);
				}
			}
			for skipped in events.find::<ev::AuditNotDrawn>() {
				let skipped = skipped?;
				if batches.contains(&skipped.batch) {
					println!("block {next}: batch {} was not drawn for audit", skipped.batch);
				}
			}
			for revealed in events.find::<ev::AuditRevealed>() {
				let revealed = revealed?;
				if audits.contains(&revealed.audit) {
					println!(
						"block {next}: auditor {} revealed {:?} (audit {})",
						revealed.auditor, revealed.verdict, revealed.audit
					);
				}
			}
			for concluded in events.find::<ev::AuditConcluded>() {
				let concluded = concluded?;
				if batches.contains(&concluded.batch) {
					println!(
						"block {next}: audit {} concluded {:?}: provider slashed {}, client refunded {}",
						concluded.audit,
						concluded.outcome,
						format_agr(concluded.slashed),
						format_agr(concluded.refunded)
					);
				}
			}
			for cleared in events.find::<ev::BatchCleared>() {
				let cleared = cleared?;
				if cleared.channel == channel {
					println!(
						"block {next}: batch {} paid: {} to the provider, {} protocol fee to the \
						 treasury, {} audit fee to the auditors' pot",
						cleared.batch,
						format_agr(cleared.provider_paid),
						format_agr(cleared.protocol_fee),
						format_agr(cleared.audit_fee)
					);
				}
			}
			for closing in events.find::<ev::ChannelClosing>() {
				let closing = closing?;
				if closing.channel == channel {
					closes_at = Some(closing.closes_at);
					println!("block {next}: the channel closes at block {}", closing.closes_at);
				}
			}
			for closed in events.find::<ev::ChannelClosed>() {
				let closed = closed?;
				if closed.channel == channel {
					println!(
						"block {next}: channel {channel} closed; {} came back to the client",
						format_agr(closed.refunded)
					);
					return Ok(());
				}
			}
			next += 1;
		}
		// Once the provider had its time to settle and every batch is paid or refunded.
		if closes_at.is_some_and(|at| best >= at) {
			let pending = MarketChain::channel(chain, channel).await?;
			if pending.is_some() && MarketChain::batches(chain, channel).await?.is_empty() {
				let finish = agora::transactions().inference().finish_close(channel);
				if let Err(e) = chain.submit("finish_close", finish).await {
					tracing::debug!("not closed yet: {e:#}");
				}
			}
		}
		tokio::time::sleep(Duration::from_secs(2)).await;
	}
	bail!("channel {channel} was not closed within {} s", timeout.as_secs())
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn amounts_of_agr_parse_to_plancks_and_nonsense_is_refused() {
		assert_eq!(parse_agr("2"), Ok(2 * AGR));
		assert_eq!(parse_agr("0.01"), Ok(AGR / 100));
		assert_eq!(parse_agr(".5"), Ok(AGR / 2));
		assert_eq!(parse_agr("1.000000000001"), Ok(AGR + 1));
		for bad in [
			"",
			".",
			"1.0000000000001",
			"-1",
			"1e3",
			"0x10",
			"1.2.3",
			"99999999999999999999999999999",
		] {
			assert!(parse_agr(bad).is_err(), "{bad}");
		}
	}
}
