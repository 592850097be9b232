//! The client's side of a channel: sends requests with the receipt for the answers before
//! them, extends the transcript with each answer, and signs the final receipt.
//!
//! The client never signs for an answer it did not receive, so a provider that takes a request
//! and never answers is not paid for it; the client can then put the request on chain, where
//! the provider must answer it or be slashed; the session then goes on from what the chain
//! settled ([`Session::resume`]). It can dispute any answer it doubts (on chain, with a bond) because the
//! transcript binds every input to the answer the provider gave.

use std::time::{Duration, Instant};

use agora_chain::Balance;
use agora_p2p::{Peer, QueryRequest, QueryResponse};
use anyhow::{anyhow, bail, Result};
use subxt_signer::sr25519::Keypair;

use crate::receipt::{content_hash, transcript_step, Receipt};
use crate::QueryNetwork;

/// How often a request answered `Busy` is sent again before the client gives up.
const BUSY_RETRIES: u32 = 100;
const BUSY_BACKOFF: Duration = Duration::from_millis(20);

/// The provider answered, refusing the request: it is there, so putting the request on chain
/// would not help.
#[derive(Debug, thiserror::Error)]
#[error("the provider refused: {0}")]
pub struct Refused(pub String);

/// One answered request.
#[derive(Clone, Debug)]
pub struct Answered {
	pub index: u64,
	pub output: Vec<u8>,
	/// From sending the request to receiving its answer.
	pub latency: Duration,
}

pub struct Session<'a, N> {
	net: &'a N,
	provider: Peer,
	signer: &'a Keypair,
	genesis: [u8; 32],
	price: Balance,
	/// Everything owed so far.
	receipt: Receipt,
}

impl<'a, N: QueryNetwork> Session<'a, N> {
	/// A session on a new channel (no request answered yet).
	pub fn new(
		net: &'a N,
		provider: Peer,
		signer: &'a Keypair,
		genesis: [u8; 32],
		channel: u64,
		price: Balance,
	) -> Self {
		Session { net, provider, signer, genesis, price, receipt: Receipt::empty(channel) }
	}

	/// What the client owes so far.
	pub fn receipt(&self) -> Receipt {
		self.receipt
	}

	/// Sends one request and waits for its answer.
	pub async fn predict(&mut self, input: Vec<u8>) -> Result<Answered> {
		let index = self.receipt.requests + 1;
		let input_hash = content_hash(&input);
		let request = QueryRequest::Predict {
			channel: self.receipt.channel,
			index,
			input,
			receipt: Some(self.receipt.sign(self.signer, &self.genesis)),
		};
		let started = Instant::now();
		let output = self
			.ask(request, |response| match response {
				QueryResponse::Answer { output } => Ok(output),
				other => Err(other),
			})
			.await?;
		let latency = started.elapsed();
		self.receipt = Receipt {
			channel: self.receipt.channel,
			requests: index,
			amount: self
				.receipt
				.amount
				.checked_add(self.price)
				.ok_or_else(|| anyhow!("amount overflows"))?,
			transcript: transcript_step(
				&self.receipt.transcript,
				index,
				&input_hash,
				&content_hash(&output),
			),
		};
		Ok(Answered { index, output, latency })
	}

	/// Goes on from `settled`, the chain's count, amount and transcript head of the channel,
	/// after a request was answered on chain: that answer follows the requests the provider
	/// had settled, so an answer it had no receipt for yet is no longer counted (nor paid).
	pub fn resume(&mut self, settled: Receipt) {
		self.receipt = Receipt { channel: self.receipt.channel, ..settled };
	}

	/// Sends the receipt for every answer (the provider settles it).
	pub async fn finish(&self) -> Result<()> {
		let request = QueryRequest::Receipt {
			channel: self.receipt.channel,
			receipt: self.receipt.sign(self.signer, &self.genesis),
		};
		self.ask(request, |response| match response {
			QueryResponse::Accepted => Ok(()),
			other => Err(other),
		})
		.await
	}

	async fn ask<T>(
		&self,
		request: QueryRequest,
		accept: impl Fn(QueryResponse) -> std::result::Result<T, QueryResponse>,
	) -> Result<T> {
		for _ in 0..BUSY_RETRIES {
			match accept(self.net.query(&self.provider, request.clone()).await?) {
				Ok(value) => return Ok(value),
				Err(QueryResponse::Busy) => tokio::time::sleep(BUSY_BACKOFF).await,
				Err(QueryResponse::Refused { reason }) => return Err(Refused(reason).into()),
				Err(other) => bail!("unexpected answer from the provider: {other:?}"),
			}
		}
		bail!("the provider stayed busy")
	}
}

/// The `p`-th percentile (0 to 100) of `latencies`, by the nearest-rank method.
pub fn percentile(latencies: &[Duration], p: u32) -> Duration {
	if latencies.is_empty() {
		return Duration::ZERO;
	}
	let mut sorted = latencies.to_vec();
	sorted.sort();
	let rank = (u64::from(p.min(100)) * sorted.len() as u64).div_ceil(100).max(1);
	sorted[(rank as usize - 1).min(sorted.len() - 1)]
}
