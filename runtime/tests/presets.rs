//! The genesis presets and what no preset may do: a production chain has no sudo key, the
//! runtime's own referendum periods and realistic eras, and nothing is ever burned (dust goes
//! to the treasury).

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
fn the_production_preset_has_no_sudo_the_runtimes_referendum_periods_and_realistic_eras() {
	common::genesis(genesis_config_presets::PRODUCTION_RUNTIME_PRESET).execute_with(|| {
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), None, "no sudo key");
		assert_eq!(
			pallet_governance::TrackTimings::<Runtime>::iter().count(),
			0,
			"every track keeps the runtime's default periods"
		);
		assert_eq!(pallet_babe::Authorities::<Runtime>::get().len(), 4);
		assert_eq!(pallet_grandpa::Authorities::<Runtime>::get().len(), 4);
		// Realistic eras: hour-long sessions, six per era, a week of unbonding.
		assert_eq!(
			pallet_session_timing::Timing::<Runtime>::get(),
			agora_runtime::configs::DefaultSessionTiming::get()
		);
		assert_eq!(pallet_session_timing::Timing::<Runtime>::get().session_length, 600);
		// The genesis validators are stakers, elected like anyone, and never fewer than four.
		assert_eq!(pallet_staking::Validators::<Runtime>::count(), 4);
		assert_eq!(pallet_staking::MinimumValidatorCount::<Runtime>::get(), 4);
		assert!(pallet_staking::Invulnerables::<Runtime>::get().is_empty());
	});
	// The development presets keep sudo, short periods and minute-long sessions, for tests.
	for preset in
		[sp_genesis_builder::DEV_RUNTIME_PRESET, sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET]
	{
		common::genesis(preset).execute_with(|| {
			assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(Keyring::Alice.to_account_id()));
			assert!(pallet_governance::TrackTimings::<Runtime>::iter().count() > 0);
			assert_eq!(
				pallet_session_timing::Timing::<Runtime>::get(),
				genesis_config_presets::TEST_SESSION_TIMING
			);
		});
	}
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
