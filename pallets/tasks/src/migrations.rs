//! Storage migrations of pallet-tasks.

/// Version 0 → 1: jobs hold a slot deposit and count their voided rounds in a row, submitters
/// their active jobs (`SubmitterJobs`), the escrow of all active jobs is kept (`TotalEscrow`,
/// for the emission split), and `Params` gained `max_jobs_per_submitter`,
/// `job_deposit` and `max_voided_rounds`. Jobs created before keep their terms: no deposit and
/// no voided rounds so far; the new parameters take `Config::DefaultParams`, the old ones keep
/// their values where they are within the new bounds.
pub mod v1 {
	use crate::{pallet::*, BalanceOf, JobOf, ParamsOf};
	use agora_primitives::{BlobHash, JobSpec, RoundIndex};
	use codec::{Decode, Encode, MaxEncodedLen};
	use frame_support::{
		migrations::VersionedMigration, pallet_prelude::*, traits::UncheckedOnRuntimeUpgrade,
	};
	use frame_system::pallet_prelude::BlockNumberFor;
	use sp_runtime::{
		traits::{Saturating, Zero},
		Perbill,
	};

	use crate::types::{Job, JobStatus, Phase};

	/// `Params` as version 0 stored it.
	#[derive(Encode, Decode, Clone, Copy, PartialEq, Eq, Debug, MaxEncodedLen)]
	pub struct ParamsV0<Balance, BlockNumber> {
		pub min_budget: Balance,
		pub max_rounds: u32,
		pub max_workers_per_round: u32,
		pub max_validators_per_update: u32,
		pub max_shards: u32,
		pub min_period: BlockNumber,
		pub max_period: BlockNumber,
		pub no_show_slash: Perbill,
	}

	/// `Job` as version 0 stored it.
	#[derive(Encode, Decode, Clone, PartialEq, Eq, Debug)]
	pub struct JobV0<AccountId, Balance, BlockNumber> {
		pub submitter: AccountId,
		pub spec: JobSpec<BlockNumber>,
		pub budget: Balance,
		pub escrow: Balance,
		pub spent: Balance,
		pub status: JobStatus,
		pub round: RoundIndex,
		pub phase: Phase,
		pub deadline: BlockNumber,
		pub latest_model: BlobHash,
		pub completed_rounds: RoundIndex,
		pub created_at: BlockNumber,
	}

	type ParamsV0Of<T> = ParamsV0<BalanceOf<T>, BlockNumberFor<T>>;
	/// Copies one field of the old parameters into the new.
	type Carry<T> = fn(&mut ParamsOf<T>, &ParamsV0Of<T>);
	type JobV0Of<T> =
		JobV0<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

	/// The version 1 parameters for version 0's `old`.
	pub fn translate_params<T: Config>(old: ParamsV0Of<T>) -> ParamsOf<T> {
		let carries: [Carry<T>; 8] = [
			|p, o| p.min_budget = o.min_budget,
			|p, o| p.max_rounds = o.max_rounds,
			|p, o| p.max_workers_per_round = o.max_workers_per_round,
			|p, o| p.max_validators_per_update = o.max_validators_per_update,
			|p, o| p.max_shards = o.max_shards,
			|p, o| p.min_period = o.min_period,
			|p, o| p.max_period = o.max_period,
			|p, o| p.no_show_slash = o.no_show_slash,
		];
		agora_primitives::carry_params(T::DefaultParams::get(), &old, &carries, |p| {
			Pallet::<T>::check_params(p).is_ok()
		})
	}

	/// A version 0 job as version 1 stores it: no deposit, no voided rounds counted.
	pub fn translate_job<T: Config>(old: JobV0Of<T>) -> JobOf<T> {
		Job {
			submitter: old.submitter,
			spec: old.spec,
			budget: old.budget,
			escrow: old.escrow,
			spent: old.spent,
			status: old.status,
			round: old.round,
			phase: old.phase,
			deadline: old.deadline,
			latest_model: old.latest_model,
			completed_rounds: old.completed_rounds,
			created_at: old.created_at,
			deposit: Zero::zero(),
			voided_in_a_row: 0,
			own_voids_in_a_row: 0,
		}
	}

	/// The unversioned step; use [`MigrateV0ToV1`].
	pub struct UncheckedMigrateV0ToV1<T>(core::marker::PhantomData<T>);

	impl<T: Config> UncheckedOnRuntimeUpgrade for UncheckedMigrateV0ToV1<T> {
		fn on_runtime_upgrade() -> Weight {
			let mut reads = 1u64;
			let mut writes = 0u64;
			let key = ProtocolParams::<T>::hashed_key();
			if let Some(raw) = frame_support::storage::unhashed::get_raw(&key) {
				writes += 1;
				match ParamsV0Of::<T>::decode(&mut &raw[..]) {
					Ok(old) => ProtocolParams::<T>::put(translate_params::<T>(old)),
					Err(_) => {
						log::warn!(
							target: "runtime::tasks",
							"undecodable version 0 parameters: reset to the defaults"
						);
						ProtocolParams::<T>::kill();
					},
				}
			}
			Jobs::<T>::translate::<JobV0Of<T>, _>(|id, old| {
				reads += 1;
				writes += 1;
				let job = translate_job::<T>(old);
				if job.status == JobStatus::Active {
					SubmitterJobs::<T>::mutate(&job.submitter, |n| *n = n.saturating_add(1));
					TotalEscrow::<T>::mutate(|total| *total = total.saturating_add(job.escrow));
					writes += 2;
				}
				log::debug!(target: "runtime::tasks", "job {id} migrated");
				Some(job)
			});
			T::DbWeight::get().reads_writes(reads, writes)
		}

		#[cfg(feature = "try-runtime")]
		fn post_upgrade(_state: alloc::vec::Vec<u8>) -> Result<(), sp_runtime::TryRuntimeError> {
			Pallet::<T>::check_params(&ProtocolParams::<T>::get())
				.map_err(|_| "migrated parameters out of bounds")?;
			Pallet::<T>::do_try_state()
		}
	}

	/// Migrates pallet-tasks from storage version 0 to 1 (once: the version guards it).
	pub type MigrateV0ToV1<T> = VersionedMigration<
		0,
		1,
		UncheckedMigrateV0ToV1<T>,
		Pallet<T>,
		<T as frame_system::Config>::DbWeight,
	>;
}
