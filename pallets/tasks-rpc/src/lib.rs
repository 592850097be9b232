//! # pallet-tasks-rpc
//!
//! JSON-RPC front of [`pallet_tasks_runtime_api::TasksApi`]:
//!
//! * `agora_job(job, at?)`: a job's spec, budget, escrow, status and model history;
//! * `agora_roundStatus(job, at?)`: the current round's phase, deadline, applicants, workers;
//! * `agora_pendingDuties(account, at?)`: what the account must do now (train, commit,
//!   reveal, aggregate, vote on an aggregate), with deadlines.
//!
//! Wire it in the node's RPC module:
//!
//! ```text
//! use pallet_tasks_rpc::{Tasks, TasksApiServer};
//! module.merge(Tasks::new(client.clone()).into_rpc())?;
//! ```
//!
//! Balances are serialized as JSON numbers; clients that need exact large values can call the
//! runtime API through `state_call` instead (e.g. `api.call.tasksApi.job(0)` in @polkadot/api),
//! which returns SCALE.

use agora_primitives::{Duty, JobDetails, JobId, RoundStatus};
use codec::Codec;
use jsonrpsee::{core::RpcResult, proc_macros::rpc, types::error::ErrorObjectOwned};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_runtime::traits::Block as BlockT;
use std::{marker::PhantomData, sync::Arc};

pub use pallet_tasks_runtime_api::TasksApi as TasksRuntimeApi;

/// The RPC methods.
#[rpc(server)]
pub trait TasksApi<BlockHash, AccountId, Balance, BlockNumber> {
	/// A job's details.
	#[method(name = "agora_job")]
	fn job(
		&self,
		job: JobId,
		at: Option<BlockHash>,
	) -> RpcResult<Option<JobDetails<AccountId, Balance, BlockNumber>>>;

	/// The status of a job's current round.
	#[method(name = "agora_roundStatus")]
	fn round_status(
		&self,
		job: JobId,
		at: Option<BlockHash>,
	) -> RpcResult<Option<RoundStatus<AccountId, BlockNumber>>>;

	/// An account's pending duties.
	#[method(name = "agora_pendingDuties")]
	fn pending_duties(
		&self,
		who: AccountId,
		at: Option<BlockHash>,
	) -> RpcResult<Vec<Duty<AccountId, BlockNumber>>>;
}

/// Implementation of [`TasksApiServer`] over a client.
pub struct Tasks<C, Block> {
	client: Arc<C>,
	_marker: PhantomData<Block>,
}

impl<C, Block> Tasks<C, Block> {
	/// A new instance over `client`.
	pub fn new(client: Arc<C>) -> Self {
		Self { client, _marker: PhantomData }
	}
}

fn runtime_error(e: impl std::fmt::Debug) -> ErrorObjectOwned {
	ErrorObjectOwned::owned(1, "Runtime API error", Some(format!("{e:?}")))
}

impl<C, Block, AccountId, Balance, BlockNumber>
	TasksApiServer<<Block as BlockT>::Hash, AccountId, Balance, BlockNumber> for Tasks<C, Block>
where
	Block: BlockT,
	C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync + 'static,
	C::Api: TasksRuntimeApi<Block, AccountId, Balance, BlockNumber>,
	AccountId:
		Codec + Send + Sync + 'static + serde::Serialize + serde::de::DeserializeOwned + Clone,
	Balance: Codec + Send + Sync + 'static + serde::Serialize + serde::de::DeserializeOwned,
	BlockNumber: Codec + Send + Sync + 'static + serde::Serialize + serde::de::DeserializeOwned,
{
	fn job(
		&self,
		job: JobId,
		at: Option<Block::Hash>,
	) -> RpcResult<Option<JobDetails<AccountId, Balance, BlockNumber>>> {
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		self.client.runtime_api().job(at, job).map_err(runtime_error)
	}

	fn round_status(
		&self,
		job: JobId,
		at: Option<Block::Hash>,
	) -> RpcResult<Option<RoundStatus<AccountId, BlockNumber>>> {
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		self.client.runtime_api().round_status(at, job).map_err(runtime_error)
	}

	fn pending_duties(
		&self,
		who: AccountId,
		at: Option<Block::Hash>,
	) -> RpcResult<Vec<Duty<AccountId, BlockNumber>>> {
		let at = at.unwrap_or_else(|| self.client.info().best_hash);
		self.client.runtime_api().pending_duties(at, who).map_err(runtime_error)
	}
}
