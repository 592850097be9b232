//! The round state machine: phase transitions in `on_initialize`, the verification callback,
//! settlement and finalization.

use crate::{pallet::*, types::*, BalanceOf, JobOf, WeightInfo, WorkerSlotsOf};
use agora_primitives::{
	Dataset, JobId, ModelCatalogue, ParticipantRegistry, RewardPool, Role, RoundIndex,
	RoundOutcome, RoundVerifier, SeededRng, UpdateRef, VerificationObserver, VerificationRequest,
	VoidReason,
};
use alloc::vec::Vec;
use codec::Encode;
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::MutateHold,
		tokens::{Fortitude, Precision, Restriction},
		Randomness,
	},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{Bounded, Saturating, Zero},
	Perbill,
};

impl<T: Config> Pallet<T> {
	/// Advance the jobs whose phase deadline has passed, at most `MaxTransitionsPerBlock`, the
	/// longest overdue first (then the oldest job): a job that waits is served before any job
	/// that became due after it, so no job, early or late, starves the others.
	pub(crate) fn process_deadlines(now: BlockNumberFor<T>) -> Weight {
		let active = ActiveJobs::<T>::get();
		let mut weight = T::WeightInfo::on_initialize_idle(active.len() as u32);
		let max = T::MaxTransitionsPerBlock::get() as usize;
		let mut due: Vec<(BlockNumberFor<T>, JobId)> = active
			.iter()
			.filter(|(_, deadline)| *deadline <= now)
			.map(|(id, deadline)| (*deadline, *id))
			.collect();
		due.sort_unstable();
		for (_, id) in due.into_iter().take(max) {
			weight = weight.saturating_add(Self::advance(id, now));
		}
		weight
	}

	/// Upper bound of the weight of one transition.
	pub fn max_transition_weight() -> Weight {
		let w = T::MaxWorkersPerRound::get();
		T::WeightInfo::close_open(T::MaxApplicants::get(), w)
			.max(
				T::WeightInfo::close_training(w)
					.saturating_add(T::WeightInfo::close_open(T::MaxApplicants::get(), w))
					.saturating_add(T::Verifier::start_verification_weight(w)),
			)
			.saturating_add(T::WeightInfo::finish_round(w, agora_primitives::MAX_SHARDS))
			// A round that ends starts the next one with its drawn workers.
			.saturating_add(T::WeightInfo::close_open(w, w))
	}

	fn advance(id: JobId, now: BlockNumberFor<T>) -> Weight {
		let Some(job) = Jobs::<T>::get(id) else {
			// Stale entry: drop it.
			ActiveJobs::<T>::mutate(|a| a.retain(|(j, _)| *j != id));
			return T::DbWeight::get().reads_writes(1, 1);
		};
		match job.phase {
			Phase::Open => Self::close_open(id, job, now),
			Phase::Training => Self::close_training(id, job, now),
			Phase::Verifying => {
				// Waiting for the verifier; never due.
				Self::set_deadline(id, BlockNumberFor::<T>::max_value());
				T::DbWeight::get().reads_writes(1, 1)
			},
		}
	}

	fn seed(tag: &[u8], id: JobId, round: RoundIndex) -> T::Hash {
		T::Randomness::random(&(tag, id, round).encode()).0
	}

	/// End of `Open`: draw the workers, split the round's samples among them, start training.
	fn close_open(id: JobId, job: JobOf<T>, now: BlockNumberFor<T>) -> Weight {
		let applicants = Applicants::<T>::take(id);
		let n_applicants = applicants.len() as u32;
		let Some(slots) = Self::draw_workers(id, &job, job.round, applicants) else {
			return T::WeightInfo::close_open(n_applicants, 0).saturating_add(Self::end_round(
				id,
				job,
				RoundOutcome::Voided(VoidReason::NoWorkers),
				now,
			));
		};
		let n = slots.len() as u32;
		Self::start_training(id, job, slots, now);
		T::WeightInfo::close_open(n_applicants, n)
	}

	/// Draws `round`'s workers among the `applicants` still eligible, by randomness, and splits
	/// the round's samples among them; `None` if none is eligible.
	///
	/// Every selected worker runs the spec's `local_steps` steps, which replay verifies, so each
	/// gets an equal share of `samples_per_round` (the first `samples % n` one more). A quota
	/// never follows a worker's declared capability: what a participant says about itself is
	/// not checked, and would let it claim a larger share of the reward.
	fn draw_workers(
		id: JobId,
		job: &JobOf<T>,
		round: RoundIndex,
		applicants: BoundedVec<T::AccountId, T::MaxApplicants>,
	) -> Option<WorkerSlotsOf<T>> {
		let mut eligible: Vec<T::AccountId> =
			applicants.into_iter().filter(|a| T::Registry::eligible_worker(a).is_some()).collect();
		if eligible.is_empty() {
			return None;
		}
		let mut rng = SeededRng::<T::Hashing>::new(Self::seed(b"agora/tasks/select", id, round));
		rng.shuffle(&mut eligible);
		eligible.truncate(job.spec.workers_per_round as usize);
		let selected = (eligible.len() as u32).max(1);
		let (share, extra) =
			(job.spec.samples_per_round / selected, job.spec.samples_per_round % selected);
		let slots = eligible.into_iter().enumerate().map(|(position, who)| {
			let quota = share.saturating_add(u32::from((position as u32) < extra)).max(1);
			WorkerSlot { who, quota, submitted: false }
		});
		// workers_per_round <= the bound (`check_spec`), so nothing is cut.
		Some(BoundedVec::truncate_from(slots.collect()))
	}

	/// The workers and quotas of `slots`, as the events announce them.
	fn announced(
		slots: &WorkerSlotsOf<T>,
	) -> BoundedVec<(T::AccountId, u32), T::MaxWorkersPerRound> {
		BoundedVec::truncate_from(slots.iter().map(|s| (s.who.clone(), s.quota)).collect())
	}

	/// Starts the training of `job`'s current round with the workers of `slots`.
	fn start_training(
		id: JobId,
		mut job: JobOf<T>,
		slots: WorkerSlotsOf<T>,
		now: BlockNumberFor<T>,
	) {
		let workers = Self::announced(&slots);
		RoundWorkers::<T>::insert(id, slots);
		let deadline = now.saturating_add(job.spec.periods.training);
		job.phase = Phase::Training;
		job.deadline = deadline;
		let round = job.round;
		Jobs::<T>::insert(id, job);
		Self::set_deadline(id, deadline);
		Self::deposit_event(Event::TrainingStarted { job: id, round, workers, deadline });
	}

	/// At the end of `Training`, draws the next round's workers from the applications taken
	/// while this round trained (none in the last round), so that they know they will train
	/// while this round is verified; the next round then starts training as soon as this one
	/// ends. Without such applications, the next round opens for applications as before.
	fn draw_next_round(id: JobId, job: &JobOf<T>, no_shows: &[T::AccountId]) -> Weight {
		let mut applicants = Applicants::<T>::take(id);
		let n_applicants = applicants.len() as u32;
		let round = job.round.saturating_add(1);
		applicants.retain(|a| !no_shows.contains(a));
		if applicants.is_empty() || job.round >= job.spec.rounds {
			return T::WeightInfo::close_open(n_applicants, 0);
		}
		let Some(slots) = Self::draw_workers(id, job, round, applicants) else {
			return T::WeightInfo::close_open(n_applicants, 0);
		};
		let n = slots.len() as u32;
		let workers = Self::announced(&slots);
		NextRoundWorkers::<T>::insert(id, slots);
		Self::deposit_event(Event::NextRoundDrawn { job: id, round, workers });
		T::WeightInfo::close_open(n_applicants, n)
	}

	/// End of `Training`: slash no-shows, draw the next round's workers, hand the updates to
	/// the verifier.
	fn close_training(id: JobId, mut job: JobOf<T>, now: BlockNumberFor<T>) -> Weight {
		let slots = RoundWorkers::<T>::get(id);
		let n = slots.len() as u32;
		let no_show = ProtocolParams::<T>::get().no_show_slash;
		let mut refs = Vec::new();
		let mut no_shows = Vec::new();
		for slot in slots.iter() {
			match Updates::<T>::get(id, &slot.who) {
				Some(u) if slot.submitted => refs.push(UpdateRef {
					worker: slot.who.clone(),
					checkpoint_root: u.checkpoint_root,
					checkpoints: u.checkpoints,
				}),
				_ => {
					let slashed = T::Registry::slash(&slot.who, Role::Worker, no_show);
					Self::deposit_event(Event::NoShowSlashed {
						job: id,
						round: job.round,
						worker: slot.who.clone(),
						slashed,
					});
					no_shows.push(slot.who.clone());
				},
			}
		}
		// A no-show is not drawn for the next round, although it applied when it was still
		// there: a worker that is down would otherwise pay a second no-show slash for one
		// outage.
		let draw_weight = Self::draw_next_round(id, &job, &no_shows);
		let weight = T::WeightInfo::close_training(n).saturating_add(draw_weight);
		if refs.is_empty() {
			return weight.saturating_add(Self::end_round(
				id,
				job,
				RoundOutcome::Voided(VoidReason::NoUpdates),
				now,
			));
		}
		let count = refs.len() as u32;
		let request = VerificationRequest {
			mode: job.spec.mode,
			validators_per_update: job.spec.validators_per_update,
			commit: job.spec.periods.commit,
			reveal: job.spec.periods.reveal,
			aggregation: job.spec.periods.aggregation,
		};
		let verify_weight = T::Verifier::start_verification_weight(count);
		match frame_support::storage::with_storage_layer(|| {
			T::Verifier::start_verification(id, job.round, request, refs)
		}) {
			Ok(()) => {
				job.phase = Phase::Verifying;
				job.deadline = BlockNumberFor::<T>::max_value();
				let round = job.round;
				Jobs::<T>::insert(id, job);
				Self::set_deadline(id, BlockNumberFor::<T>::max_value());
				Self::deposit_event(Event::VerificationStarted { job: id, round, updates: count });
				weight.saturating_add(verify_weight)
			},
			Err(e) => {
				log::warn!(target: "runtime::tasks", "job {id}: verification could not start: {e:?}");
				weight.saturating_add(verify_weight).saturating_add(Self::end_round(
					id,
					job,
					RoundOutcome::Voided(VoidReason::VerifierUnavailable),
					now,
				))
			},
		}
	}

	/// The budget slice of `round`: `budget / rounds`, the last round taking the remainder,
	/// never more than the escrow.
	pub fn round_slice(job: &JobOf<T>) -> BalanceOf<T> {
		let rounds: BalanceOf<T> = job.spec.rounds.max(1).into();
		let per_round = job.budget / rounds;
		let slice = if job.round >= job.spec.rounds {
			job.budget.saturating_sub(per_round.saturating_mul(rounds.saturating_sub(1u32.into())))
		} else {
			per_round
		};
		slice.min(job.escrow)
	}

	/// Record the outcome of the current round, pay it if completed, clean up, and open the next
	/// round or finalize.
	pub(crate) fn end_round(
		id: JobId,
		mut job: JobOf<T>,
		outcome: RoundOutcome<T::AccountId>,
		now: BlockNumberFor<T>,
	) -> Weight {
		let slots = RoundWorkers::<T>::take(id);
		let round = job.round;
		let mut weight = Weight::zero();
		match outcome {
			RoundOutcome::Completed { model, workers, validators } => {
				let mut worker_weights = Vec::with_capacity(workers.len());
				let mut total_samples = 0u128;
				for (who, score) in workers {
					let Some(slot) = slots.iter().find(|s| s.who == who) else { continue };
					let samples =
						Updates::<T>::get(id, &who).map(|u| u.samples).unwrap_or(0).min(slot.quota);
					total_samples = total_samples.saturating_add(u128::from(samples));
					worker_weights.push((
						who,
						u128::from(score.deconstruct()).saturating_mul(u128::from(samples)),
					));
				}
				// The model's holdout score: the validators' consensus scores of the updates it
				// aggregates, weighted by the samples each trained on.
				let weighted =
					worker_weights.iter().fold(0u128, |sum, (_, w)| sum.saturating_add(*w));
				let score = weighted
					.checked_div(total_samples)
					.and_then(|parts| u32::try_from(parts).ok())
					.map(Perbill::from_parts)
					.unwrap_or_default();
				let providers: Vec<T::AccountId> = match &job.spec.dataset {
					Dataset::Shards(shards) => {
						shards.iter().filter_map(T::Registry::shard_provider).collect()
					},
					Dataset::Private => Vec::new(),
				};
				let slice = Self::round_slice(&job);
				let pool = T::Rewards::pool_account();
				let paid = if slice.is_zero() {
					Zero::zero()
				} else {
					T::Currency::transfer_on_hold(
						&HoldReason::JobEscrow.into(),
						&job.submitter,
						&pool,
						slice,
						Precision::BestEffort,
						Restriction::Free,
						Fortitude::Polite,
					)
					.unwrap_or_else(|e| {
						log::error!(target: "runtime::tasks", "job {id}: budget transfer failed: {e:?}");
						Zero::zero()
					})
				};
				job.escrow = job.escrow.saturating_sub(paid);
				job.spent = job.spent.saturating_add(paid);
				let outstanding = TotalEscrow::<T>::mutate(|total| {
					*total = total.saturating_sub(paid);
					*total
				});
				T::Rewards::settle_round(
					id,
					round,
					paid,
					outstanding,
					&worker_weights,
					&validators,
					&providers,
				);
				weight = weight.saturating_add(T::Rewards::settle_round_weight(
					worker_weights.len() as u32,
					validators.len() as u32,
					providers.len() as u32,
				));
				RoundModels::<T>::insert(id, round, RoundRecord { model, completed_at: now, paid });
				job.latest_model = model;
				weight = weight.saturating_add(T::Catalogue::record_version(
					id,
					round,
					&job.submitter,
					&job.spec.architecture,
					model,
					score,
				));
				job.completed_rounds = job.completed_rounds.saturating_add(1);
				job.voided_in_a_row = 0;
				job.own_voids_in_a_row = 0;
				Self::deposit_event(Event::RoundCompleted { job: id, round, model, paid });
			},
			RoundOutcome::Voided(reason) => {
				job.voided_in_a_row = job.voided_in_a_row.saturating_add(1);
				job.own_voids_in_a_row =
					if matches!(reason, VoidReason::NoWorkers | VoidReason::HeldOutUnavailable) {
						job.own_voids_in_a_row.saturating_add(1)
					} else {
						0
					};
				Self::deposit_event(Event::RoundVoided { job: id, round, reason });
			},
		}
		for s in slots.iter() {
			Updates::<T>::remove(id, &s.who);
		}
		weight = weight.saturating_add(T::WeightInfo::finish_round(slots.len() as u32, 0));
		let max_voided = ProtocolParams::<T>::get().max_voided_rounds;
		if job.voided_in_a_row >= max_voided {
			// Nobody can or will run it: end it, and free its slot. The deposit pays for the
			// slot only when the job itself is the reason (no worker ever applied, or its
			// submitter withheld the held-out data its updates are judged by).
			let voided = job.voided_in_a_row;
			let own_doing = job.own_voids_in_a_row >= max_voided;
			let forfeited = Self::release_slot(id, &mut job, own_doing);
			Self::deposit_event(Event::JobAbandoned { job: id, voided, forfeited });
			Self::finalize(id, job);
		} else if job.round >= job.spec.rounds {
			Self::release_slot(id, &mut job, false);
			Self::finalize(id, job);
		} else {
			job.round = job.round.saturating_add(1);
			let mut drawn = NextRoundWorkers::<T>::take(id);
			let n_drawn = drawn.len() as u32;
			// Drawn when this round's training closed, before its verification: a worker
			// slashed below the minimum stake since (a cheat caught in this round), or leaving,
			// no longer takes part. The others keep their quotas.
			drawn.retain(|s| T::Registry::eligible_worker(&s.who).is_some());
			if !drawn.is_empty() {
				Self::start_training(id, job, drawn, now);
				return weight.saturating_add(T::WeightInfo::close_open(n_drawn, n_drawn));
			}
			job.phase = Phase::Open;
			let deadline = now.saturating_add(job.spec.periods.open);
			job.deadline = deadline;
			let round = job.round;
			Jobs::<T>::insert(id, job);
			Self::set_deadline(id, deadline);
			Self::deposit_event(Event::RoundOpened { job: id, round, deadline });
		}
		weight
	}

	fn finalize(id: JobId, mut job: JobOf<T>) {
		let refunded = if job.escrow.is_zero() {
			Zero::zero()
		} else {
			T::Currency::release(
				&HoldReason::JobEscrow.into(),
				&job.submitter,
				job.escrow,
				Precision::BestEffort,
			)
			.unwrap_or_else(|e| {
				log::error!(target: "runtime::tasks", "job {id}: refund failed: {e:?}");
				Zero::zero()
			})
		};
		TotalEscrow::<T>::mutate(|total| *total = total.saturating_sub(job.escrow));
		job.escrow = Zero::zero();
		job.status = JobStatus::Finalized;
		let final_model = job.latest_model;
		Jobs::<T>::insert(id, job);
		Applicants::<T>::remove(id);
		NextRoundWorkers::<T>::remove(id);
		ActiveJobs::<T>::mutate(|a| a.retain(|(j, _)| *j != id));
		Self::deposit_event(Event::JobFinalized { job: id, final_model, refunded });
	}

	/// Invariants: escrow holds, budgets, phases.
	#[cfg(any(feature = "try-runtime", test))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use frame_support::traits::fungible::InspectHold;
		let active = ActiveJobs::<T>::get();
		// Per submitter: escrow, deposit, active jobs.
		let mut held: alloc::collections::BTreeMap<
			T::AccountId,
			(BalanceOf<T>, BalanceOf<T>, u32),
		> = Default::default();
		let mut n_active: usize = 0;
		for (id, job) in Jobs::<T>::iter() {
			ensure!(
				job.spent.saturating_add(job.escrow) <= job.budget,
				"spent + escrow exceeds budget"
			);
			let entry = active.iter().find(|(j, _)| *j == id);
			let (escrow, deposit, count) = held.entry(job.submitter.clone()).or_default();
			*escrow = escrow.saturating_add(job.escrow);
			*deposit = deposit.saturating_add(job.deposit);
			match job.status {
				JobStatus::Active => {
					*count = count.saturating_add(1);
					n_active = n_active.saturating_add(1);

					let (_, deadline) = entry.ok_or("active job missing from ActiveJobs")?;
					ensure!(job.round >= 1 && job.round <= job.spec.rounds, "round out of range");
					match job.phase {
						Phase::Open | Phase::Training => {
							ensure!(*deadline == job.deadline, "cached deadline differs")
						},
						Phase::Verifying => ensure!(
							*deadline == BlockNumberFor::<T>::max_value(),
							"verifying job has a deadline"
						),
					}
					match job.phase {
						Phase::Open => {
							ensure!(!RoundWorkers::<T>::contains_key(id), "open round has workers")
						},
						// Applications for the next round, if there is one.
						Phase::Training => ensure!(
							job.round < job.spec.rounds || Applicants::<T>::get(id).is_empty(),
							"last round takes applications"
						),
						Phase::Verifying => ensure!(
							Applicants::<T>::get(id).is_empty(),
							"verifying round has applicants"
						),
					}
					// Drawn at the end of the training, taken when the round ends.
					ensure!(
						job.phase == Phase::Verifying || !NextRoundWorkers::<T>::contains_key(id),
						"next round drawn outside verification"
					);
				},
				JobStatus::Cancelled | JobStatus::Finalized => {
					ensure!(entry.is_none(), "ended job in ActiveJobs");
					ensure!(job.escrow.is_zero(), "ended job keeps escrow");
					ensure!(!RoundWorkers::<T>::contains_key(id), "ended job has round workers");
					ensure!(Applicants::<T>::get(id).is_empty(), "ended job has applicants");
					ensure!(
						!NextRoundWorkers::<T>::contains_key(id),
						"ended job has next round workers"
					);
				},
			}
			ensure!(job.completed_rounds <= job.round, "more completed rounds than rounds");
		}
		ensure!(active.len() == n_active, "ActiveJobs has extra entries");
		let escrowed =
			held.values().fold(BalanceOf::<T>::zero(), |sum, (e, _, _)| sum.saturating_add(*e));
		ensure!(TotalEscrow::<T>::get() == escrowed, "TotalEscrow differs from the jobs' escrow");
		for (who, (escrow, deposit, count)) in &held {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::JobEscrow.into(), who) == *escrow,
				"escrow hold differs from job escrows"
			);
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::JobDeposit.into(), who) == *deposit,
				"deposit hold differs from job deposits"
			);
			ensure!(SubmitterJobs::<T>::get(who) == *count, "submitter job count differs");
		}
		for (who, _) in SubmitterJobs::<T>::iter() {
			ensure!(held.contains_key(&who), "job count of an account without jobs");
		}
		for (id, _) in EndedAt::<T>::iter() {
			let job = Jobs::<T>::get(id).ok_or("end recorded for a reaped or unknown job")?;
			ensure!(job.status != JobStatus::Active, "end recorded for an active job");
		}
		for (id, _) in ArchivedModels::<T>::iter() {
			ensure!(!Jobs::<T>::contains_key(id), "archived job still has its record");
		}
		for (id, _, _) in Updates::<T>::iter() {
			let job = Jobs::<T>::get(id).ok_or("update of unknown job")?;
			ensure!(job.status == JobStatus::Active && job.phase != Phase::Open, "stray update");
		}
		Ok(())
	}
}

impl<T: Config> VerificationObserver<T::AccountId> for Pallet<T> {
	fn on_verified(job: JobId, round: RoundIndex, outcome: RoundOutcome<T::AccountId>) -> Weight {
		let Some(j) = Jobs::<T>::get(job) else { return T::DbWeight::get().reads(1) };
		if j.status != JobStatus::Active || j.round != round || j.phase != Phase::Verifying {
			log::warn!(target: "runtime::tasks", "job {job}: unexpected verification result for round {round}");
			return T::DbWeight::get().reads(1);
		}
		let now = frame_system::Pallet::<T>::block_number();
		Self::end_round(job, j, outcome, now)
	}

	fn on_verified_weight() -> Weight {
		let w = T::MaxWorkersPerRound::get();
		T::WeightInfo::finish_round(w, agora_primitives::MAX_SHARDS)
			// The next round starting with the workers drawn for it.
			.saturating_add(T::WeightInfo::close_open(w, w))
			.saturating_add(T::Rewards::settle_round_weight(
				w,
				w.saturating_mul(T::MaxValidatorsPerUpdate::get()),
				agora_primitives::MAX_SHARDS,
			))
			.saturating_add(T::Catalogue::record_version_weight())
	}
}
