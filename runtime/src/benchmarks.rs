//! The pallets `agora-node benchmark pallet` measures to produce each `weights.rs`.

frame_benchmarking::define_benchmarks!(
	[frame_benchmarking, BaselineBench::<Runtime>]
	[frame_system, SystemBench::<Runtime>]
	[pallet_balances, Balances]
	[pallet_timestamp, Timestamp]
	[pallet_sudo, Sudo]
	[pallet_utility, Utility]
	[pallet_contributions, Contributions]
	[pallet_tasks, Tasks]
	[pallet_validation, Validation]
	[pallet_inference, Inference]
	[pallet_rewards, Rewards]
	[pallet_governance, Governance]
	[pallet_referenda, Referenda]
	[pallet_conviction_voting, ConvictionVoting]
	[pallet_scheduler, Scheduler]
	[pallet_preimage, Preimage]
	[pallet_treasury, Treasury]
);

// The benchmarks of FRAME's system and baseline need nothing from the runtime.
impl frame_system_benchmarking::Config for crate::Runtime {}
impl frame_benchmarking::baseline::Config for crate::Runtime {}
