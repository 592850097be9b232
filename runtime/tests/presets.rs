//! The genesis presets and what no preset may do: a production chain has no sudo key and the
//! runtime's own referendum periods, and nothing is ever burned (dust goes to the treasury).

mod common;

use agora_runtime::{
	configs::TreasuryAccount, currency::EXISTENTIAL_DEPOSIT, genesis_config_presets, Balances,
	Runtime,
};
use frame_support::traits::{
	fungible::{Inspect, Mutate},
	tokens::Preservation,
};
use sp_keyring::Sr25519Keyring as Keyring;

#[test]
fn the_production_preset_has_no_sudo_and_the_runtimes_referendum_periods() {
	common::genesis(genesis_config_presets::PRODUCTION_RUNTIME_PRESET).execute_with(|| {
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), None, "no sudo key");
		assert_eq!(
			pallet_governance::TrackTimings::<Runtime>::iter().count(),
			0,
			"every track keeps the runtime's default periods"
		);
		assert_eq!(pallet_babe::Authorities::<Runtime>::get().len(), 4);
		assert_eq!(pallet_grandpa::Authorities::<Runtime>::get().len(), 4);
	});
	// The development presets keep sudo and short periods, for tests.
	common::genesis(sp_genesis_builder::DEV_RUNTIME_PRESET).execute_with(|| {
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(Keyring::Alice.to_account_id()));
		assert!(pallet_governance::TrackTimings::<Runtime>::iter().count() > 0);
	});
}

#[test]
fn dust_goes_to_the_treasury_not_up_in_smoke() {
	common::genesis(sp_genesis_builder::DEV_RUNTIME_PRESET).execute_with(|| {
		let issuance = Balances::total_issuance();
		let treasury: agora_runtime::AccountId = TreasuryAccount::get();
		let before = Balances::balance(&treasury);
		let (from, to) = (Keyring::Ferdie.to_account_id(), Keyring::Eve.to_account_id());
		// Leave Ferdie less than the existential deposit: his account is reaped.
		let dust = EXISTENTIAL_DEPOSIT / 2;
		let amount = Balances::balance(&from) - dust;
		Balances::transfer(&from, &to, amount, Preservation::Expendable).unwrap();
		assert_eq!(Balances::balance(&from), 0);
		assert_eq!(Balances::balance(&treasury), before + dust);
		assert_eq!(Balances::total_issuance(), issuance);
	});
}
