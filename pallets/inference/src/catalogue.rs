//! The catalogue (models and their versions), offers, parameters and the audit pot.

use crate::{pallet::*, types::*, BalanceOf, ParamsOf, WeightInfo};
use agora_primitives::{
	BlobHash, JobId, MaxArchLen, ModelCatalogue, ParticipantRegistry, PeerId, RoundIndex,
};
use frame_support::{
	ensure,
	pallet_prelude::{DispatchResult, Weight},
	traits::{fungible::MutateHold, tokens::Precision, Get},
	BoundedVec,
};
use sp_runtime::{
	traits::{AccountIdConversion, Saturating, Zero},
	DispatchError, Perbill,
};

impl<T: Config> Pallet<T> {
	/// The audit pot: receives audit fees, pays auditors.
	pub fn pot_account() -> T::AccountId {
		T::PalletId::get().into_account_truncating()
	}

	/// Genesis: the pot starts with the existential deposit (as pallet-treasury's account
	/// does), so that any audit fee, however small, can be paid into it, and paying auditors
	/// never reaps it.
	pub(crate) fn endow_pot() {
		use frame_support::traits::fungible::{Inspect, Mutate};
		let pot = Self::pot_account();
		let minimum = T::Currency::minimum_balance();
		if T::Currency::balance(&pot) < minimum {
			let _ = T::Currency::set_balance(&pot, minimum);
		}
	}

	/// Checks every parameter against its bounds.
	pub fn check_params(p: &ParamsOf<T>) -> DispatchResult {
		let one: frame_system::pallet_prelude::BlockNumberFor<T> = 1u32.into();
		let ok = p.protocol_fee <= Perbill::from_percent(20) &&
			p.audit_fee <= Perbill::from_percent(20) &&
			// Audits must happen: a provider that is never checked may answer anything.
			p.audit_rate >= Perbill::from_percent(1) &&
			p.auditors >= 1 && p.auditors <= T::MaxAuditors::get() &&
			p.wrong_answer_slash >= Perbill::from_percent(1) &&
			p.wrong_answer_slash <= Perbill::from_percent(50) &&
			p.dissent_slash <= Perbill::from_percent(10) &&
			// The draw uses randomness of a block after the settlement's parent at the least.
			p.audit_delay > one &&
			p.commit_period > one &&
			p.reveal_period > one &&
			// The draw happens inside the window, so that nothing is paid before it.
			p.dispute_window > p.audit_delay &&
			p.close_delay > one &&
			!p.dispute_bond.is_zero() &&
			!p.version_deposit.is_zero() &&
			!p.offer_deposit.is_zero() &&
			!p.channel_deposit.is_zero();
		ensure!(ok, Error::<T>::ParamOutOfBounds);
		Ok(())
	}

	pub(crate) fn do_set_terms(
		who: T::AccountId,
		model: ModelId,
		license: BoundedVec<u8, MaxLicenseLen>,
		access: Access,
	) -> DispatchResult {
		Models::<T>::try_mutate(model, |entry| -> DispatchResult {
			let entry = entry.as_mut().ok_or(Error::<T>::UnknownModel)?;
			ensure!(entry.owner == who, Error::<T>::NotOwner);
			entry.license = license.clone();
			entry.access = access;
			Ok(())
		})?;
		Self::deposit_event(Event::TermsSet { model, license, access });
		Ok(())
	}

	/// Returns the number of versions removed.
	pub(crate) fn do_delist(who: T::AccountId, model: ModelId) -> Result<u32, DispatchError> {
		let entry = Models::<T>::get(model).ok_or(Error::<T>::UnknownModel)?;
		ensure!(entry.owner == who, Error::<T>::NotOwner);
		ensure!(entry.offers == 0, Error::<T>::ModelServed);
		let deposit = T::Currency::release(
			&HoldReason::CatalogueDeposit.into(),
			&who,
			entry.deposit,
			Precision::BestEffort,
		)?;
		let _ = Versions::<T>::clear_prefix(model, entry.versions, None);
		Models::<T>::remove(model);
		Self::deposit_event(Event::ModelDelisted { model, versions: entry.versions, deposit });
		Ok(entry.versions)
	}

	pub(crate) fn do_offer(
		who: T::AccountId,
		model: ModelId,
		version: RoundIndex,
		price: BalanceOf<T>,
		peer_id: PeerId,
	) -> DispatchResult {
		ensure!(T::Registry::eligible_worker(&who).is_some(), Error::<T>::NotEligible);
		ensure!(!price.is_zero(), Error::<T>::ZeroPrice);
		let mut entry = Models::<T>::get(model).ok_or(Error::<T>::UnknownModel)?;
		ensure!(Versions::<T>::contains_key(model, version), Error::<T>::UnknownVersion);
		let deposit = match Offers::<T>::get(&who, model) {
			Some(existing) => existing.deposit,
			None => {
				let count = OfferCount::<T>::get(&who);
				ensure!(count < T::MaxOffersPerProvider::get(), Error::<T>::TooManyOffers);
				let deposit = ProtocolParams::<T>::get().offer_deposit;
				T::Currency::hold(&HoldReason::OfferDeposit.into(), &who, deposit)?;
				OfferCount::<T>::insert(&who, count.saturating_add(1));
				entry.offers = entry.offers.saturating_add(1);
				Models::<T>::insert(model, entry);
				deposit
			},
		};
		Offers::<T>::insert(
			&who,
			model,
			Offer { version, price, peer_id: peer_id.clone(), deposit },
		);
		Self::deposit_event(Event::Offered { provider: who, model, version, price, peer_id });
		Ok(())
	}

	pub(crate) fn do_withdraw_offer(who: T::AccountId, model: ModelId) -> DispatchResult {
		let offer = Offers::<T>::take(&who, model).ok_or(Error::<T>::UnknownOffer)?;
		T::Currency::release(
			&HoldReason::OfferDeposit.into(),
			&who,
			offer.deposit,
			Precision::BestEffort,
		)?;
		OfferCount::<T>::mutate_exists(&who, |count| {
			*count = count.map(|c| c.saturating_sub(1)).filter(|c| *c > 0)
		});
		Models::<T>::mutate(model, |entry| {
			if let Some(entry) = entry {
				entry.offers = entry.offers.saturating_sub(1);
			}
		});
		Self::deposit_event(Event::OfferWithdrawn { provider: who, model });
		Ok(())
	}

	/// Lists a version, holding its deposit from the owner. `false` if it could not be listed.
	fn list_version(
		job: JobId,
		round: RoundIndex,
		owner: &T::AccountId,
		architecture: &BoundedVec<u8, MaxArchLen>,
		model: BlobHash,
		score: Perbill,
	) -> bool {
		let mut entry = Models::<T>::get(job).unwrap_or_else(|| ModelEntry {
			owner: owner.clone(),
			architecture: architecture.clone(),
			license: BoundedVec::new(),
			access: Access::OwnerOnly,
			versions: 0,
			latest: 0,
			offers: 0,
			deposit: Zero::zero(),
		});
		if entry.versions >= T::MaxVersions::get() || Versions::<T>::contains_key(job, round) {
			return false;
		}
		let deposit = ProtocolParams::<T>::get().version_deposit;
		if T::Currency::hold(&HoldReason::CatalogueDeposit.into(), &entry.owner, deposit).is_err() {
			return false;
		}
		entry.versions = entry.versions.saturating_add(1);
		entry.latest = entry.latest.max(round);
		entry.deposit = entry.deposit.saturating_add(deposit);
		Models::<T>::insert(job, entry);
		let listed_at = frame_system::Pallet::<T>::block_number();
		Versions::<T>::insert(job, round, ModelVersion { model, score, listed_at });
		true
	}

	/// Invariants of the catalogue and offers.
	#[cfg(any(test, feature = "try-runtime"))]
	pub(crate) fn catalogue_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		let mut offers_per_model: BTreeMap<ModelId, u32> = BTreeMap::new();
		let mut offers_per_provider: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		for (provider, model, _) in Offers::<T>::iter() {
			ensure!(Models::<T>::contains_key(model), "offer of an unlisted model");
			*offers_per_model.entry(model).or_default() += 1;
			*offers_per_provider.entry(provider).or_default() += 1;
		}
		for (model, entry) in Models::<T>::iter() {
			let versions = Versions::<T>::iter_prefix(model).count() as u32;
			ensure!(versions == entry.versions, "version count out of step");
			ensure!(entry.versions <= T::MaxVersions::get(), "too many versions");
			ensure!(
				offers_per_model.get(&model).copied().unwrap_or(0) == entry.offers,
				"offer count of a model out of step"
			);
		}
		for (provider, count) in OfferCount::<T>::iter() {
			ensure!(
				offers_per_provider.get(&provider).copied().unwrap_or(0) == count,
				"offer count of a provider out of step"
			);
		}
		ensure!(
			offers_per_provider.len() == OfferCount::<T>::iter().count(),
			"provider with offers but no count"
		);
		Ok(())
	}
}

impl<T: Config> ModelCatalogue<T::AccountId> for Pallet<T> {
	fn record_version(
		job: JobId,
		round: RoundIndex,
		owner: &T::AccountId,
		architecture: &BoundedVec<u8, MaxArchLen>,
		model: BlobHash,
		score: Perbill,
	) -> Weight {
		if Self::list_version(job, round, owner, architecture, model, score) {
			Self::deposit_event(Event::VersionListed { model: job, round, weights: model, score });
		} else {
			Self::deposit_event(Event::VersionNotListed { model: job, round });
		}
		T::WeightInfo::record_version()
	}

	fn record_version_weight() -> Weight {
		T::WeightInfo::record_version()
	}
}
