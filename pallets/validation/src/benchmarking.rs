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
	commit_all_as::<T>(ws, Verdict::Valid)
}

fn commit_all_as<T: Config>(ws: &[T::AccountId], verdict: Verdict) -> Result<(), BenchmarkError> {
	for w in ws {
		let check = Checks::<T>::get(JOB, w).ok_or(BenchmarkError::Stop("check"))?;
		for a in check.assignments.iter() {
			let c =
				commitment_of(JOB, w, verdict, Perbill::from_percent(70), &salt(), &a.validator);
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

/// The aggregation stage of a round of `MaxWorkersPerRound` updates whose validator set is
/// filled with registered validators up to `v` (at least those drawn), every one of them
/// holding a commitment: the worst case of the stage's calls and of its tally.
fn to_full_aggregation<T: Config>(v: u32) -> Result<T::AccountId, BenchmarkError> {
	to_aggregation::<T>(T::MaxWorkersPerRound::get())?;
	let agg = Verifications::<T>::get(JOB)
		.and_then(|x| x.aggregator)
		.ok_or(BenchmarkError::Stop("aggregator"))?;
	RoundValidators::<T>::try_mutate(JOB, |set| -> Result<(), BenchmarkError> {
		let mut i = 0u32;
		while (set.len() as u32) < v {
			let who: T::AccountId = account("voter", i, 0);
			T::Registry::benchmark_register(&who, Role::Validator, 10);
			set.try_push(RoundValidator { who, stake: 1, weight: 0, vote: None, forfeited: false })
				.map_err(|_| BenchmarkError::Stop("round validators"))?;
			i = i.saturating_add(1);
		}
		Ok(())
	})?;
	Ok(agg)
}

/// Every voter but the last commits (the last is left for the call being measured).
fn commit_votes<T: Config>(agg: &T::AccountId, all: bool) -> Result<(), BenchmarkError> {
	let set = RoundValidators::<T>::get(JOB);
	let voters: Vec<_> = set.iter().map(|r| r.who.clone()).filter(|w| w != agg).collect();
	let skip = if all { 0 } else { 1 };
	for who in voters.iter().take(voters.len().saturating_sub(skip)) {
		let c = aggregate_commitment_of(JOB, 1, &H256::repeat_byte(9), &salt(), who);
		Validation::<T>::do_vote_aggregate(who.clone(), JOB, 1, c)
			.map_err(|_| BenchmarkError::Stop("vote"))?;
	}
	Ok(())
}

/// The last voter of the round (not the aggregator).
fn last_voter<T: Config>(agg: &T::AccountId) -> Result<T::AccountId, BenchmarkError> {
	RoundValidators::<T>::get(JOB)
		.iter()
		.rev()
		.map(|r| r.who.clone())
		.find(|w| w != agg)
		.ok_or(BenchmarkError::Stop("voter"))
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
		let agg = to_full_aggregation::<T>(T::MaxRoundValidators::get())?;
		let c = aggregate_commitment_of(JOB, 1, &H256::repeat_byte(9), &salt(), &agg);
		#[extrinsic_call]
		_(RawOrigin::Signed(agg), JOB, 1, c);
		Ok(())
	}

	#[benchmark]
	fn vote_aggregate() -> Result<(), BenchmarkError> {
		let agg = to_full_aggregation::<T>(T::MaxRoundValidators::get())?;
		commit_votes::<T>(&agg, false)?;
		let v = last_voter::<T>(&agg)?;
		let c = aggregate_commitment_of(JOB, 1, &H256::repeat_byte(9), &salt(), &v);
		#[extrinsic_call]
		_(RawOrigin::Signed(v), JOB, 1, c);
		Ok(())
	}

	#[benchmark]
	fn reveal_aggregate() -> Result<(), BenchmarkError> {
		let agg = to_full_aggregation::<T>(T::MaxRoundValidators::get())?;
		commit_votes::<T>(&agg, true)?;
		next_stage::<T>()?;
		let v = last_voter::<T>(&agg)?;
		#[extrinsic_call]
		_(RawOrigin::Signed(v.clone()), JOB, 1, H256::repeat_byte(9), salt());
		let revealed = RoundValidators::<T>::get(JOB)
			.iter()
			.any(|r| r.who == v && r.vote == Some(AggregateVote::Revealed(H256::repeat_byte(9))));
		assert!(revealed);
		Ok(())
	}

	#[benchmark]
	fn open_aggregate_reveal() -> Result<(), BenchmarkError> {
		let agg = to_full_aggregation::<T>(T::MaxRoundValidators::get())?;
		commit_votes::<T>(&agg, true)?;
		#[block]
		{
			next_stage::<T>()?;
		}
		let stage = Verifications::<T>::get(JOB).map(|v| v.stage);
		assert_eq!(stage, Some(Stage::AggregateReveal));
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

	/// Worst case: on every update one validator reveals `Invalid` and the others never
	/// reveal, so that every assignment ends in a slash (no reveal, or the worker's fraud).
	#[benchmark]
	fn conclude(w: Linear<1, { T::MaxWorkersPerRound::get() }>) -> Result<(), BenchmarkError> {
		let ws = start::<T>(w)?;
		commit_all_as::<T>(&ws, Verdict::Invalid)?;
		next_stage::<T>()?;
		for worker in &ws {
			let check = Checks::<T>::get(JOB, worker).ok_or(BenchmarkError::Stop("check"))?;
			let a = check.assignments.first().ok_or(BenchmarkError::Stop("assignment"))?;
			Validation::<T>::do_reveal(
				a.validator.clone(),
				JOB,
				worker.clone(),
				Verdict::Invalid,
				Perbill::from_percent(70),
				salt(),
			)
			.map_err(|_| BenchmarkError::Stop("reveal"))?;
		}
		#[block]
		{
			next_stage::<T>()?;
		}
		Ok(())
	}

	/// Worst case: `v` validators in the round, every voter committed and none revealed, nor
	/// did the aggregator: each voter and the aggregator are slashed and the next aggregator
	/// is drawn.
	#[benchmark]
	fn tally(v: Linear<1, { T::MaxRoundValidators::get() }>) -> Result<(), BenchmarkError> {
		let agg = to_full_aggregation::<T>(v)?;
		RoundValidators::<T>::mutate(JOB, |set| set.truncate(v as usize));
		let c = aggregate_commitment_of(JOB, 1, &H256::repeat_byte(9), &salt(), &agg);
		Validation::<T>::do_post_aggregate(agg.clone(), JOB, 1, c)
			.map_err(|_| BenchmarkError::Stop("post"))?;
		commit_votes::<T>(&agg, true)?;
		next_stage::<T>()?;
		#[block]
		{
			next_stage::<T>()?;
		}
		Ok(())
	}

	impl_benchmark_test_suite!(Validation, crate::mock::new_test_ext(), crate::mock::Test);
}
