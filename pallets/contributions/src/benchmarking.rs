//! Benchmarks of pallet-contributions (frame-benchmarking v2).

use super::*;
use crate::Pallet as Contributions;
use agora_primitives::{BlobHash, DeviceKind};
use frame_benchmarking::v2::*;
use frame_support::traits::fungible::Inspect;
use frame_support::traits::EnsureOrigin;
use frame_support::traits::{fungible::Mutate, Get};
use frame_system::RawOrigin;
use sp_runtime::traits::Saturating;

fn funded<T: Config>(name: &'static str, i: u32) -> T::AccountId {
	let who: T::AccountId = account(name, i, 0);
	let p = ProtocolParams::<T>::get();
	let amount = p
		.min_validator_stake
		.max(p.min_worker_stake)
		.max(p.shard_deposit)
		.saturating_mul(100u32.into())
		.saturating_add(T::Currency::minimum_balance());
	let _ = T::Currency::set_balance(&who, amount);
	who
}

fn endpoint() -> (PeerId, Multiaddr, Capability) {
	(
		alloc::vec![1u8; 52].try_into().unwrap_or_default(),
		alloc::vec![2u8; 64].try_into().unwrap_or_default(),
		Capability { device: DeviceKind::Cuda, memory_mib: 24_576, throughput: 100 },
	)
}

fn stake<T: Config>(role: Role) -> BalanceOf<T> {
	let p = ProtocolParams::<T>::get();
	match role {
		Role::Worker => p.min_worker_stake,
		Role::Validator => p.min_validator_stake,
	}
	.saturating_mul(2u32.into())
}

/// Registers `n` validators, each seated with the same stake.
fn fill_validators<T: Config>(n: u32) {
	for i in 0..n {
		let v = funded::<T>("filler", i);
		let (p, m, c) = endpoint();
		let _ = Contributions::<T>::do_register(
			v,
			Role::Validator,
			stake::<T>(Role::Validator),
			p,
			m,
			c,
		);
	}
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn register_worker() {
		let who = funded::<T>("worker", 0);
		let (p, m, c) = endpoint();
		let s = stake::<T>(Role::Worker);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), s, p, m, c);
		assert!(Workers::<T>::contains_key(&who));
	}

	/// Worst case: every seat is taken, and the new stake outbids the lowest.
	#[benchmark]
	fn register_validator() {
		fill_validators::<T>(T::MaxValidators::get());
		let who = funded::<T>("validator", 0);
		let (p, m, c) = endpoint();
		let s = stake::<T>(Role::Validator).saturating_mul(2u32.into());
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), s, p, m, c);
		assert!(ValidatorSeats::<T>::get().iter().any(|(v, _)| v == &who));
	}

	/// Worst case: an unseated validator bonds into a full set and outbids the lowest seat.
	#[benchmark]
	fn bond_extra() -> Result<(), BenchmarkError> {
		let cap = T::MaxValidators::get();
		fill_validators::<T>(cap.saturating_sub(1));
		let who = funded::<T>("validator", 0);
		let (p, m, c) = endpoint();
		Contributions::<T>::do_register(
			who.clone(),
			Role::Validator,
			stake::<T>(Role::Validator),
			p,
			m,
			c,
		)
		.map_err(|_| BenchmarkError::Stop("register"))?;
		ValidatorSeats::<T>::mutate(|seats| seats.retain(|(v, _)| v != &who));
		fill_validators::<T>(cap);
		let amount = stake::<T>(Role::Validator);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), Role::Validator, amount);
		assert!(ValidatorSeats::<T>::get().iter().any(|(v, _)| v == &who));
		Ok(())
	}

	/// Worst case: an unseated validator whose stake outbids the lowest of a full set.
	#[benchmark]
	fn claim_seat() -> Result<(), BenchmarkError> {
		let cap = T::MaxValidators::get();
		fill_validators::<T>(cap.saturating_sub(1));
		let who = funded::<T>("validator", 0);
		let (p, m, c) = endpoint();
		let s = stake::<T>(Role::Validator).saturating_mul(2u32.into());
		Contributions::<T>::do_register(who.clone(), Role::Validator, s, p, m, c)
			.map_err(|_| BenchmarkError::Stop("register"))?;
		ValidatorSeats::<T>::mutate(|seats| seats.retain(|(v, _)| v != &who));
		fill_validators::<T>(cap);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()));
		assert!(Contributions::<T>::is_seated(&who));
		Ok(())
	}

	#[benchmark]
	fn update_endpoint() -> Result<(), BenchmarkError> {
		let who = funded::<T>("worker", 0);
		let (p, m, c) = endpoint();
		Contributions::<T>::do_register(
			who.clone(),
			Role::Worker,
			stake::<T>(Role::Worker),
			p.clone(),
			m.clone(),
			c,
		)
		.map_err(|_| BenchmarkError::Stop("register"))?;
		#[extrinsic_call]
		_(RawOrigin::Signed(who), Role::Worker, p, m, c);
		Ok(())
	}

	#[benchmark]
	fn unbond() -> Result<(), BenchmarkError> {
		fill_validators::<T>(T::MaxValidators::get().saturating_sub(1));
		let who = funded::<T>("validator", 0);
		let (p, m, c) = endpoint();
		Contributions::<T>::do_register(
			who.clone(),
			Role::Validator,
			stake::<T>(Role::Validator),
			p,
			m,
			c,
		)
		.map_err(|_| BenchmarkError::Stop("register"))?;
		#[extrinsic_call]
		_(RawOrigin::Signed(who), Role::Validator);
		Ok(())
	}

	#[benchmark]
	fn withdraw_unbonded() -> Result<(), BenchmarkError> {
		let who = funded::<T>("worker", 0);
		let (p, m, c) = endpoint();
		Contributions::<T>::do_register(
			who.clone(),
			Role::Worker,
			stake::<T>(Role::Worker),
			p,
			m,
			c,
		)
		.map_err(|_| BenchmarkError::Stop("register"))?;
		Contributions::<T>::do_unbond(who.clone(), Role::Worker)
			.map_err(|_| BenchmarkError::Stop("unbond"))?;
		let later = frame_system::Pallet::<T>::block_number()
			.saturating_add(ProtocolParams::<T>::get().unbonding_delay);
		frame_system::Pallet::<T>::set_block_number(later);
		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), Role::Worker);
		assert!(!Workers::<T>::contains_key(&who));
		Ok(())
	}

	#[benchmark]
	fn register_shard() {
		let who = funded::<T>("provider", 0);
		let h = BlobHash::repeat_byte(3);
		#[extrinsic_call]
		_(RawOrigin::Signed(who), h, 1_000);
		assert!(Shards::<T>::contains_key(h));
	}

	#[benchmark]
	fn deregister_shard() -> Result<(), BenchmarkError> {
		let who = funded::<T>("provider", 0);
		let h = BlobHash::repeat_byte(3);
		Contributions::<T>::do_register_shard(who.clone(), h, 1_000)
			.map_err(|_| BenchmarkError::Stop("shard"))?;
		#[extrinsic_call]
		_(RawOrigin::Signed(who), h);
		assert!(!Shards::<T>::contains_key(h));
		Ok(())
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

	impl_benchmark_test_suite!(Contributions, crate::mock::new_test_ext(), crate::mock::Test);
}
