//! Read-only helpers behind the runtime API (`pallet-tasks-runtime-api`).

use crate::{pallet::*, types::*, BalanceOf};
use agora_primitives::{Duty, JobDetails, JobId, JobStatusView, RoundStatus};
use alloc::vec::Vec;
use frame_system::pallet_prelude::BlockNumberFor;

impl<T: Config> Pallet<T> {
	fn status_view(status: JobStatus, phase: Phase) -> JobStatusView {
		match (status, phase) {
			(JobStatus::Cancelled, _) => JobStatusView::Cancelled,
			(JobStatus::Finalized, _) => JobStatusView::Finalized,
			(JobStatus::Active, Phase::Open) => JobStatusView::Open,
			(JobStatus::Active, Phase::Training) => JobStatusView::Training,
			(JobStatus::Active, Phase::Verifying) => JobStatusView::Verifying,
		}
	}

	/// A job's details, with the models of its completed rounds.
	pub fn job_details(
		id: JobId,
	) -> Option<JobDetails<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>> {
		let job = Jobs::<T>::get(id)?;
		let mut models: Vec<_> =
			RoundModels::<T>::iter_prefix(id).map(|(r, rec)| (r, rec.model)).collect();
		models.sort_by_key(|(r, _)| *r);
		Some(JobDetails {
			submitter: job.submitter,
			status: Self::status_view(job.status, job.phase),
			spec: job.spec,
			budget: job.budget,
			escrow: job.escrow,
			spent: job.spent,
			round: job.round,
			latest_model: job.latest_model,
			models,
		})
	}

	/// The status of a job's current round.
	pub fn round_status(id: JobId) -> Option<RoundStatus<T::AccountId, BlockNumberFor<T>>> {
		let job = Jobs::<T>::get(id)?;
		let phase = Self::status_view(job.status, job.phase);
		let deadline = (job.status == JobStatus::Active && job.phase != Phase::Verifying)
			.then_some(job.deadline);
		Some(RoundStatus {
			job: id,
			round: job.round,
			phase,
			deadline,
			applicants: Applicants::<T>::get(id).into_inner(),
			workers: RoundWorkers::<T>::get(id)
				.into_iter()
				.map(|s| (s.who, s.quota, s.submitted))
				.collect(),
		})
	}

	/// Rounds `who` must train for (selected, not yet submitted).
	pub fn worker_duties(who: &T::AccountId) -> Vec<Duty<T::AccountId, BlockNumberFor<T>>> {
		let mut duties = Vec::new();
		for (id, _) in ActiveJobs::<T>::get() {
			let Some(job) = Jobs::<T>::get(id) else { continue };
			if job.phase != Phase::Training {
				continue;
			}
			if let Some(slot) =
				RoundWorkers::<T>::get(id).into_iter().find(|s| &s.who == who && !s.submitted)
			{
				duties.push(Duty::Train {
					job: id,
					round: job.round,
					quota: slot.quota,
					deadline: job.deadline,
				});
			}
		}
		duties
	}
}
