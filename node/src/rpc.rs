//! The node's JSON-RPC methods beyond the defaults of `sc-service`: account nonces and fees,
//! training jobs and duties, BABE and GRANDPA introspection, and block sealing commands for
//! `--sealing manual`.

use std::sync::Arc;

use agora_runtime::{opaque::Block, AccountId, Balance, Nonce};
use jsonrpsee::RpcModule;
use sc_consensus_babe::BabeWorkerHandle;
use sc_consensus_grandpa::{
	FinalityProofProvider, GrandpaJustificationStream, SharedAuthoritySet, SharedVoterState,
};
use sc_consensus_manual_seal::{
	rpc::{ManualSeal, ManualSealApiServer},
	EngineCommand,
};
use sc_rpc::SubscriptionTaskExecutor;
use sc_transaction_pool_api::TransactionPool;
use sp_api::ProvideRuntimeApi;
use sp_block_builder::BlockBuilder;
use sp_blockchain::{Error as BlockChainError, HeaderBackend, HeaderMetadata};
use sp_consensus::SelectChain;
use sp_keystore::KeystorePtr;

/// What the BABE RPC (`babe_epochAuthorship`) needs.
pub struct BabeDeps {
	pub babe_worker_handle: BabeWorkerHandle<Block>,
	pub keystore: KeystorePtr,
}

/// What the GRANDPA RPC (`grandpa_roundState`, justifications) needs.
pub struct GrandpaDeps<B> {
	pub shared_voter_state: SharedVoterState,
	pub shared_authority_set: SharedAuthoritySet<agora_runtime::Hash, agora_runtime::BlockNumber>,
	pub justification_stream: GrandpaJustificationStream<Block>,
	pub subscription_executor: SubscriptionTaskExecutor,
	pub finality_provider: Arc<FinalityProofProvider<B, Block>>,
}

/// How the node authors blocks decides which consensus RPCs exist.
pub enum ConsensusDeps<B> {
	/// BABE + GRANDPA: their introspection RPCs.
	BabeGrandpa { babe: BabeDeps, grandpa: GrandpaDeps<B> },
	/// Manual sealing: `engine_createBlock` and `engine_finalizeBlock`.
	Sealing { command_sink: futures::channel::mpsc::Sender<EngineCommand<agora_runtime::Hash>> },
}

/// Full client dependencies.
pub struct FullDeps<C, P, SC, B> {
	pub client: Arc<C>,
	pub pool: Arc<P>,
	pub select_chain: SC,
	pub consensus: ConsensusDeps<B>,
}

/// Instantiate all full RPC extensions.
pub fn create_full<C, P, SC, B>(
	deps: FullDeps<C, P, SC, B>,
) -> Result<RpcModule<()>, Box<dyn std::error::Error + Send + Sync>>
where
	C: ProvideRuntimeApi<Block>
		+ HeaderBackend<Block>
		+ HeaderMetadata<Block, Error = BlockChainError>
		+ sc_client_api::AuxStore
		+ Send
		+ Sync
		+ 'static,
	C::Api: substrate_frame_rpc_system::AccountNonceApi<Block, AccountId, Nonce>,
	C::Api: pallet_transaction_payment_rpc::TransactionPaymentRuntimeApi<Block, Balance>,
	C::Api: sp_consensus_babe::BabeApi<Block>,
	C::Api: BlockBuilder<Block>,
	C::Api:
		pallet_tasks_runtime_api::TasksApi<Block, AccountId, Balance, agora_runtime::BlockNumber>,
	P: TransactionPool + 'static,
	SC: SelectChain<Block> + 'static,
	B: sc_client_api::Backend<Block> + Send + Sync + 'static,
	B::State: sc_client_api::StateBackend<sp_runtime::traits::HashingFor<Block>>,
{
	use pallet_tasks_rpc::{Tasks, TasksApiServer};
	use pallet_transaction_payment_rpc::{TransactionPayment, TransactionPaymentApiServer};
	use sc_consensus_babe_rpc::{Babe, BabeApiServer};
	use sc_consensus_grandpa_rpc::{Grandpa, GrandpaApiServer};
	use substrate_frame_rpc_system::{System, SystemApiServer};

	let mut module = RpcModule::new(());
	let FullDeps { client, pool, select_chain, consensus } = deps;

	module.merge(System::new(client.clone(), pool).into_rpc())?;
	module.merge(TransactionPayment::new(client.clone()).into_rpc())?;
	// Jobs, rounds and duties for workers and UIs: agora_job, agora_roundStatus,
	// agora_pendingDuties.
	module.merge(Tasks::new(client.clone()).into_rpc())?;

	match consensus {
		ConsensusDeps::BabeGrandpa { babe, grandpa } => {
			module.merge(
				Babe::new(client, babe.babe_worker_handle, babe.keystore, select_chain).into_rpc(),
			)?;
			module.merge(
				Grandpa::new(
					grandpa.subscription_executor,
					grandpa.shared_authority_set,
					grandpa.shared_voter_state,
					grandpa.justification_stream,
					grandpa.finality_provider,
				)
				.into_rpc(),
			)?;
		},
		ConsensusDeps::Sealing { command_sink } => {
			module.merge(ManualSeal::new(command_sink).into_rpc())?;
		},
	}

	Ok(module)
}
