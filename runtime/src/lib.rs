//! # Agora runtime
//!
//! The state transition function of the Agora chain: an application-specific chain where people
//! pool GPU compute, data and validation to train AI models together and are paid in **AGR**.
//!
//! Consensus: BABE produces blocks (its VRF output is also the chain's source of randomness
//! that no single party can predict when it commits) and GRANDPA finalizes them. The
//! validators are elected by stake each era (nominated proof of stake), and an equivocating or
//! unresponsive validator is reported and slashed.

#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime!` does a lot of recursion and requires us to increase the limit.
#![recursion_limit = "256"]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

pub mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
pub mod configs;
pub mod genesis_config_presets;

use alloc::vec::Vec;
use sp_runtime::{
	generic, impl_opaque_keys,
	traits::{BlakeTwo256, IdentifyAccount, Verify},
	MultiAddress, MultiSignature,
};
use sp_version::RuntimeVersion;

pub use frame_system::Call as SystemCall;
pub use pallet_balances::Call as BalancesCall;
pub use pallet_timestamp::Call as TimestampCall;
#[cfg(any(feature = "std", test))]
pub use sp_runtime::BuildStorage;

/// Opaque types: what the node (outside the runtime) needs to know without knowing the calls.
pub mod opaque {
	use super::*;
	use sp_runtime::traits::Hash as HashT;

	pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;

	/// Opaque block header type.
	pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
	/// Opaque block type.
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;
	/// Opaque block identifier type.
	pub type BlockId = generic::BlockId<Block>;
	/// Opaque block hash type.
	pub type Hash = <BlakeTwo256 as HashT>::Output;
}

impl_opaque_keys! {
	/// The keys a validator registers (`session.setKeys`): BABE for authoring, GRANDPA for
	/// finality, im-online for the heartbeats that show it is up.
	pub struct SessionKeys {
		pub babe: Babe,
		pub grandpa: Grandpa,
		pub im_online: ImOnline,
	}
}

#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("agora"),
	impl_name: alloc::borrow::Cow::Borrowed("agora"),
	authoring_version: 1,
	// Bump on every change of the runtime's logic; governance enacts upgrades by this number.
	spec_version: 101,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 1,
	system_version: 1,
};

/// Time, in the units the runtime counts it.
pub mod time {
	use crate::{BlockNumber, Moment};

	/// Target block time. BABE authors a block in (nearly) every 6-second slot.
	#[cfg(not(feature = "fast-blocks"))]
	pub const MILLI_SECS_PER_BLOCK: Moment = 6000;
	/// 2-second slots, only in a runtime built to measure what shorter blocks give a round.
	#[cfg(feature = "fast-blocks")]
	pub const MILLI_SECS_PER_BLOCK: Moment = 2000;
	pub const SLOT_DURATION: Moment = MILLI_SECS_PER_BLOCK;

	pub const MINUTES: BlockNumber = 60_000 / (MILLI_SECS_PER_BLOCK as BlockNumber);
	pub const HOURS: BlockNumber = MINUTES * 60;
	pub const DAYS: BlockNumber = HOURS * 24;

	// A BABE epoch is one session: its length is chosen at genesis (pallet-session-timing).

	/// 1 in 4 slots gets a primary (VRF) slot leader; secondary VRF slots fill the rest.
	pub const PRIMARY_PROBABILITY: (u64, u64) = (1, 4);
}

/// The BABE epoch configuration at genesis.
pub const BABE_GENESIS_EPOCH_CONFIG: sp_consensus_babe::BabeEpochConfiguration =
	sp_consensus_babe::BabeEpochConfiguration {
		c: time::PRIMARY_PROBABILITY,
		allowed_slots: sp_consensus_babe::AllowedSlots::PrimaryAndSecondaryVRFSlots,
	};

/// The AGR token: 12 decimals.
pub mod currency {
	use crate::Balance;

	pub const TOKEN_SYMBOL: &str = "AGR";
	pub const TOKEN_DECIMALS: u8 = 12;

	pub const AGR: Balance = 1_000_000_000_000;
	pub const MILLI_AGR: Balance = AGR / 1_000;
	pub const MICRO_AGR: Balance = MILLI_AGR / 1_000;

	/// An account below this balance is reaped: 0.01 AGR.
	pub const EXISTENTIAL_DEPOSIT: Balance = 10 * MILLI_AGR;
}

/// Agora's SS58 address prefix (addresses start with a prefix of their own, not the generic 42).
pub const SS58_PREFIX: u16 = 7306;

/// Alias to 512-bit hash when used in the context of a transaction signature on the chain.
pub type Signature = MultiSignature;

/// An account is the public key of its signer (sr25519, ed25519 or ecdsa).
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;

/// Balance of an account.
pub type Balance = u128;

/// Index of a transaction in the chain.
pub type Nonce = u32;

/// A hash of some data used by the chain.
pub type Hash = sp_core::H256;

/// An index to a block.
pub type BlockNumber = u32;

/// Milliseconds since the Unix epoch.
pub type Moment = u64;

/// The address format for describing accounts.
pub type Address = MultiAddress<AccountId, ()>;

/// Block header type as expected by this runtime.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;

/// Block type as expected by this runtime.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;

/// A Block signed with a Justification.
pub type SignedBlock = generic::SignedBlock<Block>;

/// BlockId type as expected by this runtime.
pub type BlockId = generic::BlockId<Block>;

/// The extensions every signed transaction carries. `CheckMetadataHash` lets offline signers
/// (Ledger and the like) verify what they sign against the runtime's metadata.
pub type TxExtension = (
	frame_system::AuthorizeCall<Runtime>,
	frame_system::CheckNonZeroSender<Runtime>,
	frame_system::CheckSpecVersion<Runtime>,
	frame_system::CheckTxVersion<Runtime>,
	frame_system::CheckGenesis<Runtime>,
	frame_system::CheckEra<Runtime>,
	frame_system::CheckNonce<Runtime>,
	frame_system::CheckWeight<Runtime>,
	pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
	frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
	frame_system::WeightReclaim<Runtime>,
);

/// Unchecked extrinsic type as expected by this runtime.
pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;

/// The payload being signed in transactions.
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// Storage migrations run on the next runtime upgrade. Each is guarded by its pallet's storage
/// version, so it runs once and is a no-op on a chain that already has the new layout.
type Migrations = (
	pallet_contributions::migrations::v1::MigrateV0ToV1<Runtime>,
	pallet_validation::migrations::v1::MigrateV0ToV1<Runtime>,
	pallet_validation::migrations::v2::MigrateV1ToV2<Runtime>,
	pallet_tasks::migrations::v1::MigrateV0ToV1<Runtime>,
);

/// Executive: handles dispatch to the various modules.
pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
	Migrations,
>;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;

	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;

	#[runtime::pallet_index(30)]
	pub type SessionTiming = pallet_session_timing;

	#[runtime::pallet_index(2)]
	pub type Babe = pallet_babe;

	#[runtime::pallet_index(3)]
	pub type Grandpa = pallet_grandpa;

	#[runtime::pallet_index(4)]
	pub type Balances = pallet_balances;

	#[runtime::pallet_index(5)]
	pub type TransactionPayment = pallet_transaction_payment;

	#[runtime::pallet_index(6)]
	pub type Utility = pallet_utility;

	#[runtime::pallet_index(7)]
	pub type Sudo = pallet_sudo;

	// Who produces blocks: validators elected by stake. Staking's genesis must run before
	// the session's, which asks it for the first set.
	#[runtime::pallet_index(31)]
	pub type Authorship = pallet_authorship;

	#[runtime::pallet_index(32)]
	pub type Staking = pallet_staking;

	#[runtime::pallet_index(33)]
	pub type Session = pallet_session;

	#[runtime::pallet_index(34)]
	pub type Historical = pallet_session::historical;

	#[runtime::pallet_index(35)]
	pub type Offences = pallet_offences;

	#[runtime::pallet_index(36)]
	pub type ImOnline = pallet_im_online;

	// Governance.
	#[runtime::pallet_index(8)]
	pub type Scheduler = pallet_scheduler;

	#[runtime::pallet_index(9)]
	pub type Preimage = pallet_preimage;

	#[runtime::pallet_index(10)]
	pub type Referenda = pallet_referenda;

	#[runtime::pallet_index(11)]
	pub type ConvictionVoting = pallet_conviction_voting;

	#[runtime::pallet_index(12)]
	pub type Treasury = pallet_treasury;

	#[runtime::pallet_index(13)]
	pub type Governance = pallet_governance;

	// The training protocol.
	#[runtime::pallet_index(20)]
	pub type Contributions = pallet_contributions;

	#[runtime::pallet_index(21)]
	pub type Tasks = pallet_tasks;

	#[runtime::pallet_index(22)]
	pub type Validation = pallet_validation;

	#[runtime::pallet_index(23)]
	pub type Rewards = pallet_rewards;

	// The inference market.
	#[runtime::pallet_index(24)]
	pub type Inference = pallet_inference;
}
