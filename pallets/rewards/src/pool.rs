//! Settlement of rounds, the pool account and slash routing.

use crate::{pallet::*, BalanceOf, Settlement, WeightInfo};
use agora_primitives::{JobId, RewardPool, RoundIndex};
use core::marker::PhantomData;
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Balanced, Credit},
		Imbalance, OnUnbalanced,
	},
};
use sp_runtime::{
	helpers_128bit::multiply_by_rational_with_rounding,
	traits::{Saturating, UniqueSaturatedFrom, UniqueSaturatedInto, Zero},
	Rounding,
};

/// The pool account, as a `Get` (e.g. for `ResolveTo`).
pub struct PoolAccount<T>(PhantomData<T>);
impl<T: Config> Get<T::AccountId> for PoolAccount<T> {
	fn get() -> T::AccountId {
		Pallet::<T>::pool_account()
	}
}

/// Routes slashed stake (a credit) into the reward pool, where it funds future rounds.
pub struct SlashToPool<T>(PhantomData<T>);
impl<T: Config> OnUnbalanced<Credit<T::AccountId, T::Currency>> for SlashToPool<T> {
	fn on_nonzero_unbalanced(credit: Credit<T::AccountId, T::Currency>) {
		if let Err(c) = T::Currency::resolve(&Pallet::<T>::pool_account(), credit) {
			// Only if the pool does not exist and the amount is below the existential deposit;
			// genesis endows the pool, so this is not expected.
			log::error!(target: "runtime::rewards", "slash of {:?} could not reach the pool", c.peek());
		}
	}
}

impl<T: Config> Pallet<T> {
	fn credit(who: &T::AccountId, amount: BalanceOf<T>) -> BalanceOf<T> {
		if amount.is_zero() {
			return amount;
		}
		Pending::<T>::mutate(who, |p| *p = p.saturating_add(amount));
		amount
	}

	/// Credit `pot` to `weights` in proportion; returns what was credited.
	fn split(pot: BalanceOf<T>, weights: &[(T::AccountId, u128)]) -> BalanceOf<T> {
		let total: u128 = weights.iter().fold(0u128, |acc, (_, w)| acc.saturating_add(*w));
		if total == 0 || pot.is_zero() {
			return Zero::zero();
		}
		let pot128: u128 = pot.unique_saturated_into();
		let mut credited = BalanceOf::<T>::zero();
		for (who, w) in weights {
			let share =
				multiply_by_rational_with_rounding(pot128, *w, total, Rounding::Down).unwrap_or(0);
			credited = credited
				.saturating_add(Self::credit(who, BalanceOf::<T>::unique_saturated_from(share)));
		}
		credited
	}

	/// A round's emission: the unallocated funds shared in proportion to budget, this round's
	/// `budget` against itself plus the `outstanding` budget of every active job, so that a job's
	/// emission follows what it pays, not how many rounds it runs or how fast; and at most
	/// `fee` of the budget, so that a job that pays itself (its own workers, validators and
	/// data) still loses: it gets back `(1 − fee)·(budget + emission)`, less than `budget`
	/// whenever `emission ≤ fee·budget`.
	pub fn emission_of(
		unallocated: BalanceOf<T>,
		budget: BalanceOf<T>,
		outstanding: BalanceOf<T>,
		fee: sp_runtime::Perbill,
	) -> BalanceOf<T> {
		let budget128: u128 = budget.unique_saturated_into();
		let shared: u128 = budget.saturating_add(outstanding).unique_saturated_into();
		if shared == 0 {
			return Zero::zero();
		}
		let share = multiply_by_rational_with_rounding(
			unallocated.unique_saturated_into(),
			budget128,
			shared,
			Rounding::Down,
		)
		.unwrap_or(0);
		BalanceOf::<T>::unique_saturated_from(share).min(fee.mul_floor(budget))
	}

	/// Invariants: the pool covers what is owed, and `TotalPending` is the sum of `Pending`.
	#[cfg(any(feature = "try-runtime", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use frame_support::traits::fungible::Inspect;
		let sum =
			Pending::<T>::iter_values().fold(BalanceOf::<T>::zero(), |a, b| a.saturating_add(b));
		ensure!(sum == TotalPending::<T>::get(), "TotalPending differs from the sum of Pending");
		let pool = T::Currency::balance(&Self::pool_account());
		ensure!(
			sum.is_zero() || pool >= sum.saturating_add(T::Currency::minimum_balance()),
			"pool does not cover pending rewards"
		);
		Ok(())
	}
}

impl<T: Config> RewardPool<T::AccountId, BalanceOf<T>> for Pallet<T> {
	fn pool_account() -> T::AccountId {
		Pallet::<T>::pool_account()
	}

	fn settle_round(
		job: JobId,
		round: RoundIndex,
		budget: BalanceOf<T>,
		outstanding: BalanceOf<T>,
		workers: &[(T::AccountId, u128)],
		validators: &[(T::AccountId, u128)],
		providers: &[T::AccountId],
	) -> BalanceOf<T> {
		let params = ProtocolParams::<T>::get();
		// The budget is already in the pool; the rest of the unallocated funds is emission.
		let unallocated = Self::unallocated().saturating_sub(budget);
		let emission = Self::emission_of(unallocated, budget, outstanding, params.protocol_fee);
		let total = budget.saturating_add(emission);
		let fee = params.protocol_fee.mul_floor(total);
		let rest = total.saturating_sub(fee);
		let has_validators = validators.iter().any(|(_, w)| *w > 0);
		let validator_pot =
			if has_validators { params.validator_share.mul_floor(rest) } else { Zero::zero() };
		let provider_pot =
			if providers.is_empty() { Zero::zero() } else { params.data_share.mul_floor(rest) };
		let worker_pot = rest.saturating_sub(validator_pot).saturating_sub(provider_pot);

		let fee = Self::credit(&T::Treasury::get(), fee);
		let to_workers = Self::split(worker_pot, workers);
		let to_validators = Self::split(validator_pot, validators);
		let per_provider = provider_pot / BalanceOf::<T>::from((providers.len() as u32).max(1));
		let mut to_providers = BalanceOf::<T>::zero();
		for p in providers {
			to_providers = to_providers.saturating_add(Self::credit(p, per_provider));
		}
		let credited = fee
			.saturating_add(to_workers)
			.saturating_add(to_validators)
			.saturating_add(to_providers);
		TotalPending::<T>::mutate(|t| *t = t.saturating_add(credited));
		let s = Settlement {
			budget,
			emission,
			fee,
			workers: to_workers,
			validators: to_validators,
			providers: to_providers,
		};
		Settlements::<T>::insert(job, round, s);
		Self::deposit_event(Event::RoundSettled {
			job,
			round,
			budget,
			emission,
			fee,
			workers: to_workers,
			validators: to_validators,
			providers: to_providers,
		});
		credited
	}

	fn settle_round_weight(workers: u32, validators: u32, providers: u32) -> Weight {
		<T as Config>::WeightInfo::settle_round(workers, validators, providers)
	}

	fn forget_job(job: JobId, rounds: RoundIndex) {
		let _ = Settlements::<T>::clear_prefix(job, rounds, None);
	}

	fn forget_job_weight(rounds: u32) -> Weight {
		<T as Config>::WeightInfo::forget_job(rounds)
	}

	#[cfg(feature = "runtime-benchmarks")]
	fn benchmark_settlements(job: JobId, rounds: RoundIndex) {
		let zero = BalanceOf::<T>::zero();
		let settlement = Settlement {
			budget: zero,
			emission: zero,
			fee: zero,
			workers: zero,
			validators: zero,
			providers: zero,
		};
		for round in 1..=rounds {
			Settlements::<T>::insert(job, round, settlement);
		}
	}
}
