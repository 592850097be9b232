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
		let credited = <Rewards as RewardPool<u64, u128>>::settle_round(
			0,
			1,
			1_000,
			2,
			&[(1, 3), (2, 1)],
			&[(11, 1), (12, 1)],
			&[21, 22],
		);
		// emission share = 200 / 2 = 100; total 1100; fee 55; rest 1045;
		// validators 15% = 156; providers 10% = 104 (52 each); workers 785 (588 / 196).
		assert_eq!(Pending::<Test>::get(TREASURY), 55);
		assert_eq!(Pending::<Test>::get(11), 78);
		assert_eq!(Pending::<Test>::get(12), 78);
		assert_eq!(Pending::<Test>::get(21), 52);
		assert_eq!(Pending::<Test>::get(22), 52);
		assert_eq!(Pending::<Test>::get(1), 588);
		assert_eq!(Pending::<Test>::get(2), 196);
		assert_eq!(credited, 55 + 156 + 104 + 784);
		assert_eq!(TotalPending::<Test>::get(), credited);
		assert_eq!(
			Settlements::<Test>::get(0, 1),
			Some(Settlement {
				budget: 1_000,
				emission: 100,
				fee: 55,
				workers: 784,
				validators: 156,
				providers: 104
			})
		);
		assert!(events().contains(&Event::RoundSettled {
			job: 0,
			round: 1,
			budget: 1_000,
			emission: 100,
			fee: 55,
			workers: 784,
			validators: 156,
			providers: 104
		}));
		// Dust and the other job's emission share stay unallocated.
		assert_eq!(Rewards::unallocated(), 1_200 - credited);
	});
}

#[test]
fn empty_classes_pass_their_share_to_workers() {
	test(|| {
		fund_round(1_000);
		<Rewards as RewardPool<u64, u128>>::settle_round(0, 1, 1_000, 1, &[(1, 1)], &[], &[]);
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
			1,
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
		<Rewards as RewardPool<u64, u128>>::settle_round(0, 1, 100, 1, &[(1, 1)], &[], &[]);
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
		<Rewards as RewardPool<u64, u128>>::settle_round(0, 1, 0, 1, &[(1, 1)], &[], &[]);
		assert_eq!(Pending::<Test>::get(1), 285);
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
