//! Unit tests of pallet-validation.

use crate::{
	aggregate_commitment_of, challenge, commitment_of, mock::*, plant_root, ActiveVerifications,
	AggregateVote, Checks, Error, Event, ExposedPlants, Params, ProtocolParams, RoundValidators,
	SlashReason, Stage, Verifications, AGGREGATE_VOTE_WEIGHT,
};
use agora_primitives::{
	Duty, Role, RoundOutcome, RoundVerifier, UpdateRef, Verdict, VerificationMode,
	VerificationRequest, VoidReason, H256,
};
use frame_support::{assert_noop, assert_ok};
use sp_runtime::{DispatchError, Perbill};

const JOB: u64 = 7;
const P: u64 = 5;

fn request(mode: VerificationMode, vpu: u32) -> VerificationRequest<u64> {
	VerificationRequest { mode, validators_per_update: vpu, commit: P, reveal: P, aggregation: P }
}

fn refs(workers: &[u64]) -> Vec<UpdateRef<u64>> {
	workers
		.iter()
		.map(|w| UpdateRef {
			worker: *w,
			checkpoint_root: H256::repeat_byte(*w as u8),
			checkpoints: 10,
		})
		.collect()
}

fn start(mode: VerificationMode, workers: &[u64], vpu: u32) {
	assert_ok!(<Validation as RoundVerifier<u64, u64>>::start_verification(
		JOB,
		1,
		request(mode, vpu),
		refs(workers)
	));
}

fn assigned(worker: u64) -> Vec<u64> {
	Checks::<Test>::get(JOB, worker).unwrap().assignments.iter().map(|a| a.validator).collect()
}

fn salt(v: u64) -> [u8; 32] {
	[v as u8; 32]
}

fn commit(v: u64, worker: u64, verdict: Verdict, score: u32) {
	let c = commitment_of(JOB, &worker, verdict, Perbill::from_percent(score), &salt(v), &v);
	assert_ok!(Validation::commit_verdict(RuntimeOrigin::signed(v), JOB, worker, c));
}

fn reveal(v: u64, worker: u64, verdict: Verdict, score: u32) {
	assert_ok!(Validation::reveal_verdict(
		RuntimeOrigin::signed(v),
		JOB,
		worker,
		verdict,
		Perbill::from_percent(score),
		salt(v)
	));
}

fn stage() -> Stage {
	Verifications::<Test>::get(JOB).unwrap().stage
}

fn next_block() {
	run_to(System::block_number() + 1);
}

/// Run to the end of the current stage (the reveal stage always lasts its whole period).
fn end_stage() {
	run_to(Verifications::<Test>::get(JOB).unwrap().deadline);
}

fn outcomes() -> Vec<(u64, u32, RoundOutcome<u64>)> {
	OUTCOMES.with(|o| o.borrow().clone())
}

/// Close the current stage: at its deadline, or at the next block when it closed early.
fn close_stage() {
	let deadline = Verifications::<Test>::get(JOB).unwrap().deadline;
	if deadline > System::block_number() {
		run_to(deadline);
	} else {
		next_block();
	}
}

fn aggregate_salt(who: u64) -> [u8; 32] {
	[who as u8 ^ 0x5a; 32]
}

fn aggregate_commitment(who: u64, aggregate: H256) -> H256 {
	aggregate_commitment_of(JOB, 1, &aggregate, &aggregate_salt(who), &who)
}

/// The aggregator `who` commits to `aggregate`.
fn post(who: u64, aggregate: H256) {
	let c = aggregate_commitment(who, aggregate);
	assert_ok!(Validation::post_aggregate(RuntimeOrigin::signed(who), JOB, 1, c));
}

/// Validator `who` commits to `aggregate`.
fn vote(who: u64, aggregate: H256) {
	let c = aggregate_commitment(who, aggregate);
	assert_ok!(Validation::vote_aggregate(RuntimeOrigin::signed(who), JOB, 1, c));
}

/// Close the aggregate commitments, reveal every `(who, aggregate)` and run to the tally.
fn reveal_aggregates(reveals: &[(u64, H256)]) {
	close_stage();
	reveal_aggregates_now(reveals);
}

/// Everyone assigned commits and reveals `verdict(worker)` with `score`.
fn all_vote(workers: &[u64], verdict: impl Fn(u64, u64) -> Verdict, score: u32) {
	for w in workers {
		for v in assigned(*w) {
			commit(v, *w, verdict(v, *w), score);
		}
	}
	next_block();
	assert_eq!(stage(), Stage::Reveal);
	for w in workers {
		for v in assigned(*w) {
			reveal(v, *w, verdict(v, *w), score);
		}
	}
	end_stage();
}

#[test]
fn assignment_excludes_own_update_and_draws_segments() {
	test(|| {
		set_stake(1, Role::Validator, 500);
		start(VerificationMode::Replay, &[1, 2, 3], 3);
		for w in [1u64, 2, 3] {
			let a = assigned(w);
			assert_eq!(a.len(), 3);
			assert!(!a.contains(&w));
			// A run of 10 segments is short: every segment is challenged.
			let c = Checks::<Test>::get(JOB, w).unwrap();
			assert_eq!(c.segments.clone().into_inner(), (0..10).collect::<Vec<u32>>());
		}
		assert_eq!(stage(), Stage::Commit);
		assert!(events().contains(&Event::CommitStarted { job: JOB, round: 1, deadline: 1 + P }));
		assert!(events().iter().any(|e| matches!(e, Event::ValidatorsAssigned { worker: 1, .. })));
	});
}

#[test]
fn start_failures() {
	test(|| {
		remove_role(Role::Validator);
		assert_noop!(
			<Validation as RoundVerifier<u64, u64>>::start_verification(
				JOB,
				1,
				request(VerificationMode::Replay, 2),
				refs(&[1])
			),
			Error::<Test>::NoValidators
		);
		// The only validator is the worker itself.
		set_stake(1, Role::Validator, 500);
		assert_noop!(
			<Validation as RoundVerifier<u64, u64>>::start_verification(
				JOB,
				1,
				request(VerificationMode::Replay, 2),
				refs(&[1])
			),
			Error::<Test>::NoValidators
		);
		set_stake(11, Role::Validator, 500);
		start(VerificationMode::Replay, &[1], 2);
		assert_noop!(
			<Validation as RoundVerifier<u64, u64>>::start_verification(
				JOB,
				1,
				request(VerificationMode::Replay, 2),
				refs(&[1])
			),
			Error::<Test>::AlreadyVerifying
		);
	});
}

#[test]
fn commit_failures() {
	test(|| {
		start(VerificationMode::Replay, &[1], 2);
		let v = assigned(1)[0];
		let not = [11u64, 12, 13].into_iter().find(|x| !assigned(1).contains(x)).unwrap();
		let c = H256::repeat_byte(1);
		assert_noop!(
			Validation::commit_verdict(RuntimeOrigin::signed(v), 99, 1, c),
			Error::<Test>::UnknownVerification
		);
		assert_noop!(
			Validation::commit_verdict(RuntimeOrigin::signed(not), JOB, 1, c),
			Error::<Test>::NotAssigned
		);
		assert_noop!(
			Validation::commit_verdict(RuntimeOrigin::signed(v), JOB, 2, c),
			Error::<Test>::NotAssigned
		);
		assert_ok!(Validation::commit_verdict(RuntimeOrigin::signed(v), JOB, 1, c));
		assert_noop!(
			Validation::commit_verdict(RuntimeOrigin::signed(v), JOB, 1, c),
			Error::<Test>::AlreadyCommitted
		);
		assert_noop!(
			Validation::reveal_verdict(
				RuntimeOrigin::signed(v),
				JOB,
				1,
				Verdict::Valid,
				Perbill::one(),
				salt(v)
			),
			Error::<Test>::WrongStage
		);
		System::set_block_number(1 + P + 1);
		let v2 = assigned(1)[1];
		assert_noop!(
			Validation::commit_verdict(RuntimeOrigin::signed(v2), JOB, 1, c),
			Error::<Test>::PhaseClosed
		);
		assert!(events().contains(&Event::VerdictCommitted { job: JOB, worker: 1, validator: v }));
	});
}

#[test]
fn reveal_failures() {
	test(|| {
		start(VerificationMode::Replay, &[1], 3);
		let a = assigned(1);
		commit(a[0], 1, Verdict::Valid, 50);
		commit(a[1], 1, Verdict::Valid, 50);
		run_to(1 + P);
		assert_eq!(stage(), Stage::Reveal);
		assert_noop!(
			Validation::reveal_verdict(
				RuntimeOrigin::signed(a[2]),
				JOB,
				1,
				Verdict::Valid,
				Perbill::from_percent(50),
				salt(a[2])
			),
			Error::<Test>::NotCommitted
		);
		assert_noop!(
			Validation::reveal_verdict(
				RuntimeOrigin::signed(a[0]),
				JOB,
				1,
				Verdict::Invalid,
				Perbill::from_percent(50),
				salt(a[0])
			),
			Error::<Test>::CommitmentMismatch
		);
		// A copied commitment does not reveal for someone else.
		assert_noop!(
			Validation::reveal_verdict(
				RuntimeOrigin::signed(a[1]),
				JOB,
				1,
				Verdict::Valid,
				Perbill::from_percent(50),
				salt(a[0])
			),
			Error::<Test>::CommitmentMismatch
		);
		reveal(a[0], 1, Verdict::Valid, 50);
		assert_noop!(
			Validation::reveal_verdict(
				RuntimeOrigin::signed(a[0]),
				JOB,
				1,
				Verdict::Valid,
				Perbill::from_percent(50),
				salt(a[0])
			),
			Error::<Test>::AlreadyRevealed
		);
		System::set_block_number(1 + P + P + 1);
		assert_noop!(
			Validation::reveal_verdict(
				RuntimeOrigin::signed(a[1]),
				JOB,
				1,
				Verdict::Valid,
				Perbill::from_percent(50),
				salt(a[1])
			),
			Error::<Test>::LateReveal
		);
	});
}

#[test]
fn honest_round_completes() {
	test(|| {
		start(VerificationMode::Replay, &[1, 2], 3);
		all_vote(&[1, 2], |_, _| Verdict::Valid, 80);
		assert_eq!(stage(), Stage::Aggregation);
		let v = Verifications::<Test>::get(JOB).unwrap();
		let agg = v.aggregator.unwrap();
		assert!([1u64, 2].contains(&agg));
		assert_eq!(v.accepted.len(), 2);
		assert_noop!(
			Validation::post_aggregate(RuntimeOrigin::signed(11), JOB, 1, H256::zero()),
			Error::<Test>::NotAggregator
		);
		assert_noop!(
			Validation::post_aggregate(RuntimeOrigin::signed(agg), JOB, 2, H256::zero()),
			Error::<Test>::WrongRound
		);
		let model = H256::repeat_byte(0xaa);
		post(agg, model);
		assert_noop!(
			Validation::post_aggregate(RuntimeOrigin::signed(agg), JOB, 1, H256::zero()),
			Error::<Test>::AlreadyPosted
		);
		assert_noop!(
			Validation::vote_aggregate(RuntimeOrigin::signed(5), JOB, 1, H256::zero()),
			Error::<Test>::NotAssigned
		);
		for v in [11u64, 12, 13] {
			vote(v, model);
		}
		assert_noop!(
			Validation::vote_aggregate(RuntimeOrigin::signed(11), JOB, 1, H256::zero()),
			Error::<Test>::AlreadyVoted
		);
		reveal_aggregates(&[(agg, model), (11, model), (12, model), (13, model)]);
		assert!(Verifications::<Test>::get(JOB).is_none());
		assert!(ActiveVerifications::<Test>::get().is_empty());
		assert!(RoundValidators::<Test>::get(JOB).is_empty());
		let out = outcomes();
		assert_eq!(out.len(), 1);
		let RoundOutcome::Completed { model: m, workers, validators } = &out[0].2 else {
			panic!("completed")
		};
		assert_eq!(*m, model);
		assert_eq!(workers, &vec![(1, Perbill::from_percent(80)), (2, Perbill::from_percent(80))]);
		// Each validator agreed perfectly on two updates and voted for the aggregate.
		let mut vals = validators.clone();
		vals.sort();
		let weight = 2_000_000_000 + AGGREGATE_VOTE_WEIGHT;
		assert_eq!(vals, vec![(11, weight), (12, weight), (13, weight)]);
		assert!(slashes().is_empty());
		assert!(events().contains(&Event::AggregateAccepted {
			job: JOB,
			round: 1,
			aggregate: model
		}));
	});
}

#[test]
fn cheating_worker_non_revealer_and_contradictor_are_slashed() {
	test(|| {
		start(VerificationMode::Replay, &[1, 2], 3);
		// Worker 2 cheats: validators 12 and 13 (5000 stake) say invalid, 11 says valid.
		for w in [1u64, 2] {
			for v in assigned(w) {
				let verdict = if w == 2 && v != 11 { Verdict::Invalid } else { Verdict::Valid };
				commit(v, w, verdict, 60);
			}
		}
		next_block();
		for w in [1u64, 2] {
			for v in assigned(w) {
				// Validator 13 never reveals for worker 1.
				if w == 1 && v == 13 {
					continue;
				}
				let verdict = if w == 2 && v != 11 { Verdict::Invalid } else { Verdict::Valid };
				reveal(v, w, verdict, 60);
			}
		}
		run_to(System::block_number() + P + 1);
		let s = slashes();
		assert!(s.contains(&(13, Role::Validator, Perbill::from_percent(2), 60)));
		assert!(s.contains(&(11, Role::Validator, Perbill::from_percent(10), 100)));
		assert!(s.contains(&(2, Role::Worker, Perbill::from_percent(20), 200)));
		assert_eq!(stake_of(2, Role::Worker), 800);
		assert!(events().contains(&Event::Slashed {
			job: JOB,
			who: 2,
			reason: SlashReason::FailedReplay,
			amount: 200
		}));
		assert!(events().contains(&Event::UpdateVerified {
			job: JOB,
			round: 1,
			worker: 2,
			verdict: Verdict::Invalid,
			score: Perbill::from_percent(60)
		}));
		let v = Verifications::<Test>::get(JOB).unwrap();
		assert_eq!(v.accepted.into_inner(), vec![(1, Perbill::from_percent(60))]);
		assert_eq!(v.aggregator, Some(1));
	});
}

#[test]
fn evaluation_mode_does_not_slash_disagreement() {
	test(|| {
		start(VerificationMode::Evaluation, &[1], 3);
		all_vote(&[1], |v, _| if v == 11 { Verdict::Valid } else { Verdict::Invalid }, 10);
		assert!(slashes().is_empty());
		assert_eq!(outcomes(), vec![(JOB, 1, RoundOutcome::Voided(VoidReason::NoneAccepted))]);
	});
}

#[test]
fn nobody_reveals_voids_round() {
	test(|| {
		start(VerificationMode::Replay, &[1], 2);
		run_to(1 + P);
		assert_eq!(stage(), Stage::Reveal);
		// Nobody committed: the reveal stage closes at once.
		next_block();
		assert!(events().contains(&Event::UpdateUnverified { job: JOB, round: 1, worker: 1 }));
		assert_eq!(outcomes(), vec![(JOB, 1, RoundOutcome::Voided(VoidReason::NoneAccepted))]);
		assert_eq!(slashes().len(), 2);
		assert!(slashes()
			.iter()
			.all(|(_, r, f, _)| *r == Role::Validator && *f == Perbill::from_percent(2)));
	});
}

#[test]
fn wrong_aggregate_is_slashed_and_redone_then_voided() {
	test(|| {
		start(VerificationMode::Replay, &[1, 2], 3);
		all_vote(&[1, 2], |_, _| Verdict::Valid, 70);
		let first = Verifications::<Test>::get(JOB).unwrap().aggregator.unwrap();
		post(first, H256::repeat_byte(1));
		for v in [11u64, 12, 13] {
			vote(v, H256::repeat_byte(2));
		}
		let mut reveals: Vec<(u64, H256)> =
			[11u64, 12, 13].iter().map(|v| (*v, H256::repeat_byte(2))).collect();
		reveals.push((first, H256::repeat_byte(1)));
		reveal_aggregates(&reveals);
		assert!(slashes().contains(&(first, Role::Worker, Perbill::from_percent(10), 100)));
		assert!(events().contains(&Event::AggregateRejected {
			job: JOB,
			round: 1,
			aggregator: first,
			slashed: true
		}));
		let second = Verifications::<Test>::get(JOB).unwrap().aggregator.unwrap();
		assert_ne!(first, second);
		assert_eq!(
			Validation::validator_duties(&second),
			vec![Duty::Aggregate { job: JOB, round: 1, deadline: System::block_number() + P }]
		);
		// The second aggregator never posts: slashed, and no attempts are left (max 2).
		run_to(System::block_number() + P);
		next_block();
		assert!(slashes().contains(&(second, Role::Worker, Perbill::from_percent(10), 100)));
		assert_eq!(outcomes(), vec![(JOB, 1, RoundOutcome::Voided(VoidReason::AggregationFailed))]);
	});
}

#[test]
fn posted_but_unvoted_aggregate_retries_without_slash() {
	test(|| {
		start(VerificationMode::Replay, &[1, 2], 2);
		all_vote(&[1, 2], |_, _| Verdict::Valid, 70);
		let first = Verifications::<Test>::get(JOB).unwrap().aggregator.unwrap();
		post(first, H256::repeat_byte(1));
		reveal_aggregates(&[(first, H256::repeat_byte(1))]);
		assert!(events().contains(&Event::AggregateRejected {
			job: JOB,
			round: 1,
			aggregator: first,
			slashed: false
		}));
		assert!(slashes().is_empty());
	});
}

#[test]
fn validator_duties_follow_stages() {
	test(|| {
		start(VerificationMode::Replay, &[1], 1);
		let v = assigned(1)[0];
		assert!(matches!(Validation::validator_duties(&v)[..], [Duty::Commit { worker: 1, .. }]));
		commit(v, 1, Verdict::Valid, 90);
		assert!(Validation::validator_duties(&v).is_empty());
		next_block();
		assert!(matches!(Validation::validator_duties(&v)[..], [Duty::Reveal { worker: 1, .. }]));
		reveal(v, 1, Verdict::Valid, 90);
		assert!(Validation::validator_duties(&v).is_empty());
		end_stage();
		assert!(matches!(Validation::validator_duties(&v)[..], [Duty::VoteAggregate { .. }]));
		assert!(matches!(Validation::validator_duties(&1)[..], [Duty::Aggregate { .. }]));
		post(1, H256::repeat_byte(1));
		vote(v, H256::repeat_byte(1));
		assert!(Validation::validator_duties(&v).is_empty());
		close_stage();
		assert!(matches!(Validation::validator_duties(&v)[..], [Duty::RevealAggregate { .. }]));
		assert!(matches!(Validation::validator_duties(&1)[..], [Duty::RevealAggregate { .. }]));
	});
}

#[test]
fn params_are_governed_and_bounded() {
	test(|| {
		let p = ProtocolParams::<Test>::get();
		assert_noop!(Validation::set_params(RuntimeOrigin::signed(1), p), DispatchError::BadOrigin);
		for bad in [
			Params { detectable_fraction: Perbill::zero(), ..p },
			// 1 % at 99 % needs 459 challenges, more than MaxSegments.
			Params { detectable_fraction: Perbill::from_percent(1), ..p },
			Params { detection_probability: Perbill::from_percent(50), ..p },
			Params { detection_probability: Perbill::one(), ..p },
			Params { score_tolerance: Perbill::zero(), ..p },
			Params { no_reveal_slash: Perbill::from_percent(51), ..p },
			Params { contradiction_slash: Perbill::from_percent(51), ..p },
			Params { fraud_slash: Perbill::from_percent(4), ..p },
			Params { unavailable_slash: Perbill::from_percent(21), ..p },
			Params { min_unavailable_reports: 1, ..p },
			Params { min_unavailable_reports: 5, ..p },
			Params { aggregator_slash: Perbill::from_percent(51), ..p },
			Params { max_aggregation_attempts: 0, ..p },
			Params { max_aggregation_attempts: 6, ..p },
		] {
			assert_noop!(
				Validation::set_params(RuntimeOrigin::root(), bad),
				Error::<Test>::ParamOutOfBounds
			);
		}
		let good = Params { fraud_slash: Perbill::one(), ..p };
		assert_ok!(Validation::set_params(RuntimeOrigin::root(), good));
		assert_eq!(ProtocolParams::<Test>::get(), good);
		assert!(events().contains(&Event::ParamsUpdated { params: good }));
	});
}

#[test]
fn verification_capacity_is_bounded() {
	test(|| {
		let too_many: Vec<u64> = (1..=5).collect();
		for w in 4..=5 {
			set_stake(w, Role::Worker, 1_000);
		}
		assert_noop!(
			<Validation as RoundVerifier<u64, u64>>::start_verification(
				JOB,
				1,
				request(VerificationMode::Replay, 2),
				refs(&too_many)
			),
			Error::<Test>::TooManyUpdates
		);
		for job in 0..4 {
			assert_ok!(<Validation as RoundVerifier<u64, u64>>::start_verification(
				job,
				1,
				request(VerificationMode::Replay, 2),
				refs(&[1])
			));
		}
		assert_noop!(
			<Validation as RoundVerifier<u64, u64>>::start_verification(
				JOB,
				1,
				request(VerificationMode::Replay, 2),
				refs(&[1])
			),
			Error::<Test>::TooManyVerifications
		);
	});
}

fn refs_of(workers: &[u64], checkpoints: u32) -> Vec<UpdateRef<u64>> {
	refs(workers).into_iter().map(|r| UpdateRef { checkpoints, ..r }).collect()
}

#[test]
fn challenge_always_covers_the_last_segment_and_grows_with_the_run() {
	test(|| {
		assert_ok!(<Validation as RoundVerifier<u64, u64>>::start_verification(
			JOB,
			1,
			request(VerificationMode::Replay, 2),
			refs_of(&[1, 2], 1_000)
		));
		let p = ProtocolParams::<Test>::get();
		let wanted =
			1 + challenge::challenges_needed(999, p.detectable_fraction, p.detection_probability);
		assert_eq!(wanted, 44);
		for w in [1u64, 2] {
			let c = Checks::<Test>::get(JOB, w).unwrap();
			assert_eq!(c.segments.len() as u32, wanted);
			assert_eq!(c.segments.last(), Some(&999));
			assert!(c.segments.windows(2).all(|pair| pair[0] < pair[1]));
		}
	});
}

/// Worker 1's update judged by validators with the given verdicts (assigned in order).
fn judge_worker_1(vpu: u32, verdicts: &[Verdict]) -> Vec<u64> {
	judge_worker_1_in(VerificationMode::Replay, vpu, verdicts)
}

fn judge_worker_1_in(mode: VerificationMode, vpu: u32, verdicts: &[Verdict]) -> Vec<u64> {
	start(mode, &[1], vpu);
	let a = assigned(1);
	for (v, verdict) in a.iter().zip(verdicts) {
		commit(*v, 1, *verdict, 70);
	}
	next_block();
	for (v, verdict) in a.iter().zip(verdicts) {
		reveal(*v, 1, *verdict, 70);
	}
	end_stage();
	a
}

#[test]
fn tie_slashes_nobody() {
	test(|| {
		for v in [11u64, 12, 13] {
			set_stake(v, Role::Validator, 1_000);
		}
		judge_worker_1(2, &[Verdict::Valid, Verdict::Invalid]);
		assert!(slashes().is_empty(), "a tie slashes neither the worker nor a validator");
		assert!(events().contains(&Event::UpdateUndecided { job: JOB, round: 1, worker: 1 }));
		assert_eq!(outcomes(), vec![(JOB, 1, RoundOutcome::Voided(VoidReason::NoneAccepted))]);
	});
}

#[test]
fn unavailable_reported_by_a_minority_slashes_nobody() {
	test(|| {
		for v in [11u64, 12, 13] {
			set_stake(v, Role::Validator, 1_000);
		}
		let a = judge_worker_1(3, &[Verdict::Unavailable, Verdict::Valid, Verdict::Valid]);
		assert!(slashes().is_empty(), "a failed fetch is not a contradiction");
		assert_eq!(stage(), Stage::Aggregation);
		let weights: Vec<(u64, u128)> =
			RoundValidators::<Test>::get(JOB).iter().map(|r| (r.who, r.weight)).collect();
		// The validator that could not check earns nothing for this update.
		assert!(weights.contains(&(a[0], 0)));
		assert!(weights.contains(&(a[1], 1_000_000_000)));
	});
}

#[test]
fn evidence_withheld_from_a_majority_slashes_the_worker_only() {
	test(|| {
		for v in [11u64, 12, 13] {
			set_stake(v, Role::Validator, 1_000);
		}
		let a = judge_worker_1(3, &[Verdict::Valid, Verdict::Unavailable, Verdict::Unavailable]);
		assert_eq!(slashes(), vec![(1, Role::Worker, Perbill::from_percent(5), 50)]);
		assert!(events().contains(&Event::Slashed {
			job: JOB,
			who: 1,
			reason: SlashReason::EvidenceUnavailable,
			amount: 50
		}));
		// The validator the worker served is not slashed either.
		assert!(!slashes().iter().any(|(who, ..)| *who == a[0]));
		assert_eq!(outcomes(), vec![(JOB, 1, RoundOutcome::Voided(VoidReason::NoneAccepted))]);
	});
}

#[test]
fn one_unavailable_report_never_slashes() {
	test(|| {
		judge_worker_1(1, &[Verdict::Unavailable]);
		assert!(slashes().is_empty());
		assert_eq!(outcomes(), vec![(JOB, 1, RoundOutcome::Voided(VoidReason::NoneAccepted))]);
	});
}

#[test]
fn held_out_data_withheld_by_the_submitter_slashes_and_pays_nobody() {
	test(|| {
		for v in [11u64, 12, 13] {
			set_stake(v, Role::Validator, 1_000);
		}
		// A job on private data is judged by its submitter's held-out data alone: without it,
		// the validators that have the worker's evidence report that the data is missing.
		let missing = Verdict::HeldOutUnavailable;
		judge_worker_1_in(VerificationMode::Evaluation, 3, &[missing, missing, missing]);
		assert!(slashes().is_empty(), "neither the worker nor a validator is at fault");
		assert!(events().contains(&Event::UpdateVerified {
			job: JOB,
			round: 1,
			worker: 1,
			verdict: missing,
			score: Perbill::from_percent(70)
		}));
		// Nobody judged anything, and nobody is paid for it (`consensus::agreement`): the
		// round is void by the submitter's doing (which costs it its deposit when it
		// goes on: pallet-tasks).
		let void = RoundOutcome::Voided(VoidReason::HeldOutUnavailable);
		assert_eq!(outcomes(), vec![(JOB, 1, void)]);
	});
}

#[test]
fn a_worker_withholding_its_evidence_is_not_excused_by_a_report_of_missing_held_out_data() {
	test(|| {
		for v in [11u64, 12, 13] {
			set_stake(v, Role::Validator, 1_000);
		}
		let a = judge_worker_1_in(
			VerificationMode::Evaluation,
			3,
			&[Verdict::HeldOutUnavailable, Verdict::Unavailable, Verdict::Unavailable],
		);
		assert_eq!(slashes(), vec![(1, Role::Worker, Perbill::from_percent(5), 50)]);
		assert!(!slashes().iter().any(|(who, ..)| a.contains(who)));
	});
}

#[test]
fn missing_held_out_data_is_no_verdict_on_a_replay() {
	test(|| {
		start(VerificationMode::Replay, &[1], 1);
		let v = assigned(1)[0];
		commit(v, 1, Verdict::HeldOutUnavailable, 0);
		next_block();
		// A replay is judged on the worker's evidence, with or without the held-out data.
		assert_noop!(
			Validation::reveal_verdict(
				RuntimeOrigin::signed(v),
				JOB,
				1,
				Verdict::HeldOutUnavailable,
				Perbill::zero(),
				salt(v)
			),
			Error::<Test>::VerdictNotInMode
		);
	});
}

/// Workers 1 and 2, worker 1 also a validator with every validator on every update; worker 2
/// fails replay, so worker 1 is the aggregator and one of the round's validators.
fn aggregator_who_also_validates() {
	set_stake(1, Role::Validator, 1_000);
	start(VerificationMode::Replay, &[1, 2], 4);
	all_vote(&[1, 2], |_, w| if w == 2 { Verdict::Invalid } else { Verdict::Valid }, 70);
	let v = Verifications::<Test>::get(JOB).unwrap();
	assert_eq!(v.aggregator, Some(1));
	assert!(RoundValidators::<Test>::get(JOB).iter().any(|r| r.who == 1));
}

/// The attempt of `aggregator` ended with nothing accepted and nobody slashed.
fn assert_retried_without_slash(aggregator: u64) {
	assert!(!events().iter().any(|e| matches!(e, Event::AggregateAccepted { .. })));
	assert!(events().contains(&Event::AggregateRejected {
		job: JOB,
		round: 1,
		aggregator,
		slashed: false
	}));
}

#[test]
fn aggregator_cannot_accept_its_own_aggregate() {
	test(|| {
		aggregator_who_also_validates();
		let wrong = H256::repeat_byte(9);
		post(1, wrong);
		assert_noop!(
			Validation::vote_aggregate(
				RuntimeOrigin::signed(1),
				JOB,
				1,
				aggregate_commitment(1, wrong)
			),
			Error::<Test>::AggregatorVote
		);
		reveal_aggregates(&[(1, wrong)]);
		assert_retried_without_slash(1);
	});
}

#[test]
fn lone_wrong_vote_cannot_slash_an_honest_aggregator() {
	test(|| {
		aggregator_who_also_validates();
		let slashed_before = slashes().len();
		let model = H256::repeat_byte(1);
		post(1, model);
		// Validator 11 (1,000 of the 6,000 stake besides the aggregator) votes a wrong hash;
		// the others stay silent.
		vote(11, H256::repeat_byte(2));
		reveal_aggregates(&[(1, model), (11, H256::repeat_byte(2))]);
		assert_eq!(slashes().len(), slashed_before, "no aggregator slash");
		assert_retried_without_slash(1);
	});
}

/// Workers 1 and 2 accepted, validators 11, 12, 13 (stakes 1,000, 2,000, 3,000) on every
/// update; returns the aggregator.
fn aggregation_of_two_honest_updates() -> u64 {
	start(VerificationMode::Replay, &[1, 2], 3);
	all_vote(&[1, 2], |_, _| Verdict::Valid, 70);
	assert_eq!(stage(), Stage::Aggregation);
	Verifications::<Test>::get(JOB).unwrap().aggregator.unwrap()
}

#[test]
fn a_lazy_voter_cannot_copy_the_aggregate() {
	test(|| {
		let agg = aggregation_of_two_honest_updates();
		let model = H256::repeat_byte(0xaa);
		post(agg, model);
		// While votes are open the chain holds only a commitment bound to the aggregator: a
		// validator that copies it cannot reveal it as its own.
		let Some(AggregateVote::Committed(theirs)) =
			Verifications::<Test>::get(JOB).unwrap().posted
		else {
			panic!("the aggregate is hidden while votes are open")
		};
		assert!(events().iter().all(|e| !matches!(e, Event::AggregateRevealed { .. })));
		assert_ok!(Validation::vote_aggregate(RuntimeOrigin::signed(11), JOB, 1, theirs));
		vote(12, model);
		vote(13, model);
		close_stage();
		assert_noop!(
			Validation::reveal_aggregate(
				RuntimeOrigin::signed(11),
				JOB,
				1,
				model,
				aggregate_salt(agg)
			),
			Error::<Test>::CommitmentMismatch
		);
		reveal_aggregates_now(&[(agg, model), (12, model), (13, model)]);
		// The copier earns nothing for the vote and pays the unrevealed vote's slash.
		assert!(slashes().contains(&(11, Role::Validator, Perbill::from_percent(2), 20)));
		assert!(events().contains(&Event::Slashed {
			job: JOB,
			who: 11,
			reason: SlashReason::AggregateNoReveal,
			amount: 20
		}));
		let RoundOutcome::Completed { validators, .. } = &outcomes()[0].2 else {
			panic!("completed")
		};
		assert!(validators.contains(&(11, 2_000_000_000)));
		assert!(validators.contains(&(12, 2_000_000_000 + AGGREGATE_VOTE_WEIGHT)));
	});
}

/// Reveal in the current aggregate reveal stage and run to the tally.
fn reveal_aggregates_now(reveals: &[(u64, H256)]) {
	assert_eq!(stage(), Stage::AggregateReveal);
	for (who, aggregate) in reveals {
		assert_ok!(Validation::reveal_aggregate(
			RuntimeOrigin::signed(*who),
			JOB,
			1,
			*aggregate,
			aggregate_salt(*who)
		));
	}
	close_stage();
}

#[test]
fn voters_for_the_accepted_aggregate_earn_and_its_opponents_are_slashed() {
	test(|| {
		let agg = aggregation_of_two_honest_updates();
		let (model, wrong) = (H256::repeat_byte(0xaa), H256::repeat_byte(0xbb));
		post(agg, model);
		vote(11, wrong);
		vote(12, model);
		vote(13, model);
		reveal_aggregates(&[(agg, model), (11, wrong), (12, model), (13, model)]);
		assert!(events().contains(&Event::AggregateAccepted {
			job: JOB,
			round: 1,
			aggregate: model
		}));
		assert_eq!(slashes(), vec![(11, Role::Validator, Perbill::from_percent(10), 100)]);
		assert!(events().contains(&Event::Slashed {
			job: JOB,
			who: 11,
			reason: SlashReason::AggregateContradiction,
			amount: 100
		}));
		let RoundOutcome::Completed { validators, .. } = &outcomes()[0].2 else {
			panic!("completed")
		};
		let mut vals = validators.clone();
		vals.sort();
		let voted = 2_000_000_000 + AGGREGATE_VOTE_WEIGHT;
		assert_eq!(vals, vec![(11, 2_000_000_000), (12, voted), (13, voted)]);
	});
}

#[test]
fn backers_of_a_rejected_aggregate_are_slashed_with_the_aggregator() {
	test(|| {
		let agg = aggregation_of_two_honest_updates();
		let (wrong, model) = (H256::repeat_byte(0xbb), H256::repeat_byte(0xaa));
		post(agg, wrong);
		// Validator 11 backs the aggregator; 12 and 13 (5,000 of 6,000) recomputed otherwise.
		vote(11, wrong);
		vote(12, model);
		vote(13, model);
		reveal_aggregates(&[(agg, wrong), (11, wrong), (12, model), (13, model)]);
		assert!(events().contains(&Event::AggregateRejected {
			job: JOB,
			round: 1,
			aggregator: agg,
			slashed: true
		}));
		let slashed = slashes();
		assert_eq!(slashed.len(), 2);
		assert!(slashed.contains(&(agg, Role::Worker, Perbill::from_percent(10), 100)));
		assert!(slashed.contains(&(11, Role::Validator, Perbill::from_percent(10), 100)));
		// The next attempt starts with fresh votes and the verdicts' reward weight kept.
		assert_eq!(stage(), Stage::Aggregation);
		assert!(RoundValidators::<Test>::get(JOB)
			.iter()
			.all(|r| r.vote.is_none() && r.weight == 2_000_000_000));
	});
}

#[test]
fn aggregate_reveal_failures() {
	test(|| {
		let agg = aggregation_of_two_honest_updates();
		let model = H256::repeat_byte(0xaa);
		let reveal = |who: u64, aggregate: H256, salt: [u8; 32]| {
			Validation::reveal_aggregate(RuntimeOrigin::signed(who), JOB, 1, aggregate, salt)
		};
		post(agg, model);
		vote(12, model);
		vote(13, model);
		assert_noop!(reveal(12, model, aggregate_salt(12)), Error::<Test>::WrongStage);
		run_to(System::block_number() + P);
		assert_eq!(stage(), Stage::AggregateReveal);
		assert_noop!(
			Validation::vote_aggregate(RuntimeOrigin::signed(11), JOB, 1, H256::zero()),
			Error::<Test>::WrongStage
		);
		assert_noop!(reveal(11, model, aggregate_salt(11)), Error::<Test>::NotCommitted);
		assert_noop!(reveal(5, model, aggregate_salt(5)), Error::<Test>::NotAssigned);
		assert_noop!(reveal(12, model, aggregate_salt(13)), Error::<Test>::CommitmentMismatch);
		assert_noop!(
			Validation::reveal_aggregate(
				RuntimeOrigin::signed(12),
				JOB,
				2,
				model,
				aggregate_salt(12)
			),
			Error::<Test>::WrongRound
		);
		assert_ok!(reveal(12, model, aggregate_salt(12)));
		assert_noop!(reveal(12, model, aggregate_salt(12)), Error::<Test>::AlreadyRevealed);
		assert_ok!(reveal(agg, model, aggregate_salt(agg)));
		assert_ok!(reveal(13, model, aggregate_salt(13)));
		// Everyone who committed revealed: the tally runs at the next block, and two of the
		// three validators voted (5,000 of 6,000 stake): accepted.
		close_stage();
		assert!(events().contains(&Event::AggregateAccepted {
			job: JOB,
			round: 1,
			aggregate: model
		}));
	});
}

#[test]
fn migration_v1_to_v2_keeps_a_vote_in_progress() {
	use crate::migrations::v2::{MigrateV1ToV2, RoundValidatorV1, VerificationV1};
	use codec::Encode;
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
	test(|| {
		let agg = aggregation_of_two_honest_updates();
		let model = H256::repeat_byte(0xaa);
		// Rewrite the attempt as version 1 stored it: plain hashes, posted and voted.
		let v = Verifications::<Test>::get(JOB).unwrap();
		let old = VerificationV1 {
			round: v.round,
			mode: v.mode,
			stage: v.stage,
			deadline: v.deadline,
			reveal_period: v.reveal_period,
			aggregation_period: v.aggregation_period,
			workers: v.workers.to_vec(),
			pending: 0,
			accepted: v.accepted.to_vec(),
			aggregator: v.aggregator,
			tried: v.tried.to_vec(),
			posted: Some(model),
		};
		frame_support::storage::unhashed::put_raw(
			&Verifications::<Test>::hashed_key_for(JOB),
			&old.encode(),
		);
		let voters: Vec<RoundValidatorV1<u64>> = RoundValidators::<Test>::get(JOB)
			.into_iter()
			.map(|r| RoundValidatorV1 {
				who: r.who,
				stake: r.stake,
				weight: r.weight,
				vote: Some(model),
			})
			.collect();
		frame_support::storage::unhashed::put_raw(
			&RoundValidators::<Test>::hashed_key_for(JOB),
			&voters.encode(),
		);
		StorageVersion::new(1).put::<Validation>();
		MigrateV1ToV2::<Test>::on_runtime_upgrade();
		assert_eq!(Validation::on_chain_storage_version(), StorageVersion::new(2));
		assert_eq!(
			Verifications::<Test>::get(JOB).unwrap().posted,
			Some(AggregateVote::Revealed(model))
		);
		assert!(RoundValidators::<Test>::get(JOB)
			.iter()
			.all(|r| r.vote == Some(AggregateVote::Revealed(model)) && !r.forfeited));
		// The attempt runs on: commitments close with nothing to reveal, the tally accepts.
		close_stage();
		close_stage();
		assert!(events().contains(&Event::AggregateAccepted {
			job: JOB,
			round: 1,
			aggregate: model
		}));
		assert!(slashes().is_empty());
		let _ = agg;
	});
}

#[test]
fn migration_v0_to_v1_keeps_governed_values() {
	use crate::migrations::v1::{MigrateV0ToV1, ParamsV0};
	use codec::Encode;
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
	test(|| {
		StorageVersion::new(0).put::<Validation>();
		let old = ParamsV0 {
			segments_per_update: 3,
			score_tolerance: Perbill::from_percent(15),
			no_reveal_slash: Perbill::from_percent(3),
			// Out of the new bounds (≤ 50 %): reset to the default.
			contradiction_slash: Perbill::from_percent(90),
			fraud_slash: Perbill::from_percent(30),
			aggregator_slash: Perbill::from_percent(12),
			max_aggregation_attempts: 4,
		};
		frame_support::storage::unhashed::put_raw(
			&ProtocolParams::<Test>::hashed_key(),
			&old.encode(),
		);
		MigrateV0ToV1::<Test>::on_runtime_upgrade();
		let new = ProtocolParams::<Test>::get();
		let defaults = Defaults::get();
		assert_eq!(new.score_tolerance, Perbill::from_percent(15));
		assert_eq!(new.no_reveal_slash, Perbill::from_percent(3));
		assert_eq!(new.contradiction_slash, defaults.contradiction_slash);
		assert_eq!(new.fraud_slash, Perbill::from_percent(30));
		assert_eq!(new.aggregator_slash, Perbill::from_percent(12));
		assert_eq!(new.max_aggregation_attempts, 4);
		assert_eq!(new.detectable_fraction, defaults.detectable_fraction);
		assert_eq!(new.min_unavailable_reports, defaults.min_unavailable_reports);
		assert_eq!(Validation::on_chain_storage_version(), StorageVersion::new(1));
		// A second run does nothing.
		ProtocolParams::<Test>::put(Params { score_tolerance: Perbill::from_percent(30), ..new });
		MigrateV0ToV1::<Test>::on_runtime_upgrade();
		assert_eq!(ProtocolParams::<Test>::get().score_tolerance, Perbill::from_percent(30));
	});
}

const SECRET: [u8; 32] = [9; 32];

/// Worker 1's update is planted (its root is the plant root of `SECRET`), worker 2's is real;
/// every validator (equal stakes) checks both.
fn start_with_plant() {
	for v in [11u64, 12, 13] {
		set_stake(v, Role::Validator, 1_000);
	}
	let mut updates = refs(&[1, 2]);
	updates[0].checkpoint_root = plant_root(JOB, &1u64, &SECRET);
	assert_ok!(<Validation as RoundVerifier<u64, u64>>::start_verification(
		JOB,
		1,
		request(VerificationMode::Replay, 3),
		updates
	));
}

#[test]
fn lazy_validator_approving_a_plant_is_slashed() {
	test(|| {
		start_with_plant();
		let a = assigned(1);
		// a[0] is lazy: it approves without checking. a[1] could not fetch anything, a[2]
		// found that no commitment hashes to the root.
		let verdicts = [Verdict::Valid, Verdict::Unavailable, Verdict::Invalid];
		for (v, verdict) in a.iter().zip(verdicts) {
			commit(*v, 1, verdict, 90);
		}
		for v in assigned(2) {
			commit(v, 2, Verdict::Valid, 80);
		}
		next_block();
		assert_eq!(stage(), Stage::Reveal);
		assert_noop!(
			Validation::expose_plant(RuntimeOrigin::signed(2), JOB, SECRET),
			Error::<Test>::NotPlant
		);
		assert_noop!(
			Validation::expose_plant(RuntimeOrigin::signed(3), JOB, SECRET),
			Error::<Test>::UnknownUpdate
		);
		assert_ok!(Validation::expose_plant(RuntimeOrigin::signed(1), JOB, SECRET));
		assert_noop!(
			Validation::expose_plant(RuntimeOrigin::signed(1), JOB, SECRET),
			Error::<Test>::AlreadyExposed
		);
		assert!(events().contains(&Event::PlantExposed { job: JOB, round: 1, worker: 1 }));
		for (v, verdict) in a.iter().zip(verdicts) {
			reveal(*v, 1, verdict, 90);
		}
		for v in assigned(2) {
			reveal(v, 2, Verdict::Valid, 80);
		}
		// Everyone revealed, and the stage still runs to its end.
		next_block();
		assert_eq!(stage(), Stage::Reveal);
		end_stage();
		// The lazy validator and the planter pay; nobody else does.
		let s = slashes();
		assert_eq!(s.len(), 2, "{s:?}");
		assert!(s.contains(&(1, Role::Worker, Perbill::from_percent(20), 200)));
		assert!(s.contains(&(a[0], Role::Validator, Perbill::from_percent(10), 100)));
		assert!(events().contains(&Event::Slashed {
			job: JOB,
			who: a[0],
			reason: SlashReason::ApprovedPlant,
			amount: 100
		}));
		assert!(events().contains(&Event::UpdateVerified {
			job: JOB,
			round: 1,
			worker: 1,
			verdict: Verdict::Invalid,
			score: Perbill::zero()
		}));
		// Those who did not approve it are paid for the plant as for a real check.
		let weight = |who: u64| {
			RoundValidators::<Test>::get(JOB).iter().find(|r| r.who == who).unwrap().weight
		};
		assert_eq!(weight(a[0]), 0, "a validator caught approving a plant forfeits the round");
		assert_eq!(weight(a[1]), 2_000_000_000);
		assert_eq!(weight(a[2]), 2_000_000_000);
		let v = Verifications::<Test>::get(JOB).unwrap();
		assert_eq!(v.accepted.into_inner(), vec![(2, Perbill::from_percent(80))]);
	});
}

#[test]
fn plant_is_exposed_only_once_votes_are_committed() {
	test(|| {
		start_with_plant();
		assert_noop!(
			Validation::expose_plant(RuntimeOrigin::signed(1), JOB, SECRET),
			Error::<Test>::WrongStage
		);
		run_to(1 + P + P + 1);
		assert_noop!(
			Validation::expose_plant(RuntimeOrigin::signed(1), JOB, SECRET),
			Error::<Test>::UnknownVerification
		);
		assert!(ExposedPlants::<Test>::iter().next().is_none());
	});
}

#[test]
fn unexposed_plant_is_judged_like_any_update() {
	test(|| {
		start_with_plant();
		// The planter never exposes: validators that found nothing report it, and the worker
		// is slashed as for withheld evidence.
		let a = assigned(1);
		for v in a.iter() {
			commit(*v, 1, Verdict::Unavailable, 0);
		}
		end_stage();
		assert_eq!(stage(), Stage::Reveal);
		for v in a.iter() {
			reveal(*v, 1, Verdict::Unavailable, 0);
		}
		end_stage();
		assert!(slashes().contains(&(1, Role::Worker, Perbill::from_percent(5), 50)));
		assert!(!events().iter().any(|e| matches!(
			e,
			Event::Slashed { reason: SlashReason::ApprovedPlant | SlashReason::Planted, .. }
		)));
	});
}

#[test]
fn plant_root_is_the_documented_hash() {
	// blake2b-256(b"agora/plant/v1" || 7u64 LE || [1; 32] || [2; 32]): the worker's
	// `daemon::plant_root` test checks the same vector.
	let root = plant_root(7, &sp_runtime::AccountId32::new([1; 32]), &[2; 32]);
	assert_eq!(
		format!("{root:?}"),
		"0xe8b43ac6618e99812c5caa8a7c8b767a07a0192b9c3ab6e7cf2799f0f22e73bd"
	);
}

#[test]
fn aggregate_commitment_is_the_documented_hash() {
	// blake2b-256(b"agora/aggregate/v1" || 7u64 LE || 2u32 LE || [0xaa; 32] || [0x55; 32] ||
	// [0x11; 32]): the worker's `aggregate_commitment` test checks the same vector.
	let commitment = aggregate_commitment_of(
		7,
		2,
		&H256::repeat_byte(0xaa),
		&[0x55; 32],
		&sp_runtime::AccountId32::new([0x11; 32]),
	);
	assert_eq!(
		format!("{commitment:?}"),
		"0xe801c757e4e669115d8eca4e84a93212348fde296da92bb50e80d948d950e42a"
	);
}
