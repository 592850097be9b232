//! Weights for `pallet_validation`.
//!
//! THESE ARE HAND-WRITTEN INITIAL VALUES in the layout of the benchmark CLI's output (generous
//! estimates: base time plus every storage read/write counted). They will be regenerated with
//! `agora-node benchmark pallet --pallet pallet_validation --extrinsic '*' --output
//! pallets/<pallet>/src/weights.rs --template <frame weight template>` on reference hardware.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]
#![allow(dead_code)]

use frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_validation`.
pub trait WeightInfo {
	fn commit_verdict() -> Weight;
	fn reveal_verdict() -> Weight;
	fn expose_plant() -> Weight;
	fn post_aggregate() -> Weight;
	fn vote_aggregate() -> Weight;
	fn reveal_aggregate() -> Weight;
	fn open_aggregate_reveal() -> Weight;
	fn set_params() -> Weight;
	fn on_initialize_idle(n: u32) -> Weight;
	fn start_verification(u: u32) -> Weight;
	fn open_reveal(w: u32) -> Weight;
	fn conclude(w: u32) -> Weight;
	fn tally(v: u32) -> Weight;
}

/// Weights for `pallet_validation` using the Substrate node and recommended hardware.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn commit_verdict() -> Weight {
		Weight::from_parts(40_000_000, 6_000)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn reveal_verdict() -> Weight {
		Weight::from_parts(50_000_000, 6_000)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn expose_plant() -> Weight {
		Weight::from_parts(50_000_000, 6_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn post_aggregate() -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn vote_aggregate() -> Weight {
		Weight::from_parts(40_000_000, 12_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn reveal_aggregate() -> Weight {
		Weight::from_parts(40_000_000, 12_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn open_aggregate_reveal() -> Weight {
		Weight::from_parts(40_000_000, 12_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn set_params() -> Weight {
		Weight::from_parts(10_000_000, 0)
			.saturating_add(T::DbWeight::get().reads(0_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn on_initialize_idle(n: u32) -> Weight {
		Weight::from_parts(3_000_000, 1_500)
			.saturating_add(Weight::from_parts(200_000, 40).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(0_u64))
	}
	fn start_verification(u: u32) -> Weight {
		Weight::from_parts(60_000_000, 12_000)
			.saturating_add(Weight::from_parts(40_000_000, 4_000).saturating_mul(u.into()))
			.saturating_add(T::DbWeight::get().writes((1_u64).saturating_mul(u.into())))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn open_reveal(w: u32) -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(Weight::from_parts(3_000_000, 4_000).saturating_mul(w.into()))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(w.into())))
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn conclude(w: u32) -> Weight {
		Weight::from_parts(60_000_000, 12_000)
			.saturating_add(Weight::from_parts(60_000_000, 12_000).saturating_mul(w.into()))
			.saturating_add(T::DbWeight::get().reads((10_u64).saturating_mul(w.into())))
			.saturating_add(T::DbWeight::get().writes((9_u64).saturating_mul(w.into())))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn tally(v: u32) -> Weight {
		Weight::from_parts(50_000_000, 12_000)
			.saturating_add(Weight::from_parts(1_000_000, 60).saturating_mul(v.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(6_u64))
	}
}

// For backwards compatibility and tests.
impl WeightInfo for () {
	fn commit_verdict() -> Weight {
		Weight::from_parts(40_000_000, 6_000)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
	fn reveal_verdict() -> Weight {
		Weight::from_parts(50_000_000, 6_000)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
	fn expose_plant() -> Weight {
		Weight::from_parts(50_000_000, 6_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(1_u64))
	}
	fn post_aggregate() -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(RocksDbWeight::get().reads(1_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn vote_aggregate() -> Weight {
		Weight::from_parts(40_000_000, 12_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
	fn reveal_aggregate() -> Weight {
		Weight::from_parts(40_000_000, 12_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
	fn open_aggregate_reveal() -> Weight {
		Weight::from_parts(40_000_000, 12_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn set_params() -> Weight {
		Weight::from_parts(10_000_000, 0)
			.saturating_add(RocksDbWeight::get().reads(0_u64))
			.saturating_add(RocksDbWeight::get().writes(1_u64))
	}
	fn on_initialize_idle(n: u32) -> Weight {
		Weight::from_parts(3_000_000, 1_500)
			.saturating_add(Weight::from_parts(200_000, 40).saturating_mul(n.into()))
			.saturating_add(RocksDbWeight::get().reads(1_u64))
			.saturating_add(RocksDbWeight::get().writes(0_u64))
	}
	fn start_verification(u: u32) -> Weight {
		Weight::from_parts(60_000_000, 12_000)
			.saturating_add(Weight::from_parts(40_000_000, 4_000).saturating_mul(u.into()))
			.saturating_add(RocksDbWeight::get().writes((1_u64).saturating_mul(u.into())))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn open_reveal(w: u32) -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(Weight::from_parts(3_000_000, 4_000).saturating_mul(w.into()))
			.saturating_add(RocksDbWeight::get().reads((1_u64).saturating_mul(w.into())))
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn conclude(w: u32) -> Weight {
		Weight::from_parts(60_000_000, 12_000)
			.saturating_add(Weight::from_parts(60_000_000, 12_000).saturating_mul(w.into()))
			.saturating_add(RocksDbWeight::get().reads((10_u64).saturating_mul(w.into())))
			.saturating_add(RocksDbWeight::get().writes((9_u64).saturating_mul(w.into())))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn tally(v: u32) -> Weight {
		Weight::from_parts(50_000_000, 12_000)
			.saturating_add(Weight::from_parts(1_000_000, 60).saturating_mul(v.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(6_u64))
	}
}
