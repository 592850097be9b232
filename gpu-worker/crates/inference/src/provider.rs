//! The provider daemon: serves one catalogued model version to the clients of its channels,
//! keeps the evidence of every answer, and settles the clients' latest receipts on chain in
//! batches, then collects the batches once their dispute window is over.
//!
//! What it accepts, and why:
//! - every request carries the client's signed receipt for all answers before it (the first
//!   request the receipt for none), so only the client can spend its channel and the provider
//!   is never owed more than one answer;
//! - a receipt must match the provider's own record exactly (count, amount at the channel's
//!   price, transcript head): a client cannot sign for fewer answers than it got;
//! - a request is answered only while the channel's balance covers it;
//! - a client's inputs and answers are its own: their evidence goes only to a validator drawn
//!   to audit that request (its registered peer id), never to any peer that asks;
//! - a request a client put on chain (a challenge: it says the provider did not answer) is
//!   answered on chain at the next look, after settling the latest receipt: unanswered by its
//!   deadline, it would cost the provider its stake. The answer is the channel's next request
//!   (answers served since the latest receipt are dropped from the evidence log), proved to
//!   auditors like any other.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agora_chain::{AccountId32, Balance};
use agora_ml::models::{Architecture, Model};
use agora_p2p::query::MAX_EVIDENCE_STEPS;
use agora_p2p::{
	BlobKey, BlobNetwork, InboundQuery, PeerId, QueryRequest, QueryResponse, SignedReceipt,
};
use anyhow::{anyhow, bail, Context, Result};
use tch::Device;
use tokio::sync::mpsc;

use crate::answer::{answer, answer_or_refusal};
use crate::evidence::{EvidenceLog, Replayed};
use crate::market::{BatchState, ChallengeView, ChannelView, MarketCall, MarketChain};
use crate::receipt::{content_hash, transcript_step, Receipt};

/// How often the provider looks at its channels on chain.
const TICK: Duration = Duration::from_secs(3);

pub struct ProviderConfig {
	/// Where the evidence logs are kept.
	pub state_dir: PathBuf,
	pub model: u64,
	pub version: u32,
	/// Price per request, in plancks.
	pub price: Balance,
	/// A channel is settled once this many of its requests are receipted but not settled
	/// (at most half of [`MAX_EVIDENCE_STEPS`])...
	pub settle_every: u64,
	/// ...or once its latest receipt is this old.
	pub settle_after: Duration,
	pub device: Device,
}

/// What the provider knows of one channel.
struct ChannelState {
	view: ChannelView,
	/// Requests answered.
	served: u64,
	/// Transcript head after the last answer.
	head: [u8; 32],
	/// The latest receipt the client signed, with its signature.
	receipt: Option<(Receipt, [u8; 64])>,
	receipt_at: Instant,
	/// Settle at the next look whatever the receipt's age (the client finished, or the receipt
	/// was restored after a restart).
	settle_now: bool,
	/// A request of the channel is being answered on chain: none is served off chain meanwhile.
	challenged: bool,
}

pub struct Provider<C> {
	chain: C,
	config: ProviderConfig,
	me: AccountId32,
	genesis: [u8; 32],
	model: Mutex<Model>,
	channels: Mutex<HashMap<u64, ChannelState>>,
	evidence: EvidenceLog,
	/// Held by the look that answers challenges (one at a time).
	answering: tokio::sync::Mutex<()>,
}

fn refused(reason: impl Into<String>) -> QueryResponse {
	QueryResponse::Refused { reason: reason.into() }
}

/// Fetches and loads a catalogued version: its weights from `peers`, checked against the hash
/// the catalogue lists.
pub async fn load_version<C: MarketChain, N: BlobNetwork>(
	chain: &C,
	net: &N,
	model: u64,
	version: u32,
	device: Device,
) -> Result<Model> {
	let (arch_id, hash) = chain
		.version(model, version)
		.await?
		.ok_or_else(|| anyhow!("model {model} has no version {version} in the catalogue"))?;
	let arch = Architecture::from_id(&arch_id)?;
	crate::answer::check_answer_size(&arch)?;
	let limit = agora_protocol::max_model_bytes(&arch)?;
	let peers = chain.all_peers().await?;
	let key = BlobKey::Blob(agora_core::Digest(hash));
	let bytes = net
		.fetch(key, limit, &peers, |_| Ok(()))
		.await
		.with_context(|| format!("fetching the weights of model {model} version {version}"))?;
	let params = agora_protocol::decode_model(&arch, &bytes)?;
	Ok(Model::new(&arch, &params, device)?)
}

impl<C: MarketChain> Provider<C> {
	/// A provider of `config.model`'s version `config.version`, its weights fetched from the
	/// network and checked against the catalogue.
	pub async fn start<N: BlobNetwork>(chain: C, net: &N, config: ProviderConfig) -> Result<Self> {
		let model = load_version(&chain, net, config.model, config.version, config.device).await?;
		Self::with_model(chain, model, config)
	}

	/// A provider of an already loaded model (tests; [`Provider::start`] otherwise).
	pub fn with_model(chain: C, model: Model, mut config: ProviderConfig) -> Result<Self> {
		// Settled well within what an auditor can ask the evidence of.
		config.settle_every = config.settle_every.clamp(1, MAX_EVIDENCE_STEPS / 2);
		let evidence = EvidenceLog::open(&config.state_dir.join("evidence"))?;
		Ok(Provider {
			me: chain.account(),
			genesis: chain.genesis(),
			chain,
			config,
			model: Mutex::new(model),
			channels: Mutex::new(HashMap::new()),
			answering: tokio::sync::Mutex::new(()),
			evidence,
		})
	}

	/// Offers the version at the configured price under `peer_id`, unless that offer stands.
	pub async fn offer(&self, peer_id: Vec<u8>) -> Result<()> {
		let wanted = (self.config.version, self.config.price, peer_id.clone());
		if self.chain.offer(&self.me, self.config.model).await? == Some(wanted) {
			return Ok(());
		}
		let Self { config, .. } = self;
		let call = MarketCall::Offer {
			model: config.model,
			version: config.version,
			price: config.price,
			peer_id,
		};
		self.chain.submit(call).await?;
		tracing::info!(model = config.model, version = config.version, price = %agora_chain::format_agr(config.price), "offered");
		Ok(())
	}

	/// Answers the queries that arrive on `queries` and settles and collects on chain, until
	/// the query channel closes.
	pub async fn run(&self, mut queries: mpsc::Receiver<InboundQuery>) -> Result<()> {
		self.restore().await?;
		let serve = async {
			while let Some(query) = queries.recv().await {
				let response = self.handle(query.peer, query.request).await;
				let _ = query.reply.send(response);
			}
		};
		let settle = async {
			loop {
				if let Err(e) = self.tick().await {
					tracing::warn!("provider: {e:#}");
				}
				tokio::time::sleep(TICK).await;
			}
		};
		tokio::select! {
			() = serve => Ok(()),
			() = settle => Ok(()),
		}
	}

	/// Answers one query from `peer`.
	pub async fn handle(&self, peer: PeerId, request: QueryRequest) -> QueryResponse {
		match request {
			QueryRequest::Predict { channel, index, input, receipt } => {
				let Some(receipt) = receipt else {
					return refused("a request carries the receipt for the answers before it");
				};
				self.predict(channel, index, input, receipt).await.unwrap_or_else(|e| {
					tracing::debug!(channel, index, "refused: {e:#}");
					refused(format!("{e:#}"))
				})
			},
			QueryRequest::Receipt { channel, receipt } => {
				match self.accept_final(channel, receipt).await {
					Ok(()) => QueryResponse::Accepted,
					Err(e) => refused(format!("{e:#}")),
				}
			},
			QueryRequest::Evidence { channel, first, last, request } => {
				match self.audited_by(peer, channel, first, last, request).await {
					Ok(true) => {},
					Ok(false) => {
						return refused("evidence goes only to the request's drawn auditors")
					},
					Err(e) => return refused(format!("cannot read the audits: {e:#}")),
				}
				match self.evidence.evidence(channel, first, last, request) {
					Ok(Some(e)) => {
						QueryResponse::Evidence { steps: e.steps, input: e.input, output: e.output }
					},
					Ok(None) => refused("no such requests"),
					Err(e) => refused(format!("evidence unreadable: {e:#}")),
				}
			},
		}
	}

	/// Whether `peer` is the node of a validator drawn to audit request `request` of the batch
	/// `first..=last` of `channel`.
	async fn audited_by(
		&self,
		peer: PeerId,
		channel: u64,
		first: u64,
		last: u64,
		request: u64,
	) -> Result<bool> {
		for audit in self.chain.audits().await? {
			if audit.request != request {
				continue;
			}
			let Some(batch) = self.chain.batch(audit.batch).await? else { continue };
			if (batch.channel, batch.first_request, batch.last_request) != (channel, first, last) {
				continue;
			}
			for auditor in &audit.auditors {
				if self.chain.validator_peer(&auditor.who).await?.is_some_and(|p| p.id == peer) {
					return Ok(true);
				}
			}
		}
		Ok(false)
	}

	/// Loads the channel into the cache (from the chain and the evidence log) if it is not
	/// there yet.
	async fn ensure_channel(&self, channel: u64) -> Result<()> {
		if self.channels.lock().expect("not poisoned").contains_key(&channel) {
			return Ok(());
		}
		let view =
			self.chain.channel(channel).await?.ok_or_else(|| anyhow!("no channel {channel}"))?;
		if view.provider != self.me {
			bail!("channel {channel} is another provider's");
		}
		if (view.model, view.version) != (self.config.model, self.config.version) {
			bail!("channel {channel} is for model {} version {}", view.model, view.version);
		}
		let replayed = self.evidence.replay(channel)?;
		let receipt = self.stored_receipt(&view, &replayed);
		let state = ChannelState {
			view,
			served: replayed.served,
			head: replayed.head,
			receipt,
			receipt_at: Instant::now(),
			settle_now: false,
			challenged: false,
		};
		self.channels.lock().expect("not poisoned").entry(channel).or_insert(state);
		Ok(())
	}

	/// Checks that `signed` is the client's receipt for exactly the answers served so far.
	fn check_receipt(&self, state: &ChannelState, signed: &SignedReceipt) -> Result<Receipt> {
		let receipt =
			Receipt::verify(state.view.id, signed, &state.view.client.0, &self.genesis)
				.ok_or_else(|| anyhow!("the receipt is not signed by the channel's client"))?;
		let owed = Self::owed(&state.view, state.served)?;
		if (receipt.requests, receipt.amount, receipt.transcript)
			!= (state.served, owed, state.head)
		{
			bail!(
				"the receipt is for {} requests and {} plancks; {} were answered, owing {owed}",
				receipt.requests,
				receipt.amount,
				state.served
			);
		}
		Ok(receipt)
	}

	/// What a client owes for `served` answers: the settled amount, and the price of each
	/// answer beyond (a request answered on chain may have been settled below the price).
	fn owed(view: &ChannelView, served: u64) -> Result<Balance> {
		let unsettled = served.saturating_sub(view.settled_requests);
		view.price
			.checked_mul(u128::from(unsettled))
			.and_then(|owed| owed.checked_add(view.settled_amount))
			.ok_or_else(|| anyhow!("amount overflows"))
	}

	fn receipt_path(&self, channel: u64) -> PathBuf {
		self.config.state_dir.join("receipts").join(format!("channel-{channel}.json"))
	}

	/// Keeps the latest receipt, in memory and on disk (a restart must still be able to settle
	/// what was answered).
	fn record_receipt(
		&self,
		state: &mut ChannelState,
		receipt: Receipt,
		signed: &SignedReceipt,
	) -> Result<()> {
		if receipt.requests == 0 {
			return Ok(());
		}
		let mut signature = [0u8; 64];
		signature.copy_from_slice(&signed.signature);
		agora_core::state::write_json(&self.receipt_path(receipt.channel), signed)?;
		state.receipt = Some((receipt, signature));
		state.receipt_at = Instant::now();
		state.settle_now = false;
		Ok(())
	}

	/// Takes back the channels with receipts on disk (after a restart), so that they are
	/// settled and collected without waiting for their clients.
	async fn restore(&self) -> Result<()> {
		let dir = self.config.state_dir.join("receipts");
		let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
		for entry in entries.flatten() {
			let name = entry.file_name().to_string_lossy().into_owned();
			let Some(channel) = name
				.strip_prefix("channel-")
				.and_then(|rest| rest.strip_suffix(".json"))
				.and_then(|id| id.parse::<u64>().ok())
			else {
				continue;
			};
			// Loading the channel takes its receipt back from disk (`stored_receipt`).
			if let Err(e) = self.ensure_channel(channel).await {
				tracing::info!(channel, "not resuming: {e:#}");
				let _ = std::fs::remove_file(entry.path());
				continue;
			}
			if let Some(state) = self.channels.lock().expect("not poisoned").get_mut(&channel) {
				state.settle_now = state.receipt.is_some();
			}
		}
		Ok(())
	}

	/// The channel's latest receipt kept on disk, if it is beyond the settled count and the
	/// evidence log proves it: a receipt for answers whose evidence a crash lost would be
	/// judged `Unavailable` if settled.
	fn stored_receipt(
		&self,
		view: &ChannelView,
		replayed: &Replayed,
	) -> Option<(Receipt, [u8; 64])> {
		let signed =
			agora_core::state::read_json::<SignedReceipt>(&self.receipt_path(view.id)).ok()??;
		let receipt = Receipt::verify(view.id, &signed, &view.client.0, &self.genesis)?;
		let provable = receipt.requests < replayed.served
			|| (receipt.requests == replayed.served && receipt.transcript == replayed.head);
		if !provable {
			tracing::warn!(
				channel = view.id,
				receipted = receipt.requests,
				logged = replayed.served,
				"not settling a receipt the evidence log cannot prove"
			);
			return None;
		}
		let mut signature = [0u8; 64];
		signature.copy_from_slice(signed.signature.get(..64)?);
		(receipt.requests > view.settled_requests).then_some((receipt, signature))
	}

	async fn predict(
		&self,
		channel: u64,
		index: u64,
		input: Vec<u8>,
		signed: SignedReceipt,
	) -> Result<QueryResponse> {
		self.ensure_channel(channel).await?;
		let affordable = {
			let mut channels = self.channels.lock().expect("not poisoned");
			let state = channels.get_mut(&channel).ok_or_else(|| anyhow!("no channel"))?;
			if state.challenged {
				// Answered on chain first (no receipt taken meanwhile: the log is being cut
				// back to the one the answer settles); the client may ask again after.
				return Ok(QueryResponse::Busy);
			}
			if index != state.served + 1 {
				bail!("expected request {}", state.served + 1);
			}
			let receipt = self.check_receipt(state, &signed)?;
			self.record_receipt(state, receipt, &signed)?;
			if state.view.closes_at.is_some() {
				bail!("the channel is closing");
			}
			// A batch larger than one evidence answer carries could not be proved to its
			// auditors (and would be judged `Unavailable`): answer no further until a
			// settlement catches up, keeping one request of room for an answer on chain.
			if index.saturating_sub(state.view.settled_requests) >= MAX_EVIDENCE_STEPS {
				return Ok(QueryResponse::Busy);
			}
			let owed = Self::owed(&state.view, index).ok();
			owed.is_some_and(|o| o <= state.view.payable_up_to())
		};
		if !affordable {
			// The client may have topped up since the last look.
			self.refresh(channel).await?;
			let channels = self.channels.lock().expect("not poisoned");
			let state = channels.get(&channel).ok_or_else(|| anyhow!("no channel"))?;
			let owed = Self::owed(&state.view, index).ok();
			if owed.is_none_or(|o| o > state.view.payable_up_to()) {
				bail!("the channel's balance is spent: top it up");
			}
		}
		let output = {
			let model = self.model.lock().expect("not poisoned");
			answer(&model, &input)?
		};
		// Checked again: a challenge may have been answered while the model ran.
		let mut channels = self.channels.lock().expect("not poisoned");
		let state = channels.get_mut(&channel).ok_or_else(|| anyhow!("no channel"))?;
		if state.challenged || index != state.served + 1 {
			return Ok(QueryResponse::Busy);
		}
		self.evidence.append(channel, index, &input, &output)?;
		state.head =
			transcript_step(&state.head, index, &content_hash(&input), &content_hash(&output));
		state.served = index;
		Ok(QueryResponse::Answer { output })
	}

	async fn accept_final(&self, channel: u64, signed: SignedReceipt) -> Result<()> {
		self.ensure_channel(channel).await?;
		let mut channels = self.channels.lock().expect("not poisoned");
		let state = channels.get_mut(&channel).ok_or_else(|| anyhow!("no channel"))?;
		if state.challenged {
			bail!("a request of the channel is being answered on chain");
		}
		let receipt = self.check_receipt(state, &signed)?;
		self.record_receipt(state, receipt, &signed)?;
		// Settled at the next look: the client has finished.
		state.settle_now = true;
		Ok(())
	}

	/// Reads the channel from the chain again; forgets it once it is gone.
	async fn refresh(&self, channel: u64) -> Result<Option<ChannelView>> {
		let view = self.chain.channel(channel).await?;
		let mut channels = self.channels.lock().expect("not poisoned");
		match &view {
			Some(view) => {
				if let Some(state) = channels.get_mut(&channel) {
					state.view = view.clone();
				}
			},
			None => {
				// Closed and finished: nothing more to settle or prove.
				channels.remove(&channel);
				let _ = std::fs::remove_file(self.receipt_path(channel));
			},
		}
		Ok(view)
	}

	/// Answers on chain every request its clients put there, all at once (many may come
	/// together, and each unanswered one costs stake).
	async fn answer_challenges(&self) -> Result<()> {
		let _one_look = self.answering.lock().await;
		let challenges = self.chain.challenges(&self.me).await?;
		// Channels whose challenge is over (answered or expired) are served again.
		let over: Vec<u64> = {
			let channels = self.channels.lock().expect("not poisoned");
			channels
				.iter()
				.filter(|(id, state)| {
					state.challenged && !challenges.iter().any(|c| c.channel == **id)
				})
				.map(|(id, _)| *id)
				.collect()
		};
		for channel in over {
			if let Err(e) = self.resync(channel).await {
				tracing::warn!(channel, "taking the channel back after its challenge: {e:#}");
			}
		}
		let answers =
			futures::future::join_all(challenges.iter().map(|c| self.answer_challenge(c)));
		for (challenge, result) in challenges.iter().zip(answers.await) {
			let channel = challenge.channel;
			match result {
				Ok(()) => tracing::info!(channel, "answered a request put on chain"),
				Err(e) => tracing::warn!(
					channel,
					deadline = challenge.deadline,
					"answering the request put on chain failed: {e:#}"
				),
			}
		}
		Ok(())
	}

	/// Answers `challenge` on chain as the next request after the client's latest receipt,
	/// which it settles in the same call.
	async fn answer_challenge(&self, challenge: &ChallengeView) -> Result<()> {
		let channel = challenge.channel;
		// A channel of another model or version is not this daemon's to answer (a provider
		// must keep serving a version while channels for it are open).
		self.ensure_channel(channel).await?;
		let receipt = {
			let mut channels = self.channels.lock().expect("not poisoned");
			let state = channels.get_mut(&channel).ok_or_else(|| anyhow!("no channel"))?;
			// No answer is served over the network until the chain shows the challenge over.
			state.challenged = true;
			state.receipt
		};
		let view =
			self.refresh(channel).await?.ok_or_else(|| anyhow!("channel {channel} is gone"))?;
		// An earlier attempt may have landed late: then the challenge is over.
		if !self.chain.challenges(&self.me).await?.iter().any(|c| c.channel == channel) {
			return self.resync(channel).await;
		}
		let receipt = receipt.filter(|(r, _)| r.requests > view.settled_requests);
		let kept = receipt.map_or(view.settled_requests, |(r, _)| r.requests);
		let output = {
			let model = self.model.lock().expect("not poisoned");
			answer_or_refusal(&model, &challenge.input)?
		};
		// The answers after the receipt were never receipted: the chain's request `kept + 1`
		// is the challenged one. Done again on every attempt, so a retry logs the same.
		self.evidence.truncate(channel, kept)?;
		if self.evidence.replay(channel)?.served != kept {
			bail!("the evidence log does not hold the {kept} receipted requests");
		}
		self.evidence.append(channel, kept + 1, &challenge.input, &output)?;
		self.evidence.sync(channel)?;
		let replayed = self.evidence.replay(channel)?;
		if let Some(state) = self.channels.lock().expect("not poisoned").get_mut(&channel) {
			(state.served, state.head) = (replayed.served, replayed.head);
		}
		self.chain.submit(MarketCall::AnswerChallenge { channel, output, receipt }).await?;
		self.resync(channel).await
	}

	/// Takes the channel back from the chain and the evidence log after a challenge: answers
	/// served, transcript head, a receipt only if it is beyond the settled count.
	async fn resync(&self, channel: u64) -> Result<()> {
		let view = self.refresh(channel).await?;
		let open = self.chain.challenges(&self.me).await?.iter().any(|c| c.channel == channel);
		if let (false, Some(view)) = (open, &view) {
			// Nothing was served while challenged: what the log holds beyond the chain's
			// count is an answer on chain that did not land.
			self.evidence.truncate(channel, view.settled_requests)?;
		}
		let replayed = self.evidence.replay(channel)?;
		let mut channels = self.channels.lock().expect("not poisoned");
		if let (Some(state), Some(view)) = (channels.get_mut(&channel), view) {
			state.served = replayed.served;
			state.head = replayed.head;
			if state.receipt.is_some_and(|(r, _)| r.requests <= view.settled_requests) {
				state.receipt = None;
			}
			state.settle_now = false;
			state.challenged = open;
			state.view = view;
		}
		Ok(())
	}

	/// One look at every channel: answer what was put on chain, settle what is due, collect
	/// what is payable.
	pub async fn tick(&self) -> Result<()> {
		if let Err(e) = self.answer_challenges().await {
			tracing::warn!("reading the requests put on chain: {e:#}");
		}
		let ids: Vec<u64> = self.channels.lock().expect("not poisoned").keys().copied().collect();
		let now = self.chain.best_number().await?;
		let window = self.chain.dispute_window().await?;
		for channel in ids {
			let Some(view) = self.refresh(channel).await? else { continue };
			let due = {
				let channels = self.channels.lock().expect("not poisoned");
				// A challenged channel settles with its answer on chain.
				channels.get(&channel).filter(|state| !state.challenged).and_then(|state| {
					let (receipt, signature) = state.receipt?;
					let unsettled = receipt.requests.checked_sub(view.settled_requests)?;
					let closing = view.closes_at.is_some();
					let due = unsettled >= self.config.settle_every
						|| (unsettled > 0
							&& (closing
								|| state.settle_now || state.receipt_at.elapsed()
								>= self.config.settle_after));
					due.then_some((receipt, signature))
				})
			};
			if let Some((receipt, signature)) = due {
				// What is settled must be provable after a crash.
				self.evidence.sync(channel)?;
				match self.chain.submit(MarketCall::Settle { receipt, signature }).await {
					Ok(()) => tracing::info!(
						channel,
						requests = receipt.requests,
						amount = %agora_chain::format_agr(receipt.amount),
						"settled"
					),
					Err(e) => tracing::warn!(channel, "settling failed: {e:#}"),
				}
			}
			for batch in self.chain.batches(channel).await? {
				if batch.state == BatchState::Open && now > batch.settled_at.saturating_add(window)
				{
					match self.chain.submit(MarketCall::ClearBatch { batch: batch.id }).await {
						Ok(()) => tracing::info!(
							channel,
							batch = batch.id,
							amount = %agora_chain::format_agr(batch.amount),
							"batch paid"
						),
						Err(e) => tracing::debug!(batch = batch.id, "clearing failed: {e:#}"),
					}
				}
			}
		}
		Ok(())
	}

	/// Requests answered on `channel` so far.
	pub fn served(&self, channel: u64) -> u64 {
		self.channels.lock().expect("not poisoned").get(&channel).map_or(0, |s| s.served)
	}
}
