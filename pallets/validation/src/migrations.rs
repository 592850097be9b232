//! Storage migrations of pallet-validation.

/// Version 0 → 1: `Params::segments_per_update` (a fixed number of challenged segments) gave way
/// to a detection target (`detectable_fraction`, `detection_probability`), and the parameters of
/// unavailable evidence were added. The other fields keep their values where they are within
/// the new bounds; the new fields, and any field now out of bounds, take `Config::DefaultParams`.
pub mod v1 {
	use crate::{pallet::*, Params};
	use codec::{Decode, Encode, MaxEncodedLen};
	use frame_support::{
		migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade,
	};
	use sp_runtime::Perbill;

	/// `Params` as version 0 stored it.
	#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, MaxEncodedLen)]
	pub struct ParamsV0 {
		pub segments_per_update: u32,
		pub score_tolerance: Perbill,
		pub no_reveal_slash: Perbill,
		pub contradiction_slash: Perbill,
		pub fraud_slash: Perbill,
		pub aggregator_slash: Perbill,
		pub max_aggregation_attempts: u32,
	}

	/// The version 1 parameters for version 0's `old`.
	pub fn translate<T: Config>(old: ParamsV0) -> Params {
		let carries: [fn(&mut Params, &ParamsV0); 6] = [
			|p, o| p.score_tolerance = o.score_tolerance,
			|p, o| p.no_reveal_slash = o.no_reveal_slash,
			|p, o| p.contradiction_slash = o.contradiction_slash,
			|p, o| p.fraud_slash = o.fraud_slash,
			|p, o| p.aggregator_slash = o.aggregator_slash,
			|p, o| p.max_aggregation_attempts = o.max_aggregation_attempts,
		];
		agora_primitives::carry_params(T::DefaultParams::get(), &old, &carries, |p| {
			Pallet::<T>::check_params(p).is_ok()
		})
	}

	/// The unversioned step; use [`MigrateV0ToV1`].
	pub struct UncheckedMigrateV0ToV1<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for UncheckedMigrateV0ToV1<T> {
		fn on_runtime_upgrade() -> Weight {
			let key = ProtocolParams::<T>::hashed_key();
			let Some(raw) = frame_support::storage::unhashed::get_raw(&key) else {
				// Never set: the defaults apply, nothing to translate.
				return T::DbWeight::get().reads(1);
			};
			match ParamsV0::decode(&mut &raw[..]) {
				Ok(old) => ProtocolParams::<T>::put(translate::<T>(old)),
				Err(_) => {
					log::warn!(
						target: "runtime::validation",
						"undecodable version 0 parameters: reset to the defaults"
					);
					ProtocolParams::<T>::kill();
				},
			}
			T::DbWeight::get().reads_writes(1, 1)
		}

		#[cfg(feature = "try-runtime")]
		fn post_upgrade(_state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
			Pallet::<T>::check_params(&ProtocolParams::<T>::get())
				.map_err(|_| "migrated parameters out of bounds".into())
		}
	}

	/// Migrates pallet-validation from storage version 0 to 1 (once: the version guards it).
	pub type MigrateV0ToV1<T> = VersionedMigration<
		0,
		1,
		UncheckedMigrateV0ToV1<T>,
		Pallet<T>,
		<T as frame_system::Config>::DbWeight,
	>;
}

/// Version 1 → 2: aggregate votes became commit-reveal. The votes and the aggregate of a
/// verification in progress, stored as plain hashes, become revealed votes
/// ([`crate::AggregateVote::Revealed`]): an attempt under way when the upgrade lands goes
/// straight to its tally at its deadline, as it would have.
pub mod v2 {
	use crate::{pallet::*, AggregateVote, RoundValidator, Stage, Verification};
	use agora_primitives::{BlobHash, RoundIndex, VerificationMode};
	use codec::{Decode, Encode};
	use frame_support::{
		migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade,
	};
	use frame_system::pallet_prelude::BlockNumberFor;
	use sp_runtime::Perbill;

	/// `RoundValidator` as version 1 stored it.
	#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug)]
	pub struct RoundValidatorV1<AccountId> {
		pub who: AccountId,
		pub stake: u128,
		pub weight: u128,
		pub vote: Option<BlobHash>,
	}

	/// `Verification` as version 1 stored it.
	#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug)]
	pub struct VerificationV1<AccountId, BlockNumber> {
		pub round: RoundIndex,
		pub mode: VerificationMode,
		pub stage: Stage,
		pub deadline: BlockNumber,
		pub reveal_period: BlockNumber,
		pub aggregation_period: BlockNumber,
		pub workers: alloc::vec::Vec<AccountId>,
		pub pending: u32,
		pub accepted: alloc::vec::Vec<(AccountId, Perbill)>,
		pub aggregator: Option<AccountId>,
		pub tried: alloc::vec::Vec<AccountId>,
		pub posted: Option<BlobHash>,
	}

	/// The unversioned step; use [`MigrateV1ToV2`].
	pub struct UncheckedMigrateV1ToV2<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for UncheckedMigrateV1ToV2<T> {
		fn on_runtime_upgrade() -> Weight {
			let mut count: u64 = 0;
			RoundValidators::<T>::translate::<alloc::vec::Vec<RoundValidatorV1<T::AccountId>>, _>(
				|_, old| {
					count = count.saturating_add(1);
					let new: alloc::vec::Vec<_> = old
						.into_iter()
						.map(|r| RoundValidator {
							who: r.who,
							stake: r.stake,
							weight: r.weight,
							vote: r.vote.map(AggregateVote::Revealed),
							forfeited: false,
						})
						.collect();
					// Same length as before: it fits its bound.
					new.try_into().ok()
				},
			);
			Verifications::<T>::translate::<VerificationV1<T::AccountId, BlockNumberFor<T>>, _>(
				|_, old| {
					count = count.saturating_add(1);
					Some(Verification {
						round: old.round,
						mode: old.mode,
						stage: old.stage,
						deadline: old.deadline,
						reveal_period: old.reveal_period,
						aggregation_period: old.aggregation_period,
						workers: old.workers.try_into().ok()?,
						pending: old.pending,
						accepted: old.accepted.try_into().ok()?,
						aggregator: old.aggregator,
						tried: old.tried.try_into().ok()?,
						posted: old.posted.map(AggregateVote::Revealed),
					})
				},
			);
			T::DbWeight::get().reads_writes(count, count)
		}

		#[cfg(feature = "try-runtime")]
		fn post_upgrade(_state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
			Pallet::<T>::do_try_state()
		}
	}

	/// Migrates pallet-validation from storage version 1 to 2 (once: the version guards it).
	pub type MigrateV1ToV2<T> = VersionedMigration<
		1,
		2,
		UncheckedMigrateV1ToV2<T>,
		Pallet<T>,
		<T as frame_system::Config>::DbWeight,
	>;
}
