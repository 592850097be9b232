//! The market's chain in memory, for the daemons' tests and the serving benchmark: channels,
//! batches and audits as plain values, and settlement checked as pallet-inference checks it
//! (the client's signature on this chain, a receipt beyond the last settled one, no more than
//! the price per answer, no more than the channel holds).

use std::sync::{Arc, Mutex, MutexGuard};

use agora_chain::{AccountId32, Balance, BlockNumber};
use agora_p2p::{Peer, SignedReceipt};
use anyhow::{anyhow, bail, Result};

use crate::market::{
	AuditView, BatchState, BatchView, ChallengeView, ChannelView, MarketCall, MarketChain,
};
use crate::receipt::{content_hash, transcript_start, transcript_step, Receipt};

/// What the in-memory chain holds.
#[derive(Default)]
pub struct World {
	pub genesis: [u8; 32],
	pub now: BlockNumber,
	pub dispute_window: BlockNumber,
	pub channels: Vec<ChannelView>,
	/// Each channel's transcript head at its last settlement.
	pub heads: Vec<(u64, [u8; 32])>,
	pub batches: Vec<BatchView>,
	pub audits: Vec<AuditView>,
	/// Requests put on chain: `(provider, challenge)`.
	pub challenges: Vec<(AccountId32, ChallengeView)>,
	/// The one catalogued version: architecture id and weights hash.
	pub version: Option<(String, [u8; 32])>,
	/// Registered workers' libp2p nodes.
	pub peers: Vec<(AccountId32, Peer)>,
	/// Registered validators' libp2p nodes.
	pub validators: Vec<(AccountId32, Peer)>,
	/// Every call submitted, with its signer, accepted or not.
	pub submitted: Vec<(AccountId32, MarketCall)>,
}

impl World {
	/// Opens `channel` with `balance` and the transcript's start as its head.
	pub fn open(&mut self, channel: ChannelView) {
		self.heads.push((channel.id, transcript_start(channel.id)));
		self.channels.push(channel);
	}

	fn channel_mut(&mut self, id: u64) -> Option<&mut ChannelView> {
		self.channels.iter_mut().find(|c| c.id == id)
	}

	/// Checks `receipt` as pallet-inference does; returns what it adds to the settled amount.
	fn check_receipt(&self, receipt: &Receipt, signature: [u8; 64]) -> Result<Balance> {
		let channel = self
			.channels
			.iter()
			.find(|c| c.id == receipt.channel)
			.ok_or_else(|| anyhow!("UnknownChannel"))?;
		let signed = SignedReceipt {
			requests: receipt.requests,
			amount: receipt.amount,
			transcript: receipt.transcript,
			signature: signature.to_vec(),
		};
		if Receipt::verify(receipt.channel, &signed, &channel.client.0, &self.genesis).is_none() {
			bail!("BadSignature");
		}
		if receipt.requests <= channel.settled_requests || receipt.amount < channel.settled_amount {
			bail!("StaleReceipt");
		}
		let most = channel.price.checked_mul(u128::from(receipt.requests));
		if most.is_none_or(|most| receipt.amount > most) {
			bail!("Overcharged");
		}
		if receipt.amount > channel.payable_up_to() {
			bail!("InsufficientBalance");
		}
		Ok(receipt.amount - channel.settled_amount)
	}

	fn head_mut(&mut self, channel: u64) -> Result<&mut [u8; 32]> {
		self.heads
			.iter_mut()
			.find(|(id, _)| *id == channel)
			.map(|(_, head)| head)
			.ok_or_else(|| anyhow!("no transcript head"))
	}

	/// Moves the channel's settled count on to `requests` and its amount on by `amount`, and
	/// records the batch from the previous head to `transcript`.
	fn record_batch(
		&mut self,
		id: u64,
		requests: u64,
		amount: Balance,
		transcript: [u8; 32],
	) -> Result<()> {
		let head = self.head_mut(id)?;
		let before = std::mem::replace(head, transcript);
		let channel = self.channel_mut(id).ok_or_else(|| anyhow!("UnknownChannel"))?;
		let first_request = channel.settled_requests + 1;
		channel.pending_amount += amount;
		channel.settled_requests = requests;
		channel.settled_amount += amount;
		self.batches.push(BatchView {
			id: self.batches.len() as u64,
			channel: id,
			first_request,
			last_request: requests,
			amount,
			transcript_before: before,
			transcript,
			settled_at: self.now,
			state: BatchState::AwaitingDraw,
		});
		Ok(())
	}

	fn settle(&mut self, receipt: Receipt, signature: [u8; 64]) -> Result<()> {
		let amount = self.check_receipt(&receipt, signature)?;
		self.record_batch(receipt.channel, receipt.requests, amount, receipt.transcript)
	}

	/// Answers `provider`'s challenge of `channel` as pallet-inference does: the client's
	/// receipt, if given, and the answer as the channel's next request, settled as one batch.
	fn answer_challenge(
		&mut self,
		provider: AccountId32,
		id: u64,
		output: Vec<u8>,
		settle: Option<(Receipt, [u8; 64])>,
	) -> Result<()> {
		let at = self
			.challenges
			.iter()
			.position(|(p, c)| *p == provider && c.channel == id)
			.ok_or_else(|| anyhow!("NoChallenge"))?;
		if self.now > self.challenges[at].1.deadline {
			bail!("ChallengeExpired");
		}
		let channel = self.channels.iter().find(|c| c.id == id).cloned();
		let channel = channel.ok_or_else(|| anyhow!("UnknownChannel"))?;
		let (mut requests, mut amount, mut head) =
			(channel.settled_requests, 0, *self.head_mut(id)?);
		if let Some((receipt, signature)) = settle {
			amount = self.check_receipt(&receipt, signature)?;
			(requests, head) = (receipt.requests, receipt.transcript);
		}
		let (_, challenge) = self.challenges.remove(at);
		let request = requests + 1;
		let available = channel.balance - channel.pending_amount - amount;
		amount += channel.price.min(available);
		let transcript = transcript_step(
			&head,
			request,
			&content_hash(&challenge.input),
			&content_hash(&output),
		);
		self.record_batch(id, request, amount, transcript)
	}
}

/// One account's view of a shared [`World`].
#[derive(Clone)]
pub struct MemoryMarket {
	pub me: AccountId32,
	pub world: Arc<Mutex<World>>,
}

impl MemoryMarket {
	pub fn world(&self) -> MutexGuard<'_, World> {
		self.world.lock().expect("not poisoned")
	}
}

impl MarketChain for MemoryMarket {
	fn account(&self) -> AccountId32 {
		self.me
	}

	fn genesis(&self) -> [u8; 32] {
		self.world().genesis
	}

	async fn best_number(&self) -> Result<BlockNumber> {
		Ok(self.world().now)
	}

	async fn channel(&self, id: u64) -> Result<Option<ChannelView>> {
		Ok(self.world().channels.iter().find(|c| c.id == id).cloned())
	}

	async fn batches(&self, channel: u64) -> Result<Vec<BatchView>> {
		Ok(self.world().batches.iter().filter(|b| b.channel == channel).cloned().collect())
	}

	async fn batch(&self, id: u64) -> Result<Option<BatchView>> {
		Ok(self.world().batches.iter().find(|b| b.id == id).cloned())
	}

	async fn audits(&self) -> Result<Vec<AuditView>> {
		Ok(self.world().audits.clone())
	}

	async fn challenges(&self, provider: &AccountId32) -> Result<Vec<ChallengeView>> {
		let world = self.world();
		Ok(world.challenges.iter().filter(|(p, _)| p == provider).map(|(_, c)| c.clone()).collect())
	}

	async fn version(&self, _model: u64, _version: u32) -> Result<Option<(String, [u8; 32])>> {
		Ok(self.world().version.clone())
	}

	async fn offer(&self, _: &AccountId32, _: u64) -> Result<Option<(u32, Balance, Vec<u8>)>> {
		Ok(None)
	}

	async fn worker_peer(&self, who: &AccountId32) -> Result<Option<Peer>> {
		Ok(self.world().peers.iter().find(|(w, _)| w == who).map(|(_, p)| p.clone()))
	}

	async fn validator_peer(&self, who: &AccountId32) -> Result<Option<Peer>> {
		Ok(self.world().validators.iter().find(|(w, _)| w == who).map(|(_, p)| p.clone()))
	}

	async fn all_peers(&self) -> Result<Vec<Peer>> {
		Ok(self.world().peers.iter().map(|(_, p)| p.clone()).collect())
	}

	async fn dispute_window(&self) -> Result<BlockNumber> {
		Ok(self.world().dispute_window)
	}

	async fn submit(&self, call: MarketCall) -> Result<()> {
		let mut world = self.world();
		world.submitted.push((self.me, call.clone()));
		match call {
			MarketCall::Settle { receipt, signature } => world.settle(receipt, signature),
			MarketCall::AnswerChallenge { channel, output, receipt } => {
				world.answer_challenge(self.me, channel, output, receipt)
			},
			_ => Ok(()),
		}
	}
}
