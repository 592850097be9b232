//! Property tests ("fuzzing" with a bounded number of cases, run in CI) of every parser that
//! reads bytes a peer sent: dataset shards, compressed updates and safetensors. Each gets
//! random bytes and mutations of valid input (flipped bytes, truncations, extensions): the
//! result is a value or a clear error, never a panic and never an allocation beyond the input's
//! own bounds.

use std::collections::BTreeMap;

use agora_ml::compress::{decompress, Compression, Compressor};
use agora_ml::data::{decode_shard, synthetic_images};
use agora_ml::params::{Layout, ParamSet, TensorSpec};
use proptest::prelude::*;

fn layout() -> Layout {
	Layout::new(vec![
		TensorSpec { name: "a.weight".into(), shape: vec![8, 4] },
		TensorSpec { name: "a.bias".into(), shape: vec![8] },
	])
	.unwrap()
}

fn params() -> ParamSet {
	let layout = layout();
	let values = (0..layout.num_values()).map(|i| (i as f32 * 0.37).sin()).collect();
	ParamSet::new(layout, values).unwrap()
}

fn valid_shard() -> Vec<u8> {
	synthetic_images(16, 10, 1, 8, 16, 0).unwrap().encode_shard().unwrap()
}

fn valid_update(method: Compression) -> Vec<u8> {
	Compressor::new(method).unwrap().compress(&params()).unwrap()
}

fn valid_safetensors() -> Vec<u8> {
	params().to_safetensors(&BTreeMap::new()).unwrap()
}

/// A valid input changed at a few positions, cut short or extended.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
	let len = valid.len();
	(
		proptest::collection::vec((0..len, any::<u8>()), 0..6),
		0..=len,
		proptest::collection::vec(any::<u8>(), 0..16),
	)
		.prop_map(move |(flips, keep, tail)| {
			let mut bytes = valid.clone();
			for (at, value) in flips {
				bytes[at] = value;
			}
			bytes.truncate(keep.max(1));
			bytes.extend(tail);
			bytes
		})
}

proptest! {
	#![proptest_config(ProptestConfig::with_cases(400))]

	#[test]
	fn shards_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
		let _ = decode_shard(&bytes);
	}

	#[test]
	fn mutated_shards_decode_or_fail_cleanly(bytes in mutated(valid_shard())) {
		if let Ok(data) = decode_shard(&bytes) {
			// Whatever decodes is internally consistent.
			prop_assert_eq!(data.labels().len(), data.len());
		}
	}

	#[test]
	fn compressed_updates_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
		let _ = decompress(&layout(), &bytes);
	}

	#[test]
	fn mutated_int8_updates_decode_or_fail_cleanly(bytes in mutated(valid_update(Compression::Int8))) {
		if let Ok(update) = decompress(&layout(), &bytes) {
			prop_assert_eq!(update.layout(), &layout());
		}
	}

	#[test]
	fn mutated_top_k_updates_decode_or_fail_cleanly(
		bytes in mutated(valid_update(Compression::TopK { fraction: 0.25 })),
	) {
		if let Ok(update) = decompress(&layout(), &bytes) {
			prop_assert_eq!(update.layout(), &layout());
		}
	}

	#[test]
	fn safetensors_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
		let _ = ParamSet::from_safetensors(&bytes);
	}

	#[test]
	fn mutated_safetensors_decode_or_fail_cleanly(bytes in mutated(valid_safetensors())) {
		let _ = ParamSet::from_safetensors(&bytes);
	}
}
