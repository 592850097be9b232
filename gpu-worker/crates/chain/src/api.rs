//! What the daemons need from the chain, as a trait: the RPC client ([`crate::Chain`])
//! implements it against a node, and tests implement it in memory to drive the daemons through
//! restarts, dropped transactions and unreachable nodes.

use std::time::Duration;

use anyhow::Result;
use futures::future::BoxFuture;
use subxt::config::substrate::H256;
use subxt::utils::AccountId32;

use crate::{
	Balance, BlockNumber, Capability, Duty, Endpoint, JobDetails, Perbill, RegistryRole,
	RoundStatus, Seats, Update, Verdict, VerificationStage,
};

/// A job's details as `TasksApi_job` returns them.
pub type JobInfo = JobDetails<AccountId32, Balance, BlockNumber>;
/// A job's current round as `TasksApi_round_status` returns it.
pub type RoundInfo = RoundStatus<AccountId32, BlockNumber>;
/// One of an account's duties as `TasksApi_pending_duties` returns it.
pub type PendingDuty = Duty<AccountId32, BlockNumber>;

/// A transaction in the pool: resolves once it is in a best block, or with the dispatch error,
/// or when the pool dropped it (then the chain's state still asks for the duty, and the daemon
/// does it again).
pub type Pending = BoxFuture<'static, Result<()>>;

/// The protocol's transactions that a worker or validator daemon signs.
#[derive(Clone, Debug, PartialEq)]
pub enum ProtocolCall {
	Register {
		role: RegistryRole,
		stake: Balance,
		peer_id: Vec<u8>,
		multiaddr: Vec<u8>,
		capability: Capability,
	},
	UpdateEndpoint {
		role: RegistryRole,
		peer_id: Vec<u8>,
		multiaddr: Vec<u8>,
		capability: Capability,
	},
	BondExtra {
		role: RegistryRole,
		amount: Balance,
	},
	/// An unseated validator takes a seat with the stake it has.
	ClaimSeat,
	ApplyForRound {
		job: u64,
	},
	SubmitUpdate {
		job: u64,
		round: u32,
		update: Update,
	},
	CommitVerdict {
		job: u64,
		worker: AccountId32,
		commitment: H256,
	},
	RevealVerdict {
		job: u64,
		worker: AccountId32,
		verdict: Verdict,
		score: Perbill,
		salt: [u8; 32],
	},
	ExposePlant {
		job: u64,
		secret: [u8; 32],
	},
	/// The aggregator's commitment to its aggregate ([`crate::aggregate_commitment`]).
	PostAggregate {
		job: u64,
		round: u32,
		commitment: H256,
	},
	/// A validator's commitment to the aggregate it recomputed.
	VoteAggregate {
		job: u64,
		round: u32,
		commitment: H256,
	},
	/// The aggregate hash and salt committed to, revealed.
	RevealAggregate {
		job: u64,
		round: u32,
		model: H256,
		salt: [u8; 32],
	},
	Claim,
}

impl ProtocolCall {
	/// The call's name, for logs and errors.
	pub fn name(&self) -> &'static str {
		match self {
			ProtocolCall::Register { role: RegistryRole::Worker, .. } => "register_worker",
			ProtocolCall::Register { .. } => "register_validator",
			ProtocolCall::UpdateEndpoint { .. } => "update_endpoint",
			ProtocolCall::BondExtra { .. } => "bond_extra",
			ProtocolCall::ClaimSeat => "claim_seat",
			ProtocolCall::ApplyForRound { .. } => "apply_for_round",
			ProtocolCall::SubmitUpdate { .. } => "submit_update",
			ProtocolCall::CommitVerdict { .. } => "commit_verdict",
			ProtocolCall::RevealVerdict { .. } => "reveal_verdict",
			ProtocolCall::ExposePlant { .. } => "expose_plant",
			ProtocolCall::PostAggregate { .. } => "post_aggregate",
			ProtocolCall::VoteAggregate { .. } => "vote_aggregate",
			ProtocolCall::RevealAggregate { .. } => "reveal_aggregate",
			ProtocolCall::Claim => "claim",
		}
	}
}

/// The chain as a worker or validator daemon reads and writes it. Reads are at the best block.
#[allow(async_fn_in_trait)]
pub trait ChainApi {
	/// The signing account.
	fn account(&self) -> AccountId32;
	/// The chain's target block time (its runtime's BABE slot), read when connecting: what a
	/// daemon's margins in blocks are worth in seconds.
	fn block_time(&self) -> Duration;
	/// Number of the best block.
	async fn best_number(&self) -> Result<BlockNumber>;
	/// Waits for the next best block, at most `timeout`; its number, or `None` when none
	/// arrived (a stalled or unreachable node: the caller goes on as if a block had come).
	async fn next_block(&self, timeout: Duration) -> Option<BlockNumber>;
	async fn job(&self, job: u64) -> Result<Option<JobInfo>>;
	async fn round_status(&self, job: u64) -> Result<Option<RoundInfo>>;
	/// What `who` must do now.
	async fn duties(&self, who: &AccountId32) -> Result<Vec<PendingDuty>>;
	/// Ids of the jobs that are running.
	async fn active_jobs(&self) -> Result<Vec<u64>>;
	/// `who`'s registration as a worker (or as a validator).
	async fn registration(&self, who: &AccountId32, as_worker: bool) -> Result<Option<Endpoint>>;
	/// Every registered worker and validator (whom to ask for a blob nobody in particular holds).
	async fn all_endpoints(&self) -> Result<Vec<Endpoint>>;
	/// The validator seats: who holds them, with what stake, and how many there are.
	async fn seats(&self) -> Result<Seats>;
	/// The update `worker` submitted in the job's current round.
	async fn update(&self, job: u64, worker: &AccountId32) -> Result<Option<Update>>;
	/// The round being verified and its accepted workers, if the job is being verified.
	async fn accepted_workers(&self, job: u64) -> Result<Option<(u32, Vec<AccountId32>)>>;
	/// The workers drawn for the job's next round while its current round is verified, in
	/// the order of the draw (which deals the shards); empty when none are drawn.
	async fn next_round_workers(&self, job: u64) -> Result<Vec<AccountId32>>;
	/// The round and stage of the job's verification, if one is in progress.
	async fn verification_stage(&self, job: u64) -> Result<Option<(u32, VerificationStage)>>;
	/// Whether `worker` exposed its update of `job` as planted.
	async fn plant_exposed(&self, job: u64, worker: &AccountId32) -> Result<bool>;
	/// What `who` is owed by the reward pool.
	async fn pending_reward(&self, who: &AccountId32) -> Result<Balance>;
	/// Signs `call` and hands it to the node's pool without waiting for a block.
	async fn send(&self, call: ProtocolCall) -> Result<Pending>;
	/// Signs `call`, submits it and waits until it is in a best block.
	async fn submit(&self, call: ProtocolCall) -> Result<()> {
		self.send(call).await?.await
	}
}
