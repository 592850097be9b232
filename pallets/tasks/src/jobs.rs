//! Job creation, cancellation, applications and update submission.

use crate::{pallet::*, types::*, BalanceOf, JobOf, ParamsOf, WeightInfo, WorkerSlotsOf};
use agora_primitives::{
	Dataset, JobId, JobSpec, ParticipantRegistry, RewardPool, RoundIndex, Update, VerificationMode,
};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, MutateHold},
		tokens::{Fortitude, Precision, Preservation, Restriction},
	},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{One, Saturating, Zero};

impl<T: Config> Pallet<T> {
	/// Check every field of `params` against its bounds.
	pub fn check_params(p: &ParamsOf<T>) -> DispatchResult {
		let ok = !p.min_budget.is_zero()
			&& (1..=MAX_ROUNDS).contains(&p.max_rounds)
			&& (1..=T::MaxWorkersPerRound::get()).contains(&p.max_workers_per_round)
			&& (MIN_VALIDATORS_PER_UPDATE..=T::MaxValidatorsPerUpdate::get())
				.contains(&p.max_validators_per_update)
			&& p.max_shards <= agora_primitives::MAX_SHARDS
			&& p.min_period >= 1u32.into()
			&& p.min_period <= p.max_period
			&& p.max_period <= MAX_PERIOD.into()
			&& p.no_show_slash <= MAX_NO_SHOW_SLASH
			&& (1..=T::MaxActiveJobs::get()).contains(&p.max_jobs_per_submitter)
			&& p.job_deposit <= p.min_budget
			&& (1..=MAX_VOIDED_ROUNDS).contains(&p.max_voided_rounds);
		ensure!(ok, Error::<T>::ParamOutOfBounds);
		Ok(())
	}

	/// Check a job spec against the parameters.
	pub fn check_spec(spec: &JobSpec<BlockNumberFor<T>>, params: &ParamsOf<T>) -> DispatchResult {
		ensure!(
			!spec.architecture.is_empty()
				&& spec.rounds > 0
				&& spec.local_steps > 0
				&& spec.checkpoint_interval > 0
				&& spec.checkpoint_interval <= spec.local_steps
				&& spec.workers_per_round > 0
				&& spec.samples_per_round >= spec.workers_per_round,
			Error::<T>::InvalidSpec
		);
		ensure!(spec.rounds <= params.max_rounds, Error::<T>::SpecTooLarge);
		ensure!(spec.workers_per_round <= params.max_workers_per_round, Error::<T>::TooManyWorkers);
		ensure!(
			spec.validators_per_update >= MIN_VALIDATORS_PER_UPDATE
				&& spec.validators_per_update <= params.max_validators_per_update,
			Error::<T>::InvalidValidatorCount
		);
		ensure!(spec.periods.training >= MIN_TRAINING_PERIOD.into(), Error::<T>::PeriodOutOfBounds);
		ensure!(spec.periods.commit >= MIN_COMMIT_PERIOD.into(), Error::<T>::PeriodOutOfBounds);
		// Replay re-executes the worker's run on the worker's data: with private data nobody
		// but the worker has it, so no validator could ever verify the update.
		ensure!(
			!(spec.mode == VerificationMode::Replay && spec.dataset == Dataset::Private),
			Error::<T>::UnverifiableSpec
		);
		for period in spec.periods.all() {
			ensure!(
				period >= params.min_period && period <= params.max_period,
				Error::<T>::PeriodOutOfBounds
			);
		}
		if let Dataset::Shards(shards) = &spec.dataset {
			ensure!(!shards.is_empty(), Error::<T>::InvalidSpec);
			ensure!(shards.len() as u32 <= params.max_shards, Error::<T>::SpecTooLarge);
			for s in shards.iter() {
				ensure!(T::Registry::shard_provider(s).is_some(), Error::<T>::UnknownShard);
			}
		}
		Ok(())
	}

	pub(crate) fn do_create_job(
		who: T::AccountId,
		spec: JobSpec<BlockNumberFor<T>>,
		budget: BalanceOf<T>,
	) -> Result<JobId, DispatchError> {
		let params = ProtocolParams::<T>::get();
		Self::check_spec(&spec, &params)?;
		ensure!(
			budget >= params.min_budget && budget >= spec.rounds.into(),
			Error::<T>::BudgetTooLow
		);
		let jobs = SubmitterJobs::<T>::get(&who);
		ensure!(jobs < params.max_jobs_per_submitter, Error::<T>::TooManySubmitterJobs);
		let deposit = params.job_deposit;
		let free = T::Currency::reducible_balance(&who, Preservation::Preserve, Fortitude::Polite);
		ensure!(free >= budget.saturating_add(deposit), Error::<T>::InsufficientBalance);
		let id = NextJobId::<T>::get();
		let now = frame_system::Pallet::<T>::block_number();
		let deadline = now.saturating_add(spec.periods.open);
		ActiveJobs::<T>::try_mutate(|a| a.try_push((id, deadline)))
			.map_err(|_| Error::<T>::TooManyActiveJobs)?;
		T::Currency::hold(&HoldReason::JobEscrow.into(), &who, budget)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		T::Currency::hold(&HoldReason::JobDeposit.into(), &who, deposit)
			.map_err(|_| Error::<T>::InsufficientBalance)?;
		SubmitterJobs::<T>::insert(&who, jobs.saturating_add(1));
		TotalEscrow::<T>::mutate(|total| *total = total.saturating_add(budget));
		NextJobId::<T>::put(id.saturating_add(1));
		let rounds = spec.rounds;
		let job = Job {
			submitter: who.clone(),
			latest_model: spec.initial_weights,
			spec,
			budget,
			escrow: budget,
			spent: Zero::zero(),
			status: JobStatus::Active,
			round: 1,
			phase: Phase::Open,
			deadline,
			completed_rounds: 0,
			created_at: now,
			deposit,
			voided_in_a_row: 0,
			own_voids_in_a_row: 0,
		};
		Jobs::<T>::insert(id, job);
		Self::deposit_event(Event::JobCreated { job: id, submitter: who, budget, rounds });
		Self::deposit_event(Event::RoundOpened { job: id, round: 1, deadline });
		Ok(id)
	}

	pub(crate) fn active_job(id: JobId) -> Result<JobOf<T>, DispatchError> {
		let job = Jobs::<T>::get(id).ok_or(Error::<T>::UnknownJob)?;
		ensure!(job.status == JobStatus::Active, Error::<T>::JobNotActive);
		Ok(job)
	}

	pub(crate) fn do_cancel_job(who: T::AccountId, id: JobId) -> DispatchResult {
		let mut job = Self::active_job(id)?;
		ensure!(job.submitter == who, Error::<T>::NotSubmitter);
		ensure!(job.round == 1 && job.phase == Phase::Open, Error::<T>::AlreadyStarted);
		let refunded = T::Currency::release(
			&HoldReason::JobEscrow.into(),
			&who,
			job.escrow,
			Precision::BestEffort,
		)?;
		TotalEscrow::<T>::mutate(|total| *total = total.saturating_sub(job.escrow));
		job.escrow = Zero::zero();
		job.status = JobStatus::Cancelled;
		Self::release_slot(id, &mut job, false);
		Jobs::<T>::insert(id, job);
		Applicants::<T>::remove(id);
		ActiveJobs::<T>::mutate(|a| a.retain(|(j, _)| *j != id));
		Self::deposit_event(Event::JobCancelled { job: id, refunded });
		Ok(())
	}

	/// Gives up an ending job's slot: its submitter's count goes down, and its deposit goes to
	/// the reward pool if `forfeit`; otherwise it stays held until the job's record is reaped
	/// ([`Pallet::reap_job`]). Records when the job ended. Returns what was forfeited.
	pub(crate) fn release_slot(id: JobId, job: &mut JobOf<T>, forfeit: bool) -> BalanceOf<T> {
		SubmitterJobs::<T>::mutate_exists(&job.submitter, |count| {
			*count = count.map(|n| n.saturating_sub(1)).filter(|n| *n > 0);
		});
		EndedAt::<T>::insert(id, frame_system::Pallet::<T>::block_number());
		if !forfeit || job.deposit.is_zero() {
			return Zero::zero();
		}
		let deposit = core::mem::take(&mut job.deposit);
		T::Currency::transfer_on_hold(
			&HoldReason::JobDeposit.into(),
			&job.submitter,
			&T::Rewards::pool_account(),
			deposit,
			Precision::BestEffort,
			Restriction::Free,
			Fortitude::Polite,
		)
		.unwrap_or_else(|e| {
			frame_support::defensive!("job deposit could not be forfeited", (id, e));
			Zero::zero()
		})
	}

	/// Removes an ended job's record once `JobRetention` has passed; returns its rounds (what
	/// the removal cost).
	pub(crate) fn do_reap_job(id: JobId) -> Result<RoundIndex, DispatchError> {
		let job = Jobs::<T>::get(id).ok_or(Error::<T>::UnknownJob)?;
		ensure!(job.status != JobStatus::Active, Error::<T>::JobNotEnded);
		let now = frame_system::Pallet::<T>::block_number();
		if let Some(ended) = EndedAt::<T>::get(id) {
			ensure!(
				now >= ended.saturating_add(T::JobRetention::get()),
				Error::<T>::RetentionNotOver
			);
		}
		let deposit = if job.deposit.is_zero() {
			Zero::zero()
		} else {
			T::Currency::release(
				&HoldReason::JobDeposit.into(),
				&job.submitter,
				job.deposit,
				Precision::BestEffort,
			)?
		};
		let rounds = job.spec.rounds;
		let _ = RoundModels::<T>::clear_prefix(id, rounds, None);
		T::Rewards::forget_job(id, rounds);
		let final_model = (job.completed_rounds > 0).then_some(job.latest_model);
		if let Some(model) = final_model {
			ArchivedModels::<T>::insert(id, ArchivedModel { model, rounds: job.completed_rounds });
		}
		Jobs::<T>::remove(id);
		EndedAt::<T>::remove(id);
		Self::deposit_event(Event::JobReaped { job: id, deposit, final_model });
		Ok(rounds)
	}

	/// The weight of reaping a job of `rounds` rounds.
	pub fn reap_job_weight(rounds: u32) -> Weight {
		T::WeightInfo::reap_job(rounds).saturating_add(T::Rewards::forget_job_weight(rounds))
	}

	pub(crate) fn do_apply(who: T::AccountId, id: JobId) -> DispatchResult {
		let job = Self::active_job(id)?;
		// While a round trains, its successor takes applications, drawn when the training
		// closes (`close_training`), so that the next round's workers are known while this one
		// is verified.
		let now = frame_system::Pallet::<T>::block_number();
		let round = match job.phase {
			Phase::Open => job.round,
			Phase::Training if job.round < job.spec.rounds => {
				// As for updates: nothing in the block before the draw, whose author knows the
				// randomness that seeds it and could add or censor applications against it.
				ensure!(now.saturating_add(One::one()) < job.deadline, Error::<T>::PhaseClosed);
				job.round.saturating_add(1)
			},
			Phase::Training | Phase::Verifying => return Err(Error::<T>::WrongPhase.into()),
		};
		ensure!(now <= job.deadline, Error::<T>::PhaseClosed);
		ensure!(T::Registry::eligible_worker(&who).is_some(), Error::<T>::NotEligible);
		Applicants::<T>::try_mutate(id, |list| -> DispatchResult {
			ensure!(!list.contains(&who), Error::<T>::AlreadyApplied);
			list.try_push(who.clone()).map_err(|_| Error::<T>::TooManyApplicants)?;
			Ok(())
		})?;
		Self::deposit_event(Event::Applied { job: id, round, worker: who });
		Ok(())
	}

	pub(crate) fn do_submit_update(
		who: T::AccountId,
		id: JobId,
		round: RoundIndex,
		update: Update,
	) -> DispatchResult {
		let mut job = Self::active_job(id)?;
		ensure!(job.round == round, Error::<T>::WrongRound);
		ensure!(job.phase == Phase::Training, Error::<T>::WrongPhase);
		let now = frame_system::Pallet::<T>::block_number();
		// The phase ends in the `on_initialize` of the deadline block, which draws the challenges
		// from the VRF output of its parent: that parent's author knows it before building the
		// block. So no update may be included in the block before the deadline, lest its author
		// grind the commitment root of an update it includes there against its own challenge.
		ensure!(now.saturating_add(One::one()) < job.deadline, Error::<T>::PhaseClosed);
		ensure!(update.samples > 0 && update.checkpoints > 0, Error::<T>::InvalidUpdate);
		ensure!(
			update.checkpoints == Self::segments_of(&job.spec),
			Error::<T>::WrongCheckpointCount
		);
		let mut slots = RoundWorkers::<T>::get(id);
		let slot = slots.iter_mut().find(|s| s.who == who).ok_or(Error::<T>::NotSelected)?;
		ensure!(!slot.submitted, Error::<T>::DuplicateSubmission);
		// A copy of another worker's update is accepted here and caught by the validators: its
		// commitment root binds the worker who trained it, so a copy is `Invalid` and slashed.
		// Rejecting copies on chain would let a selected worker front-run an honest update
		// with a copy from its own slot, so that the honest submission failed and was slashed
		// as a no-show.
		slot.submitted = true;
		let all_in = slots.iter().all(|s| s.submitted);
		RoundWorkers::<T>::insert(id, slots);
		Updates::<T>::insert(id, &who, update);
		let close = now.saturating_add(One::one()).saturating_add(One::one());
		if all_in && close < job.deadline {
			// Everyone submitted: close the phase two blocks later, so that the challenges come
			// from the VRF output of a block that includes no update (see above).
			job.deadline = close;
			Self::set_deadline(id, close);
			Jobs::<T>::insert(id, job);
		}
		Self::deposit_event(Event::UpdateSubmitted {
			job: id,
			round,
			worker: who,
			delta: update.delta,
			samples: update.samples,
		});
		Ok(())
	}

	/// The number of checkpoint segments an honest run of `spec` commits to: one every
	/// `checkpoint_interval` steps, the last one possibly shorter.
	pub fn segments_of(spec: &JobSpec<BlockNumberFor<T>>) -> u32 {
		spec.local_steps.div_ceil(spec.checkpoint_interval.max(1))
	}

	/// Set the cached deadline of an active job.
	pub(crate) fn set_deadline(id: JobId, deadline: BlockNumberFor<T>) {
		ActiveJobs::<T>::mutate(|a| {
			if let Some(e) = a.iter_mut().find(|(j, _)| *j == id) {
				e.1 = deadline;
			}
		});
	}
}

/// A selected worker has pending work until its round ends (its update, if any, is still to be
/// verified and may be slashed; its absence is slashed as a no-show), and so does a worker
/// drawn for a job's next round.
impl<T: Config> agora_primitives::PendingWork<T::AccountId> for Pallet<T> {
	fn has_pending_work(who: &T::AccountId, role: agora_primitives::Role) -> bool {
		let selected = |slots: WorkerSlotsOf<T>| slots.iter().any(|slot| &slot.who == who);
		role == agora_primitives::Role::Worker
			&& ActiveJobs::<T>::get().iter().any(|(id, _)| {
				selected(RoundWorkers::<T>::get(id)) || selected(NextRoundWorkers::<T>::get(id))
			})
	}

	fn has_pending_work_weight() -> Weight {
		let jobs = u64::from(T::MaxActiveJobs::get());
		T::DbWeight::get().reads(jobs.saturating_mul(2).saturating_add(1))
	}
}
