//! Unit tests of pallet-tasks.

use crate::{
	mock::*, ActiveJobs, Applicants, ArchivedModel, ArchivedModels, EndedAt, Error, Event,
	HoldReason, JobStatus, Jobs, NextRoundWorkers, Params, Phase, ProtocolParams, RoundModels,
	RoundWorkers, Updates,
};
use agora_primitives::{
	Dataset, JobSpec, PendingWork, PhasePeriods, Role, RoundOutcome, Update, VerificationMode,
	VerificationObserver, VoidReason, H256,
};
use frame_support::{
	assert_noop, assert_ok,
	traits::fungible::{Inspect, InspectHold},
};
use sp_runtime::{DispatchError, Perbill};

const P: u64 = 5;

fn spec() -> JobSpec<u64> {
	JobSpec {
		architecture: b"mlp-mnist-v1".to_vec().try_into().unwrap(),
		hyperparameters: b"{\"lr\":0.01}".to_vec().try_into().unwrap(),
		initial_weights: H256::repeat_byte(1),
		dataset: Dataset::Private,
		rounds: 2,
		local_steps: 100,
		checkpoint_interval: 10,
		samples_per_round: 1_000,
		workers_per_round: 2,
		validators_per_update: 2,
		// Private data can only be evaluated (replay needs the worker's data).
		mode: VerificationMode::Evaluation,
		periods: PhasePeriods { open: P, training: P, commit: P, reveal: P, aggregation: P },
	}
}

fn update(b: u8) -> Update {
	Update {
		delta: H256::repeat_byte(b),
		samples: 10_000,
		loss_micros: 250_000,
		checkpoint_root: H256::repeat_byte(b.wrapping_add(1)),
		checkpoints: 10,
	}
}

fn create(budget: u128) -> u64 {
	assert_ok!(Tasks::create_job(RuntimeOrigin::signed(SUBMITTER), spec(), budget));
	crate::NextJobId::<Test>::get() - 1
}

fn escrow_held() -> u128 {
	Balances::balance_on_hold(&HoldReason::JobEscrow.into(), &SUBMITTER)
}

/// Create a job, have workers 1..=n apply, and run to training.
fn to_training(applicants: &[u64]) -> u64 {
	let id = create(1_000);
	for a in applicants {
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(*a), id));
	}
	run_to(1 + P + 1);
	id
}

fn selected(id: u64) -> Vec<u64> {
	RoundWorkers::<Test>::get(id).iter().map(|s| s.who).collect()
}

#[test]
fn create_job_escrows_and_opens_round_one() {
	test(|| {
		let id = create(1_000);
		assert_eq!(id, 0);
		assert_eq!(escrow_held(), 1_000);
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!(
			(job.round, job.phase, job.deadline, job.escrow),
			(1, Phase::Open, 1 + P, 1_000)
		);
		assert_eq!(ActiveJobs::<Test>::get().into_inner(), vec![(0, 1 + P)]);
		assert_eq!(
			events(),
			vec![
				Event::JobCreated { job: 0, submitter: SUBMITTER, budget: 1_000, rounds: 2 },
				Event::RoundOpened { job: 0, round: 1, deadline: 1 + P }
			]
		);
		assert_eq!(<crate::ActiveJobCount<Test> as frame_support::traits::Get<u32>>::get(), 1);
	});
}

#[test]
fn create_job_failures() {
	test(|| {
		let o = || RuntimeOrigin::signed(SUBMITTER);
		assert_noop!(Tasks::create_job(o(), spec(), 99), Error::<Test>::BudgetTooLow);
		assert_noop!(
			Tasks::create_job(o(), spec(), 10_000_000),
			Error::<Test>::InsufficientBalance
		);
		assert_noop!(
			Tasks::create_job(o(), JobSpec { rounds: 0, ..spec() }, 1_000),
			Error::<Test>::InvalidSpec
		);
		assert_noop!(
			Tasks::create_job(o(), JobSpec { architecture: Default::default(), ..spec() }, 1_000),
			Error::<Test>::InvalidSpec
		);
		assert_noop!(
			Tasks::create_job(o(), JobSpec { checkpoint_interval: 101, ..spec() }, 1_000),
			Error::<Test>::InvalidSpec
		);
		assert_noop!(
			Tasks::create_job(o(), JobSpec { rounds: 11, ..spec() }, 1_000),
			Error::<Test>::SpecTooLarge
		);
		assert_noop!(
			Tasks::create_job(o(), JobSpec { workers_per_round: 5, ..spec() }, 1_000),
			Error::<Test>::TooManyWorkers
		);
		assert_noop!(
			Tasks::create_job(o(), JobSpec { validators_per_update: 0, ..spec() }, 1_000),
			Error::<Test>::InvalidValidatorCount
		);
		// One validator alone could not be outvoted, nor slash a worker that withholds.
		assert_noop!(
			Tasks::create_job(o(), JobSpec { validators_per_update: 1, ..spec() }, 1_000),
			Error::<Test>::InvalidValidatorCount
		);
		assert_noop!(
			Tasks::create_job(o(), JobSpec { validators_per_update: 4, ..spec() }, 1_000),
			Error::<Test>::InvalidValidatorCount
		);
		let mut s = spec();
		s.periods.reveal = 1;
		assert_noop!(Tasks::create_job(o(), s.clone(), 1_000), Error::<Test>::PeriodOutOfBounds);
		s.periods.reveal = 101;
		assert_noop!(Tasks::create_job(o(), s, 1_000), Error::<Test>::PeriodOutOfBounds);
		let shards =
			|v: Vec<H256>| JobSpec { dataset: Dataset::Shards(v.try_into().unwrap()), ..spec() };
		assert_noop!(
			Tasks::create_job(o(), shards(vec![H256::zero()]), 1_000),
			Error::<Test>::UnknownShard
		);
		assert_noop!(Tasks::create_job(o(), shards(vec![]), 1_000), Error::<Test>::InvalidSpec);
		assert_noop!(
			Tasks::create_job(o(), shards(vec![H256::repeat_byte(0xa1); 9]), 1_000),
			Error::<Test>::SpecTooLarge
		);
		assert_noop!(
			Tasks::create_job(RuntimeOrigin::none(), spec(), 1_000),
			DispatchError::BadOrigin
		);
		for submitter in [SUBMITTER, 1, 2, 3] {
			assert_ok!(Tasks::create_job(RuntimeOrigin::signed(submitter), spec(), 1_000));
		}
		assert_noop!(
			Tasks::create_job(RuntimeOrigin::signed(4), spec(), 1_000),
			Error::<Test>::TooManyActiveJobs
		);
	});
}

#[test]
fn cancel_before_start_refunds_in_full() {
	test(|| {
		let id = create(1_000);
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(1), id));
		assert_noop!(Tasks::cancel_job(RuntimeOrigin::signed(1), id), Error::<Test>::NotSubmitter);
		assert_noop!(
			Tasks::cancel_job(RuntimeOrigin::signed(SUBMITTER), 9),
			Error::<Test>::UnknownJob
		);
		assert_ok!(Tasks::cancel_job(RuntimeOrigin::signed(SUBMITTER), id));
		assert_eq!(escrow_held(), 0);
		// The budget is back; the deposit pays for the record until it is reaped.
		assert_eq!(Balances::balance(&SUBMITTER), 1_000_000 - DEPOSIT);
		assert_eq!(deposit_held(SUBMITTER), DEPOSIT);
		assert_eq!(Jobs::<Test>::get(id).unwrap().status, JobStatus::Cancelled);
		assert!(ActiveJobs::<Test>::get().is_empty());
		assert!(Applicants::<Test>::get(id).is_empty());
		assert!(events().contains(&Event::JobCancelled { job: id, refunded: 1_000 }));
		assert_noop!(
			Tasks::cancel_job(RuntimeOrigin::signed(SUBMITTER), id),
			Error::<Test>::JobNotActive
		);
		assert_noop!(
			Tasks::apply_for_round(RuntimeOrigin::signed(1), id),
			Error::<Test>::JobNotActive
		);
	});
}

#[test]
fn cancel_after_start_fails() {
	test(|| {
		let id = to_training(&[1, 2]);
		assert_noop!(
			Tasks::cancel_job(RuntimeOrigin::signed(SUBMITTER), id),
			Error::<Test>::AlreadyStarted
		);
	});
}

#[test]
fn apply_failures() {
	test(|| {
		let id = create(1_000);
		assert_noop!(
			Tasks::apply_for_round(RuntimeOrigin::signed(9), id),
			Error::<Test>::NotEligible
		);
		assert_noop!(
			Tasks::apply_for_round(RuntimeOrigin::signed(1), 5),
			Error::<Test>::UnknownJob
		);
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(1), id));
		assert_noop!(
			Tasks::apply_for_round(RuntimeOrigin::signed(1), id),
			Error::<Test>::AlreadyApplied
		);
		WORKERS.with(|w| {
			for a in 10..20 {
				w.borrow_mut().insert(a, (1_000, 1));
			}
		});
		for a in 10..17 {
			assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(a), id));
		}
		assert_noop!(
			Tasks::apply_for_round(RuntimeOrigin::signed(17), id),
			Error::<Test>::TooManyApplicants
		);
		assert!(events().contains(&Event::Applied { job: id, round: 1, worker: 1 }));
		run_to(1 + P + 1);
		// While round 1 trains, applications are for round 2.
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(2), id));
		assert!(events().contains(&Event::Applied { job: id, round: 2, worker: 2 }));
		// Nobody submits: round 1 is voided and round 2 trains at once with the worker drawn
		// for it. The last round takes no applications for a round after it.
		run_to(1 + P + 1 + P);
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.round, job.phase), (2, Phase::Training));
		assert_eq!(selected(id), vec![2]);
		assert_noop!(
			Tasks::apply_for_round(RuntimeOrigin::signed(10), id),
			Error::<Test>::WrongPhase
		);
	});
}

#[test]
fn the_next_round_is_drawn_when_training_closes_and_trains_as_soon_as_this_one_ends() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		// While round 1 trains, workers apply for round 2: one of round 1's and two others.
		for a in [sel[0], 3, 4] {
			assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(a), id));
		}
		assert!(events().contains(&Event::Applied { job: id, round: 2, worker: 3 }));
		for (i, w) in sel.iter().enumerate() {
			assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(*w), id, 1, update(i as u8)));
		}
		run_to(System::block_number() + 2);
		assert_eq!(Jobs::<Test>::get(id).unwrap().phase, Phase::Verifying);
		// Drawn when round 1's training closed: each knows, while round 1 is verified, that it
		// trains in round 2 and for how many samples.
		let drawn = NextRoundWorkers::<Test>::get(id);
		assert_eq!(drawn.len(), 2);
		assert!(drawn.iter().all(|s| [sel[0], 3, 4].contains(&s.who) && s.quota == 500));
		let announced: Vec<(u64, u32)> = drawn.iter().map(|s| (s.who, s.quota)).collect();
		assert!(events().contains(&Event::NextRoundDrawn {
			job: id,
			round: 2,
			workers: announced.clone().try_into().unwrap()
		}));
		assert!(Applicants::<Test>::get(id).is_empty());
		// A worker drawn for the next round cannot leave before it (it would escape its
		// no-show slash); one that applied and was not drawn can.
		assert!(drawn.iter().all(|s| Tasks::has_pending_work(&s.who, Role::Worker)));
		if let Some(left_out) = [3, 4].into_iter().find(|a| !drawn.iter().any(|s| s.who == *a)) {
			assert!(!Tasks::has_pending_work(&left_out, Role::Worker));
		}
		<Tasks as VerificationObserver<u64>>::on_verified(
			id,
			1,
			RoundOutcome::Completed {
				model: H256::repeat_byte(0xee),
				workers: vec![(sel[0], Perbill::from_percent(80))],
				validators: vec![(9, 1_000)],
			},
		);
		// Round 2 trains at once, with no application phase.
		let now = System::block_number();
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.round, job.phase, job.deadline), (2, Phase::Training, now + P));
		assert_eq!(RoundWorkers::<Test>::get(id), drawn);
		assert!(!NextRoundWorkers::<Test>::contains_key(id));
		assert!(events().contains(&Event::TrainingStarted {
			job: id,
			round: 2,
			workers: announced.try_into().unwrap(),
			deadline: now + P
		}));
		assert!(!events().iter().any(|e| matches!(e, Event::RoundOpened { round: 2, .. })));
	});
}

#[test]
fn a_drawn_worker_no_longer_eligible_when_its_round_starts_is_left_out() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		for a in [3, 4] {
			assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(a), id));
		}
		for (i, w) in sel.iter().enumerate() {
			assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(*w), id, 1, update(i as u8)));
		}
		run_to(System::block_number() + 2);
		let drawn: Vec<u64> = NextRoundWorkers::<Test>::get(id).iter().map(|s| s.who).collect();
		assert_eq!(drawn.len(), 2);
		// One of them is caught cheating while round 1 is verified and falls below the minimum
		// stake: it does not train in round 2.
		WORKERS.with(|w| w.borrow_mut().remove(&drawn[0]));
		<Tasks as VerificationObserver<u64>>::on_verified(
			id,
			1,
			RoundOutcome::Voided(VoidReason::NoneAccepted),
		);
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.round, job.phase), (2, Phase::Training));
		assert_eq!(selected(id), vec![drawn[1]]);
		assert_eq!(RoundWorkers::<Test>::get(id)[0].quota, 500, "its quota is the drawn one");
	});
}

#[test]
fn a_no_show_is_not_drawn_for_the_next_round() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		// Both apply for round 2 while round 1 trains; then one of them goes down.
		for w in &sel {
			assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(*w), id));
		}
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(sel[0]), id, 1, update(0)));
		run_to(1 + P + 1 + P);
		assert!(events()
			.iter()
			.any(|e| matches!(e, Event::NoShowSlashed { worker, .. } if *worker == sel[1])));
		// One outage, one no-show slash: it is not drawn for round 2.
		let drawn: Vec<u64> = NextRoundWorkers::<Test>::get(id).iter().map(|s| s.who).collect();
		assert_eq!(drawn, vec![sel[0]]);
	});
}

#[test]
fn applications_for_the_next_round_close_before_the_block_that_draws_it() {
	test(|| {
		let id = to_training(&[1, 2]);
		let deadline = Jobs::<Test>::get(id).unwrap().deadline;
		// The author of the block before the draw knows the randomness that seeds it.
		System::set_block_number(deadline - 1);
		assert_noop!(
			Tasks::apply_for_round(RuntimeOrigin::signed(3), id),
			Error::<Test>::PhaseClosed
		);
	});
}

#[test]
fn a_job_that_ends_while_its_next_round_is_drawn_leaves_nothing_behind() {
	test(|| {
		let id = to_training(&[1, 2]);
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(3), id));
		let sel = selected(id);
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(sel[0]), id, 1, update(0)));
		run_to(1 + P + 1 + P);
		assert_eq!(NextRoundWorkers::<Test>::get(id).len(), 1);
		// Voided rounds in a row end the job (max_voided_rounds); the drawn workers go with it
		// (checked by the invariants too).
		ProtocolParams::<Test>::mutate(|p| p.max_voided_rounds = 1);
		<Tasks as VerificationObserver<u64>>::on_verified(
			id,
			1,
			RoundOutcome::Voided(VoidReason::NoneAccepted),
		);
		assert_eq!(Jobs::<Test>::get(id).unwrap().status, JobStatus::Finalized);
		assert!(!NextRoundWorkers::<Test>::contains_key(id));
		assert!(!Tasks::has_pending_work(&3, Role::Worker));
	});
}

#[test]
fn late_application_is_rejected_before_transition() {
	test(|| {
		let id = create(1_000);
		// Deadline passed but the transition has not run yet.
		System::set_block_number(1 + P + 1);
		assert_noop!(
			Tasks::apply_for_round(RuntimeOrigin::signed(1), id),
			Error::<Test>::PhaseClosed
		);
	});
}

#[test]
fn selection_is_random_and_quotas_are_equal() {
	test(|| {
		let id = to_training(&[1, 2, 3, 4]);
		let slots = RoundWorkers::<Test>::get(id);
		assert_eq!(slots.len(), 2);
		assert!(slots.iter().all(|s| s.quota == 500));
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.phase, job.deadline), (Phase::Training, 1 + P + P));
		assert!(Applicants::<Test>::get(id).is_empty());
		assert!(events()
			.iter()
			.any(|e| matches!(e, Event::TrainingStarted { job: 0, round: 1, .. })));
	});
}

#[test]
fn declared_throughput_buys_no_larger_share() {
	test(|| {
		// Worker 7 declares a million times the throughput of worker 5: the same quota, so the
		// same share of the reward for the same verified steps.
		WORKERS.with(|w| w.borrow_mut().insert(7, (1_000, 1_000_000)));
		let id = to_training(&[5, 7]);
		let quotas: Vec<u32> = RoundWorkers::<Test>::get(id).iter().map(|s| s.quota).collect();
		assert_eq!(quotas, vec![500, 500]);
	});
}

#[test]
fn fewer_segments_than_the_spec_are_rejected() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		let o = RuntimeOrigin::signed(sel[0]);
		// 100 steps every 10: 10 segments. Five one-step segments are not the job's run.
		for wrong in [5u32, 9, 11, 100] {
			assert_noop!(
				Tasks::submit_update(o.clone(), id, 1, Update { checkpoints: wrong, ..update(1) }),
				Error::<Test>::WrongCheckpointCount
			);
		}
		assert_ok!(Tasks::submit_update(o, id, 1, update(1)));
	});
}

#[test]
fn a_copy_cannot_front_run_an_honest_update() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		// The copier's transaction lands first, with the honest worker's update (public in the
		// pool) or its checkpoint root.
		let honest = update(1);
		let same_root = Update { delta: H256::repeat_byte(0x77), ..update(1) };
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(sel[1]), id, 1, same_root));
		// The honest submission still lands: the copy is the validators' to judge (its root is
		// bound to the worker who trained it, see agora-protocol's
		// `run_replayed_into_another_round_job_or_worker_is_invalid`).
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(sel[0]), id, 1, honest));
		assert_eq!(Updates::<Test>::get(id, sel[0]), Some(honest));
	});
}

#[test]
fn submit_update_and_early_close() {
	test(|| {
		let id = to_training(&[1, 2, 3]);
		let sel = selected(id);
		let out = [1u64, 2, 3].into_iter().find(|a| !sel.contains(a)).unwrap();
		let o = |a: u64| RuntimeOrigin::signed(a);
		assert_noop!(Tasks::submit_update(o(out), id, 1, update(1)), Error::<Test>::NotSelected);
		assert_noop!(Tasks::submit_update(o(sel[0]), id, 2, update(1)), Error::<Test>::WrongRound);
		assert_noop!(
			Tasks::submit_update(o(sel[0]), id, 1, Update { samples: 0, ..update(1) }),
			Error::<Test>::InvalidUpdate
		);
		assert_noop!(
			Tasks::submit_update(o(sel[0]), id, 1, Update { checkpoints: 0, ..update(1) }),
			Error::<Test>::InvalidUpdate
		);
		assert_ok!(Tasks::submit_update(o(sel[0]), id, 1, update(1)));
		assert_noop!(
			Tasks::submit_update(o(sel[0]), id, 1, update(1)),
			Error::<Test>::DuplicateSubmission
		);
		let now = System::block_number();
		assert_ok!(Tasks::submit_update(o(sel[1]), id, 1, update(2)));
		// All in: the phase closes two blocks later, so that the challenge randomness (the VRF
		// output of the parent of the closing block) comes from a block that holds no update.
		assert_eq!(Jobs::<Test>::get(id).unwrap().deadline, now + 2);
		run_to(now + 1);
		assert_eq!(Jobs::<Test>::get(id).unwrap().phase, Phase::Training);
		run_to(now + 2);
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!(job.phase, Phase::Verifying);
		let started = STARTED.with(|s| s.borrow().clone());
		assert_eq!(started.len(), 1);
		assert_eq!(started[0].0, id);
		assert_eq!(started[0].2.validators_per_update, 2);
		assert_eq!(started[0].3.len(), 2);
		assert!(events().contains(&Event::VerificationStarted { job: id, round: 1, updates: 2 }));
		assert!(SLASHES.with(|s| s.borrow().is_empty()));
		assert_noop!(Tasks::submit_update(o(sel[0]), id, 1, update(1)), Error::<Test>::WrongPhase);
	});
}

#[test]
fn no_update_in_the_block_whose_randomness_draws_the_challenges() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		// The block before the deadline seeds the challenges with its VRF output: its author
		// could grind an update it included there.
		System::set_block_number(Jobs::<Test>::get(id).unwrap().deadline - 1);
		assert_noop!(
			Tasks::submit_update(RuntimeOrigin::signed(sel[0]), id, 1, update(1)),
			Error::<Test>::PhaseClosed
		);
	});
}

#[test]
fn late_update_is_rejected() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		System::set_block_number(1 + P + 1 + P + 1);
		assert_noop!(
			Tasks::submit_update(RuntimeOrigin::signed(sel[0]), id, 1, update(1)),
			Error::<Test>::PhaseClosed
		);
	});
}

#[test]
fn no_show_is_slashed_and_excluded() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(sel[0]), id, 1, update(1)));
		run_to(1 + P + 1 + P + 1);
		assert_eq!(
			SLASHES.with(|s| s.borrow().clone()),
			vec![(sel[1], agora_primitives::Role::Worker, Perbill::from_percent(1), 10)]
		);
		assert!(events().contains(&Event::NoShowSlashed {
			job: id,
			round: 1,
			worker: sel[1],
			slashed: 10
		}));
		let started = STARTED.with(|s| s.borrow().clone());
		assert_eq!(started[0].3.len(), 1);
		assert_eq!(started[0].3[0].worker, sel[0]);
	});
}

#[test]
fn completed_round_pays_slice_and_records_model() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		for (i, w) in sel.iter().enumerate() {
			assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(*w), id, 1, update(i as u8)));
		}
		run_to(System::block_number() + 2);
		let model = H256::repeat_byte(0xee);
		let quota0 = RoundWorkers::<Test>::get(id)[0].quota;
		<Tasks as VerificationObserver<u64>>::on_verified(
			id,
			1,
			RoundOutcome::Completed {
				model,
				workers: vec![(sel[0], Perbill::from_percent(80))],
				validators: vec![(9, 1_000)],
			},
		);
		// Half the budget moved to the pool.
		assert_eq!(escrow_held(), 500);
		assert_eq!(Balances::balance(&POOL), 501);
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!(
			(job.escrow, job.spent, job.round, job.phase, job.latest_model),
			(500, 500, 2, Phase::Open, model)
		);
		assert_eq!(RoundModels::<Test>::get(id, 1).unwrap().model, model);
		let settled = SETTLED.with(|s| s.borrow().clone());
		assert_eq!(settled.len(), 1);
		// What shares the emission with this round: the escrow still held (its second half).
		assert_eq!(settled[0].3, 500);
		let expected_weight = 800_000_000u128 * u128::from(quota0.min(10_000));
		assert_eq!(settled[0].4, vec![(sel[0], expected_weight)]);
		assert_eq!(settled[0].5, vec![(9, 1_000)]);
		assert!(Updates::<Test>::iter_prefix(id).next().is_none());
		assert!(events().contains(&Event::RoundCompleted { job: id, round: 1, model, paid: 500 }));
		// The model is listed in the catalogue with its accepted update's consensus score.
		assert_eq!(
			CATALOGUED.with(|c| c.borrow().clone()),
			vec![(id, 1, SUBMITTER, model, Perbill::from_percent(80))]
		);
		assert!(events().contains(&Event::RoundOpened {
			job: id,
			round: 2,
			deadline: System::block_number() + P
		}));
		// A stale callback is ignored.
		<Tasks as VerificationObserver<u64>>::on_verified(
			id,
			1,
			RoundOutcome::Voided(VoidReason::NoneAccepted),
		);
		assert_eq!(Jobs::<Test>::get(id).unwrap().round, 2);
	});
}

#[test]
fn job_finalizes_and_refunds_unspent() {
	test(|| {
		let id = to_training(&[1, 2]);
		// Round 1: nobody submits -> voided, both slashed.
		run_to(1 + P + 1 + P + 1);
		assert!(events().contains(&Event::RoundVoided {
			job: id,
			round: 1,
			reason: VoidReason::NoUpdates
		}));
		assert_eq!(Jobs::<Test>::get(id).unwrap().round, 2);
		// Round 2: nobody applies -> voided, job finalized with the initial weights.
		run_to(System::block_number() + P + 1);
		assert!(events().contains(&Event::RoundVoided {
			job: id,
			round: 2,
			reason: VoidReason::NoWorkers
		}));
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!(job.status, JobStatus::Finalized);
		assert!(events().contains(&Event::JobFinalized {
			job: id,
			final_model: H256::repeat_byte(1),
			refunded: 1_000
		}));
		assert_eq!(Balances::balance(&SUBMITTER), 1_000_000 - DEPOSIT);
		assert!(ActiveJobs::<Test>::get().is_empty());
	});
}

#[test]
fn last_round_takes_remainder_and_final_model_is_recorded() {
	test(|| {
		let id = create(1_001);
		for round in 1..=2u32 {
			assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(1), id));
			run_to(System::block_number() + P + 1);
			assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(1), id, round, update(3)));
			run_to(System::block_number() + 2);
			<Tasks as VerificationObserver<u64>>::on_verified(
				id,
				round,
				RoundOutcome::Completed {
					model: H256::repeat_byte(round as u8),
					workers: vec![(1, Perbill::one())],
					validators: vec![],
				},
			);
		}
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.status, job.spent, job.escrow), (JobStatus::Finalized, 1_001, 0));
		assert_eq!(RoundModels::<Test>::get(id, 1).unwrap().paid, 500);
		assert_eq!(RoundModels::<Test>::get(id, 2).unwrap().paid, 501);
		assert!(events().contains(&Event::JobFinalized {
			job: id,
			final_model: H256::repeat_byte(2),
			refunded: 0
		}));
		let d = Tasks::job_details(id).unwrap();
		assert_eq!(d.models, vec![(1, H256::repeat_byte(1)), (2, H256::repeat_byte(2))]);
	});
}

#[test]
fn verifier_failure_voids_round() {
	test(|| {
		VERIFIER_FAILS.with(|f| *f.borrow_mut() = true);
		let id = to_training(&[1]);
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(1), id, 1, update(1)));
		run_to(System::block_number() + 2);
		assert!(events().contains(&Event::RoundVoided {
			job: id,
			round: 1,
			reason: VoidReason::VerifierUnavailable
		}));
		assert_eq!(escrow_held(), 1_000);
	});
}

#[test]
fn transitions_per_block_are_bounded() {
	test(|| {
		for _ in 0..3 {
			create(1_000);
		}
		run_to(1 + P);
		// Max 2 transitions per block: job 2 is still open.
		let open: Vec<_> = (0..3).filter(|id| Jobs::<Test>::get(id).unwrap().round == 1).collect();
		assert_eq!(open, vec![2]);
		run_to(1 + P + 1);
		assert_eq!(Jobs::<Test>::get(2).unwrap().round, 2);
	});
}

#[test]
fn shards_providers_are_passed_to_rewards() {
	test(|| {
		let s = JobSpec {
			dataset: Dataset::Shards(
				vec![H256::repeat_byte(0xa1), H256::repeat_byte(0xa2)].try_into().unwrap(),
			),
			rounds: 1,
			..spec()
		};
		assert_ok!(Tasks::create_job(RuntimeOrigin::signed(SUBMITTER), s, 1_000));
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(1), 0));
		run_to(1 + P + 1);
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(1), 0, 1, update(1)));
		run_to(System::block_number() + 2);
		<Tasks as VerificationObserver<u64>>::on_verified(
			0,
			1,
			RoundOutcome::Completed {
				model: H256::zero(),
				workers: vec![(1, Perbill::one())],
				validators: vec![],
			},
		);
		assert_eq!(SETTLED.with(|s| s.borrow()[0].6.clone()), vec![50, 51]);
		assert_eq!(Jobs::<Test>::get(0).unwrap().status, JobStatus::Finalized);
	});
}

#[test]
fn runtime_api_helpers() {
	test(|| {
		let id = to_training(&[1, 2]);
		let sel = selected(id);
		let duties = Tasks::worker_duties(&sel[0]);
		assert_eq!(duties.len(), 1);
		assert!(Tasks::worker_duties(&9).is_empty());
		let st = Tasks::round_status(id).unwrap();
		assert_eq!((st.round, st.workers.len()), (1, 2));
		assert_eq!(st.phase, agora_primitives::JobStatusView::Training);
		assert!(Tasks::job_details(7).is_none());
	});
}

#[test]
fn params_are_governed_and_bounded() {
	test(|| {
		let p = ProtocolParams::<Test>::get();
		assert_noop!(Tasks::set_params(RuntimeOrigin::signed(1), p), DispatchError::BadOrigin);
		let bad = [
			Params { min_budget: 0, ..p },
			Params { max_rounds: 0, ..p },
			Params { max_workers_per_round: 5, ..p },
			Params { max_validators_per_update: 5, ..p },
			Params { max_validators_per_update: 1, ..p },
			Params { max_shards: 65, ..p },
			Params { min_period: 0, ..p },
			Params { min_period: 50, max_period: 40, ..p },
			Params { max_period: 300_000, ..p },
			Params { no_show_slash: Perbill::from_percent(51), ..p },
			Params { max_jobs_per_submitter: 0, ..p },
			Params { max_jobs_per_submitter: 5, ..p },
			Params { job_deposit: p.min_budget + 1, ..p },
			Params { max_voided_rounds: 0, ..p },
			Params { max_voided_rounds: 11, ..p },
		];
		for b in bad {
			assert_noop!(
				Tasks::set_params(RuntimeOrigin::root(), b),
				Error::<Test>::ParamOutOfBounds
			);
		}
		let good = Params { min_budget: 50, ..p };
		assert_ok!(Tasks::set_params(RuntimeOrigin::root(), good));
		assert_eq!(ProtocolParams::<Test>::get(), good);
		assert!(events().contains(&Event::ParamsUpdated { params: good }));
	});
}

#[test]
fn jobs_no_validator_could_verify_are_rejected() {
	test(|| {
		let o = || RuntimeOrigin::signed(SUBMITTER);
		// Replay of a run on data only its worker has: validators would be assigned updates
		// they cannot check.
		let private_replay =
			JobSpec { dataset: Dataset::Private, mode: VerificationMode::Replay, ..spec() };
		assert_noop!(
			Tasks::create_job(o(), private_replay.clone(), 1_000),
			Error::<Test>::UnverifiableSpec
		);
		// Quality on held-out data needs no worker data.
		let private_evaluation = JobSpec { mode: VerificationMode::Evaluation, ..private_replay };
		assert_ok!(Tasks::create_job(o(), private_evaluation, 1_000));
		// A commit phase too short to fetch, retry and commit in, whatever the governed minimum.
		crate::ProtocolParams::<Test>::mutate(|p| p.min_period = 1);
		for commit in [1u64, 2] {
			let mut s = spec();
			s.periods.commit = commit;
			assert_noop!(Tasks::create_job(o(), s, 1_000), Error::<Test>::PeriodOutOfBounds);
		}
		let mut s = spec();
		s.periods.commit = 3;
		assert_ok!(Tasks::create_job(o(), s, 1_000));
	});
}

#[test]
fn training_below_three_blocks_is_rejected() {
	test(|| {
		// Whatever the governed minimum, a Training phase must leave a selected worker blocks
		// to submit in.
		crate::ProtocolParams::<Test>::mutate(|p| p.min_period = 1);
		for training in [1u64, 2] {
			let mut s = spec();
			s.periods.training = training;
			assert_noop!(
				Tasks::create_job(RuntimeOrigin::signed(SUBMITTER), s, 1_000),
				Error::<Test>::PeriodOutOfBounds
			);
		}
		let mut s = spec();
		s.periods.training = 3;
		assert_ok!(Tasks::create_job(RuntimeOrigin::signed(SUBMITTER), s, 1_000));
		// Three blocks leave two to submit in.
		let id = crate::NextJobId::<Test>::get() - 1;
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(1), id));
		run_to(1 + P);
		let deadline = Jobs::<Test>::get(id).unwrap().deadline;
		assert_eq!(deadline, System::block_number() + 3);
		System::set_block_number(deadline - 2);
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(1), id, 1, update(1)));
	});
}

fn deposit_held(who: u64) -> u128 {
	Balances::balance_on_hold(&HoldReason::JobDeposit.into(), &who)
}

#[test]
fn one_account_cannot_squat_every_job_slot() {
	test(|| {
		let p = ProtocolParams::<Test>::get();
		assert_ok!(Tasks::set_params(
			RuntimeOrigin::root(),
			Params { max_jobs_per_submitter: 2, ..p }
		));
		let first = create(1_000);
		create(1_000);
		assert_eq!(deposit_held(SUBMITTER), 2 * p.job_deposit);
		assert_eq!(crate::SubmitterJobs::<Test>::get(SUBMITTER), 2);
		assert_noop!(
			Tasks::create_job(RuntimeOrigin::signed(SUBMITTER), spec(), 1_000),
			Error::<Test>::TooManySubmitterJobs
		);
		// The slots it does not hold are open to others.
		assert_ok!(Tasks::create_job(RuntimeOrigin::signed(1), spec(), 1_000));
		// A cancelled job gives its slot back; its deposit stays held until it is reaped.
		assert_ok!(Tasks::cancel_job(RuntimeOrigin::signed(SUBMITTER), first));
		assert_eq!(deposit_held(SUBMITTER), 2 * p.job_deposit);
		create(1_000);
	});
}

#[test]
fn a_job_nobody_joins_ends_and_forfeits_its_deposit() {
	test(|| {
		let p = ProtocolParams::<Test>::get();
		let pool_before = Balances::balance(&POOL);
		// A 10-round job that nobody applies to: it would hold its slot for 10 open phases.
		assert_ok!(Tasks::create_job(
			RuntimeOrigin::signed(SUBMITTER),
			JobSpec { rounds: 10, ..spec() },
			1_000
		));
		let id = 0;
		assert_eq!(Jobs::<Test>::get(id).unwrap().deposit, p.job_deposit);
		run_to(1 + 3 * P);
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.status, job.round, job.deposit), (JobStatus::Finalized, 3, 0));
		assert!(events().contains(&Event::JobAbandoned {
			job: id,
			voided: 3,
			forfeited: p.job_deposit
		}));
		assert!(events().contains(&Event::JobFinalized {
			job: id,
			final_model: H256::repeat_byte(1),
			refunded: 1_000
		}));
		// The deposit pays honest work through the reward pool; the budget is refunded.
		assert_eq!(Balances::balance(&POOL), pool_before + p.job_deposit);
		assert_eq!(Balances::balance(&SUBMITTER), 1_000_000 - p.job_deposit);
		assert!(ActiveJobs::<Test>::get().is_empty());
		assert_eq!(crate::SubmitterJobs::<Test>::get(SUBMITTER), 0);
	});
}

#[test]
fn a_job_whose_submitter_withholds_its_held_out_data_ends_and_forfeits_its_deposit() {
	test(|| {
		let p = ProtocolParams::<Test>::get();
		let pool_before = Balances::balance(&POOL);
		assert_ok!(Tasks::create_job(
			RuntimeOrigin::signed(SUBMITTER),
			JobSpec { rounds: 10, ..spec() },
			1_000
		));
		let id = 0;
		// Each round a worker trains and submits, and the validators cannot judge its update
		// for want of the submitter's held-out data: the job's own doing, like a job nobody
		// joins.
		for round in 1..=3 {
			assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(1), id));
			run_to(System::block_number() + P + 1);
			assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(1), id, round, update(3)));
			run_to(System::block_number() + 2);
			<Tasks as VerificationObserver<u64>>::on_verified(
				id,
				round,
				RoundOutcome::Voided(VoidReason::HeldOutUnavailable),
			);
		}
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.status, job.deposit), (JobStatus::Finalized, 0));
		assert!(events().contains(&Event::JobAbandoned {
			job: id,
			voided: 3,
			forfeited: p.job_deposit
		}));
		assert_eq!(Balances::balance(&POOL), pool_before + p.job_deposit);
	});
}

#[test]
fn voids_that_are_others_fault_end_the_job_but_return_the_deposit() {
	test(|| {
		assert_ok!(Tasks::create_job(
			RuntimeOrigin::signed(SUBMITTER),
			JobSpec { rounds: 10, ..spec() },
			1_000
		));
		let id = 0;
		// Round 1 completes; rounds 2 and 3 void (selected workers never submit), round 4 has
		// no applicant: three voids in a row, one of them unjoined.
		assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(1), id));
		run_to(System::block_number() + P + 1);
		assert_ok!(Tasks::submit_update(RuntimeOrigin::signed(1), id, 1, update(3)));
		run_to(System::block_number() + 2);
		let completed = RoundOutcome::Completed {
			model: H256::repeat_byte(9),
			workers: vec![(1, Perbill::one())],
			validators: vec![],
		};
		<Tasks as VerificationObserver<u64>>::on_verified(id, 1, completed);
		assert_eq!(Jobs::<Test>::get(id).unwrap().voided_in_a_row, 0);
		for round in 2..=3 {
			assert_ok!(Tasks::apply_for_round(RuntimeOrigin::signed(2), id));
			run_to(System::block_number() + P + 1);
			run_to(Jobs::<Test>::get(id).unwrap().deadline);
			assert_eq!(Jobs::<Test>::get(id).unwrap().round, round + 1, "round {round} voided");
		}
		assert_eq!(Jobs::<Test>::get(id).unwrap().status, JobStatus::Active);
		run_to(Jobs::<Test>::get(id).unwrap().deadline);
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.status, job.round), (JobStatus::Finalized, 4));
		assert!(events().contains(&Event::JobAbandoned { job: id, voided: 3, forfeited: 0 }));
		// Only round 1's slice (a tenth of the budget) was spent; the deposit is not forfeited
		// and comes back when the record is reaped, which keeps round 1's model.
		assert_eq!(deposit_held(SUBMITTER), DEPOSIT);
		assert_eq!(Balances::balance(&SUBMITTER), 1_000_000 - 100 - DEPOSIT);
		run_to(System::block_number() + RETENTION);
		assert_ok!(Tasks::reap_job(RuntimeOrigin::signed(7), id));
		assert_eq!(Balances::balance(&SUBMITTER), 1_000_000 - 100);
		assert_eq!(
			ArchivedModels::<Test>::get(id),
			Some(ArchivedModel { model: H256::repeat_byte(9), rounds: 1 })
		);
		assert!(RoundModels::<Test>::iter_prefix(id).next().is_none());
		assert!(SETTLED.with(|s| s.borrow().iter().all(|settled| settled.0 != id)));
	});
}

const DEPOSIT: u128 = 10;
const RETENTION: u64 = 20;

#[test]
fn create_and_cancel_cannot_store_a_job_for_free() {
	test(|| {
		let id = create(1_000);
		assert_noop!(Tasks::reap_job(RuntimeOrigin::signed(7), id), Error::<Test>::JobNotEnded);
		assert_ok!(Tasks::cancel_job(RuntimeOrigin::signed(SUBMITTER), id));
		let ended = System::block_number();
		assert_eq!(EndedAt::<Test>::get(id), Some(ended));
		// The record costs its deposit for as long as it exists: at least the retention.
		assert_eq!(deposit_held(SUBMITTER), DEPOSIT);
		run_to(ended + RETENTION - 1);
		assert_noop!(
			Tasks::reap_job(RuntimeOrigin::signed(7), id),
			Error::<Test>::RetentionNotOver
		);
		run_to(ended + RETENTION);
		// Anyone may reap it; the deposit goes to the submitter.
		assert_ok!(Tasks::reap_job(RuntimeOrigin::signed(7), id));
		assert!(events().contains(&Event::JobReaped {
			job: id,
			deposit: DEPOSIT,
			final_model: None
		}));
		assert_eq!(deposit_held(SUBMITTER), 0);
		assert_eq!(Balances::balance(&SUBMITTER), 1_000_000);
		assert!(Jobs::<Test>::get(id).is_none());
		assert!(EndedAt::<Test>::get(id).is_none());
		assert!(
			ArchivedModels::<Test>::get(id).is_none(),
			"no round completed: nothing to archive"
		);
		assert_noop!(Tasks::reap_job(RuntimeOrigin::signed(7), id), Error::<Test>::UnknownJob);
		assert_noop!(Tasks::reap_job(RuntimeOrigin::none(), id), DispatchError::BadOrigin);
	});
}

#[test]
fn the_longest_overdue_job_is_served_first() {
	test(|| {
		use frame_support::traits::Hooks;
		for _ in 0..3 {
			create(1_000);
		}
		// Job 2 became due first (at block 4) but has waited; at block 6 three jobs are due and
		// two transitions fit in a block: job 2 goes first, then job 0; job 1 waits a block.
		Jobs::<Test>::mutate(2, |job| job.as_mut().unwrap().deadline = 4);
		ActiveJobs::<Test>::mutate(|active| active[2].1 = 4);
		System::set_block_number(1 + P);
		Tasks::on_initialize(1 + P);
		let rounds: Vec<u32> = (0..3).map(|id| Jobs::<Test>::get(id).unwrap().round).collect();
		assert_eq!(rounds, vec![2, 1, 2]);
	});
}

#[test]
fn migration_v0_to_v1_keeps_jobs_and_governed_values() {
	use crate::migrations::v1::{JobV0, MigrateV0ToV1, ParamsV0};
	use codec::Encode;
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
	test(|| {
		// An active job from before: its escrow is held, it has no deposit.
		let id = create(1_000);
		let job = Jobs::<Test>::get(id).unwrap();
		assert_ok!(<Balances as frame_support::traits::fungible::MutateHold<u64>>::release(
			&HoldReason::JobDeposit.into(),
			&SUBMITTER,
			job.deposit,
			frame_support::traits::tokens::Precision::Exact,
		));
		crate::SubmitterJobs::<Test>::remove(SUBMITTER);
		crate::TotalEscrow::<Test>::kill();
		let old_job = JobV0 {
			submitter: job.submitter,
			spec: job.spec.clone(),
			budget: job.budget,
			escrow: job.escrow,
			spent: job.spent,
			status: job.status,
			round: job.round,
			phase: job.phase,
			deadline: job.deadline,
			latest_model: job.latest_model,
			completed_rounds: job.completed_rounds,
			created_at: job.created_at,
		};
		frame_support::storage::unhashed::put_raw(
			&Jobs::<Test>::hashed_key_for(id),
			&old_job.encode(),
		);
		let old_params = ParamsV0 {
			min_budget: 200u128,
			max_rounds: 8,
			max_workers_per_round: 3,
			max_validators_per_update: 2,
			max_shards: 6,
			min_period: 3u64,
			max_period: 90,
			// Out of bounds since version 0 too: reset to the default.
			no_show_slash: Perbill::from_percent(60),
		};
		frame_support::storage::unhashed::put_raw(
			&ProtocolParams::<Test>::hashed_key(),
			&old_params.encode(),
		);
		StorageVersion::new(0).put::<Tasks>();

		MigrateV0ToV1::<Test>::on_runtime_upgrade();
		let job = Jobs::<Test>::get(id).unwrap();
		assert_eq!((job.deposit, job.voided_in_a_row, job.own_voids_in_a_row), (0, 0, 0));
		assert_eq!((job.budget, job.escrow, job.deadline), (1_000, 1_000, 1 + P));
		assert_eq!(crate::SubmitterJobs::<Test>::get(SUBMITTER), 1);
		assert_eq!(crate::TotalEscrow::<Test>::get(), 1_000);
		let params = ProtocolParams::<Test>::get();
		let defaults = Defaults::get();
		assert_eq!((params.min_budget, params.max_rounds, params.max_period), (200, 8, 90));
		assert_eq!(params.no_show_slash, defaults.no_show_slash);
		assert_eq!(params.job_deposit, defaults.job_deposit);
		assert_eq!(Tasks::on_chain_storage_version(), StorageVersion::new(1));
		// The migrated job runs on.
		run_to(1 + P);
		assert_eq!(Jobs::<Test>::get(id).unwrap().round, 2);
	});
}
