//! Assignment, commit-reveal, consensus, aggregation and the stage machine.

use crate::{
	aggregate_commitment_of, challenge, commitment_of, consensus, pallet::*, plant_root, types::*,
	UpdateCheckOf, VerificationOf, WeightInfo,
};
use agora_primitives::{
	BlobHash, JobId, ParticipantRegistry, Role, RoundIndex, RoundOutcome, RoundVerifier, SeededRng,
	UpdateRef, Verdict, VerificationMode, VerificationObserver, VerificationRequest, VoidReason,
	H256,
};
use alloc::{collections::BTreeSet, vec::Vec};
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
		// The last segment is always challenged besides the drawn ones.
		let drawn_limit = T::MaxSegments::get().saturating_sub(1);
		let ok = p.detectable_fraction >= MIN_DETECTABLE_FRACTION
			&& (MIN_DETECTION_PROBABILITY..=MAX_DETECTION_PROBABILITY)
				.contains(&p.detection_probability)
			&& challenge::worst_case_challenges(
				p.detectable_fraction,
				p.detection_probability,
				drawn_limit,
			)
			.is_some()
			&& p.score_tolerance >= MIN_SCORE_TOLERANCE
			&& p.no_reveal_slash <= MAX_NO_REVEAL_SLASH
			&& p.contradiction_slash <= MAX_CONTRADICTION_SLASH
			&& p.fraud_slash >= MIN_FRAUD_SLASH
			&& p.unavailable_slash <= p.fraud_slash
			&& (2..=T::MaxValidatorsPerUpdate::get()).contains(&p.min_unavailable_reports)
			&& p.aggregator_slash <= MAX_AGGREGATOR_SLASH
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
			if stage == Stage::Reveal
				&& matches!(v.stage, Stage::Aggregation | Stage::AggregateReveal)
			{
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
			let mut assignments =
				BoundedVec::<Assignment<T::AccountId>, T::MaxValidatorsPerUpdate>::new();
			// Drawn in proportion to stake, without replacement: an identity's chance follows its
			// stake, where a uniform draw gave every identity the same chance, so that splitting
			// one stake over many identities multiplied the assignments it got.
			while assignments.len() < per_update {
				let Some((v, stake)) = rng.take_weighted(&mut candidates) else { break };
				if !round_validators.iter().any(|r| r.who == v)
					&& round_validators
						.try_push(RoundValidator {
							who: v.clone(),
							stake,
							weight: 0,
							vote: None,
							forfeited: false,
						})
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
			let segments = Self::draw_segments(&mut rng, u.checkpoints, &params);
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
			CheckpointRoots::<T>::insert(job, &u.worker, u.checkpoint_root);
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

	/// The challenged segments of an update with `checkpoints` segments (see `challenge.rs`).
	/// `check_params` keeps the count within `MaxSegments`; a longer draw is cut defensively.
	fn draw_segments(
		rng: &mut SeededRng<T::Hashing>,
		checkpoints: u32,
		params: &Params,
	) -> BoundedVec<u32, T::MaxSegments> {
		let drawn = challenge::draw(
			rng,
			checkpoints,
			params.detectable_fraction,
			params.detection_probability,
		);
		let count = drawn.len();
		let mut out = BoundedVec::<u32, T::MaxSegments>::new();
		// Keep the last segment if the draw ever had to be cut: it produces the update.
		for segment in drawn.into_iter().rev() {
			if out.try_push(segment).is_err() {
				frame_support::defensive!("challenge draw exceeds MaxSegments", count);
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
		// Only an evaluation has nothing but the held-out data to judge by; a replay is judged
		// on the worker's evidence, with or without the held-out data.
		ensure!(
			verdict != Verdict::HeldOutUnavailable || v.mode == VerificationMode::Evaluation,
			Error::<T>::VerdictNotInMode
		);
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
		// Unlike the other stages, the reveal stage never closes early: it lasts its whole
		// period, so that a planter always has the time to expose its plant before the verdicts
		// are tallied (an early close would let fast reveals race the exposure).
		v.pending = v.pending.saturating_sub(1);
		Verifications::<T>::insert(job, v);
		Self::deposit_event(Event::VerdictRevealed { job, worker, validator: who, verdict, score });
		Ok(())
	}

	pub(crate) fn do_expose_plant(
		who: T::AccountId,
		job: JobId,
		secret: [u8; 32],
	) -> DispatchResult {
		let v = Self::verification_in(job, Stage::Reveal, Error::<T>::LateReveal)?;
		let root = CheckpointRoots::<T>::get(job, &who).ok_or(Error::<T>::UnknownUpdate)?;
		ensure!(plant_root(job, &who, &secret) == root, Error::<T>::NotPlant);
		ensure!(!ExposedPlants::<T>::contains_key(job, &who), Error::<T>::AlreadyExposed);
		ExposedPlants::<T>::insert(job, &who, ());
		Self::deposit_event(Event::PlantExposed { job, round: v.round, worker: who });
		Ok(())
	}

	/// The end of a planted update's check: the truth is known, whatever the votes.
	fn conclude_plant(
		job: JobId,
		round: RoundIndex,
		worker: &T::AccountId,
		revealed: &[(T::AccountId, u128, Verdict, Perbill)],
		round_validators: &mut BoundedVec<RoundValidator<T::AccountId>, T::MaxRoundValidators>,
		params: &Params,
	) -> (Verdict, Perbill) {
		for (validator, _, verdict, _) in revealed.iter() {
			let right = *verdict != Verdict::Valid;
			if let Some(r) = round_validators.iter_mut().find(|r| &r.who == validator) {
				r.weight = r.weight.saturating_add(if right { 1_000_000_000 } else { 0 });
			}
			if !right {
				Self::slash(
					job,
					validator,
					Role::Validator,
					params.contradiction_slash,
					SlashReason::ApprovedPlant,
				);
			}
		}
		Self::slash(job, worker, Role::Worker, params.fraud_slash, SlashReason::Planted);
		Self::deposit_event(Event::UpdateVerified {
			job,
			round,
			worker: worker.clone(),
			verdict: Verdict::Invalid,
			score: Perbill::zero(),
		});
		(Verdict::Invalid, Perbill::zero())
	}

	pub(crate) fn do_post_aggregate(
		who: T::AccountId,
		job: JobId,
		round: RoundIndex,
		commitment: H256,
	) -> DispatchResult {
		let mut v = Self::verification_in(job, Stage::Aggregation, Error::<T>::PhaseClosed)?;
		ensure!(v.round == round, Error::<T>::WrongRound);
		ensure!(v.aggregator.as_ref() == Some(&who), Error::<T>::NotAggregator);
		ensure!(v.posted.is_none(), Error::<T>::AlreadyPosted);
		v.posted = Some(AggregateVote::Committed(commitment));
		Self::action_done(job, &mut v);
		Verifications::<T>::insert(job, v);
		Self::deposit_event(Event::AggregatePosted { job, round, commitment });
		Ok(())
	}

	pub(crate) fn do_vote_aggregate(
		who: T::AccountId,
		job: JobId,
		round: RoundIndex,
		commitment: H256,
	) -> DispatchResult {
		let mut v = Self::verification_in(job, Stage::Aggregation, Error::<T>::PhaseClosed)?;
		ensure!(v.round == round, Error::<T>::WrongRound);
		ensure!(v.aggregator.as_ref() != Some(&who), Error::<T>::AggregatorVote);
		RoundValidators::<T>::try_mutate(job, |set| -> DispatchResult {
			let r = set.iter_mut().find(|r| r.who == who).ok_or(Error::<T>::NotAssigned)?;
			ensure!(r.vote.is_none(), Error::<T>::AlreadyVoted);
			r.vote = Some(AggregateVote::Committed(commitment));
			Ok(())
		})?;
		Self::action_done(job, &mut v);
		Verifications::<T>::insert(job, v);
		Self::deposit_event(Event::AggregateVoted { job, round, validator: who, commitment });
		Ok(())
	}

	pub(crate) fn do_reveal_aggregate(
		who: T::AccountId,
		job: JobId,
		round: RoundIndex,
		aggregate: BlobHash,
		salt: [u8; 32],
	) -> DispatchResult {
		let mut v = Self::verification_in(job, Stage::AggregateReveal, Error::<T>::LateReveal)?;
		ensure!(v.round == round, Error::<T>::WrongRound);
		let expected = aggregate_commitment_of(job, round, &aggregate, &salt, &who);
		let reveal = |vote: &mut Option<AggregateVote>| -> DispatchResult {
			match vote {
				Some(AggregateVote::Committed(c)) if *c == expected => {
					*vote = Some(AggregateVote::Revealed(aggregate));
					Ok(())
				},
				Some(AggregateVote::Committed(_)) => Err(Error::<T>::CommitmentMismatch.into()),
				Some(AggregateVote::Revealed(_)) => Err(Error::<T>::AlreadyRevealed.into()),
				None => Err(Error::<T>::NotCommitted.into()),
			}
		};
		if v.aggregator.as_ref() == Some(&who) {
			reveal(&mut v.posted)?;
		} else {
			RoundValidators::<T>::try_mutate(job, |set| -> DispatchResult {
				let r = set.iter_mut().find(|r| r.who == who).ok_or(Error::<T>::NotAssigned)?;
				reveal(&mut r.vote)
			})?;
		}
		Self::action_done(job, &mut v);
		Verifications::<T>::insert(job, v);
		Self::deposit_event(Event::AggregateRevealed { job, round, who, aggregate });
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
				let voters = RoundValidators::<T>::get(job)
					.iter()
					.filter(|r| matches!(r.vote, Some(AggregateVote::Committed(_))))
					.count() as u32;
				let posted = u32::from(matches!(v.posted, Some(AggregateVote::Committed(_))));
				let committed = voters.saturating_add(posted);
				v.stage = Stage::AggregateReveal;
				v.pending = committed;
				v.deadline = if committed == 0 { now } else { now.saturating_add(v.reveal_period) };
				let (round, deadline) = (v.round, v.deadline);
				Verifications::<T>::insert(job, v);
				Self::set_deadline(job, deadline);
				Self::deposit_event(Event::AggregateRevealStarted { job, round, deadline });
				T::WeightInfo::open_aggregate_reveal()
			},
			Stage::AggregateReveal => {
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
		// Validators that approved a plant: they forfeit their whole reward of the round.
		let mut caught = BTreeSet::new();
		// Updates nobody could judge because the submitter withheld its held-out data.
		let mut withheld = 0usize;
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
			if ExposedPlants::<T>::contains_key(job, worker) {
				caught
					.extend(revealed.iter().filter(|r| r.2 == Verdict::Valid).map(|r| r.0.clone()));
				check.outcome = Some(Self::conclude_plant(
					job,
					v.round,
					worker,
					&revealed,
					&mut round_validators,
					&params,
				));
				Checks::<T>::insert(job, worker, check);
				continue;
			}
			if revealed.is_empty() {
				Self::deposit_event(Event::UpdateUnverified {
					job,
					round: v.round,
					worker: worker.clone(),
				});
				continue;
			}
			let votes: Vec<(Verdict, u128)> = revealed.iter().map(|r| (r.2, r.1)).collect();
			let Some(verdict) = consensus::decide(&votes) else {
				// A tie: nobody is slashed and nobody is paid for this update.
				Self::deposit_event(Event::UpdateUndecided {
					job,
					round: v.round,
					worker: worker.clone(),
				});
				continue;
			};
			let median = consensus::weighted_median(
				revealed.iter().filter(|r| r.2 == verdict).map(|r| (r.3, r.1)).collect(),
			)
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
				if v.mode == VerificationMode::Replay
					&& consensus::contradicts(*their_verdict, verdict)
				{
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
				Verdict::Unavailable => {
					let reports =
						revealed.iter().filter(|r| r.2 == Verdict::Unavailable).count() as u32;
					if reports >= params.min_unavailable_reports {
						Self::slash(
							job,
							worker,
							Role::Worker,
							params.unavailable_slash,
							SlashReason::EvidenceUnavailable,
						);
					}
				},
				// The submitter withheld the data the update is judged by: neither paid nor
				// slashed.
				Verdict::HeldOutUnavailable => withheld = withheld.saturating_add(1),
			}
		}
		for r in round_validators.iter_mut().filter(|r| caught.contains(&r.who)) {
			r.weight = 0;
			r.forfeited = true;
		}
		RoundValidators::<T>::insert(job, round_validators);
		if accepted.is_empty() {
			// Its submitter's doing when an update could not be judged for want of its data
			// (and none was accepted: a junk update of its own judged `Invalid` beside it
			// does not make the round anyone else's fault).
			let reason = if withheld > 0 {
				VoidReason::HeldOutUnavailable
			} else {
				VoidReason::NoneAccepted
			};
			return Self::finish(job, v.round, RoundOutcome::Voided(reason));
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
		let voters =
			RoundValidators::<T>::get(job).iter().filter(|r| r.who != aggregator).count() as u32;
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
	///
	/// Only the round's validators that revealed a verdict, other than the aggregator, count,
	/// and each side needs more than half of their stake: silence never lets a single vote
	/// accept a wrong aggregate or slash an honest aggregator. Without such a majority the
	/// attempt is retried with another aggregator and nobody is slashed but those who left a
	/// commitment unrevealed. With one, the minority's revealed votes are slashed as
	/// contradictions, and the voters for an accepted aggregate earn reward weight.
	fn tally(job: JobId, v: VerificationOf<T>, now: BlockNumberFor<T>) -> Weight {
		let mut set = RoundValidators::<T>::get(job);
		let Some(aggregator) = v.aggregator.clone() else {
			return Self::finish(job, v.round, RoundOutcome::Voided(VoidReason::AggregationFailed));
		};
		let params = ProtocolParams::<T>::get();
		let posted = v.posted.and_then(|p| p.revealed());
		// Validators that revealed no verdict this round are offline or withheld their work:
		// they already paid the no-reveal slash and do not block the quorum.
		let active: BTreeSet<T::AccountId> = v
			.workers
			.iter()
			.filter_map(|w| Checks::<T>::get(job, w))
			.flat_map(|c| c.assignments.into_iter())
			.filter(|a| a.revealed.is_some())
			.map(|a| a.validator)
			.collect();
		let (mut total, mut agree, mut disagree) = (0u128, 0u128, 0u128);
		for r in set.iter().filter(|r| r.who != aggregator && active.contains(&r.who)) {
			let stake = r.stake.max(1);
			total = total.saturating_add(stake);
			match (r.vote.and_then(|vote| vote.revealed()), posted) {
				(Some(vote), Some(posted)) if vote == posted => agree = agree.saturating_add(stake),
				(Some(_), _) => disagree = disagree.saturating_add(stake),
				(None, _) => {},
			}
		}
		let majority = |side: u128| side.saturating_mul(2) > total;
		let accepted = posted.filter(|_| majority(agree));
		// The aggregate the majority stands against, if it does: a missing one counts as wrong.
		let rejected = accepted.is_none() && (posted.is_none() || majority(disagree));
		for r in set.iter_mut().filter(|r| r.who != aggregator) {
			let counted = active.contains(&r.who);
			let fault = match r.vote {
				Some(AggregateVote::Committed(_)) => {
					Some((params.no_reveal_slash, SlashReason::AggregateNoReveal))
				},
				// A vote outside the quorum was not counted, so it is not judged either.
				Some(AggregateVote::Revealed(_)) if !counted => None,
				Some(AggregateVote::Revealed(vote)) => match (accepted, posted) {
					(Some(model), _) if vote == model => {
						if !r.forfeited {
							r.weight = r.weight.saturating_add(AGGREGATE_VOTE_WEIGHT);
						}
						None
					},
					(Some(_), _) => {
						Some((params.contradiction_slash, SlashReason::AggregateContradiction))
					},
					(None, Some(wrong)) if rejected && vote == wrong => {
						Some((params.contradiction_slash, SlashReason::AggregateContradiction))
					},
					(None, _) => None,
				},
				None => None,
			};
			if let Some((fraction, reason)) = fault {
				Self::slash(job, &r.who, Role::Validator, fraction, reason);
			}
		}
		match accepted {
			Some(model) => {
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
			None => {
				if rejected {
					Self::slash(
						job,
						&aggregator,
						Role::Worker,
						params.aggregator_slash,
						SlashReason::BadAggregate,
					);
				}
				// Reward weight earned in the verdicts stays for the next attempt.
				RoundValidators::<T>::insert(job, set);
				Self::deposit_event(Event::AggregateRejected {
					job,
					round: v.round,
					aggregator,
					slashed: rejected,
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
				CheckpointRoots::<T>::remove(job, w);
				ExposedPlants::<T>::remove(job, w);
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
			if matches!(v.stage, Stage::Aggregation | Stage::AggregateReveal) {
				let a = v.aggregator.as_ref().ok_or("aggregation without aggregator")?;
				ensure!(v.accepted.iter().any(|(w, _)| w == a), "aggregator not accepted");
			}
		}
		for (job, _, _) in Checks::<T>::iter() {
			ensure!(Verifications::<T>::contains_key(job), "stray check");
		}
		for (job, worker, _) in CheckpointRoots::<T>::iter() {
			ensure!(Checks::<T>::contains_key(job, &worker), "stray checkpoint root");
		}
		for (job, worker, _) in ExposedPlants::<T>::iter() {
			ensure!(CheckpointRoots::<T>::contains_key(job, &worker), "stray exposed plant");
		}
		for (job, _) in RoundValidators::<T>::iter() {
			ensure!(Verifications::<T>::contains_key(job), "stray round validators");
		}
		Ok(())
	}
}

/// A validator assigned in a verification that has not ended may still be slashed (no reveal,
/// contradiction); so may a worker whose update is verified or who aggregates.
impl<T: Config> agora_primitives::PendingWork<T::AccountId> for Pallet<T> {
	fn has_pending_work(who: &T::AccountId, role: Role) -> bool {
		ActiveVerifications::<T>::get().iter().any(|(job, _)| match role {
			Role::Validator => RoundValidators::<T>::get(job).iter().any(|r| &r.who == who),
			Role::Worker => Verifications::<T>::get(job).is_some_and(|v| v.workers.contains(who)),
		})
	}

	fn has_pending_work_weight() -> Weight {
		T::DbWeight::get().reads(u64::from(T::MaxActiveJobs::get()).saturating_add(1))
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
