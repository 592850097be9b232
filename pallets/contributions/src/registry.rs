//! Registration, stake, unbonding and slashing logic.

use crate::{pallet::*, types::*, BalanceOf, ParamsOf, ParticipantOf};
use agora_primitives::{BlobHash, Capability, Multiaddr, ParticipantRegistry, PeerId, Role};
use alloc::vec::Vec;
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{BalancedHold, Inspect, MutateHold},
		tokens::{Fortitude, Precision, Preservation},
		Imbalance, OnUnbalanced,
	},
};
use sp_runtime::{
	traits::{Saturating, Zero},
	Perbill,
};

impl<T: Config> Pallet<T> {
	/// The hold reason of a role's stake.
	pub fn hold_reason(role: Role) -> T::RuntimeHoldReason {
		match role {
			Role::Worker => HoldReason::WorkerStake.into(),
			Role::Validator => HoldReason::ValidatorStake.into(),
		}
	}

	/// A role's registration, if any.
	pub fn participant(role: Role, who: &T::AccountId) -> Option<ParticipantOf<T>> {
		match role {
			Role::Worker => Workers::<T>::get(who),
			Role::Validator => Validators::<T>::get(who),
		}
	}

	fn put_participant(role: Role, who: &T::AccountId, p: ParticipantOf<T>) {
		match role {
			Role::Worker => Workers::<T>::insert(who, p),
			Role::Validator => Validators::<T>::insert(who, p),
		}
	}

	fn remove_participant(role: Role, who: &T::AccountId) {
		match role {
			Role::Worker => Workers::<T>::remove(who),
			Role::Validator => Validators::<T>::remove(who),
		}
	}

	fn min_stake(role: Role, params: &ParamsOf<T>) -> BalanceOf<T> {
		match role {
			Role::Worker => params.min_worker_stake,
			Role::Validator => params.min_validator_stake,
		}
	}

	fn check_endpoint(peer_id: &PeerId, multiaddr: &Multiaddr, cap: &Capability) -> DispatchResult {
		ensure!(!peer_id.is_empty() && !multiaddr.is_empty(), Error::<T>::InvalidEndpoint);
		ensure!(cap.throughput > 0, Error::<T>::InvalidCapability);
		Ok(())
	}

	fn hold_checked(
		reason: &T::RuntimeHoldReason,
		who: &T::AccountId,
		amount: BalanceOf<T>,
	) -> DispatchResult {
		let free = T::Currency::reducible_balance(who, Preservation::Preserve, Fortitude::Polite);
		ensure!(free >= amount, Error::<T>::InsufficientBalance);
		T::Currency::hold(reason, who, amount).map_err(|_| Error::<T>::InsufficientBalance.into())
	}

	pub(crate) fn do_register(
		who: T::AccountId,
		role: Role,
		stake: BalanceOf<T>,
		peer_id: PeerId,
		multiaddr: Multiaddr,
		capability: Capability,
	) -> DispatchResult {
		ensure!(Self::participant(role, &who).is_none(), Error::<T>::AlreadyRegistered);
		Self::check_endpoint(&peer_id, &multiaddr, &capability)?;
		let params = ProtocolParams::<T>::get();
		ensure!(stake >= Self::min_stake(role, &params), Error::<T>::InsufficientStake);
		if role == Role::Validator {
			ensure!(Self::can_take_seat(stake), Error::<T>::TooManyValidators);
		}
		Self::hold_checked(&Self::hold_reason(role), &who, stake)?;
		let now = frame_system::Pallet::<T>::block_number();
		Self::put_participant(
			role,
			&who,
			Participant {
				stake,
				peer_id,
				multiaddr,
				capability,
				status: ParticipantStatus::Active,
				registered_at: now,
			},
		);
		Self::deposit_event(Event::Registered { who: who.clone(), role, stake });
		if role == Role::Validator && !Self::take_seat(&who, stake) {
			frame_support::defensive!("can_take_seat found a seat for this stake");
		}
		Ok(())
	}

	pub(crate) fn do_bond_extra(
		who: T::AccountId,
		role: Role,
		amount: BalanceOf<T>,
	) -> DispatchResult {
		ensure!(!amount.is_zero(), Error::<T>::ZeroAmount);
		let mut p = Self::participant(role, &who).ok_or(Error::<T>::NotRegistered)?;
		ensure!(p.status == ParticipantStatus::Active, Error::<T>::NotActive);
		Self::hold_checked(&Self::hold_reason(role), &who, amount)?;
		p.stake = p.stake.saturating_add(amount);
		let stake = p.stake;
		Self::put_participant(role, &who, p);
		Self::deposit_event(Event::Bonded { who: who.clone(), role, amount });
		if role == Role::Validator && !Self::update_seat(&who, stake) {
			let min = ProtocolParams::<T>::get().min_validator_stake;
			// Staying unseated is not an error: the stake is bonded, and a later bond or a
			// free seat can still seat it.
			if stake >= min {
				let _seated = Self::take_seat(&who, stake);
			}
		}
		Ok(())
	}

	pub(crate) fn do_claim_seat(who: T::AccountId) -> DispatchResult {
		let p = Self::participant(Role::Validator, &who).ok_or(Error::<T>::NotRegistered)?;
		ensure!(p.status == ParticipantStatus::Active, Error::<T>::NotActive);
		let min = ProtocolParams::<T>::get().min_validator_stake;
		ensure!(p.stake >= min, Error::<T>::InsufficientStake);
		ensure!(!Self::is_seated(&who), Error::<T>::AlreadySeated);
		ensure!(Self::take_seat(&who, p.stake), Error::<T>::TooManyValidators);
		Ok(())
	}

	/// Whether validator `who` holds a seat.
	pub fn is_seated(who: &T::AccountId) -> bool {
		ValidatorSeats::<T>::get().iter().any(|(v, _)| v == who)
	}

	pub(crate) fn do_update_endpoint(
		who: T::AccountId,
		role: Role,
		peer_id: PeerId,
		multiaddr: Multiaddr,
		capability: Capability,
	) -> DispatchResult {
		let mut p = Self::participant(role, &who).ok_or(Error::<T>::NotRegistered)?;
		Self::check_endpoint(&peer_id, &multiaddr, &capability)?;
		p.peer_id = peer_id;
		p.multiaddr = multiaddr;
		p.capability = capability;
		Self::put_participant(role, &who, p);
		Self::deposit_event(Event::EndpointUpdated { who, role });
		Ok(())
	}

	pub(crate) fn do_unbond(who: T::AccountId, role: Role) -> DispatchResult {
		let mut p = Self::participant(role, &who).ok_or(Error::<T>::NotRegistered)?;
		ensure!(p.status == ParticipantStatus::Active, Error::<T>::AlreadyUnbonding);
		let delay = ProtocolParams::<T>::get().unbonding_delay;
		let until = frame_system::Pallet::<T>::block_number().saturating_add(delay);
		p.status = ParticipantStatus::Unbonding { until };
		if role == Role::Validator {
			ValidatorSeats::<T>::mutate(|seats| seats.retain(|(v, _)| v != &who));
		}
		Self::put_participant(role, &who, p);
		Self::deposit_event(Event::UnbondingStarted { who, role, until });
		Ok(())
	}

	pub(crate) fn do_withdraw(who: T::AccountId, role: Role) -> DispatchResult {
		let p = Self::participant(role, &who).ok_or(Error::<T>::NotRegistered)?;
		let ParticipantStatus::Unbonding { until } = p.status else {
			return Err(Error::<T>::NotUnbonding.into());
		};
		ensure!(frame_system::Pallet::<T>::block_number() >= until, Error::<T>::StillUnbonding);
		ensure!(
			!<T::PendingWork as agora_primitives::PendingWork<T::AccountId>>::has_pending_work(
				&who, role
			),
			Error::<T>::WorkPending
		);
		let amount =
			T::Currency::release(&Self::hold_reason(role), &who, p.stake, Precision::BestEffort)?;
		Self::remove_participant(role, &who);
		Self::deposit_event(Event::Withdrawn { who, role, amount });
		Ok(())
	}

	pub(crate) fn do_register_shard(
		who: T::AccountId,
		shard: BlobHash,
		samples: u32,
	) -> DispatchResult {
		ensure!(!Shards::<T>::contains_key(shard), Error::<T>::ShardExists);
		ensure!(samples > 0, Error::<T>::ZeroAmount);
		let deposit = ProtocolParams::<T>::get().shard_deposit;
		if !deposit.is_zero() {
			Self::hold_checked(&HoldReason::ShardDeposit.into(), &who, deposit)?;
		}
		Shards::<T>::insert(shard, Shard { provider: who.clone(), samples, deposit });
		Self::deposit_event(Event::ShardRegistered { shard, provider: who, samples });
		Ok(())
	}

	pub(crate) fn do_deregister_shard(who: T::AccountId, shard: BlobHash) -> DispatchResult {
		let s = Shards::<T>::get(shard).ok_or(Error::<T>::UnknownShard)?;
		ensure!(s.provider == who, Error::<T>::NotShardProvider);
		if !s.deposit.is_zero() {
			T::Currency::release(
				&HoldReason::ShardDeposit.into(),
				&who,
				s.deposit,
				Precision::BestEffort,
			)?;
		}
		Shards::<T>::remove(shard);
		Self::deposit_event(Event::ShardDeregistered { shard, provider: who });
		Ok(())
	}

	/// Whether a validator not seated yet would get a seat with `stake`.
	fn can_take_seat(stake: BalanceOf<T>) -> bool {
		let seats = ValidatorSeats::<T>::get();
		!seats.is_full() || seats.iter().any(|(_, seated)| *seated < stake)
	}

	/// Seats validator `who` with `stake`, if a seat is free or `stake` is above the lowest
	/// seated stake (whose holder, the latest seated of equals, is unseated: first come keeps
	/// its seat on a tie). Returns whether `who` holds a seat now; the seats are unchanged
	/// otherwise.
	pub(crate) fn take_seat(who: &T::AccountId, stake: BalanceOf<T>) -> bool {
		let mut seats = ValidatorSeats::<T>::get();
		if seats.iter().any(|(v, _)| v == who) {
			return true;
		}
		let outbid = if seats.is_full() {
			// The lowest stake; of equals, the latest seated (the vector is in seating order).
			let lowest = seats.iter().rev().min_by_key(|(_, seated)| *seated).cloned();
			match lowest {
				Some((evicted, seated)) if seated < stake => {
					seats.retain(|(v, _)| v != &evicted);
					Some(evicted)
				},
				_ => return false,
			}
		} else {
			None
		};
		if seats.try_push((who.clone(), stake)).is_err() {
			frame_support::defensive!("a seat was free or has just been freed");
			return false;
		}
		ValidatorSeats::<T>::put(seats);
		Self::deposit_event(Event::ValidatorSeated { who: who.clone(), stake });
		if let Some(evicted) = outbid {
			let reason = UnseatReason::Outbid { by: who.clone() };
			Self::deposit_event(Event::ValidatorUnseated { who: evicted, reason });
		}
		true
	}

	/// Records a seated validator's new stake; `false` if `who` holds no seat.
	fn update_seat(who: &T::AccountId, stake: BalanceOf<T>) -> bool {
		// `try_mutate` writes nothing back when the validator holds no seat.
		ValidatorSeats::<T>::try_mutate(|seats| match seats.iter_mut().find(|(v, _)| v == who) {
			Some(seat) => {
				seat.1 = stake;
				Ok(())
			},
			None => Err(()),
		})
		.is_ok()
	}

	/// Check every field of `params` against its bounds.
	pub fn check_params(params: &ParamsOf<T>) -> DispatchResult {
		let ed = T::Currency::minimum_balance();
		ensure!(
			params.min_worker_stake >= ed && params.min_validator_stake >= ed,
			Error::<T>::StakeBoundOutOfRange
		);
		let d = params.unbonding_delay;
		ensure!(
			d >= MIN_UNBONDING_DELAY.into() && d <= MAX_UNBONDING_DELAY.into(),
			Error::<T>::DelayOutOfRange
		);
		Ok(())
	}

	fn eligible(role: Role, who: &T::AccountId) -> Option<ParticipantOf<T>> {
		let p = Self::participant(role, who)?;
		let min = Self::min_stake(role, &ProtocolParams::<T>::get());
		(p.status == ParticipantStatus::Active && p.stake >= min).then_some(p)
	}

	/// Slash `fraction` of `who`'s stake in `role`; returns the amount taken.
	pub fn do_slash(who: &T::AccountId, role: Role, fraction: Perbill) -> BalanceOf<T> {
		let Some(mut p) = Self::participant(role, who) else { return Zero::zero() };
		let amount = fraction.mul_floor(p.stake);
		if amount.is_zero() {
			return amount;
		}
		let (credit, _missing) = T::Currency::slash(&Self::hold_reason(role), who, amount);
		let taken = credit.peek();
		T::OnSlash::on_unbalanced(credit);
		p.stake = p.stake.saturating_sub(taken);
		let stake = p.stake;
		Self::put_participant(role, who, p);
		Self::deposit_event(Event::Slashed { who: who.clone(), role, amount: taken });
		if role == Role::Validator && Self::update_seat(who, stake) {
			let min = ProtocolParams::<T>::get().min_validator_stake;
			if stake < min {
				// A seat is for a validator that can be drawn: one below the minimum would
				// hold it without duties, keeping out a validator that could take them.
				ValidatorSeats::<T>::mutate(|seats| seats.retain(|(v, _)| v != who));
				let reason = UnseatReason::BelowMinimum;
				Self::deposit_event(Event::ValidatorUnseated { who: who.clone(), reason });
			}
		}
		taken
	}

	/// Invariants: holds equal recorded stakes and deposits; every seat is held by a
	/// validator with status `Active`, once, with the stake recorded beside it.
	#[cfg(any(feature = "try-runtime", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use frame_support::traits::fungible::InspectHold;
		for (who, p) in Workers::<T>::iter() {
			ensure!(
				T::Currency::balance_on_hold(&Self::hold_reason(Role::Worker), &who) == p.stake,
				"worker hold differs from stake"
			);
		}
		for (who, p) in Validators::<T>::iter() {
			ensure!(
				T::Currency::balance_on_hold(&Self::hold_reason(Role::Validator), &who) == p.stake,
				"validator hold differs from stake"
			);
		}
		let seats = ValidatorSeats::<T>::get();
		let mut seated = alloc::collections::BTreeSet::new();
		for (who, stake) in seats.iter() {
			ensure!(seated.insert(who.clone()), "a validator holds two seats");
			let p = Validators::<T>::get(who).ok_or("a seat is held by no validator")?;
			ensure!(
				p.status == ParticipantStatus::Active,
				"a seat is held by an unbonding validator"
			);
			ensure!(p.stake == *stake, "a seat's stake differs from the validator's");
		}
		let mut deposits: alloc::collections::BTreeMap<T::AccountId, BalanceOf<T>> =
			Default::default();
		for (_, s) in Shards::<T>::iter() {
			let e = deposits.entry(s.provider).or_default();
			*e = e.saturating_add(s.deposit);
		}
		for (who, total) in deposits {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ShardDeposit.into(), &who) == total,
				"shard deposit hold differs from deposits"
			);
		}
		Ok(())
	}
}

impl<T: Config> ParticipantRegistry<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn eligible_worker(who: &T::AccountId) -> Option<(BalanceOf<T>, u32)> {
		Self::eligible(Role::Worker, who).map(|p| (p.stake, p.capability.throughput))
	}

	fn eligible_validator(who: &T::AccountId) -> Option<BalanceOf<T>> {
		let seated = ValidatorSeats::<T>::get().iter().any(|(v, _)| v == who);
		Self::eligible(Role::Validator, who).filter(|_| seated).map(|p| p.stake)
	}

	fn eligible_validators() -> Vec<(T::AccountId, BalanceOf<T>)> {
		// Seats hold only active validators with their current stakes (`do_try_state`), so
		// the stake beside each seat is all that eligibility needs.
		let min = ProtocolParams::<T>::get().min_validator_stake;
		ValidatorSeats::<T>::get().into_iter().filter(|(_, stake)| *stake >= min).collect()
	}

	fn shard_provider(shard: &BlobHash) -> Option<T::AccountId> {
		Shards::<T>::get(shard).map(|s| s.provider)
	}

	fn slash(who: &T::AccountId, role: Role, fraction: Perbill) -> BalanceOf<T> {
		Self::do_slash(who, role, fraction)
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_register(who: &T::AccountId, role: Role, throughput: u32) {
		use frame_support::traits::fungible::Mutate;
		let params = ProtocolParams::<T>::get();
		let stake = Self::min_stake(role, &params).saturating_mul(2u32.into());
		let fund =
			stake.saturating_mul(10u32.into()).saturating_add(T::Currency::minimum_balance());
		let _ = T::Currency::set_balance(who, T::Currency::balance(who).saturating_add(fund));
		let peer: PeerId = alloc::vec![1u8; 52].try_into().unwrap_or_default();
		let addr: Multiaddr = alloc::vec![2u8; 64].try_into().unwrap_or_default();
		let cap = Capability {
			device: agora_primitives::DeviceKind::Cuda,
			memory_mib: 16_384,
			throughput: throughput.max(1),
		};
		let _ = Self::do_register(who.clone(), role, stake, peer, addr, cap);
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_register_shard(shard: &BlobHash, provider: &T::AccountId) {
		use frame_support::traits::fungible::Mutate;
		let deposit = ProtocolParams::<T>::get().shard_deposit;
		let fund =
			deposit.saturating_mul(10u32.into()).saturating_add(T::Currency::minimum_balance());
		let _ =
			T::Currency::set_balance(provider, T::Currency::balance(provider).saturating_add(fund));
		let _ = Self::do_register_shard(provider.clone(), *shard, 1_000);
	}
}
