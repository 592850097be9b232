//! # Session timing pallet
//!
//! How long this chain's sessions (BABE epochs), staking eras, unbonding and slash deferral
//! last. These are constants in most runtimes; here they are chosen at genesis, so that one
//! runtime serves test chains (minute-long sessions: a new validator is elected within a few
//! minutes) and production chains (hour-long sessions, six-hour eras, a week of unbonding).
//!
//! The timing is fixed for the life of the chain: BABE cannot change its epoch length on a
//! running chain, and stake already unbonding was promised its release era. There is no call to
//! change it. The runtime hands the values to BABE (`EpochDuration`), staking (`SessionsPerEra`,
//! `BondingDuration`, `SlashDeferDuration`) and the equivocation reports (`ReportLongevity`)
//! through the [`Get`] adapters of this crate.
//!
//! A chain whose genesis says nothing runs on `Config::DefaultTiming`, the production values;
//! metadata built without storage (the runtime's metadata hash) shows them too, so offline
//! signers of a production chain see the constants the chain uses.

#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod types;

pub use pallet::*;
pub use types::{SessionTiming, TimingError};

use frame_support::traits::Get;
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::UniqueSaturatedInto;
use sp_staking::{EraIndex, SessionIndex};

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;

	/// The in-code storage version: 0 is its layout since genesis. A change of layout raises it
	/// and comes with a migration in the runtime's `Migrations`.
	pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config {
		/// The timing of a chain whose genesis does not choose one: production values.
		type DefaultTiming: Get<SessionTiming<BlockNumberFor<Self>>>;

		/// The shortest session a genesis may choose, in blocks.
		#[pallet::constant]
		type MinSessionLength: Get<BlockNumberFor<Self>>;
	}

	/// This chain's timing, written at genesis and never changed.
	#[pallet::storage]
	pub type Timing<T: Config> =
		StorageValue<_, SessionTiming<BlockNumberFor<T>>, ValueQuery, T::DefaultTiming>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// The chain's timing; `None` keeps `Config::DefaultTiming`.
		pub timing: Option<SessionTiming<BlockNumberFor<T>>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			let timing = self.timing.unwrap_or_else(T::DefaultTiming::get);
			if let Err(e) = timing.check(T::MinSessionLength::get()) {
				panic!("genesis session timing refused: {e:?}");
			}
			Timing::<T>::put(timing);
		}
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(
				T::DefaultTiming::get().check(T::MinSessionLength::get()).is_ok(),
				"DefaultTiming is not a timing a chain can run on"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	impl<T: Config> Pallet<T> {
		/// Invariant: the stored timing is one a chain can run on.
		#[cfg(any(feature = "try-runtime", test))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			ensure!(
				Timing::<T>::get().check(T::MinSessionLength::get()).is_ok(),
				"stored session timing is invalid"
			);
			Ok(())
		}
	}
}

/// BABE's epoch length in slots: one session.
pub struct EpochDuration<T>(core::marker::PhantomData<T>);
impl<T: Config> Get<u64> for EpochDuration<T> {
	fn get() -> u64 {
		Timing::<T>::get().session_length.unique_saturated_into()
	}
}

/// Staking's sessions per era.
pub struct SessionsPerEra<T>(core::marker::PhantomData<T>);
impl<T: Config> Get<SessionIndex> for SessionsPerEra<T> {
	fn get() -> SessionIndex {
		Timing::<T>::get().sessions_per_era
	}
}

/// Staking's unbonding period in eras.
pub struct BondingDuration<T>(core::marker::PhantomData<T>);
impl<T: Config> Get<EraIndex> for BondingDuration<T> {
	fn get() -> EraIndex {
		Timing::<T>::get().bonding_duration
	}
}

/// Staking's slash deferral in eras.
pub struct SlashDeferDuration<T>(core::marker::PhantomData<T>);
impl<T: Config> Get<EraIndex> for SlashDeferDuration<T> {
	fn get() -> EraIndex {
		Timing::<T>::get().slash_defer_duration
	}
}

/// How long (in blocks) an equivocation report stays valid: the bonding duration, after which
/// the offender's stake may be gone and the report could no longer slash it.
pub struct ReportLongevity<T>(core::marker::PhantomData<T>);
impl<T: Config> Get<u64> for ReportLongevity<T> {
	fn get() -> u64 {
		let timing = Timing::<T>::get();
		let session: u64 = timing.session_length.unique_saturated_into();
		u64::from(timing.bonding_duration)
			.saturating_mul(u64::from(timing.sessions_per_era))
			.saturating_mul(session)
	}
}

/// Sessions in one unbonding period: how many GRANDPA set-id to session entries must be kept
/// for an equivocation to be provable while its offender's stake is still bonded.
pub struct SessionsPerBondingPeriod<T>(core::marker::PhantomData<T>);
impl<T: Config> Get<u64> for SessionsPerBondingPeriod<T> {
	fn get() -> u64 {
		let timing = Timing::<T>::get();
		u64::from(timing.bonding_duration).saturating_mul(u64::from(timing.sessions_per_era))
	}
}
