//! Unit tests of pallet-rewards.

use crate::{
	mock::*, Error, Event, Params, Pending, ProtocolParams, RewardPool, Settlement, Settlements,
	SlashToPool, TotalPending,
};
use frame_support::{
	assert_noop, assert_ok,
	traits::{
		fungible::{Balanced, Inspect, Mutate},
		tokens::{Fortitude, Precision, Preservation},
		OnUnbalanced,
	},
};
use sp_runtime::{DispatchError, Perbill};

/// Move `amount` from account 1 into the pool, as pallet-tasks does with a round's budget.
fn fund_round(amount: Balance) {
	assert_ok!(<Balances as Mutate<_>>::transfer(&1, &pool(), amount, Preservation::Preserve));
}

#[test]
fn genesis_endows_pool() {
	test(|| {
		assert_eq!(Balances::balance(&pool()), ED);
		assert_eq!(Rewards::unallocated(), 0);
	});
}

#[test]
fn emission_only_while_jobs_are_active() {
	test(|| {
		let issuance = Balances::total_issuance();
		run_to(3);
		assert_eq!(Balances::total_issuance(), issuance);
		ActiveJobs::set(&2);
		run_to(5);
		assert_eq!(Balances::total_issuance(), issuance + 200);
		assert_eq!(Rewards::unallocated(), 200);
		assert_eq!(crate::TotalEmitted::<Test>::get(), 200);
		assert_eq!(events(), vec![Event::Emitted { amount: 100 }, Event::Emitted { amount: 100 }]);
	});
}

#[test]
fn settlement_splits_budget_and_emission() {
	test(|| {
		ActiveJobs::set(&2);
		run_to(3); // 200 unallocated
		fund_round(10_00);
		// The other active jobs still hold 7,000 in escrow: this round's 1,000 takes an eighth.
		let credited = <Rewards as RewardPool<u64, u128>>::settle_round(
			0,
			1,
			1_000,
			7_000,
			&[(1, 3), (2, 1)],
			&[(11, 1), (12, 1)],
			&[21, 22],
		);
		// emission = 200 · 1,000 / 8,000 = 25; total 1,025; fee 5 % = 51; rest 974;
		// validators 15 % = 146 (73 each); providers 10 % = 97 (48 each); workers 731 (548 / 182).
		assert_eq!(Pending::<Test>::get(TREASURY), 51);
		assert_eq!(Pending::<Test>::get(11), 73);
		assert_eq!(Pending::<Test>::get(12), 73);
		assert_eq!(Pending::<Test>::get(21), 48);
		assert_eq!(Pending::<Test>::get(22), 48);
		assert_eq!(Pending::<Test>::get(1), 548);
		assert_eq!(Pending::<Test>::get(2), 182);
		assert_eq!(credited, 51 + 146 + 96 + 730);
		assert_eq!(TotalPending::<Test>::get(), credited);
		let settled = Settlement {
			budget: 1_000,
			emission: 25,
			fee: 51,
			workers: 730,
			validators: 146,
			providers: 96,
		};
		assert_eq!(Settlements::<Test>::get(0, 1), Some(settled));
		assert!(events().contains(&Event::RoundSettled {
			job: 0,
			round: 1,
			budget: 1_000,
			emission: 25,
			fee: 51,
			workers: 730,
			validators: 146,
			providers: 96
		}));
		// Dust and the other jobs' emission share stay unallocated.
		assert_eq!(Rewards::unallocated(), 1_200 - credited);
	});
}

#[test]
fn emission_follows_budget_not_round_count() {
	test(|| {
		let unallocated = 100_000u128;
		let fee = Perbill::from_percent(5);
		// A tiny job with fast rounds beside a large one: each round's emission is its budget's
		// share, so running many small rounds gains nothing over one of the same total.
		let tiny = Rewards::emission_of(unallocated, 10, 999_990, fee);
		let large = Rewards::emission_of(unallocated, 100_000, 900_000, fee);
		assert_eq!((tiny, large), (0, 5_000));
		let many_small: u128 =
			(0..100).map(|_| Rewards::emission_of(unallocated, 1_000, 999_000, fee)).sum();
		assert_eq!(many_small, 100 * 50);
		assert!(many_small <= Rewards::emission_of(unallocated, 100_000, 900_000, fee));
		// Nothing to share, or nothing paid: no emission.
		assert_eq!(Rewards::emission_of(0, 1_000, 0, fee), 0);
		assert_eq!(Rewards::emission_of(unallocated, 0, 1_000, fee), 0);
	});
}

#[test]
fn emission_never_makes_a_self_paid_job_profitable() {
	test(|| {
		// The only active job, with a pool full of emission: its share would be all of it, but
		// the round takes at most its fee on the budget.
		ActiveJobs::set(&1);
		run_to(101); // 10,000 unallocated
		fund_round(1_000);
		let credited = <Rewards as RewardPool<u64, u128>>::settle_round(
			0,
			1,
			1_000,
			0,
			&[(1, 1)],
			&[(2, 1)],
			&[3],
		);
		let settlement = Settlements::<Test>::get(0, 1).unwrap();
		assert_eq!(settlement.emission, 50);
		// A submitter that is also every worker, validator and data provider gets back less
		// than it paid: the fee is lost, and the emission does not make up for it.
		let own = credited - Pending::<Test>::get(TREASURY);
		assert!(own < 1_000, "self-dealing returns {own} for a budget of 1,000");
	});
}

#[test]
fn empty_classes_pass_their_share_to_workers() {
	test(|| {
		fund_round(1_000);
		<Rewards as RewardPool<u64, u128>>::settle_round(0, 1, 1_000, 0, &[(1, 1)], &[], &[]);
		assert_eq!(Pending::<Test>::get(TREASURY), 50);
		assert_eq!(Pending::<Test>::get(1), 950);
	});
}

#[test]
fn claims_and_payouts() {
	test(|| {
		fund_round(1_000);
		<Rewards as RewardPool<u64, u128>>::settle_round(
			0,
			1,
			1_000,
			0,
			&[(1, 1), (77, 0)],
			&[],
			&[],
		);
		assert_noop!(Rewards::claim(RuntimeOrigin::signed(3)), Error::<Test>::NothingToClaim);
		let before = Balances::balance(&1);
		assert_ok!(Rewards::claim(RuntimeOrigin::signed(1)));
		assert_eq!(Balances::balance(&1), before + 950);
		assert_eq!(Pending::<Test>::get(1), 0);
		assert_noop!(Rewards::claim(RuntimeOrigin::signed(1)), Error::<Test>::NothingToClaim);
		// Anyone can pay the treasury its fee.
		assert_ok!(Rewards::payout(RuntimeOrigin::signed(5), TREASURY));
		assert_eq!(Balances::balance(&TREASURY), 50);
		assert!(events().contains(&Event::Claimed { who: TREASURY, amount: 50 }));
		assert_eq!(TotalPending::<Test>::get(), 0);
		assert_eq!(Balances::balance(&pool()), ED);
		assert_noop!(Rewards::payout(RuntimeOrigin::none(), TREASURY), DispatchError::BadOrigin);
	});
}

#[test]
fn claim_below_minimum_waits() {
	test(|| {
		fund_round(100);
		// 5 to the treasury (a new account, ED 10).
		<Rewards as RewardPool<u64, u128>>::settle_round(0, 1, 100, 0, &[(1, 1)], &[], &[]);
		assert_noop!(
			Rewards::payout(RuntimeOrigin::signed(1), TREASURY),
			Error::<Test>::BelowMinimum
		);
	});
}

#[test]
fn slashes_land_in_pool_and_fund_rounds() {
	test(|| {
		let issuance = Balances::total_issuance();
		let (credit, _) = <Balances as Balanced<u64>>::withdraw(
			&2,
			300,
			Precision::Exact,
			Preservation::Preserve,
			Fortitude::Polite,
		)
		.map(|c| (c, 0))
		.unwrap();
		SlashToPool::<Test>::on_unbalanced(credit);
		assert_eq!(Balances::total_issuance(), issuance);
		assert_eq!(Rewards::unallocated(), 300);
		// The next round of the only active job takes its capped share: 5 % of its 1,000.
		fund_round(1_000);
		<Rewards as RewardPool<u64, u128>>::settle_round(0, 1, 1_000, 0, &[(1, 1)], &[], &[]);
		assert_eq!(Settlements::<Test>::get(0, 1).unwrap().emission, 50);
		assert_eq!(Pending::<Test>::get(1), 1_050 - 52);
		assert_eq!(Rewards::unallocated(), 250);
	});
}

#[test]
fn params_are_governed_and_bounded() {
	test(|| {
		let p = ProtocolParams::<Test>::get();
		assert_noop!(Rewards::set_params(RuntimeOrigin::signed(1), p), DispatchError::BadOrigin);
		assert_noop!(
			Rewards::set_params(RuntimeOrigin::root(), Params { emission_per_block: 1_001, ..p }),
			Error::<Test>::EmissionOutOfRange
		);
		for bad in [
			Params { protocol_fee: Perbill::from_percent(21), ..p },
			Params { validator_share: Perbill::from_percent(51), ..p },
			Params { data_share: Perbill::from_percent(51), ..p },
			Params {
				validator_share: Perbill::from_percent(50),
				data_share: Perbill::from_percent(41),
				..p
			},
		] {
			assert_noop!(
				Rewards::set_params(RuntimeOrigin::root(), bad),
				Error::<Test>::ShareOutOfRange
			);
		}
		let good = Params { emission_per_block: 0, ..p };
		assert_ok!(Rewards::set_params(RuntimeOrigin::root(), good));
		assert_eq!(ProtocolParams::<Test>::get(), good);
		assert!(events().contains(&Event::ParamsUpdated { params: good }));
	});
}

#[test]
fn accounting_fault_is_reported_not_paid() {
	// No try_state here: the state is deliberately inconsistent.
	new_test_ext().execute_with(|| {
		Pending::<Test>::insert(1, 1_000);
		TotalPending::<Test>::put(1_000);
		assert_noop!(Rewards::claim(RuntimeOrigin::signed(1)), Error::<Test>::PoolExhausted);
		assert!(Rewards::do_try_state().is_err());
	});
}
