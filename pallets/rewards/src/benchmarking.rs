//! Benchmarks of pallet-rewards (frame-benchmarking v2).

use super::*;
use crate::Pallet as Rewards;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::traits::{
	fungible::{Inspect, Mutate},
	EnsureOrigin, Get,
};
use frame_system::RawOrigin;
use sp_runtime::traits::Saturating;

fn fund_pool<T: Config>(amount: BalanceOf<T>) {
	let pool = Rewards::<T>::pool_account();
	let _ = T::Currency::set_balance(&pool, T::Currency::balance(&pool).saturating_add(amount));
}

fn owe<T: Config>(who: &T::AccountId) -> BalanceOf<T> {
	let amount = T::Currency::minimum_balance().saturating_mul(100u32.into());
	fund_pool::<T>(amount.saturating_add(T::Currency::minimum_balance()));
	Pending::<T>::insert(who, amount);
	TotalPending::<T>::mutate(|t| *t = t.saturating_add(amount));
	amount
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn claim() {
		let who: T::AccountId = whitelisted_caller();
		owe::<T>(&who);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(Pending::<T>::get(&who) == 0u32.into());
	}

	#[benchmark]
	fn payout() {
		let caller: T::AccountId = whitelisted_caller();
		let who: T::AccountId = account("payee", 0, 0);
		owe::<T>(&who);
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), who.clone());
		assert!(Pending::<T>::get(&who) == 0u32.into());
	}

	#[benchmark]
	fn set_params() -> Result<(), BenchmarkError> {
		let origin =
			T::ParamsOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		let p = T::DefaultParams::get();
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, p);
		Ok(())
	}

	#[benchmark]
	fn on_initialize_emit() {
		fund_pool::<T>(T::Currency::minimum_balance());
		let amount = T::MaxEmissionPerBlock::get();
		#[block]
		{
			// What `on_initialize` does when a job is active (reading the parameters and the
			// active job count, then minting).
			let _ = ProtocolParams::<T>::get();
			let _ = T::ActiveJobs::get();
			Rewards::<T>::emit(amount);
		}
		assert!(TotalEmitted::<T>::get() == amount);
	}

	#[benchmark]
	fn settle_round(w: Linear<1, 64>, v: Linear<0, 512>, p: Linear<0, 64>) {
		let budget = T::Currency::minimum_balance().saturating_mul(1_000u32.into());
		fund_pool::<T>(budget.saturating_add(T::Currency::minimum_balance()));
		let workers: Vec<_> =
			(0..w).map(|i| (account::<T::AccountId>("worker", i, 0), 1_000u128)).collect();
		let validators: Vec<_> =
			(0..v).map(|i| (account::<T::AccountId>("validator", i, 0), 1_000u128)).collect();
		let providers: Vec<_> = (0..p).map(|i| account::<T::AccountId>("provider", i, 0)).collect();
		#[block]
		{
			<Rewards<T> as RewardPool<T::AccountId, BalanceOf<T>>>::settle_round(
				0,
				1,
				budget,
				budget,
				&workers,
				&validators,
				&providers,
			);
		}
		assert!(Settlements::<T>::contains_key(0, 1));
	}

	/// A job of `r` rounds, each with a settlement to remove.
	#[benchmark]
	fn forget_job(r: Linear<1, 1_000>) {
		<Rewards<T> as RewardPool<T::AccountId, BalanceOf<T>>>::benchmark_settlements(0, r);
		#[block]
		{
			<Rewards<T> as RewardPool<T::AccountId, BalanceOf<T>>>::forget_job(0, r);
		}
		assert!(!Settlements::<T>::contains_key(0, r));
	}

	impl_benchmark_test_suite!(Rewards, crate::mock::new_test_ext(), crate::mock::Test);
}
