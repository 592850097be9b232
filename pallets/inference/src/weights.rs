// This file is part of Agora. SPDX-License-Identifier: Apache-2.0

//! Weights for `pallet_inference`: bootstrap values until `scripts/benchmark.sh
//! pallet_inference` generates this file.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_inference`.
pub trait WeightInfo {
	fn set_terms() -> Weight;
	fn delist(v: u32, ) -> Weight;
	fn offer() -> Weight;
	fn withdraw_offer() -> Weight;
	fn open_channel() -> Weight;
	fn top_up() -> Weight;
	fn settle() -> Weight;
	fn clear_batch() -> Weight;
	fn dispute(a: u32, ) -> Weight;
	fn commit_audit() -> Weight;
	fn reveal_audit() -> Weight;
	fn conclude_audit(a: u32, ) -> Weight;
	fn close_channel() -> Weight;
	fn finish_close() -> Weight;
	fn set_params() -> Weight;
	fn draw_audits(n: u32, ) -> Weight;
	fn record_version() -> Weight;
}

/// Weights for `pallet_inference` measured on the benchmark machine (the runtime's weights).
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn set_terms() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn delist(_v: u32, ) -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn offer() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn withdraw_offer() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn open_channel() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn top_up() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn settle() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn clear_batch() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn dispute(_a: u32, ) -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn commit_audit() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn reveal_audit() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn conclude_audit(_a: u32, ) -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn close_channel() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn finish_close() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn set_params() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn draw_audits(_n: u32, ) -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
	fn record_version() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(T::DbWeight::get().reads_writes(8, 8))
	}
}

// For backwards compatibility and tests.
impl WeightInfo for () {
	fn set_terms() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn delist(_v: u32, ) -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn offer() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn withdraw_offer() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn open_channel() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn top_up() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn settle() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn clear_batch() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn dispute(_a: u32, ) -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn commit_audit() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn reveal_audit() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn conclude_audit(_a: u32, ) -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn close_channel() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn finish_close() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn set_params() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn draw_audits(_n: u32, ) -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
	fn record_version() -> Weight {
		Weight::from_parts(100_000_000, 10_000).saturating_add(RocksDbWeight::get().reads_writes(8, 8))
	}
}
