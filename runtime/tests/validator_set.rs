//! The block-producing set: elected by stake each era from more candidates than seats, paid per
//! era from the emission curve (what stakers do not earn goes to the treasury), slashed and
//! disabled for an equivocation proven with a key-ownership proof, and changed by referendum
//! only within bounds. Every block is built by `frame_executive` with real BABE pre-digests.

mod blocks;
mod common;

use agora_runtime::{
	configs::{
		TreasuryAccount, ISOLATED_OFFENCE_SLASH_CAP, MAX_AUTHORITIES, MAX_CANDIDATES,
		MAX_NOMINATORS, MIN_GOVERNED_VALIDATOR_COUNT,
	},
	currency::AGR,
	genesis_config_presets::VALIDATOR_BOND,
	AccountId, Balance, Balances, Runtime, RuntimeCall, RuntimeEvent, RuntimeOrigin, Session,
	SessionKeys,
};
use blocks::Chain;
use codec::Encode;
use frame_support::{
	assert_err, assert_ok,
	traits::{fungible::Inspect, KeyOwnerProofSystem},
};
use pallet_staking::{ConfigOp, RewardDestination, ValidatorPrefs};
use sp_consensus_babe::{
	digests::{CompatibleDigestItem, PreDigest, SecondaryPlainPreDigest},
	BABE_ENGINE_ID,
};
use sp_core::{Pair, H256};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring as Keyring};
use sp_keystore::{testing::MemoryKeystore, KeystoreExt};
use sp_runtime::{
	traits::{Dispatchable, Header as _},
	Digest, DigestItem, DispatchError, Perbill, Percent,
};

/// The development genesis (Alice the only validator, one-minute sessions, two-session eras)
/// with a keystore, so that candidates can generate their session keys and ownership proofs.
fn ext() -> sp_io::TestExternalities {
	let mut ext = common::genesis(sp_genesis_builder::DEV_RUNTIME_PRESET);
	ext.register_extension(KeystoreExt::new(MemoryKeystore::new()));
	ext
}

fn account(k: Keyring) -> AccountId {
	k.to_account_id()
}

fn dispatch(origin: RuntimeOrigin, call: RuntimeCall) -> Result<(), DispatchError> {
	call.dispatch(origin).map(|_| ()).map_err(|e| e.error)
}

fn signed(who: Keyring, call: RuntimeCall) {
	if let Err(e) = dispatch(RuntimeOrigin::signed(account(who)), call.clone()) {
		panic!("{who:?} could not dispatch {call:?}: {e:?}");
	}
}

fn staking(call: pallet_staking::Call<Runtime>) -> RuntimeCall {
	RuntimeCall::Staking(call)
}

/// `who` joins as a validator candidate the way a new operator does: bonds `stake`, registers
/// the session keys its node generated (with the proof that it holds them) and validates.
fn join(who: Keyring, stake: Balance) {
	signed(
		who,
		staking(pallet_staking::Call::bond { value: stake, payee: RewardDestination::Stash }),
	);
	let generated = SessionKeys::generate(&account(who).encode(), Some(who.to_seed().into_bytes()));
	signed(
		who,
		RuntimeCall::Session(pallet_session::Call::set_keys {
			keys: generated.keys,
			proof: generated.proof.encode(),
		}),
	);
	signed(who, staking(pallet_staking::Call::validate { prefs: ValidatorPrefs::default() }));
}

/// A chain whose set is Alice (genesis) and Bob, Charlie and Dave, who joined with the same
/// bond; it returns at the first block of the era they validate in.
fn four_validators() -> Chain {
	let mut chain = Chain::start();
	for who in [Keyring::Bob, Keyring::Charlie, Keyring::Dave] {
		join(who, VALIDATOR_BOND);
	}
	chain.until("four validators", || Session::validators().len() == 4);
	chain
}

/// `who`'s bonded stake that is still active (not unbonding, not slashed away).
fn active_stake(who: &AccountId) -> Balance {
	pallet_staking::Ledger::<Runtime>::get(who).map(|l| l.active).unwrap_or(0)
}

fn active_era() -> u32 {
	pallet_staking::ActiveEra::<Runtime>::get().map(|e| e.index).unwrap_or(0)
}

fn sorted(mut accounts: Vec<AccountId>) -> Vec<AccountId> {
	accounts.sort();
	accounts
}

fn babe_authorities() -> Vec<sp_consensus_babe::AuthorityId> {
	pallet_babe::Authorities::<Runtime>::get().into_iter().map(|(id, _)| id).collect()
}

fn babe_id(k: Keyring) -> sp_consensus_babe::AuthorityId {
	k.public().into()
}

#[test]
fn an_election_with_more_candidates_than_seats_seats_the_best_backed() {
	ext().execute_with(|| {
		let mut chain = Chain::start();
		assert_eq!(Session::validators(), vec![account(Keyring::Alice)]);
		assert_ok!(dispatch(
			RuntimeOrigin::root(),
			staking(pallet_staking::Call::set_validator_count { new: 3 })
		));
		// Five candidates for three seats. Bob bonds little but Ferdie nominates him.
		join(Keyring::Bob, 50_000 * AGR);
		join(Keyring::Charlie, 300_000 * AGR);
		join(Keyring::Dave, 200_000 * AGR);
		join(Keyring::Eve, 20_000 * AGR);
		signed(
			Keyring::Ferdie,
			staking(pallet_staking::Call::bond {
				value: 500_000 * AGR,
				payee: RewardDestination::Stash,
			}),
		);
		signed(
			Keyring::Ferdie,
			staking(pallet_staking::Call::nominate { targets: vec![account(Keyring::Bob).into()] }),
		);
		let elected =
			sorted(vec![account(Keyring::Bob), account(Keyring::Charlie), account(Keyring::Dave)]);
		chain.until("the elected validators' first session", || {
			sorted(Session::validators()) == elected
		});
		// The set that authors is the elected one: Alice (100 000 AGR) and Eve are out.
		let era = active_era();
		assert!(era >= 1);
		let backing = |k: Keyring| {
			pallet_staking::ErasStakersOverview::<Runtime>::get(era, account(k)).map(|e| e.total)
		};
		assert_eq!(backing(Keyring::Bob), Some(550_000 * AGR));
		assert_eq!(backing(Keyring::Charlie), Some(300_000 * AGR));
		assert_eq!(backing(Keyring::Alice), None);
		assert_eq!(backing(Keyring::Eve), None);
		let mut authorities = babe_authorities();
		authorities.sort();
		let mut expected: Vec<_> =
			[Keyring::Bob, Keyring::Charlie, Keyring::Dave].into_iter().map(babe_id).collect();
		expected.sort();
		assert_eq!(authorities, expected);
		// The new set authors the next blocks.
		chain.next_block();
		chain.next_block();
		let author = pallet_authorship::Pallet::<Runtime>::author().expect("the block's author");
		assert!(elected.contains(&author), "block authored by {author:?}");
		chain.close_block();
	});
}

#[test]
fn validators_are_paid_per_era_and_the_rest_of_the_curve_goes_to_the_treasury() {
	ext().execute_with(|| {
		let mut chain = Chain::start();
		let treasury = TreasuryAccount::get();
		let treasury_before = Balances::balance(&treasury);
		chain.until("era 1", || active_era() == 1);
		// The block that started era 1 paid era 0.
		chain.next_block();
		let (payout, remainder) = chain
			.events
			.iter()
			.find_map(|e| match e {
				RuntimeEvent::Staking(pallet_staking::Event::EraPaid {
					era_index: 0,
					validator_payout,
					remainder,
				}) => Some((*validator_payout, *remainder)),
				_ => None,
			})
			.expect("era 0 was paid");
		assert!(payout > 0, "stakers earn in every era");
		// About 1% of the issuance is staked, far below the ideal 50%: most of what the curve
		// allows goes to the treasury.
		assert!(remainder > payout);
		assert!(Balances::balance(&treasury) >= treasury_before + remainder);
		// Anyone may pay an era's stakers; Alice, the only validator, earned it all.
		let alice = account(Keyring::Alice);
		let before = Balances::total_balance(&alice);
		signed(
			Keyring::Bob,
			staking(pallet_staking::Call::payout_stakers {
				validator_stash: alice.clone(),
				era: 0,
			}),
		);
		let paid = Balances::total_balance(&alice) - before;
		assert!(payout - paid <= 1, "paid {paid} of {payout}");
		// An era is paid once.
		assert_err!(
			dispatch(
				RuntimeOrigin::signed(account(Keyring::Bob)),
				staking(pallet_staking::Call::payout_stakers { validator_stash: alice, era: 0 })
			),
			pallet_staking::Error::<Runtime>::AlreadyClaimed
		);
		chain.close_block();
	});
}

/// Two different headers for the same slot, both naming `offender` (at `authority_index`) as
/// their author and sealed by `signer`: a BABE equivocation when the two are the same.
fn babe_equivocation(
	signer: Keyring,
	offender: Keyring,
	authority_index: u32,
) -> sp_consensus_babe::EquivocationProof<agora_runtime::Header> {
	let slot = pallet_babe::CurrentSlot::<Runtime>::get();
	let header = |state_root: u8| {
		let pre_digest =
			PreDigest::SecondaryPlain(SecondaryPlainPreDigest { authority_index, slot });
		let mut header = agora_runtime::Header::new(
			frame_system::Pallet::<Runtime>::block_number(),
			H256::zero(),
			H256::repeat_byte(state_root),
			frame_system::Pallet::<Runtime>::parent_hash(),
			Digest { logs: vec![DigestItem::PreRuntime(BABE_ENGINE_ID, pre_digest.encode())] },
		);
		let seal = signer.pair().sign(header.hash().as_ref());
		header.digest_mut().push(<DigestItem as CompatibleDigestItem>::babe_seal(seal.into()));
		header
	};
	sp_consensus_babe::EquivocationProof {
		offender: babe_id(offender),
		slot,
		first_header: header(1),
		second_header: header(2),
	}
}

#[test]
fn a_lone_babe_equivocation_is_reported_disabled_and_slashed_at_the_cap() {
	ext().execute_with(|| {
		let mut chain = four_validators();
		let alice = account(Keyring::Alice);
		let index = Session::validators().iter().position(|v| *v == alice).unwrap() as u32;
		let proof = babe_equivocation(Keyring::Alice, Keyring::Alice, index);
		let key_owner_proof = |k: Keyring| {
			agora_runtime::Historical::prove((sp_consensus_babe::KEY_TYPE, babe_id(k)))
				.expect("in the current session")
		};
		let report = |proof, key_owner_proof| {
			RuntimeCall::Babe(pallet_babe::Call::report_equivocation_unsigned {
				equivocation_proof: Box::new(proof),
				key_owner_proof,
			})
		};
		// Headers sealed by Alice cannot blame Bob, even with Bob's own key-ownership proof.
		let bob_index =
			Session::validators().iter().position(|v| *v == account(Keyring::Bob)).unwrap() as u32;
		let forged = babe_equivocation(Keyring::Alice, Keyring::Bob, bob_index);
		assert!(
			dispatch(RuntimeOrigin::none(), report(forged, key_owner_proof(Keyring::Bob))).is_err()
		);
		assert_ok!(dispatch(
			RuntimeOrigin::none(),
			report(proof.clone(), key_owner_proof(Keyring::Alice))
		));
		// Disabled at once: she stops authoring for the rest of the era.
		assert!(pallet_session::DisabledValidators::<Runtime>::get()
			.iter()
			.any(|(i, _)| *i == index));
		// The same offence is not reported twice.
		assert!(dispatch(RuntimeOrigin::none(), report(proof, key_owner_proof(Keyring::Alice)))
			.is_err());
		// One of four equivocated alone: (3 × 1/4)² = 56.25% by the formula, capped at 10% for
		// an isolated offence; applied after the one-era deferral in which governance could
		// cancel it.
		let stake = active_stake;
		chain.until("the deferred slash", || stake(&alice) < VALIDATOR_BOND);
		let slashed = VALIDATOR_BOND - stake(&alice);
		assert_eq!(slashed, ISOLATED_OFFENCE_SLASH_CAP * VALIDATOR_BOND);
		// Nothing is burned: the author of the block that carried the unsigned report earns a
		// half of the 10% reporters' share; the rest of the slash goes to the treasury.
		let reporter_reward = slashed / 20;
		let to_treasury =
			frame_system::Pallet::<Runtime>::events().into_iter().find_map(|r| match r.event {
				RuntimeEvent::Balances(pallet_balances::Event::Deposit { who, amount })
					if who == TreasuryAccount::get() && amount == slashed - reporter_reward =>
				{
					Some(amount)
				},
				_ => None,
			});
		assert_eq!(to_treasury, Some(slashed - reporter_reward));
		// The others kept their stake.
		assert_eq!(stake(&account(Keyring::Bob)), VALIDATOR_BOND);
		chain.close_block();
	});
}

/// `call` as a protocol-parameters referendum enacts it: `governance.dispatchDelegated`.
fn delegated(call: RuntimeCall) -> Result<(), DispatchError> {
	let params = RuntimeOrigin::from(pallet_governance::Origin::ProtocolParameters);
	dispatch(
		params,
		RuntimeCall::Governance(pallet_governance::Call::dispatch_delegated {
			call: Box::new(call),
		}),
	)
}

#[test]
fn governance_changes_staking_parameters_only_within_bounds() {
	ext().execute_with(|| {
		frame_system::Pallet::<Runtime>::set_block_number(1);
		let not_delegated: DispatchError =
			pallet_governance::Error::<Runtime>::CallNotDelegated.into();
		let count = |new| staking(pallet_staking::Call::set_validator_count { new });
		// The validator count: from four (GRANDPA's smallest fault-tolerant set) to the
		// authority limit.
		assert_ok!(delegated(count(MIN_GOVERNED_VALIDATOR_COUNT)));
		assert_eq!(pallet_staking::ValidatorCount::<Runtime>::get(), 4);
		assert_ok!(delegated(count(MAX_AUTHORITIES)));
		assert_eq!(pallet_staking::ValidatorCount::<Runtime>::get(), MAX_AUTHORITIES);
		assert_eq!(delegated(count(3)), Err(not_delegated));
		assert_eq!(delegated(count(MAX_AUTHORITIES + 1)), Err(not_delegated));
		// Bonds, caps, commission and the stakers' share: within their bounds.
		let configs = |min_validator_bond: ConfigOp<Balance>,
		               max_nominator_count: ConfigOp<u32>,
		               max_validator_count: ConfigOp<u32>,
		               min_commission: ConfigOp<Perbill>,
		               max_staked_rewards: ConfigOp<Percent>| {
			staking(pallet_staking::Call::set_staking_configs {
				min_nominator_bond: ConfigOp::Set(100 * AGR),
				min_validator_bond,
				max_nominator_count,
				max_validator_count,
				chill_threshold: ConfigOp::Noop,
				min_commission,
				max_staked_rewards,
			})
		};
		use ConfigOp::{Noop, Remove, Set};
		assert_ok!(delegated(configs(
			Set(50_000 * AGR),
			Set(MAX_NOMINATORS),
			Set(MAX_CANDIDATES),
			Set(Perbill::from_percent(5)),
			Set(Percent::from_percent(50))
		)));
		assert_eq!(pallet_staking::MinValidatorBond::<Runtime>::get(), 50_000 * AGR);
		assert_eq!(pallet_staking::MinCommission::<Runtime>::get(), Perbill::from_percent(5));
		for refused in [
			configs(Set(2_000_000 * AGR), Noop, Noop, Noop, Noop),
			configs(Noop, Set(MAX_NOMINATORS + 1), Noop, Noop, Noop),
			configs(Remove, Noop, Noop, Noop, Noop),
			configs(Noop, Remove, Noop, Noop, Noop),
			configs(Noop, Noop, Set(MAX_CANDIDATES + 1), Noop, Noop),
			configs(Noop, Noop, Remove, Noop, Noop),
			// Caps below today's candidates (one, Alice) or the least validator count.
			configs(Noop, Noop, Set(MIN_GOVERNED_VALIDATOR_COUNT - 1), Noop, Noop),
			configs(Noop, Noop, Set(0), Noop, Noop),
			// The chill threshold stays root's.
			staking(pallet_staking::Call::set_staking_configs {
				min_nominator_bond: ConfigOp::Noop,
				min_validator_bond: ConfigOp::Noop,
				max_nominator_count: ConfigOp::Noop,
				max_validator_count: ConfigOp::Noop,
				chill_threshold: ConfigOp::Set(Percent::from_percent(90)),
				min_commission: ConfigOp::Noop,
				max_staked_rewards: ConfigOp::Noop,
			}),
			configs(Noop, Noop, Noop, Set(Perbill::from_percent(60)), Noop),
			configs(Noop, Noop, Noop, Noop, Set(Percent::from_percent(5))),
			// Emergency powers are not delegated.
			staking(pallet_staking::Call::force_new_era {}),
			staking(pallet_staking::Call::set_invulnerables { invulnerables: vec![] }),
		] {
			assert_eq!(delegated(refused.clone()), Err(not_delegated), "{refused:?}");
		}
		// The minimum commission is also settable directly (staking's admin origin), up to 50%;
		// cancelling a slash or slashing by hand are root's.
		let params = RuntimeOrigin::from(pallet_governance::Origin::ProtocolParameters);
		let filtered: DispatchError = frame_system::Error::<Runtime>::CallFiltered.into();
		let commission = |percent| {
			staking(pallet_staking::Call::set_min_commission {
				new: Perbill::from_percent(percent),
			})
		};
		assert_ok!(dispatch(params.clone(), commission(50)));
		assert_eq!(dispatch(params.clone(), commission(51)), Err(filtered));
		for refused in [
			staking(pallet_staking::Call::cancel_deferred_slash { era: 1, slash_indices: vec![0] }),
			staking(pallet_staking::Call::manual_slash {
				validator_stash: account(Keyring::Bob),
				era: 0,
				slash_fraction: Perbill::from_percent(10),
			}),
		] {
			assert_eq!(dispatch(params.clone(), refused.clone()), Err(filtered), "{refused:?}");
		}
		// The track cannot call the root-only setters directly, and accounts can do none of it.
		assert_eq!(dispatch(params, count(8)), Err(DispatchError::BadOrigin));
		assert_eq!(
			dispatch(RuntimeOrigin::signed(account(Keyring::Bob)), commission(1)),
			Err(DispatchError::BadOrigin)
		);
		// Root (a root-track referendum) is bound only by pallet-staking's own limit.
		assert_ok!(dispatch(RuntimeOrigin::root(), count(2)));
		assert_err!(
			dispatch(RuntimeOrigin::root(), count(MAX_AUTHORITIES + 1)),
			pallet_staking::Error::<Runtime>::TooManyValidators
		);
	});
}

#[test]
fn a_validator_leaves_by_chilling_and_withdraws_after_the_bonding_period() {
	ext().execute_with(|| {
		let mut chain = Chain::start();
		join(Keyring::Bob, VALIDATOR_BOND);
		chain.until("Bob in the set", || Session::validators().contains(&account(Keyring::Bob)));
		let bob = account(Keyring::Bob);
		let free_before = Balances::balance(&bob);
		signed(Keyring::Bob, staking(pallet_staking::Call::chill {}));
		signed(Keyring::Bob, staking(pallet_staking::Call::unbond { value: VALIDATOR_BOND }));
		let unbonded_in = active_era();
		chain.until("Bob out of the set", || !Session::validators().contains(&bob));
		// Still bonded (and slashable) until the bonding period is over: nothing to withdraw.
		let withdraw = || {
			dispatch(
				RuntimeOrigin::signed(account(Keyring::Bob)),
				staking(pallet_staking::Call::withdraw_unbonded { num_slashing_spans: 0 }),
			)
		};
		if active_era() < unbonded_in + 2 {
			assert_ok!(withdraw());
			assert_eq!(Balances::balance(&bob), free_before);
		}
		chain.until("the bonding period's end", || active_era() >= unbonded_in + 2);
		assert_ok!(withdraw());
		assert_eq!(Balances::balance(&bob), free_before + VALIDATOR_BOND);
		assert!(pallet_staking::Ledger::<Runtime>::get(&bob).is_none());
		chain.close_block();
	});
}

#[test]
fn an_offline_validator_is_chilled_not_slashed_and_the_set_heals_at_the_next_era() {
	ext().execute_with(|| {
		let mut chain = four_validators();
		let dave = account(Keyring::Dave);
		// Dave's node goes down: no blocks, no heartbeats.
		chain.offline.push(Keyring::Dave);
		chain.until("Dave reported offline", || {
			!pallet_staking::Validators::<Runtime>::contains_key(&dave)
		});
		chain.next_block();
		assert!(chain.events.iter().any(|e| matches!(
			e,
			RuntimeEvent::ImOnline(pallet_im_online::Event::SomeOffline { offline })
				if offline.iter().any(|(stash, ())| *stash == dave)
		)));
		// Chilled, not slashed: his stake is whole and nothing was reported to staking.
		assert_eq!(active_stake(&dave), VALIDATOR_BOND);
		assert!(!chain.events.iter().any(|e| matches!(
			e,
			RuntimeEvent::Staking(pallet_staking::Event::SlashReported { .. })
		)));
		// The next era's set leaves him out; the others go on.
		chain.until("the set without Dave", || {
			Session::validators().len() == 3 && !Session::validators().contains(&dave)
		});
		// Back online, he validates again and is elected again.
		chain.offline.clear();
		signed(
			Keyring::Dave,
			staking(pallet_staking::Call::validate { prefs: ValidatorPrefs::default() }),
		);
		chain.until("Dave back in the set", || Session::validators().contains(&dave));
		chain.close_block();
	});
}

/// Two different prevotes signed by `signer` in one round of the current GRANDPA set, naming
/// `offender` as their voter: an equivocation when the two are the same.
fn grandpa_equivocation(
	signer: Ed25519Keyring,
	offender: Ed25519Keyring,
) -> sp_consensus_grandpa::EquivocationProof<H256, u32> {
	let set_id = pallet_grandpa::CurrentSetId::<Runtime>::get();
	let round = 7;
	let vote = |target: u8| {
		let prevote =
			finality_grandpa::Prevote { target_hash: H256::repeat_byte(target), target_number: 1 };
		let message = finality_grandpa::Message::Prevote(prevote.clone());
		let payload = sp_consensus_grandpa::localized_payload(round, set_id, &message);
		(prevote, signer.pair().sign(&payload).into())
	};
	sp_consensus_grandpa::EquivocationProof::new(
		set_id,
		sp_consensus_grandpa::Equivocation::Prevote(finality_grandpa::Equivocation {
			round_number: round,
			identity: offender.public().into(),
			first: vote(1),
			second: vote(2),
		}),
	)
}

#[test]
fn grandpa_equivocations_by_two_validators_in_one_round_are_slashed_in_full() {
	ext().execute_with(|| {
		let mut chain = four_validators();
		let report = |signer: Ed25519Keyring, offender: Ed25519Keyring| {
			let id: sp_consensus_grandpa::AuthorityId = offender.public().into();
			let key_owner_proof =
				agora_runtime::Historical::prove((sp_consensus_grandpa::KEY_TYPE, id))
					.expect("in the current session");
			RuntimeCall::Grandpa(pallet_grandpa::Call::report_equivocation_unsigned {
				equivocation_proof: Box::new(grandpa_equivocation(signer, offender)),
				key_owner_proof,
			})
		};
		// Votes signed by someone else than the voter they name are refused.
		assert!(dispatch(
			RuntimeOrigin::none(),
			report(Ed25519Keyring::Dave, Ed25519Keyring::Charlie)
		)
		.is_err());
		// Charlie and Dave both equivocate in round 7: two of four, (3 × 2/4)² ≥ 100%, no cap.
		assert_ok!(dispatch(
			RuntimeOrigin::none(),
			report(Ed25519Keyring::Charlie, Ed25519Keyring::Charlie)
		));
		assert_ok!(dispatch(
			RuntimeOrigin::none(),
			report(Ed25519Keyring::Dave, Ed25519Keyring::Dave)
		));
		let stake = |k: Keyring| active_stake(&account(k));
		chain.until("the deferred slashes", || {
			stake(Keyring::Charlie) == 0 && stake(Keyring::Dave) == 0
		});
		assert_eq!(stake(Keyring::Bob), VALIDATOR_BOND);
		assert_eq!(stake(Keyring::Alice), VALIDATOR_BOND);
		chain.close_block();
	});
}

/// `who`'s im-online heartbeat for the current session, as its node's offchain worker submits
/// it: an authorized transaction (no signer, no fee) built by the runtime's
/// `CreateAuthorizedTransaction`, applied by `frame_executive`.
fn send_heartbeat(who: Keyring) -> sp_runtime::ApplyExtrinsicResult {
	use frame_system::offchain::CreateAuthorizedTransaction;
	let validators = Session::validators();
	let heartbeat = pallet_im_online::Heartbeat {
		block_number: frame_system::Pallet::<Runtime>::block_number(),
		session_index: Session::current_index(),
		authority_index: validators.iter().position(|v| *v == account(who)).unwrap() as u32,
		validators_len: validators.len() as u32,
	};
	let signature = who.pair().sign(&heartbeat.encode()).into();
	let call = RuntimeCall::ImOnline(pallet_im_online::Call::heartbeat { heartbeat, signature });
	agora_runtime::Executive::apply_extrinsic(<Runtime as CreateAuthorizedTransaction<
		RuntimeCall,
	>>::create_authorized_transaction(call))
}

#[test]
fn heartbeats_keep_a_validator_that_authors_nothing_in_the_set() {
	ext().execute_with(|| {
		let mut chain = four_validators();
		let dave = account(Keyring::Dave);
		// Dave's node authors nothing (say, it lost its BABE slots), but its offchain worker
		// sends a heartbeat every session.
		chain.offline.push(Keyring::Dave);
		let mut sent = std::collections::BTreeSet::new();
		// Four one-minute sessions.
		for _ in 0..40 {
			// Halfway through the session, as the offchain worker does (a session's first block
			// is full: pallet-session claims all of it for the rotation).
			let halfway = frame_system::Pallet::<Runtime>::block_number() % 10 == 5;
			if halfway && sent.insert(Session::current_index()) {
				assert_eq!(send_heartbeat(Keyring::Dave), Ok(Ok(())));
				// A second one in the same session is refused by the pool's validation.
				assert!(send_heartbeat(Keyring::Dave).is_err());
			}
			chain.next_block();
		}
		assert!(sent.len() >= 4);
		assert!(chain.events.iter().any(|e| matches!(
			e,
			RuntimeEvent::ImOnline(pallet_im_online::Event::HeartbeatReceived { .. })
		)));
		// Online all along: never reported, never chilled.
		assert!(pallet_staking::Validators::<Runtime>::contains_key(&dave));
		assert!(!chain.events.iter().any(|e| matches!(
			e,
			RuntimeEvent::ImOnline(pallet_im_online::Event::SomeOffline { .. })
		)));
		chain.close_block();
	});
}
