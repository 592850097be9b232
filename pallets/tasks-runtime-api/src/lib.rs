//! # pallet-tasks-runtime-api
//!
//! What workers, validators and UIs ask the runtime about training jobs. Implemented by the
//! runtime with `pallet_tasks::Pallet::{job_details, round_status, worker_duties}` and
//! `pallet_validation::Pallet::validator_duties`; served over JSON-RPC by `pallet-tasks-rpc`.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use agora_primitives::{Duty, JobDetails, JobId, JobStatusView, RoundStatus};
use alloc::vec::Vec;
use codec::Codec;

sp_api::decl_runtime_apis! {
	/// Training jobs: details, round status and pending duties.
	pub trait TasksApi<AccountId, Balance, BlockNumber>
	where
		AccountId: Codec,
		Balance: Codec,
		BlockNumber: Codec,
	{
		/// A job's spec, budget, escrow, status and model history.
		fn job(job: JobId) -> Option<JobDetails<AccountId, Balance, BlockNumber>>;
		/// The status of a job's current round.
		fn round_status(job: JobId) -> Option<RoundStatus<AccountId, BlockNumber>>;
		/// What `who` must do now, as a worker, aggregator or validator.
		fn pending_duties(who: AccountId) -> Vec<Duty<AccountId, BlockNumber>>;
	}
}
