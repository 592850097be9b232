//! Genesis presets: `development` (one validator, Alice) and `local_testnet` (Alice, Bob,
//! Charlie and Dave), both with a sudo key and short referendum periods for tests; and
//! `production`, with neither: no sudo (token holders govern from the first block) and the
//! runtime's own referendum periods.

use crate::{
	currency::AGR, AccountId, BalancesConfig, BlockNumber, GovernanceConfig, RuntimeGenesisConfig,
	SudoConfig, BABE_GENESIS_EPOCH_CONFIG,
};
use alloc::{string::String, vec, vec::Vec};
use frame_support::build_struct_json_patch;
use pallet_governance::{tracks, TrackTiming};
use serde_json::Value;
use sp_consensus_babe::AuthorityId as BabeId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{self, PresetId};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};

/// What each endowed development account starts with: one million AGR.
pub const ENDOWMENT: crate::Balance = 1_000_000 * AGR;

/// A validator's keys as its genesis entry needs them.
pub struct ValidatorKeys {
	pub babe: BabeId,
	pub grandpa: GrandpaId,
}

impl ValidatorKeys {
	/// The keys that a `--alice`, `--bob`, … node derives from its `//Name` dev seed: sr25519
	/// for BABE, ed25519 for GRANDPA.
	pub fn dev(name: DevValidator) -> Self {
		let (babe, grandpa) = match name {
			DevValidator::Alice => (Sr25519Keyring::Alice, Ed25519Keyring::Alice),
			DevValidator::Bob => (Sr25519Keyring::Bob, Ed25519Keyring::Bob),
			DevValidator::Charlie => (Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
			DevValidator::Dave => (Sr25519Keyring::Dave, Ed25519Keyring::Dave),
		};
		Self { babe: babe.public().into(), grandpa: grandpa.public().into() }
	}
}

/// The well-known development validators.
#[derive(Clone, Copy)]
pub enum DevValidator {
	Alice,
	Bob,
	Charlie,
	Dave,
}

/// Referendum periods short enough for a whole referendum to fit in a test: voting can decide
/// after 1 block, a referendum fails after 10 blocks (one minute), passes after 1 block of
/// confirmation and is enacted 1 block later. Production chains keep the runtime's defaults.
pub const TEST_TRACK_TIMING: TrackTiming<BlockNumber> = TrackTiming {
	prepare_period: 1,
	decision_period: 10,
	confirm_period: 1,
	min_enactment_period: 1,
};

/// The name of the production preset.
pub const PRODUCTION_RUNTIME_PRESET: &str = "production";

/// The genesis state as a JSON patch over the runtime's defaults.
pub fn agora_genesis(
	validators: Vec<ValidatorKeys>,
	endowed_accounts: Vec<AccountId>,
	root: AccountId,
	track_timing: TrackTiming<BlockNumber>,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed_accounts
				.iter()
				.cloned()
				.map(|account| (account, ENDOWMENT))
				.collect::<Vec<_>>(),
		},
		babe: pallet_babe::GenesisConfig {
			authorities: validators.iter().map(|keys| (keys.babe.clone(), 1)).collect::<Vec<_>>(),
			epoch_config: BABE_GENESIS_EPOCH_CONFIG,
		},
		grandpa: pallet_grandpa::GenesisConfig {
			authorities: validators
				.iter()
				.map(|keys| (keys.grandpa.clone(), 1))
				.collect::<Vec<_>>(),
		},
		sudo: SudoConfig { key: Some(root) },
		governance: GovernanceConfig {
			track_timings: tracks::ALL
				.iter()
				.map(|track| (*track, track_timing))
				.collect::<Vec<_>>(),
		},
	})
}

/// A production chain: no sudo key, so only referenda change the chain, on the runtime's own
/// track periods (days, not blocks). `validators` author the first blocks; `balances` are the
/// genesis allocation (token holders who can vote and stake from the first block).
pub fn production_genesis(
	validators: Vec<ValidatorKeys>,
	balances: Vec<(AccountId, crate::Balance)>,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig { balances },
		babe: pallet_babe::GenesisConfig {
			authorities: validators.iter().map(|keys| (keys.babe.clone(), 1)).collect::<Vec<_>>(),
			epoch_config: BABE_GENESIS_EPOCH_CONFIG,
		},
		grandpa: pallet_grandpa::GenesisConfig {
			authorities: validators
				.iter()
				.map(|keys| (keys.grandpa.clone(), 1))
				.collect::<Vec<_>>(),
		},
	})
}

/// The production preset as a template for `agora-node build-spec --chain production`: the four
/// development validators and accounts stand in for the operators' own keys and allocation,
/// which the operators put into the generated chain spec before launch (the development keys
/// are public).
pub fn production_template_genesis() -> Value {
	production_genesis(
		[DevValidator::Alice, DevValidator::Bob, DevValidator::Charlie, DevValidator::Dave]
			.into_iter()
			.map(ValidatorKeys::dev)
			.collect(),
		[Sr25519Keyring::Alice, Sr25519Keyring::Bob, Sr25519Keyring::Charlie, Sr25519Keyring::Dave]
			.into_iter()
			.map(|k| (k.to_account_id(), ENDOWMENT))
			.collect(),
	)
}

/// A one-validator chain for development: Alice authors and finalizes every block.
pub fn development_config_genesis() -> Value {
	agora_genesis(
		vec![ValidatorKeys::dev(DevValidator::Alice)],
		Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect(),
		Sr25519Keyring::Alice.to_account_id(),
		TEST_TRACK_TIMING,
	)
}

/// A four-validator chain on one machine: Alice, Bob, Charlie and Dave.
pub fn local_testnet_genesis() -> Value {
	agora_genesis(
		[DevValidator::Alice, DevValidator::Bob, DevValidator::Charlie, DevValidator::Dave]
			.into_iter()
			.map(ValidatorKeys::dev)
			.collect(),
		Sr25519Keyring::well_known().map(|k| k.to_account_id()).collect(),
		Sr25519Keyring::Alice.to_account_id(),
		TEST_TRACK_TIMING,
	)
}

/// The JSON of a named preset, if this runtime has it.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_ref() {
		sp_genesis_builder::DEV_RUNTIME_PRESET => development_config_genesis(),
		sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => local_testnet_genesis(),
		PRODUCTION_RUNTIME_PRESET => production_template_genesis(),
		_ => return None,
	};
	serde_json::to_string(&patch).ok().map(String::into_bytes)
}

/// The names of the presets this runtime has.
pub fn preset_names() -> Vec<PresetId> {
	vec![
		PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET),
		PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
		PresetId::from(PRODUCTION_RUNTIME_PRESET),
	]
}
