//! Genesis presets: `development` (one validator, Alice) and `local_testnet` (Alice, Bob,
//! Charlie and Dave), both with a sudo key, short referendum periods and minute-long sessions
//! for tests; and `production`, with none of these: no sudo (token holders govern from the first
//! block), the runtime's own referendum periods and hour-long sessions in six-hour eras.
//!
//! The genesis validators are ordinary stakers: each bonds [`VALIDATOR_BOND`] from its stash and
//! registers its session keys in the genesis, and stays in the set only while the elections keep
//! choosing it.

use crate::{
	configs::{MAX_CANDIDATES, MAX_NOMINATORS},
	currency::AGR,
	AccountId, Balance, BalancesConfig, BlockNumber, GovernanceConfig, RuntimeGenesisConfig,
	SessionConfig, SessionKeys, SessionTimingConfig, StakingConfig, SudoConfig,
	BABE_GENESIS_EPOCH_CONFIG,
};
use alloc::{string::String, vec, vec::Vec};
use frame_support::build_struct_json_patch;
use pallet_governance::{tracks, TrackTiming};
use pallet_im_online::sr25519::AuthorityId as ImOnlineId;
use pallet_session_timing::SessionTiming;
use pallet_staking::StakerStatus;
use serde_json::Value;
use sp_consensus_babe::AuthorityId as BabeId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{self, PresetId};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};
use sp_runtime::Perbill;

/// What each endowed development account starts with: one million AGR.
pub const ENDOWMENT: crate::Balance = 1_000_000 * AGR;

/// What each genesis validator bonds from its stash: one tenth of a development endowment.
pub const VALIDATOR_BOND: Balance = 100_000 * AGR;

/// A genesis validator: its stash account (which bonds and is paid) and its session keys.
pub struct ValidatorKeys {
	pub stash: AccountId,
	pub babe: BabeId,
	pub grandpa: GrandpaId,
	pub im_online: ImOnlineId,
}

impl ValidatorKeys {
	/// The account and keys that a `--alice`, `--bob`, … node derives from its `//Name` dev
	/// seed: sr25519 for the account, BABE and im-online, ed25519 for GRANDPA.
	pub fn dev(name: DevValidator) -> Self {
		let (sr25519, ed25519) = match name {
			DevValidator::Alice => (Sr25519Keyring::Alice, Ed25519Keyring::Alice),
			DevValidator::Bob => (Sr25519Keyring::Bob, Ed25519Keyring::Bob),
			DevValidator::Charlie => (Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
			DevValidator::Dave => (Sr25519Keyring::Dave, Ed25519Keyring::Dave),
		};
		Self {
			stash: sr25519.to_account_id(),
			babe: sr25519.public().into(),
			grandpa: ed25519.public().into(),
			im_online: sr25519.public().into(),
		}
	}

	fn session_keys(&self) -> SessionKeys {
		SessionKeys {
			babe: self.babe.clone(),
			grandpa: self.grandpa.clone(),
			im_online: self.im_online.clone(),
		}
	}
}

/// The staking and session part of a genesis: each validator bonded and keyed, `seats`
/// validators elected per era, the set kept (no election applied) while fewer than
/// `minimum` could be elected.
fn validator_set_genesis(
	validators: &[ValidatorKeys],
	seats: u32,
	minimum: u32,
	min_validator_bond: Balance,
) -> (SessionConfig, StakingConfig) {
	let session = SessionConfig {
		keys: validators
			.iter()
			.map(|v| (v.stash.clone(), v.stash.clone(), v.session_keys()))
			.collect(),
		..Default::default()
	};
	let staking = StakingConfig {
		validator_count: seats,
		minimum_validator_count: minimum,
		stakers: validators
			.iter()
			.map(|v| (v.stash.clone(), v.stash.clone(), VALIDATOR_BOND, StakerStatus::Validator))
			.collect(),
		// A reporter of an offence gets a tenth of the slash; the rest goes to the treasury.
		slash_reward_fraction: Perbill::from_percent(10),
		min_validator_bond,
		min_nominator_bond: 100 * AGR,
		max_validator_count: Some(MAX_CANDIDATES),
		max_nominator_count: Some(MAX_NOMINATORS),
		..Default::default()
	};
	(session, staking)
}

/// Test chains: one-minute sessions, two-minute eras, unbonding after two eras, slashes
/// applied one era after the offence. A validator that joins is elected within a few minutes.
pub const TEST_SESSION_TIMING: SessionTiming<BlockNumber> = SessionTiming {
	session_length: 10,
	sessions_per_era: 2,
	bonding_duration: 2,
	slash_defer_duration: 1,
};

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
	let (session, staking) = validator_set_genesis(&validators, 8, 1, 1_000 * AGR);
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed_accounts
				.iter()
				.cloned()
				.map(|account| (account, ENDOWMENT))
				.collect::<Vec<_>>(),
		},
		babe: pallet_babe::GenesisConfig { epoch_config: BABE_GENESIS_EPOCH_CONFIG },
		session_timing: SessionTimingConfig { timing: Some(TEST_SESSION_TIMING) },
		session: session,
		staking: staking,
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
	// Sixteen seats; never fewer than four validators (GRANDPA's smallest fault-tolerant set);
	// a candidate bonds at least 10 000 AGR.
	let (session, staking) = validator_set_genesis(&validators, 16, 4, 10_000 * AGR);
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig { balances },
		babe: pallet_babe::GenesisConfig { epoch_config: BABE_GENESIS_EPOCH_CONFIG },
		session: session,
		staking: staking,
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
