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
