//! [`Chain`]: the client of one node over its RPC (WebSocket or HTTP), with a signing account.
//!
//! Reads are made at the node's best block (duties appear as soon as their block is authored,
//! not one or two blocks later at finality), and transactions take their nonce from the node's
//! pool (`system_accountNextIndex`), so a call submitted right after another one is not
//! rejected as outdated.
//!
//! The connection survives the node: when a read fails and the node does not answer a health
//! probe either, the client reconnects (at most once per backoff interval, 1 s doubling to
//! 30 s), resubscribes to new blocks and takes nonces from the node again, so a daemon carries
//! on with its duties after the node restarts without a restart of its own.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures::FutureExt;
use subxt::config::substrate::H256;
use subxt::config::{Header as _, PolkadotExtrinsicParamsBuilder, RpcConfigFor};
use subxt::rpcs::client::RpcSubscription;
use subxt::rpcs::{LegacyRpcMethods, RpcClient};
use subxt::utils::AccountId32;
use subxt::{OnlineClient, PolkadotConfig};
use subxt_signer::sr25519::Keypair;
use subxt_signer::SecretUri;
use tokio::sync::Mutex;

use crate::api::{ChainApi, JobInfo, Pending, PendingDuty, ProtocolCall, RoundInfo};
use crate::{
	agora, bounded, Balance, BlockNumber, CatalogueEntry, Endpoint, Seats, Update,
	VerificationStage,
};

/// How long a health probe of the node may take before the connection counts as lost.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// First and largest pause between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

type Rpc = LegacyRpcMethods<RpcConfigFor<PolkadotConfig>>;
type Heads = RpcSubscription<<RpcConfigFor<PolkadotConfig> as subxt::rpcs::RpcConfig>::Header>;
/// The client at one block.
pub type AtBlock = subxt::client::ClientAtBlock<
	PolkadotConfig,
	subxt::client::OnlineClientAtBlockImpl<PolkadotConfig>,
>;

/// A registration as the contributions pallet stores it.
type Participant =
	agora::runtime_types::pallet_contributions::types::Participant<Balance, BlockNumber>;
use agora::runtime_types::pallet_contributions::types::ParticipantStatus;

/// Where `account`'s registration says it serves blobs.
fn endpoint(account: AccountId32, is_worker: bool, registered: Participant) -> Endpoint {
	Endpoint {
		account,
		is_worker,
		stake: registered.stake,
		active: matches!(registered.status, ParticipantStatus::Active),
		peer_id: registered.peer_id.0,
		multiaddr: registered.multiaddr.0,
	}
}

/// The registrations read at one best block.
type EndpointsAt = (H256, Vec<Endpoint>);

/// One open connection to the node.
#[derive(Clone)]
struct Connection {
	api: OnlineClient<PolkadotConfig>,
	rpc: Rpc,
	/// Which connection this is (0 for the first): a failure on an old one is not a reason
	/// to replace a newer one.
	generation: u64,
}

impl Connection {
	async fn open(url: &str, generation: u64) -> Result<Self> {
		let rpc_client = tokio::time::timeout(CONNECT_TIMEOUT, RpcClient::from_insecure_url(url))
			.await
			.map_err(|_| anyhow!("connecting to the node at {url}: timed out"))?
			.with_context(|| format!("connecting to the node at {url}"))?;
		let api = OnlineClient::<PolkadotConfig>::from_rpc_client(rpc_client.clone())
			.await
			.with_context(|| format!("reading the chain's metadata from {url}"))?;
		Ok(Connection { api, rpc: LegacyRpcMethods::new(rpc_client), generation })
	}
}

/// When the next reconnection may be tried.
struct Backoff {
	next_attempt: Instant,
	delay: Duration,
}

/// A connection to a node and the account that signs.
#[derive(Clone)]
pub struct Chain {
	url: String,
	connection: Arc<Mutex<Connection>>,
	backoff: Arc<Mutex<Backoff>>,
	/// New best blocks, subscribed on first use and again after a reconnection.
	heads: Arc<Mutex<Option<Heads>>>,
	/// Registrations read at one best block: a daemon asks for peers many times per block.
	endpoints: Arc<Mutex<Option<EndpointsAt>>>,
	signer: Keypair,
	/// The chain's genesis hash (what receipts and transactions are signed for).
	genesis: H256,
	/// The runtime's target block time.
	block_time: Duration,
	/// The nonce after the last transaction this client sent and has not yet seen in a block
	/// (0: none): the node's pool does not always count a transaction sent a moment ago, and
	/// reusing its nonce would replace it.
	next_nonce: Arc<Mutex<u64>>,
}

/// Loads an sr25519 key: `suri` is a secret URI (a dev seed such as `//Alice`, or a mnemonic
/// with optional derivation path); a key file holds one such URI on its first line.
pub fn load_signer(suri: Option<&str>, key_file: Option<&Path>) -> Result<Keypair> {
	let uri = match (suri, key_file) {
		(Some(suri), None) => suri.to_string(),
		(None, Some(path)) => std::fs::read_to_string(path)
			.with_context(|| format!("reading key file {}", path.display()))?
			.lines()
			.next()
			.unwrap_or_default()
			.trim()
			.to_string(),
		(Some(_), Some(_)) => bail!("give either --suri or --key-file, not both"),
		(None, None) => bail!("no key: give --suri (e.g. //Alice on a dev chain) or --key-file"),
	};
	let parsed: SecretUri = uri.parse().map_err(|e| anyhow!("invalid secret URI: {e}"))?;
	Keypair::from_uri(&parsed).map_err(|e| anyhow!("invalid key: {e}"))
}

impl Chain {
	/// Connects to the node at `url` (ws:// or http://) and signs with `signer`.
	pub async fn connect(url: &str, signer: Keypair) -> Result<Self> {
		let connection = Connection::open(url, 0).await?;
		let genesis = connection.api.genesis_hash();
		// Read without the compiled-in metadata's check: a runtime built with other block
		// times (`fast-blocks`) differs from it in such values only.
		let millis = connection
			.api
			.at_current_block()
			.await?
			.constants()
			.entry(subxt::dynamic::constant::<u64>("Babe", "ExpectedBlockTime"))
			.context("reading the chain's block time")?;
		Ok(Chain {
			url: url.to_string(),
			connection: Arc::new(Mutex::new(connection)),
			backoff: Arc::new(Mutex::new(Backoff {
				next_attempt: Instant::now(),
				delay: BACKOFF_MIN,
			})),
			heads: Default::default(),
			endpoints: Default::default(),
			signer,
			genesis,
			block_time: Duration::from_millis(millis.max(1)),
			next_nonce: Default::default(),
		})
	}

	async fn connection(&self) -> Connection {
		self.connection.lock().await.clone()
	}

	/// Called after a request on `failed` went wrong: if the node does not answer a health
	/// probe either, opens a new connection (when the backoff allows). Never fails: the caller
	/// reports its own error, and the next request uses whatever connection is current.
	async fn recover(&self, failed: &Connection) {
		let probe = tokio::time::timeout(PROBE_TIMEOUT, failed.rpc.system_health()).await;
		if matches!(probe, Ok(Ok(_))) {
			return;
		}
		let mut backoff = self.backoff.lock().await;
		if self.connection.lock().await.generation != failed.generation
			|| Instant::now() < backoff.next_attempt
		{
			return;
		}
		match Connection::open(&self.url, failed.generation + 1).await {
			Ok(connection) => {
				tracing::info!(url = %self.url, "reconnected to the node");
				*self.connection.lock().await = connection;
				*self.heads.lock().await = None;
				*self.endpoints.lock().await = None;
				*self.next_nonce.lock().await = 0;
				backoff.delay = BACKOFF_MIN;
				backoff.next_attempt = Instant::now();
			},
			Err(e) => {
				tracing::warn!(url = %self.url, retry_in = ?backoff.delay, "node unreachable: {e:#}");
				backoff.next_attempt = Instant::now() + backoff.delay;
				backoff.delay = (backoff.delay * 2).min(BACKOFF_MAX);
			},
		}
	}

	/// The client at the node's best block.
	async fn best(&self) -> Result<AtBlock> {
		let connection = self.connection().await;
		let result = async {
			let hash = connection
				.rpc
				.chain_get_block_hash(None)
				.await?
				.ok_or_else(|| anyhow!("the node has no best block"))?;
			Ok::<_, anyhow::Error>(connection.api.at_block(hash).await?)
		}
		.await;
		if result.is_err() {
			self.recover(&connection).await;
		}
		result
	}

	/// The signing account.
	pub fn account(&self) -> AccountId32 {
		self.signer.public_key().to_account_id()
	}

	/// The signing key (clients sign off-chain receipts with it too).
	pub fn signer(&self) -> &Keypair {
		&self.signer
	}

	/// The chain's genesis hash.
	pub fn genesis_hash(&self) -> H256 {
		self.genesis
	}

	/// The client at the node's best block, for reads this type has no method for.
	pub async fn at_best(&self) -> Result<AtBlock> {
		self.best().await
	}

	/// The client at block `number` of the best chain (for reading its events).
	pub async fn at_number(&self, number: BlockNumber) -> Result<AtBlock> {
		let connection = self.connection().await;
		let result = connection.api.at_block(u64::from(number)).await;
		if result.is_err() {
			self.recover(&connection).await;
		}
		Ok(result?)
	}

	/// Number of the best block.
	pub async fn best_number(&self) -> Result<BlockNumber> {
		let at = self.best().await?;
		u32::try_from(at.block_number()).context("block number overflows u32")
	}

	/// Signs `call`, submits it and waits until it is in a best block; fails with the
	/// dispatch error (e.g. `Tasks::NotSelected`) if the call failed.
	pub async fn submit<Call>(&self, what: &str, call: Call) -> Result<()>
	where
		Call: subxt::transactions::Payload,
	{
		self.submit_with_events(what, call).await.map(|_| ())
	}

	/// [`Chain::submit`], returning the call's events.
	///
	/// A transaction refused at once because its nonce was already used ([`StaleNonce`]: the
	/// node counted the account's transactions on a fork it has since left) was never in the
	/// pool, so it is signed again above that nonce, up to [`STALE_NONCE_ATTEMPTS`] times. One
	/// the pool took in and later found outdated may be in a block of another fork: it is an
	/// error, never signed again.
	pub async fn submit_with_events<Call>(
		&self,
		what: &str,
		call: Call,
	) -> Result<subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>>
	where
		Call: subxt::transactions::Payload,
	{
		let mut attempt = 1;
		loop {
			let result = match self.send_ref(what, &call).await {
				Ok(inclusion) => inclusion.wait().await,
				Err(e) => Err(e),
			};
			match result {
				Err(e) if e.is::<StaleNonce>() && attempt < STALE_NONCE_ATTEMPTS => {
					tracing::warn!(what, attempt, "{e:#}; signing it again with the next nonce");
					attempt += 1;
				},
				result => return result,
			}
		}
	}

	/// Signs `call` and submits it to the node's pool without waiting for a block. Several
	/// calls sent in a row get consecutive nonces and can land in the same block.
	pub async fn send<Call>(&self, what: &str, call: Call) -> Result<Inclusion>
	where
		Call: subxt::transactions::Payload,
	{
		self.send_ref(what, &call).await
	}

	async fn send_ref<Call>(&self, what: &str, call: &Call) -> Result<Inclusion>
	where
		Call: subxt::transactions::Payload,
	{
		let connection = self.connection().await;
		let result = self.send_on(&connection, what, call).await;
		if result.is_err() {
			self.recover(&connection).await;
		}
		result
	}

	async fn send_on<Call>(
		&self,
		connection: &Connection,
		what: &str,
		call: &Call,
	) -> Result<Inclusion>
	where
		Call: subxt::transactions::Payload,
	{
		// Signed at the finalized block: the transaction's mortality names its birth block, and
		// a best block may still be retracted by a BABE fork, which would make it invalid.
		let at = connection.api.at_current_block().await?;
		// Held until the transaction is in the pool, so concurrent sends take turns.
		let mut next_nonce = self.next_nonce.lock().await;
		let from_node = connection.rpc.system_account_next_index(&self.account()).await?;
		let nonce = from_node.max(*next_nonce);
		let params = PolkadotExtrinsicParamsBuilder::<PolkadotConfig>::new().nonce(nonce).build();
		let sent = at.transactions().sign_and_submit_then_watch(call, &self.signer, params).await;
		match sent {
			Ok(progress) => {
				*next_nonce = nonce + 1;
				Ok(Inclusion {
					what: what.to_string(),
					nonce,
					progress,
					sent: Instant::now(),
					next_nonce: self.next_nonce.clone(),
				})
			},
			// Refused when submitted: never in the pool (see `Inclusion::wait`).
			Err(e) if is_stale(&e.to_string()) => {
				*next_nonce = (*next_nonce).max(nonce + 1);
				Err(StaleNonce { what: what.to_string(), nonce }.into())
			},
			Err(e) => {
				// Start again from the node's view (e.g. after a transaction was dropped).
				*next_nonce = 0;
				Err(e).with_context(|| format!("submitting {what}"))
			},
		}
	}

	/// What each account claimed from the reward pool and lost to slashes, from the events of
	/// every block up to the best one (meant for local and test networks: it reads the whole
	/// chain).
	pub async fn ledger(&self) -> Result<Ledger> {
		let best = self.best().await?.block_number();
		let connection = self.connection().await;
		let mut ledger = Ledger::default();
		for number in 1..=best {
			let at = connection.api.at_block(number).await?;
			let events = at.events().fetch().await?;
			for claim in events.find::<agora::rewards::events::Claimed>() {
				let claim = claim?;
				*ledger.claimed.entry(claim.who.0).or_default() += claim.amount;
			}
			for slash in events.find::<agora::contributions::events::Slashed>() {
				let slash = slash?;
				*ledger.slashed.entry(slash.who.0).or_default() += slash.amount;
			}
		}
		Ok(ledger)
	}

	/// The job's details through `TasksApi_job`.
	pub async fn job(&self, job: u64) -> Result<Option<JobInfo>> {
		let at = self.best().await?;
		Ok(at.runtime_apis().call(agora::runtime_apis().tasks_api().job(job)).await?)
	}

	/// The job's current round through `TasksApi_round_status`.
	pub async fn round_status(&self, job: u64) -> Result<Option<RoundInfo>> {
		let at = self.best().await?;
		Ok(at.runtime_apis().call(agora::runtime_apis().tasks_api().round_status(job)).await?)
	}

	/// What `who` must do now, through `TasksApi_pending_duties`.
	pub async fn duties(&self, who: &AccountId32) -> Result<Vec<PendingDuty>> {
		let at = self.best().await?;
		Ok(at.runtime_apis().call(agora::runtime_apis().tasks_api().pending_duties(*who)).await?)
	}

	/// Ids of the jobs that are running.
	pub async fn active_jobs(&self) -> Result<Vec<u64>> {
		let at = self.best().await?;
		let jobs =
			at.storage().fetch(agora::storage().tasks().active_jobs(), ()).await?.decode()?;
		Ok(jobs.0.into_iter().map(|(job, _)| job).collect())
	}

	/// `who`'s registration as a worker or validator.
	pub async fn registration(
		&self,
		who: &AccountId32,
		as_worker: bool,
	) -> Result<Option<Endpoint>> {
		let at = self.best().await?;
		let storage = at.storage();
		let participant = if as_worker {
			storage.try_fetch(agora::storage().contributions().workers(), (*who,)).await?
		} else {
			storage.try_fetch(agora::storage().contributions().validators(), (*who,)).await?
		};
		Ok(participant
			.map(|value| value.decode())
			.transpose()?
			.map(|p| endpoint(*who, as_worker, p)))
	}

	/// The validator seats at the best block.
	pub async fn seats(&self) -> Result<Seats> {
		let at = self.best().await?;
		let seated = at
			.storage()
			.fetch(agora::storage().contributions().validator_seats(), ())
			.await?
			.decode()?;
		let capacity = at.constants().entry(agora::constants().contributions().max_validators())?;
		let params =
			at.storage().fetch(agora::storage().contributions().protocol_params(), ()).await?;
		let minimum = params.decode()?.min_validator_stake;
		Ok(Seats { seated: seated.0, capacity, minimum })
	}

	/// `who`'s bonded stake as a worker or validator, if registered.
	pub async fn stake(&self, who: &AccountId32, as_worker: bool) -> Result<Option<Balance>> {
		Ok(self.registration(who, as_worker).await?.map(|e| e.stake))
	}

	/// Every registered worker and validator with its endpoint (whom to ask for a blob): read
	/// once per best block, however often it is asked for.
	pub async fn all_endpoints(&self) -> Result<Vec<Endpoint>> {
		let at = self.best().await?;
		let hash = at.block_hash();
		if let Some((cached_at, endpoints)) = &*self.endpoints.lock().await {
			if *cached_at == hash {
				return Ok(endpoints.clone());
			}
		}
		let mut endpoints = Vec::new();
		let mut workers = at.storage().iter(agora::storage().contributions().workers(), ()).await?;
		while let Some(entry) = workers.next().await {
			let entry = entry?;
			endpoints.push(endpoint(entry.key()?.decode()?.0, true, entry.value().decode()?));
		}
		let mut validators =
			at.storage().iter(agora::storage().contributions().validators(), ()).await?;
		while let Some(entry) = validators.next().await {
			let entry = entry?;
			endpoints.push(endpoint(entry.key()?.decode()?.0, false, entry.value().decode()?));
		}
		*self.endpoints.lock().await = Some((hash, endpoints.clone()));
		Ok(endpoints)
	}

	/// The inference market's catalogue: every listed model with its versions and offers,
	/// by model id.
	pub async fn catalogue(&self) -> Result<Vec<CatalogueEntry>> {
		use agora::runtime_types::pallet_inference::types::Access;
		let at = self.best().await?;
		let mut entries = Vec::new();
		let mut models = at.storage().iter(agora::storage().inference().models(), ()).await?;
		while let Some(entry) = models.next().await {
			let entry = entry?;
			let model = entry.key()?.decode()?.0;
			let value = entry.value().decode()?;
			entries.push(CatalogueEntry {
				model,
				owner: value.owner,
				architecture: String::from_utf8_lossy(&value.architecture.0).into_owned(),
				license: String::from_utf8_lossy(&value.license.0).into_owned(),
				access: match value.access {
					Access::Public => "Public".into(),
					Access::OwnerOnly => "OwnerOnly".into(),
				},
				versions: Vec::new(),
				offers: Vec::new(),
			});
		}
		let mut versions = at.storage().iter(agora::storage().inference().versions(), ()).await?;
		while let Some(version) = versions.next().await {
			let version = version?;
			let (model, round) = version.key()?.decode()?;
			let value = version.value().decode()?;
			if let Some(entry) = entries.iter_mut().find(|e| e.model == model) {
				entry.versions.push((round, value.model, value.score.0));
			}
		}
		let mut offers = at.storage().iter(agora::storage().inference().offers(), ()).await?;
		while let Some(offer) = offers.next().await {
			let offer = offer?;
			let (provider, model) = offer.key()?.decode()?;
			let value = offer.value().decode()?;
			if let Some(entry) = entries.iter_mut().find(|e| e.model == model) {
				entry.offers.push((provider, value.version, value.price, value.peer_id.0));
			}
		}
		entries.sort_by_key(|e| e.model);
		for entry in &mut entries {
			entry.versions.sort_by_key(|v| v.0);
		}
		Ok(entries)
	}

	/// The update `worker` submitted in the job's current round.
	pub async fn update(&self, job: u64, worker: &AccountId32) -> Result<Option<Update>> {
		let at = self.best().await?;
		Ok(at
			.storage()
			.try_fetch(agora::storage().tasks().updates(), (job, *worker))
			.await?
			.map(|value| value.decode())
			.transpose()?)
	}

	/// The round's verification: `(round, accepted workers)`, if the job is being verified.
	pub async fn accepted_workers(&self, job: u64) -> Result<Option<(u32, Vec<AccountId32>)>> {
		let at = self.best().await?;
		let Some(value) =
			at.storage().try_fetch(agora::storage().validation().verifications(), (job,)).await?
		else {
			return Ok(None);
		};
		let verification = value.decode()?;
		Ok(Some((
			verification.round,
			verification.accepted.0.into_iter().map(|(worker, _)| worker).collect(),
		)))
	}

	/// The workers drawn for `job`'s next round (`Tasks::NextRoundWorkers`), in draw order.
	pub async fn next_round_workers(&self, job: u64) -> Result<Vec<AccountId32>> {
		let at = self.best().await?;
		let Some(value) =
			at.storage().try_fetch(agora::storage().tasks().next_round_workers(), (job,)).await?
		else {
			return Ok(Vec::new());
		};
		Ok(value.decode()?.0.into_iter().map(|slot| slot.who).collect())
	}

	/// The round and stage of `job`'s verification, if one is in progress.
	pub async fn verification_stage(&self, job: u64) -> Result<Option<(u32, VerificationStage)>> {
		let at = self.best().await?;
		let value =
			at.storage().try_fetch(agora::storage().validation().verifications(), (job,)).await?;
		Ok(match value {
			Some(value) => {
				let verification = value.decode()?;
				Some((verification.round, verification.stage))
			},
			None => None,
		})
	}

	/// Whether `worker` exposed its update of `job` as planted.
	pub async fn plant_exposed(&self, job: u64, worker: &AccountId32) -> Result<bool> {
		let at = self.best().await?;
		let key = (job, *worker);
		Ok(at
			.storage()
			.try_fetch(agora::storage().validation().exposed_plants(), key)
			.await?
			.is_some())
	}

	/// What `who` is owed by the reward pool.
	pub async fn pending_reward(&self, who: &AccountId32) -> Result<Balance> {
		let at = self.best().await?;
		Ok(at
			.storage()
			.try_fetch(agora::storage().rewards().pending(), (*who,))
			.await?
			.map(|value| value.decode())
			.transpose()?
			.unwrap_or(0))
	}

	/// The account's free balance.
	pub async fn free_balance(&self, who: &AccountId32) -> Result<Balance> {
		let at = self.best().await?;
		Ok(at
			.storage()
			.fetch(agora::storage().system().account(), (*who,))
			.await?
			.decode()?
			.data
			.free)
	}

	/// The shard's registered sample count, if the shard is registered.
	pub async fn shard_samples(&self, shard: H256) -> Result<Option<u32>> {
		let at = self.best().await?;
		Ok(at
			.storage()
			.try_fetch(agora::storage().contributions().shards(), (shard,))
			.await?
			.map(|value| value.decode())
			.transpose()?
			.map(|s| s.samples))
	}

	/// The next best block from the subscription, (re)subscribing first if needed.
	async fn next_head(&self, timeout: Duration) -> Result<Option<BlockNumber>> {
		let mut heads = self.heads.lock().await;
		if heads.is_none() {
			let connection = self.connection().await;
			match connection.rpc.chain_subscribe_new_heads().await {
				Ok(subscription) => *heads = Some(subscription),
				Err(e) => {
					drop(heads);
					self.recover(&connection).await;
					return Err(e.into());
				},
			}
		}
		let Some(subscription) = heads.as_mut() else { return Ok(None) };
		match tokio::time::timeout(timeout, subscription.next()).await {
			Err(_) => Ok(None),
			Ok(Some(Ok(header))) => {
				// Blocks that arrived while the daemon was busy are skipped: it acts on the
				// latest one once, not once for each.
				let mut latest = header.number();
				while let Some(Some(Ok(header))) = subscription.next().now_or_never() {
					latest = header.number();
				}
				Ok(Some(u32::try_from(latest).unwrap_or(u32::MAX)))
			},
			Ok(Some(Err(e))) => {
				*heads = None;
				Err(e.into())
			},
			Ok(None) => {
				*heads = None;
				bail!("the node closed the block subscription")
			},
		}
	}
}

impl ChainApi for Chain {
	fn account(&self) -> AccountId32 {
		Chain::account(self)
	}

	fn block_time(&self) -> Duration {
		self.block_time
	}

	async fn best_number(&self) -> Result<BlockNumber> {
		Chain::best_number(self).await
	}

	async fn next_block(&self, timeout: Duration) -> Option<BlockNumber> {
		let started = Instant::now();
		match self.next_head(timeout).await {
			Ok(number) => number,
			Err(e) => {
				tracing::debug!("no new block: {e:#}");
				// Not a busy loop while the node is away: wait out the rest of the timeout.
				tokio::time::sleep(timeout.saturating_sub(started.elapsed())).await;
				None
			},
		}
	}

	async fn job(&self, job: u64) -> Result<Option<JobInfo>> {
		Chain::job(self, job).await
	}

	async fn round_status(&self, job: u64) -> Result<Option<RoundInfo>> {
		Chain::round_status(self, job).await
	}

	async fn duties(&self, who: &AccountId32) -> Result<Vec<PendingDuty>> {
		Chain::duties(self, who).await
	}

	async fn active_jobs(&self) -> Result<Vec<u64>> {
		Chain::active_jobs(self).await
	}

	async fn registration(&self, who: &AccountId32, as_worker: bool) -> Result<Option<Endpoint>> {
		Chain::registration(self, who, as_worker).await
	}

	async fn all_endpoints(&self) -> Result<Vec<Endpoint>> {
		Chain::all_endpoints(self).await
	}

	async fn seats(&self) -> Result<Seats> {
		Chain::seats(self).await
	}

	async fn update(&self, job: u64, worker: &AccountId32) -> Result<Option<Update>> {
		Chain::update(self, job, worker).await
	}

	async fn accepted_workers(&self, job: u64) -> Result<Option<(u32, Vec<AccountId32>)>> {
		Chain::accepted_workers(self, job).await
	}

	async fn next_round_workers(&self, job: u64) -> Result<Vec<AccountId32>> {
		Chain::next_round_workers(self, job).await
	}

	async fn verification_stage(&self, job: u64) -> Result<Option<(u32, VerificationStage)>> {
		Chain::verification_stage(self, job).await
	}

	async fn plant_exposed(&self, job: u64, worker: &AccountId32) -> Result<bool> {
		Chain::plant_exposed(self, job, worker).await
	}

	async fn pending_reward(&self, who: &AccountId32) -> Result<Balance> {
		Chain::pending_reward(self, who).await
	}

	async fn send(&self, call: ProtocolCall) -> Result<Pending> {
		let name = call.name();
		let contributions = agora::transactions().contributions();
		let tasks = agora::transactions().tasks();
		let validation = agora::transactions().validation();
		let inclusion = match call {
			ProtocolCall::Register { role, stake, peer_id, multiaddr, capability } => {
				let (peer_id, multiaddr) = (bounded(peer_id), bounded(multiaddr));
				match role {
					crate::RegistryRole::Worker => {
						let call =
							contributions.register_worker(stake, peer_id, multiaddr, capability);
						Chain::send(self, name, call).await?
					},
					crate::RegistryRole::Validator => {
						let call =
							contributions.register_validator(stake, peer_id, multiaddr, capability);
						Chain::send(self, name, call).await?
					},
				}
			},
			ProtocolCall::UpdateEndpoint { role, peer_id, multiaddr, capability } => {
				let call = contributions.update_endpoint(
					role,
					bounded(peer_id),
					bounded(multiaddr),
					capability,
				);
				Chain::send(self, name, call).await?
			},
			ProtocolCall::BondExtra { role, amount } => {
				Chain::send(self, name, contributions.bond_extra(role, amount)).await?
			},
			ProtocolCall::ClaimSeat => Chain::send(self, name, contributions.claim_seat()).await?,
			ProtocolCall::ApplyForRound { job } => {
				Chain::send(self, name, tasks.apply_for_round(job)).await?
			},
			ProtocolCall::SubmitUpdate { job, round, update } => {
				Chain::send(self, name, tasks.submit_update(job, round, update)).await?
			},
			ProtocolCall::CommitVerdict { job, worker, commitment } => {
				Chain::send(self, name, validation.commit_verdict(job, worker, commitment)).await?
			},
			ProtocolCall::RevealVerdict { job, worker, verdict, score, salt } => {
				let call = validation.reveal_verdict(job, worker, verdict, score, salt);
				Chain::send(self, name, call).await?
			},
			ProtocolCall::ExposePlant { job, secret } => {
				Chain::send(self, name, validation.expose_plant(job, secret)).await?
			},
			ProtocolCall::PostAggregate { job, round, commitment } => {
				Chain::send(self, name, validation.post_aggregate(job, round, commitment)).await?
			},
			ProtocolCall::VoteAggregate { job, round, commitment } => {
				Chain::send(self, name, validation.vote_aggregate(job, round, commitment)).await?
			},
			ProtocolCall::RevealAggregate { job, round, model, salt } => {
				let call = validation.reveal_aggregate(job, round, model, salt);
				Chain::send(self, name, call).await?
			},
			ProtocolCall::Claim => {
				Chain::send(self, name, agora::transactions().rewards().claim()).await?
			},
		};
		Ok(Box::pin(async move { inclusion.wait().await.map(|_| ()) }))
	}
}

/// Rewards claimed and stake slashed, per account (by its 32 bytes).
#[derive(Default)]
pub struct Ledger {
	pub claimed: std::collections::HashMap<[u8; 32], Balance>,
	pub slashed: std::collections::HashMap<[u8; 32], Balance>,
}

/// How many times [`Chain::submit`] signs a call whose nonce turned out to be used already.
const STALE_NONCE_ATTEMPTS: u32 = 4;

/// The pool refused a transaction because the account's nonce on chain is already past the
/// one it was signed with: the node's count of the account's transactions
/// (`system_accountNextIndex`) was briefly behind, as after a switch between forks. The
/// transaction was not included; the client's next one is signed above `nonce`.
#[derive(Debug, thiserror::Error)]
#[error("{what} was not included: its nonce {nonce} is already used on chain")]
pub struct StaleNonce {
	pub what: String,
	pub nonce: u64,
}

/// Whether the node's reason for refusing a transaction is `InvalidTransaction::Stale` (its
/// nonce is already used), in the node's words.
fn is_stale(reason: &str) -> bool {
	reason.contains("Transaction is outdated")
}

/// A transaction in the pool.
pub struct Inclusion {
	what: String,
	/// The nonce it was signed with.
	nonce: u64,
	progress: subxt::transactions::TransactionProgress<
		PolkadotConfig,
		subxt::client::OnlineClientAtBlockImpl<PolkadotConfig>,
	>,
	/// When it was submitted.
	pub sent: Instant,
	next_nonce: Arc<Mutex<u64>>,
}

impl Inclusion {
	/// Waits until the transaction is in a best block; fails with the dispatch error if the
	/// call failed, or if the pool dropped it.
	pub async fn wait(mut self) -> Result<subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>> {
		let result = self.progress_to_block().await;
		let mut next_nonce = self.next_nonce.lock().await;
		if result.as_ref().is_err_and(|e| e.is::<StaleNonce>()) {
			// The node's count is behind the chain's: the next transaction goes above this one.
			*next_nonce = (*next_nonce).max(self.nonce + 1);
		} else if *next_nonce <= self.nonce + 1 {
			// From now on the node's view (its best block and pool) counts this transaction
			// or knows it was dropped, so the next nonce comes from the node again. Unless a
			// later send (still on its way) or a stale refusal raised it further: that floor
			// stays until the transaction that set it ends.
			*next_nonce = 0;
		}
		result
	}

	async fn progress_to_block(
		&mut self,
	) -> Result<subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>> {
		let what = &self.what;
		// Whether the pool took the transaction in: one refused at once was never in any
		// block, so signing the call again cannot run it twice.
		let mut entered_pool = false;
		while let Some(status) = self.progress.next().await {
			use subxt::transactions::TransactionStatus as Status;
			match status.with_context(|| format!("watching {what}"))? {
				Status::InBestBlock(in_block) | Status::InFinalizedBlock(in_block) => {
					let events = in_block
						.wait_for_success()
						.await
						.map_err(|e| anyhow!("{what} failed: {e}"))?;
					tracing::debug!(what, "included");
					return Ok(events);
				},
				// `InvalidTransaction::Stale`, as the node words it.
				Status::Invalid { message } if !entered_pool && is_stale(&message) => {
					return Err(StaleNonce { what: what.clone(), nonce: self.nonce }.into());
				},
				Status::Error { message }
				| Status::Invalid { message }
				| Status::Dropped { message } => {
					bail!("{what} was not included: {message}")
				},
				_ => entered_pool = true,
			}
		}
		bail!("{what}: the node closed the transaction's status stream")
	}
}
