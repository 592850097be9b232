//! Benchmarks of pallet-tasks (frame-benchmarking v2).

use super::*;
use crate::Pallet as Tasks;
use agora_primitives::{
	Dataset, MaxArchLen, MaxHyperparamsLen, ParticipantRegistry, PhasePeriods, RewardPool, Role,
	RoundOutcome, VerificationMode, VerificationObserver, H256,
};
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::traits::EnsureOrigin;
use frame_support::{
	pallet_prelude::*,
	traits::fungible::{Inspect, Mutate},
};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_runtime::{traits::Saturating, Perbill};

fn spec<T: Config>(shards: u32, workers: u32) -> JobSpec<BlockNumberFor<T>> {
	let p = ProtocolParams::<T>::get();
	let period = p.min_period.max(MIN_TRAINING_PERIOD.into());
	let dataset = if shards == 0 {
		Dataset::Private
	} else {
		let provider: T::AccountId = account("provider", 0, 0);
		let mut v = Vec::new();
		for i in 0..shards {
			// A distinct, non-zero shard hash per index (`from_low_u64_be` needs std).
			let mut bytes = [0u8; 32];
			bytes[28..].copy_from_slice(&(i + 1).to_be_bytes());
			let h = H256(bytes);
			T::Registry::benchmark_register_shard(&h, &provider);
			v.push(h);
		}
		Dataset::Shards(v.try_into().unwrap_or_default())
	};
	JobSpec {
		// Both at their bounds: the worst case of storing and hashing the spec.
		architecture: alloc::vec![b'a'; <MaxArchLen as Get<u32>>::get() as usize]
			.try_into()
			.unwrap_or_default(),
		hyperparameters: alloc::vec![7u8; <MaxHyperparamsLen as Get<u32>>::get() as usize]
			.try_into()
			.unwrap_or_default(),
		initial_weights: H256::repeat_byte(1),
		dataset,
		rounds: 2,
		local_steps: 100,
		checkpoint_interval: 10,
		samples_per_round: 10_000,
		workers_per_round: workers.clamp(1, p.max_workers_per_round),
		validators_per_update: MIN_VALIDATORS_PER_UPDATE,
		// Replay needs public data; a private-data job can only be evaluated.
		mode: if shards == 0 { VerificationMode::Evaluation } else { VerificationMode::Replay },
		periods: PhasePeriods {
			open: period,
			training: period,
			commit: period,
			reveal: period,
			aggregation: period,
		},
	}
}

/// Submitter `index`, funded: one per job, as each account may hold only
/// `max_jobs_per_submitter` active jobs.
fn submitter<T: Config>(index: u32) -> (T::AccountId, BalanceOf<T>) {
	let who: T::AccountId = account("submitter", index, 0);
	let budget = ProtocolParams::<T>::get().min_budget.saturating_mul(100u32.into());
	let _ = T::Currency::set_balance(
		&who,
		budget.saturating_mul(100u32.into()).saturating_add(T::Currency::minimum_balance()),
	);
	(who, budget)
}

fn new_job<T: Config>(shards: u32, workers: u32) -> Result<JobId, BenchmarkError> {
	let index = u32::try_from(NextJobId::<T>::get()).unwrap_or(u32::MAX);
	let (who, budget) = submitter::<T>(index);
	Tasks::<T>::do_create_job(who, spec::<T>(shards, workers), budget)
		.map_err(|_| BenchmarkError::Stop("create_job"))
}

fn worker<T: Config>(i: u32) -> T::AccountId {
	let w: T::AccountId = account("worker", i, 0);
	T::Registry::benchmark_register(&w, Role::Worker, 10u32.saturating_add(i));
	w
}

fn apply_n<T: Config>(id: JobId, n: u32) -> Result<(), BenchmarkError> {
	for i in 0..n {
		Tasks::<T>::do_apply(worker::<T>(i), id).map_err(|_| BenchmarkError::Stop("apply"))?;
	}
	Ok(())
}

/// Run the job's Open phase to its end.
fn close_phase<T: Config>(id: JobId) -> Result<(), BenchmarkError> {
	let job = Jobs::<T>::get(id).ok_or(BenchmarkError::Stop("job"))?;
	frame_system::Pallet::<T>::set_block_number(job.deadline);
	Tasks::<T>::process_deadlines(job.deadline);
	Ok(())
}

fn update(b: u8) -> Update {
	Update {
		delta: H256::repeat_byte(b),
		samples: 1_000,
		loss_micros: 100_000,
		checkpoint_root: H256::repeat_byte(b),
		checkpoints: 10,
	}
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn create_job(s: Linear<0, { agora_primitives::MAX_SHARDS }>) -> Result<(), BenchmarkError> {
		let max = ProtocolParams::<T>::get().max_shards;
		let s = s.min(max);
		let (who, budget) = submitter::<T>(0);
		let sp = spec::<T>(s, 1);
		#[extrinsic_call]
		_(RawOrigin::Signed(who), sp, budget);
		assert!(Jobs::<T>::contains_key(0));
		Ok(())
	}

	#[benchmark]
	fn cancel_job() -> Result<(), BenchmarkError> {
		let id = new_job::<T>(0, 1)?;
		let who = Jobs::<T>::get(id).ok_or(BenchmarkError::Stop("job"))?.submitter;
		#[extrinsic_call]
		_(RawOrigin::Signed(who), id);
		Ok(())
	}

	/// Worst case: a job of `r` rounds, each with a round model and a settlement to remove.
	#[benchmark]
	fn reap_job(r: Linear<1, MAX_ROUNDS>) -> Result<(), BenchmarkError> {
		let id = new_job::<T>(0, 1)?;
		let who = Jobs::<T>::get(id).ok_or(BenchmarkError::Stop("job"))?.submitter;
		Tasks::<T>::do_cancel_job(who.clone(), id).map_err(|_| BenchmarkError::Stop("cancel"))?;
		Jobs::<T>::mutate(id, |job| {
			if let Some(job) = job {
				job.spec.rounds = r;
				job.completed_rounds = r;
			}
		});
		let now = frame_system::Pallet::<T>::block_number();
		for round in 1..=r {
			RoundModels::<T>::insert(
				id,
				round,
				RoundRecord { model: H256::repeat_byte(2), completed_at: now, paid: 0u32.into() },
			);
		}
		T::Rewards::benchmark_settlements(id, r);
		frame_system::Pallet::<T>::set_block_number(now.saturating_add(T::JobRetention::get()));
		#[extrinsic_call]
		_(RawOrigin::Signed(who), id);
		assert!(!Jobs::<T>::contains_key(id));
		assert!(ArchivedModels::<T>::contains_key(id));
		Ok(())
	}

	#[benchmark]
	fn apply_for_round() -> Result<(), BenchmarkError> {
		let id = new_job::<T>(0, 1)?;
		apply_n::<T>(id, T::MaxApplicants::get().saturating_sub(1))?;
		let w = worker::<T>(T::MaxApplicants::get());
		#[extrinsic_call]
		_(RawOrigin::Signed(w), id);
		Ok(())
	}

	#[benchmark]
	fn submit_update() -> Result<(), BenchmarkError> {
		let workers = ProtocolParams::<T>::get().max_workers_per_round;
		let id = new_job::<T>(0, workers)?;
		apply_n::<T>(id, workers)?;
		close_phase::<T>(id)?;
		let slots = RoundWorkers::<T>::get(id);
		let (last, others) = slots.split_last().ok_or(BenchmarkError::Stop("no workers"))?;
		// Distinct updates: a copy of another worker's is rejected.
		for (i, s) in others.iter().enumerate() {
			Tasks::<T>::do_submit_update(s.who.clone(), id, 1, update(i as u8 + 1))
				.map_err(|_| BenchmarkError::Stop("submit"))?;
		}
		#[extrinsic_call]
		_(RawOrigin::Signed(last.who.clone()), id, 1, update(0xff));
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
	fn on_initialize_idle(n: Linear<0, { T::MaxActiveJobs::get() }>) -> Result<(), BenchmarkError> {
		for _ in 0..n {
			new_job::<T>(0, 1)?;
		}
		let now = frame_system::Pallet::<T>::block_number();
		#[block]
		{
			Tasks::<T>::process_deadlines(now);
		}
		Ok(())
	}

	#[benchmark]
	fn close_open(
		a: Linear<1, { T::MaxApplicants::get() }>,
		w: Linear<1, { T::MaxWorkersPerRound::get() }>,
	) -> Result<(), BenchmarkError> {
		let id = new_job::<T>(0, w)?;
		apply_n::<T>(id, a)?;
		let deadline = Jobs::<T>::get(id).ok_or(BenchmarkError::Stop("job"))?.deadline;
		frame_system::Pallet::<T>::set_block_number(deadline);
		#[block]
		{
			Tasks::<T>::process_deadlines(deadline);
		}
		assert_eq!(Jobs::<T>::get(id).map(|j| j.phase), Some(Phase::Training));
		Ok(())
	}

	#[benchmark]
	fn close_training(
		w: Linear<1, { T::MaxWorkersPerRound::get() }>,
	) -> Result<(), BenchmarkError> {
		let id = new_job::<T>(0, w)?;
		apply_n::<T>(id, w)?;
		close_phase::<T>(id)?;
		let deadline = Jobs::<T>::get(id).ok_or(BenchmarkError::Stop("job"))?.deadline;
		frame_system::Pallet::<T>::set_block_number(deadline);
		// Worst case for this pallet: every selected worker is a no-show (one slash each).
		#[block]
		{
			Tasks::<T>::process_deadlines(deadline);
		}
		Ok(())
	}

	#[benchmark]
	fn finish_round(
		w: Linear<1, { T::MaxWorkersPerRound::get() }>,
		s: Linear<0, { agora_primitives::MAX_SHARDS }>,
	) -> Result<(), BenchmarkError> {
		let s = s.min(ProtocolParams::<T>::get().max_shards);
		let id = new_job::<T>(s, w)?;
		apply_n::<T>(id, w)?;
		close_phase::<T>(id)?;
		let slots = RoundWorkers::<T>::get(id);
		for (i, slot) in slots.iter().enumerate() {
			Tasks::<T>::do_submit_update(slot.who.clone(), id, 1, update(i as u8))
				.map_err(|_| BenchmarkError::Stop("submit"))?;
		}
		// Put the round in verification directly (the verifier is another pallet).
		Jobs::<T>::mutate(id, |j| {
			if let Some(j) = j {
				j.phase = Phase::Verifying;
				j.deadline = sp_runtime::traits::Bounded::max_value();
			}
		});
		Tasks::<T>::set_deadline(id, sp_runtime::traits::Bounded::max_value());
		let workers: Vec<_> =
			slots.iter().map(|s| (s.who.clone(), Perbill::from_percent(90))).collect();
		let validators: Vec<_> = slots.iter().map(|s| (s.who.clone(), 1_000u128)).collect();
		let outcome = RoundOutcome::Completed { model: H256::repeat_byte(9), workers, validators };
		#[block]
		{
			<Tasks<T> as VerificationObserver<T::AccountId>>::on_verified(id, 1, outcome);
		}
		assert!(RoundModels::<T>::contains_key(id, 1));
		Ok(())
	}

	impl_benchmark_test_suite!(Tasks, crate::mock::new_test_ext(), crate::mock::Test);
}
