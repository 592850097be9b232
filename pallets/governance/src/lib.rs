//! # Governance pallet
//!
//! Agora's token holders steer the protocol through FRAME's own governance pallets: proposals
//! are referenda (`pallet-referenda`), token holders vote with locked AGR and conviction
//! (`pallet-conviction-voting`), passed proposals are enacted after a delay (`pallet-scheduler`,
//! with the proposal's call stored by `pallet-preimage`), and grants are paid from the treasury
//! (`pallet-treasury`). This pallet adds what is specific to Agora:
//!
//! - **Origins**: [`Origin::ProtocolParameters`] (the only origin, besides root, that may change
//!   the protocol pallets' parameters) and [`Origin::Treasurer`] (treasury spends). A passed
//!   referendum on the matching track dispatches its call with that origin.
//! - **Tracks** ([`tracks`]): `root` (runtime upgrades and anything else), `protocol_params`
//!   and `treasurer`, each with its deposit, voting curves and periods; the runtime implements
//!   pallet-referenda's `TracksInfo` with [`tracks::track`] and [`Pallet::timing`].
//! - **Track timing** ([`TrackTimings`]): the prepare, decision, confirmation and enactment
//!   periods of each track live in storage, so that one runtime serves both development chains
//!   (a whole referendum in about a minute) and production chains (days), chosen at genesis and
//!   changeable only by a root referendum, within bounds.
//!
//! ## Terms
//! - *Prepare period*: blocks after submission before voting can decide the referendum.
//! - *Decision period*: the longest a referendum may be voted on; it fails when this ends.
//! - *Confirm period*: how long a referendum must keep passing before it is approved.
//! - *Enactment period*: the least delay between approval and the call's dispatch.
//!
//! - **Delegated root calls** ([`Pallet::dispatch_delegated`]): some parameters belong to
//!   pallets that let only root set them (pallet-staking's validator count, bonds and caps).
//!   The runtime names which of those calls, with which arguments, the protocol-parameters
//!   track may dispatch with root's authority (`Config::DelegatedRootCalls`); anything else
//!   still needs a root referendum.
//!
//! ## Calls
//! - [`Pallet::set_track_timing`]: root only; changes a track's periods within
//!   [`TimingBounds`].
//! - [`Pallet::dispatch_delegated`]: the protocol-parameters track only; dispatches a call
//!   that `Config::DelegatedRootCalls` admits, as root.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod tracks;
pub mod types;
pub mod weights;

pub use pallet::*;
pub use tracks::{TrackDeposits, TrackId};
pub use types::{TimingBounds, TrackTiming};
pub use weights::WeightInfo;

/// Declares a unit struct that admits exactly one variant of [`Origin`].
macro_rules! ensure_governance_origin {
	($(#[$attr:meta])* $name:ident => $variant:ident) => {
		$(#[$attr])*
		pub struct $name;
		impl<O: frame_support::traits::OriginTrait + From<Origin>>
			frame_support::traits::EnsureOrigin<O> for $name
		where
			for<'a> &'a O::PalletsOrigin: TryInto<&'a Origin>,
		{
			type Success = ();

			fn try_origin(o: O) -> Result<Self::Success, O> {
				if let Ok(Origin::$variant) = o.caller().try_into() {
					return Ok(());
				}
				Err(o)
			}

			#[cfg(feature = "runtime-benchmarks")]
			fn try_successful_origin() -> Result<O, ()> {
				Ok(O::from(Origin::$variant))
			}
		}
	};
}

ensure_governance_origin!(
	/// Passes for a referendum passed on the `protocol_params` track.
	ProtocolParameters => ProtocolParameters
);
ensure_governance_origin!(
	/// Passes for a referendum passed on the `treasurer` track.
	Treasurer => Treasurer
);

/// What the benchmarks need from the runtime: a call it delegates to the protocol-parameters
/// track.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<RuntimeCall> {
	/// The costliest call `Config::DelegatedRootCalls` admits (its bounds check is part of
	/// `dispatch_delegated`'s own weight).
	fn delegated_call() -> RuntimeCall;
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use alloc::boxed::Box;
	use frame_support::{
		dispatch::{extract_actual_weight, GetDispatchInfo, PostDispatchInfo},
		pallet_prelude::*,
		traits::{Contains, IsSubType},
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::traits::Dispatchable;

	/// The in-code storage version: 0 is its layout since genesis. A change of layout raises it and comes
	/// with a migration in the runtime's `Migrations`.
	pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Who may change the track timing: root, i.e. a referendum on the root track.
		type TimingOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// The limits every track timing must respect.
		#[pallet::constant]
		type TimingBounds: Get<TimingBounds<BlockNumberFor<Self>>>;

		/// The timing of every track when genesis does not say otherwise.
		type DefaultTiming: Get<TrackTiming<BlockNumberFor<Self>>>;

		/// The runtime's calls.
		type RuntimeCall: Parameter
			+ Dispatchable<RuntimeOrigin = Self::RuntimeOrigin, PostInfo = PostDispatchInfo>
			+ GetDispatchInfo
			+ From<frame_system::Call<Self>>
			+ IsSubType<Call<Self>>
			+ IsType<<Self as frame_system::Config>::RuntimeCall>;

		/// Who may dispatch a delegated root call: a referendum on the protocol-parameters
		/// track.
		type DelegationOrigin: EnsureOrigin<Self::RuntimeOrigin>;

		/// The root-only calls that `DelegationOrigin` may dispatch as root, with the bounds on
		/// their arguments. Root itself needs no delegation.
		type DelegatedRootCalls: Contains<<Self as Config>::RuntimeCall>;

		/// Weights of this pallet's calls.
		type WeightInfo: WeightInfo;

		/// A delegated call for the benchmarks.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<<Self as Config>::RuntimeCall>;
	}

	/// The origins a passed referendum dispatches with, besides root.
	#[pallet::origin]
	#[derive(
		PartialEq, Eq, Clone, Debug, Encode, Decode, DecodeWithMemTracking, TypeInfo, MaxEncodedLen,
	)]
	pub enum Origin {
		/// Changes the parameters of the protocol pallets (stakes, slashes, rewards, periods).
		ProtocolParameters,
		/// Spends from the treasury.
		Treasurer,
	}

	/// The periods of each referendum track; a track without an entry uses
	/// `Config::DefaultTiming`.
	#[pallet::storage]
	pub type TrackTimings<T: Config> =
		StorageMap<_, Twox64Concat, TrackId, TrackTiming<BlockNumberFor<T>>, OptionQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Per-track timing: short on development chains, realistic on production chains.
		pub track_timings: alloc::vec::Vec<(TrackId, TrackTiming<BlockNumberFor<T>>)>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			for (track, timing) in &self.track_timings {
				assert!(
					timing.check(&T::TimingBounds::get()).is_ok(),
					"genesis timing of track {track} is out of bounds"
				);
				TrackTimings::<T>::insert(track, timing);
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// The periods of a referendum track were changed.
		TrackTimingChanged { track: TrackId, timing: TrackTiming<BlockNumberFor<T>> },
		/// A delegated root call was dispatched as root. `result` is the call's own outcome.
		DelegatedCallDispatched { result: DispatchResult },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// There is no referendum track with this id.
		UnknownTrack,
		/// The prepare period is outside its bounds.
		PreparePeriodOutOfBounds,
		/// The decision period is outside its bounds.
		DecisionPeriodOutOfBounds,
		/// The confirm period is outside its bounds or longer than the decision period.
		ConfirmPeriodOutOfBounds,
		/// The minimum enactment period is outside its bounds.
		EnactmentPeriodOutOfBounds,
		/// The call is not delegated to this origin, or its arguments are outside the bounds.
		CallNotDelegated,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			let bounds = T::TimingBounds::get();
			assert!(bounds.is_consistent(), "TimingBounds: a minimum exceeds its maximum");
			assert!(
				T::DefaultTiming::get().check(&bounds).is_ok(),
				"DefaultTiming is outside TimingBounds"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Set the prepare, decision, confirm and enactment periods of a referendum track.
		/// Referenda already deciding keep the periods they started with only where
		/// pallet-referenda fixed them (deadlines already scheduled); later steps use the new
		/// ones.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::set_track_timing())]
		pub fn set_track_timing(
			origin: OriginFor<T>,
			track: TrackId,
			timing: TrackTiming<BlockNumberFor<T>>,
		) -> DispatchResult {
			T::TimingOrigin::ensure_origin(origin)?;
			ensure!(tracks::is_known(track), Error::<T>::UnknownTrack);
			timing.check(&T::TimingBounds::get()).map_err(Error::<T>::from)?;
			TrackTimings::<T>::insert(track, timing);
			Self::deposit_event(Event::TrackTimingChanged { track, timing });
			Ok(())
		}

		/// Dispatch `call` with root's authority, if the runtime delegates it, with these
		/// arguments, to the caller's origin (`Config::DelegatedRootCalls`).
		///
		/// Origin: `Config::DelegationOrigin` (a referendum passed on the protocol-parameters
		/// track). The call's own failure does not fail this one: it is reported in the
		/// `DelegatedCallDispatched` event, as a referendum's enactment cannot be retried.
		#[pallet::call_index(1)]
		#[pallet::weight({
			let info = call.get_dispatch_info();
			(T::WeightInfo::dispatch_delegated().saturating_add(info.call_weight), info.class)
		})]
		pub fn dispatch_delegated(
			origin: OriginFor<T>,
			call: Box<<T as Config>::RuntimeCall>,
		) -> DispatchResultWithPostInfo {
			T::DelegationOrigin::ensure_origin(origin)?;
			ensure!(T::DelegatedRootCalls::contains(&call), Error::<T>::CallNotDelegated);
			let info = call.get_dispatch_info();
			let result = call.dispatch(frame_system::RawOrigin::Root.into());
			let weight = T::WeightInfo::dispatch_delegated()
				.saturating_add(extract_actual_weight(&result, &info));
			Self::deposit_event(Event::DelegatedCallDispatched {
				result: result.map(|_| ()).map_err(|e| e.error),
			});
			Ok(Some(weight).into())
		}
	}

	impl<T: Config> Pallet<T> {
		/// The periods of `track` now.
		pub fn timing(track: TrackId) -> TrackTiming<BlockNumberFor<T>> {
			TrackTimings::<T>::get(track).unwrap_or_else(T::DefaultTiming::get)
		}

		/// Invariants: timings exist only for known tracks and are within bounds.
		#[cfg(any(feature = "try-runtime", test))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			let bounds = T::TimingBounds::get();
			for (track, timing) in TrackTimings::<T>::iter() {
				ensure!(tracks::is_known(track), "timing stored for an unknown track");
				ensure!(timing.check(&bounds).is_ok(), "stored track timing out of bounds");
			}
			Ok(())
		}
	}
}
