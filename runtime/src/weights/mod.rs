//! Weights of Agora's pallets measured on this runtime by `scripts/benchmark.sh`
//! (`agora-node benchmark pallet`). FRAME's own pallets use their upstream `SubstrateWeight`.

pub mod pallet_contributions;
pub mod pallet_governance;
pub mod pallet_rewards;
pub mod pallet_tasks;
pub mod pallet_validation;
