//! Storage migrations of pallet-contributions.

/// Version 0 → 1: the validator set (`ActiveValidators`, accounts only) becomes
/// `ValidatorSeats`, each seat with its holder's stake, so that a full set can be outbid by a
/// higher stake without reading every validator's registration. Every validator that was in
/// the old set keeps its seat, with its recorded stake, unless a slash left it below the
/// minimum stake (version 0 kept those in the set, without duties; version 1 frees their seats).
pub mod v1 {
	use crate::{pallet::*, BalanceOf};
	use frame_support::{
		migrations::VersionedMigration, pallet_prelude::*, storage_alias,
		traits::UncheckedOnRuntimeUpgrade,
	};

	/// The version 0 validator set.
	#[storage_alias]
	pub type ActiveValidators<T: Config> = StorageValue<
		Pallet<T>,
		BoundedVec<<T as frame_system::Config>::AccountId, <T as Config>::MaxValidators>,
		ValueQuery,
	>;

	/// The unversioned step; use [`MigrateV0ToV1`].
	pub struct UncheckedMigrateV0ToV1<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for UncheckedMigrateV0ToV1<T> {
		fn on_runtime_upgrade() -> Weight {
			let old = ActiveValidators::<T>::take();
			let min = ProtocolParams::<T>::get().min_validator_stake;
			let mut reads = 2u64;
			let mut seats = BoundedVec::<(T::AccountId, BalanceOf<T>), T::MaxValidators>::new();
			for who in old {
				reads = reads.saturating_add(1);
				// Version 0 kept exactly the active validators in the set; one that is not
				// (which `try_state` would have reported) is left out rather than seated.
				let Some(p) = Validators::<T>::get(&who) else { continue };
				if p.status != crate::ParticipantStatus::Active || p.stake < min {
					continue;
				}
				if seats.try_push((who, p.stake)).is_err() {
					frame_support::defensive!("the old set had the same bound");
				}
			}
			ValidatorSeats::<T>::put(seats);
			T::DbWeight::get().reads_writes(reads, 2)
		}

		#[cfg(feature = "try-runtime")]
		fn pre_upgrade() -> Result<alloc::vec::Vec<u8>, sp_runtime::TryRuntimeError> {
			Ok((ActiveValidators::<T>::get().len() as u32).encode())
		}

		#[cfg(feature = "try-runtime")]
		fn post_upgrade(state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
			let before = u32::decode(&mut &state[..]).map_err(|_| "pre_upgrade state")?;
			ensure!(ValidatorSeats::<T>::get().len() as u32 <= before, "a seat was added");
			ensure!(!ActiveValidators::<T>::exists(), "the old set is still stored");
			Pallet::<T>::do_try_state()
		}
	}

	/// Migrates pallet-contributions from storage version 0 to 1 (once: the version guards it).
	pub type MigrateV0ToV1<T> = VersionedMigration<
		0,
		1,
		UncheckedMigrateV0ToV1<T>,
		Pallet<T>,
		<T as frame_system::Config>::DbWeight,
	>;
}
