//! Who produces and finalizes blocks: validators elected by stake (nominated proof of stake).
//!
//! - **Sessions** (`pallet-session`, one per BABE epoch) rotate the BABE, GRANDPA and im-online
//!   keys; the historical part keeps each session's validator set provable, so that an
//!   equivocation can be proven against the set it happened in.
//! - **Staking** (`pallet-staking`) elects the set once per era by sequential Phragmén over
//!   bonded validators and their nominators (bounded: [`MAX_ELECTION_VOTERS`] voters,
//!   [`MAX_CANDIDATES`] candidates), pays era rewards from the emission curve and slashes.
//! - **Offences** (`pallet-offences`) take reports from BABE and GRANDPA (equivocations, with key
//!   ownership proofs) and hand them to staking to slash and disable; a lone offender's slash
//!   is capped ([`CapIsolatedOffences`]).
//! - **im-online** reports a validator that neither authored a block nor sent a heartbeat in a
//!   session; it is chilled (out at the next election) but not slashed ([`ChillUnresponsive`]).
//! - **Timing** (`pallet-session-timing`): session length, sessions per era, unbonding and
//!   slash deferral are chosen at genesis: minutes on test chains, hours and weeks in production.

use alloc::vec::Vec;
use frame_election_provider_support::{
	bounds::{ElectionBounds, ElectionBoundsBuilder},
	onchain, SequentialPhragmen,
};
use frame_support::{
	parameter_types,
	traits::{tokens::imbalance::ResolveTo, ConstBool, ConstU32, Nothing},
};
use pallet_session_timing::SessionTiming;
use sp_runtime::{
	curve::PiecewiseLinear,
	traits::{ConvertInto, OpaqueKeys},
	transaction_validity::TransactionPriority,
	Perbill,
};

use super::{governance::ProtocolParamsOrigin, protocol::TreasuryAccount, MAX_AUTHORITIES};
use crate::{
	currency::AGR, time::HOURS, AccountId, Babe, Balance, Balances, BlockNumber, Historical,
	ImOnline, Runtime, RuntimeEvent, RuntimeHoldReason, Session, SessionKeys, Staking, Timestamp,
};

parameter_types! {
	/// A production chain's timing: hour-long sessions, six-hour eras, 28 eras (a week) of
	/// unbonding, slashes applied 27 eras after the offence unless governance cancels them.
	/// Test chains choose minutes in their genesis.
	pub const DefaultSessionTiming: SessionTiming<BlockNumber> = SessionTiming {
		session_length: HOURS,
		sessions_per_era: 6,
		bonding_duration: 28,
		slash_defer_duration: 27,
	};
}

impl pallet_session_timing::Config for Runtime {
	type DefaultTiming = DefaultSessionTiming;
	// A BABE epoch of fewer than 10 slots leaves too little time to announce the next one.
	type MinSessionLength = ConstU32<10>;
}

/// BABE's epoch length: one session.
pub type EpochDuration = pallet_session_timing::EpochDuration<Runtime>;
/// How long an equivocation report stays valid: one unbonding period.
pub type ReportLongevity = pallet_session_timing::ReportLongevity<Runtime>;

parameter_types! {
	/// Held from an account while it has session keys registered (pays for their storage).
	pub const SessionKeyDeposit: Balance = AGR;
}

impl pallet_session::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type ValidatorId = AccountId;
	// Validators are identified by their stash account.
	type ValidatorIdOf = ConvertInto;
	// A session ends with the BABE epoch.
	type ShouldEndSession = Babe;
	type NextSessionRotation = Babe;
	type SessionManager = pallet_session::historical::NoteHistoricalRoot<Self, Staking>;
	type SessionHandler = <SessionKeys as OpaqueKeys>::KeyTypeIdProviders;
	type Keys = SessionKeys;
	// An offender is disabled (stops authoring) for the rest of the era, at most a third of the
	// set at once so that the rest keep finality going.
	type DisablingStrategy = pallet_session::disabling::UpToLimitWithReEnablingDisablingStrategy;
	type WeightInfo = pallet_session::weights::SubstrateWeight<Runtime>;
	type Currency = Balances;
	type KeyDeposit = SessionKeyDeposit;
}

impl pallet_session::historical::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type FullIdentification = ();
	type FullIdentificationOf = pallet_staking::UnitIdentificationOf<Self>;
}

impl pallet_authorship::Config for Runtime {
	type FindAuthor = pallet_session::FindAccountFromAuthorIndex<Self, Babe>;
	// Authoring earns era points (staking) and counts as being online (im-online).
	type EventHandler = (Staking, ImOnline);
}

impl pallet_offences::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type IdentificationTuple = pallet_session::historical::IdentificationTuple<Self>;
	type OnOffenceHandler = CapIsolatedOffences;
}

parameter_types! {
	/// Heartbeats go ahead of every other unsigned transaction.
	pub const ImOnlineUnsignedPriority: TransactionPriority = TransactionPriority::MAX;
}

/// A validator's stash and its (empty) full identification, as the historical session keeps it.
type ValidatorIdentification = pallet_session::historical::IdentificationTuple<Runtime>;

/// What happens to a validator that im-online found offline for a whole session (no block, no
/// heartbeat): it is chilled, so that the next era's election leaves it out and the set heals
/// itself, but it is never slashed. Being offline is usually an outage or a network partition,
/// not an attack, and honest operators must not lose stake to a network hiccup; what it costs
/// them is the era points (rewards) they did not earn and a `staking.validate` to come back.
/// (pallet-im-online's own offence, slashing up to 7% once more than a tenth of the set is
/// offline at once, would punish exactly the honest validators a partition cuts off.)
///
/// When more than a tenth of the set (plus one) is offline together, that looks like a
/// partition of the network rather than of the validators, and nobody is chilled: chilling
/// them all would hand the next election to whoever is left. Nor is anyone chilled below
/// `staking.minimumValidatorCount` candidates, under which the election would fail and eras
/// stop.
pub struct ChillUnresponsive;

impl
	sp_staking::offence::ReportOffence<
		AccountId,
		ValidatorIdentification,
		pallet_im_online::UnresponsivenessOffence<ValidatorIdentification>,
	> for ChillUnresponsive
{
	fn report_offence(
		_reporters: Vec<AccountId>,
		offence: pallet_im_online::UnresponsivenessOffence<ValidatorIdentification>,
	) -> Result<(), sp_staking::offence::OffenceError> {
		use sp_staking::StakingInterface;
		let offline = offence.offenders.len() as u32;
		if offline > offence.validator_set_count / 10 + 1 {
			log::warn!(
				target: "runtime::staking",
				"{offline} of {} validators offline at once: a partition, nobody chilled",
				offence.validator_set_count,
			);
			return Ok(());
		}
		for (stash, ()) in offence.offenders {
			// Only a validator candidate is chilled (a stash that turned nominator keeps its
			// nominations), and never below the minimum the election needs.
			let candidates = pallet_staking::Validators::<Runtime>::count();
			if !pallet_staking::Validators::<Runtime>::contains_key(&stash)
				|| candidates <= pallet_staking::MinimumValidatorCount::<Runtime>::get()
			{
				continue;
			}
			if let Err(e) = <Staking as StakingInterface>::chill(&stash) {
				log::warn!(target: "runtime::staking", "offline {stash:?} not chilled: {e:?}");
			}
		}
		Ok(())
	}

	// im-online never asks (it reports each session once, at its end).
	fn is_known_offence(_offenders: &[ValidatorIdentification], _session: &u32) -> bool {
		false
	}
}

/// The most an equivocation by a single validator is slashed: 10%.
pub const ISOLATED_OFFENCE_SLASH_CAP: Perbill = Perbill::from_percent(10);

/// Staking's offence handler, with the slash of an isolated equivocation capped at
/// [`ISOLATED_OFFENCE_SLASH_CAP`]. The `(3k/n)²` formula of BABE and GRANDPA is made for
/// hundreds of validators; in a set of four, one validator signing twice (most often an
/// operator's failover node running the same keys) would lose 56% of its and its nominators'
/// stake. When several validators equivocate in the same slot or round, which is what an attack
/// on safety needs, the formula applies in full: pallet-offences reports every offender of the
/// slot again with the fraction for all of them, and staking keeps the largest slash.
pub struct CapIsolatedOffences;

impl
	sp_staking::offence::OnOffenceHandler<
		AccountId,
		ValidatorIdentification,
		frame_support::weights::Weight,
	> for CapIsolatedOffences
{
	fn on_offence(
		offenders: &[sp_staking::offence::OffenceDetails<AccountId, ValidatorIdentification>],
		slash_fraction: &[Perbill],
		session: sp_staking::SessionIndex,
	) -> frame_support::weights::Weight {
		use sp_staking::offence::OnOffenceHandler;
		if let [_single] = offenders {
			let capped: Vec<Perbill> =
				slash_fraction.iter().map(|f| (*f).min(ISOLATED_OFFENCE_SLASH_CAP)).collect();
			<Staking as OnOffenceHandler<_, _, _>>::on_offence(offenders, &capped, session)
		} else {
			<Staking as OnOffenceHandler<_, _, _>>::on_offence(offenders, slash_fraction, session)
		}
	}
}

impl pallet_im_online::Config for Runtime {
	type AuthorityId = pallet_im_online::sr25519::AuthorityId;
	type RuntimeEvent = RuntimeEvent;
	type NextSessionRotation = Babe;
	type ValidatorSet = Historical;
	type ReportUnresponsiveness = ChillUnresponsive;
	type UnsignedPriority = ImOnlineUnsignedPriority;
	type WeightInfo = pallet_im_online::weights::SubstrateWeight<Runtime>;
	type MaxKeys = ConstU32<MAX_AUTHORITIES>;
	type MaxPeerInHeartbeats = ConstU32<10_000>;
}

// Yearly inflation paid to stakers by how much of the issuance is staked: 10% at the ideal
// 50% staked, falling to 2.5% as stake moves away from it. What the curve allows but stakers
// do not earn (stake away from the ideal) goes to the treasury.
pallet_staking_reward_curve::build! {
	const REWARD_CURVE: PiecewiseLinear<'static> = curve!(
		min_inflation: 0_025_000,
		max_inflation: 0_100_000,
		ideal_stake: 0_500_000,
		falloff: 0_050_000,
		max_piece_count: 40,
		test_precision: 0_005_000,
	);
}

/// The cap on nominators (`staking.maxNominatorsCount` in every preset, and governance may not
/// raise or remove it).
pub const MAX_NOMINATORS: u32 = 2_000;
/// The cap on validator candidates, and the most one election reads.
pub const MAX_CANDIDATES: u32 = 256;
/// The most voters one election reads: every nominator and every candidate (each votes for
/// itself), so that nobody's stake is left out while the caps hold.
pub const MAX_ELECTION_VOTERS: u32 = MAX_NOMINATORS + MAX_CANDIDATES;

parameter_types! {
	pub const RewardCurve: &'static PiecewiseLinear<'static> = &REWARD_CURVE;
	/// Eras of rewards that can still be claimed, and of slashing spans kept.
	pub const HistoryDepth: u32 = 84;
	/// Nominators rewarded per `payout_stakers` call (one page of an exposure).
	pub const MaxExposurePageSize: u32 = 256;
	pub ElectionBoundsOnChain: ElectionBounds = ElectionBoundsBuilder::default()
		.voters_count(MAX_ELECTION_VOTERS.into())
		.targets_count(MAX_CANDIDATES.into())
		.build();
}

/// The election: sequential Phragmén, run on chain in the session before the era ends.
pub struct OnChainSeqPhragmen;
impl onchain::Config for OnChainSeqPhragmen {
	type System = Runtime;
	type Solver = SequentialPhragmen<AccountId, Perbill>;
	type DataProvider = Staking;
	type WeightInfo = frame_election_provider_support::weights::SubstrateWeight<Runtime>;
	type MaxBackersPerWinner = ConstU32<MAX_ELECTION_VOTERS>;
	type MaxWinnersPerPage = ConstU32<MAX_AUTHORITIES>;
	type Bounds = ElectionBoundsOnChain;
	type Sort = ConstBool<true>;
}

/// Benchmark sizes of staking's own weights (the defaults of polkadot-sdk's solo runtimes).
pub struct StakingBenchmarkingConfig;
impl pallet_staking::BenchmarkingConfig for StakingBenchmarkingConfig {
	type MaxNominators = ConstU32<1000>;
	type MaxValidators = ConstU32<1000>;
}

impl pallet_staking::Config for Runtime {
	type OldCurrency = Balances;
	type Currency = Balances;
	type CurrencyBalance = Balance;
	type RuntimeHoldReason = RuntimeHoldReason;
	type UnixTime = Timestamp;
	type CurrencyToVote = sp_staking::currency_to_vote::U128CurrencyToVote;
	type ElectionProvider = onchain::OnChainExecution<OnChainSeqPhragmen>;
	type GenesisElectionProvider = onchain::OnChainExecution<OnChainSeqPhragmen>;
	type NominationsQuota = pallet_staking::FixedNominationsQuota<16>;
	type HistoryDepth = HistoryDepth;
	// What the reward curve allows beyond the stakers' payout, and slashed stake, go to the
	// treasury: nothing is burned.
	type RewardRemainder = ResolveTo<TreasuryAccount, Balances>;
	type RuntimeEvent = RuntimeEvent;
	type Slash = ResolveTo<TreasuryAccount, Balances>;
	type Reward = ();
	type SessionsPerEra = pallet_session_timing::SessionsPerEra<Runtime>;
	type BondingDuration = pallet_session_timing::BondingDuration<Runtime>;
	type SlashDeferDuration = pallet_session_timing::SlashDeferDuration<Runtime>;
	// Root, or a referendum on the protocol-parameters track within the bounds that
	// `StakingParameterBounds` enforces (root-only calls are filtered there).
	type AdminOrigin = ProtocolParamsOrigin;
	type SessionInterface = Self;
	type EraPayout = pallet_staking::ConvertCurve<RewardCurve>;
	type NextNewSession = Session;
	type MaxExposurePageSize = MaxExposurePageSize;
	type MaxValidatorSet = ConstU32<MAX_AUTHORITIES>;
	type VoterList = pallet_staking::UseNominatorsAndValidatorsMap<Self>;
	type TargetList = pallet_staking::UseValidatorsMap<Self>;
	type MaxUnlockingChunks = ConstU32<32>;
	type MaxControllersInDeprecationBatch = ConstU32<100>;
	type EventListeners = ();
	type Filter = Nothing;
	type BenchmarkingConfig = StakingBenchmarkingConfig;
	type WeightInfo = pallet_staking::weights::SubstrateWeight<Runtime>;
}
