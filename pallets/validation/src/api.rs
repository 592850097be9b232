//! Read-only helpers behind the runtime API.

use crate::{pallet::*, types::*};
use agora_primitives::Duty;
use alloc::vec::Vec;
use frame_system::pallet_prelude::BlockNumberFor;

impl<T: Config> Pallet<T> {
	/// What `who` has to do as a validator or aggregator in verifications in progress.
	pub fn validator_duties(who: &T::AccountId) -> Vec<Duty<T::AccountId, BlockNumberFor<T>>> {
		let mut duties = Vec::new();
		for (job, _) in ActiveVerifications::<T>::get() {
			let Some(v) = Verifications::<T>::get(job) else { continue };
			match v.stage {
				Stage::Commit | Stage::Reveal => {
					for worker in v.workers.iter() {
						let Some(check) = Checks::<T>::get(job, worker) else { continue };
						let Some(a) = check.assignments.iter().find(|a| &a.validator == who) else {
							continue;
						};
						match (v.stage, a.commitment, a.revealed) {
							(Stage::Commit, None, _) => duties.push(Duty::Commit {
								job,
								round: v.round,
								worker: worker.clone(),
								segments: check.segments.clone().into_inner(),
								deadline: v.deadline,
							}),
							(Stage::Reveal, Some(_), None) => duties.push(Duty::Reveal {
								job,
								round: v.round,
								worker: worker.clone(),
								deadline: v.deadline,
							}),
							_ => {},
						}
					}
				},
				Stage::Aggregation | Stage::AggregateReveal => {
					// The aggregator's own vote is its posted aggregate; `None`: not a voter.
					let aggregator = v.aggregator.as_ref() == Some(who);
					let own = if aggregator {
						Some(v.posted)
					} else {
						RoundValidators::<T>::get(job)
							.into_iter()
							.find(|r| &r.who == who)
							.map(|r| r.vote)
					};
					let (round, deadline) = (v.round, v.deadline);
					match (v.stage, own) {
						(Stage::Aggregation, Some(None)) if aggregator => {
							duties.push(Duty::Aggregate { job, round, deadline })
						},
						(Stage::Aggregation, Some(None)) => {
							duties.push(Duty::VoteAggregate { job, round, deadline })
						},
						(Stage::AggregateReveal, Some(Some(AggregateVote::Committed(_)))) => {
							duties.push(Duty::RevealAggregate { job, round, deadline })
						},
						_ => {},
					}
				},
			}
		}
		duties
	}
}
