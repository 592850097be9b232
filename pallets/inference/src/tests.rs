//! Tests of pallet-inference: every call, its failure paths, and the attacks on the market.

use crate::{mock::*, *};
use agora_primitives::{ModelCatalogue, PendingWork, Role};
use frame_support::{
	assert_noop, assert_ok,
	traits::{
		fungible::{Inspect, InspectHold, Mutate},
		tokens::Preservation,
		Currency,
	},
	BoundedVec,
};
use sp_runtime::{testing::TestSignature, DispatchError, Perbill};

const HASH: H256 = H256::repeat_byte(0xab);

fn arch() -> BoundedVec<u8, agora_primitives::MaxArchLen> {
	BoundedVec::truncate_from(b"mlp-mnist-v1".to_vec())
}

fn peer() -> agora_primitives::PeerId {
	BoundedVec::truncate_from(b"12D3KooWprovider".to_vec())
}

/// Lists round 1 of `MODEL`, public, offered by `PROVIDER` at `PRICE`.
fn served_model() {
	Inference::record_version(MODEL, 1, &OWNER, &arch(), HASH, Perbill::from_percent(93));
	assert_ok!(Inference::set_terms(
		RuntimeOrigin::signed(OWNER),
		MODEL,
		BoundedVec::truncate_from(b"Apache-2.0".to_vec()),
		Access::Public
	));
	assert_ok!(Inference::offer(RuntimeOrigin::signed(PROVIDER), MODEL, 1, PRICE, peer()));
}

/// Opens a channel from `client` with `amount`; returns its id.
fn open(client: AccountId, amount: Balance) -> ChannelId {
	let id = NextChannel::<Test>::get();
	assert_ok!(Inference::open_channel(
		RuntimeOrigin::signed(client),
		PROVIDER,
		MODEL,
		PRICE,
		amount
	));
	id
}

/// The transcript of `channel` after `n` requests with made-up hashes.
fn transcript(channel: ChannelId, n: u64) -> H256 {
	(1..=n).fold(transcript_start(channel), |head, i| {
		transcript_step(head, i, H256::from_low_u64_be(i), H256::from_low_u64_be(1_000 + i))
	})
}

fn receipt(channel: ChannelId, requests: u64, amount: Balance) -> Receipt<Balance> {
	Receipt { channel, requests, amount, transcript: transcript(channel, requests) }
}

/// Settles `requests` at full price as the channel's client signed them; returns the batch.
fn settle(channel: ChannelId, requests: u64) -> BatchId {
	let client = Channels::<Test>::get(channel).unwrap().client;
	let r = receipt(channel, requests, PRICE * Balance::from(requests));
	let batch = NextBatch::<Test>::get();
	assert_ok!(Inference::settle(RuntimeOrigin::signed(PROVIDER), r, sign(client, &r)));
	batch
}

fn set_audit_rate(rate: Perbill) {
	let mut p = ProtocolParams::<Test>::get();
	p.audit_rate = rate;
	assert_ok!(Inference::set_params(RuntimeOrigin::root(), p));
}

fn held(reason: HoldReason, who: AccountId) -> Balance {
	Balances::balance_on_hold(&reason.into(), &who)
}

/// Runs to the batch's draw; returns its audit if one was drawn.
fn draw(batch: BatchId) -> Option<AuditId> {
	let at =
		Batches::<Test>::get(batch).unwrap().settled_at + ProtocolParams::<Test>::get().audit_delay;
	run_to(at);
	match Batches::<Test>::get(batch).unwrap().status {
		BatchStatus::Audited(audit) => Some(audit),
		_ => None,
	}
}

/// Every auditor of `audit` commits and reveals the verdict `verdict_of` gives it.
fn judge(audit: AuditId, verdict_of: impl Fn(AccountId) -> AuditVerdict) {
	let a = Audits::<Test>::get(audit).unwrap();
	for auditor in a.auditors.iter() {
		let salt = [auditor.who as u8; 32];
		let c = audit_commitment_of(audit, verdict_of(auditor.who), &salt, &auditor.who);
		assert_ok!(Inference::commit_audit(RuntimeOrigin::signed(auditor.who), audit, c));
	}
	run_to(a.commit_deadline + 1);
	for auditor in a.auditors.iter() {
		let salt = [auditor.who as u8; 32];
		assert_ok!(Inference::reveal_audit(
			RuntimeOrigin::signed(auditor.who),
			audit,
			verdict_of(auditor.who),
			salt
		));
	}
}

fn total_balance() -> Balance {
	<Balances as Currency<AccountId>>::total_issuance()
}

#[test]
fn completed_rounds_become_versions_with_their_score() {
	test(|| {
		Inference::record_version(MODEL, 1, &OWNER, &arch(), HASH, Perbill::from_percent(90));
		Inference::record_version(
			MODEL,
			2,
			&OWNER,
			&arch(),
			H256::repeat_byte(2),
			Perbill::from_percent(95),
		);
		let entry = Models::<Test>::get(MODEL).unwrap();
		assert_eq!(
			(entry.owner, entry.versions, entry.latest, entry.access),
			(OWNER, 2, 2, Access::OwnerOnly)
		);
		assert_eq!(entry.architecture, arch());
		assert_eq!(entry.deposit, 10);
		assert_eq!(held(HoldReason::CatalogueDeposit, OWNER), 10);
		// Both versions stay listed: a client may pin either.
		assert_eq!(Versions::<Test>::get(MODEL, 1).unwrap().model, HASH);
		assert_eq!(Versions::<Test>::get(MODEL, 2).unwrap().score, Perbill::from_percent(95));
		assert!(events().contains(&Event::VersionListed {
			model: MODEL,
			round: 1,
			weights: HASH,
			score: Perbill::from_percent(90)
		}));
	});
}

#[test]
fn versions_are_bounded_and_paid_for() {
	test(|| {
		for round in 1..=4 {
			Inference::record_version(MODEL, round, &OWNER, &arch(), HASH, Perbill::zero());
		}
		// MaxVersions is 4.
		Inference::record_version(MODEL, 5, &OWNER, &arch(), HASH, Perbill::zero());
		assert!(events().contains(&Event::VersionNotListed { model: MODEL, round: 5 }));
		assert_eq!(Models::<Test>::get(MODEL).unwrap().versions, 4);
		// An owner who cannot pay the deposit gets no listing (and no free storage).
		let broke = 300;
		Inference::record_version(8, 1, &broke, &arch(), HASH, Perbill::zero());
		assert!(Models::<Test>::get(8).is_none());
		assert!(events().contains(&Event::VersionNotListed { model: 8, round: 1 }));
	});
}

#[test]
fn only_the_owner_sets_terms_and_delists_an_unserved_model() {
	test(|| {
		served_model();
		let license: BoundedVec<u8, MaxLicenseLen> = BoundedVec::truncate_from(b"MIT".to_vec());
		assert_noop!(
			Inference::set_terms(
				RuntimeOrigin::signed(CLIENT),
				MODEL,
				license.clone(),
				Access::Public
			),
			Error::<Test>::NotOwner
		);
		assert_noop!(
			Inference::set_terms(RuntimeOrigin::signed(OWNER), 99, license.clone(), Access::Public),
			Error::<Test>::UnknownModel
		);
		assert_noop!(
			Inference::delist(RuntimeOrigin::signed(CLIENT), MODEL),
			Error::<Test>::NotOwner
		);
		assert_noop!(
			Inference::delist(RuntimeOrigin::signed(OWNER), MODEL),
			Error::<Test>::ModelServed
		);
		assert_ok!(Inference::withdraw_offer(RuntimeOrigin::signed(PROVIDER), MODEL));
		let free = Balances::balance(&OWNER);
		assert_ok!(Inference::delist(RuntimeOrigin::signed(OWNER), MODEL));
		assert_eq!(Balances::balance(&OWNER), free + 5);
		assert!(Models::<Test>::get(MODEL).is_none());
		assert!(Versions::<Test>::get(MODEL, 1).is_none());
		assert!(events().contains(&Event::ModelDelisted { model: MODEL, versions: 1, deposit: 5 }));
	});
}

#[test]
fn offers_need_an_eligible_worker_a_listed_version_and_a_price() {
	test(|| {
		Inference::record_version(MODEL, 1, &OWNER, &arch(), HASH, Perbill::zero());
		let offer = |who, model, version, price| {
			Inference::offer(RuntimeOrigin::signed(who), model, version, price, peer())
		};
		assert_noop!(offer(CLIENT, MODEL, 1, PRICE), Error::<Test>::NotEligible);
		assert_noop!(offer(PROVIDER, MODEL, 1, 0), Error::<Test>::ZeroPrice);
		assert_noop!(offer(PROVIDER, 99, 1, PRICE), Error::<Test>::UnknownModel);
		assert_noop!(offer(PROVIDER, MODEL, 2, PRICE), Error::<Test>::UnknownVersion);
		assert_ok!(offer(PROVIDER, MODEL, 1, PRICE));
		assert_eq!(held(HoldReason::OfferDeposit, PROVIDER), 5);
		// Changing the price keeps the one deposit.
		assert_ok!(offer(PROVIDER, MODEL, 1, 2 * PRICE));
		assert_eq!(held(HoldReason::OfferDeposit, PROVIDER), 5);
		assert_eq!(Offers::<Test>::get(PROVIDER, MODEL).unwrap().price, 2 * PRICE);
		// At most MaxOffersPerProvider (2) models per provider.
		for model in [8, 9] {
			Inference::record_version(model, 1, &OWNER, &arch(), HASH, Perbill::zero());
		}
		assert_ok!(offer(PROVIDER, 8, 1, PRICE));
		assert_noop!(offer(PROVIDER, 9, 1, PRICE), Error::<Test>::TooManyOffers);
		assert_ok!(Inference::withdraw_offer(RuntimeOrigin::signed(PROVIDER), 8));
		assert_noop!(
			Inference::withdraw_offer(RuntimeOrigin::signed(PROVIDER), 8),
			Error::<Test>::UnknownOffer
		);
		assert_eq!(held(HoldReason::OfferDeposit, PROVIDER), 5);
	});
}

#[test]
fn channels_respect_the_terms_and_the_price_limit() {
	test(|| {
		Inference::record_version(MODEL, 1, &OWNER, &arch(), HASH, Perbill::zero());
		assert_ok!(Inference::offer(RuntimeOrigin::signed(PROVIDER), MODEL, 1, PRICE, peer()));
		let open = |who, provider, max_price, amount| {
			Inference::open_channel(RuntimeOrigin::signed(who), provider, MODEL, max_price, amount)
		};
		// Owner-only until the owner says otherwise.
		assert_noop!(open(CLIENT, PROVIDER, PRICE, 100), Error::<Test>::AccessDenied);
		assert_ok!(open(OWNER, PROVIDER, PRICE, 100));
		assert_ok!(Inference::set_terms(
			RuntimeOrigin::signed(OWNER),
			MODEL,
			BoundedVec::new(),
			Access::Public
		));
		assert_noop!(open(PROVIDER, PROVIDER, PRICE, 100), Error::<Test>::SelfDealing);
		assert_noop!(open(CLIENT, PROVIDER2, PRICE, 100), Error::<Test>::UnknownOffer);
		// A provider that raises its price just before cannot charge it to this client.
		assert_noop!(open(CLIENT, PROVIDER, PRICE - 1, 100), Error::<Test>::PriceAboveLimit);
		assert_noop!(open(CLIENT, PROVIDER, PRICE, PRICE - 1), Error::<Test>::BalanceTooLow);
		// A provider that is no longer an eligible worker gets no new client.
		let stake = stake_of(PROVIDER, Role::Worker);
		remove_stake(PROVIDER, Role::Worker);
		assert_noop!(open(CLIENT, PROVIDER, PRICE, 100), Error::<Test>::NotEligible);
		set_stake(PROVIDER, Role::Worker, stake);
		assert_ok!(open(CLIENT, PROVIDER, PRICE, 100));
		assert_eq!(held(HoldReason::ChannelEscrow, CLIENT), 100);
		assert_eq!(held(HoldReason::ChannelDeposit, CLIENT), 3);
		assert_eq!(ProviderChannels::<Test>::get(PROVIDER), 2);
		// Topping up: the client only, before closing.
		assert_noop!(
			Inference::top_up(RuntimeOrigin::signed(CLIENT2), 1, 50),
			Error::<Test>::NotClient
		);
		assert_ok!(Inference::top_up(RuntimeOrigin::signed(CLIENT), 1, 50));
		assert_eq!(Channels::<Test>::get(1).unwrap().balance, 150);
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(CLIENT), 1));
		assert_noop!(
			Inference::top_up(RuntimeOrigin::signed(CLIENT), 1, 50),
			Error::<Test>::ChannelClosing
		);
	});
}

#[test]
fn a_paid_session_settles_in_batches_and_conserves_balances() {
	test(|| {
		served_model();
		let issuance = total_balance();
		let (client0, provider0, treasury0) = (
			Balances::balance(&CLIENT),
			Balances::balance(&PROVIDER),
			Balances::balance(&TREASURY),
		);
		let ch = open(CLIENT, 1_000);
		// 30 requests answered off chain; the provider settles twice, one transaction each.
		let b1 = settle(ch, 12);
		run_to(3);
		let b2 = settle(ch, 30);
		let channel = Channels::<Test>::get(ch).unwrap();
		assert_eq!((channel.settled_requests, channel.settled_amount), (30, 300));
		assert_eq!((channel.pending_batches, channel.pending_amount), (2, 300));
		let batch = Batches::<Test>::get(b2).unwrap();
		assert_eq!((batch.first_request, batch.last_request, batch.amount), (13, 30, 180));
		assert_eq!(batch.transcript_before, transcript(ch, 12));
		// Not payable before the dispute window ends.
		assert_noop!(
			Inference::clear_batch(RuntimeOrigin::signed(CLIENT2), b1),
			Error::<Test>::DisputeWindowOpen
		);
		run_to(1 + 10);
		assert_noop!(
			Inference::clear_batch(RuntimeOrigin::signed(CLIENT2), b1),
			Error::<Test>::DisputeWindowOpen
		);
		run_to(3 + 11);
		for b in [b1, b2] {
			if let Some(BatchStatus::Audited(audit)) = Batches::<Test>::get(b).map(|b| b.status) {
				judge(audit, |_| AuditVerdict::Correct);
				assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
			}
			assert_ok!(Inference::clear_batch(RuntimeOrigin::signed(CLIENT2), b));
		}
		// 300 spent: 5% to the treasury, 5% to the audit pot, 270 to the provider.
		assert!(events().contains(&Event::BatchCleared {
			batch: b2,
			channel: ch,
			provider_paid: 162,
			protocol_fee: 9,
			audit_fee: 9
		}));
		assert_eq!(Balances::balance(&PROVIDER), provider0 + 270);
		assert_eq!(Balances::balance(&TREASURY), treasury0 + 15);
		// The pot started with the existential deposit.
		assert_eq!(Balances::balance(&Inference::pot_account()), 1 + 15);
		// The client closes; the provider has the close delay to settle anything later.
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(CLIENT), ch));
		assert_noop!(
			Inference::finish_close(RuntimeOrigin::signed(CLIENT), ch),
			Error::<Test>::CloseDelayRunning
		);
		run_to(System::block_number() + 5);
		assert_ok!(Inference::finish_close(RuntimeOrigin::signed(CLIENT2), ch));
		assert_eq!(Balances::balance(&CLIENT), client0 - 300);
		assert_eq!(held(HoldReason::ChannelEscrow, CLIENT), 0);
		assert!(Channels::<Test>::get(ch).is_none());
		assert_eq!(ProviderChannels::<Test>::get(PROVIDER), 0);
		// Nothing minted, nothing burned.
		assert_eq!(total_balance(), issuance);
	});
}

#[test]
fn forged_receipts_are_rejected() {
	test(|| {
		served_model();
		let ch = open(CLIENT, 1_000);
		let r = receipt(ch, 5, 50);
		let settle = |r: Receipt<Balance>, sig: TestSignature| {
			Inference::settle(RuntimeOrigin::signed(PROVIDER), r, sig)
		};
		// Signed by someone else.
		assert_noop!(settle(r, sign(CLIENT2, &r)), Error::<Test>::BadSignature);
		// The client's signature of another amount.
		let more = Receipt { amount: 60, requests: 6, ..r };
		assert_noop!(settle(more, sign(CLIENT, &r)), Error::<Test>::BadSignature);
		// Signed for another chain.
		let other_chain = TestSignature(CLIENT, receipt_payload(&H256::repeat_byte(9), &r));
		assert_noop!(settle(r, other_chain), Error::<Test>::BadSignature);
		// A receipt of one channel settled on another of the same client.
		let ch2 = open(CLIENT, 1_000);
		let r2 = Receipt { channel: ch2, ..r };
		assert_noop!(settle(r2, sign(CLIENT, &r)), Error::<Test>::BadSignature);
		// Only the provider settles.
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER2), r, sign(CLIENT, &r)),
			Error::<Test>::NotProvider
		);
		assert_noop!(
			settle(Receipt { channel: 77, ..r }, sign(CLIENT, &r)),
			Error::<Test>::UnknownChannel
		);
	});
}

#[test]
fn replayed_and_overcharging_receipts_are_rejected() {
	test(|| {
		served_model();
		let ch = open(CLIENT, 100);
		let r5 = receipt(ch, 5, 50);
		assert_ok!(Inference::settle(RuntimeOrigin::signed(PROVIDER), r5, sign(CLIENT, &r5)));
		// The same receipt again, or an older one.
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER), r5, sign(CLIENT, &r5)),
			Error::<Test>::StaleReceipt
		);
		let r3 = receipt(ch, 3, 30);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER), r3, sign(CLIENT, &r3)),
			Error::<Test>::StaleReceipt
		);
		// More than the price per request, even signed.
		let greedy = receipt(ch, 6, 61);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER), greedy, sign(CLIENT, &greedy)),
			Error::<Test>::Overcharged
		);
		// More than the channel holds.
		let r11 = receipt(ch, 11, 110);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER), r11, sign(CLIENT, &r11)),
			Error::<Test>::InsufficientBalance
		);
		// At most MaxPendingBatches (3) uncleared batches per channel.
		for n in [6, 7] {
			run_to(n - 4);
			let r = receipt(ch, n, 10 * n as Balance);
			assert_ok!(Inference::settle(RuntimeOrigin::signed(PROVIDER), r, sign(CLIENT, &r)));
		}
		let r8 = receipt(ch, 8, 80);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER), r8, sign(CLIENT, &r8)),
			Error::<Test>::TooManyBatches
		);
	});
}

#[test]
fn audit_draws_are_bounded_per_block() {
	test(|| {
		served_model();
		let channels: Vec<ChannelId> = (0..3).map(|_| open(CLIENT, 100)).collect();
		settle(channels[0], 1);
		settle(channels[1], 1);
		// MaxDrawsPerBlock (2) draws at block 3: the third settlement waits a block.
		let r = receipt(channels[2], 1, PRICE);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER), r, sign(CLIENT, &r)),
			Error::<Test>::DrawQueueFull
		);
		run_to(2);
		assert_ok!(Inference::settle(RuntimeOrigin::signed(PROVIDER), r, sign(CLIENT, &r)));
	});
}

#[test]
fn a_wrong_answer_caught_by_audit_slashes_the_provider_and_refunds_the_client() {
	test(|| {
		served_model();
		set_audit_rate(Perbill::one());
		let issuance = total_balance();
		let client0 = Balances::balance(&CLIENT);
		// The pot has funds to pay auditors.
		assert_ok!(<Balances as Mutate<_>>::transfer(
			&OWNER,
			&Inference::pot_account(),
			100,
			Preservation::Expendable
		));
		let ch = open(CLIENT, 1_000);
		let batch = settle(ch, 20);
		let audit = draw(batch).expect("every batch is audited at a 100% rate");
		let a = Audits::<Test>::get(audit).unwrap();
		assert!((1..=20).contains(&a.request));
		assert_eq!(a.auditors.len(), 3);
		// Neither party of the channel audits it.
		assert!(a.auditors.iter().all(|x| x.who != PROVIDER && x.who != CLIENT));
		assert_eq!(AuditorDuties::<Test>::get(11), 1);
		// A payment cannot be taken while under audit.
		assert_noop!(
			Inference::clear_batch(RuntimeOrigin::signed(PROVIDER), batch),
			Error::<Test>::UnderAudit
		);
		// Two auditors found the answer wrong; validator 11 lazily approved it.
		judge(audit, |who| if who == 11 { AuditVerdict::Correct } else { AuditVerdict::Wrong });
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
		assert!(events().contains(&Event::AuditConcluded {
			audit,
			batch,
			outcome: AuditOutcome::Failed,
			slashed: 100,
			refunded: 200
		}));
		assert_eq!(stake_of(PROVIDER, Role::Worker), 900);
		assert_eq!(stake_of(11, Role::Validator), 980);
		assert!(events().contains(&Event::AuditorRewarded { audit, auditor: 12, amount: 2 }));
		assert!(events().contains(&Event::AuditorSlashed { audit, auditor: 11, amount: 20 }));
		assert!(Batches::<Test>::get(batch).is_none());
		let channel = Channels::<Test>::get(ch).unwrap();
		assert_eq!((channel.balance, channel.pending_batches), (800, 0));
		assert_eq!(Balances::balance(&CLIENT), client0 - 3 - 800);
		assert_eq!(AuditorDuties::<Test>::get(11), 0);
		assert_eq!(total_balance(), issuance);
	});
}

#[test]
fn evidence_not_served_for_an_audit_counts_as_a_wrong_answer() {
	test(|| {
		served_model();
		set_audit_rate(Perbill::one());
		let ch = open(CLIENT, 1_000);
		let batch = settle(ch, 4);
		let audit = draw(batch).unwrap();
		judge(audit, |_| AuditVerdict::Unavailable);
		// Everyone revealed: no need to wait for the deadline.
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
		assert_eq!(stake_of(PROVIDER, Role::Worker), 900);
		assert_eq!(Channels::<Test>::get(ch).unwrap().balance, 960);
	});
}

#[test]
fn a_correct_answer_passes_its_audit_and_is_paid() {
	test(|| {
		served_model();
		set_audit_rate(Perbill::one());
		let ch = open(CLIENT, 1_000);
		let batch = settle(ch, 4);
		let audit = draw(batch).unwrap();
		judge(audit, |who| if who == 13 { AuditVerdict::Wrong } else { AuditVerdict::Correct });
		// Validator 13 holds 3,000 of the 6,000 revealed stake: not a strict majority.
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
		assert!(events().iter().any(|e| matches!(
			e,
			Event::AuditConcluded { outcome: AuditOutcome::Undecided, slashed: 0, .. }
		)));
		assert!(slashes().is_empty());
		assert_eq!(Batches::<Test>::get(batch).unwrap().status, BatchStatus::Open);
		run_to(1 + 11);
		assert_ok!(Inference::clear_batch(RuntimeOrigin::signed(PROVIDER), batch));
		assert_eq!(Channels::<Test>::get(ch).unwrap().balance, 960);
	});
}

#[test]
fn unrevealed_audits_slash_nobody_and_let_the_batch_stand() {
	test(|| {
		served_model();
		set_audit_rate(Perbill::one());
		let ch = open(CLIENT, 1_000);
		let batch = settle(ch, 4);
		let audit = draw(batch).unwrap();
		assert_noop!(
			Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit),
			Error::<Test>::AuditRunning
		);
		let deadline = Audits::<Test>::get(audit).unwrap().reveal_deadline;
		run_to(deadline + 1);
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
		assert!(slashes().is_empty());
		assert_eq!(Batches::<Test>::get(batch).unwrap().status, BatchStatus::Open);
		assert!(AuditorDuties::<Test>::iter().next().is_none());
	});
}

#[test]
fn audit_commit_and_reveal_are_checked() {
	test(|| {
		served_model();
		set_audit_rate(Perbill::one());
		let ch = open(CLIENT, 1_000);
		let audit = draw(settle(ch, 4)).unwrap();
		let a = Audits::<Test>::get(audit).unwrap();
		let v = a.auditors[0].who;
		let salt = [1u8; 32];
		let c = audit_commitment_of(audit, AuditVerdict::Correct, &salt, &v);
		assert_noop!(
			Inference::commit_audit(RuntimeOrigin::signed(CLIENT2), audit, c),
			Error::<Test>::NotAuditor
		);
		assert_noop!(
			Inference::commit_audit(RuntimeOrigin::signed(v), 99, c),
			Error::<Test>::UnknownAudit
		);
		assert_noop!(
			Inference::reveal_audit(RuntimeOrigin::signed(v), audit, AuditVerdict::Correct, salt),
			Error::<Test>::RevealNotOpen
		);
		assert_ok!(Inference::commit_audit(RuntimeOrigin::signed(v), audit, c));
		assert_noop!(
			Inference::commit_audit(RuntimeOrigin::signed(v), audit, c),
			Error::<Test>::AlreadyCommitted
		);
		run_to(a.commit_deadline + 1);
		let late = a.auditors[1].who;
		assert_noop!(
			Inference::commit_audit(RuntimeOrigin::signed(late), audit, c),
			Error::<Test>::CommitClosed
		);
		assert_noop!(
			Inference::reveal_audit(
				RuntimeOrigin::signed(late),
				audit,
				AuditVerdict::Correct,
				salt
			),
			Error::<Test>::NotCommitted
		);
		// Another verdict than the committed one.
		assert_noop!(
			Inference::reveal_audit(RuntimeOrigin::signed(v), audit, AuditVerdict::Wrong, salt),
			Error::<Test>::CommitmentMismatch
		);
		// Another auditor's commitment is worthless: it is bound to its author.
		assert_ne!(audit_commitment_of(audit, AuditVerdict::Correct, &salt, &late), c);
		assert_ok!(Inference::reveal_audit(
			RuntimeOrigin::signed(v),
			audit,
			AuditVerdict::Correct,
			salt
		));
		assert_noop!(
			Inference::reveal_audit(RuntimeOrigin::signed(v), audit, AuditVerdict::Correct, salt),
			Error::<Test>::AlreadyRevealed
		);
		run_to(a.reveal_deadline + 1);
		assert_noop!(
			Inference::reveal_audit(RuntimeOrigin::signed(v), audit, AuditVerdict::Correct, salt),
			Error::<Test>::RevealClosed
		);
		// One revealed verdict is a majority of the revealed stake.
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
		assert!(events()
			.iter()
			.any(|e| matches!(e, Event::AuditConcluded { outcome: AuditOutcome::Passed, .. })));
	});
}

#[test]
fn a_client_disputes_with_a_bond_and_wins_or_pays_for_a_false_claim() {
	test(|| {
		served_model();
		set_audit_rate(Perbill::from_percent(1));
		let ch = open(CLIENT, 1_000);
		let batch = settle(ch, 4);
		let dispute = |who, request| Inference::dispute(RuntimeOrigin::signed(who), batch, request);
		assert_noop!(dispute(CLIENT2, 2), Error::<Test>::NotClient);
		assert_noop!(dispute(CLIENT, 5), Error::<Test>::RequestOutsideBatch);
		assert_noop!(
			Inference::dispute(RuntimeOrigin::signed(CLIENT), 9, 1),
			Error::<Test>::UnknownBatch
		);
		// A false claim: the answer was right; the bond compensates the provider.
		let provider0 = Balances::balance(&PROVIDER);
		assert_ok!(dispute(CLIENT, 2));
		assert_eq!(held(HoldReason::DisputeBond, CLIENT), 50);
		assert!(events().contains(&Event::Disputed { batch, request: 2, draw_at: 3 }));
		assert_noop!(dispute(CLIENT, 3), Error::<Test>::UnderAudit);
		// The auditors are drawn from a later block's randomness, not the dispute's.
		assert!(Audits::<Test>::iter().next().is_none());
		let audit = draw(batch).expect("a dispute is always audited");
		assert_eq!(Audits::<Test>::get(audit).unwrap().request, 2);
		assert!(Audits::<Test>::get(audit).unwrap().disputed_by.is_some());
		assert_noop!(dispute(CLIENT, 3), Error::<Test>::UnderAudit);
		judge(audit, |_| AuditVerdict::Correct);
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
		assert_eq!(Balances::balance(&PROVIDER), provider0 + 50);
		assert_eq!(held(HoldReason::DisputeBond, CLIENT), 0);
		// A true claim on another request: bond back, batch refunded, provider slashed.
		assert_ok!(dispute(CLIENT, 3));
		run_to(System::block_number() + 2);
		let audit = NextAudit::<Test>::get() - 1;
		assert_eq!(Audits::<Test>::get(audit).unwrap().request, 3);
		judge(audit, |_| AuditVerdict::Wrong);
		let client0 = Balances::balance(&CLIENT);
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
		assert_eq!(Balances::balance(&CLIENT), client0 + 50 + 40);
		assert_eq!(stake_of(PROVIDER, Role::Worker), 900);
		// The window closes for disputes.
		let later = settle(ch, 5);
		run_to(System::block_number() + 11);
		assert_noop!(
			Inference::dispute(RuntimeOrigin::signed(CLIENT), later, 5),
			Error::<Test>::DisputeWindowClosed
		);
	});
}

#[test]
fn a_provider_that_disappears_costs_its_client_nothing() {
	test(|| {
		served_model();
		let client0 = Balances::balance(&CLIENT);
		let ch = open(CLIENT, 500);
		// The provider never answers (no receipt exists); the client leaves.
		assert_noop!(
			Inference::close_channel(RuntimeOrigin::signed(CLIENT2), ch),
			Error::<Test>::NotParticipant
		);
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(CLIENT), ch));
		assert_noop!(
			Inference::close_channel(RuntimeOrigin::signed(CLIENT), ch),
			Error::<Test>::ChannelClosing
		);
		run_to(1 + 5);
		assert_ok!(Inference::finish_close(RuntimeOrigin::signed(CLIENT), ch));
		assert_eq!(Balances::balance(&CLIENT), client0);
		assert!(events().contains(&Event::ChannelClosed { channel: ch, refunded: 503 }));
	});
}

#[test]
fn no_settlement_after_closing_and_no_close_with_batches_pending() {
	test(|| {
		served_model();
		let ch = open(CLIENT, 500);
		let b = settle(ch, 2);
		// The provider closes at once.
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(PROVIDER), ch));
		let r = receipt(ch, 3, 30);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER), r, sign(CLIENT, &r)),
			Error::<Test>::ChannelClosing
		);
		assert_noop!(
			Inference::finish_close(RuntimeOrigin::signed(CLIENT), ch),
			Error::<Test>::BatchesPending
		);
		run_to(1 + 11);
		if let Some(BatchStatus::Audited(audit)) = Batches::<Test>::get(b).map(|b| b.status) {
			run_to(Audits::<Test>::get(audit).unwrap().reveal_deadline + 1);
			assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT), audit));
		}
		assert_ok!(Inference::clear_batch(RuntimeOrigin::signed(CLIENT), b));
		assert_ok!(Inference::finish_close(RuntimeOrigin::signed(CLIENT), ch));
		assert_eq!(held(HoldReason::ChannelEscrow, CLIENT), 0);
	});
}

#[test]
fn stakes_stay_slashable_while_serving_or_auditing() {
	test(|| {
		served_model();
		assert!(Inference::has_pending_work(&PROVIDER, Role::Worker));
		assert!(!Inference::has_pending_work(&PROVIDER2, Role::Worker));
		set_audit_rate(Perbill::one());
		let ch = open(CLIENT, 100);
		assert_ok!(Inference::withdraw_offer(RuntimeOrigin::signed(PROVIDER), MODEL));
		// An open channel keeps the provider answerable.
		assert!(Inference::has_pending_work(&PROVIDER, Role::Worker));
		let audit = draw(settle(ch, 1)).unwrap();
		for a in Audits::<Test>::get(audit).unwrap().auditors.iter() {
			assert!(Inference::has_pending_work(&a.who, Role::Validator));
		}
		let deadline = Audits::<Test>::get(audit).unwrap().reveal_deadline;
		run_to(deadline + 1);
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT), audit));
		assert!(!Inference::has_pending_work(&11, Role::Validator));
	});
}

#[test]
fn batches_not_drawn_are_left_open() {
	test(|| {
		served_model();
		set_audit_rate(Perbill::from_percent(1));
		let ch = open(CLIENT, 1_000);
		let batch = settle(ch, 3);
		assert_eq!(draw(batch), None);
		assert!(events().contains(&Event::AuditNotDrawn { batch }));
		// With no validator to draw, an audit is not possible either.
		set_audit_rate(Perbill::one());
		remove_role(Role::Validator);
		let batch = settle(ch, 4);
		assert_eq!(draw(batch), None);
		// A dispute nobody can audit returns the client's bond.
		assert_ok!(Inference::dispute(RuntimeOrigin::signed(CLIENT), batch, 4));
		assert_eq!(held(HoldReason::DisputeBond, CLIENT), 50);
		run_to(System::block_number() + 2);
		assert_eq!(held(HoldReason::DisputeBond, CLIENT), 0);
		assert_eq!(Batches::<Test>::get(batch).unwrap().status, BatchStatus::Open);
	});
}

#[test]
fn each_parameter_is_bounded() {
	test(|| {
		let good = ProtocolParams::<Test>::get();
		assert_ok!(Inference::set_params(RuntimeOrigin::root(), good));
		assert_noop!(
			Inference::set_params(RuntimeOrigin::signed(OWNER), good),
			DispatchError::BadOrigin
		);
		let bad: Vec<fn(&mut ParamsOf<Test>)> = vec![
			|p| p.protocol_fee = Perbill::from_percent(21),
			|p| p.audit_fee = Perbill::from_percent(21),
			|p| p.audit_rate = Perbill::from_parts(9_999_999),
			|p| p.auditors = 0,
			|p| p.auditors = 5,
			|p| p.wrong_answer_slash = Perbill::from_parts(9_999_999),
			|p| p.wrong_answer_slash = Perbill::from_percent(51),
			|p| p.dissent_slash = Perbill::from_percent(11),
			|p| p.audit_delay = 1,
			|p| p.commit_period = 1,
			|p| p.reveal_period = 1,
			|p| p.dispute_window = p.audit_delay,
			|p| p.close_delay = 1,
			|p| p.dispute_bond = 0,
			|p| p.version_deposit = 0,
			|p| p.offer_deposit = 0,
			|p| p.channel_deposit = 0,
		];
		for change in bad {
			let mut p = good;
			change(&mut p);
			assert_noop!(
				Inference::set_params(RuntimeOrigin::root(), p),
				Error::<Test>::ParamOutOfBounds
			);
		}
	});
}

/// What the provider, the treasury and the audit pot have.
fn paid_out() -> Balance {
	Balances::balance(&PROVIDER)
		+ Balances::balance(&TREASURY)
		+ Balances::balance(&Inference::pot_account())
}

/// A challenge input of `n` bytes.
fn input(n: usize) -> BoundedVec<u8, MaxChallengeBytes> {
	BoundedVec::truncate_from(vec![7u8; n])
}

fn output(bytes: &[u8]) -> BoundedVec<u8, MaxChallengeBytes> {
	BoundedVec::truncate_from(bytes.to_vec())
}

#[test]
fn a_provider_that_never_answers_a_challenge_is_slashed_and_its_client_refunded() {
	test(|| {
		served_model();
		let issuance = total_balance();
		let client0 = Balances::balance(&CLIENT);
		let ch = open(CLIENT, 500);
		// The provider took the channel and answers nothing over the network.
		assert_ok!(Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(256)));
		assert!(events().contains(&Event::Challenged {
			channel: ch,
			provider: PROVIDER,
			deadline: 6
		}));
		assert_eq!(held(HoldReason::ChallengeBond, CLIENT), 50);
		// Its stake cannot leave while the challenge waits.
		assert!(Inference::has_pending_work(&PROVIDER, Role::Worker));
		run_to(6);
		assert_noop!(
			Inference::expire_challenge(RuntimeOrigin::signed(CLIENT2), ch),
			Error::<Test>::AnswerWindowOpen
		);
		run_to(7);
		assert_noop!(
			Inference::answer_challenge(
				RuntimeOrigin::signed(PROVIDER),
				ch,
				output(&[1; 40]),
				None
			),
			Error::<Test>::ChallengeExpired
		);
		// Anyone may end it: the provider is slashed, the channel closes at once.
		assert_ok!(Inference::expire_challenge(RuntimeOrigin::signed(CLIENT2), ch));
		assert!(events().contains(&Event::ChallengeExpired {
			channel: ch,
			provider: PROVIDER,
			slashed: 100
		}));
		assert_eq!(stake_of(PROVIDER, Role::Worker), 900);
		assert_eq!(Channels::<Test>::get(ch).unwrap().closes_at, Some(7));
		assert_noop!(
			Inference::expire_challenge(RuntimeOrigin::signed(CLIENT2), ch),
			Error::<Test>::NoChallenge
		);
		assert_ok!(Inference::finish_close(RuntimeOrigin::signed(CLIENT2), ch));
		// Everything back: prepaid balance, channel deposit and bond.
		assert_eq!(Balances::balance(&CLIENT), client0);
		assert_eq!(held(HoldReason::ChallengeBond, CLIENT), 0);
		assert_eq!(total_balance(), issuance);
	});
}

#[test]
fn a_challenge_answered_on_chain_is_the_next_request_settled_audited_and_free_of_fees() {
	test(|| {
		served_model();
		let issuance = total_balance();
		let (client0, paid0) = (Balances::balance(&CLIENT), paid_out());
		let ch = open(CLIENT, 1_000);
		// 3 requests were answered and settled over the network; the fourth is not answered.
		let b1 = settle(ch, 3);
		let question = input(256);
		assert_ok!(Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, question.clone()));
		assert_noop!(
			Inference::answer_challenge(RuntimeOrigin::signed(PROVIDER2), ch, output(&[1]), None),
			Error::<Test>::NotProvider
		);
		let answer = output(&[3; 40]);
		let post =
			Inference::answer_challenge(RuntimeOrigin::signed(PROVIDER), ch, answer.clone(), None)
				.unwrap();
		assert_eq!(post.pays_fee, frame_support::dispatch::Pays::No);
		// It extends the settled transcript as request 4, hashed as the network's requests are.
		let head = transcript_step(
			transcript(ch, 3),
			4,
			H256(sp_io::hashing::blake2_256(&question)),
			H256(sp_io::hashing::blake2_256(&answer)),
		);
		let channel = Channels::<Test>::get(ch).unwrap();
		assert_eq!((channel.settled_requests, channel.settled_amount), (4, 40));
		assert_eq!(channel.transcript, head);
		let b2 = b1 + 1;
		assert!(events().contains(&Event::ChallengeAnswered {
			channel: ch,
			request: 4,
			output: answer,
			amount: 10,
			batch: b2
		}));
		let batch = Batches::<Test>::get(b2).unwrap();
		assert_eq!((batch.first_request, batch.last_request, batch.amount), (4, 4, 10));
		assert_eq!((batch.transcript_before, batch.transcript), (transcript(ch, 3), head));
		assert_eq!(batch.status, BatchStatus::AwaitingDraw);
		assert_eq!(held(HoldReason::ChallengeBond, CLIENT), 0);
		assert_noop!(
			Inference::answer_challenge(RuntimeOrigin::signed(PROVIDER), ch, output(&[3]), None),
			Error::<Test>::NoChallenge
		);
		// The network's receipts go on from request 4 (in the next block: this one's draws are
		// full).
		run_to(2);
		let r = Receipt { channel: ch, requests: 5, amount: 50, transcript: H256::repeat_byte(5) };
		assert_ok!(Inference::settle(RuntimeOrigin::signed(PROVIDER), r, sign(CLIENT, &r)));
		// Paid like any batch once its window is over.
		run_to(2 + 11);
		for b in [b1, b2, b2 + 1] {
			if let Some(BatchStatus::Audited(audit)) = Batches::<Test>::get(b).map(|b| b.status) {
				judge(audit, |_| AuditVerdict::Correct);
				assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
			}
			assert_ok!(Inference::clear_batch(RuntimeOrigin::signed(CLIENT2), b));
		}
		// The provider, the treasury and the pot got the 5 requests' 50, nothing more.
		assert_eq!(paid_out() - paid0, 50);
		assert_eq!(Balances::balance(&CLIENT), client0 - 3 - 1_000);
		assert_eq!(total_balance(), issuance);
	});
}

#[test]
fn a_wrong_answer_to_a_challenge_is_caught_by_audit() {
	test(|| {
		served_model();
		set_audit_rate(Perbill::one());
		let ch = open(CLIENT, 1_000);
		assert_ok!(Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(64)));
		// Anything, to escape the slash of an unanswered challenge.
		assert_ok!(Inference::answer_challenge(
			RuntimeOrigin::signed(PROVIDER),
			ch,
			output(&[]),
			None
		));
		let batch = NextBatch::<Test>::get() - 1;
		let audit = draw(batch).expect("audited at a 100% rate");
		assert_eq!(Audits::<Test>::get(audit).unwrap().request, 1);
		judge(audit, |_| AuditVerdict::Wrong);
		assert_ok!(Inference::conclude_audit(RuntimeOrigin::signed(CLIENT2), audit));
		assert_eq!(stake_of(PROVIDER, Role::Worker), 900);
		let channel = Channels::<Test>::get(ch).unwrap();
		// The request's price came back to the client.
		assert_eq!((channel.balance, channel.pending_batches), (990, 0));
		assert_eq!(held(HoldReason::ChannelEscrow, CLIENT), 990);
	});
}

#[test]
fn a_provider_cannot_escape_a_challenge_by_closing_the_channel() {
	test(|| {
		served_model();
		let ch = open(CLIENT, 500);
		assert_ok!(Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(8)));
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(PROVIDER), ch));
		assert_noop!(
			Inference::finish_close(RuntimeOrigin::signed(PROVIDER), ch),
			Error::<Test>::ChallengePending
		);
		run_to(7);
		assert_ok!(Inference::expire_challenge(RuntimeOrigin::signed(CLIENT), ch));
		assert_eq!(stake_of(PROVIDER, Role::Worker), 900);
		assert_ok!(Inference::finish_close(RuntimeOrigin::signed(CLIENT), ch));
	});
}

#[test]
fn challenges_are_checked() {
	test(|| {
		served_model();
		let ch = open(CLIENT, 15);
		assert_noop!(
			Inference::challenge(RuntimeOrigin::signed(CLIENT2), ch, input(8)),
			Error::<Test>::NotClient
		);
		assert_noop!(
			Inference::challenge(RuntimeOrigin::signed(CLIENT), 99, input(8)),
			Error::<Test>::UnknownChannel
		);
		assert_noop!(
			Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(0)),
			Error::<Test>::EmptyInput
		);
		assert_noop!(
			Inference::answer_challenge(RuntimeOrigin::signed(PROVIDER), ch, output(&[1]), None),
			Error::<Test>::NoChallenge
		);
		assert_noop!(
			Inference::expire_challenge(RuntimeOrigin::signed(CLIENT), ch),
			Error::<Test>::NoChallenge
		);
		assert_ok!(Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(8)));
		assert_noop!(
			Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(8)),
			Error::<Test>::ChallengePending
		);
		assert_ok!(Inference::answer_challenge(
			RuntimeOrigin::signed(PROVIDER),
			ch,
			output(&[1]),
			None
		));
		// The balance left (15 - 10) does not pay for another request.
		assert_noop!(
			Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(8)),
			Error::<Test>::InsufficientBalance
		);
		assert_ok!(Inference::top_up(RuntimeOrigin::signed(CLIENT), ch, 100));
		assert_ok!(Inference::close_channel(RuntimeOrigin::signed(CLIENT), ch));
		assert_noop!(
			Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(8)),
			Error::<Test>::ChannelClosing
		);
		// A client that cannot pay the bond cannot challenge.
		let poor = 300;
		let _ = Balances::deposit_creating(&poor, 60);
		let ch2 = open(poor, 10);
		assert!(Inference::challenge(RuntimeOrigin::signed(poor), ch2, input(8)).is_err());
	});
}

#[test]
fn an_answer_settles_the_latest_receipt_with_it_and_always_finds_room() {
	test(|| {
		served_model();
		let ch = open(CLIENT, 1_000);
		// MaxPendingBatches (3) batches wait to be paid: no settlement has room.
		settle(ch, 1);
		settle(ch, 2);
		run_to(2);
		settle(ch, 3);
		assert_ok!(Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(8)));
		let r = receipt(ch, 5, 50);
		assert_noop!(
			Inference::settle(RuntimeOrigin::signed(PROVIDER), r, sign(CLIENT, &r)),
			Error::<Test>::TooManyBatches
		);
		// The answer's draw queue is full too.
		PendingDraws::<Test>::mutate(2 + 2, |queue| queue.try_push(u64::MAX)).unwrap();
		// A receipt signed by anyone else is refused, and the challenge still waits.
		let forged = TestSignature(CLIENT2, receipt_payload(&System::block_hash(0), &r));
		assert_noop!(
			Inference::answer_challenge(
				RuntimeOrigin::signed(PROVIDER),
				ch,
				output(&[2]),
				Some((r, forged))
			),
			Error::<Test>::BadSignature
		);
		// The client's latest receipt (requests 4 and 5) and the answer, as one batch.
		assert_ok!(Inference::answer_challenge(
			RuntimeOrigin::signed(PROVIDER),
			ch,
			output(&[2]),
			Some((r, sign(CLIENT, &r)))
		));
		let batch = NextBatch::<Test>::get() - 1;
		assert!(events().contains(&Event::Settled {
			channel: ch,
			batch,
			first: 4,
			last: 6,
			amount: 30,
			draw_at: 5
		}));
		assert!(PendingDraws::<Test>::get(5).contains(&batch));
		let b = Batches::<Test>::get(batch).unwrap();
		assert_eq!(b.transcript_before, transcript(ch, 3));
		let head = transcript_step(
			transcript(ch, 5),
			6,
			H256(sp_io::hashing::blake2_256(&input(8))),
			H256(sp_io::hashing::blake2_256(&[2])),
		);
		assert_eq!(b.transcript, head);
		let channel = Channels::<Test>::get(ch).unwrap();
		assert_eq!((channel.settled_requests, channel.settled_amount), (6, 60));
		assert_eq!((channel.pending_batches, channel.pending_amount), (4, 60));
		assert_eq!(stake_of(PROVIDER, Role::Worker), 1_000);
	});
}

#[test]
fn many_challenges_expiring_at_once_slash_the_provider_once_per_window() {
	test(|| {
		served_model();
		let channels = [open(CLIENT, 100), open(CLIENT2, 100)];
		for (ch, client) in channels.into_iter().zip([CLIENT, CLIENT2]) {
			assert_ok!(Inference::challenge(RuntimeOrigin::signed(client), ch, input(8)));
		}
		run_to(7);
		for ch in channels {
			assert_ok!(Inference::expire_challenge(RuntimeOrigin::signed(OWNER), ch));
		}
		assert_eq!(stake_of(PROVIDER, Role::Worker), 900, "one slash for both");
		// Another window, another slash.
		let third = open(CLIENT, 100);
		assert_ok!(Inference::challenge(RuntimeOrigin::signed(CLIENT), third, input(8)));
		run_to(13);
		assert_ok!(Inference::expire_challenge(RuntimeOrigin::signed(OWNER), third));
		assert_eq!(stake_of(PROVIDER, Role::Worker), 810);
	});
}

#[test]
fn governance_cannot_shorten_the_answer_window_below_its_floor() {
	test(|| {
		served_model();
		let mut p = ProtocolParams::<Test>::get();
		p.close_delay = 2;
		assert_ok!(Inference::set_params(RuntimeOrigin::root(), p));
		let ch = open(CLIENT, 100);
		assert_ok!(Inference::challenge(RuntimeOrigin::signed(CLIENT), ch, input(8)));
		assert!(events().contains(&Event::Challenged {
			channel: ch,
			provider: PROVIDER,
			deadline: 1 + 4
		}));
	});
}
