//! The chains this node knows by name: `dev`, `local` and `production` (a template). Any other
//! name is a chain spec file.

use agora_runtime::{
	currency::{TOKEN_DECIMALS, TOKEN_SYMBOL},
	SS58_PREFIX, WASM_BINARY,
};
use sc_service::ChainType;
use serde_json::json;

/// A chain spec for this runtime: no extensions.
pub type ChainSpec = sc_service::GenericChainSpec;

/// What wallets and Polkadot.js show: the token and the address format.
fn chain_properties() -> sc_chain_spec::Properties {
	let properties = json!({
		"tokenSymbol": TOKEN_SYMBOL,
		"tokenDecimals": TOKEN_DECIMALS,
		"ss58Format": SS58_PREFIX,
	});
	match properties {
		serde_json::Value::Object(map) => map,
		_ => unreachable!("a json object literal is an object"),
	}
}

fn wasm_binary() -> Result<&'static [u8], String> {
	WASM_BINARY.ok_or_else(|| {
		"the runtime WASM was not built (SKIP_WASM_BUILD was set): rebuild without it".to_string()
	})
}

/// `--dev`: one validator (Alice), short-lived, everything endowed for testing.
pub fn development_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm_binary()?, None)
		.with_name("Agora Development")
		.with_id("agora_dev")
		.with_protocol_id("agora-dev")
		.with_chain_type(ChainType::Development)
		.with_genesis_config_preset_name(sp_genesis_builder::DEV_RUNTIME_PRESET)
		.with_properties(chain_properties())
		.build())
}

/// `--chain local`: four validators (Alice, Bob, Charlie, Dave) on one machine.
pub fn local_testnet_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm_binary()?, None)
		.with_name("Agora Local Testnet")
		.with_id("agora_local")
		.with_protocol_id("agora-local")
		.with_chain_type(ChainType::Local)
		.with_genesis_config_preset_name(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET)
		.with_properties(chain_properties())
		.build())
}

/// `--chain production`: the production preset (no sudo, the runtime's referendum periods) as a
/// template: build it with `build-spec`, replace the placeholder validators and allocation with
/// the operators' own, and launch from the edited file.
pub fn production_chain_spec() -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm_binary()?, None)
		.with_name("Agora")
		.with_id("agora")
		.with_protocol_id("agora")
		.with_chain_type(ChainType::Live)
		.with_genesis_config_preset_name(
			agora_runtime::genesis_config_presets::PRODUCTION_RUNTIME_PRESET,
		)
		.with_properties(chain_properties())
		.build())
}

/// Resolves `--chain`: a built-in name or the path of a chain spec JSON file.
pub fn load_spec(id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
	Ok(match id {
		"dev" | "" => Box::new(development_chain_spec()?),
		"local" => Box::new(local_testnet_chain_spec()?),
		"production" => Box::new(production_chain_spec()?),
		path => {
			let file = std::path::Path::new(path);
			if !file.is_file() {
				return Err(format!(
					"unknown chain '{path}': use `dev`, `local` or the path of a chain spec JSON file"
				));
			}
			Box::new(
				ChainSpec::from_json_file(file.to_path_buf())
					.map_err(|e| format!("invalid chain spec '{path}': {e}"))?,
			)
		},
	})
}
