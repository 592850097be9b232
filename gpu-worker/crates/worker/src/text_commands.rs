//! `agora-worker prepare-text`: a corpus into a content-addressed BPE tokenizer and the token
//! shards a language-model job trains and is judged on; `generate`: text from a trained model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tch::{Kind, Tensor};

use agora_ml::models::Model;

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

#[derive(Args)]
pub struct Generate {
	/// The language model: a model file (`init`, `train`) or a model blob (`job download`).
	#[arg(long)]
	model: PathBuf,
	/// The tokenizer its data was prepared with (`tokenizer-<hash>.json`).
	#[arg(long)]
	tokenizer: PathBuf,
	#[arg(long, default_value = "The")]
	prompt: String,
	/// Tokens to generate.
	#[arg(long, default_value_t = 60)]
	tokens: usize,
	/// Sampling temperature; 0 picks the most likely token every time.
	#[arg(long, default_value_t = 0.8)]
	temperature: f64,
	/// Seed of the sampling (the same seed, model and prompt give the same text).
	#[arg(long, default_value_t = 0)]
	seed: u64,
}

/// Continues a prompt with a trained language model and prints the text.
pub fn generate(args: &Generate, device: tch::Device) -> Result<()> {
	let (arch, params) = crate::load_any_model(&args.model)?;
	let Some((vocab, context)) = arch.language_shape() else {
		bail!("{arch} is not a language model");
	};
	let tokenizer = TextTokenizer::load(&args.tokenizer, None)?;
	if tokenizer.vocab_size() > vocab {
		bail!("the tokenizer has {} tokens, the model {vocab}", tokenizer.vocab_size());
	}
	if !(args.temperature.is_finite() && args.temperature >= 0.0) {
		bail!("the temperature must be 0 or more");
	}
	let model = Model::new(&arch, &params, device)?;
	let mut tokens = tokenizer.encode(&args.prompt)?;
	if tokens.is_empty() {
		bail!("the prompt has no tokens");
	}
	let prompt_len = tokens.len();
	let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
	for _ in 0..args.tokens {
		let window = &tokens[tokens.len().saturating_sub(context)..];
		let input: Vec<i64> = window.iter().map(|&t| i64::from(t)).collect();
		let logits = tch::no_grad(|| -> Result<Vec<f64>> {
			let input = Tensor::f_from_slice(&input)?.f_view([1, -1])?.f_to_device(device)?;
			let out = tch::nn::Module::forward(model.network(), &input);
			let last = out.f_select(1, -1)?.f_select(0, 0)?.f_to_kind(Kind::Double)?;
			Ok(Vec::<f64>::try_from(last.f_to_device(tch::Device::Cpu)?)?)
		})?;
		let next = pick(&logits[..tokenizer.vocab_size()], args.temperature, &mut rng);
		if next == tokenizer.end_of_text() {
			break;
		}
		tokens.push(next);
	}
	let continuation = tokenizer.decode(&tokens[prompt_len..])?;
	println!("{}{continuation}", args.prompt);
	Ok(())
}

/// The most likely token at temperature 0, else one drawn from `softmax(logits / temperature)`.
fn pick(logits: &[f64], temperature: f64, rng: &mut ChaCha20Rng) -> u32 {
	let best = logits
		.iter()
		.enumerate()
		.max_by(|a, b| a.1.total_cmp(b.1))
		.map(|(index, _)| index)
		.unwrap_or(0);
	if temperature == 0.0 {
		return best as u32;
	}
	let top = logits[best];
	let weights: Vec<f64> = logits.iter().map(|l| ((l - top) / temperature).exp()).collect();
	let mut draw = rng.gen::<f64>() * weights.iter().sum::<f64>();
	for (index, weight) in weights.iter().enumerate() {
		draw -= weight;
		if draw <= 0.0 {
			return index as u32;
		}
	}
	best as u32
}
