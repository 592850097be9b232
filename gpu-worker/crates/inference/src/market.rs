//! The inference market as the provider and auditor daemons see the chain: the
//! [`MarketChain`] trait, implemented over a node's RPC by [`agora_chain::Chain`] and in memory
//! by the tests.

use agora_chain::agora::runtime_types::pallet_inference::types as pallet;
use agora_chain::agora::runtime_types::sp_runtime::MultiSignature;
use agora_chain::{agora, AccountId32, Balance, BlockNumber, Chain, H256};
use agora_p2p::Peer;
use anyhow::{anyhow, Context, Result};

use crate::receipt::{AuditVerdict, Receipt};

/// A channel as the chain holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelView {
	pub id: u64,
	pub client: AccountId32,
	pub provider: AccountId32,
	pub model: u64,
	pub version: u32,
	pub price: Balance,
	/// Held from the client (pending batches included).
	pub balance: Balance,
	/// Owed by batches settled but not yet paid.
	pub pending_amount: Balance,
	pub settled_requests: u64,
	pub settled_amount: Balance,
	/// Closing: no settlement from `closes_at` on.
	pub closes_at: Option<BlockNumber>,
}

impl ChannelView {
	/// The largest cumulative amount a receipt may still be settled for.
	pub fn payable_up_to(&self) -> Balance {
		self.settled_amount.saturating_add(self.balance.saturating_sub(self.pending_amount))
	}
}

/// Where a settled batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchState {
	AwaitingDraw,
	Open,
	Audited(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct BatchView {
	pub id: u64,
	pub channel: u64,
	pub first_request: u64,
	pub last_request: u64,
	pub amount: Balance,
	pub transcript_before: [u8; 32],
	pub transcript: [u8; 32],
	pub settled_at: BlockNumber,
	pub state: BatchState,
}

/// A request a client put on chain for its provider to answer there.
#[derive(Clone, Debug, PartialEq)]
pub struct ChallengeView {
	pub channel: u64,
	pub input: Vec<u8>,
	/// Last block the provider may answer in.
	pub deadline: BlockNumber,
}

/// One auditor of an audit: whether it committed and revealed.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditorView {
	pub who: AccountId32,
	pub committed: bool,
	pub revealed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditView {
	pub id: u64,
	pub batch: u64,
	pub request: u64,
	pub disputed: bool,
	pub auditors: Vec<AuditorView>,
	pub commit_deadline: BlockNumber,
	pub reveal_deadline: BlockNumber,
}

/// The market's transactions a provider or auditor signs.
#[derive(Clone, Debug, PartialEq)]
pub enum MarketCall {
	Offer {
		model: u64,
		version: u32,
		price: Balance,
		peer_id: Vec<u8>,
	},
	Settle {
		receipt: Receipt,
		signature: [u8; 64],
	},
	/// The answer to a request put on chain, with the client's latest receipt to settle first.
	AnswerChallenge {
		channel: u64,
		output: Vec<u8>,
		receipt: Option<(Receipt, [u8; 64])>,
	},
	ClearBatch {
		batch: u64,
	},
	CommitAudit {
		audit: u64,
		commitment: [u8; 32],
	},
	RevealAudit {
		audit: u64,
		verdict: AuditVerdict,
		salt: [u8; 32],
	},
	ConcludeAudit {
		audit: u64,
	},
}

impl MarketCall {
	pub fn name(&self) -> &'static str {
		match self {
			MarketCall::Offer { .. } => "offer",
			MarketCall::Settle { .. } => "settle",
			MarketCall::AnswerChallenge { .. } => "answer_challenge",
			MarketCall::ClearBatch { .. } => "clear_batch",
			MarketCall::CommitAudit { .. } => "commit_audit",
			MarketCall::RevealAudit { .. } => "reveal_audit",
			MarketCall::ConcludeAudit { .. } => "conclude_audit",
		}
	}
}

/// The chain as the market's daemons read and write it (at the best block).
#[allow(async_fn_in_trait)]
pub trait MarketChain {
	/// The signing account.
	fn account(&self) -> AccountId32;
	/// The chain's genesis hash (receipts are signed for one chain).
	fn genesis(&self) -> [u8; 32];
	async fn best_number(&self) -> Result<BlockNumber>;
	async fn channel(&self, id: u64) -> Result<Option<ChannelView>>;
	/// The settled batches of `channel` not yet paid or refunded.
	async fn batches(&self, channel: u64) -> Result<Vec<BatchView>>;
	async fn batch(&self, id: u64) -> Result<Option<BatchView>>;
	/// The audits in progress.
	async fn audits(&self) -> Result<Vec<AuditView>>;
	/// The challenges waiting for `provider`'s answer on chain.
	async fn challenges(&self, provider: &AccountId32) -> Result<Vec<ChallengeView>>;
	/// A catalogued version: the model's architecture id and weights hash.
	async fn version(&self, model: u64, version: u32) -> Result<Option<(String, [u8; 32])>>;
	/// `provider`'s offer of `model`: `(version, price, peer id)`.
	async fn offer(
		&self,
		provider: &AccountId32,
		model: u64,
	) -> Result<Option<(u32, Balance, Vec<u8>)>>;
	/// Where a registered worker's libp2p node is (peer id and multiaddr as registered).
	async fn worker_peer(&self, who: &AccountId32) -> Result<Option<Peer>>;
	/// Where a registered validator's libp2p node is.
	async fn validator_peer(&self, who: &AccountId32) -> Result<Option<Peer>>;
	/// Every registered participant's libp2p node (who may hold a model's weights).
	async fn all_peers(&self) -> Result<Vec<Peer>>;
	/// Blocks after its settlement that a batch stays disputable.
	async fn dispute_window(&self) -> Result<BlockNumber>;
	/// Signs `call`, submits it and waits until it is in a best block.
	async fn submit(&self, call: MarketCall) -> Result<()>;
}

pub(crate) fn h256(bytes: [u8; 32]) -> H256 {
	H256(bytes)
}

fn pallet_receipt(receipt: Receipt) -> pallet::Receipt<Balance> {
	pallet::Receipt {
		channel: receipt.channel,
		requests: receipt.requests,
		amount: receipt.amount,
		transcript: h256(receipt.transcript),
	}
}

fn batch_view(id: u64, batch: pallet::Batch<Balance, BlockNumber>) -> BatchView {
	BatchView {
		id,
		channel: batch.channel,
		first_request: batch.first_request,
		last_request: batch.last_request,
		amount: batch.amount,
		transcript_before: batch.transcript_before.0,
		transcript: batch.transcript.0,
		settled_at: batch.settled_at,
		state: match batch.status {
			pallet::BatchStatus::AwaitingDraw => BatchState::AwaitingDraw,
			pallet::BatchStatus::Open => BatchState::Open,
			pallet::BatchStatus::Audited(audit) => BatchState::Audited(audit),
		},
	}
}

fn peer_of(peer_id: &[u8], multiaddr: &[u8]) -> Option<Peer> {
	Peer::from_chain(peer_id, multiaddr).ok()
}

impl MarketChain for Chain {
	fn account(&self) -> AccountId32 {
		Chain::account(self)
	}

	fn genesis(&self) -> [u8; 32] {
		Chain::genesis_hash(self).0
	}

	async fn best_number(&self) -> Result<BlockNumber> {
		Chain::best_number(self).await
	}

	async fn channel(&self, id: u64) -> Result<Option<ChannelView>> {
		let at = self.at_best().await?;
		let Some(value) =
			at.storage().try_fetch(agora::storage().inference().channels(), (id,)).await?
		else {
			return Ok(None);
		};
		let channel = value.decode()?;
		Ok(Some(ChannelView {
			id,
			client: channel.client,
			provider: channel.provider,
			model: channel.model,
			version: channel.version,
			price: channel.price,
			balance: channel.balance,
			pending_amount: channel.pending_amount,
			settled_requests: channel.settled_requests,
			settled_amount: channel.settled_amount,
			closes_at: channel.closes_at,
		}))
	}

	async fn batches(&self, channel: u64) -> Result<Vec<BatchView>> {
		let at = self.at_best().await?;
		let mut batches = Vec::new();
		let mut entries = at.storage().iter(agora::storage().inference().batches(), ()).await?;
		while let Some(entry) = entries.next().await {
			let entry = entry?;
			let id = entry.key()?.decode()?.0;
			let batch = batch_view(id, entry.value().decode()?);
			if batch.channel == channel {
				batches.push(batch);
			}
		}
		batches.sort_by_key(|b| b.id);
		Ok(batches)
	}

	async fn batch(&self, id: u64) -> Result<Option<BatchView>> {
		let at = self.at_best().await?;
		let value = at.storage().try_fetch(agora::storage().inference().batches(), (id,)).await?;
		value.map(|v| Ok(batch_view(id, v.decode()?))).transpose()
	}

	async fn audits(&self) -> Result<Vec<AuditView>> {
		let at = self.at_best().await?;
		let mut audits = Vec::new();
		let mut entries = at.storage().iter(agora::storage().inference().audits(), ()).await?;
		while let Some(entry) = entries.next().await {
			let entry = entry?;
			let id = entry.key()?.decode()?.0;
			let audit = entry.value().decode()?;
			audits.push(AuditView {
				id,
				batch: audit.batch,
				request: audit.request,
				disputed: audit.disputed_by.is_some(),
				auditors: audit
					.auditors
					.0
					.into_iter()
					.map(|a| AuditorView {
						who: a.who,
						committed: a.commitment.is_some(),
						revealed: a.verdict.is_some(),
					})
					.collect(),
				commit_deadline: audit.commit_deadline,
				reveal_deadline: audit.reveal_deadline,
			});
		}
		audits.sort_by_key(|a| a.id);
		Ok(audits)
	}

	async fn challenges(&self, provider: &AccountId32) -> Result<Vec<ChallengeView>> {
		let at = self.at_best().await?;
		let mut challenges = Vec::new();
		let mut entries =
			at.storage().iter(agora::storage().inference().challenges(), (*provider,)).await?;
		while let Some(entry) = entries.next().await {
			let entry = entry?;
			let (_, channel) = entry.key()?.decode()?;
			let challenge = entry.value().decode()?;
			challenges.push(ChallengeView {
				channel,
				input: challenge.input.0,
				deadline: challenge.deadline,
			});
		}
		challenges.sort_by_key(|c| c.channel);
		Ok(challenges)
	}

	async fn version(&self, model: u64, version: u32) -> Result<Option<(String, [u8; 32])>> {
		let at = self.at_best().await?;
		let Some(entry) =
			at.storage().try_fetch(agora::storage().inference().models(), (model,)).await?
		else {
			return Ok(None);
		};
		let entry = entry.decode()?;
		let at = self.at_best().await?;
		let Some(listed) = at
			.storage()
			.try_fetch(agora::storage().inference().versions(), (model, version))
			.await?
		else {
			return Ok(None);
		};
		let listed = listed.decode()?;
		Ok(Some((String::from_utf8_lossy(&entry.architecture.0).into_owned(), listed.model.0)))
	}

	async fn offer(
		&self,
		provider: &AccountId32,
		model: u64,
	) -> Result<Option<(u32, Balance, Vec<u8>)>> {
		let at = self.at_best().await?;
		let value = at
			.storage()
			.try_fetch(agora::storage().inference().offers(), (*provider, model))
			.await?;
		value
			.map(|v| {
				let offer = v.decode()?;
				Ok((offer.version, offer.price, offer.peer_id.0))
			})
			.transpose()
	}

	async fn worker_peer(&self, who: &AccountId32) -> Result<Option<Peer>> {
		let endpoint = Chain::registration(self, who, true).await?;
		Ok(endpoint.and_then(|e| peer_of(&e.peer_id, &e.multiaddr)))
	}

	async fn validator_peer(&self, who: &AccountId32) -> Result<Option<Peer>> {
		let endpoint = Chain::registration(self, who, false).await?;
		Ok(endpoint.and_then(|e| peer_of(&e.peer_id, &e.multiaddr)))
	}

	async fn all_peers(&self) -> Result<Vec<Peer>> {
		let endpoints = Chain::all_endpoints(self).await?;
		Ok(endpoints.iter().filter_map(|e| peer_of(&e.peer_id, &e.multiaddr)).collect())
	}

	async fn dispute_window(&self) -> Result<BlockNumber> {
		let at = self.at_best().await?;
		let params = at
			.storage()
			.try_fetch(agora::storage().inference().protocol_params(), ())
			.await?
			.ok_or_else(|| anyhow!("the chain has no inference parameters"))?;
		Ok(params.decode()?.dispute_window)
	}

	async fn submit(&self, call: MarketCall) -> Result<()> {
		let name = call.name();
		let market = agora::transactions().inference();
		let result = match call {
			MarketCall::Offer { model, version, price, peer_id } => {
				let peer_id = agora_chain::bounded(peer_id);
				Chain::submit(self, name, market.offer(model, version, price, peer_id)).await
			},
			MarketCall::Settle { receipt, signature } => {
				let (receipt, signature) =
					(pallet_receipt(receipt), MultiSignature::Sr25519(signature));
				Chain::submit(self, name, market.settle(receipt, signature)).await
			},
			MarketCall::AnswerChallenge { channel, output, receipt } => {
				let output = agora_chain::bounded(output);
				let receipt = receipt.map(|(receipt, signature)| {
					(pallet_receipt(receipt), MultiSignature::Sr25519(signature))
				});
				Chain::submit(self, name, market.answer_challenge(channel, output, receipt)).await
			},
			MarketCall::ClearBatch { batch } => {
				Chain::submit(self, name, market.clear_batch(batch)).await
			},
			MarketCall::CommitAudit { audit, commitment } => {
				Chain::submit(self, name, market.commit_audit(audit, h256(commitment))).await
			},
			MarketCall::RevealAudit { audit, verdict, salt } => {
				let verdict = match verdict {
					AuditVerdict::Correct => pallet::AuditVerdict::Correct,
					AuditVerdict::Wrong => pallet::AuditVerdict::Wrong,
					AuditVerdict::Unavailable => pallet::AuditVerdict::Unavailable,
				};
				Chain::submit(self, name, market.reveal_audit(audit, verdict, salt)).await
			},
			MarketCall::ConcludeAudit { audit } => {
				Chain::submit(self, name, market.conclude_audit(audit)).await
			},
		};
		result.with_context(|| format!("submitting {name}"))
	}
}
