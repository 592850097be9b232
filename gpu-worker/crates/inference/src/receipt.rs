//! What the client signs and what the transcript commits to, byte for byte as
//! pallet-inference computes them (SCALE: fixed arrays raw, integers little-endian).

use agora_core::Digest;
use subxt_signer::sr25519;

use agora_p2p::SignedReceipt;

/// `pallet_inference::RECEIPT_TAG`.
pub const RECEIPT_TAG: &[u8; 24] = b"agora/inference-receipt1";
/// `pallet_inference::TRANSCRIPT_TAG`.
pub const TRANSCRIPT_TAG: &[u8; 27] = b"agora/inference-transcript1";
/// `pallet_inference::AUDIT_TAG`.
pub const AUDIT_TAG: &[u8; 14] = b"agora/audit/v1";

/// Everything a client owes for a channel so far (`pallet_inference::Receipt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
	pub channel: u64,
	pub requests: u64,
	pub amount: u128,
	pub transcript: [u8; 32],
}

impl Receipt {
	/// The receipt before any request of `channel`.
	pub fn empty(channel: u64) -> Self {
		Receipt { channel, requests: 0, amount: 0, transcript: transcript_start(channel) }
	}

	/// The bytes the client signs on the chain whose genesis hash is `genesis`
	/// (`pallet_inference::receipt_payload`).
	pub fn payload(&self, genesis: &[u8; 32]) -> Vec<u8> {
		let mut bytes = Vec::with_capacity(120);
		bytes.extend_from_slice(RECEIPT_TAG);
		bytes.extend_from_slice(genesis);
		bytes.extend_from_slice(&self.channel.to_le_bytes());
		bytes.extend_from_slice(&self.requests.to_le_bytes());
		bytes.extend_from_slice(&self.amount.to_le_bytes());
		bytes.extend_from_slice(&self.transcript);
		bytes
	}

	pub fn sign(&self, signer: &sr25519::Keypair, genesis: &[u8; 32]) -> SignedReceipt {
		SignedReceipt {
			requests: self.requests,
			amount: self.amount,
			transcript: self.transcript,
			signature: signer.sign(&self.payload(genesis)).0.to_vec(),
		}
	}

	/// The receipt `signed` stands for on `channel`, if `client` signed it on this chain.
	pub fn verify(
		channel: u64,
		signed: &SignedReceipt,
		client: &[u8; 32],
		genesis: &[u8; 32],
	) -> Option<Receipt> {
		let receipt = Receipt {
			channel,
			requests: signed.requests,
			amount: signed.amount,
			transcript: signed.transcript,
		};
		let signature: [u8; 64] = signed.signature.as_slice().try_into().ok()?;
		let valid = sr25519::verify(
			&sr25519::Signature(signature),
			receipt.payload(genesis),
			&sr25519::PublicKey(*client),
		);
		valid.then_some(receipt)
	}
}

/// The transcript head of `channel` before any request (`pallet_inference::transcript_start`).
pub fn transcript_start(channel: u64) -> [u8; 32] {
	Digest::of(&[TRANSCRIPT_TAG, &channel.to_le_bytes()]).0
}

/// The head after request `index` whose input and answer hash to `input` and `output`
/// (`pallet_inference::transcript_step`).
pub fn transcript_step(
	previous: &[u8; 32],
	index: u64,
	input: &[u8; 32],
	output: &[u8; 32],
) -> [u8; 32] {
	Digest::of(&[previous, &index.to_le_bytes(), input, output]).0
}

/// The hash of a request's input or answer in the transcript.
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
	Digest::of(&[bytes]).0
}

/// An auditor's verdict (`pallet_inference::AuditVerdict`, in its SCALE order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AuditVerdict {
	Correct,
	Wrong,
	Unavailable,
}

/// The commitment `commit_audit` expects (`pallet_inference::audit_commitment_of`).
pub fn audit_commitment(
	audit: u64,
	verdict: AuditVerdict,
	salt: &[u8; 32],
	who: &[u8; 32],
) -> [u8; 32] {
	let verdict = [verdict as u8];
	Digest::of(&[AUDIT_TAG, &audit.to_le_bytes(), &verdict, salt, who]).0
}

#[cfg(test)]
mod tests {
	use super::*;

	fn alice() -> sr25519::Keypair {
		sr25519::dev::alice()
	}

	#[test]
	fn a_receipt_verifies_only_for_its_signer_channel_chain_and_figures() {
		let genesis = [7u8; 32];
		let receipt = Receipt { channel: 3, requests: 5, amount: 500, transcript: [1; 32] };
		let signed = receipt.sign(&alice(), &genesis);
		let client = alice().public_key().0;
		assert_eq!(Receipt::verify(3, &signed, &client, &genesis), Some(receipt));

		let bob = sr25519::dev::bob().public_key().0;
		assert_eq!(Receipt::verify(3, &signed, &bob, &genesis), None, "another signer");
		assert_eq!(Receipt::verify(4, &signed, &client, &genesis), None, "another channel");
		assert_eq!(Receipt::verify(3, &signed, &client, &[8; 32]), None, "another chain");
		let inflated = SignedReceipt { amount: 501, ..signed.clone() };
		assert_eq!(Receipt::verify(3, &inflated, &client, &genesis), None, "another amount");
		let short = SignedReceipt { signature: vec![0; 63], ..signed };
		assert_eq!(Receipt::verify(3, &short, &client, &genesis), None, "a malformed signature");
	}

	#[test]
	fn the_encodings_are_scale_as_the_pallet_hashes_them() {
		// SCALE of (tag, genesis, Receipt { channel, requests, amount, transcript }).
		let receipt = Receipt { channel: 1, requests: 2, amount: 3, transcript: [4; 32] };
		let payload = receipt.payload(&[9; 32]);
		assert_eq!(payload.len(), 24 + 32 + 8 + 8 + 16 + 32);
		assert_eq!(&payload[..24], RECEIPT_TAG);
		assert_eq!(payload[56], 1);
		assert_eq!(payload[64], 2);
		assert_eq!(payload[72], 3);
		// Each step depends on every field.
		let start = transcript_start(1);
		assert_ne!(start, transcript_start(2));
		let step = transcript_step(&start, 1, &[1; 32], &[2; 32]);
		assert_ne!(step, transcript_step(&start, 2, &[1; 32], &[2; 32]));
		assert_ne!(step, transcript_step(&start, 1, &[1; 32], &[3; 32]));
		assert_ne!(
			audit_commitment(1, AuditVerdict::Correct, &[0; 32], &[1; 32]),
			audit_commitment(1, AuditVerdict::Wrong, &[0; 32], &[1; 32])
		);
	}
}
