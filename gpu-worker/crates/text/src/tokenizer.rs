//! A byte-level BPE tokenizer (GPT-2's scheme, Hugging Face `tokenizers`), trained on a corpus
//! and named by the BLAKE2b-256 hash of its JSON: a job's spec pins the tokenizer its token
//! shards were cut with by that hash (`Hyperparameters::tokenizer`), so whoever fetches it from
//! a peer, or decodes the job's model with it, holds exactly the one the job was trained on.
//!
//! Byte-level: the 256 byte values are in the vocabulary before any merge, so every string
//! encodes (no unknown token) and decodes back to itself.

use std::path::{Path, PathBuf};

use agora_core::state::write_atomic;
use agora_ml::data::MAX_VOCAB;
use agora_ml::digest::Digest;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::corpus::Source;
use crate::error::{Result, TextError};

/// The token that separates documents in a token stream.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// The smallest vocabulary worth training: the 256 bytes, the separator and some merges.
pub const MIN_VOCAB: usize = 300;

/// The largest tokenizer file a participant accepts from a peer (GPT-2's 50 257-token
/// tokenizer takes 1.4 MB as JSON).
pub const MAX_TOKENIZER_BYTES: u64 = 16 << 20;

/// A trained tokenizer with the bytes it is stored as and their hash.
pub struct TextTokenizer {
	tokenizer: Tokenizer,
	json: Vec<u8>,
	hash: Digest,
	end_of_text: u32,
}

impl std::fmt::Debug for TextTokenizer {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		f.debug_struct("TextTokenizer")
			.field("hash", &self.hash.to_hex())
			.field("vocab", &self.vocab_size())
			.finish()
	}
}

fn tokenizer_error(e: impl std::fmt::Display) -> TextError {
	TextError::Tokenizer(e.to_string())
}

impl TextTokenizer {
	/// Trains a byte-level BPE tokenizer of `vocab` tokens (the separator included) on
	/// `documents`, read once as a stream. Merges need at least two occurrences.
	pub fn train<I>(documents: I, vocab: usize) -> Result<Self>
	where
		I: Iterator<Item = String> + Send,
	{
		if !(MIN_VOCAB..=MAX_VOCAB).contains(&vocab) {
			return Err(TextError::Tokenizer(format!(
				"a vocabulary of {vocab}: between {MIN_VOCAB} and {MAX_VOCAB} tokens"
			)));
		}
		let mut tokenizer = Tokenizer::new(BPE::default());
		// No prefix space: text is taken as it is; offsets trimmed as GPT-2 does.
		let byte_level = ByteLevel::new(false, true, true);
		tokenizer.with_pre_tokenizer(Some(byte_level));
		tokenizer.with_decoder(Some(byte_level));
		tokenizer.with_post_processor(Some(byte_level));
		let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
			.vocab_size(vocab)
			.min_frequency(2)
			.show_progress(false)
			.initial_alphabet(ByteLevel::alphabet().into_iter().collect())
			.special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
			.build()
			.into();
		tokenizer.train(&mut trainer, documents).map_err(tokenizer_error)?;
		let json = tokenizer.to_string(false).map_err(tokenizer_error)?.into_bytes();
		Self::from_json(json)
	}

	/// Trains on every document of `source` (see [`TextTokenizer::train`]); a document that
	/// cannot be read stops training with its error.
	pub fn train_on(source: &Source, vocab: usize) -> Result<Self> {
		let mut failure = None;
		let documents = source.documents()?.map_while(|document| match document {
			Ok(document) => Some(document),
			Err(e) => {
				failure = Some(e);
				None
			},
		});
		let tokenizer = Self::train(documents, vocab)?;
		match failure {
			Some(e) => Err(e),
			None => Ok(tokenizer),
		}
	}

	/// A tokenizer from its JSON (as [`TextTokenizer::save_in`] writes it).
	pub fn from_json(json: Vec<u8>) -> Result<Self> {
		let tokenizer = Tokenizer::from_bytes(&json).map_err(tokenizer_error)?;
		let end_of_text = tokenizer
			.token_to_id(END_OF_TEXT)
			.ok_or_else(|| TextError::Tokenizer(format!("no {END_OF_TEXT} token")))?;
		let vocab = tokenizer.get_vocab_size(true);
		if vocab > MAX_VOCAB {
			return Err(TextError::Tokenizer(format!("{vocab} tokens, above {MAX_VOCAB}")));
		}
		// Ids from 0 to vocab - 1, each once: the vocabulary size then bounds every id it
		// produces (a crafted file could count 300 entries and hand out id 4 billion).
		let ids: std::collections::BTreeSet<u32> =
			tokenizer.get_vocab(true).into_values().collect();
		if ids.len() != vocab || ids.last().is_some_and(|&last| last as usize + 1 != vocab) {
			return Err(TextError::Tokenizer(format!(
				"its {vocab} token ids are not 0 to {}",
				vocab.saturating_sub(1)
			)));
		}
		let hash = Digest::of(&[&json]);
		Ok(TextTokenizer { tokenizer, json, hash, end_of_text })
	}

	/// Reads a tokenizer file, checking it against `expected` (a job's pinned hash) if given.
	pub fn load(path: &Path, expected: Option<&Digest>) -> Result<Self> {
		let json = std::fs::read(path).map_err(TextError::io(path))?;
		let tokenizer = Self::from_json(json)?;
		if let Some(expected) = expected {
			if *expected != tokenizer.hash {
				return Err(TextError::HashMismatch {
					what: path.display().to_string(),
					expected: expected.to_hex(),
					actual: tokenizer.hash.to_hex(),
				});
			}
		}
		Ok(tokenizer)
	}

	/// Writes the tokenizer into `dir` as `tokenizer-<hash>.json` (atomically) and returns
	/// the path.
	pub fn save_in(&self, dir: &Path) -> Result<PathBuf> {
		std::fs::create_dir_all(dir).map_err(TextError::io(dir))?;
		let path = dir.join(format!("tokenizer-{}.json", self.hash.to_hex()));
		write_atomic(&path, &self.json).map_err(|e| TextError::Tokenizer(e.to_string()))?;
		Ok(path)
	}

	/// Checks that a language model of `model_vocab` tokens can take every token it produces.
	pub fn check_fits(&self, model_vocab: usize) -> Result<()> {
		if self.vocab_size() > model_vocab {
			return Err(TextError::Tokenizer(format!(
				"the tokenizer has {} tokens, the model {model_vocab}",
				self.vocab_size()
			)));
		}
		Ok(())
	}

	/// The JSON it is stored and published as (its hash is [`TextTokenizer::hash`]).
	pub fn json(&self) -> &[u8] {
		&self.json
	}

	/// The hash that names it: BLAKE2b-256 of its JSON.
	pub fn hash(&self) -> Digest {
		self.hash
	}

	/// Tokens in the vocabulary, the separator included.
	pub fn vocab_size(&self) -> usize {
		self.tokenizer.get_vocab_size(true)
	}

	/// The separator's id.
	pub fn end_of_text(&self) -> u32 {
		self.end_of_text
	}

	/// The tokens of `text`.
	pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
		let encoding = self.tokenizer.encode(text, false).map_err(tokenizer_error)?;
		Ok(encoding.get_ids().to_vec())
	}

	/// The text of `tokens` (the separator shown as itself).
	pub fn decode(&self, tokens: &[u32]) -> Result<String> {
		self.tokenizer.decode(tokens, false).map_err(tokenizer_error)
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn genesis() -> String {
		std::fs::read_to_string(agora_ml::data::genesis_text_path()).unwrap()
	}

	fn paragraphs(text: &str) -> impl Iterator<Item = String> + Send + '_ {
		text.split("\n\n").map(str::to_string)
	}

	#[test]
	fn a_trained_tokenizer_compresses_and_round_trips_any_text() {
		let text = genesis();
		let tokenizer = TextTokenizer::train(paragraphs(&text), 1_000).unwrap();
		assert_eq!(tokenizer.vocab_size(), 1_000);
		let tokens = tokenizer.encode(&text).unwrap();
		assert!(tokens.iter().all(|&t| (t as usize) < 1_000));
		// Merges learned on the text: well under one token per byte.
		let bytes_per_token = text.len() as f64 / tokens.len() as f64;
		assert!(bytes_per_token > 2.5, "{bytes_per_token:.2} bytes per token");
		assert_eq!(tokenizer.decode(&tokens).unwrap(), text);
		// Byte-level: text it never saw, in any script, still round-trips.
		let unseen = "Zürich — 東京 🚀 {\"json\": [1, 2]}\t\n";
		assert_eq!(tokenizer.decode(&tokenizer.encode(unseen).unwrap()).unwrap(), unseen);
		let separator = tokenizer.encode(END_OF_TEXT).unwrap();
		assert_eq!(separator, vec![tokenizer.end_of_text()]);
	}

	#[test]
	fn a_tokenizer_is_named_by_its_content_and_checked_on_load() {
		let text = genesis();
		let tokenizer = TextTokenizer::train(paragraphs(&text), MIN_VOCAB).unwrap();
		// Training is deterministic: the same corpus gives the same tokenizer, the same name.
		let again = TextTokenizer::train(paragraphs(&text), MIN_VOCAB).unwrap();
		assert_eq!(again.hash(), tokenizer.hash());
		let dir = tempfile::tempdir().unwrap();
		let path = tokenizer.save_in(dir.path()).unwrap();
		assert!(path.to_string_lossy().contains(&tokenizer.hash().to_hex()));
		let loaded = TextTokenizer::load(&path, Some(&tokenizer.hash())).unwrap();
		assert_eq!(
			loaded.encode("In the beginning").unwrap(),
			tokenizer.encode("In the beginning").unwrap()
		);
		// Another tokenizer under this name is refused.
		let other = TextTokenizer::train(paragraphs(&text[..20_000]), MIN_VOCAB).unwrap();
		let other_path = other.save_in(dir.path()).unwrap();
		let refused = TextTokenizer::load(&other_path, Some(&tokenizer.hash()));
		assert!(matches!(refused, Err(TextError::HashMismatch { .. })), "{refused:?}");
		// Vocabularies outside what a token dataset can hold are refused before training.
		assert!(TextTokenizer::train(paragraphs(&text), MIN_VOCAB - 1).is_err());
		assert!(TextTokenizer::train(paragraphs(&text), MAX_VOCAB + 1).is_err());
	}

	/// A crafted file whose few entries hand out ids beyond its size would pass a check on
	/// the vocabulary's size and index past a model's embedding: refused on load.
	#[test]
	fn a_tokenizer_with_ids_beyond_its_size_is_refused() {
		let text = genesis();
		let tokenizer = TextTokenizer::train(paragraphs(&text[..20_000]), MIN_VOCAB).unwrap();
		let mut json: serde_json::Value = serde_json::from_slice(tokenizer.json()).unwrap();
		let vocab = json["model"]["vocab"].as_object_mut().unwrap();
		let (last, _) = vocab.iter().max_by_key(|(_, id)| id.as_u64()).unwrap();
		let last = last.clone();
		vocab.insert(last, serde_json::json!(4_000_000_000u64));
		let crafted = serde_json::to_vec(&json).unwrap();
		let refused = TextTokenizer::from_json(crafted);
		assert!(format!("{refused:?}").contains("are not 0 to"), "{refused:?}");
		assert!(TextTokenizer::from_json(tokenizer.json().to_vec()).is_ok());
	}
}
