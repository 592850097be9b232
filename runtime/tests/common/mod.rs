//! What the runtime's integration tests share: a genesis state built from a runtime preset.

use agora_runtime::{genesis_config_presets, RuntimeGenesisConfig};
use sp_runtime::BuildStorage;

/// The runtime's preset `name` (a JSON patch) applied over the default genesis config, as the
/// node's chain-spec builder does.
pub fn genesis(name: &str) -> sp_io::TestExternalities {
	let preset = genesis_config_presets::get_preset(&name.into())
		.unwrap_or_else(|| panic!("the runtime has no {name} preset"));
	let patch: serde_json::Value = serde_json::from_slice(&preset).expect("preset is JSON");
	let mut config =
		serde_json::to_value(RuntimeGenesisConfig::default()).expect("default config is JSON");
	merge(&mut config, patch);
	let config: RuntimeGenesisConfig =
		serde_json::from_value(config).expect("patched config is a genesis config");
	sp_io::TestExternalities::new(config.build_storage().expect("genesis builds"))
}

/// Apply a JSON patch: objects merge key by key, anything else replaces.
fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
	match (base, patch) {
		(serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
			for (key, value) in patch {
				merge(base.entry(key).or_insert(serde_json::Value::Null), value);
			}
		},
		(base, patch) => *base = patch,
	}
}
