//! Documents into token shards: each document tokenized and followed by the separator, the
//! stream cut into windows of `context + 1` tokens (a model reads `context` and predicts each
//! next one), every `holdout_every`-th window set aside as held-out data, and both written as
//! content-addressed shards with their manifests (`prepare-data`'s format, loaded by
//! `agora_ml::data::load_sharded`). Memory holds one document and one shard of each kind.

use std::path::Path;

use agora_ml::data::{encode_tokens, Dataset, Manifest, SampleKind, ShardWriter};

use crate::error::{Result, TextError};
use crate::tokenizer::TextTokenizer;

/// How windows are cut and shards filled.
#[derive(Clone, Copy, Debug)]
pub struct PrepareOptions {
	/// Tokens a model reads: windows hold one more.
	pub context: usize,
	/// Windows per shard.
	pub shard_windows: usize,
	/// One window in this many goes to the held-out set (0: none).
	pub holdout_every: usize,
	/// Stop after this many windows in all (`None`: the whole corpus).
	pub max_windows: Option<usize>,
}

/// What [`prepare_shards`] wrote.
#[derive(Debug)]
pub struct Prepared {
	pub train: Manifest,
	pub holdout: Option<Manifest>,
	pub documents: u64,
	/// Tokens in windows (a last partial window is dropped).
	pub tokens: u64,
	pub train_windows: u64,
	pub holdout_windows: u64,
}

/// Windows of one kind waiting to fill a shard.
struct PendingShards {
	writer: ShardWriter,
	kind: SampleKind,
	bytes: Vec<u8>,
	windows: usize,
	written: u64,
}

impl PendingShards {
	fn new(dir: &Path, name: &str, kind: SampleKind) -> Self {
		let writer = ShardWriter::new(dir, name);
		PendingShards { writer, kind, bytes: Vec::new(), windows: 0, written: 0 }
	}

	fn push(&mut self, window: &[u32], vocab: usize, shard_windows: usize) -> Result<()> {
		self.bytes.extend_from_slice(&encode_tokens(window, vocab)?);
		self.windows += 1;
		self.written += 1;
		if self.windows == shard_windows {
			self.flush()?;
		}
		Ok(())
	}

	fn flush(&mut self) -> Result<()> {
		if self.windows == 0 {
			return Ok(());
		}
		let bytes = std::mem::take(&mut self.bytes);
		self.writer.push(&Dataset::new(self.kind, 0, 1.0, bytes, Vec::new())?)?;
		self.windows = 0;
		Ok(())
	}

	/// The manifest, or `None` when no window came.
	fn finish(mut self) -> Result<Option<Manifest>> {
		self.flush()?;
		if self.written == 0 {
			return Ok(None);
		}
		Ok(Some(self.writer.finish()?))
	}
}

/// Tokenizes `documents` with `tokenizer` into shards under `out/train` and `out/holdout`.
pub fn prepare_shards(
	documents: impl Iterator<Item = Result<String>>,
	tokenizer: &TextTokenizer,
	options: PrepareOptions,
	out: &Path,
) -> Result<Prepared> {
	if options.context == 0 || options.shard_windows == 0 {
		return Err(TextError::Corpus("context and windows per shard must be positive".into()));
	}
	let vocab = tokenizer.vocab_size();
	let length = options.context + 1;
	let kind = SampleKind::Tokens { length, vocab };
	let mut train = PendingShards::new(&out.join("train"), "train", kind);
	let mut holdout = PendingShards::new(&out.join("holdout"), "holdout", kind);
	let mut stream: Vec<u32> = Vec::new();
	let (mut documents_read, mut windows) = (0u64, 0usize);
	'documents: for document in documents {
		stream.extend(tokenizer.encode(&document?)?);
		stream.push(tokenizer.end_of_text());
		documents_read += 1;
		let mut start = 0;
		while stream.len() - start >= length {
			if options.max_windows.is_some_and(|max| windows >= max) {
				break 'documents;
			}
			let window = &stream[start..start + length];
			let held_out = options.holdout_every > 0 && windows % options.holdout_every == 0;
			let pending = if held_out { &mut holdout } else { &mut train };
			pending.push(window, vocab, options.shard_windows)?;
			windows += 1;
			start += length;
		}
		stream.drain(..start);
	}
	let (train_windows, holdout_windows) = (train.written, holdout.written);
	let train = train
		.finish()?
		.ok_or_else(|| TextError::Corpus("too little text for one training window".into()))?;
	Ok(Prepared {
		train,
		holdout: holdout.finish()?,
		documents: documents_read,
		tokens: (train_windows + holdout_windows) * length as u64,
		train_windows,
		holdout_windows,
	})
}

#[cfg(test)]
mod tests {
	use super::*;
	use agora_ml::data::{load_sharded, MANIFEST_FILE};

	#[test]
	fn documents_become_windows_of_tokens_in_content_addressed_shards() {
		let text = std::fs::read_to_string(agora_ml::data::genesis_text_path()).unwrap();
		let documents: Vec<String> = text.split("\n\n").map(str::to_string).collect();
		let tokenizer = TextTokenizer::train(documents.clone().into_iter(), 512).unwrap();
		let dir = tempfile::tempdir().unwrap();
		let options = PrepareOptions {
			context: 32,
			shard_windows: 100,
			holdout_every: 10,
			max_windows: None,
		};
		let prepared =
			prepare_shards(documents.iter().cloned().map(Ok), &tokenizer, options, dir.path())
				.unwrap();
		assert_eq!(prepared.documents, documents.len() as u64);
		// Every token of the corpus and its separators, but for the last partial window.
		let all: usize = documents.iter().map(|d| tokenizer.encode(d).unwrap().len() + 1).sum();
		assert_eq!(prepared.tokens as usize, all / 33 * 33);
		// One window in ten is held out, the first one included.
		let windows = prepared.train_windows + prepared.holdout_windows;
		assert_eq!(prepared.holdout_windows, windows.div_ceil(10));
		let (train, manifest) =
			load_sharded(&dir.path().join("train").join(MANIFEST_FILE), None).unwrap();
		assert_eq!(manifest.root, prepared.train.root);
		assert_eq!(train.len() as u64, prepared.train_windows);
		assert_eq!(manifest.shards.len() as u64, prepared.train_windows.div_ceil(100));
		assert_eq!(train.kind(), SampleKind::Tokens { length: 33, vocab: 512 });
		// The held-out set's first window is the corpus's first 33 tokens.
		let (holdout, _) =
			load_sharded(&dir.path().join("holdout").join(MANIFEST_FILE), None).unwrap();
		let first = tokenizer.encode(&documents[0]).unwrap();
		let agora_ml::data::Batch::Language { inputs, .. } =
			holdout.batch(&[0], tch::Device::Cpu).unwrap()
		else {
			panic!("a language batch")
		};
		let inputs: Vec<i64> = Vec::try_from(inputs.get(0)).unwrap();
		let expected: Vec<i64> = first.iter().take(32).map(|&t| i64::from(t)).collect();
		assert_eq!(inputs[..expected.len()], expected[..]);

		// A bound on windows stops early; too little text is an error.
		let bounded = PrepareOptions { max_windows: Some(5), holdout_every: 0, ..options };
		let small_dir = tempfile::tempdir().unwrap();
		let few = prepare_shards(
			documents.iter().cloned().map(Ok),
			&tokenizer,
			bounded,
			small_dir.path(),
		)
		.unwrap();
		assert_eq!((few.train_windows, few.holdout), (5, None));
		let none = prepare_shards(
			std::iter::once(Ok("Amen.".to_string())),
			&tokenizer,
			options,
			small_dir.path(),
		);
		assert!(none.is_err());
	}
}
