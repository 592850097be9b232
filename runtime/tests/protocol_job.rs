//! One training job driven through the real `agora_runtime::Runtime`: two rounds, three workers,
//! three validators, one cheating worker (slashed for a failed replay) and one validator that
//! commits but never reveals (slashed for each unrevealed verdict). At the end every account's
//! balance is reconciled and total issuance has changed by exactly the emission.
//!
//! This is the runtime-level counterpart of `pallets/protocol-tests/tests/two_rounds.rs`: the
//! same scenario, but with the runtime's own genesis preset, configs, parameters, hold reasons
//! and origins, and blocks built by `frame_executive` with real BABE pre-digests, so that the
//! protocol's challenge randomness is the VRF output of the parent block, as on the chain.
//! Nothing in it depends on which validators or aggregator happen to be drawn: it reads the
//! draws from storage.

mod blocks;
mod common;

use agora_primitives::{
	Capability, Dataset, DeviceKind, JobSpec, PhasePeriods, Role, Update, Verdict,
	VerificationMode, H256,
};
use agora_runtime::{
	currency::AGR, genesis_config_presets, AccountId, Balance, Balances, BlockNumber, Runtime,
	RuntimeCall, RuntimeEvent, RuntimeHoldReason, RuntimeOrigin, Tasks,
};
use blocks::{all_balances, validator_hold, worker_hold, Chain};
use frame_support::traits::fungible::{Inspect, InspectHold};
use pallet_validation::{SlashReason, Stage};
use sp_keyring::Sr25519Keyring as Keyring;
use sp_runtime::{traits::Dispatchable, Perbill};
use std::collections::{BTreeMap, BTreeSet};

/// Pays the budget. Alice is also the development preset's only BABE authority, which is
/// irrelevant here: nothing pays block authors.
const SUBMITTER: Keyring = Keyring::Alice;
const WORKERS: [Keyring; 3] = [Keyring::Bob, Keyring::Charlie, Keyring::Dave];
/// Submits an update that every validator finds invalid in round 1; honest in round 2.
const CHEATER: Keyring = Keyring::Dave;
const VALIDATORS: [Keyring; 3] = [Keyring::Eve, Keyring::Ferdie, Keyring::BobStash];
/// Commits its verdicts but never reveals them, and never votes on aggregates.
const SILENT: Keyring = Keyring::Ferdie;
const PROVIDER: Keyring = Keyring::CharlieStash;

const WORKER_STAKE: Balance = 1_000 * AGR;
/// The validators' stakes differ so that consensus is stake-weighted.
const VALIDATOR_STAKES: [Balance; 3] = [3_000 * AGR, 2_000 * AGR, 1_000 * AGR];
const BUDGET: Balance = 1_000 * AGR;
const ROUNDS: u32 = 2;
/// Every phase's period, in blocks (the runtime's `min_period` is 2).
const PERIOD: BlockNumber = 3;

fn account(k: Keyring) -> AccountId {
	k.to_account_id()
}

fn signed(who: Keyring, call: RuntimeCall) {
	if let Err(e) = call.clone().dispatch(RuntimeOrigin::signed(account(who))) {
		panic!("{who:?} could not dispatch {call:?}: {e:?}");
	}
}

/// The runtime's `development` preset: it endows the twelve well-known accounts with
/// `ENDOWMENT` and makes Alice the only BABE and GRANDPA authority.
fn development_genesis() -> sp_io::TestExternalities {
	common::genesis(sp_genesis_builder::DEV_RUNTIME_PRESET)
}

fn cap(throughput: u32) -> Capability {
	Capability { device: DeviceKind::Cuda, memory_mib: 8_192, throughput }
}

fn endpoint(who: Keyring, index: usize) -> (agora_primitives::PeerId, agora_primitives::Multiaddr) {
	(
		format!("12D3KooW{who}").into_bytes().try_into().unwrap(),
		format!("/ip4/10.0.0.{}/tcp/30333", index + 1).into_bytes().try_into().unwrap(),
	)
}

fn stage(job: u64) -> Option<Stage> {
	pallet_validation::Verifications::<Runtime>::get(job).map(|v| v.stage)
}

fn salt(validator: Keyring, worker: Keyring, round: u32) -> [u8; 32] {
	let mut s = [0u8; 32];
	s[0] = validator as u8;
	s[1] = worker as u8;
	s[2] = round as u8;
	s
}

/// What `validator` honestly says about `worker`'s update in `round`: only the cheater's
/// round-1 update fails its replay.
fn judgement(validator: Keyring, worker: Keyring, round: u32) -> (Verdict, Perbill) {
	if round == 1 && worker == CHEATER {
		(Verdict::Invalid, Perbill::zero())
	} else if validator == VALIDATORS[0] {
		(Verdict::Valid, Perbill::from_percent(75))
	} else {
		(Verdict::Valid, Perbill::from_percent(80))
	}
}

fn keyring_of(who: &AccountId) -> Keyring {
	Keyring::from_account_id(who).expect("a well-known account")
}

/// Who did what in a round, as drawn by the runtime.
struct RoundRecord {
	/// How many update checks the silent validator was assigned (and so is slashed for).
	silent_assignments: u32,
	/// The validators that revealed at least one verdict.
	revealers: BTreeSet<Keyring>,
	model: H256,
}

fn play_round(chain: &mut Chain, job: u64, round: u32) -> RoundRecord {
	for w in WORKERS {
		signed(w, RuntimeCall::Tasks(pallet_tasks::Call::apply_for_round { job }));
	}
	chain.until("training", || {
		pallet_tasks::Jobs::<Runtime>::get(job).unwrap().phase == pallet_tasks::Phase::Training
	});
	let selected: BTreeSet<Keyring> = pallet_tasks::RoundWorkers::<Runtime>::get(job)
		.iter()
		.map(|s| keyring_of(&s.who))
		.collect();
	assert_eq!(selected, WORKERS.into_iter().collect(), "all three applicants train");
	for (i, w) in WORKERS.into_iter().enumerate() {
		let update = Update {
			delta: H256::repeat_byte(i as u8 + 16 * round as u8),
			samples: 1_000,
			loss_micros: 300_000,
			checkpoint_root: H256::repeat_byte(i as u8),
			checkpoints: 10,
		};
		signed(w, RuntimeCall::Tasks(pallet_tasks::Call::submit_update { job, round, update }));
	}

	chain.until("commit stage", || stage(job) == Some(Stage::Commit));
	// The draws, read back from storage: who checks which update.
	let assignments: Vec<(Keyring, Keyring)> = WORKERS
		.into_iter()
		.flat_map(|w| {
			let check = pallet_validation::Checks::<Runtime>::get(job, account(w))
				.expect("every update is checked");
			assert_eq!(check.assignments.len(), 2, "validators_per_update");
			check.assignments.iter().map(|a| (keyring_of(&a.validator), w)).collect::<Vec<_>>()
		})
		.collect();
	// Every assigned validator commits, the silent one too.
	for (v, w) in assignments.iter().copied() {
		let (verdict, score) = judgement(v, w, round);
		let commitment = pallet_validation::commitment_of(
			job,
			&account(w),
			verdict,
			score,
			&salt(v, w, round),
			&account(v),
		);
		signed(
			v,
			RuntimeCall::Validation(pallet_validation::Call::commit_verdict {
				job,
				worker: account(w),
				commitment,
			}),
		);
	}

	chain.until("reveal stage", || stage(job) == Some(Stage::Reveal));
	let mut revealers = BTreeSet::new();
	for (v, w) in assignments.iter().copied().filter(|(v, _)| *v != SILENT) {
		let (verdict, score) = judgement(v, w, round);
		signed(
			v,
			RuntimeCall::Validation(pallet_validation::Call::reveal_verdict {
				job,
				worker: account(w),
				verdict,
				score,
				salt: salt(v, w, round),
			}),
		);
		revealers.insert(v);
	}

	chain.until("aggregation", || stage(job) == Some(Stage::Aggregation));
	let verification = pallet_validation::Verifications::<Runtime>::get(job).unwrap();
	let accepted: BTreeSet<Keyring> =
		verification.accepted.iter().map(|(w, _)| keyring_of(w)).collect();
	let expected: BTreeSet<Keyring> =
		WORKERS.into_iter().filter(|w| round > 1 || *w != CHEATER).collect();
	assert_eq!(accepted, expected, "accepted updates in round {round}");
	let aggregator = keyring_of(&verification.aggregator.expect("an aggregator is drawn"));
	assert!(accepted.contains(&aggregator));
	let model = H256::repeat_byte(0xa0 + round as u8);
	let aggregate_salt = |_: Keyring| [0xa0 ^ round as u8; 32];
	let commitment = |who: Keyring| {
		pallet_validation::aggregate_commitment_of(
			job,
			round,
			&model,
			&aggregate_salt(who),
			&account(who),
		)
	};
	signed(
		aggregator,
		RuntimeCall::Validation(pallet_validation::Call::post_aggregate {
			job,
			round,
			commitment: commitment(aggregator),
		}),
	);
	let voters: Vec<Keyring> = pallet_validation::RoundValidators::<Runtime>::get(job)
		.iter()
		.map(|r| keyring_of(&r.who))
		.filter(|v| *v != SILENT && *v != aggregator)
		.collect();
	for v in voters.iter().copied() {
		signed(
			v,
			RuntimeCall::Validation(pallet_validation::Call::vote_aggregate {
				job,
				round,
				commitment: commitment(v),
			}),
		);
	}
	chain.until("aggregate reveal", || stage(job) == Some(Stage::AggregateReveal));
	for who in voters.iter().copied().chain([aggregator]) {
		signed(
			who,
			RuntimeCall::Validation(pallet_validation::Call::reveal_aggregate {
				job,
				round,
				aggregate: model,
				salt: aggregate_salt(who),
			}),
		);
	}

	chain.until("round end", || pallet_validation::Verifications::<Runtime>::get(job).is_none());
	assert_eq!(pallet_tasks::RoundModels::<Runtime>::get(job, round).unwrap().model, model);
	let silent_assignments = assignments.iter().filter(|(v, _)| *v == SILENT).count() as u32;
	RoundRecord { silent_assignments, revealers, model }
}

#[test]
fn one_job_two_rounds_with_a_cheater_and_a_silent_validator() {
	development_genesis().execute_with(|| {
		let genesis_balances = all_balances();
		for k in Keyring::well_known() {
			assert_eq!(genesis_balances[&account(k)], genesis_config_presets::ENDOWMENT);
		}
		let pool = pallet_rewards::Pallet::<Runtime>::pool_account();
		let ed = Balances::minimum_balance();
		assert_eq!(genesis_balances[&pool], ed, "the pool starts with its existential deposit");
		let mut chain = Chain::start();

		for (i, w) in WORKERS.into_iter().enumerate() {
			let (peer_id, multiaddr) = endpoint(w, i);
			signed(
				w,
				RuntimeCall::Contributions(pallet_contributions::Call::register_worker {
					stake: WORKER_STAKE,
					peer_id,
					multiaddr,
					capability: cap(10 * (i as u32 + 1)),
				}),
			);
		}
		for (i, v) in VALIDATORS.into_iter().enumerate() {
			let (peer_id, multiaddr) = endpoint(v, i + WORKERS.len());
			signed(
				v,
				RuntimeCall::Contributions(pallet_contributions::Call::register_validator {
					stake: VALIDATOR_STAKES[i],
					peer_id,
					multiaddr,
					capability: cap(50),
				}),
			);
		}
		let shard = H256::repeat_byte(0x5d);
		signed(
			PROVIDER,
			RuntimeCall::Contributions(pallet_contributions::Call::register_shard {
				shard,
				samples: 60_000,
			}),
		);
		let shard_deposit = pallet_contributions::ProtocolParams::<Runtime>::get().shard_deposit;

		let spec = JobSpec {
			architecture: b"mlp-mnist-v1".to_vec().try_into().unwrap(),
			hyperparameters: br#"{"lr":0.05,"batch":32}"#.to_vec().try_into().unwrap(),
			initial_weights: H256::repeat_byte(0x01),
			dataset: Dataset::Shards(vec![shard].try_into().unwrap()),
			rounds: ROUNDS,
			local_steps: 100,
			checkpoint_interval: 10,
			samples_per_round: 3_000,
			workers_per_round: 3,
			validators_per_update: 2,
			mode: VerificationMode::Replay,
			periods: PhasePeriods {
				open: PERIOD,
				training: PERIOD,
				commit: PERIOD,
				reveal: PERIOD,
				aggregation: PERIOD,
			},
		};
		let job = pallet_tasks::NextJobId::<Runtime>::get();
		signed(
			SUBMITTER,
			RuntimeCall::Tasks(pallet_tasks::Call::create_job { spec, budget: BUDGET }),
		);

		let validation = pallet_validation::ProtocolParams::<Runtime>::get();
		let round1 = play_round(&mut chain, job, 1);
		// The cheater lost `fraud_slash` of its stake and earned nothing in round 1; the honest
		// workers did.
		let fraud = validation.fraud_slash.mul_floor(WORKER_STAKE);
		assert_eq!(
			pallet_contributions::Workers::<Runtime>::get(account(CHEATER)).unwrap().stake,
			WORKER_STAKE - fraud
		);
		assert_eq!(pallet_rewards::Pending::<Runtime>::get(account(CHEATER)), 0);
		for w in WORKERS.into_iter().filter(|w| *w != CHEATER) {
			assert!(pallet_rewards::Pending::<Runtime>::get(account(w)) > 0, "{w} earned");
		}
		assert_eq!(pallet_rewards::Pending::<Runtime>::get(account(SILENT)), 0);
		let round2 = play_round(&mut chain, job, 2);
		assert_ne!(round1.model, round2.model);

		let j = pallet_tasks::Jobs::<Runtime>::get(job).unwrap();
		assert_eq!(j.status, pallet_tasks::JobStatus::Finalized);
		assert_eq!(
			(j.latest_model, j.completed_rounds, j.escrow, j.spent),
			(round2.model, ROUNDS, 0, BUDGET)
		);
		assert_eq!(
			Tasks::job_details(job).unwrap().models,
			vec![(1, round1.model), (2, round2.model)]
		);
		// Emission stops with the last active job.
		let emitted = pallet_rewards::TotalEmitted::<Runtime>::get();
		chain.next_block();
		assert_eq!(pallet_rewards::TotalEmitted::<Runtime>::get(), emitted);

		// Everyone owed something is paid: participants claim, the treasury (which signs
		// nothing) is paid out by anyone.
		let treasury = <Runtime as pallet_rewards::Config>::Treasury::get();
		let owed: BTreeMap<AccountId, Balance> =
			pallet_rewards::Pending::<Runtime>::iter().collect();
		for who in owed.keys() {
			if *who == treasury {
				signed(
					SUBMITTER,
					RuntimeCall::Rewards(pallet_rewards::Call::payout { who: treasury.clone() }),
				);
			} else {
				signed(keyring_of(who), RuntimeCall::Rewards(pallet_rewards::Call::claim {}));
			}
		}
		assert_eq!(pallet_rewards::TotalPending::<Runtime>::get(), 0);
		chain.close_block();

		// Tally the events of the whole run.
		let mut slashed: BTreeMap<AccountId, Balance> = BTreeMap::new();
		let mut claimed: BTreeMap<AccountId, Balance> = BTreeMap::new();
		let mut silent_slashes = Vec::new();
		let mut fraud_slashes = Vec::new();
		let mut emissions = Vec::new();
		for event in chain.events.iter() {
			match event {
				RuntimeEvent::Contributions(pallet_contributions::Event::Slashed {
					who,
					amount,
					role,
				}) => {
					*slashed.entry(who.clone()).or_default() += amount;
					let expected_role =
						if *who == account(SILENT) { Role::Validator } else { Role::Worker };
					assert_eq!(*role, expected_role);
				},
				RuntimeEvent::Validation(pallet_validation::Event::Slashed {
					who,
					reason,
					amount,
					..
				}) => match reason {
					SlashReason::NoReveal => {
						assert_eq!(*who, account(SILENT));
						silent_slashes.push(*amount);
					},
					SlashReason::FailedReplay => {
						assert_eq!(*who, account(CHEATER));
						fraud_slashes.push(*amount);
					},
					other => panic!("unexpected slash of {who}: {other:?}"),
				},
				RuntimeEvent::Tasks(pallet_tasks::Event::NoShowSlashed { worker, .. }) => {
					panic!("{worker} submitted, yet was slashed as a no-show")
				},
				RuntimeEvent::Rewards(pallet_rewards::Event::Claimed { who, amount }) => {
					*claimed.entry(who.clone()).or_default() += amount;
				},
				RuntimeEvent::Rewards(pallet_rewards::Event::Emitted { amount }) => {
					emissions.push(*amount);
				},
				_ => {},
			}
		}

		// Slashes: the cheater once, by `fraud_slash`; the silent validator `no_reveal_slash` of
		// its remaining stake for each verdict it did not reveal.
		assert_eq!(fraud_slashes, vec![fraud]);
		let silent_index = VALIDATORS.iter().position(|v| *v == SILENT).unwrap();
		let mut silent_stake = VALIDATOR_STAKES[silent_index];
		let mut expected_silent_slashes = Vec::new();
		for _ in 0..round1.silent_assignments + round2.silent_assignments {
			let slash = validation.no_reveal_slash.mul_floor(silent_stake);
			expected_silent_slashes.push(slash);
			silent_stake -= slash;
		}
		assert_eq!(silent_slashes, expected_silent_slashes);
		assert_eq!(
			pallet_contributions::Validators::<Runtime>::get(account(SILENT)).unwrap().stake,
			silent_stake
		);
		let get =
			|m: &BTreeMap<AccountId, Balance>, k: Keyring| m.get(&account(k)).copied().unwrap_or(0);
		assert_eq!(get(&slashed, CHEATER), fraud);
		assert_eq!(get(&slashed, SILENT), VALIDATOR_STAKES[silent_index] - silent_stake);
		let mut slashed_accounts: Vec<AccountId> = slashed.keys().cloned().collect();
		slashed_accounts.retain(|a| *a != account(CHEATER) && *a != account(SILENT));
		assert!(slashed_accounts.is_empty(), "nobody else was slashed: {slashed_accounts:?}");

		// Payouts: every claim paid exactly what was owed, and the honest parties were owed.
		let claimed_keys: Vec<&AccountId> = claimed.keys().collect();
		assert_eq!(claimed_keys, owed.keys().collect::<Vec<_>>());
		for (who, amount) in owed.iter() {
			assert_eq!(claimed[who], *amount, "{who} was paid what it was owed");
		}
		for w in WORKERS {
			assert!(get(&claimed, w) > 0, "{w} was paid (the cheater for its honest round 2)");
		}
		for v in VALIDATORS {
			let revealed = round1.revealers.contains(&v) || round2.revealers.contains(&v);
			assert_eq!(get(&claimed, v) > 0, revealed, "{v} is paid iff it revealed");
		}
		assert_eq!(get(&claimed, SILENT), 0);
		assert!(get(&claimed, PROVIDER) > 0);

		let settlements: Vec<_> =
			pallet_rewards::Settlements::<Runtime>::iter_prefix_values(job).collect();
		assert_eq!(settlements.len(), ROUNDS as usize);
		let budgets: Balance = settlements.iter().map(|s| s.budget).sum();
		let fees: Balance = settlements.iter().map(|s| s.fee).sum();
		let credited: Balance =
			settlements.iter().map(|s| s.fee + s.workers + s.validators + s.providers).sum();
		assert_eq!(budgets, BUDGET);
		assert!(settlements
			.iter()
			.all(|s| s.fee + s.workers + s.validators + s.providers <= s.budget + s.emission));
		let claimed_total: Balance = claimed.values().sum();
		assert_eq!(claimed_total, credited, "every credited unit was claimed");
		assert_eq!(claimed.get(&treasury).copied(), Some(fees));

		// Emission: one `emission_per_block` per block with an active job, and nothing else
		// minted.
		let per_block = pallet_rewards::ProtocolParams::<Runtime>::get().emission_per_block;
		assert!(!emissions.is_empty() && emissions.iter().all(|e| *e == per_block));
		assert_eq!(emissions.iter().sum::<Balance>(), emitted);

		// Every account's balance, reconciled with its genesis balance: the participants gained
		// their claims and lost their slashes, the submitter paid the budget, the treasury got
		// the fees, the slashes and the staking remainder, and the pool kept emission and budgets less the claims
		// (what is left above its existential deposit is the rounding dust of the splits). Every
		// other account is untouched.
		let slashed_total: Balance = slashed.values().sum();
		let mut expected = genesis_balances.clone();
		for p in WORKERS.into_iter().chain(VALIDATORS).chain([PROVIDER]) {
			let balance = expected.get_mut(&account(p)).unwrap();
			*balance = *balance + get(&claimed, p) - get(&slashed, p);
		}
		*expected.get_mut(&account(SUBMITTER)).unwrap() -= BUDGET;
		// The treasury also got the staking curve's remainder of each era (no staker claimed its
		// era reward here, so that is all staking minted).
		*expected.entry(treasury.clone()).or_default() +=
			fees + slashed_total + chain.staking_minted;
		*expected.get_mut(&pool).unwrap() += emitted + budgets - claimed_total;
		let actual = all_balances();
		assert_eq!(actual, expected, "every account's balance");
		assert!(
			pallet_rewards::Pallet::<Runtime>::unallocated() < AGR,
			"only rounding dust is left unallocated"
		);

		// What is still held: the remaining stakes and the shard deposit; no escrow.
		for w in WORKERS {
			let stake = pallet_contributions::Workers::<Runtime>::get(account(w)).unwrap().stake;
			assert_eq!(stake, WORKER_STAKE - get(&slashed, w));
			assert_eq!(Balances::balance_on_hold(&worker_hold(), &account(w)), stake);
		}
		for (i, v) in VALIDATORS.into_iter().enumerate() {
			assert_eq!(
				Balances::balance_on_hold(&validator_hold(), &account(v)),
				VALIDATOR_STAKES[i] - get(&slashed, v)
			);
		}
		let shard_hold: RuntimeHoldReason = pallet_contributions::HoldReason::ShardDeposit.into();
		assert_eq!(Balances::balance_on_hold(&shard_hold, &account(PROVIDER)), shard_deposit);
		let escrow_hold: RuntimeHoldReason = pallet_tasks::HoldReason::JobEscrow.into();
		assert_eq!(Balances::balance_on_hold(&escrow_hold, &account(SUBMITTER)), 0);

		// Total issuance changed by exactly the emission.
		assert_eq!(Balances::total_issuance(), chain.issuance0 + emitted + chain.staking_minted);
		assert_eq!(actual.values().sum::<Balance>(), Balances::total_issuance());
	});
}
