//! The inference market off chain.
//!
//! A client pays into a channel on chain (pallet-inference) and sends requests to the
//! provider over libp2p (`/agora/query/1`, [`agora_p2p::query`]); each request carries the
//! client's signed receipt for every answer before it, and the answers extend a transcript
//! hash chain that the receipts sign ([`receipt`]). The provider ([`provider`]) answers with
//! the model ([`answer`]), keeps the evidence of every answer ([`evidence`]), and settles the
//! latest receipt on chain in batches. Validators drawn to audit a settled request ([`auditor`])
//! fetch its evidence from the provider, check it against the signed transcript, re-run the
//! model on the input and commit, then reveal, their verdicts. The chain is behind
//! [`market::MarketChain`] and the network behind [`QueryNetwork`] and
//! [`agora_p2p::BlobNetwork`], so that the daemons are tested with fakes.

pub mod answer;
pub mod auditor;
pub mod client;
pub mod evidence;
pub mod market;
pub mod memory;
pub mod provider;
pub mod receipt;

use agora_p2p::{Network, Peer, QueryRequest, QueryResponse};
use anyhow::Result;

/// Sending queries to peers.
#[allow(async_fn_in_trait)]
pub trait QueryNetwork {
	async fn query(&self, peer: &Peer, request: QueryRequest) -> Result<QueryResponse>;
}

impl QueryNetwork for Network {
	async fn query(&self, peer: &Peer, request: QueryRequest) -> Result<QueryResponse> {
		Network::query(self, peer, request).await
	}
}
