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
				Stage::Aggregation => {
					if v.aggregator.as_ref() == Some(who) && v.posted.is_none() {
						duties.push(Duty::Aggregate { job, round: v.round, deadline: v.deadline });
					}
					let voted = RoundValidators::<T>::get(job)
						.into_iter()
						.find(|r| &r.who == who)
						.map(|r| r.vote.is_some());
					if voted == Some(false) {
						duties.push(Duty::VoteAggregate {
							job,
							round: v.round,
							deadline: v.deadline,
						});
					}
				},
			}
		}
		duties
	}
}
