//! `agora-worker prepare-text`: a corpus into a content-addressed BPE tokenizer and the token
//! shards a language-model job trains and is judged on.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use agora_text::corpus::Source;
use agora_text::prepare::{prepare_shards, PrepareOptions};
use agora_text::tokenizer::TextTokenizer;

#[derive(Args)]
pub struct PrepareText {
	/// `python-docs` (the English prose of Python's documentation, from Debian's
	/// python3.11-doc), `python-docs:DIR`, a `.jsonl` file (each line's `text`), or a text file
	/// or directory of `.txt` files.
	#[arg(long, default_value = "python-docs")]
	corpus: String,
	/// A tokenizer file to use instead of training one on the corpus.
	#[arg(long)]
	tokenizer: Option<PathBuf>,
	/// Tokens in the vocabulary of the tokenizer to train (the separator included).
	#[arg(long, default_value_t = 8192)]
	vocab: usize,
	/// Tokens a model reads (windows hold one more).
	#[arg(long, default_value_t = 256)]
	context: usize,
	/// Windows per shard.
	#[arg(long, default_value_t = 1024)]
	shard_windows: usize,
	/// One window in this many is held out (0: none).
	#[arg(long, default_value_t = 50)]
	holdout_every: usize,
	/// Stop after this many windows.
	#[arg(long)]
	max_windows: Option<usize>,
	/// Directory for `tokenizer-<hash>.json`, `train/` and `holdout/`.
	#[arg(long)]
	out: PathBuf,
}

pub fn prepare_text(args: &PrepareText) -> Result<()> {
	let source = Source::parse(&args.corpus);
	let tokenizer = match &args.tokenizer {
		Some(path) => TextTokenizer::load(path, None)
			.with_context(|| format!("loading the tokenizer {}", path.display()))?,
		None => {
			let started = Instant::now();
			let tokenizer = TextTokenizer::train_on(&source, args.vocab)
				.with_context(|| format!("training a tokenizer on {}", args.corpus))?;
			tracing::info!(seconds = started.elapsed().as_secs_f64(), "tokenizer trained");
			tokenizer
		},
	};
	let path = tokenizer.save_in(&args.out)?;
	println!(
		"tokenizer\t{}\t{} tokens\t{}",
		tokenizer.hash(),
		tokenizer.vocab_size(),
		path.display()
	);
	let options = PrepareOptions {
		context: args.context,
		shard_windows: args.shard_windows,
		holdout_every: args.holdout_every,
		max_windows: args.max_windows,
	};
	let started = Instant::now();
	let prepared = prepare_shards(source.documents()?, &tokenizer, options, &args.out)?;
	let seconds = started.elapsed().as_secs_f64();
	println!("train\t{}\t{} windows", prepared.train.root, prepared.train_windows);
	if let Some(holdout) = &prepared.holdout {
		println!("holdout\t{}\t{} windows", holdout.root, prepared.holdout_windows);
	}
	println!(
		"{} documents, {} tokens in windows of {} in {seconds:.1} s",
		prepared.documents,
		prepared.tokens,
		args.context + 1
	);
	Ok(())
}
