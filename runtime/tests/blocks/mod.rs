//! What the runtime's block-level tests share: blocks built by `frame_executive` with real BABE
//! pre-digests, and the invariants checked after every block. Each test uses what it needs.
#![allow(dead_code)]

use agora_runtime::{
	AccountId, Babe, Balance, Balances, Executive, Header, Runtime, RuntimeCall, RuntimeEvent,
	RuntimeHoldReason, System, UncheckedExtrinsic,
};
use codec::Encode;
use frame_support::traits::{
	fungible::{Inspect, InspectHold},
	Get,
};
use sp_consensus_babe::{
	digests::{PreDigest, PrimaryPreDigest},
	Slot, BABE_ENGINE_ID,
};
use sp_core::{crypto::VrfSecret, H256};
use sp_keyring::Sr25519Keyring as Keyring;
use sp_runtime::{traits::Header as _, Digest, DigestItem};
use std::collections::{BTreeMap, BTreeSet};

/// The BABE slot of block 0; block `n` is authored in slot `FIRST_SLOT + n`.
const FIRST_SLOT: u64 = 1_000_000;

pub fn worker_hold() -> RuntimeHoldReason {
	pallet_contributions::HoldReason::WorkerStake.into()
}

pub fn validator_hold() -> RuntimeHoldReason {
	pallet_contributions::HoldReason::ValidatorStake.into()
}

/// Builds blocks with `frame_executive`, as the node's block builder does: initialize (every
/// pallet's `on_initialize`, BABE included), the timestamp inherent, then whatever calls the test
/// dispatches, then finalize (`on_idle`, `on_finalize`). The test's calls are dispatched
/// directly with a signed origin rather than as signed extrinsics: fees would be burned, and the
/// point of the test is that the protocol alone moves funds and changes issuance only by the
/// emission.
pub struct Chain {
	pub parent_hash: H256,
	/// Every event of every finalized block (`initialize_block` clears the previous block's).
	pub events: Vec<RuntimeEvent>,
	/// Total issuance at genesis.
	pub issuance0: Balance,
	/// What staking has minted since genesis: era rewards paid to stakers and the treasury's
	/// remainder of the emission curve.
	pub staking_minted: Balance,
	/// Validators whose nodes are down: they author nothing (and send no heartbeats).
	pub offline: Vec<Keyring>,
}

impl Chain {
	/// Start block 1 on top of genesis.
	pub fn start() -> Self {
		let mut chain = Chain {
			parent_hash: System::block_hash(0),
			events: Vec::new(),
			issuance0: Balances::total_issuance(),
			staking_minted: 0,
			offline: Vec::new(),
		};
		chain.open_block();
		chain
	}

	/// Open the next block in a primary BABE slot with a real VRF signature, authored by the
	/// first enabled authority of the block's epoch (a development key).
	pub fn open_block(&mut self) {
		let n = System::block_number() + 1;
		let slot = Slot::from(FIRST_SLOT + u64::from(n));
		let (slot, authority_index, author) = self.author_of(n, slot);
		let sign_data = sp_consensus_babe::make_vrf_sign_data(
			&epoch_randomness(n, slot),
			slot,
			epoch_index(n, slot),
		);
		let pre_digest = PreDigest::Primary(PrimaryPreDigest {
			authority_index,
			slot,
			vrf_signature: author.pair().vrf_sign(&sign_data),
		});
		let digest =
			Digest { logs: vec![DigestItem::PreRuntime(BABE_ENGINE_ID, pre_digest.encode())] };
		let header = Header::new(n, H256::zero(), H256::zero(), self.parent_hash, digest);
		Executive::initialize_block(&header);
		// BABE checks that the timestamp falls in the block's slot.
		let now = *slot * pallet_babe::Pallet::<Runtime>::slot_duration();
		let timestamp =
			UncheckedExtrinsic::new_bare(RuntimeCall::Timestamp(pallet_timestamp::Call::set {
				now,
			}));
		Executive::apply_extrinsic(timestamp)
			.expect("timestamp inherent is valid")
			.expect("timestamp inherent succeeds");
		Executive::inherents_applied();
	}

	/// The slot, authority index and key of block `n`'s author: the enabled authorities of the
	/// block's epoch that are not offline take turns (authoring is how a validator counts as
	/// online here: the tests send no heartbeats), all development keys.
	fn author_of(&self, n: u32, slot: Slot) -> (Slot, u32, Keyring) {
		let authorities = if epoch_changes_at(n, slot) {
			pallet_babe::NextAuthorities::<Runtime>::get().to_vec()
		} else {
			pallet_babe::Authorities::<Runtime>::get().to_vec()
		};
		let disabled = pallet_session::DisabledValidators::<Runtime>::get();
		let enabled: Vec<(u32, Keyring)> = authorities
			.iter()
			.enumerate()
			.filter(|(i, _)| !disabled.iter().any(|(d, _)| *d as usize == *i))
			.map(|(i, (id, _))| {
				let key = Keyring::iter()
					.find(|k| sp_consensus_babe::AuthorityId::from(k.public()) == *id)
					.expect("every authority is a development key");
				(i as u32, key)
			})
			.filter(|(_, key)| !self.offline.contains(key))
			.collect();
		assert!(!enabled.is_empty(), "no enabled authority");
		let (index, key) = enabled[n as usize % enabled.len()];
		(slot, index, key)
	}

	/// Finalize the current block, keep its events and check the invariants.
	pub fn close_block(&mut self) {
		let header = Executive::finalize_block();
		self.parent_hash = header.hash();
		let events: Vec<RuntimeEvent> = System::events().into_iter().map(|r| r.event).collect();
		self.staking_minted += staking_minted(&events);
		self.events.extend(events);
		assert_invariants(self.issuance0 + self.staking_minted);
		// With `--features try-runtime`, every pallet's own `try_state` runs too.
		#[cfg(feature = "try-runtime")]
		{
			use agora_runtime::BlockNumber;
			use frame_support::traits::{TryState, TryStateSelect};
			<agora_runtime::AllPalletsWithSystem as TryState<BlockNumber>>::try_state(
				System::block_number(),
				TryStateSelect::All,
			)
			.expect("every pallet's try_state holds");
		}
	}

	pub fn next_block(&mut self) {
		self.close_block();
		self.open_block();
	}

	/// Build blocks until `cond` holds at the start of one (after its `on_initialize`).
	pub fn until(&mut self, what: &str, cond: impl Fn() -> bool) {
		for _ in 0..200 {
			if cond() {
				return;
			}
			self.next_block();
		}
		panic!("timed out waiting for {what}");
	}
}

/// What staking minted in `events`: era rewards paid to stakers and the treasury's remainder.
fn staking_minted(events: &[RuntimeEvent]) -> Balance {
	events
		.iter()
		.map(|e| match e {
			RuntimeEvent::Staking(pallet_staking::Event::EraPaid { remainder, .. }) => *remainder,
			RuntimeEvent::Staking(pallet_staking::Event::Rewarded { amount, .. }) => *amount,
			_ => 0,
		})
		.sum()
}

/// Whether block `n`, in `slot`, starts a new BABE epoch (the session rotates in its
/// `on_initialize`, and its VRF is then signed for the new epoch).
fn epoch_changes_at(n: u32, slot: Slot) -> bool {
	let duration = <Runtime as pallet_babe::Config>::EpochDuration::get();
	n > 1 && *slot >= *Babe::current_epoch_start() + duration
}

fn epoch_index(n: u32, slot: Slot) -> u64 {
	pallet_babe::EpochIndex::<Runtime>::get() + u64::from(epoch_changes_at(n, slot))
}

fn epoch_randomness(n: u32, slot: Slot) -> [u8; 32] {
	if epoch_changes_at(n, slot) {
		pallet_babe::NextRandomness::<Runtime>::get()
	} else {
		pallet_babe::Randomness::<Runtime>::get()
	}
}

/// What the protocol pallets' `try_state` hooks check, checked directly: the hooks (and their
/// `do_try_state` helpers) are compiled only with the `try-runtime` feature, which the default
/// test build leaves off because it rebuilds the whole FRAME stack. On top of them:
/// conservation of the currency. `issuance0` is the issuance at genesis plus what staking has
/// minted since (era rewards).
pub fn assert_invariants(issuance0: Balance) {
	// pallet-contributions: holds equal recorded stakes and shard deposits.
	for (who, p) in pallet_contributions::Workers::<Runtime>::iter() {
		assert_eq!(Balances::balance_on_hold(&worker_hold(), &who), p.stake, "worker hold");
	}
	for (who, p) in pallet_contributions::Validators::<Runtime>::iter() {
		assert_eq!(Balances::balance_on_hold(&validator_hold(), &who), p.stake, "validator hold");
	}
	// Every seat is held once, by an active validator, with its current stake.
	let mut seated = BTreeSet::new();
	for (who, stake) in pallet_contributions::ValidatorSeats::<Runtime>::get() {
		let p = pallet_contributions::Validators::<Runtime>::get(&who).expect("seat holder");
		assert_eq!(p.status, pallet_contributions::ParticipantStatus::Active, "seat holder status");
		assert_eq!(p.stake, stake, "seat stake");
		assert!(seated.insert(who), "a validator holds two seats");
	}
	let mut deposits: BTreeMap<AccountId, Balance> = BTreeMap::new();
	for (_, shard) in pallet_contributions::Shards::<Runtime>::iter() {
		*deposits.entry(shard.provider).or_default() += shard.deposit;
	}
	let shard_hold: RuntimeHoldReason = pallet_contributions::HoldReason::ShardDeposit.into();
	for (who, total) in deposits {
		assert_eq!(Balances::balance_on_hold(&shard_hold, &who), total, "shard deposit hold");
	}
	// pallet-tasks: escrow and deposit holds equal the jobs' escrows and deposits; an active
	// job's escrow and what it spent make its budget; an ended job holds no escrow (its unspent
	// budget went back), only its deposit until its record is reaped.
	let mut held: BTreeMap<AccountId, (Balance, Balance)> = BTreeMap::new();
	for (_, job) in pallet_tasks::Jobs::<Runtime>::iter() {
		if job.status == pallet_tasks::JobStatus::Active {
			assert_eq!(job.spent + job.escrow, job.budget, "budget split");
		} else {
			assert!(job.spent <= job.budget, "an ended job spent more than its budget");
			assert_eq!(job.escrow, 0, "an ended job keeps its escrow");
		}
		let (escrow, deposit) = held.entry(job.submitter).or_default();
		*escrow += job.escrow;
		*deposit += job.deposit;
	}
	let escrow_hold: RuntimeHoldReason = pallet_tasks::HoldReason::JobEscrow.into();
	let deposit_hold: RuntimeHoldReason = pallet_tasks::HoldReason::JobDeposit.into();
	for (who, (escrow, deposit)) in held {
		assert_eq!(Balances::balance_on_hold(&escrow_hold, &who), escrow, "escrow hold");
		assert_eq!(Balances::balance_on_hold(&deposit_hold, &who), deposit, "deposit hold");
	}
	let escrowed: Balance = pallet_tasks::Jobs::<Runtime>::iter_values().map(|j| j.escrow).sum();
	assert_eq!(pallet_tasks::TotalEscrow::<Runtime>::get(), escrowed, "TotalEscrow");
	// pallet-validation: every verification is tracked, nobody checks its own update.
	let tracked: BTreeSet<u64> = pallet_validation::ActiveVerifications::<Runtime>::get()
		.iter()
		.map(|(job, _)| *job)
		.collect();
	let verifying: BTreeSet<u64> =
		pallet_validation::Verifications::<Runtime>::iter_keys().collect();
	assert_eq!(tracked, verifying, "ActiveVerifications out of sync");
	for (_, worker, check) in pallet_validation::Checks::<Runtime>::iter() {
		assert!(check.assignments.iter().all(|a| a.validator != worker), "self-validation");
	}
	// pallet-rewards: `TotalPending` is the sum of `Pending`, and the pool can pay it.
	let pending: Balance = pallet_rewards::Pending::<Runtime>::iter_values().sum();
	assert_eq!(pallet_rewards::TotalPending::<Runtime>::get(), pending, "TotalPending");
	let pool = pallet_rewards::Pallet::<Runtime>::pool_account();
	assert!(
		Balances::balance(&pool) >= pending + Balances::minimum_balance(),
		"pool does not cover pending rewards"
	);
	// pallet-inference: escrow, deposit and bond holds equal what the channels, the catalogue,
	// the offers and the disputes record.
	use pallet_inference::HoldReason as Inference;
	let mut inference: BTreeMap<(AccountId, u8), Balance> = BTreeMap::new();
	let mut add = |who: &AccountId, kind: u8, amount: Balance| {
		*inference.entry((who.clone(), kind)).or_default() += amount;
	};
	for (_, channel) in pallet_inference::Channels::<Runtime>::iter() {
		assert!(channel.pending_amount <= channel.balance, "channel pending beyond its balance");
		add(&channel.client, 0, channel.balance);
		add(&channel.client, 1, channel.deposit);
	}
	for (provider, _, offer) in pallet_inference::Offers::<Runtime>::iter() {
		add(&provider, 2, offer.deposit);
	}
	for (_, entry) in pallet_inference::Models::<Runtime>::iter() {
		add(&entry.owner, 3, entry.deposit);
	}
	for (_, audit) in pallet_inference::Audits::<Runtime>::iter() {
		if let Some((client, bond)) = &audit.disputed_by {
			add(client, 4, *bond);
		}
	}
	for (_, batch) in pallet_inference::Batches::<Runtime>::iter() {
		if let (Some(dispute), Some(channel)) =
			(batch.dispute, pallet_inference::Channels::<Runtime>::get(batch.channel))
		{
			add(&channel.client, 4, dispute.bond);
		}
	}
	let reasons = [
		Inference::ChannelEscrow,
		Inference::ChannelDeposit,
		Inference::OfferDeposit,
		Inference::CatalogueDeposit,
		Inference::DisputeBond,
	];
	for who in all_balances().keys() {
		for (kind, reason) in reasons.iter().enumerate() {
			let reason: RuntimeHoldReason = (*reason).into();
			let expected = inference.get(&(who.clone(), kind as u8)).copied().unwrap_or(0);
			assert_eq!(Balances::balance_on_hold(&reason, who), expected, "inference hold {kind}");
		}
	}
	// Issuance: only emission mints, nothing burns, and every unit is in some account.
	let issuance = Balances::total_issuance();
	assert_eq!(issuance, issuance0 + pallet_rewards::TotalEmitted::<Runtime>::get(), "issuance");
	let in_accounts: Balance = all_balances().values().sum();
	assert_eq!(in_accounts, issuance, "balances do not add up to total issuance");
}

/// Every account's total balance (free and held).
pub fn all_balances() -> BTreeMap<AccountId, Balance> {
	frame_system::Account::<Runtime>::iter()
		.map(|(who, info)| (who, info.data.free + info.data.reserved))
		.collect()
}
