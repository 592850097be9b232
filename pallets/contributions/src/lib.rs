//! # pallet-contributions
//!
//! The registry of Agora's protocol participants and their money at stake.
//!
//! ## Terms
//!
//! * **Worker**: trains models. Registers with a bonded stake (hold `WorkerStake`), a libp2p
//!   peer id and multiaddr where its blobs are fetched, and a declared [`Capability`].
//! * **Validator**: checks work. Same registration, hold `ValidatorStake`, separate from any
//!   worker stake of the same account.
//! * **Data provider**: registers a dataset shard by content hash with a deposit (hold
//!   `ShardDeposit`) and is paid when jobs use it.
//! * **Eligible**: `Active` and stake ≥ the current minimum. Only eligible participants get
//!   new duties; a validator must also hold one of the `MaxValidators` **seats**.
//! * **Seat**: the validators that are drawn for duties (`ValidatorSeats`, with their stakes).
//!   While seats are free, registering takes one. When every seat is taken, a stake above the
//!   lowest seated stake takes that seat, and its holder is unseated (`ValidatorUnseated`,
//!   `Outbid`): the set cannot be captured by whoever came first. A validator slashed below
//!   the minimum stake loses its seat (`BelowMinimum`). An unseated validator stays registered
//!   with its stake on hold (and its pending duties still count); `claim_seat` seats it again
//!   when a seat is free or its stake outbids the lowest (the daemon calls it whenever that is
//!   so), as `bond_extra` does after adding stake.
//! * **Unbonding**: after `unbond`, the stake stays on hold and slashable for
//!   `Params::unbonding_delay` blocks and until every round or verification the participant
//!   takes part in has ended (`Config::PendingWork`), then `withdraw_unbonded` releases it.
//! * **Slash**: a fraction of the stake (bonded or unbonding) is taken from the hold and
//!   handed to `Config::OnSlash` (the runtime resolves it into the reward pool): it never
//!   vanishes.
//!
//! ## Calls
//!
//! `register_worker`, `register_validator`, `bond_extra`, `claim_seat`, `update_endpoint`,
//! `unbond`, `withdraw_unbonded`, `register_shard`, `deregister_shard`, and `set_params`
//! (`ParamsOrigin` only).
//!
//! Other pallets use this one through [`agora_primitives::ParticipantRegistry`], implemented by
//! [`Pallet`].

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod migrations;
#[cfg(test)]
mod mock;
mod registry;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use agora_primitives::{Capability, Multiaddr, PeerId, Role};
pub use types::*;
pub use weights::WeightInfo;

/// The balance type of the pallet's currency.
pub type BalanceOf<T> = <<T as Config>::Currency as frame_support::traits::fungible::Inspect<
	<T as frame_system::Config>::AccountId,
>>::Balance;
/// The credit type handed to `OnSlash`.
pub type CreditOf<T> = frame_support::traits::fungible::Credit<
	<T as frame_system::Config>::AccountId,
	<T as Config>::Currency,
>;
/// This pallet's parameter struct.
pub type ParamsOf<T> = Params<BalanceOf<T>, frame_system::pallet_prelude::BlockNumberFor<T>>;
/// A registered participant.
pub type ParticipantOf<T> =
	Participant<BalanceOf<T>, frame_system::pallet_prelude::BlockNumberFor<T>>;

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use agora_primitives::BlobHash;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{BalancedHold, Inspect, Mutate, MutateHold},
			OnUnbalanced,
		},
	};
	use frame_system::pallet_prelude::*;

	/// The in-code storage version: 1 keeps every seat's stake beside it (`ValidatorSeats`).
	pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(1);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A worker's stake.
		WorkerStake,
		/// A validator's stake.
		ValidatorStake,
		/// A data provider's deposit for a shard.
		ShardDeposit,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency stakes are held in.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
			+ BalancedHold<Self::AccountId>;
		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;
		/// Where slashed stake goes (the runtime: the reward pool).
		type OnSlash: OnUnbalanced<CreditOf<Self>>;
		/// Origin allowed to change [`Params`].
		type ParamsOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Parameters used until genesis or governance sets them.
		type DefaultParams: Get<ParamsOf<Self>>;
		/// Work whose outcome may still slash a participant (pallet-tasks and pallet-validation):
		/// `withdraw_unbonded` waits for it, so unbonding cannot escape a verdict.
		type PendingWork: agora_primitives::PendingWork<Self::AccountId>;
		/// Number of validator seats: at most this many validators are drawn for duties.
		#[pallet::constant]
		type MaxValidators: Get<u32>;
		/// Weights.
		type WeightInfo: WeightInfo;
	}

	#[pallet::type_value]
	pub fn DefaultParamsValue<T: Config>() -> ParamsOf<T> {
		T::DefaultParams::get()
	}

	/// The pallet's parameters.
	#[pallet::storage]
	pub type ProtocolParams<T: Config> =
		StorageValue<_, ParamsOf<T>, ValueQuery, DefaultParamsValue<T>>;

	/// Registered workers.
	#[pallet::storage]
	pub type Workers<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, ParticipantOf<T>>;

	/// Registered validators.
	#[pallet::storage]
	pub type Validators<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, ParticipantOf<T>>;

	/// The seated validators, with their stakes: the set duties are drawn from. Every member
	/// is a validator with status `Active` whose stake is the one recorded here.
	#[pallet::storage]
	pub type ValidatorSeats<T: Config> =
		StorageValue<_, BoundedVec<(T::AccountId, BalanceOf<T>), T::MaxValidators>, ValueQuery>;

	/// Registered dataset shards.
	#[pallet::storage]
	pub type Shards<T: Config> =
		StorageMap<_, Identity, BlobHash, Shard<T::AccountId, BalanceOf<T>>>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Initial parameters; `None` keeps `Config::DefaultParams`.
		pub params: Option<ParamsOf<T>>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			if let Some(p) = self.params {
				assert!(Pallet::<T>::check_params(&p).is_ok(), "genesis params out of bounds");
				ProtocolParams::<T>::put(p);
			}
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A participant registered.
		Registered { who: T::AccountId, role: Role, stake: BalanceOf<T> },
		/// A participant added stake.
		Bonded { who: T::AccountId, role: Role, amount: BalanceOf<T> },
		/// A participant changed its endpoint or capability.
		EndpointUpdated { who: T::AccountId, role: Role },
		/// A participant started unbonding.
		UnbondingStarted { who: T::AccountId, role: Role, until: BlockNumberFor<T> },
		/// A participant left and got its stake back.
		Withdrawn { who: T::AccountId, role: Role, amount: BalanceOf<T> },
		/// A participant was slashed; the amount went to the slash destination.
		Slashed { who: T::AccountId, role: Role, amount: BalanceOf<T> },
		/// A shard was registered.
		ShardRegistered { shard: BlobHash, provider: T::AccountId, samples: u32 },
		/// A shard was removed and its deposit released.
		ShardDeregistered { shard: BlobHash, provider: T::AccountId },
		/// The parameters changed.
		ParamsUpdated { params: ParamsOf<T> },
		/// A validator took a seat, with `stake`: it can be drawn for duties.
		ValidatorSeated { who: T::AccountId, stake: BalanceOf<T> },
		/// A validator lost its seat; it stays registered, its stake stays on hold.
		ValidatorUnseated { who: T::AccountId, reason: UnseatReason<T::AccountId> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The account is already registered in this role.
		AlreadyRegistered,
		/// The account is not registered in this role.
		NotRegistered,
		/// The stake is below the minimum.
		InsufficientStake,
		/// Not enough free balance to put on hold.
		InsufficientBalance,
		/// The amount is zero.
		ZeroAmount,
		/// The capability declares zero throughput.
		InvalidCapability,
		/// The peer id or multiaddr is empty.
		InvalidEndpoint,
		/// The participant is unbonding.
		NotActive,
		/// The participant is already unbonding.
		AlreadyUnbonding,
		/// The participant is not unbonding.
		NotUnbonding,
		/// The unbonding delay has not passed yet.
		StillUnbonding,
		/// A round or verification the participant takes part in has not ended: its outcome may
		/// still slash the stake.
		WorkPending,
		/// Every validator seat is taken by a stake at least as large as this one.
		TooManyValidators,
		/// The shard is already registered.
		ShardExists,
		/// The shard is not registered.
		UnknownShard,
		/// Only the shard's provider may do this.
		NotShardProvider,
		/// A minimum stake is below the existential deposit.
		StakeBoundOutOfRange,
		/// The unbonding delay is outside its bounds.
		DelayOutOfRange,
		/// The validator already holds a seat.
		AlreadySeated,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn integrity_test() {
			assert!(T::MaxValidators::get() > 0, "MaxValidators must be positive");
			assert!(
				Pallet::<T>::check_params(&T::DefaultParams::get()).is_ok(),
				"DefaultParams out of bounds"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Register as a worker, holding `stake` (at least `min_worker_stake`).
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::register_worker())]
		pub fn register_worker(
			origin: OriginFor<T>,
			stake: BalanceOf<T>,
			peer_id: PeerId,
			multiaddr: Multiaddr,
			capability: Capability,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_register(who, Role::Worker, stake, peer_id, multiaddr, capability)
		}

		/// Register as a validator, holding `stake` (at least `min_validator_stake`), and take a
		/// seat: a free one, or, when every seat is taken, the seat of the lowest stake if
		/// `stake` is higher (its holder is unseated).
		///
		/// Origin: signed. Events: `Registered`, `ValidatorSeated`, and `ValidatorUnseated`
		/// (`Outbid`) for the validator it replaces. Fails with `TooManyValidators` when every
		/// seat holds at least `stake`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::register_validator())]
		pub fn register_validator(
			origin: OriginFor<T>,
			stake: BalanceOf<T>,
			peer_id: PeerId,
			multiaddr: Multiaddr,
			capability: Capability,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_register(who, Role::Validator, stake, peer_id, multiaddr, capability)
		}

		/// Add `amount` to an active registration's stake. An unseated validator whose stake
		/// reaches the minimum takes a seat if one is free or its stake outbids the lowest.
		///
		/// Origin: signed. Events: `Bonded`, and for a validator that takes a seat
		/// `ValidatorSeated` (and `ValidatorUnseated` for the one it replaces).
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::bond_extra())]
		pub fn bond_extra(
			origin: OriginFor<T>,
			role: Role,
			amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_bond_extra(who, role, amount)
		}

		/// Change the endpoint and capability of a registration.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::update_endpoint())]
		pub fn update_endpoint(
			origin: OriginFor<T>,
			role: Role,
			peer_id: PeerId,
			multiaddr: Multiaddr,
			capability: Capability,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_update_endpoint(who, role, peer_id, multiaddr, capability)
		}

		/// Start leaving: no new duties, stake withdrawable after `unbonding_delay`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::unbond())]
		pub fn unbond(origin: OriginFor<T>, role: Role) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_unbond(who, role)
		}

		/// Release the whole remaining stake once the unbonding delay has passed.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::withdraw_unbonded().saturating_add(
			<T::PendingWork as agora_primitives::PendingWork<T::AccountId>>::has_pending_work_weight()
		))]
		pub fn withdraw_unbonded(origin: OriginFor<T>, role: Role) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_withdraw(who, role)
		}

		/// Register a dataset shard by content hash, holding `shard_deposit`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::register_shard())]
		pub fn register_shard(
			origin: OriginFor<T>,
			shard: BlobHash,
			samples: u32,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_register_shard(who, shard, samples)
		}

		/// Remove one's shard and release its deposit.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::deregister_shard())]
		pub fn deregister_shard(origin: OriginFor<T>, shard: BlobHash) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_deregister_shard(who, shard)
		}

		/// Set the parameters (governance). Every field is checked against its bounds.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::set_params())]
		pub fn set_params(origin: OriginFor<T>, params: ParamsOf<T>) -> DispatchResult {
			T::ParamsOrigin::ensure_origin(origin)?;
			Self::check_params(&params)?;
			ProtocolParams::<T>::put(params);
			Self::deposit_event(Event::ParamsUpdated { params });
			Ok(())
		}

		/// Take a seat with the caller's current validator stake: a free one, or, when every
		/// seat is taken, the seat of the lowest stake if the caller's is higher (its holder is
		/// unseated). This is how a validator that was outbid, or that could not find a seat when
		/// it registered, gets one back once a seat frees (another validator left or fell below
		/// the minimum) or its stake outbids the lowest, without having to bond more.
		///
		/// Origin: signed, an active validator with at least `min_validator_stake` that holds no
		/// seat. Events: `ValidatorSeated`, and `ValidatorUnseated` (`Outbid`) for the validator
		/// it replaces. Fails with `TooManyValidators` when every seat holds at least its stake.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::claim_seat())]
		pub fn claim_seat(origin: OriginFor<T>) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_claim_seat(who)
		}
	}
}
