//! blake2b-256 content hashes, shown as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte blake2b-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
	/// Hashes the concatenation of `parts`.
	pub fn of(parts: &[&[u8]]) -> Digest {
		let mut hasher = Hasher::new();
		for part in parts {
			hasher.update(part);
		}
		hasher.finish()
	}

	pub fn as_bytes(&self) -> &[u8; 32] {
		&self.0
	}

	pub fn to_hex(&self) -> String {
		hex::encode(self.0)
	}
}

impl fmt::Display for Digest {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str(&self.to_hex())
	}
}

impl fmt::Debug for Digest {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		write!(f, "Digest({})", self.to_hex())
	}
}

impl FromStr for Digest {
	type Err = ParseDigestError;

	fn from_str(s: &str) -> Result<Self, Self::Err> {
		let bytes = hex::decode(s)
			.map_err(|e| ParseDigestError(format!("digest `{s}` is not hex: {e}")))?;
		let array: [u8; 32] = bytes
			.try_into()
			.map_err(|_| ParseDigestError(format!("digest `{s}` is not 32 bytes long")))?;
		Ok(Digest(array))
	}
}

/// Text that is not a digest (not hex, or not 32 bytes).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseDigestError(pub String);

impl Serialize for Digest {
	fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
		serializer.serialize_str(&self.to_hex())
	}
}

impl<'de> Deserialize<'de> for Digest {
	fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
		let text = String::deserialize(deserializer)?;
		text.parse().map_err(serde::de::Error::custom)
	}
}

/// Incremental blake2b-256 (`blake2b_simd`: the same function as the runtime's
/// `blake2_256`, with AVX2 where the CPU has it).
pub struct Hasher(blake2b_simd::State);

impl Hasher {
	pub fn new() -> Self {
		Hasher(blake2b_simd::Params::new().hash_length(32).to_state())
	}

	pub fn update(&mut self, bytes: &[u8]) {
		self.0.update(bytes);
	}

	pub fn update_u32(&mut self, value: u32) {
		self.0.update(&value.to_le_bytes());
	}

	pub fn update_u64(&mut self, value: u64) {
		self.0.update(&value.to_le_bytes());
	}

	/// Feeds f32 values as little-endian bytes, in chunks so that large tensors need no copy
	/// of their own size.
	pub fn update_f32s(&mut self, values: &[f32]) {
		let mut buffer = [0u8; 4096];
		for chunk in values.chunks(buffer.len() / 4) {
			for (slot, value) in buffer.chunks_exact_mut(4).zip(chunk) {
				slot.copy_from_slice(&value.to_le_bytes());
			}
			self.0.update(&buffer[..chunk.len() * 4]);
		}
	}

	pub fn finish(self) -> Digest {
		let mut digest = [0u8; 32];
		digest.copy_from_slice(self.0.finalize().as_bytes());
		Digest(digest)
	}
}

impl Default for Hasher {
	fn default() -> Self {
		Self::new()
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn blake2b256_matches_reference_vector() {
		// blake2b-256("abc") from the BLAKE2 reference implementation.
		assert_eq!(
			Digest::of(&[b"abc"]).to_hex(),
			"bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
		);
	}

	#[test]
	fn hex_round_trip_and_bad_hex() {
		let digest = Digest::of(&[b"agora"]);
		assert_eq!(digest.to_hex().parse::<Digest>().unwrap(), digest);
		assert!("zz".parse::<Digest>().is_err());
		assert!("abcd".parse::<Digest>().is_err());
	}

	#[test]
	fn f32_chunking_does_not_change_the_hash() {
		let values: Vec<f32> = (0..5000).map(|i| i as f32 * 0.5).collect();
		let mut chunked = Hasher::new();
		chunked.update_f32s(&values);
		let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
		assert_eq!(chunked.finish(), Digest::of(&[&bytes]));
	}
}
