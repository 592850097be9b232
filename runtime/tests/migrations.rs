//! The runtime's `Migrations`, run as a runtime upgrade runs them (`Executive`): on a chain
//! whose storage is current they change nothing, and on a chain whose contributions storage is
//! at version 0 they bring it to version 1 with every validator's seat and stake.

mod common;

use agora_primitives::{Capability, DeviceKind};
use agora_runtime::{
	currency::AGR, AccountId, Contributions, Executive, Governance, Rewards, Runtime, RuntimeCall,
	RuntimeOrigin, Tasks, Validation,
};
use frame_support::{
	storage::unhashed,
	traits::{GetStorageVersion, StorageVersion},
	BoundedVec, StorageHasher, Twox128,
};
use sp_keyring::Sr25519Keyring as Keyring;
use sp_runtime::traits::Dispatchable;

fn register_validator(who: Keyring, stake: u128) {
	let call = RuntimeCall::Contributions(pallet_contributions::Call::register_validator {
		stake,
		peer_id: b"12D3KooWpeer".to_vec().try_into().unwrap(),
		multiaddr: b"/ip4/10.0.0.1/tcp/30333".to_vec().try_into().unwrap(),
		capability: Capability { device: DeviceKind::Cpu, memory_mib: 1_024, throughput: 1 },
	});
	call.dispatch(RuntimeOrigin::signed(who.to_account_id())).expect("registers");
}

/// Every protocol pallet's on-chain storage version equals its code's.
fn assert_versions_current() {
	assert_eq!(Contributions::on_chain_storage_version(), Contributions::in_code_storage_version());
	assert_eq!(Tasks::on_chain_storage_version(), Tasks::in_code_storage_version());
	assert_eq!(Validation::on_chain_storage_version(), Validation::in_code_storage_version());
	assert_eq!(Rewards::on_chain_storage_version(), Rewards::in_code_storage_version());
	assert_eq!(Governance::on_chain_storage_version(), Governance::in_code_storage_version());
	assert_eq!(
		agora_runtime::SessionTiming::on_chain_storage_version(),
		agora_runtime::SessionTiming::in_code_storage_version()
	);
}

#[test]
fn migrations_change_nothing_on_a_current_chain() {
	common::genesis(sp_genesis_builder::DEV_RUNTIME_PRESET).execute_with(|| {
		assert_versions_current();
		register_validator(Keyring::Eve, 2_000 * AGR);
		let seats = pallet_contributions::ValidatorSeats::<Runtime>::get();
		Executive::execute_on_runtime_upgrade();
		assert_versions_current();
		assert_eq!(pallet_contributions::ValidatorSeats::<Runtime>::get(), seats);
	});
}

#[test]
fn migrations_bring_version_0_validator_sets_to_seats_with_stakes() {
	common::genesis(sp_genesis_builder::DEV_RUNTIME_PRESET).execute_with(|| {
		register_validator(Keyring::Eve, 2_000 * AGR);
		register_validator(Keyring::Ferdie, 3_000 * AGR);
		// The layout of version 0: the set as a bare list of accounts.
		let accounts: Vec<AccountId> =
			[Keyring::Eve, Keyring::Ferdie].iter().map(|k| k.to_account_id()).collect();
		pallet_contributions::ValidatorSeats::<Runtime>::kill();
		let key = [Twox128::hash(b"Contributions"), Twox128::hash(b"ActiveValidators")].concat();
		let old: BoundedVec<AccountId, frame_support::traits::ConstU32<256>> =
			accounts.clone().try_into().unwrap();
		unhashed::put(&key, &old);
		StorageVersion::new(0).put::<Contributions>();

		Executive::execute_on_runtime_upgrade();

		assert_versions_current();
		let seats = pallet_contributions::ValidatorSeats::<Runtime>::get().into_inner();
		assert_eq!(
			seats,
			vec![(accounts[0].clone(), 2_000 * AGR), (accounts[1].clone(), 3_000 * AGR)]
		);
		assert!(unhashed::get_raw(&key).is_none(), "the version 0 set is gone");
	});
}

/// With `--features try-runtime`: the upgrade as `try-runtime on-runtime-upgrade` runs it, every
/// migration's pre- and post-upgrade checks and every pallet's `try_state` included, on a chain
/// with two validators seated.
#[cfg(feature = "try-runtime")]
#[test]
fn try_runtime_upgrade_checks_pass() {
	common::genesis(sp_genesis_builder::DEV_RUNTIME_PRESET).execute_with(|| {
		register_validator(Keyring::Eve, 2_000 * AGR);
		register_validator(Keyring::Ferdie, 3_000 * AGR);
		Executive::try_runtime_upgrade(frame_support::traits::UpgradeCheckSelect::All)
			.expect("the upgrade's checks pass");
		assert_versions_current();
	});
}
