//! Unit tests of pallet-contributions.

use crate::{
	mock::*, Error, Event, HoldReason, Params, ParticipantStatus, ProtocolParams, UnseatReason,
	ValidatorSeats, Validators, Workers,
};
use agora_primitives::{Capability, DeviceKind, ParticipantRegistry, Role, H256};
use frame_support::{
	assert_noop, assert_ok,
	traits::{
		fungible::{Inspect, InspectHold, MutateHold},
		tokens::Precision,
	},
};
use sp_runtime::{DispatchError, Perbill};

fn cap(tp: u32) -> Capability {
	Capability { device: DeviceKind::Cuda, memory_mib: 8192, throughput: tp }
}

fn peer() -> agora_primitives::PeerId {
	b"12D3KooWpeer".to_vec().try_into().unwrap()
}

fn addr() -> agora_primitives::Multiaddr {
	b"/ip4/127.0.0.1/tcp/4001".to_vec().try_into().unwrap()
}

fn reg_worker(who: AccountId, stake: Balance) {
	assert_ok!(Contributions::register_worker(
		RuntimeOrigin::signed(who),
		stake,
		peer(),
		addr(),
		cap(10)
	));
}

fn reg_validator(who: AccountId, stake: Balance) {
	assert_ok!(Contributions::register_validator(
		RuntimeOrigin::signed(who),
		stake,
		peer(),
		addr(),
		cap(10)
	));
}

fn held(reason: HoldReason, who: AccountId) -> Balance {
	Balances::balance_on_hold(&reason.into(), &who)
}

#[test]
fn register_worker_holds_stake() {
	test(|| {
		reg_worker(1, 500);
		assert_eq!(held(HoldReason::WorkerStake, 1), 500);
		let w = Workers::<Test>::get(1).unwrap();
		assert_eq!(w.stake, 500);
		assert_eq!(w.status, ParticipantStatus::Active);
		assert_eq!(events(), vec![Event::Registered { who: 1, role: Role::Worker, stake: 500 }]);
		assert_eq!(Contributions::eligible_worker(&1), Some((500, 10)));
		assert_eq!(Contributions::eligible_worker(&2), None);
	});
}

#[test]
fn register_failures() {
	test(|| {
		assert_noop!(
			Contributions::register_worker(RuntimeOrigin::signed(1), 99, peer(), addr(), cap(1)),
			Error::<Test>::InsufficientStake
		);
		assert_noop!(
			Contributions::register_worker(RuntimeOrigin::signed(1), 500, peer(), addr(), cap(0)),
			Error::<Test>::InvalidCapability
		);
		assert_noop!(
			Contributions::register_worker(
				RuntimeOrigin::signed(1),
				500,
				Default::default(),
				addr(),
				cap(1)
			),
			Error::<Test>::InvalidEndpoint
		);
		assert_noop!(
			Contributions::register_worker(
				RuntimeOrigin::signed(1),
				200_000,
				peer(),
				addr(),
				cap(1)
			),
			Error::<Test>::InsufficientBalance
		);
		assert_noop!(
			Contributions::register_worker(RuntimeOrigin::none(), 500, peer(), addr(), cap(1)),
			DispatchError::BadOrigin
		);
		reg_worker(1, 500);
		assert_noop!(
			Contributions::register_worker(RuntimeOrigin::signed(1), 500, peer(), addr(), cap(1)),
			Error::<Test>::AlreadyRegistered
		);
		// The same account may also be a validator, with a separate stake.
		reg_validator(1, 1_000);
		assert_eq!(held(HoldReason::ValidatorStake, 1), 1_000);
	});
}

fn seats() -> Vec<(AccountId, Balance)> {
	ValidatorSeats::<Test>::get().into_inner()
}

#[test]
fn validator_set_is_bounded() {
	test(|| {
		for v in 1..=4 {
			reg_validator(v, 1_000);
		}
		// An equal stake does not take a seat: the first to come keeps it on a tie.
		assert_noop!(
			Contributions::register_validator(
				RuntimeOrigin::signed(5),
				1_000,
				peer(),
				addr(),
				cap(1)
			),
			Error::<Test>::TooManyValidators
		);
		assert_eq!(Contributions::eligible_validators().len(), 4);
	});
}

#[test]
fn validator_set_cannot_be_captured_by_coming_first() {
	test(|| {
		for v in 1..=4 {
			reg_validator(v, 1_000);
		}
		// A higher stake takes the lowest seat; of equal lowest, the latest seated leaves.
		reg_validator(5, 1_500);
		assert_eq!(seats(), vec![(1, 1_000), (2, 1_000), (3, 1_000), (5, 1_500)]);
		assert!(events().contains(&Event::ValidatorSeated { who: 5, stake: 1_500 }));
		assert!(events().contains(&Event::ValidatorUnseated {
			who: 4,
			reason: UnseatReason::Outbid { by: 5 }
		}));
		// The unseated validator loses nothing: registered, stake on hold, but not drawn.
		assert_eq!(held(HoldReason::ValidatorStake, 4), 1_000);
		assert_eq!(Validators::<Test>::get(4).unwrap().status, ParticipantStatus::Active);
		assert_eq!(Contributions::eligible_validator(&4), None);
		assert!(!Contributions::eligible_validators().iter().any(|(v, _)| *v == 4));
		// It wins a seat back by bonding more than the lowest seat holds.
		assert_ok!(Contributions::bond_extra(RuntimeOrigin::signed(4), Role::Validator, 1_000));
		// The seats stay in seating order: the newest last.
		assert_eq!(seats(), vec![(1, 1_000), (2, 1_000), (5, 1_500), (4, 2_000)]);
		assert!(events().contains(&Event::ValidatorUnseated {
			who: 3,
			reason: UnseatReason::Outbid { by: 4 }
		}));
		assert_eq!(Contributions::eligible_validator(&4), Some(2_000));
		// A seated validator's extra bond is recorded beside its seat.
		assert_ok!(Contributions::bond_extra(RuntimeOrigin::signed(1), Role::Validator, 10));
		assert_eq!(seats()[0], (1, 1_010));
		// Any stake above the lowest seat outbids it.
		assert_ok!(Contributions::bond_extra(RuntimeOrigin::signed(3), Role::Validator, 1));
		assert_eq!(seats(), vec![(1, 1_010), (5, 1_500), (4, 2_000), (3, 1_001)]);
		// Bonding too little to outbid anyone is no error: the stake is bonded, unseated.
		assert_ok!(Contributions::bond_extra(RuntimeOrigin::signed(2), Role::Validator, 1));
		assert_eq!(Validators::<Test>::get(2).unwrap().stake, 1_001);
		assert!(!seats().iter().any(|(v, _)| *v == 2));
		// An unseated validator can still leave with its whole stake.
		assert_ok!(Contributions::unbond(RuntimeOrigin::signed(2), Role::Validator));
		run_to(1 + DELAY);
		assert_ok!(Contributions::withdraw_unbonded(RuntimeOrigin::signed(2), Role::Validator));
		assert_eq!(Balances::balance(&2), 100_000);
	});
}

#[test]
fn a_validator_slashed_below_the_minimum_loses_its_seat() {
	test(|| {
		for v in 1..=4 {
			reg_validator(v, 1_000);
		}
		// Above the minimum a slash keeps the seat, at the new stake.
		reg_validator(5, 2_000);
		assert_eq!(Contributions::slash(&5, Role::Validator, Perbill::from_percent(10)), 200);
		assert!(seats().contains(&(5, 1_800)));
		// Below it, the seat is freed for a validator that can take duties.
		assert_eq!(Contributions::slash(&1, Role::Validator, Perbill::from_percent(2)), 20);
		assert!(!seats().iter().any(|(v, _)| *v == 1));
		assert!(events()
			.contains(&Event::ValidatorUnseated { who: 1, reason: UnseatReason::BelowMinimum }));
		assert_eq!(Contributions::eligible_validator(&1), None);
		// Topping the stake back up takes the free seat again (what a daemon does).
		assert_ok!(Contributions::bond_extra(RuntimeOrigin::signed(1), Role::Validator, 20));
		assert!(seats().contains(&(1, 1_000)));
		assert!(events().contains(&Event::ValidatorSeated { who: 1, stake: 1_000 }));
		// A top-up that stays below the minimum does not seat.
		assert_eq!(Contributions::slash(&2, Role::Validator, Perbill::from_percent(50)), 500);
		assert_ok!(Contributions::bond_extra(RuntimeOrigin::signed(2), Role::Validator, 1));
		assert!(!seats().iter().any(|(v, _)| *v == 2));
	});
}

#[test]
fn an_unseated_validator_claims_a_seat_back_without_bonding_more() {
	test(|| {
		for v in 1..=3 {
			reg_validator(v, 2_000);
		}
		reg_validator(4, 1_000);
		reg_validator(5, 1_500);
		assert_eq!(seats(), vec![(1, 2_000), (2, 2_000), (3, 2_000), (5, 1_500)]);
		// No seat is free and its stake outbids nobody: it waits, its stake on hold.
		assert_noop!(
			Contributions::claim_seat(RuntimeOrigin::signed(4)),
			Error::<Test>::TooManyValidators
		);
		// Slashes lower seated stakes; an unseated stake above the new lowest takes its seat.
		assert_eq!(Contributions::slash(&1, Role::Validator, Perbill::from_percent(40)), 800);
		reg_validator(6, 1_600);
		assert!(!seats().iter().any(|(v, _)| *v == 1));
		assert_eq!(Contributions::slash(&5, Role::Validator, Perbill::from_percent(30)), 450);
		assert_ok!(Contributions::claim_seat(RuntimeOrigin::signed(1)));
		assert_eq!(seats(), vec![(2, 2_000), (3, 2_000), (6, 1_600), (1, 1_200)]);
		assert!(events().contains(&Event::ValidatorUnseated {
			who: 5,
			reason: UnseatReason::Outbid { by: 1 }
		}));
		assert_noop!(
			Contributions::claim_seat(RuntimeOrigin::signed(1)),
			Error::<Test>::AlreadySeated
		);
		// A validator leaves: the outbid one takes its seat back, with the stake it has.
		assert_ok!(Contributions::unbond(RuntimeOrigin::signed(2), Role::Validator));
		assert_ok!(Contributions::claim_seat(RuntimeOrigin::signed(4)));
		assert!(events().contains(&Event::ValidatorSeated { who: 4, stake: 1_000 }));
		assert_eq!(Contributions::eligible_validator(&4), Some(1_000));
		// A seat freed by a slash below the minimum is claimed the same way; the slashed
		// validator cannot claim one until it tops its stake back up.
		assert_eq!(Contributions::slash(&4, Role::Validator, Perbill::from_percent(2)), 20);
		assert_noop!(
			Contributions::claim_seat(RuntimeOrigin::signed(4)),
			Error::<Test>::InsufficientStake
		);
		assert_ok!(Contributions::claim_seat(RuntimeOrigin::signed(5)));
		assert_eq!(seats(), vec![(3, 2_000), (6, 1_600), (1, 1_200), (5, 1_050)]);
		// Only an active, registered validator claims.
		assert_noop!(Contributions::claim_seat(RuntimeOrigin::signed(2)), Error::<Test>::NotActive);
		assert_noop!(
			Contributions::claim_seat(RuntimeOrigin::signed(9)),
			Error::<Test>::NotRegistered
		);
	});
}

#[test]
fn migration_v0_to_v1_keeps_every_seat_with_its_stake() {
	use crate::migrations::v1::{ActiveValidators, MigrateV0ToV1};
	use frame_support::traits::{GetStorageVersion, OnRuntimeUpgrade, StorageVersion};
	test(|| {
		reg_validator(1, 1_000);
		reg_validator(2, 3_000);
		reg_validator(3, 1_000);
		// Version 0 kept a validator slashed below the minimum in the set.
		Validators::<Test>::mutate(3, |p| p.as_mut().unwrap().stake = 900);
		Balances::release(&HoldReason::ValidatorStake.into(), &3, 100, Precision::Exact).unwrap();
		ValidatorSeats::<Test>::kill();
		ActiveValidators::<Test>::put(frame_support::BoundedVec::truncate_from(vec![1, 2, 3]));
		StorageVersion::new(0).put::<Contributions>();
		MigrateV0ToV1::<Test>::on_runtime_upgrade();
		assert_eq!(seats(), vec![(1, 1_000), (2, 3_000)]);
		assert!(!ActiveValidators::<Test>::exists());
		assert_eq!(Contributions::on_chain_storage_version(), StorageVersion::new(1));
		// Guarded by the version: a second run changes nothing.
		ValidatorSeats::<Test>::kill();
		MigrateV0ToV1::<Test>::on_runtime_upgrade();
		assert!(seats().is_empty());
	});
}

#[test]
fn bond_extra_and_update_endpoint() {
	test(|| {
		assert_noop!(
			Contributions::bond_extra(RuntimeOrigin::signed(1), Role::Worker, 5),
			Error::<Test>::NotRegistered
		);
		reg_worker(1, 100);
		assert_noop!(
			Contributions::bond_extra(RuntimeOrigin::signed(1), Role::Worker, 0),
			Error::<Test>::ZeroAmount
		);
		assert_ok!(Contributions::bond_extra(RuntimeOrigin::signed(1), Role::Worker, 50));
		assert_eq!(held(HoldReason::WorkerStake, 1), 150);
		assert_ok!(Contributions::update_endpoint(
			RuntimeOrigin::signed(1),
			Role::Worker,
			peer(),
			addr(),
			cap(99)
		));
		assert_eq!(Workers::<Test>::get(1).unwrap().capability.throughput, 99);
		assert_noop!(
			Contributions::update_endpoint(
				RuntimeOrigin::signed(1),
				Role::Worker,
				peer(),
				addr(),
				cap(0)
			),
			Error::<Test>::InvalidCapability
		);
		assert_noop!(
			Contributions::update_endpoint(
				RuntimeOrigin::signed(2),
				Role::Worker,
				peer(),
				addr(),
				cap(1)
			),
			Error::<Test>::NotRegistered
		);
		assert!(events().contains(&Event::Bonded { who: 1, role: Role::Worker, amount: 50 }));
		assert!(events().contains(&Event::EndpointUpdated { who: 1, role: Role::Worker }));
	});
}

#[test]
fn unbonding_cannot_escape_a_pending_verdict() {
	test(|| {
		reg_validator(2, 1_000);
		assert_ok!(Contributions::unbond(RuntimeOrigin::signed(2), Role::Validator));
		// Assigned to a verification that outlasts the unbonding delay.
		PENDING.with(|p| p.borrow_mut().push((2, Role::Validator)));
		run_to(1 + DELAY);
		assert_noop!(
			Contributions::withdraw_unbonded(RuntimeOrigin::signed(2), Role::Validator),
			Error::<Test>::WorkPending
		);
		// The verdict lands: the stake is still there to slash.
		assert_eq!(Contributions::slash(&2, Role::Validator, Perbill::from_percent(10)), 100);
		PENDING.with(|p| p.borrow_mut().clear());
		assert_ok!(Contributions::withdraw_unbonded(RuntimeOrigin::signed(2), Role::Validator));
		assert_eq!(Balances::balance(&2), 100_000 - 100);
	});
}

#[test]
fn unbond_and_withdraw() {
	test(|| {
		reg_validator(2, 1_000);
		assert_noop!(
			Contributions::withdraw_unbonded(RuntimeOrigin::signed(2), Role::Validator),
			Error::<Test>::NotUnbonding
		);
		assert_ok!(Contributions::unbond(RuntimeOrigin::signed(2), Role::Validator));
		assert_eq!(Contributions::eligible_validator(&2), None);
		assert!(Contributions::eligible_validators().is_empty());
		assert_noop!(
			Contributions::unbond(RuntimeOrigin::signed(2), Role::Validator),
			Error::<Test>::AlreadyUnbonding
		);
		assert_noop!(
			Contributions::bond_extra(RuntimeOrigin::signed(2), Role::Validator, 1),
			Error::<Test>::NotActive
		);
		assert_noop!(
			Contributions::withdraw_unbonded(RuntimeOrigin::signed(2), Role::Validator),
			Error::<Test>::StillUnbonding
		);
		// Still slashable while unbonding.
		assert_eq!(Contributions::slash(&2, Role::Validator, Perbill::from_percent(10)), 100);
		run_to(1 + DELAY);
		assert_ok!(Contributions::withdraw_unbonded(RuntimeOrigin::signed(2), Role::Validator));
		assert_eq!(held(HoldReason::ValidatorStake, 2), 0);
		assert_eq!(Balances::balance(&2), 100_000 - 100);
		assert!(events().contains(&Event::Withdrawn {
			who: 2,
			role: Role::Validator,
			amount: 900
		}));
		assert_noop!(
			Contributions::unbond(RuntimeOrigin::signed(2), Role::Validator),
			Error::<Test>::NotRegistered
		);
	});
}

#[test]
fn slash_goes_to_pool_and_preserves_issuance() {
	test(|| {
		reg_worker(3, 1_000);
		let issuance = Balances::total_issuance();
		assert_eq!(Contributions::slash(&3, Role::Worker, Perbill::from_percent(25)), 250);
		assert_eq!(held(HoldReason::WorkerStake, 3), 750);
		assert_eq!(Workers::<Test>::get(3).unwrap().stake, 750);
		assert_eq!(Balances::balance(&POOL), 251);
		assert_eq!(Balances::total_issuance(), issuance);
		assert!(events().contains(&Event::Slashed { who: 3, role: Role::Worker, amount: 250 }));
		// Below the minimum after a slash: not eligible any more.
		assert_eq!(Contributions::slash(&3, Role::Worker, Perbill::from_percent(90)), 675);
		assert_eq!(Contributions::eligible_worker(&3), None);
		// Unknown participants: nothing happens.
		assert_eq!(Contributions::slash(&9, Role::Worker, Perbill::one()), 0);
	});
}

#[test]
fn shards() {
	test(|| {
		let h = H256::repeat_byte(7);
		assert_noop!(
			Contributions::register_shard(RuntimeOrigin::signed(4), h, 0),
			Error::<Test>::ZeroAmount
		);
		assert_ok!(Contributions::register_shard(RuntimeOrigin::signed(4), h, 1_000));
		assert_eq!(held(HoldReason::ShardDeposit, 4), SHARD_DEPOSIT);
		assert_eq!(Contributions::shard_provider(&h), Some(4));
		assert_noop!(
			Contributions::register_shard(RuntimeOrigin::signed(5), h, 1),
			Error::<Test>::ShardExists
		);
		assert_noop!(
			Contributions::deregister_shard(RuntimeOrigin::signed(5), h),
			Error::<Test>::NotShardProvider
		);
		assert_noop!(
			Contributions::deregister_shard(RuntimeOrigin::signed(4), H256::zero()),
			Error::<Test>::UnknownShard
		);
		assert_ok!(Contributions::deregister_shard(RuntimeOrigin::signed(4), h));
		assert_eq!(held(HoldReason::ShardDeposit, 4), 0);
		assert_eq!(
			events(),
			vec![
				Event::ShardRegistered { shard: h, provider: 4, samples: 1_000 },
				Event::ShardDeregistered { shard: h, provider: 4 }
			]
		);
	});
}

#[test]
fn params_are_governed_and_bounded() {
	test(|| {
		let p = Params {
			min_worker_stake: 5,
			min_validator_stake: 6,
			shard_deposit: 0,
			unbonding_delay: 100,
		};
		assert_noop!(
			Contributions::set_params(RuntimeOrigin::signed(1), p),
			DispatchError::BadOrigin
		);
		assert_noop!(
			Contributions::set_params(RuntimeOrigin::root(), Params { unbonding_delay: 1, ..p }),
			Error::<Test>::DelayOutOfRange
		);
		assert_noop!(
			Contributions::set_params(
				RuntimeOrigin::root(),
				Params { unbonding_delay: 10_000_000, ..p }
			),
			Error::<Test>::DelayOutOfRange
		);
		assert_noop!(
			Contributions::set_params(RuntimeOrigin::root(), Params { min_worker_stake: 0, ..p }),
			Error::<Test>::StakeBoundOutOfRange
		);
		assert_ok!(Contributions::set_params(RuntimeOrigin::root(), p));
		assert_eq!(ProtocolParams::<Test>::get(), p);
		assert_eq!(events(), vec![Event::ParamsUpdated { params: p }]);
		// Takes effect: a stake of 5 is now enough.
		reg_worker(1, 5);
	});
}
