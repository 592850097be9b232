//! Benchmarks of pallet-inference (frame-benchmarking v2), each at its worst case: a full
//! validator set to draw auditors from, the longest names, full queues, every auditor paid or
//! slashed.

use super::*;
use crate::Pallet as Inference;
use agora_primitives::{ModelCatalogue, ParticipantRegistry, PeerId, Role};
use alloc::vec;
use frame_benchmarking::v2::*;
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::{Inspect, Mutate},
		EnsureOrigin,
	},
};
use frame_system::{pallet_prelude::BlockNumberFor, RawOrigin};
use sp_runtime::{
	traits::{Saturating, Zero},
	Perbill,
};

const MODEL: ModelId = 0;
/// Validators registered for audit draws: the registry's largest set in the runtime.
const VALIDATOR_SET: u32 = 256;

fn funded<T: Config>(who: &T::AccountId) {
	let amount = T::Currency::minimum_balance().saturating_mul(1_000_000_000u32.into());
	let _ = T::Currency::set_balance(who, amount);
}

fn price<T: Config>() -> BalanceOf<T> {
	T::Currency::minimum_balance().saturating_mul(10u32.into())
}

fn peer() -> PeerId {
	BoundedVec::truncate_from(vec![7u8; 64])
}

/// A public model with one version, its owner funded.
fn listed<T: Config>() -> T::AccountId {
	let owner: T::AccountId = account("owner", 0, 0);
	funded::<T>(&owner);
	let arch = BoundedVec::truncate_from(vec![b'a'; 64]);
	Inference::<T>::record_version(MODEL, 1, &owner, &arch, H256::repeat_byte(1), Perbill::one());
	Models::<T>::mutate(MODEL, |e| {
		if let Some(e) = e {
			e.access = Access::Public;
		}
	});
	owner
}

/// A provider offering the listed model.
fn provider<T: Config>() -> Result<T::AccountId, BenchmarkError> {
	let provider: T::AccountId = account("provider", 0, 0);
	T::Registry::benchmark_register(&provider, Role::Worker, 10);
	funded::<T>(&provider);
	Inference::<T>::do_offer(provider.clone(), MODEL, 1, price::<T>(), peer())
		.map_err(|_| BenchmarkError::Stop("offer"))?;
	Ok(provider)
}

/// The benchmark helper's client, with a channel to `provider`; returns the channel.
fn channel<T: Config>(
	provider: &T::AccountId,
) -> Result<(T::AccountId, ChannelId), BenchmarkError> {
	let (client, _) = T::BenchmarkHelper::sign(&[]);
	funded::<T>(&client);
	let id = NextChannel::<T>::get();
	let amount = price::<T>().saturating_mul(1_000u32.into());
	Inference::<T>::do_open_channel(client.clone(), provider.clone(), MODEL, price::<T>(), amount)
		.map_err(|_| BenchmarkError::Stop("open"))?;
	Ok((client, id))
}

/// The receipt of `requests` at full price and the client's signature of it.
fn signed_receipt<T: Config>(
	channel: ChannelId,
	requests: u64,
) -> (Receipt<BalanceOf<T>>, T::Signature) {
	let amount = price::<T>().saturating_mul((requests as u32).into());
	let receipt = Receipt { channel, requests, amount, transcript: H256::repeat_byte(3) };
	let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
	let (_, signature) = T::BenchmarkHelper::sign(&receipt_payload(&genesis, &receipt));
	(receipt, signature)
}

/// A settled batch of `channel`; returns its id.
fn settled<T: Config>(
	provider: &T::AccountId,
	channel: ChannelId,
	requests: u64,
) -> Result<BatchId, BenchmarkError> {
	let batch = NextBatch::<T>::get();
	let (receipt, signature) = signed_receipt::<T>(channel, requests);
	Inference::<T>::do_settle(provider.clone(), receipt, signature)
		.map_err(|_| BenchmarkError::Stop("settle"))?;
	Ok(batch)
}

/// A challenge's input or answer at its largest, every byte `byte`.
fn largest(byte: u8) -> BoundedVec<u8, MaxChallengeBytes> {
	BoundedVec::truncate_from(vec![byte; <MaxChallengeBytes as Get<u32>>::get() as usize])
}

fn validators<T: Config>() {
	for i in 0..VALIDATOR_SET {
		let v: T::AccountId = account("validator", i, 0);
		T::Registry::benchmark_register(&v, Role::Validator, 10);
	}
}

fn audit_params<T: Config>(auditors: u32, audit_rate: Perbill) {
	ProtocolParams::<T>::mutate(|p| {
		p.auditors = auditors;
		p.audit_rate = audit_rate;
	});
}

fn advance<T: Config>(blocks: BlockNumberFor<T>) {
	let now = frame_system::Pallet::<T>::block_number();
	frame_system::Pallet::<T>::set_block_number(now + blocks);
}

/// `client` disputes request 5 of `batch` and its auditors are drawn; returns the audit.
fn disputed<T: Config>(client: T::AccountId, batch: BatchId) -> Result<AuditId, BenchmarkError> {
	let audit = NextAudit::<T>::get();
	Inference::<T>::do_dispute(client, batch, 5).map_err(|_| BenchmarkError::Stop("dispute"))?;
	advance::<T>(ProtocolParams::<T>::get().audit_delay);
	Inference::<T>::draw_audits(frame_system::Pallet::<T>::block_number());
	ensure!(Audits::<T>::contains_key(audit), BenchmarkError::Stop("no audit drawn"));
	Ok(audit)
}

/// A disputed audit of a batch with `a` auditors, every one committed.
fn committed_audit<T: Config>(
	a: u32,
	verdict_of: impl Fn(u32) -> AuditVerdict,
) -> Result<AuditId, BenchmarkError> {
	listed::<T>();
	let provider = provider::<T>()?;
	let (client, ch) = channel::<T>(&provider)?;
	validators::<T>();
	audit_params::<T>(a, Perbill::from_percent(1));
	let batch = settled::<T>(&provider, ch, 10)?;
	let audit = disputed::<T>(client, batch)?;
	let auditors = Audits::<T>::get(audit).ok_or(BenchmarkError::Stop("audit"))?.auditors;
	for (i, auditor) in auditors.iter().enumerate() {
		let c = audit_commitment_of(audit, verdict_of(i as u32), &[9u8; 32], &auditor.who);
		Inference::<T>::do_commit_audit(auditor.who.clone(), audit, c)
			.map_err(|_| BenchmarkError::Stop("commit"))?;
	}
	Ok(audit)
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn record_version() {
		let owner: T::AccountId = account("owner", 0, 0);
		funded::<T>(&owner);
		let arch = BoundedVec::truncate_from(vec![b'a'; 64]);
		#[block]
		{
			Inference::<T>::record_version(MODEL, 1, &owner, &arch, H256::zero(), Perbill::one());
		}
		assert!(Versions::<T>::contains_key(MODEL, 1));
	}

	#[benchmark]
	fn set_terms() {
		let owner = listed::<T>();
		let license = BoundedVec::truncate_from(vec![b'l'; 64]);
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), MODEL, license, Access::Public);
	}

	#[benchmark]
	fn delist(v: Linear<1, { T::MaxVersions::get() }>) {
		let owner = listed::<T>();
		let arch = BoundedVec::truncate_from(vec![b'a'; 64]);
		for round in 2..=v {
			Inference::<T>::record_version(
				MODEL,
				round,
				&owner,
				&arch,
				H256::zero(),
				Perbill::one(),
			);
		}
		#[extrinsic_call]
		_(RawOrigin::Signed(owner), MODEL);
		assert!(!Models::<T>::contains_key(MODEL));
	}

	#[benchmark]
	fn offer() {
		listed::<T>();
		let provider: T::AccountId = account("provider", 0, 0);
		T::Registry::benchmark_register(&provider, Role::Worker, 10);
		funded::<T>(&provider);
		#[extrinsic_call]
		_(RawOrigin::Signed(provider), MODEL, 1, price::<T>(), peer());
	}

	#[benchmark]
	fn withdraw_offer() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		#[extrinsic_call]
		_(RawOrigin::Signed(provider), MODEL);
		Ok(())
	}

	#[benchmark]
	fn open_channel() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let client: T::AccountId = account("client", 0, 0);
		funded::<T>(&client);
		#[extrinsic_call]
		_(RawOrigin::Signed(client), provider, MODEL, price::<T>(), price::<T>());
		Ok(())
	}

	#[benchmark]
	fn top_up() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		#[extrinsic_call]
		_(RawOrigin::Signed(client), ch, price::<T>());
		Ok(())
	}

	/// A real signature check, and the draw queue of the block one short of full.
	#[benchmark]
	fn settle() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (_, ch) = channel::<T>(&provider)?;
		let draw_at =
			frame_system::Pallet::<T>::block_number() + ProtocolParams::<T>::get().audit_delay;
		let filler: BoundedVec<BatchId, T::MaxDrawsPerBlock> = BoundedVec::truncate_from(
			(0..T::MaxDrawsPerBlock::get().saturating_sub(1))
				.map(|i| u64::MAX - u64::from(i))
				.collect(),
		);
		PendingDraws::<T>::insert(draw_at, filler);
		let (receipt, signature) = signed_receipt::<T>(ch, 1_000);
		#[extrinsic_call]
		_(RawOrigin::Signed(provider), receipt, signature);
		assert!(Batches::<T>::contains_key(0));
		Ok(())
	}

	#[benchmark]
	fn clear_batch() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		let batch = settled::<T>(&provider, ch, 100)?;
		Batches::<T>::mutate(batch, |b| {
			if let Some(b) = b {
				b.status = BatchStatus::Open;
			}
		});
		advance::<T>(ProtocolParams::<T>::get().dispute_window + 1u32.into());
		#[extrinsic_call]
		_(RawOrigin::Signed(client), batch);
		assert!(!Batches::<T>::contains_key(batch));
		Ok(())
	}

	/// The draw queue of the block one short of full.
	#[benchmark]
	fn dispute() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		let batch = settled::<T>(&provider, ch, 10)?;
		let draw_at =
			frame_system::Pallet::<T>::block_number() + ProtocolParams::<T>::get().audit_delay;
		let queued = PendingDraws::<T>::get(draw_at);
		let filler: BoundedVec<BatchId, T::MaxDrawsPerBlock> = BoundedVec::truncate_from(
			queued
				.into_iter()
				.chain((0..T::MaxDrawsPerBlock::get()).map(|i| u64::MAX - u64::from(i)))
				.take(T::MaxDrawsPerBlock::get().saturating_sub(1) as usize)
				.collect(),
		);
		PendingDraws::<T>::insert(draw_at, filler);
		#[extrinsic_call]
		_(RawOrigin::Signed(client), batch, 5);
		assert!(Batches::<T>::get(batch).is_some_and(|b| b.dispute.is_some()));
		Ok(())
	}

	#[benchmark]
	fn commit_audit() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		validators::<T>();
		audit_params::<T>(T::MaxAuditors::get(), Perbill::from_percent(1));
		let batch = settled::<T>(&provider, ch, 10)?;
		let id = disputed::<T>(client, batch)?;
		let audit = Audits::<T>::get(id).ok_or(BenchmarkError::Stop("audit"))?;
		// The last auditor: the longest search.
		let last = audit.auditors.last().ok_or(BenchmarkError::Stop("auditors"))?.who.clone();
		let c = audit_commitment_of(id, AuditVerdict::Correct, &[9u8; 32], &last);
		#[extrinsic_call]
		_(RawOrigin::Signed(last), id, c);
		Ok(())
	}

	#[benchmark]
	fn reveal_audit() -> Result<(), BenchmarkError> {
		let audit = committed_audit::<T>(T::MaxAuditors::get(), |_| AuditVerdict::Correct)?;
		let a = Audits::<T>::get(audit).ok_or(BenchmarkError::Stop("audit"))?;
		let last = a.auditors.last().ok_or(BenchmarkError::Stop("auditors"))?.who.clone();
		advance::<T>(ProtocolParams::<T>::get().commit_period + 1u32.into());
		#[extrinsic_call]
		_(RawOrigin::Signed(last), audit, AuditVerdict::Correct, [9u8; 32]);
		Ok(())
	}

	/// A failed disputed audit: the provider slashed, the batch refunded, the bond returned,
	/// every auditor but one paid and that one slashed.
	#[benchmark]
	fn conclude_audit(a: Linear<1, { T::MaxAuditors::get() }>) -> Result<(), BenchmarkError> {
		let audit = committed_audit::<T>(a, |i| {
			if i == 0 && a > 2 {
				AuditVerdict::Correct
			} else {
				AuditVerdict::Wrong
			}
		})?;
		let pot = Inference::<T>::pot_account();
		funded::<T>(&pot);
		advance::<T>(ProtocolParams::<T>::get().commit_period + 1u32.into());
		let auditors = Audits::<T>::get(audit).ok_or(BenchmarkError::Stop("audit"))?.auditors;
		for (i, auditor) in auditors.iter().enumerate() {
			let verdict = if i == 0 && a > 2 { AuditVerdict::Correct } else { AuditVerdict::Wrong };
			Inference::<T>::do_reveal_audit(auditor.who.clone(), audit, verdict, [9u8; 32])
				.map_err(|_| BenchmarkError::Stop("reveal"))?;
		}
		let caller: T::AccountId = whitelisted_caller();
		#[extrinsic_call]
		_(RawOrigin::Signed(caller), audit);
		assert!(!Audits::<T>::contains_key(audit));
		Ok(())
	}

	#[benchmark]
	fn close_channel() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		#[extrinsic_call]
		_(RawOrigin::Signed(client), ch);
		Ok(())
	}

	#[benchmark]
	fn finish_close() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		Inference::<T>::do_close_channel(provider, ch)
			.map_err(|_| BenchmarkError::Stop("close"))?;
		#[extrinsic_call]
		_(RawOrigin::Signed(client), ch);
		assert!(!Channels::<T>::contains_key(ch));
		Ok(())
	}

	#[benchmark]
	fn set_params() -> Result<(), BenchmarkError> {
		let origin =
			T::ParamsOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)?;
		let params = T::DefaultParams::get();
		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, params);
		Ok(())
	}

	/// `n` batches due at this block, each drawn and audited (rate 100%) from a full set.
	#[benchmark]
	fn draw_audits(n: Linear<0, { T::MaxDrawsPerBlock::get() }>) -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (_, ch) = channel::<T>(&provider)?;
		validators::<T>();
		audit_params::<T>(T::MaxAuditors::get(), Perbill::one());
		let now = frame_system::Pallet::<T>::block_number();
		let mut due: BoundedVec<BatchId, T::MaxDrawsPerBlock> = BoundedVec::new();
		for id in 0..u64::from(n) {
			Batches::<T>::insert(
				id,
				Batch {
					channel: ch,
					first_request: 1,
					last_request: 1_000,
					amount: Zero::zero(),
					transcript_before: H256::zero(),
					transcript: H256::repeat_byte(id as u8),
					settled_at: now,
					status: BatchStatus::AwaitingDraw,
					dispute: None,
				},
			);
			due.try_push(id).map_err(|_| BenchmarkError::Stop("queue"))?;
		}
		PendingDraws::<T>::insert(now, due);
		#[block]
		{
			Inference::<T>::draw_audits(now);
		}
		assert_eq!(Audits::<T>::iter().count() as u32, n);
		Ok(())
	}

	/// The largest input.
	#[benchmark]
	fn challenge() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		let input = largest(7);
		#[extrinsic_call]
		_(RawOrigin::Signed(client), ch, input);
		assert!(Challenges::<T>::contains_key(&provider, ch));
		Ok(())
	}

	/// The largest input and answer, hashed; the client's receipt checked and settled with it;
	/// every draw queue searched full but the last.
	#[benchmark]
	fn answer_challenge() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		let input = largest(7);
		Inference::<T>::do_challenge(client, ch, input)
			.map_err(|_| BenchmarkError::Stop("challenge"))?;
		let first =
			frame_system::Pallet::<T>::block_number() + ProtocolParams::<T>::get().audit_delay;
		let full: BoundedVec<BatchId, T::MaxDrawsPerBlock> = BoundedVec::truncate_from(
			(0..T::MaxDrawsPerBlock::get()).map(|i| u64::MAX - u64::from(i)).collect(),
		);
		for offset in 0..crate::challenges::DRAW_SEARCH - 1 {
			PendingDraws::<T>::insert(first + offset.into(), full.clone());
		}
		let output = largest(9);
		let receipt = signed_receipt::<T>(ch, 1_000);
		#[extrinsic_call]
		_(RawOrigin::Signed(provider.clone()), ch, output, Some(receipt));
		assert!(!Challenges::<T>::contains_key(&provider, ch));
		assert!(Batches::<T>::get(0).is_some_and(|b| b.status == BatchStatus::AwaitingDraw));
		Ok(())
	}

	/// The provider slashed, the bond released, the channel closed.
	#[benchmark]
	fn expire_challenge() -> Result<(), BenchmarkError> {
		listed::<T>();
		let provider = provider::<T>()?;
		let (client, ch) = channel::<T>(&provider)?;
		let input = largest(7);
		Inference::<T>::do_challenge(client.clone(), ch, input)
			.map_err(|_| BenchmarkError::Stop("challenge"))?;
		advance::<T>(Inference::<T>::answer_window() + 1u32.into());
		#[extrinsic_call]
		_(RawOrigin::Signed(client), ch);
		assert!(!Challenges::<T>::contains_key(&provider, ch));
		assert!(Channels::<T>::get(ch).is_some_and(|c| c.closes_at.is_some()));
		Ok(())
	}

	impl_benchmark_test_suite!(Inference, crate::mock::new_test_ext(), crate::mock::Test);
}
