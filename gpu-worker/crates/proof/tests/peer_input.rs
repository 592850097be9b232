//! Property tests of what a validator parses from a worker: the training commitment (JSON) and
//! segment proofs. Random bytes and mutations of a real commitment are parsed and checked as the
//! daemon does; the outcome is a value or a clear error, never a panic.

use agora_core::Digest;
use agora_ml::data::synthetic_images;
use agora_ml::models::Architecture;
use agora_ml::train::{OptimizerConfig, TrainConfig, TrainingState};
use agora_proof::{committed_run, SegmentProof, TrainingCommitment};
use proptest::prelude::*;
use tch::Device;

/// A real commitment of a 6-step run with a checkpoint every 2 steps, and its segment 1 proof.
fn valid() -> (Vec<u8>, Vec<u8>) {
	let arch = Architecture::from_id("mlp:in=64,hidden=8,out=10").unwrap();
	let config = TrainConfig::new(OptimizerConfig::sgd(0.05, 0.9), 8, 1);
	let data = synthetic_images(32, 10, 1, 8, 16, 0).unwrap();
	let start = TrainingState::fresh(arch.initial_params(0).unwrap(), &config.optimizer).unwrap();
	let run =
		committed_run(&arch, &start, &config, &data, Digest([4; 32]), 6, 2, Device::Cpu).unwrap();
	let proof = run.commitment.segment_proof(1).unwrap();
	(serde_json::to_vec(&run.commitment).unwrap(), serde_json::to_vec(&proof).unwrap())
}

/// Checks a received commitment as a validator does.
fn check_commitment(bytes: &[u8]) {
	if let Ok(commitment) = serde_json::from_slice::<TrainingCommitment>(bytes) {
		let _ = commitment.check_roots();
		let _ = commitment.check_schedule(0, 6, 2);
		let _ = commitment.bound_root();
		for segment in 0..commitment.segments() + 1 {
			let _ = commitment.segment_proof(segment);
		}
	}
}

/// Checks a received segment proof against the honest leaves root.
fn check_proof(bytes: &[u8], root: &Digest) {
	if let Ok(proof) = serde_json::from_slice::<SegmentProof>(bytes) {
		let _ = proof.start_proof.verify(root, &proof.start.digest());
		let _ = proof.end_proof.verify(root, &proof.end.digest());
	}
}

fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
	let len = valid.len();
	(proptest::collection::vec((0..len, any::<u8>()), 1..6), 1..=len).prop_map(
		move |(flips, keep)| {
			let mut bytes = valid.clone();
			for (at, value) in flips {
				bytes[at] = value;
			}
			bytes.truncate(keep);
			bytes
		},
	)
}

proptest! {
	#![proptest_config(ProptestConfig::with_cases(300))]

	#[test]
	fn random_commitments_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
		check_commitment(&bytes);
	}

	#[test]
	fn mutated_commitments_are_checked_without_panics(bytes in mutated(valid().0)) {
		check_commitment(&bytes);
	}

	#[test]
	fn mutated_segment_proofs_are_checked_without_panics(bytes in mutated(valid().1)) {
		let commitment: TrainingCommitment = serde_json::from_slice(&valid().0).unwrap();
		check_proof(&bytes, &commitment.leaves_root);
	}
}

#[test]
fn a_commitment_edited_anywhere_fails_its_root_check() {
	let (bytes, _) = valid();
	let honest: TrainingCommitment = serde_json::from_slice(&bytes).unwrap();
	honest.check_roots().unwrap();
	let mut edited = honest.clone();
	edited.dataset_len += 1;
	assert!(edited.check_roots().is_err(), "the root covers the dataset length");
}
