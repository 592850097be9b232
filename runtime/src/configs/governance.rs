//! On-chain governance: referenda on three tracks (root, protocol parameters, treasurer),
//! conviction voting with locked AGR, enactment through the scheduler, proposals stored as
//! preimages, and a treasury funded by protocol fees and transaction fees.

use alloc::borrow::Cow;
use frame_support::{
	parameter_types,
	traits::{
		fungible::HoldConsideration, tokens::UnityAssetBalanceConversion, ConstU32, EitherOf,
		EqualPrivilegeOnly, LinearStoragePrice,
	},
	weights::Weight,
};
use frame_system::{EnsureRoot, EnsureRootWithSuccess, EnsureWithSuccess};
use pallet_governance::{tracks, TimingBounds, TrackDeposits, TrackId, TrackTiming};
use sp_runtime::{traits::IdentityLookup, Perbill, Percent, Permill};

use super::{
	protocol::{TreasuryAccount, TreasuryPalletId},
	staking::{MAX_CANDIDATES, MAX_NOMINATORS},
	RuntimeBlockWeights,
};
use crate::{
	currency::{AGR, MILLI_AGR},
	time::{DAYS, HOURS, MINUTES},
	AccountId, Balance, Balances, BlockNumber, Governance, OriginCaller, Preimage, Referenda,
	Runtime, RuntimeCall, RuntimeEvent, RuntimeHoldReason, RuntimeOrigin, Scheduler, System,
	Treasury,
};

parameter_types! {
	/// Scheduled calls (enactments) may use 80% of a block.
	pub MaximumSchedulerWeight: Weight = Perbill::from_percent(80) * RuntimeBlockWeights::get().max_block;
}

impl pallet_scheduler::Config for Runtime {
	type RuntimeOrigin = RuntimeOrigin;
	type RuntimeEvent = RuntimeEvent;
	type PalletsOrigin = OriginCaller;
	type RuntimeCall = RuntimeCall;
	type MaximumWeight = MaximumSchedulerWeight;
	type ScheduleOrigin = EnsureRoot<AccountId>;
	type MaxScheduledPerBlock = ConstU32<50>;
	type WeightInfo = pallet_scheduler::weights::SubstrateWeight<Runtime>;
	type OriginPrivilegeCmp = EqualPrivilegeOnly;
	type Preimages = Preimage;
	type BlockNumberProvider = System;
}

parameter_types! {
	pub const PreimageBaseDeposit: Balance = AGR;
	pub const PreimageByteDeposit: Balance = 10 * MILLI_AGR / 1_000;
	pub const PreimageHoldReason: RuntimeHoldReason =
		RuntimeHoldReason::Preimage(pallet_preimage::HoldReason::Preimage);
}

impl pallet_preimage::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type WeightInfo = pallet_preimage::weights::SubstrateWeight<Runtime>;
	type Currency = Balances;
	type ManagerOrigin = EnsureRoot<AccountId>;
	type Consideration = HoldConsideration<
		AccountId,
		Balances,
		PreimageHoldReason,
		LinearStoragePrice<PreimageBaseDeposit, PreimageByteDeposit, Balance>,
	>;
}

parameter_types! {
	/// A vote's lock lasts this long per unit of conviction after the referendum ends.
	pub const VoteLockingPeriod: BlockNumber = DAYS;
}

impl pallet_conviction_voting::Config for Runtime {
	type WeightInfo = pallet_conviction_voting::weights::SubstrateWeight<Runtime>;
	type RuntimeEvent = RuntimeEvent;
	type Currency = Balances;
	type VoteLockingPeriod = VoteLockingPeriod;
	type MaxVotes = ConstU32<512>;
	type MaxTurnout =
		frame_support::traits::tokens::currency::ActiveIssuanceOf<Balances, Self::AccountId>;
	type Polls = Referenda;
	type BlockNumberProvider = System;
	type VotingHooks = ();
}

parameter_types! {
	pub const TrackDecisionDeposits: TrackDeposits<Balance> = TrackDeposits {
		root: 10_000 * AGR,
		protocol_params: 1_000 * AGR,
		treasurer: 1_000 * AGR,
	};
	pub const SubmissionDeposit: Balance = 10 * AGR;
	pub const UndecidingTimeout: BlockNumber = 14 * DAYS;
	/// Production periods; development chains set shorter ones in their genesis.
	pub const DefaultTrackTiming: TrackTiming<BlockNumber> = TrackTiming {
		prepare_period: 2 * HOURS,
		decision_period: 7 * DAYS,
		confirm_period: DAYS,
		min_enactment_period: DAYS,
	};
	/// What governance may set the periods to: at least a block, at most a season.
	pub const TrackTimingBounds: TimingBounds<BlockNumber> = TimingBounds {
		prepare_period: (1, 7 * DAYS),
		decision_period: (5, 90 * DAYS),
		confirm_period: (1, 14 * DAYS),
		min_enactment_period: (1, 30 * DAYS),
	};
}

/// pallet-referenda's view of Agora's tracks: their curves and deposits are fixed, their periods
/// come from pallet-governance's storage.
pub struct AgoraTracks;

impl pallet_referenda::TracksInfo<Balance, BlockNumber> for AgoraTracks {
	type Id = TrackId;
	type RuntimeOrigin = OriginCaller;

	fn tracks(
	) -> impl Iterator<Item = Cow<'static, pallet_referenda::Track<TrackId, Balance, BlockNumber>>>
	{
		let deposits = TrackDecisionDeposits::get();
		tracks::ALL
			.into_iter()
			.filter_map(move |id| tracks::track(id, &deposits, Governance::timing(id)))
	}

	fn track_for(origin: &Self::RuntimeOrigin) -> Result<TrackId, ()> {
		match origin {
			OriginCaller::system(frame_system::RawOrigin::Root) => Ok(tracks::ROOT),
			OriginCaller::Governance(pallet_governance::Origin::ProtocolParameters) => {
				Ok(tracks::PROTOCOL_PARAMS)
			},
			OriginCaller::Governance(pallet_governance::Origin::Treasurer) => Ok(tracks::TREASURER),
			_ => Err(()),
		}
	}
}

impl pallet_referenda::Config for Runtime {
	type WeightInfo = pallet_referenda::weights::SubstrateWeight<Self>;
	type RuntimeCall = RuntimeCall;
	type RuntimeEvent = RuntimeEvent;
	type Scheduler = Scheduler;
	type Currency = Balances;
	type SubmitOrigin = frame_system::EnsureSigned<AccountId>;
	type CancelOrigin = EnsureRoot<AccountId>;
	type KillOrigin = EnsureRoot<AccountId>;
	// Deposits of killed referenda go to the treasury, not into thin air.
	type Slash = Treasury;
	type Votes = pallet_conviction_voting::VotesOf<Runtime>;
	type Tally = pallet_conviction_voting::TallyOf<Runtime>;
	type SubmissionDeposit = SubmissionDeposit;
	type MaxQueued = ConstU32<100>;
	type UndecidingTimeout = UndecidingTimeout;
	type AlarmInterval = ConstU32<1>;
	type Tracks = AgoraTracks;
	type Preimages = Preimage;
	type BlockNumberProvider = System;
}

impl pallet_governance::Config for Runtime {
	type TimingOrigin = EnsureRoot<AccountId>;
	type TimingBounds = TrackTimingBounds;
	type DefaultTiming = DefaultTrackTiming;
	type RuntimeCall = RuntimeCall;
	type DelegationOrigin = pallet_governance::ProtocolParameters;
	type DelegatedRootCalls = DelegatedStakingCalls;
	type WeightInfo = pallet_governance::weights::SubstrateWeight<Runtime>;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = DelegatedStakingCalls;
}

/// Root, or a referendum passed on the `protocol_params` track.
pub type ProtocolParamsOrigin =
	EitherOf<EnsureRoot<AccountId>, pallet_governance::ProtocolParameters>;

parameter_types! {
	/// The most one treasury referendum may spend.
	pub const MaxTreasurySpend: Balance = 1_000_000 * AGR;
	pub const SpendPeriod: BlockNumber = 10 * MINUTES;
	pub const PayoutPeriod: BlockNumber = 30 * DAYS;
	pub const NoBurn: Permill = Permill::zero();
}

impl pallet_treasury::Config for Runtime {
	type PalletId = TreasuryPalletId;
	type Currency = Balances;
	type RejectOrigin = EnsureRoot<AccountId>;
	type RuntimeEvent = RuntimeEvent;
	type SpendPeriod = SpendPeriod;
	// Unspent funds stay in the treasury.
	type Burn = NoBurn;
	type BurnDestination = ();
	type SpendFunds = ();
	type MaxApprovals = ConstU32<100>;
	type SpendOrigin = EitherOf<
		EnsureRootWithSuccess<AccountId, MaxTreasurySpend>,
		EnsureWithSuccess<pallet_governance::Treasurer, AccountId, MaxTreasurySpend>,
	>;
	type AssetKind = ();
	type Beneficiary = AccountId;
	type BeneficiaryLookup = IdentityLookup<AccountId>;
	type Paymaster = frame_support::traits::tokens::pay::PayFromAccount<Balances, TreasuryAccount>;
	type BalanceConverter = UnityAssetBalanceConversion;
	type PayoutPeriod = PayoutPeriod;
	#[cfg(feature = "runtime-benchmarks")]
	type BenchmarkHelper = ();
	type BlockNumberProvider = System;
	type WeightInfo = pallet_treasury::weights::SubstrateWeight<Runtime>;
}

/// The fewest validators a protocol-parameters referendum may ask for: four is the smallest set
/// in which GRANDPA keeps finalizing with one validator faulty.
pub const MIN_GOVERNED_VALIDATOR_COUNT: u32 = 4;
/// The highest minimum validator bond a protocol-parameters referendum may set.
pub const MAX_GOVERNED_MIN_VALIDATOR_BOND: Balance = 1_000_000 * AGR;
/// The highest minimum nominator bond a protocol-parameters referendum may set.
pub const MAX_GOVERNED_MIN_NOMINATOR_BOND: Balance = 100_000 * AGR;
/// The highest minimum commission a protocol-parameters referendum may impose on validators.
pub const MAX_GOVERNED_MIN_COMMISSION: Perbill = Perbill::from_percent(50);
/// The least share of the staking curve's emission that stakers keep (the rest goes to the
/// treasury).
pub const MIN_GOVERNED_MAX_STAKED_REWARDS: Percent = Percent::from_percent(10);

/// pallet-staking's root-only parameter setters that a protocol-parameters referendum may
/// dispatch as root (`governance.dispatchDelegated`), within bounds:
/// - the validator count between [`MIN_GOVERNED_VALIDATOR_COUNT`] and the authority limit;
/// - the minimum bonds set (never removed) and at most their caps;
/// - the nominator and candidate caps set (never removed), no lower than today's nominators and
///   candidates (a cap below them would bar newcomers until others leave) and no higher than
///   what one election reads ([`MAX_NOMINATORS`], [`MAX_CANDIDATES`]);
/// - the minimum commission up to [`MAX_GOVERNED_MIN_COMMISSION`];
/// - the stakers' share of the curve at least [`MIN_GOVERNED_MAX_STAKED_REWARDS`];
/// - the chill threshold untouched: with it, anyone may chill others below the minimum bonds,
///   so together with a raised bond it would purge the set; it stays root's.
///
/// Anything else (forcing eras, invulnerables, unstaking an account) needs a root referendum.
pub struct DelegatedStakingCalls;

impl frame_support::traits::Contains<RuntimeCall> for DelegatedStakingCalls {
	fn contains(call: &RuntimeCall) -> bool {
		use pallet_staking::{Call as StakingCall, ConfigOp};
		fn within<V: PartialOrd + codec::FullCodec + Default>(
			op: &ConfigOp<V>,
			least: V,
			most: V,
		) -> bool {
			match op {
				ConfigOp::Set(value) => least <= *value && *value <= most,
				ConfigOp::Noop => true,
				ConfigOp::Remove => false,
			}
		}
		match call {
			RuntimeCall::Staking(StakingCall::set_validator_count { new }) => {
				(MIN_GOVERNED_VALIDATOR_COUNT..=super::MAX_AUTHORITIES).contains(new)
			},
			RuntimeCall::Staking(StakingCall::set_staking_configs {
				min_nominator_bond,
				min_validator_bond,
				max_nominator_count,
				max_validator_count,
				chill_threshold,
				min_commission,
				max_staked_rewards,
			}) => {
				let nominators = pallet_staking::Nominators::<Runtime>::count();
				let candidates = pallet_staking::Validators::<Runtime>::count();
				within(min_nominator_bond, 0, MAX_GOVERNED_MIN_NOMINATOR_BOND)
					&& within(min_validator_bond, 0, MAX_GOVERNED_MIN_VALIDATOR_BOND)
					&& within(max_nominator_count, nominators, MAX_NOMINATORS)
					&& within(
						max_validator_count,
						candidates.max(MIN_GOVERNED_VALIDATOR_COUNT),
						MAX_CANDIDATES,
					) && matches!(chill_threshold, ConfigOp::Noop)
					&& within(min_commission, Perbill::zero(), MAX_GOVERNED_MIN_COMMISSION)
					&& within(
						max_staked_rewards,
						MIN_GOVERNED_MAX_STAKED_REWARDS,
						Percent::from_percent(100),
					)
			},
			_ => false,
		}
	}
}

/// The costliest delegated call to admit: `set_staking_configs` with every value set (two
/// counter reads in the bounds check, seven writes).
#[cfg(feature = "runtime-benchmarks")]
impl pallet_governance::BenchmarkHelper<RuntimeCall> for DelegatedStakingCalls {
	fn delegated_call() -> RuntimeCall {
		use pallet_staking::ConfigOp::{Noop, Set};
		RuntimeCall::Staking(pallet_staking::Call::set_staking_configs {
			min_nominator_bond: Set(MAX_GOVERNED_MIN_NOMINATOR_BOND),
			min_validator_bond: Set(MAX_GOVERNED_MIN_VALIDATOR_BOND),
			max_nominator_count: Set(MAX_NOMINATORS),
			max_validator_count: Set(MAX_CANDIDATES),
			chill_threshold: Noop,
			min_commission: Set(MAX_GOVERNED_MIN_COMMISSION),
			max_staked_rewards: Set(MIN_GOVERNED_MAX_STAKED_REWARDS),
		})
	}
}

/// Every origin but root passes through this filter (root is a root-track referendum or, on
/// test chains, sudo). Of staking's admin calls, the protocol-parameters track may set the
/// validators' minimum commission directly, up to [`MAX_GOVERNED_MIN_COMMISSION`]; cancelling a
/// deferred slash, slashing or restoring an account's ledger stay root's.
pub struct GovernedCallBounds;

impl frame_support::traits::Contains<RuntimeCall> for GovernedCallBounds {
	fn contains(call: &RuntimeCall) -> bool {
		use pallet_staking::Call as StakingCall;
		match call {
			RuntimeCall::Staking(StakingCall::set_min_commission { new }) => {
				*new <= MAX_GOVERNED_MIN_COMMISSION
			},
			RuntimeCall::Staking(
				StakingCall::cancel_deferred_slash { .. }
				| StakingCall::manual_slash { .. }
				| StakingCall::restore_ledger { .. }
				| StakingCall::deprecate_controller_batch { .. },
			) => false,
			_ => true,
		}
	}
}
