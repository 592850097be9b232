//! Assembles the node: client, database, transaction pool, networking, BABE block authoring,
//! GRANDPA finality, RPC; or, with `--sealing`, on-demand block production for tests.

use std::{sync::Arc, time::Duration};

use agora_runtime::{self, apis::RuntimeApi, opaque::Block};
use futures::FutureExt;
use sc_client_api::{Backend, BlockBackend};
use sc_consensus_babe::{BabeWorkerHandle, SlotProportion};
use sc_consensus_manual_seal::consensus::{
	babe::BabeConsensusDataProvider, timestamp::SlotTimestampProvider,
};
use sc_service::{error::Error as ServiceError, Configuration, TaskManager};
use sc_telemetry::{Telemetry, TelemetryWorker};
use sc_transaction_pool_api::OffchainTransactionPoolFactory;
use sp_inherents::CreateInherentDataProviders;

use crate::cli::Sealing;

/// Host functions the runtime may call.
pub type HostFunctions = sp_io::SubstrateHostFunctions;

/// The client: the runtime is always executed as WASM, so that every node runs the on-chain code.
pub type FullClient =
	sc_service::TFullClient<Block, RuntimeApi, sc_executor::WasmExecutor<HostFunctions>>;
type FullBackend = sc_service::TFullBackend<Block>;
type FullSelectChain = sc_consensus::LongestChain<FullBackend, Block>;

/// The inherents of a block: the BABE slot and the timestamp.
type BabeInherentDataProviders =
	(sp_consensus_babe::inherents::InherentDataProvider, sp_timestamp::InherentDataProvider);
type BabeCreateInherentDataProviders = Arc<
	dyn CreateInherentDataProviders<Block, (), InherentDataProviders = BabeInherentDataProviders>,
>;

type FullGrandpaBlockImport =
	sc_consensus_grandpa::GrandpaBlockImport<FullBackend, Block, FullClient, FullSelectChain>;
type FullBabeBlockImport = sc_consensus_babe::BabeBlockImport<
	Block,
	FullClient,
	FullGrandpaBlockImport,
	BabeCreateInherentDataProviders,
	FullSelectChain,
>;

/// GRANDPA needs at most one justification per this many blocks to prove finality to syncing
/// peers (about one every 10 minutes at 6-second blocks).
const GRANDPA_JUSTIFICATION_PERIOD: u32 = 100;

/// The parts of the node shared by every subcommand that opens the database.
pub type Service = sc_service::PartialComponents<
	FullClient,
	FullBackend,
	FullSelectChain,
	sc_consensus::DefaultImportQueue<Block>,
	sc_transaction_pool::TransactionPoolHandle<Block, FullClient>,
	ConsensusParts,
>;

/// Consensus state built with the client and used again when the node starts.
pub struct ConsensusParts {
	pub block_import: FullBabeBlockImport,
	pub grandpa_link: sc_consensus_grandpa::LinkHalf<Block, FullClient, FullSelectChain>,
	pub babe_link: sc_consensus_babe::BabeLink<Block>,
	pub babe_worker_handle: BabeWorkerHandle<Block>,
	pub telemetry: Option<Telemetry>,
}

/// The BABE slot and timestamp inherents of a block authored now.
fn babe_inherent_data_providers(
	slot_duration: sp_consensus_babe::SlotDuration,
) -> BabeCreateInherentDataProviders {
	Arc::new(move |_parent, ()| async move {
		let timestamp = sp_timestamp::InherentDataProvider::from_system_time();
		let slot =
			sp_consensus_babe::inherents::InherentDataProvider::from_timestamp_and_slot_duration(
				*timestamp,
				slot_duration,
			);
		Ok((slot, timestamp))
	})
}

/// How far ahead of the wall clock an imported block's timestamp may be under `--sealing`: each
/// sealed block moves time forward by one slot however fast blocks are sealed, so a test that
/// seals a thousand blocks in a minute runs its chain about 100 minutes ahead. Importing checks
/// the timestamp against the clock plus this allowance (plus the runtime's 30 s drift).
const SEALING_CLOCK_ALLOWANCE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The import side's inherent data under `--sealing`: the clock moved ahead by
/// [`SEALING_CLOCK_ALLOWANCE`].
fn sealing_inherent_data_providers(
	slot_duration: sp_consensus_babe::SlotDuration,
) -> BabeCreateInherentDataProviders {
	Arc::new(move |_parent, ()| async move {
		let ahead = sp_timestamp::Timestamp::current() + SEALING_CLOCK_ALLOWANCE.as_millis() as u64;
		let timestamp = sp_timestamp::InherentDataProvider::new(ahead);
		let slot =
			sp_consensus_babe::inherents::InherentDataProvider::from_timestamp_and_slot_duration(
				*timestamp,
				slot_duration,
			);
		Ok((slot, timestamp))
	})
}

pub fn new_partial(config: &Configuration) -> Result<Service, ServiceError> {
	new_partial_for(config, None)
}

/// [`new_partial`], with the block import's inherent checks suited to `sealing` (if any).
fn new_partial_for(
	config: &Configuration,
	sealing: Option<Sealing>,
) -> Result<Service, ServiceError> {
	let telemetry = config
		.telemetry_endpoints
		.clone()
		.filter(|x| !x.is_empty())
		.map(|endpoints| -> Result<_, sc_telemetry::Error> {
			let worker = TelemetryWorker::new(16)?;
			let telemetry = worker.handle().new_telemetry(endpoints);
			Ok((worker, telemetry))
		})
		.transpose()?;

	let executor = sc_service::new_wasm_executor::<HostFunctions>(&config.executor);
	let (client, backend, keystore_container, task_manager) =
		sc_service::new_full_parts::<Block, RuntimeApi, _>(
			config,
			telemetry.as_ref().map(|(_, telemetry)| telemetry.handle()),
			executor,
			Default::default(),
		)?;
	let client = Arc::new(client);

	let telemetry = telemetry.map(|(worker, telemetry)| {
		task_manager.spawn_handle().spawn("telemetry", None, worker.run());
		telemetry
	});

	let select_chain = sc_consensus::LongestChain::new(backend.clone());

	let transaction_pool = Arc::from(
		sc_transaction_pool::Builder::new(
			task_manager.spawn_essential_handle(),
			client.clone(),
			config.role.is_authority().into(),
		)
		.with_options(config.transaction_pool.clone())
		.with_prometheus(config.prometheus_registry())
		.build(),
	);

	let (grandpa_block_import, grandpa_link) = sc_consensus_grandpa::block_import(
		client.clone(),
		GRANDPA_JUSTIFICATION_PERIOD,
		&client,
		select_chain.clone(),
		telemetry.as_ref().map(|x| x.handle()),
	)?;
	let justification_import = grandpa_block_import.clone();

	let babe_config = sc_consensus_babe::configuration(&*client)?;
	let slot_duration = babe_config.slot_duration();
	let (block_import, babe_link) = sc_consensus_babe::block_import(
		babe_config,
		grandpa_block_import,
		client.clone(),
		match sealing {
			None => babe_inherent_data_providers(slot_duration),
			Some(_) => sealing_inherent_data_providers(slot_duration),
		},
		select_chain.clone(),
		OffchainTransactionPoolFactory::new(transaction_pool.clone()),
	)?;

	let (import_queue, babe_worker_handle) =
		sc_consensus_babe::import_queue(sc_consensus_babe::ImportQueueParams {
			link: babe_link.clone(),
			block_import: block_import.clone(),
			justification_import: Some(Box::new(justification_import)),
			client: client.clone(),
			slot_duration,
			spawner: &task_manager.spawn_essential_handle(),
			registry: config.prometheus_registry(),
			telemetry: telemetry.as_ref().map(|x| x.handle()),
		})?;

	Ok(sc_service::PartialComponents {
		client,
		backend,
		task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other: ConsensusParts {
			block_import,
			grandpa_link,
			babe_link,
			babe_worker_handle,
			telemetry,
		},
	})
}

/// Builds and starts a full node.
pub fn new_full<
	N: sc_network::NetworkBackend<Block, <Block as sp_runtime::traits::Block>::Hash>,
>(
	mut config: Configuration,
	sealing: Option<Sealing>,
) -> Result<TaskManager, ServiceError> {
	let sc_service::PartialComponents {
		client,
		backend,
		mut task_manager,
		import_queue,
		keystore_container,
		select_chain,
		transaction_pool,
		other:
			ConsensusParts { block_import, grandpa_link, babe_link, babe_worker_handle, mut telemetry },
	} = new_partial_for(&config, sealing)?;

	if sealing.is_some() {
		// A sealing node is a single-node test chain: it neither needs nor accepts peers.
		config.network.default_peers_set.in_peers = 0;
		config.network.default_peers_set.out_peers = 0;
	}

	let mut net_config = sc_network::config::FullNetworkConfiguration::<
		Block,
		<Block as sp_runtime::traits::Block>::Hash,
		N,
	>::new(&config.network, config.prometheus_registry().cloned());
	let metrics = N::register_notification_metrics(config.prometheus_registry());
	let peer_store_handle = net_config.peer_store_handle();

	let grandpa_protocol_name = sc_consensus_grandpa::protocol_standard_name(
		&client
			.block_hash(0)?
			.ok_or(ServiceError::Other("the database has no genesis block".into()))?,
		&config.chain_spec,
	);
	let (grandpa_protocol_config, grandpa_notification_service) =
		sc_consensus_grandpa::grandpa_peers_set_config::<_, N>(
			grandpa_protocol_name.clone(),
			metrics.clone(),
			peer_store_handle,
		);
	net_config.add_notification_protocol(grandpa_protocol_config);

	let warp_sync = Arc::new(sc_consensus_grandpa::warp_proof::NetworkProvider::new(
		backend.clone(),
		grandpa_link.shared_authority_set().clone(),
		Vec::default(),
	));

	let (network, system_rpc_tx, tx_handler_controller, sync_service, _bitswap) =
		sc_service::build_network(sc_service::BuildNetworkParams {
			config: &config,
			net_config,
			client: client.clone(),
			transaction_pool: transaction_pool.clone(),
			spawn_handle: task_manager.spawn_handle(),
			spawn_essential_handle: task_manager.spawn_essential_handle(),
			import_queue,
			block_announce_validator_builder: None,
			warp_sync_config: Some(sc_service::WarpSyncConfig::WithProvider(warp_sync)),
			block_relay: None,
			metrics,
			gap_sync_body_policy: None,
		})?;

	if config.offchain_worker.enabled {
		let offchain_workers =
			sc_offchain::OffchainWorkers::new(sc_offchain::OffchainWorkerOptions {
				runtime_api_provider: client.clone(),
				is_validator: config.role.is_authority(),
				keystore: Some(keystore_container.keystore()),
				offchain_db: backend.offchain_storage(),
				transaction_pool: Some(OffchainTransactionPoolFactory::new(
					transaction_pool.clone(),
				)),
				network_provider: Arc::new(network.clone()),
				enable_http_requests: true,
				custom_extensions: |_| vec![],
			})?;
		task_manager.spawn_handle().spawn(
			"offchain-workers-runner",
			"offchain-worker",
			offchain_workers.run(client.clone(), task_manager.spawn_handle()).boxed(),
		);
	}

	let role = config.role;
	let force_authoring = config.force_authoring;
	let backoff_authoring_blocks: Option<()> = None;
	let name = config.network.node_name.clone();
	let enable_grandpa = !config.disable_grandpa && sealing.is_none();
	let prometheus_registry = config.prometheus_registry().cloned();

	let proposer = sc_basic_authorship::ProposerFactory::new(
		task_manager.spawn_handle(),
		client.clone(),
		transaction_pool.clone(),
		prometheus_registry.as_ref(),
		telemetry.as_ref().map(|x| x.handle()),
	);

	// The RPC depends on how blocks are authored: BABE and GRANDPA introspection, or the
	// sealing commands.
	let sealing_channel = sealing.map(|_| futures::channel::mpsc::channel(1024));
	let shared_voter_state = sc_consensus_grandpa::SharedVoterState::empty();
	let consensus_rpc: Box<dyn Fn() -> crate::rpc::ConsensusDeps<FullBackend> + Send> =
		match &sealing_channel {
			Some((command_sink, _)) => {
				let command_sink = command_sink.clone();
				Box::new(move || crate::rpc::ConsensusDeps::Sealing {
					command_sink: command_sink.clone(),
				})
			},
			None => {
				let shared_voter_state = shared_voter_state.clone();
				let shared_authority_set = grandpa_link.shared_authority_set().clone();
				let justification_stream = grandpa_link.justification_stream();
				let finality_provider =
					sc_consensus_grandpa::FinalityProofProvider::new_for_service(
						backend.clone(),
						Some(shared_authority_set.clone()),
					);
				let keystore = keystore_container.keystore();
				let babe_worker_handle = babe_worker_handle.clone();
				let subscription_executor =
					Arc::new(task_manager.spawn_handle()) as sc_rpc::SubscriptionTaskExecutor;
				Box::new(move || crate::rpc::ConsensusDeps::BabeGrandpa {
					babe: crate::rpc::BabeDeps {
						babe_worker_handle: babe_worker_handle.clone(),
						keystore: keystore.clone(),
					},
					grandpa: crate::rpc::GrandpaDeps {
						shared_voter_state: shared_voter_state.clone(),
						shared_authority_set: shared_authority_set.clone(),
						justification_stream: justification_stream.clone(),
						subscription_executor: subscription_executor.clone(),
						finality_provider: finality_provider.clone(),
					},
				})
			},
		};

	let rpc_builder = {
		let client = client.clone();
		let pool = transaction_pool.clone();
		let select_chain = select_chain.clone();
		Box::new(move |_subscription_executor| {
			let deps = crate::rpc::FullDeps {
				client: client.clone(),
				pool: pool.clone(),
				select_chain: select_chain.clone(),
				consensus: consensus_rpc(),
			};
			crate::rpc::create_full(deps).map_err(Into::into)
		})
	};

	// Also puts the `--alice`/`--dev` session keys into the keystore: it must run before BABE
	// and GRANDPA look for their keys.
	sc_service::spawn_tasks(sc_service::SpawnTasksParams {
		network: network.clone(),
		client: client.clone(),
		keystore: keystore_container.keystore(),
		task_manager: &mut task_manager,
		transaction_pool: transaction_pool.clone(),
		rpc_builder,
		backend,
		system_rpc_tx,
		tx_handler_controller,
		sync_service: sync_service.clone(),
		config,
		telemetry: telemetry.as_mut(),
		tracing_execute_block: None,
	})?;

	if let (Some(mode), Some((_, commands_stream))) = (sealing, sealing_channel) {
		let babe_consensus_data_provider = BabeConsensusDataProvider::new(
			client.clone(),
			keystore_container.keystore(),
			babe_link.epoch_changes().clone(),
			babe_link.config().authorities.clone(),
		)
		.map_err(|e| ServiceError::Other(format!("manual sealing: {e}")))?;
		let slot_client = client.clone();
		let create_inherent_data_providers = move |_parent, ()| {
			let slot_client = slot_client.clone();
			async move {
				// Each sealed block moves time forward by exactly one slot, so that BABE's slot
				// numbers keep increasing however fast blocks are sealed.
				let timestamp = SlotTimestampProvider::new_babe(slot_client)?;
				let slot =
					sp_consensus_babe::inherents::InherentDataProvider::new(timestamp.slot());
				Ok((slot, timestamp))
			}
		};
		let authorship = match mode {
			Sealing::Manual => sc_consensus_manual_seal::run_manual_seal(
				sc_consensus_manual_seal::ManualSealParams {
					block_import,
					env: proposer,
					client,
					pool: transaction_pool,
					commands_stream,
					select_chain,
					consensus_data_provider: Some(Box::new(babe_consensus_data_provider)),
					create_inherent_data_providers,
				},
			)
			.boxed(),
		};
		// The BABE worker (spawned by the import queue) stops, and takes the node down as an
		// essential task, once every handle to it is dropped: sealing keeps one for its lifetime.
		let authorship = async move {
			let _babe_worker = babe_worker_handle;
			authorship.await
		};
		task_manager.spawn_essential_handle().spawn_blocking(
			"manual-seal",
			Some("block-authoring"),
			authorship,
		);
		return Ok(task_manager);
	}

	if role.is_authority() {
		let slot_duration = babe_link.config().slot_duration();
		let babe = sc_consensus_babe::start_babe(sc_consensus_babe::BabeParams {
			keystore: keystore_container.keystore(),
			client: client.clone(),
			select_chain,
			env: proposer,
			block_import,
			sync_oracle: sync_service.clone(),
			justification_sync_link: sync_service.clone(),
			create_inherent_data_providers: babe_inherent_data_providers(slot_duration),
			force_authoring,
			backoff_authoring_blocks,
			babe_link,
			block_proposal_slot_portion: SlotProportion::new(0.5),
			max_block_proposal_slot_portion: None,
			telemetry: telemetry.as_ref().map(|x| x.handle()),
		})?;
		// A validator that cannot author must bring the node down, not limp on.
		task_manager.spawn_essential_handle().spawn_blocking(
			"babe-proposer",
			Some("block-authoring"),
			babe,
		);
	}

	if enable_grandpa {
		// Non-authorities observe GRANDPA without voting.
		let keystore = role.is_authority().then(|| keystore_container.keystore());
		let grandpa_config = sc_consensus_grandpa::Config {
			gossip_duration: Duration::from_millis(333),
			justification_generation_period: GRANDPA_JUSTIFICATION_PERIOD,
			name: Some(name),
			observer_enabled: false,
			keystore,
			local_role: role,
			telemetry: telemetry.as_ref().map(|x| x.handle()),
			protocol_name: grandpa_protocol_name,
		};
		let grandpa_voter =
			sc_consensus_grandpa::run_grandpa_voter(sc_consensus_grandpa::GrandpaParams {
				config: grandpa_config,
				link: grandpa_link,
				network,
				sync: Arc::new(sync_service),
				notification_service: grandpa_notification_service,
				voting_rule: sc_consensus_grandpa::VotingRulesBuilder::default().build(),
				prometheus_registry,
				shared_voter_state,
				telemetry: telemetry.as_ref().map(|x| x.handle()),
				offchain_tx_pool_factory: OffchainTransactionPoolFactory::new(transaction_pool),
			})?;
		// Finality stalls without the voter: it is essential too.
		task_manager.spawn_essential_handle().spawn_blocking("grandpa-voter", None, grandpa_voter);
	}

	Ok(task_manager)
}
