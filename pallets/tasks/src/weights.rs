//! Weights for `pallet_tasks`.
//!
//! THESE ARE HAND-WRITTEN INITIAL VALUES in the layout of the benchmark CLI's output (generous
//! estimates: base time plus every storage read/write counted). They will be regenerated with
//! `agora-node benchmark pallet --pallet pallet_tasks --extrinsic '*' --output
//! pallets/<pallet>/src/weights.rs --template <frame weight template>` on reference hardware.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]
#![allow(dead_code)]

use frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_tasks`.
pub trait WeightInfo {
	fn create_job(s: u32) -> Weight;
	fn cancel_job() -> Weight;
	fn reap_job(r: u32) -> Weight;
	fn apply_for_round() -> Weight;
	fn submit_update() -> Weight;
	fn set_params() -> Weight;
	fn on_initialize_idle(n: u32) -> Weight;
	fn close_open(a: u32, w: u32) -> Weight;
	fn close_training(w: u32) -> Weight;
	fn finish_round(w: u32, s: u32) -> Weight;
}

/// Weights for `pallet_tasks` using the Substrate node and recommended hardware.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn create_job(s: u32) -> Weight {
		Weight::from_parts(60_000_000, 6_000)
			.saturating_add(Weight::from_parts(3_000_000, 2_600).saturating_mul(s.into()))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(s.into())))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn cancel_job() -> Weight {
		Weight::from_parts(45_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn reap_job(r: u32) -> Weight {
		Weight::from_parts(50_000_000, 8_000)
			.saturating_add(Weight::from_parts(5_000_000, 0).saturating_mul(r.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes((1_u64).saturating_mul(r.into())))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn apply_for_round() -> Weight {
		Weight::from_parts(35_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn submit_update() -> Weight {
		Weight::from_parts(45_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
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
	fn close_open(a: u32, w: u32) -> Weight {
		Weight::from_parts(40_000_000, 8_000)
			.saturating_add(Weight::from_parts(4_000_000, 2_600).saturating_mul(a.into()))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(a.into())))
			.saturating_add(Weight::from_parts(2_000_000, 0).saturating_mul(w.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(4_u64))
	}
	fn close_training(w: u32) -> Weight {
		Weight::from_parts(40_000_000, 8_000)
			.saturating_add(Weight::from_parts(25_000_000, 5_200).saturating_mul(w.into()))
			.saturating_add(T::DbWeight::get().reads((3_u64).saturating_mul(w.into())))
			.saturating_add(T::DbWeight::get().writes((2_u64).saturating_mul(w.into())))
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn finish_round(w: u32, s: u32) -> Weight {
		Weight::from_parts(60_000_000, 12_000)
			.saturating_add(Weight::from_parts(8_000_000, 2_600).saturating_mul(w.into()))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(w.into())))
			.saturating_add(T::DbWeight::get().writes((1_u64).saturating_mul(w.into())))
			.saturating_add(Weight::from_parts(4_000_000, 2_600).saturating_mul(s.into()))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(s.into())))
			.saturating_add(T::DbWeight::get().reads(6_u64))
			.saturating_add(T::DbWeight::get().writes(8_u64))
	}
}

// For backwards compatibility and tests.
impl WeightInfo for () {
	fn create_job(s: u32) -> Weight {
		Weight::from_parts(60_000_000, 6_000)
			.saturating_add(Weight::from_parts(3_000_000, 2_600).saturating_mul(s.into()))
			.saturating_add(RocksDbWeight::get().reads((1_u64).saturating_mul(s.into())))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn cancel_job() -> Weight {
		Weight::from_parts(45_000_000, 8_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn reap_job(r: u32) -> Weight {
		Weight::from_parts(50_000_000, 8_000)
			.saturating_add(Weight::from_parts(5_000_000, 0).saturating_mul(r.into()))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes((1_u64).saturating_mul(r.into())))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn apply_for_round() -> Weight {
		Weight::from_parts(35_000_000, 8_000)
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(1_u64))
	}
	fn submit_update() -> Weight {
		Weight::from_parts(45_000_000, 8_000)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
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
	fn close_open(a: u32, w: u32) -> Weight {
		Weight::from_parts(40_000_000, 8_000)
			.saturating_add(Weight::from_parts(4_000_000, 2_600).saturating_mul(a.into()))
			.saturating_add(RocksDbWeight::get().reads((1_u64).saturating_mul(a.into())))
			.saturating_add(Weight::from_parts(2_000_000, 0).saturating_mul(w.into()))
			.saturating_add(RocksDbWeight::get().reads(4_u64))
			.saturating_add(RocksDbWeight::get().writes(4_u64))
	}
	fn close_training(w: u32) -> Weight {
		Weight::from_parts(40_000_000, 8_000)
			.saturating_add(Weight::from_parts(25_000_000, 5_200).saturating_mul(w.into()))
			.saturating_add(RocksDbWeight::get().reads((3_u64).saturating_mul(w.into())))
			.saturating_add(RocksDbWeight::get().writes((2_u64).saturating_mul(w.into())))
			.saturating_add(RocksDbWeight::get().reads(3_u64))
			.saturating_add(RocksDbWeight::get().writes(3_u64))
	}
	fn finish_round(w: u32, s: u32) -> Weight {
		Weight::from_parts(60_000_000, 12_000)
			.saturating_add(Weight::from_parts(8_000_000, 2_600).saturating_mul(w.into()))
			.saturating_add(RocksDbWeight::get().reads((1_u64).saturating_mul(w.into())))
			.saturating_add(RocksDbWeight::get().writes((1_u64).saturating_mul(w.into())))
			.saturating_add(Weight::from_parts(4_000_000, 2_600).saturating_mul(s.into()))
			.saturating_add(RocksDbWeight::get().reads((1_u64).saturating_mul(s.into())))
			.saturating_add(RocksDbWeight::get().reads(6_u64))
			.saturating_add(RocksDbWeight::get().writes(8_u64))
	}
}
