//! Benchmarks of pallet-validation (frame-benchmarking v2).

use super::*;
use crate::Pallet as Validation;
use agora_primitives::{
	ParticipantRegistry, Role, UpdateRef, VerificationMode, VerificationRequest, H256,
};
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::traits::EnsureOrigin;
use frame_support::{pallet_prelude::*, traits::Hooks};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_runtime::Perbill;

const JOB: JobId = 0;

fn workers<T: Config>(u: u32) -> Vec<T::AccountId> {
	(0..u)
		.map(|i| {
			let w: T::AccountId = account("worker", i, 0);
			T::Registry::benchmark_register(&w, Role::Worker, 10);
			w
		})
		.collect()
}

/// Start a verification of `u` updates with the maximum validators per update.
fn start<T: Config>(u: u32) -> Result<Vec<T::AccountId>, BenchmarkError> {
	let per_update = T::MaxValidatorsPerUpdate::get();
	for i in 0..per_update.saturating_add(1) {
		let v: T::AccountId = account("validator", i, 0);
		T::Registry::benchmark_register(&v, Role::Validator, 10);
	}
	let ws = workers::<T>(u);
	let updates = ws
		.iter()
		.map(|w| UpdateRef {
			worker: w.clone(),
			checkpoint_root: H256::repeat_byte(5),
			checkpoints: 100,
		})
		.collect();
	let period: BlockNumberFor<T> = 10u32.into();
	let request = VerificationRequest {
		mode: VerificationMode::Replay,
		validators_per_update: per_update,
		commit: period,
		reveal: period,
		aggregation: period,
	};
	Validation::<T>::do_start(JOB, 1, request, updates)
		.map_err(|_| BenchmarkError::Stop("start"))?;
	Ok(ws)
}

fn salt() -> [u8; 32] {
	[7u8; 32]
}

fn commit_all<T: Config>(ws: &[T::AccountId]) -> Result<(), BenchmarkError> {
	for w in ws {
		let check = Checks::<T>::get(JOB, w).ok_or(BenchmarkError::Stop("check"))?;
		for a in check.assignments.iter() {
			let c = commitment_of(
				JOB,
				w,
				Verdict::Valid,
				Perbill::from_percent(70),
				&salt(),
				&a.validator,
			);
			Validation::<T>::do_commit(a.validator.clone(), JOB, w.clone(), c)
				.map_err(|_| BenchmarkError::Stop("commit"))?;
		}
	}
	Ok(())
}

fn reveal_all<T: Config>(ws: &[T::AccountId]) -> Result<(), BenchmarkError> {
	for w in ws {
		let check = Checks::<T>::get(JOB, w).ok_or(BenchmarkError::Stop("check"))?;
		for a in check.assignments.iter() {
			Validation::<T>::do_reveal(
				a.validator.clone(),
				JOB,
				w.clone(),
				Verdict::Valid,
				Perbill::from_percent(70),
				salt(),
			)
			.map_err(|_| BenchmarkError::Stop("reveal"))?;
		}
	}
	Ok(())
}

/// Move to the next stage.
fn next_stage<T: Config>() -> Result<(), BenchmarkError> {
	let v = Verifications::<T>::get(JOB).ok_or(BenchmarkError::Stop("verification"))?;
	let at = v.deadline.max(frame_system::Pallet::<T>::block_number());
	frame_system::Pallet::<T>::set_block_number(at);
	Validation::<T>::process_deadlines(at);
	Ok(())
}

fn to_aggregation<T: Config>(u: u32) -> Result<Vec<T::AccountId>, BenchmarkError> {
	let ws = start::<T>(u)?;
	commit_all::<T>(&ws)?;
	next_stage::<T>()?;
	reveal_all::<T>(&ws)?;
	next_stage::<T>()?;
	Ok(ws)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn commit_verdict() -> Result<(), BenchmarkError> {
		let ws = start::<T>(T::MaxWorkersPerRound::get())?;
		let check = Checks::<T>::get(JOB, &ws[0]).ok_or(BenchmarkError::Stop("check"))?;
		let v =
			check.assignments.last().ok_or(BenchmarkError::Stop("assignment"))?.validator.clone();
		let c = commitment_of(JOB, &ws[0], Verdict::Valid, Perbill::from_percent(70), &salt(), &v);
		#[extrinsic_call]
		_(RawOrigin::Signed(v), JOB, ws[0].clone(), c);
		Ok(())
	}

	#[benchmark]
	fn reveal_verdict() -> Result<(), BenchmarkError> {
		let ws = start::<T>(T::MaxWorkersPerRound::get())?;
		commit_all::<T>(&ws)?;
		next_stage::<T>()?;
		let check = Checks::<T>::get(JOB, &ws[0]).ok_or(BenchmarkError::Stop("check"))?;
		let v =
			check.assignments.last().ok_or(BenchmarkError::Stop("assignment"))?.validator.clone();
		#[extrinsic_call]
		_(
			RawOrigin::Signed(v),
			JOB,
			ws[0].clone(),
			Verdict::Valid,
			Perbill::from_percent(70),
			salt(),
		);
		Ok(())
	}

	#[benchmark]
	fn expose_plant() -> Result<(), BenchmarkError> {
		let ws = start::<T>(T::MaxWorkersPerRound::get())?;
		let planter = ws.first().ok_or(BenchmarkError::Stop("worker"))?.clone();
		let secret = [3u8; 32];
		CheckpointRoots::<T>::insert(JOB, &planter, crate::plant_root(JOB, &planter, &secret));
		commit_all::<T>(&ws)?;
		next_stage::<T>()?;
		#[extrinsic_call]
		_(RawOrigin::Signed(planter.clone()), JOB, secret);
		assert!(ExposedPlants::<T>::contains_key(JOB, &planter));
		Ok(())
	}

	#[benchmark]
	fn post_aggregate() -> Result<(), BenchmarkError> {
		to_aggregation::<T>(T::MaxWorkersPerRound::get())?;
		let agg = Verifications::<T>::get(JOB)
			.and_then(|v| v.aggregator)
			.ok_or(BenchmarkError::Stop("aggregator"))?;
		#[extrinsic_call]
		_(RawOrigin::Signed(agg), JOB, 1, H256::repeat_byte(9));
		Ok(())
	}

	#[benchmark]
	fn vote_aggregate() -> Result<(), BenchmarkError> {
		to_aggregation::<T>(T::MaxWorkersPerRound::get())?;
		let v = RoundValidators::<T>::get(JOB)
			.last()
			.ok_or(BenchmarkError::Stop("validator"))?
			.who
			.clone();
		#[extrinsic_call]
		_(RawOrigin::Signed(v), JOB, 1, H256::repeat_byte(9));
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

	#[benchmark]
	fn on_initialize_idle(n: Linear<0, { T::MaxActiveJobs::get() }>) {
		let far: BlockNumberFor<T> = 1_000_000u32.into();
		let entries: Vec<(JobId, BlockNumberFor<T>)> =
			(0..n).map(|i| (u64::from(i) + 100, far)).collect();
		ActiveVerifications::<T>::put(BoundedVec::truncate_from(entries));
		let now = frame_system::Pallet::<T>::block_number();
		#[block]
		{
			Validation::<T>::on_initialize(now);
		}
		ActiveVerifications::<T>::kill();
	}

	#[benchmark]
	fn start_verification(
		u: Linear<1, { T::MaxWorkersPerRound::get() }>,
	) -> Result<(), BenchmarkError> {
		let per_update = T::MaxValidatorsPerUpdate::get();
		// A full validator set: every eligible validator is read and shuffled.
		for i in 0..T::MaxRoundValidators::get().max(per_update.saturating_add(1)) {
			let v: T::AccountId = account("validator", i, 0);
			T::Registry::benchmark_register(&v, Role::Validator, 10);
		}
		let ws = workers::<T>(u);
		let updates: Vec<_> = ws
			.iter()
			.map(|w| UpdateRef {
				worker: w.clone(),
				checkpoint_root: H256::repeat_byte(5),
				checkpoints: 100,
			})
			.collect();
		let period: BlockNumberFor<T> = 10u32.into();
		let request = VerificationRequest {
			mode: VerificationMode::Replay,
			validators_per_update: per_update,
			commit: period,
			reveal: period,
			aggregation: period,
		};
		#[block]
		{
			Validation::<T>::do_start(JOB, 1, request, updates)
				.map_err(|_| BenchmarkError::Stop("start"))?;
		}
		Ok(())
	}

	#[benchmark]
	fn open_reveal(w: Linear<1, { T::MaxWorkersPerRound::get() }>) -> Result<(), BenchmarkError> {
		let ws = start::<T>(w)?;
		commit_all::<T>(&ws)?;
		#[block]
		{
			next_stage::<T>()?;
		}
		Ok(())
	}

	#[benchmark]
	fn conclude(w: Linear<1, { T::MaxWorkersPerRound::get() }>) -> Result<(), BenchmarkError> {
		let ws = start::<T>(w)?;
		commit_all::<T>(&ws)?;
		next_stage::<T>()?;
		reveal_all::<T>(&ws)?;
		#[block]
		{
			next_stage::<T>()?;
		}
		Ok(())
	}

	#[benchmark]
	fn tally(v: Linear<1, { T::MaxRoundValidators::get() }>) -> Result<(), BenchmarkError> {
		to_aggregation::<T>(T::MaxWorkersPerRound::get())?;
		let agg = Verifications::<T>::get(JOB)
			.and_then(|x| x.aggregator)
			.ok_or(BenchmarkError::Stop("aggregator"))?;
		Validation::<T>::do_post_aggregate(agg, JOB, 1, H256::repeat_byte(9))
			.map_err(|_| BenchmarkError::Stop("post"))?;
		let voters: Vec<_> =
			RoundValidators::<T>::get(JOB).iter().map(|r| r.who.clone()).take(v as usize).collect();
		for who in voters {
			Validation::<T>::do_vote_aggregate(who, JOB, 1, H256::repeat_byte(9))
				.map_err(|_| BenchmarkError::Stop("vote"))?;
		}
		#[block]
		{
			next_stage::<T>()?;
		}
		Ok(())
	}

	impl_benchmark_test_suite!(Validation, crate::mock::new_test_ext(), crate::mock::Test);
}
