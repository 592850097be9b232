//! Audits: the draw, disputes, commit-reveal verdicts and their conclusion.

use crate::{audit_commitment_of, pallet::*, types::*, BalanceOf, BatchOf, WeightInfo};
use agora_primitives::{ParticipantRegistry, PendingWork, Role, SeededRng};
use alloc::vec::Vec;
use codec::Encode;
use frame_support::{
	ensure,
	pallet_prelude::{DispatchResult, Weight},
	traits::{
		fungible::{Inspect, Mutate, MutateHold},
		tokens::{Fortitude, Precision, Preservation, Restriction},
		Get, Randomness,
	},
	BoundedVec,
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{Hash, Saturating, UniqueSaturatedInto, Zero},
	DispatchError,
};

/// Domain tag of the audit draw's randomness subject.
const DRAW_TAG: [u8; 16] = *b"agora/audit-draw";

impl<T: Config> Pallet<T> {
	/// Draws the audits of the batches settled, and of the disputes raised, `audit_delay`
	/// blocks ago.
	pub(crate) fn draw_audits(now: BlockNumberFor<T>) -> Weight {
		let due = PendingDraws::<T>::take(now);
		let n = due.len() as u32;
		let params = ProtocolParams::<T>::get();
		for id in due {
			let Some(mut batch) = Batches::<T>::get(id) else { continue };
			if batch.status != BatchStatus::AwaitingDraw {
				continue;
			}
			let (seed, _) = T::Randomness::random(&(DRAW_TAG, id, batch.transcript).encode());
			let mut rng = SeededRng::<T::Hashing>::new(T::Hashing::hash(seed.as_ref()));
			let started = match batch.dispute {
				// A dispute replaced the batch's random draw; its own comes later.
				Some(dispute) if now < dispute.draw_at => continue,
				Some(dispute) => {
					batch.dispute = None;
					let client = Channels::<T>::get(batch.channel).map(|c| c.client);
					let started = client.clone().is_some_and(|client| {
						Self::start_audit(
							id,
							&mut batch,
							dispute.request,
							Some((client, dispute.bond)),
							&mut rng,
							&params,
						)
						.is_ok()
					});
					if let (false, Some(client)) = (started, client) {
						// Nobody could audit it: the client keeps its bond.
						let _ = T::Currency::release(
							&HoldReason::DisputeBond.into(),
							&client,
							dispute.bond,
							Precision::BestEffort,
						);
					}
					started
				},
				None => {
					let drawn = rng.next_below(1_000_000_000) < params.audit_rate.deconstruct();
					let count =
						batch.last_request.saturating_sub(batch.first_request).saturating_add(1);
					let offset: u64 =
						rng.next_u128_below(u128::from(count)).unique_saturated_into();
					let request = batch.first_request.saturating_add(offset);
					drawn
						&& Self::start_audit(id, &mut batch, request, None, &mut rng, &params)
							.is_ok()
				},
			};
			if !started {
				batch.status = BatchStatus::Open;
				Self::deposit_event(Event::AuditNotDrawn { batch: id });
			}
			Batches::<T>::insert(id, batch);
		}
		T::WeightInfo::draw_audits(n)
	}

	/// Draws the auditors of `request` of `batch` and starts its audit.
	fn start_audit(
		batch_id: BatchId,
		batch: &mut BatchOf<T>,
		request: u64,
		disputed_by: Option<(T::AccountId, BalanceOf<T>)>,
		rng: &mut SeededRng<T::Hashing>,
		params: &crate::ParamsOf<T>,
	) -> DispatchResult {
		let channel = Channels::<T>::get(batch.channel).ok_or(Error::<T>::UnknownChannel)?;
		let mut candidates: Vec<(T::AccountId, u128)> = T::Registry::eligible_validators()
			.into_iter()
			.filter(|(who, _)| *who != channel.provider && *who != channel.client)
			.map(|(who, stake)| (who, stake.unique_saturated_into()))
			.collect();
		let mut auditors: BoundedVec<Auditor<T::AccountId>, T::MaxAuditors> = BoundedVec::new();
		while (auditors.len() as u32) < params.auditors {
			let Some((who, stake)) = rng.take_weighted(&mut candidates) else { break };
			if auditors.try_push(Auditor { who, stake, commitment: None, verdict: None }).is_err() {
				break;
			}
		}
		ensure!(!auditors.is_empty(), Error::<T>::NoAuditors);
		let now = frame_system::Pallet::<T>::block_number();
		let commit_deadline = now.saturating_add(params.commit_period);
		let reveal_deadline = commit_deadline.saturating_add(params.reveal_period);
		let audit = NextAudit::<T>::mutate(|next| {
			let id = *next;
			*next = next.saturating_add(1);
			id
		});
		for auditor in auditors.iter() {
			AuditorDuties::<T>::mutate(&auditor.who, |n| *n = n.saturating_add(1));
		}
		let names: BoundedVec<T::AccountId, T::MaxAuditors> =
			BoundedVec::truncate_from(auditors.iter().map(|a| a.who.clone()).collect());
		let disputed = disputed_by.is_some();
		Audits::<T>::insert(
			audit,
			Audit {
				batch: batch_id,
				request,
				disputed_by,
				auditors,
				commit_deadline,
				reveal_deadline,
			},
		);
		batch.status = BatchStatus::Audited(audit);
		Self::deposit_event(Event::AuditStarted {
			audit,
			batch: batch_id,
			request,
			disputed,
			auditors: names,
			commit_deadline,
			reveal_deadline,
		});
		Ok(())
	}

	pub(crate) fn do_dispute(who: T::AccountId, id: BatchId, request: u64) -> DispatchResult {
		let mut batch = Batches::<T>::get(id).ok_or(Error::<T>::UnknownBatch)?;
		let channel = Channels::<T>::get(batch.channel).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(channel.client == who, Error::<T>::NotClient);
		ensure!(
			!matches!(batch.status, BatchStatus::Audited(_)) && batch.dispute.is_none(),
			Error::<T>::UnderAudit
		);
		let params = ProtocolParams::<T>::get();
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(
			now <= batch.settled_at.saturating_add(params.dispute_window),
			Error::<T>::DisputeWindowClosed
		);
		ensure!(
			(batch.first_request..=batch.last_request).contains(&request),
			Error::<T>::RequestOutsideBatch
		);
		let draw_at = now.saturating_add(params.audit_delay);
		PendingDraws::<T>::try_append(draw_at, id).map_err(|_| Error::<T>::DrawQueueFull)?;
		T::Currency::hold(&HoldReason::DisputeBond.into(), &who, params.dispute_bond)?;
		batch.dispute = Some(Dispute { request, bond: params.dispute_bond, draw_at });
		batch.status = BatchStatus::AwaitingDraw;
		Batches::<T>::insert(id, batch);
		Self::deposit_event(Event::Disputed { batch: id, request, draw_at });
		Ok(())
	}

	pub(crate) fn do_commit_audit(
		who: T::AccountId,
		id: AuditId,
		commitment: agora_primitives::H256,
	) -> DispatchResult {
		Audits::<T>::try_mutate(id, |audit| -> DispatchResult {
			let audit = audit.as_mut().ok_or(Error::<T>::UnknownAudit)?;
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now <= audit.commit_deadline, Error::<T>::CommitClosed);
			let auditor =
				audit.auditors.iter_mut().find(|a| a.who == who).ok_or(Error::<T>::NotAuditor)?;
			ensure!(auditor.commitment.is_none(), Error::<T>::AlreadyCommitted);
			auditor.commitment = Some(commitment);
			Ok(())
		})?;
		Self::deposit_event(Event::AuditCommitted { audit: id, auditor: who });
		Ok(())
	}

	pub(crate) fn do_reveal_audit(
		who: T::AccountId,
		id: AuditId,
		verdict: AuditVerdict,
		salt: [u8; 32],
	) -> DispatchResult {
		Audits::<T>::try_mutate(id, |audit| -> DispatchResult {
			let audit = audit.as_mut().ok_or(Error::<T>::UnknownAudit)?;
			let now = frame_system::Pallet::<T>::block_number();
			ensure!(now > audit.commit_deadline, Error::<T>::RevealNotOpen);
			ensure!(now <= audit.reveal_deadline, Error::<T>::RevealClosed);
			let auditor =
				audit.auditors.iter_mut().find(|a| a.who == who).ok_or(Error::<T>::NotAuditor)?;
			let commitment = auditor.commitment.ok_or(Error::<T>::NotCommitted)?;
			ensure!(auditor.verdict.is_none(), Error::<T>::AlreadyRevealed);
			ensure!(
				audit_commitment_of(id, verdict, &salt, &who) == commitment,
				Error::<T>::CommitmentMismatch
			);
			auditor.verdict = Some(verdict);
			Ok(())
		})?;
		Self::deposit_event(Event::AuditRevealed { audit: id, auditor: who, verdict });
		Ok(())
	}

	/// The outcome of revealed verdicts weighted by stake: `Wrong` and `Unavailable` count
	/// together (the provider answered wrongly or would not show its answer).
	pub fn tally(auditors: &[Auditor<T::AccountId>]) -> AuditOutcome {
		let (mut correct, mut failed) = (0u128, 0u128);
		for auditor in auditors {
			match auditor.verdict {
				Some(AuditVerdict::Correct) => correct = correct.saturating_add(auditor.stake),
				Some(AuditVerdict::Wrong | AuditVerdict::Unavailable) => {
					failed = failed.saturating_add(auditor.stake)
				},
				None => {},
			}
		}
		if failed > correct {
			AuditOutcome::Failed
		} else if correct > failed {
			AuditOutcome::Passed
		} else {
			AuditOutcome::Undecided
		}
	}

	pub(crate) fn do_conclude_audit(id: AuditId) -> DispatchResult {
		let audit = Audits::<T>::get(id).ok_or(Error::<T>::UnknownAudit)?;
		let now = frame_system::Pallet::<T>::block_number();
		let all_revealed = audit.auditors.iter().all(|a| a.verdict.is_some());
		ensure!(now > audit.reveal_deadline || all_revealed, Error::<T>::AuditRunning);
		let mut batch = Batches::<T>::get(audit.batch).ok_or_else(|| {
			frame_support::defensive!("audit of an unknown batch", id);
			DispatchError::from(Error::<T>::UnknownBatch)
		})?;
		let channel = Channels::<T>::get(batch.channel).ok_or_else(|| {
			frame_support::defensive!("audit of an unknown channel", id);
			DispatchError::from(Error::<T>::UnknownChannel)
		})?;
		let params = ProtocolParams::<T>::get();
		let outcome = Self::tally(&audit.auditors);
		let (mut slashed, mut refunded) = (Zero::zero(), Zero::zero());
		match outcome {
			AuditOutcome::Failed => {
				slashed =
					T::Registry::slash(&channel.provider, Role::Worker, params.wrong_answer_slash);
				refunded = Self::refund_batch(audit.batch, &batch);
			},
			AuditOutcome::Passed | AuditOutcome::Undecided => {
				batch.status = BatchStatus::Open;
				Batches::<T>::insert(audit.batch, batch);
			},
		}
		if let Some((client, bond)) = &audit.disputed_by {
			Self::settle_bond(client, &channel.provider, *bond, outcome);
		}
		Self::judge_auditors(id, &audit.auditors, outcome, &params);
		Audits::<T>::remove(id);
		Self::deposit_event(Event::AuditConcluded {
			audit: id,
			batch: audit.batch,
			outcome,
			slashed,
			refunded,
		});
		Ok(())
	}

	/// A dispute's bond: back to the client unless the audit passed, when it compensates the
	/// provider for a dispute it did not deserve.
	fn settle_bond(
		client: &T::AccountId,
		provider: &T::AccountId,
		bond: BalanceOf<T>,
		outcome: AuditOutcome,
	) {
		let reason = HoldReason::DisputeBond.into();
		let result = if outcome == AuditOutcome::Passed {
			T::Currency::transfer_on_hold(
				&reason,
				client,
				provider,
				bond,
				Precision::BestEffort,
				Restriction::Free,
				Fortitude::Polite,
			)
		} else {
			T::Currency::release(&reason, client, bond, Precision::BestEffort)
		};
		if let Err(e) = result {
			frame_support::defensive!("dispute bond could not be settled", e);
		}
	}

	/// Pays the auditors on a decided outcome's side from the pot and slashes those against
	/// it; releases everyone's duty.
	fn judge_auditors(
		id: AuditId,
		auditors: &[Auditor<T::AccountId>],
		outcome: AuditOutcome,
		params: &crate::ParamsOf<T>,
	) {
		let pot = Self::pot_account();
		for auditor in auditors {
			AuditorDuties::<T>::mutate_exists(&auditor.who, |n| {
				*n = n.map(|n| n.saturating_sub(1)).filter(|n| *n > 0)
			});
			let Some(verdict) = auditor.verdict else { continue };
			let agrees = match outcome {
				AuditOutcome::Passed => verdict == AuditVerdict::Correct,
				AuditOutcome::Failed => verdict != AuditVerdict::Correct,
				AuditOutcome::Undecided => continue,
			};
			if agrees {
				let available =
					T::Currency::reducible_balance(&pot, Preservation::Preserve, Fortitude::Polite);
				let amount = params.audit_reward.min(available);
				if amount.is_zero() {
					continue;
				}
				if T::Currency::transfer(&pot, &auditor.who, amount, Preservation::Preserve).is_ok()
				{
					Self::deposit_event(Event::AuditorRewarded {
						audit: id,
						auditor: auditor.who.clone(),
						amount,
					});
				}
			} else {
				let amount =
					T::Registry::slash(&auditor.who, Role::Validator, params.dissent_slash);
				Self::deposit_event(Event::AuditorSlashed {
					audit: id,
					auditor: auditor.who.clone(),
					amount,
				});
			}
		}
	}

	/// Invariants of audits.
	#[cfg(any(test, feature = "try-runtime"))]
	pub(crate) fn audits_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		let mut duties: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		for (id, audit) in Audits::<T>::iter() {
			ensure!(id < NextAudit::<T>::get(), "audit id from the future");
			ensure!(
				Batches::<T>::get(audit.batch)
					.is_some_and(|b| b.status == BatchStatus::Audited(id)),
				"audit of a batch not under it"
			);
			ensure!(!audit.auditors.is_empty(), "audit without auditors");
			for auditor in audit.auditors.iter() {
				*duties.entry(auditor.who.clone()).or_default() += 1;
			}
		}
		for (who, n) in AuditorDuties::<T>::iter() {
			ensure!(duties.get(&who) == Some(&n), "auditor duty count out of step");
		}
		ensure!(duties.len() == AuditorDuties::<T>::iter().count(), "duty without a count");
		Ok(())
	}

	/// Every invariant of the pallet.
	#[cfg(any(test, feature = "try-runtime"))]
	pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		Self::catalogue_try_state()?;
		Self::channels_try_state()?;
		Self::challenges_try_state()?;
		Self::audits_try_state()
	}
}

impl<T: Config> PendingWork<T::AccountId> for Pallet<T> {
	/// A provider's stake answers for its answers while it offers a model or serves a channel;
	/// an auditor's while it is drawn for an audit in progress.
	fn has_pending_work(who: &T::AccountId, role: Role) -> bool {
		match role {
			Role::Worker => {
				OfferCount::<T>::contains_key(who) || ProviderChannels::<T>::contains_key(who)
			},
			Role::Validator => AuditorDuties::<T>::contains_key(who),
		}
	}

	fn has_pending_work_weight() -> Weight {
		T::DbWeight::get().reads(2)
	}
}
