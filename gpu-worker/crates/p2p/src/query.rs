//! Protocol `/agora/query/1`: the inference market's requests and answers between a client
//! (or an auditor) and a provider, as CBOR frames over the same connections as the blobs.
//!
//! A client sends request `index` of its channel with the receipt for the answers before it;
//! the provider answers; after the last answer the client sends its final receipt alone. An
//! auditor asks the provider for the evidence of one settled request. What the bytes mean
//! (inputs, answers, receipts, transcripts) is `agora-inference`'s business: this module only
//! carries them, with bounds on what a peer may send.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::PeerId;

/// Largest input of one request (the codec's own request limit is 1 MiB).
pub const MAX_QUERY_INPUT: usize = 256 << 10;
/// Most transcript steps one evidence answer carries (64 bytes each: 4 MiB, within the
/// codec's 10 MiB response limit): a provider settles batches of at most this many requests.
pub const MAX_EVIDENCE_STEPS: u64 = 65_536;

/// A receipt as the client signed it (the channel is the request's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReceipt {
	/// Requests answered so far.
	pub requests: u64,
	/// Amount owed so far, in plancks.
	pub amount: u128,
	/// The transcript head after the `requests`-th answer.
	pub transcript: [u8; 32],
	/// The client's sr25519 signature (64 bytes) of the receipt's payload.
	#[serde(with = "serde_bytes")]
	pub signature: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QueryRequest {
	/// Request `index` (1-based) of `channel`, with the receipt for the `index - 1` answers
	/// before it (none before the first).
	Predict {
		channel: u64,
		index: u64,
		#[serde(with = "serde_bytes")]
		input: Vec<u8>,
		receipt: Option<SignedReceipt>,
	},
	/// The receipt for every answer so far (sent after the last request).
	Receipt { channel: u64, receipt: SignedReceipt },
	/// The evidence of request `request` of the batch that settled requests `first..=last`.
	Evidence { channel: u64, first: u64, last: u64, request: u64 },
}

/// One step of a transcript: the hashes of a request's input and of its answer.
pub type TranscriptStep = ([u8; 32], [u8; 32]);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QueryResponse {
	/// The answer to a `Predict`.
	Answer {
		#[serde(with = "serde_bytes")]
		output: Vec<u8>,
	},
	/// The receipt was accepted.
	Accepted,
	/// The audited request's input and answer, with every step of its batch (so that the
	/// auditor can recompute the batch's signed transcript head).
	Evidence {
		steps: Vec<TranscriptStep>,
		#[serde(with = "serde_bytes")]
		input: Vec<u8>,
		#[serde(with = "serde_bytes")]
		output: Vec<u8>,
	},
	/// Refused, with the reason.
	Refused { reason: String },
	/// Too many queries in flight on the provider: ask again shortly.
	Busy,
}

impl QueryRequest {
	/// Whether the request is within the protocol's bounds (checked before it is handed on).
	pub fn within_bounds(&self) -> bool {
		match self {
			QueryRequest::Predict { input, receipt, .. } => {
				input.len() <= MAX_QUERY_INPUT
					&& receipt.as_ref().is_none_or(|r| r.signature.len() == 64)
			},
			QueryRequest::Receipt { receipt, .. } => receipt.signature.len() == 64,
			QueryRequest::Evidence { first, last, request, .. } => {
				first <= request
					&& request <= last
					&& last.saturating_sub(*first) < MAX_EVIDENCE_STEPS
			},
		}
	}
}

/// A query from a peer, for the provider's handler to answer through `reply`.
pub struct InboundQuery {
	pub peer: PeerId,
	pub request: QueryRequest,
	pub reply: oneshot::Sender<QueryResponse>,
}
