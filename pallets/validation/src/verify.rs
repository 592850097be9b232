//! Assignment, commit-reveal, consensus, aggregation and the stage machine.

use crate::{
	commitment_of, consensus, pallet::*, types::*, UpdateCheckOf, VerificationOf, WeightInfo,
};
use agora_primitives::{
	BlobHash, JobId, ParticipantRegistry, Role, RoundIndex, RoundOutcome, RoundVerifier, SeededRng,
	UpdateRef, Verdict, VerificationMode, VerificationObserver, VerificationRequest, VoidReason,
	H256,
};
use alloc::vec::Vec;
use codec::Encode;
use frame_support::{pallet_prelude::*, traits::Randomness};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{Hash as HashT, Saturating, UniqueSaturatedInto},
	Perbill,
};

impl<T: Config> Pallet<T> {
	/// Check every field of `params` against its bounds.
	pub fn check_params(p: &Params) -> DispatchResult {
		let ok = (1..=T::MaxSegments::get()).contains(&p.segments_per_update)
			&& p.score_tolerance >= MIN_SCORE_TOLERANCE
			&& p.no_reveal_slash <= MAX_NO_REVEAL_SLASH
			&& (1..=MAX_AGGREGATION_ATTEMPTS).contains(&p.max_aggregation_attempts);
		ensure!(ok, Error::<T>::ParamOutOfBounds);
		Ok(())
	}

	fn now() -> BlockNumberFor<T> {
		frame_system::Pallet::<T>::block_number()
	}

	fn seed(tag: &[u8], job: JobId, round: RoundIndex, extra: &[u8]) -> T::Hash {
		T::Randomness::random(&(tag, job, round, extra).encode()).0
	}

	fn set_deadline(job: JobId, deadline: BlockNumberFor<T>) {
		ActiveVerifications::<T>::mutate(|a| {
			if let Some(e) = a.iter_mut().find(|(j, _)| *j == job) {
				e.1 = deadline;
			}
		});
	}

	/// One expected action arrived; close the stage at the next block when none is left.
	fn action_done(job: JobId, v: &mut VerificationOf<T>) {
		v.pending = v.pending.saturating_sub(1);
		let now = Self::now();
		if v.pending == 0 && now < v.deadline {
			v.deadline = now;
			Self::set_deadline(job, now);
		}
	}

	fn verification_in(
		job: JobId,
		stage: Stage,
		late: Error<T>,
	) -> Result<VerificationOf<T>, DispatchError> {
		let v = Verifications::<T>::get(job).ok_or(Error::<T>::UnknownVerification)?;
		if v.stage != stage {
			// A reveal once the reveal stage is over is "late".
			if stage == Stage::Reveal && v.stage == Stage::Aggregation {
				return Err(Error::<T>::LateReveal.into());
			}
			return Err(Error::<T>::WrongStage.into());
		}
		ensure!(Self::now() <= v.deadline, late);
		Ok(v)
	}

	pub(crate) fn do_start(
		job: JobId,
		round: RoundIndex,
		request: VerificationRequest<BlockNumberFor<T>>,
		updates: Vec<UpdateRef<T::AccountId>>,
	) -> DispatchResult {
		ensure!(!Verifications::<T>::contains_key(job), Error::<T>::AlreadyVerifying);
		let workers: BoundedVec<T::AccountId, T::MaxWorkersPerRound> = updates
			.iter()
			.map(|u| u.worker.clone())
			.collect::<Vec<_>>()
			.try_into()
			.map_err(|_| Error::<T>::TooManyUpdates)?;
		let validators: Vec<(T::AccountId, u128)> = T::Registry::eligible_validators()
			.into_iter()
			.map(|(v, s)| (v, s.unique_saturated_into()))
			.collect();
		ensure!(!validators.is_empty(), Error::<T>::NoValidators);
		let params = ProtocolParams::<T>::get();
		let per_update =
			request.validators_per_update.min(T::MaxValidatorsPerUpdate::get()) as usize;
		let base = Self::seed(b"agora/validation/assign", job, round, &[]);
		let mut round_validators = RoundValidators::<T>::get(job);
		let mut total: u32 = 0;
		for u in updates.iter() {
			let mut rng = SeededRng::<T::Hashing>::new(T::Hashing::hash_of(&(
				base,
				&u.worker,
				u.checkpoint_root,
			)));
			let mut candidates: Vec<(T::AccountId, u128)> =
				validators.iter().filter(|(v, _)| *v != u.worker).cloned().collect();
			rng.shuffle(&mut candidates);
			let mut assignments =
				BoundedVec::<Assignment<T::AccountId>, T::MaxValidatorsPerUpdate>::new();
			for (v, stake) in candidates {
				if assignments.len() >= per_update {
					break;
				}
				if !round_validators.iter().any(|r| r.who == v)
					&& round_validators
						.try_push(RoundValidator { who: v.clone(), stake, weight: 0, vote: None })
						.is_err()
				{
					continue;
				}
				if assignments
					.try_push(Assignment { validator: v, stake, commitment: None, revealed: None })
					.is_err()
				{
					break;
				}
			}
			let segments = Self::draw_segments(&mut rng, u.checkpoints, params.segments_per_update);
			total = total.saturating_add(assignments.len() as u32);
			let validators_ev: BoundedVec<T::AccountId, T::MaxValidatorsPerUpdate> = assignments
				.iter()
				.map(|a| a.validator.clone())
				.collect::<Vec<_>>()
				.try_into()
				.unwrap_or_default();
			Self::deposit_event(Event::ValidatorsAssigned {
				job,
				round,
				worker: u.worker.clone(),
				validators: validators_ev,
				segments: segments.clone(),
			});
			Checks::<T>::insert(
				job,
				&u.worker,
				UpdateCheck { checkpoints: u.checkpoints, segments, assignments, outcome: None },
			);
		}
		ensure!(total > 0, Error::<T>::NoValidators);
		RoundValidators::<T>::insert(job, round_validators);
		let deadline = Self::now().saturating_add(request.commit);
		ActiveVerifications::<T>::try_mutate(|a| a.try_push((job, deadline)))
			.map_err(|_| Error::<T>::TooManyVerifications)?;
		Verifications::<T>::insert(
			job,
			Verification {
				round,
				mode: request.mode,
				stage: Stage::Commit,
				deadline,
				reveal_period: request.reveal,
				aggregation_period: request.aggregation,
				workers,
				pending: total,
				accepted: BoundedVec::new(),
				aggregator: None,
				tried: BoundedVec::new(),
				posted: None,
			},
		);
		Self::deposit_event(Event::CommitStarted { job, round, deadline });
		Ok(())
	}

	fn draw_segments(
		rng: &mut SeededRng<T::Hashing>,
		checkpoints: u32,
		wanted: u32,
	) -> BoundedVec<u32, T::MaxSegments> {
		let wanted = wanted.min(checkpoints).min(T::MaxSegments::get());
		let mut out = BoundedVec::<u32, T::MaxSegments>::new();
		let mut tries: u32 = 0;
		while (out.len() as u32) < wanted && tries < wanted.saturating_mul(8) {
			tries = tries.saturating_add(1);
			let s = rng.next_below(checkpoints);
			if !out.contains(&s) && out.try_push(s).is_err() {
				break;
			}
		}
		out.sort();
		out
	}

	pub(crate) fn do_commit(
		who: T::AccountId,
		job: JobId,
		worker: T::AccountId,
		commitment: H256,
	) -> DispatchResult {
		let mut v = Self::verification_in(job, Stage::Commit, Error::<T>::PhaseClosed)?;
		let mut check = Checks::<T>::get(job, &worker).ok_or(Error::<T>::NotAssigned)?;
		let a = check
			.assignments
			.iter_mut()
			.find(|a| a.validator == who)
			.ok_or(Error::<T>::NotAssigned)?;
		ensure!(a.commitment.is_none(), Error::<T>::AlreadyCommitted);
		a.commitment = Some(commitment);
		Checks::<T>::insert(job, &worker, check);
		Self::action_done(job, &mut v);
		Verifications::<T>::insert(job, v);
		Self::deposit_event(Event::VerdictCommitted { job, worker, validator: who });
		Ok(())
	}

	pub(crate) fn do_reveal(
		who: T::AccountId,
		job: JobId,
		worker: T::AccountId,
		verdict: Verdict,
		score: Perbill,
		salt: [u8; 32],
	) -> DispatchResult {
		let mut v = Self::verification_in(job, Stage::Reveal, Error::<T>::LateReveal)?;
		let mut check = Checks::<T>::get(job, &worker).ok_or(Error::<T>::NotAssigned)?;
		let a = check
			.assignments
			.iter_mut()
			.find(|a| a.validator == who)
			.ok_or(Error::<T>::NotAssigned)?;
		let c = a.commitment.ok_or(Error::<T>::NotCommitted)?;
		ensure!(a.revealed.is_none(), Error::<T>::AlreadyRevealed);
		ensure!(
			commitment_of(job, &worker, verdict, score, &salt, &who) == c,
			Error::<T>::CommitmentMismatch
		);
		a.revealed = Some((verdict, score));
		Checks::<T>::insert(job, &worker, check);
		Self::action_done(job, &mut v);
		Verifications::<T>::insert(job, v);
		Self::deposit_event(Event::VerdictRevealed { job, worker, validator: who, verdict, score });
		Ok(())
	}

	pub(crate) fn do_post_aggregate(
		who: T::AccountId,
		job: JobId,
		round: RoundIndex,
		aggregate: BlobHash,
	) -> DispatchResult {
		let mut v = Self::verification_in(job, Stage::Aggregation, Error::<T>::PhaseClosed)?;
		ensure!(v.round == round, Error::<T>::WrongRound);
		ensure!(v.aggregator.as_ref() == Some(&who), Error::<T>::NotAggregator);
		ensure!(v.posted.is_none(), Error::<T>::AlreadyPosted);
		v.posted = Some(aggregate);
		Self::action_done(job, &mut v);
		Verifications::<T>::insert(job, v);
		Self::deposit_event(Event::AggregatePosted { job, round, aggregate });
		Ok(())
	}

	pub(crate) fn do_vote_aggregate(
		who: T::AccountId,
		job: JobId,
		round: RoundIndex,
		aggregate: BlobHash,
	) -> DispatchResult {
		let mut v = Self::verification_in(job, Stage::Aggregation, Error::<T>::PhaseClosed)?;
		ensure!(v.round == round, Error::<T>::WrongRound);
		RoundValidators::<T>::try_mutate(job, |set| -> DispatchResult {
			let r = set.iter_mut().find(|r| r.who == who).ok_or(Error::<T>::NotAssigned)?;
			ensure!(r.vote.is_none(), Error::<T>::AlreadyVoted);
			r.vote = Some(aggregate);
			Ok(())
		})?;
		Self::action_done(job, &mut v);
		Verifications::<T>::insert(job, v);
		Self::deposit_event(Event::AggregateVoted { job, round, validator: who, aggregate });
		Ok(())
	}

	/// Advance the verifications whose stage deadline has passed, at most
	/// `MaxTransitionsPerBlock`.
	pub(crate) fn process_deadlines(now: BlockNumberFor<T>) -> Weight {
		let active = ActiveVerifications::<T>::get();
		let mut weight = T::WeightInfo::on_initialize_idle(active.len() as u32);
		let due: Vec<JobId> = active
			.iter()
			.filter(|(_, d)| *d <= now)
			.map(|(j, _)| *j)
			.take(T::MaxTransitionsPerBlock::get() as usize)
			.collect();
		for job in due {
			weight = weight.saturating_add(Self::advance(job, now));
		}
		weight
	}

	fn advance(job: JobId, now: BlockNumberFor<T>) -> Weight {
		let Some(mut v) = Verifications::<T>::get(job) else {
			ActiveVerifications::<T>::mutate(|a| a.retain(|(j, _)| *j != job));
			return T::DbWeight::get().reads_writes(1, 1);
		};
		let w = v.workers.len() as u32;
		match v.stage {
			Stage::Commit => {
				let committed: u32 = v
					.workers
					.iter()
					.filter_map(|w| Checks::<T>::get(job, w))
					.map(|c| c.assignments.iter().filter(|a| a.commitment.is_some()).count() as u32)
					.sum();
				v.stage = Stage::Reveal;
				v.pending = committed;
				v.deadline = if committed == 0 { now } else { now.saturating_add(v.reveal_period) };
				let (round, deadline) = (v.round, v.deadline);
				Verifications::<T>::insert(job, v);
				Self::set_deadline(job, deadline);
				Self::deposit_event(Event::RevealStarted { job, round, deadline });
				T::WeightInfo::open_reveal(w)
			},
			Stage::Reveal => T::WeightInfo::conclude(w)
				.saturating_add(Self::conclude(job, v, now))
				.saturating_add(T::Observer::on_verified_weight()),
			Stage::Aggregation => {
				let n = RoundValidators::<T>::decode_len(job).unwrap_or(0) as u32;
				T::WeightInfo::tally(n)
					.saturating_add(Self::tally(job, v, now))
					.saturating_add(T::Observer::on_verified_weight())
			},
		}
	}

	fn slash(job: JobId, who: &T::AccountId, role: Role, fraction: Perbill, reason: SlashReason) {
		if fraction.is_zero() {
			return;
		}
		let amount = T::Registry::slash(who, role, fraction);
		Self::deposit_event(Event::Slashed { job, who: who.clone(), reason, amount });
	}

	/// End of the reveal stage: consensus per update, slashes, then aggregation or void.
	fn conclude(job: JobId, mut v: VerificationOf<T>, now: BlockNumberFor<T>) -> Weight {
		let params = ProtocolParams::<T>::get();
		let mut round_validators = RoundValidators::<T>::get(job);
		let mut accepted = BoundedVec::<(T::AccountId, Perbill), T::MaxWorkersPerRound>::new();
		for worker in v.workers.iter() {
			let Some(mut check): Option<UpdateCheckOf<T>> = Checks::<T>::get(job, worker) else {
				continue;
			};
			let mut revealed = Vec::new();
			for a in check.assignments.iter() {
				match a.revealed {
					Some((verdict, score)) => {
						revealed.push((a.validator.clone(), a.stake, verdict, score))
					},
					None => Self::slash(
						job,
						&a.validator,
						Role::Validator,
						params.no_reveal_slash,
						SlashReason::NoReveal,
					),
				}
			}
			if revealed.is_empty() {
				Self::deposit_event(Event::UpdateUnverified {
					job,
					round: v.round,
					worker: worker.clone(),
				});
				continue;
			}
			let verdict = consensus::weighted_verdict(
				&revealed.iter().map(|r| (r.2, r.1)).collect::<Vec<_>>(),
			);
			let median = consensus::weighted_median(revealed.iter().map(|r| (r.3, r.1)).collect())
				.unwrap_or_default();
			for (validator, _, their_verdict, score) in revealed.iter() {
				let agreement = consensus::agreement(
					*their_verdict,
					*score,
					verdict,
					median,
					params.score_tolerance,
				);
				if let Some(r) = round_validators.iter_mut().find(|r| &r.who == validator) {
					r.weight = r.weight.saturating_add(agreement);
				}
				if v.mode == VerificationMode::Replay && *their_verdict != verdict {
					Self::slash(
						job,
						validator,
						Role::Validator,
						params.contradiction_slash,
						SlashReason::Contradiction,
					);
				}
			}
			check.outcome = Some((verdict, median));
			Checks::<T>::insert(job, worker, check);
			Self::deposit_event(Event::UpdateVerified {
				job,
				round: v.round,
				worker: worker.clone(),
				verdict,
				score: median,
			});
			match verdict {
				Verdict::Valid => {
					let _ = accepted.try_push((worker.clone(), median));
				},
				Verdict::Invalid => {
					if v.mode == VerificationMode::Replay {
						Self::slash(
							job,
							worker,
							Role::Worker,
							params.fraud_slash,
							SlashReason::FailedReplay,
						);
					}
				},
			}
		}
		RoundValidators::<T>::insert(job, round_validators);
		if accepted.is_empty() {
			return Self::finish(job, v.round, RoundOutcome::Voided(VoidReason::NoneAccepted));
		}
		v.accepted = accepted;
		Self::next_aggregator(job, v, now)
	}

	/// Draw an aggregator among the accepted workers not tried yet, or void the round.
	fn next_aggregator(job: JobId, mut v: VerificationOf<T>, now: BlockNumberFor<T>) -> Weight {
		let untried: Vec<T::AccountId> =
			v.accepted.iter().map(|(w, _)| w.clone()).filter(|w| !v.tried.contains(w)).collect();
		let attempts = v.tried.len() as u32;
		if untried.is_empty() || attempts >= ProtocolParams::<T>::get().max_aggregation_attempts {
			return Self::finish(job, v.round, RoundOutcome::Voided(VoidReason::AggregationFailed));
		}
		let seed = Self::seed(b"agora/validation/aggregator", job, v.round, &attempts.encode());
		let mut rng = SeededRng::<T::Hashing>::new(seed);
		let pick = rng.next_below(untried.len() as u32) as usize;
		let Some(aggregator) = untried.get(pick).cloned() else {
			return Self::finish(job, v.round, RoundOutcome::Voided(VoidReason::AggregationFailed));
		};
		let _ = v.tried.try_push(aggregator.clone());
		RoundValidators::<T>::mutate(job, |set| set.iter_mut().for_each(|r| r.vote = None));
		let voters = RoundValidators::<T>::decode_len(job).unwrap_or(0) as u32;
		v.stage = Stage::Aggregation;
		v.aggregator = Some(aggregator.clone());
		v.posted = None;
		v.pending = voters.saturating_add(1);
		v.deadline = now.saturating_add(v.aggregation_period);
		let (round, deadline) = (v.round, v.deadline);
		Verifications::<T>::insert(job, v);
		Self::set_deadline(job, deadline);
		Self::deposit_event(Event::AggregatorSelected { job, round, aggregator, deadline });
		Weight::zero()
	}

	/// End of an aggregation attempt: accept, or slash and retry.
	fn tally(job: JobId, v: VerificationOf<T>, now: BlockNumberFor<T>) -> Weight {
		let set = RoundValidators::<T>::get(job);
		let (agree, disagree) =
			set.iter().fold((0u128, 0u128), |(a, d), r| match (r.vote, v.posted) {
				(Some(vote), Some(posted)) if vote == posted => {
					(a.saturating_add(r.stake.max(1)), d)
				},
				(Some(_), _) => (a, d.saturating_add(r.stake.max(1))),
				(None, _) => (a, d),
			});
		let Some(aggregator) = v.aggregator.clone() else {
			return Self::finish(job, v.round, RoundOutcome::Voided(VoidReason::AggregationFailed));
		};
		match v.posted {
			Some(model) if agree > disagree => {
				Self::deposit_event(Event::AggregateAccepted {
					job,
					round: v.round,
					aggregate: model,
				});
				let workers = v.accepted.iter().cloned().collect();
				let validators = set
					.iter()
					.filter(|r| r.weight > 0)
					.map(|r| (r.who.clone(), r.weight))
					.collect();
				Self::finish(job, v.round, RoundOutcome::Completed { model, workers, validators })
			},
			posted => {
				// Missing, or outvoted by validators who recomputed it: slash. Posted but nobody
				// voted: retry without slashing.
				let guilty = posted.is_none() || disagree > 0;
				if guilty {
					let fraction = ProtocolParams::<T>::get().aggregator_slash;
					Self::slash(
						job,
						&aggregator,
						Role::Worker,
						fraction,
						SlashReason::BadAggregate,
					);
				}
				Self::deposit_event(Event::AggregateRejected {
					job,
					round: v.round,
					aggregator,
					slashed: guilty,
				});
				Self::next_aggregator(job, v, now)
			},
		}
	}

	/// Clean up and hand the outcome to the observer.
	fn finish(job: JobId, round: RoundIndex, outcome: RoundOutcome<T::AccountId>) -> Weight {
		if let Some(v) = Verifications::<T>::take(job) {
			for w in v.workers.iter() {
				Checks::<T>::remove(job, w);
			}
		}
		RoundValidators::<T>::remove(job);
		ActiveVerifications::<T>::mutate(|a| a.retain(|(j, _)| *j != job));
		let completed = matches!(outcome, RoundOutcome::Completed { .. });
		Self::deposit_event(Event::VerificationEnded { job, round, completed });
		T::Observer::on_verified(job, round, outcome)
	}

	/// Invariants: every verification is tracked with its deadline, its checks exist, nobody
	/// validates its own update, the aggregator is an accepted worker.
	#[cfg(any(feature = "try-runtime", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		let active = ActiveVerifications::<T>::get();
		ensure!(
			active.len() == Verifications::<T>::iter().count(),
			"ActiveVerifications out of sync"
		);
		for (job, v) in Verifications::<T>::iter() {
			let (_, d) =
				active.iter().find(|(j, _)| *j == job).ok_or("verification not tracked")?;
			ensure!(*d == v.deadline, "cached deadline differs");
			for w in v.workers.iter() {
				let c = Checks::<T>::get(job, w).ok_or("missing check")?;
				ensure!(c.assignments.iter().all(|a| &a.validator != w), "worker validates itself");
				ensure!(c.segments.iter().all(|s| *s < c.checkpoints), "segment out of range");
			}
			ensure!(v.accepted.iter().all(|(w, _)| v.workers.contains(w)), "accepted non-worker");
			if v.stage == Stage::Aggregation {
				let a = v.aggregator.as_ref().ok_or("aggregation without aggregator")?;
				ensure!(v.accepted.iter().any(|(w, _)| w == a), "aggregator not accepted");
			}
		}
		for (job, _, _) in Checks::<T>::iter() {
			ensure!(Verifications::<T>::contains_key(job), "stray check");
		}
		for (job, _) in RoundValidators::<T>::iter() {
			ensure!(Verifications::<T>::contains_key(job), "stray round validators");
		}
		Ok(())
	}
}

impl<T: Config> RoundVerifier<T::AccountId, BlockNumberFor<T>> for Pallet<T> {
	fn start_verification(
		job: JobId,
		round: RoundIndex,
		request: VerificationRequest<BlockNumberFor<T>>,
		updates: Vec<UpdateRef<T::AccountId>>,
	) -> DispatchResult {
		frame_support::storage::with_storage_layer(|| Self::do_start(job, round, request, updates))
	}

	fn start_verification_weight(n: u32) -> Weight {
		T::WeightInfo::start_verification(n)
	}
}
