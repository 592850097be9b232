//! # pallet-rewards
//!
//! The reward pool of Agora's training protocol.
//!
//! ## Terms
//!
//! * **Pool**: the account of `Config::PalletId`. It receives the budget slice of every
//!   completed round (moved there by pallet-tasks), the per-block **emission**
//!   (`emission_per_block`, minted while at least one job is active) and slashed stake
//!   ([`SlashToPool`]).
//! * **Pending**: what an account is owed. Only [`TotalPending`] of the pool is owed; the rest
//!   above the existential deposit is *unallocated* and funds future rounds.
//! * **Settlement** of a round ([`RewardPool::settle_round`]): the round gets its budget plus
//!   its emission, the unallocated funds' share in proportion to budget (the round's budget
//!   against itself plus the escrow every active job still holds), at most `protocol_fee` of
//!   its budget ([`Pallet::emission_of`]): emission follows what jobs pay, never their number
//!   of rounds, and a job that pays itself still loses. The treasury is owed `protocol_fee` of
//!   the total; of the rest
//!   `validator_share` goes to validators by agreement weight, `data_share` to the providers of
//!   the job's shards (equally per shard), and the remainder to workers by
//!   `score × samples`. A class that is empty passes its share to the workers.
//! * **Claims**: `claim` pays the caller, `payout` pays any account (e.g. the treasury). One
//!   account per call: payouts never iterate storage.
//!
//! ## Calls
//!
//! `claim`, `payout`, `set_params` (`ParamsOrigin`).

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
mod pool;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use agora_primitives::{JobId, RewardPool, RoundIndex};
pub use pool::{PoolAccount, SlashToPool};
pub use types::*;
pub use weights::WeightInfo;

/// The balance type of the pallet's currency.
pub type BalanceOf<T> = <<T as Config>::Currency as frame_support::traits::fungible::Inspect<
	<T as frame_system::Config>::AccountId,
>>::Balance;
/// This pallet's parameter struct.
pub type ParamsOf<T> = Params<BalanceOf<T>>;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Balanced, Inspect, Mutate},
			tokens::{Fortitude, Preservation},
		},
		PalletId,
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::traits::{AccountIdConversion, Saturating, Zero};

	/// The in-code storage version: 0 is its layout since genesis (`ProtocolParams`, `Pending`, `TotalPending`, `TotalEmitted`, `Settlements`). A change of layout raises it and comes
	/// with a migration in the runtime's `Migrations`.
	pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency rewards are paid in.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ Balanced<Self::AccountId>;
		/// The pool's id (its account is derived from it).
		#[pallet::constant]
		type PalletId: Get<PalletId>;
		/// The treasury account, owed the protocol fee.
		type Treasury: Get<Self::AccountId>;
		/// Number of active jobs (pallet-tasks' `ActiveJobCount`).
		type ActiveJobs: Get<u32>;
		/// Origin allowed to change [`Params`].
		type ParamsOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Parameters used until genesis or governance sets them.
		type DefaultParams: Get<ParamsOf<Self>>;
		/// Upper bound of `emission_per_block`.
		#[pallet::constant]
		type MaxEmissionPerBlock: Get<BalanceOf<Self>>;
		/// Weights.
		type WeightInfo: WeightInfo;
	}

	#[pallet::type_value]
	pub fn DefaultParamsValue<T: Config>() -> ParamsOf<T> {
		T::DefaultParams::get()
	}

	/// The pallet's parameters.
	#[pallet::storage]
	pub type ProtocolParams<T: Config> =
		StorageValue<_, ParamsOf<T>, ValueQuery, DefaultParamsValue<T>>;

	/// What each account is owed.
	#[pallet::storage]
	pub type Pending<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BalanceOf<T>, ValueQuery>;

	/// Sum of [`Pending`].
	#[pallet::storage]
	pub type TotalPending<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

	/// Total minted as emission.
	#[pallet::storage]
	pub type TotalEmitted<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

	/// How each completed round was paid.
	#[pallet::storage]
	pub type Settlements<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		JobId,
		Twox64Concat,
		RoundIndex,
		Settlement<BalanceOf<T>>,
	>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Initial parameters; `None` keeps `Config::DefaultParams`.
		pub params: Option<ParamsOf<T>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if let Some(p) = self.params {
				assert!(Pallet::<T>::check_params(&p).is_ok(), "genesis params out of bounds");
				ProtocolParams::<T>::put(p);
			}
			// The pool must exist so that slashes and small credits are never dropped.
			let pool = Pallet::<T>::pool_account();
			let ed = T::Currency::minimum_balance();
			let have = T::Currency::balance(&pool);
			if have < ed {
				let _ = T::Currency::mint_into(&pool, ed.saturating_sub(have));
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// Emission was minted into the pool.
		Emitted { amount: BalanceOf<T> },
		/// A round's reward was credited.
		RoundSettled {
			job: JobId,
			round: RoundIndex,
			budget: BalanceOf<T>,
			emission: BalanceOf<T>,
			fee: BalanceOf<T>,
			workers: BalanceOf<T>,
			validators: BalanceOf<T>,
			providers: BalanceOf<T>,
		},
		/// An account's pending reward was paid.
		Claimed { who: T::AccountId, amount: BalanceOf<T> },
		/// The parameters changed.
		ParamsUpdated { params: ParamsOf<T> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// Nothing is owed to the account.
		NothingToClaim,
		/// The amount is below the existential deposit of an account that does not exist yet.
		BelowMinimum,
		/// The emission is above `MaxEmissionPerBlock`.
		EmissionOutOfRange,
		/// A share or the fee is above its bound.
		ShareOutOfRange,
		/// The pool cannot pay this amount now (an accounting fault; never expected).
		PoolExhausted,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(_n: BlockNumberFor<T>) -> Weight {
			let amount = ProtocolParams::<T>::get().emission_per_block;
			if amount.is_zero() || T::ActiveJobs::get() == 0 {
				return T::DbWeight::get().reads(2);
			}
			Self::emit(amount);
			T::WeightInfo::on_initialize_emit()
		}

		fn integrity_test() {
			assert!(
				Pallet::<T>::check_params(&T::DefaultParams::get()).is_ok(),
				"DefaultParams out of bounds"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Pay the caller its pending reward.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::claim())]
		pub fn claim(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_payout(who)
		}

		/// Pay `who` its pending reward (anyone may call).
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::payout())]
		pub fn payout(origin: OriginFor<T>, who: T::AccountId) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_payout(who)
		}

		/// Set the parameters (governance). Every field is checked against its bounds.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::set_params())]
		pub fn set_params(origin: OriginFor<T>, params: ParamsOf<T>) -> DispatchResult {
			T::ParamsOrigin::ensure_origin(origin)?;
			Self::check_params(&params)?;
			ProtocolParams::<T>::put(params);
			Self::deposit_event(Event::ParamsUpdated { params });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// Mint `amount` into the pool as emission.
		pub(crate) fn emit(amount: BalanceOf<T>) {
			match T::Currency::mint_into(&Self::pool_account(), amount) {
				Ok(minted) => {
					TotalEmitted::<T>::mutate(|t| *t = t.saturating_add(minted));
					Self::deposit_event(Event::Emitted { amount: minted });
				},
				Err(e) => log::error!(target: "runtime::rewards", "emission failed: {e:?}"),
			}
		}

		/// The pool account.
		pub fn pool_account() -> T::AccountId {
			T::PalletId::get().into_account_truncating()
		}

		/// Check every field of `params` against its bounds.
		pub fn check_params(p: &ParamsOf<T>) -> DispatchResult {
			ensure!(
				p.emission_per_block <= T::MaxEmissionPerBlock::get(),
				Error::<T>::EmissionOutOfRange
			);
			ensure!(
				p.protocol_fee <= MAX_PROTOCOL_FEE
					&& p.validator_share <= MAX_SHARE
					&& p.data_share <= MAX_SHARE
					&& p.validator_share.saturating_add(p.data_share) <= MAX_COMBINED_SHARE,
				Error::<T>::ShareOutOfRange
			);
			Ok(())
		}

		/// The part of the pool not owed to anyone (above the existential deposit).
		pub fn unallocated() -> BalanceOf<T> {
			T::Currency::balance(&Self::pool_account())
				.saturating_sub(TotalPending::<T>::get())
				.saturating_sub(T::Currency::minimum_balance())
		}

		pub(crate) fn do_payout(who: T::AccountId) -> DispatchResult {
			let amount = Pending::<T>::get(&who);
			ensure!(!amount.is_zero(), Error::<T>::NothingToClaim);
			ensure!(
				T::Currency::balance(&who).saturating_add(amount) >= T::Currency::minimum_balance(),
				Error::<T>::BelowMinimum
			);
			let available = T::Currency::reducible_balance(
				&Self::pool_account(),
				Preservation::Preserve,
				Fortitude::Polite,
			);
			ensure!(available >= amount, Error::<T>::PoolExhausted);
			T::Currency::transfer(&Self::pool_account(), &who, amount, Preservation::Preserve)?;
			Pending::<T>::remove(&who);
			TotalPending::<T>::mutate(|t| *t = t.saturating_sub(amount));
			Self::deposit_event(Event::Claimed { who, amount });
			Ok(())
		}
	}
}
