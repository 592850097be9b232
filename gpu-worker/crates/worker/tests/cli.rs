//! End-to-end checks of the `agora-worker` binary: the commands chain together, and bad input
//! ends in a clear error (exit code 1, message on stderr), never a panic.

use std::path::Path;
use std::process::{Command, Output};

fn worker(dir: &Path, args: &[&str]) -> Output {
	Command::new(env!("CARGO_BIN_EXE_agora-worker"))
		.current_dir(dir)
		.env("RUST_LOG", "warn")
		.args(args)
		.output()
		.expect("the binary runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
	let output = worker(dir, args);
	assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
	String::from_utf8(output.stdout).unwrap()
}

fn fails_cleanly(dir: &Path, args: &[&str], expected: &str) {
	let output = worker(dir, args);
	let stderr = String::from_utf8_lossy(&output.stderr);
	assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
	assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
	assert!(stderr.contains(expected), "{args:?}: expected `{expected}` in {stderr}");
}

#[test]
fn train_prove_verify_aggregate_and_reject_bad_input() {
	let tmp = tempfile::tempdir().unwrap();
	let dir = tmp.path();
	ok(dir, &["prepare-data", "--source", "digits", "--workers", "2", "--out", "data"]);
	let init_hash =
		ok(dir, &["init", "--arch", "mlp-digits", "--seed", "5", "--out", "init.safetensors"]);
	assert_eq!(ok(dir, &["hash", "init.safetensors"]), init_hash);
	for (worker, seed) in [("00", "1"), ("01", "2")] {
		ok(
			dir,
			&[
				"--threads",
				"1",
				"train",
				"--model",
				"init.safetensors",
				"--data",
				&format!("data/worker-{worker}/manifest.json"),
				"--steps",
				"20",
				"--checkpoint-every",
				"10",
				"--seed",
				seed,
				"--out",
				&format!("run{worker}"),
				"--no-progress",
			],
		);
	}
	ok(dir, &["prove-segment", "--run", "run00", "--segment", "1", "--out", "proof.json"]);
	let verify = |data: &str| {
		worker(
			dir,
			&[
				"--threads",
				"1",
				"verify-segment",
				"--commitment",
				"run00/commitment.json",
				"--proof",
				"proof.json",
				"--start",
				"run00/checkpoint-00000010.safetensors",
				"--end",
				"run00/checkpoint-00000020.safetensors",
				"--data",
				data,
			],
		)
	};
	let accepted = verify("data/worker-00/manifest.json");
	assert_eq!(accepted.status.code(), Some(0));
	assert!(String::from_utf8_lossy(&accepted.stdout).contains("\"accepted\": true"));

	// Aggregates do not depend on the order of the update files.
	let forward = ok(
		dir,
		&[
			"aggregate",
			"--rule",
			"fedavg",
			"--base",
			"init.safetensors",
			"--updates",
			"run00/update.safetensors",
			"run01/update.safetensors",
			"--out",
			"a.safetensors",
		],
	);
	let backward = ok(
		dir,
		&[
			"aggregate",
			"--rule",
			"fedavg",
			"--base",
			"init.safetensors",
			"--updates",
			"run01/update.safetensors",
			"run00/update.safetensors",
			"--out",
			"b.safetensors",
		],
	);
	assert_eq!(forward, backward);

	// Bad input: other data than committed, a proof for another segment's checkpoints,
	// a truncated model, an update on another base, an unknown architecture.
	let wrong_data = verify("data/worker-01/manifest.json");
	assert_eq!(wrong_data.status.code(), Some(1));
	assert!(String::from_utf8_lossy(&wrong_data.stderr).contains("hash mismatch"));
	fails_cleanly(
		dir,
		&[
			"verify-segment",
			"--commitment",
			"run00/commitment.json",
			"--proof",
			"proof.json",
			"--start",
			"run00/checkpoint-00000000.safetensors",
			"--end",
			"run00/checkpoint-00000020.safetensors",
			"--data",
			"data/worker-00/manifest.json",
		],
		"hash mismatch",
	);
	let bytes = std::fs::read(dir.join("init.safetensors")).unwrap();
	std::fs::write(dir.join("truncated.safetensors"), &bytes[..bytes.len() - 100]).unwrap();
	fails_cleanly(dir, &["hash", "truncated.safetensors"], "invalid safetensors");
	fails_cleanly(
		dir,
		&[
			"aggregate",
			"--rule",
			"median",
			"--base",
			"run00/model.safetensors",
			"--updates",
			"run01/update.safetensors",
			"--out",
			"c.safetensors",
		],
		"another base model",
	);
	fails_cleanly(dir, &["init", "--arch", "mlp:in=64", "--out", "x.safetensors"], "architecture");
}

/// A language model from a text corpus: a BPE tokenizer trained on it and pinned by its hash,
/// token shards, a GPT trained on them with the language-model recipe, a replayed segment.
#[test]
fn a_text_corpus_becomes_token_shards_a_gpt_trains_on() {
	let tmp = tempfile::tempdir().unwrap();
	let dir = tmp.path();
	let corpus = dir.join("corpus");
	std::fs::create_dir(&corpus).unwrap();
	let genesis = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/genesis-kjv.txt");
	std::fs::copy(genesis, corpus.join("genesis.txt")).unwrap();
	let prepare = [
		"prepare-text",
		"--corpus",
		"corpus",
		"--vocab",
		"600",
		"--context",
		"32",
		"--shard-windows",
		"256",
		"--holdout-every",
		"20",
		"--out",
		"text",
	];
	let printed = ok(dir, &prepare);
	let field = |name: &str| -> String {
		let line = printed.lines().find(|l| l.starts_with(name)).expect(name);
		line.split('\t').nth(1).unwrap().to_string()
	};
	let tokenizer = field("tokenizer");
	assert!(dir.join(format!("text/tokenizer-{tokenizer}.json")).is_file());
	// The same corpus gives the same tokenizer and the same shards.
	let again = ok(dir, &[&prepare[..prepare.len() - 1], &["text-again"]].concat());
	assert_eq!(again.lines().nth(1), printed.lines().nth(1), "same training shards");
	assert!(again.starts_with(&format!("tokenizer\t{tokenizer}")));
	// A tokenizer given by file is used as it is.
	let pinned = format!("text/tokenizer-{tokenizer}.json");
	let reused = ok(
		dir,
		&[&prepare[..prepare.len() - 1], &["text-reused", "--tokenizer", &pinned]].concat(),
	);
	assert_eq!(reused.lines().nth(1), printed.lines().nth(1));

	ok(
		dir,
		&[
			"init",
			"--arch",
			"gpt:vocab=600,ctx=32,width=32,heads=4,layers=2",
			"--out",
			"gpt.safetensors",
		],
	);
	let trained = ok(
		dir,
		&[
			"--threads",
			"1",
			"train",
			"--model",
			"gpt.safetensors",
			"--data",
			"text/train/manifest.json",
			"--steps",
			"8",
			"--batch-size",
			"8",
			"--optimizer",
			"adamw",
			"--lr",
			"3e-3",
			"--warmup-steps",
			"2",
			"--clip-norm",
			"1.0",
			"--micro-batches",
			"2",
			"--checkpoint-every",
			"4",
			"--out",
			"lm",
			"--no-progress",
		],
	);
	let perplexity: f64 = trained
		.lines()
		.find_map(|l| l.split("perplexity ").nth(1))
		.expect("perplexity printed")
		.trim()
		.parse()
		.unwrap();
	// From uniform guessing over 600 tokens, 8 steps already learn something.
	assert!(perplexity < 600.0, "perplexity {perplexity}");
	// It writes: the same seed gives the same text, which continues the prompt.
	let generate = [
		"generate",
		"--model",
		"lm/model.safetensors",
		"--tokenizer",
		&pinned,
		"--prompt",
		"In the beginning",
		"--tokens",
		"12",
		"--seed",
		"3",
	];
	let text = ok(dir, &generate);
	assert!(text.starts_with("In the beginning"), "{text}");
	assert_eq!(ok(dir, &generate), text);
	fails_cleanly(
		dir,
		&["generate", "--model", "lm/model.safetensors", "--tokenizer", "missing.json"],
		"missing.json",
	);
	// The run replays: its second segment is verified from its checkpoints.
	ok(dir, &["prove-segment", "--run", "lm", "--segment", "1", "--out", "proof.json"]);
	let verified = worker(
		dir,
		&[
			"verify-segment",
			"--commitment",
			"lm/commitment.json",
			"--proof",
			"proof.json",
			"--start",
			"lm/checkpoint-00000004.safetensors",
			"--end",
			"lm/checkpoint-00000008.safetensors",
			"--data",
			"text/train/manifest.json",
		],
	);
	assert_eq!(verified.status.code(), Some(0), "{}", String::from_utf8_lossy(&verified.stderr));
}
