//! # pallet-inference
//!
//! The other half of Agora's economy: token holders spend AGR on predictions from the models
//! the network trained.
//!
//! ## Terms
//!
//! * **Catalogue**: every completed round's model becomes a version of its job's entry
//!   ([`ModelCatalogue::record_version`], called by pallet-tasks), with the validators'
//!   consensus holdout score; the owner (the job's submitter) pays a deposit per version, sets
//!   the license and who may use it (`set_terms`), and may `delist` an entry nobody serves.
//! * **Offers**: an eligible worker (its stake at risk) `offer`s to serve a version at a price
//!   per request, naming its libp2p peer id.
//! * **Channels**: a client prepays into a channel with a provider (`open_channel`, held like
//!   a job's escrow). Requests and answers travel over libp2p; after each answer the client
//!   signs a [`Receipt`] for everything it owes so far, ending in the head of the transcript
//!   hash chain ([`transcript_step`]) over every request's input and answer hashes. The
//!   provider `settle`s the latest receipt when it likes: one transaction for any number of
//!   requests. A receipt is bound to its channel and chain ([`receipt_payload`]) and settles
//!   only requests beyond the last settled count: forged or replayed receipts are rejected.
//! * **Batches and audits**: each settlement is a batch, still held from the client. At
//!   `audit_delay` blocks later its audit is drawn from randomness that did not exist when the
//!   provider answered: with probability `audit_rate`, one of its requests is audited by
//!   `auditors` validators drawn by stake (never the provider or the client), who re-run the
//!   model on the input, commit ([`audit_commitment_of`]) and reveal a verdict. A strict
//!   majority of the revealed stake for `Wrong` or `Unavailable` (the provider did not serve
//!   the audited evidence) fails the audit: the provider is slashed `wrong_answer_slash`, the
//!   client refunded the batch. The client may also `dispute` any request of a batch with a
//!   bond within `dispute_window`. Auditors on the outcome's side earn `audit_reward` from the
//!   audit pot; those against a decided outcome are slashed `dissent_slash`.
//! * **Payment**: after the dispute window (and any audit), `clear_batch` pays the batch: the
//!   `protocol_fee` to the treasury, the `audit_fee` to the audit pot, the rest to the provider.
//! * **Challenges**: a provider that takes a request and does not answer it can be made to:
//!   the client puts the request's input on chain (`challenge`, holding `dispute_bond`); the
//!   provider answers it on chain within `close_delay` blocks, at least `MinAnswerWindow`
//!   (`answer_challenge`, free of fees, with the client's latest receipt settled in the same
//!   batch), and the answer becomes the channel's next request, settled at the channel's price,
//!   drawn for audit and disputable like any other. Unanswered, anyone may `expire_challenge`:
//!   the provider is slashed `wrong_answer_slash` (once per answer window) and the channel
//!   closes at once, refunding the client. An input the model cannot take is answered with an
//!   empty output, which auditors check like any answer.
//! * **Closing**: the client `close_channel`s (the provider has `close_delay` blocks to settle
//!   its latest receipt) or the provider does (at once); `finish_close` then refunds the
//!   unsettled balance. A provider that vanishes costs its clients nothing but the wait.
//!
//! Nothing is burned and nothing is minted: every amount moves between the client, the
//! provider, the treasury and the audit pot (slashed stake goes where pallet-contributions
//! sends it).

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

mod audits;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod catalogue;
mod challenges;
mod channels;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use agora_primitives::{BlobHash, JobId, RoundIndex, H256};
pub use types::*;
pub use weights::WeightInfo;

use codec::Encode;

/// Domain tag of [`receipt_payload`].
pub const RECEIPT_TAG: [u8; 24] = *b"agora/inference-receipt1";
/// Domain tag of [`transcript_start`].
pub const TRANSCRIPT_TAG: [u8; 27] = *b"agora/inference-transcript1";
/// Domain tag of [`audit_commitment_of`].
pub const AUDIT_TAG: [u8; 14] = *b"agora/audit/v1";

/// The bytes a client signs for `receipt` on the chain whose genesis hash is `genesis`:
/// `SCALE(RECEIPT_TAG, genesis, receipt)`.
pub fn receipt_payload<Balance: Encode, Hash: Encode>(
	genesis: &Hash,
	receipt: &Receipt<Balance>,
) -> alloc::vec::Vec<u8> {
	(RECEIPT_TAG, genesis, receipt).encode()
}

/// The transcript head of a channel before any request: `blake2_256(SCALE(TRANSCRIPT_TAG,
/// channel))`.
pub fn transcript_start(channel: ChannelId) -> H256 {
	H256(sp_io::hashing::blake2_256(&(TRANSCRIPT_TAG, channel).encode()))
}

/// The transcript head after request `index` (1-based): `blake2_256(SCALE(previous, index,
/// input, output))`, where `input` and `output` are the blake2-256 hashes of the request's
/// input and of the provider's answer.
pub fn transcript_step(previous: H256, index: u64, input: H256, output: H256) -> H256 {
	H256(sp_io::hashing::blake2_256(&(previous, index, input, output).encode()))
}

/// The commitment an auditor submits: `blake2_256(SCALE(AUDIT_TAG, audit, verdict, salt,
/// who))`. Bound to its author, so one auditor's commitment is worthless to another.
pub fn audit_commitment_of<AccountId: Encode>(
	audit: AuditId,
	verdict: AuditVerdict,
	salt: &[u8; 32],
	who: &AccountId,
) -> H256 {
	H256(sp_io::hashing::blake2_256(&(AUDIT_TAG, audit, verdict, salt, who).encode()))
}

/// The balance type.
pub type BalanceOf<T> = <<T as Config>::Currency as frame_support::traits::fungible::Inspect<
	<T as frame_system::Config>::AccountId,
>>::Balance;
/// This pallet's parameters.
pub type ParamsOf<T> = Params<BalanceOf<T>, frame_system::pallet_prelude::BlockNumberFor<T>>;
/// A catalogue entry.
pub type ModelEntryOf<T> = ModelEntry<<T as frame_system::Config>::AccountId, BalanceOf<T>>;
/// A channel.
pub type ChannelOf<T> = Channel<
	<T as frame_system::Config>::AccountId,
	BalanceOf<T>,
	frame_system::pallet_prelude::BlockNumberFor<T>,
>;
/// A batch.
pub type BatchOf<T> = Batch<BalanceOf<T>, frame_system::pallet_prelude::BlockNumberFor<T>>;
/// A challenge.
pub type ChallengeOf<T> = Challenge<BalanceOf<T>, frame_system::pallet_prelude::BlockNumberFor<T>>;
/// An audit.
pub type AuditOf<T> = Audit<
	<T as frame_system::Config>::AccountId,
	BalanceOf<T>,
	frame_system::pallet_prelude::BlockNumberFor<T>,
	<T as Config>::MaxAuditors,
>;

/// Benchmarks only: signs receipts as a client would.
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper<AccountId, Signature> {
	/// A fresh client account and its signature of `payload`.
	fn sign(payload: &[u8]) -> (AccountId, Signature);
}

#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use agora_primitives::{ParticipantRegistry, PeerId};
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, Mutate, MutateHold},
			Randomness,
		},
		PalletId,
	};
	use frame_system::pallet_prelude::*;
	use sp_runtime::{
		traits::{IdentifyAccount, Verify},
		Perbill,
	};

	/// The in-code storage version.
	pub const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	/// Why this pallet holds funds.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A client's prepaid channel balance.
		ChannelEscrow,
		/// A channel's storage deposit.
		ChannelDeposit,
		/// A provider's offer deposit.
		OfferDeposit,
		/// A model owner's deposit for its listed versions.
		CatalogueDeposit,
		/// A disputing client's bond.
		DisputeBond,
		/// A challenging client's bond.
		ChallengeBond,
	}

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency.
		type Currency: Inspect<Self::AccountId>
			+ Mutate<Self::AccountId>
			+ MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>;
		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;
		/// Provider and auditor eligibility, stakes and slashing (pallet-contributions).
		type Registry: ParticipantRegistry<Self::AccountId, BalanceOf<Self>>;
		/// Randomness for audit draws (runtime: BABE parent-block VRF randomness).
		type Randomness: Randomness<Self::Hash, BlockNumberFor<Self>>;
		/// A client's signature of a receipt (runtime: `MultiSignature`).
		type Signature: Verify<Signer = Self::Signer> + Parameter;
		/// Who signs receipts: identifies the client's account.
		type Signer: IdentifyAccount<AccountId = Self::AccountId>;
		/// Receives protocol fees.
		type Treasury: Get<Self::AccountId>;
		/// The audit pot's account id.
		#[pallet::constant]
		type PalletId: Get<PalletId>;
		/// Origin allowed to change [`Params`].
		type ParamsOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Parameters used until genesis or governance sets them.
		type DefaultParams: Get<ParamsOf<Self>>;
		/// Maximum versions listed per model.
		#[pallet::constant]
		type MaxVersions: Get<u32>;
		/// Maximum offers per provider.
		#[pallet::constant]
		type MaxOffersPerProvider: Get<u32>;
		/// Maximum pending (uncleared) batches per channel.
		#[pallet::constant]
		type MaxPendingBatches: Get<u32>;
		/// Maximum audit draws per block.
		#[pallet::constant]
		type MaxDrawsPerBlock: Get<u32>;
		/// Maximum validators per audit.
		#[pallet::constant]
		type MaxAuditors: Get<u32>;
		/// The shortest time a provider has to answer a challenge, whatever `close_delay` is.
		#[pallet::constant]
		type MinAnswerWindow: Get<BlockNumberFor<Self>>;
		/// Weights.
		type WeightInfo: WeightInfo;
		/// Benchmarks only: signs receipts.
		#[cfg(feature = "runtime-benchmarks")]
		type BenchmarkHelper: BenchmarkHelper<Self::AccountId, Self::Signature>;
	}

	#[pallet::type_value]
	pub fn DefaultParamsValue<T: Config>() -> ParamsOf<T> {
		T::DefaultParams::get()
	}

	/// The pallet's parameters.
	#[pallet::storage]
	pub type ProtocolParams<T: Config> =
		StorageValue<_, ParamsOf<T>, ValueQuery, DefaultParamsValue<T>>;

	/// The catalogue, by the job that trained each model.
	#[pallet::storage]
	pub type Models<T: Config> = StorageMap<_, Twox64Concat, ModelId, ModelEntryOf<T>>;

	/// The listed versions of each model, by round.
	#[pallet::storage]
	pub type Versions<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		ModelId,
		Twox64Concat,
		RoundIndex,
		ModelVersion<BlockNumberFor<T>>,
	>;

	/// Offers, by provider and model.
	#[pallet::storage]
	pub type Offers<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Twox64Concat,
		ModelId,
		Offer<BalanceOf<T>>,
	>;

	/// Number of offers of each provider.
	#[pallet::storage]
	pub type OfferCount<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// The next channel id.
	#[pallet::storage]
	pub type NextChannel<T: Config> = StorageValue<_, ChannelId, ValueQuery>;

	/// Channels, open or closing.
	#[pallet::storage]
	pub type Channels<T: Config> = StorageMap<_, Twox64Concat, ChannelId, ChannelOf<T>>;

	/// Number of channels each provider serves (its stake stays slashable while any exists).
	#[pallet::storage]
	pub type ProviderChannels<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// The next batch id.
	#[pallet::storage]
	pub type NextBatch<T: Config> = StorageValue<_, BatchId, ValueQuery>;

	/// Settled batches not yet paid or refunded.
	#[pallet::storage]
	pub type Batches<T: Config> = StorageMap<_, Twox64Concat, BatchId, BatchOf<T>>;

	/// Batches whose audit is drawn at each block.
	#[pallet::storage]
	pub type PendingDraws<T: Config> = StorageMap<
		_,
		Twox64Concat,
		BlockNumberFor<T>,
		BoundedVec<BatchId, T::MaxDrawsPerBlock>,
		ValueQuery,
	>;

	/// The next audit id.
	#[pallet::storage]
	pub type NextAudit<T: Config> = StorageValue<_, AuditId, ValueQuery>;

	/// Audits in progress.
	#[pallet::storage]
	pub type Audits<T: Config> = StorageMap<_, Twox64Concat, AuditId, AuditOf<T>>;

	/// Number of audits in progress each validator is drawn for (its stake stays slashable).
	#[pallet::storage]
	pub type AuditorDuties<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// Requests put on chain by clients and not answered yet, by provider and channel (at most
	/// one per channel).
	#[pallet::storage]
	pub type Challenges<T: Config> = StorageDoubleMap<
		_,
		Blake2_128Concat,
		T::AccountId,
		Twox64Concat,
		ChannelId,
		ChallengeOf<T>,
	>;

	/// When each provider was last slashed for an unanswered challenge (it is slashed at most
	/// once per answer window). One entry per provider ever slashed so.
	#[pallet::storage]
	pub type ChallengeSlashedAt<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, BlockNumberFor<T>>;

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
			Pallet::<T>::endow_pot();
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A completed round's model (content hash `weights`) was listed as a version of `model`.
		VersionListed { model: ModelId, round: RoundIndex, weights: BlobHash, score: Perbill },
		/// A completed round's model could not be listed: its owner could not pay the deposit,
		/// or the entry has `MaxVersions` versions.
		VersionNotListed { model: ModelId, round: RoundIndex },
		/// The owner set the license and access of `model`.
		TermsSet { model: ModelId, license: BoundedVec<u8, MaxLicenseLen>, access: Access },
		/// The owner removed `model` and its `versions` from the catalogue; `deposit` returned.
		ModelDelisted { model: ModelId, versions: u32, deposit: BalanceOf<T> },
		/// `provider` offers `model`'s `version` at `price` per request (new or changed).
		Offered {
			provider: T::AccountId,
			model: ModelId,
			version: RoundIndex,
			price: BalanceOf<T>,
			peer_id: PeerId,
		},
		/// `provider` withdrew its offer of `model` (its open channels go on until closed).
		OfferWithdrawn { provider: T::AccountId, model: ModelId },
		/// `client` prepaid `balance` into `channel` with `provider`.
		ChannelOpened {
			channel: ChannelId,
			client: T::AccountId,
			provider: T::AccountId,
			model: ModelId,
			version: RoundIndex,
			price: BalanceOf<T>,
			balance: BalanceOf<T>,
		},
		/// The client added `amount` to `channel`.
		ChannelToppedUp { channel: ChannelId, amount: BalanceOf<T> },
		/// The provider settled requests `first..=last` of `channel` for `amount` as `batch`;
		/// its audit is drawn at block `draw_at`.
		Settled {
			channel: ChannelId,
			batch: BatchId,
			first: u64,
			last: u64,
			amount: BalanceOf<T>,
			draw_at: BlockNumberFor<T>,
		},
		/// `batch` was not drawn for audit (or no validator could audit it).
		AuditNotDrawn { batch: BatchId },
		/// The client disputed request `request` of `batch`; its auditors are drawn at block
		/// `draw_at`.
		Disputed { batch: BatchId, request: u64, draw_at: BlockNumberFor<T> },
		/// `audit` of request `request` of `batch` started; `auditors` commit until
		/// `commit_deadline`, reveal until `reveal_deadline`.
		AuditStarted {
			audit: AuditId,
			batch: BatchId,
			request: u64,
			disputed: bool,
			auditors: BoundedVec<T::AccountId, T::MaxAuditors>,
			commit_deadline: BlockNumberFor<T>,
			reveal_deadline: BlockNumberFor<T>,
		},
		/// An auditor committed.
		AuditCommitted { audit: AuditId, auditor: T::AccountId },
		/// An auditor revealed.
		AuditRevealed { audit: AuditId, auditor: T::AccountId, verdict: AuditVerdict },
		/// `audit` of `batch` concluded: on `Failed`, the provider lost `slashed` and the
		/// client got `refunded` back.
		AuditConcluded {
			audit: AuditId,
			batch: BatchId,
			outcome: AuditOutcome,
			slashed: BalanceOf<T>,
			refunded: BalanceOf<T>,
		},
		/// An auditor was paid `amount` for a verdict on the outcome's side.
		AuditorRewarded { audit: AuditId, auditor: T::AccountId, amount: BalanceOf<T> },
		/// An auditor was slashed `amount` for a verdict against a decided outcome.
		AuditorSlashed { audit: AuditId, auditor: T::AccountId, amount: BalanceOf<T> },
		/// `batch` was paid: `provider_paid` to the provider, fees to the treasury and the pot.
		BatchCleared {
			batch: BatchId,
			channel: ChannelId,
			provider_paid: BalanceOf<T>,
			protocol_fee: BalanceOf<T>,
			audit_fee: BalanceOf<T>,
		},
		/// The client of `channel` put a request on chain for `provider` to answer by block
		/// `deadline`.
		Challenged { channel: ChannelId, provider: T::AccountId, deadline: BlockNumberFor<T> },
		/// The provider answered the challenge of `channel` on chain with `output`: it is the
		/// channel's request `request`, settled for `amount` (the price, or what was left of the
		/// balance) in `batch` (with the receipt the provider settled with it, if any).
		ChallengeAnswered {
			channel: ChannelId,
			request: u64,
			output: BoundedVec<u8, MaxChallengeBytes>,
			amount: BalanceOf<T>,
			batch: BatchId,
		},
		/// The provider of `channel` did not answer its challenge in time: it lost `slashed`
		/// (nothing if it was already slashed for a challenge within the answer window), and
		/// the channel closes at once.
		ChallengeExpired { channel: ChannelId, provider: T::AccountId, slashed: BalanceOf<T> },
		/// `channel` closes at `closes_at`: no settlement after, `finish_close` from then.
		ChannelClosing { channel: ChannelId, closes_at: BlockNumberFor<T> },
		/// `channel` was closed; the client got `refunded` (unsettled balance and deposit).
		ChannelClosed { channel: ChannelId, refunded: BalanceOf<T> },
		/// The parameters changed.
		ParamsUpdated { params: ParamsOf<T> },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No such model in the catalogue.
		UnknownModel,
		/// No such version of the model.
		UnknownVersion,
		/// The caller does not own the model.
		NotOwner,
		/// The model still has offers.
		ModelServed,
		/// The caller is not an eligible worker.
		NotEligible,
		/// The provider has `MaxOffersPerProvider` offers.
		TooManyOffers,
		/// The price is zero.
		ZeroPrice,
		/// No such offer.
		UnknownOffer,
		/// The model's terms do not let the caller use it.
		AccessDenied,
		/// The offer's price is above the caller's limit.
		PriceAboveLimit,
		/// A provider cannot be its own client.
		SelfDealing,
		/// The amount does not pay for one request.
		BalanceTooLow,
		/// No such channel.
		UnknownChannel,
		/// The caller is not the channel's client.
		NotClient,
		/// The caller is not the channel's provider.
		NotProvider,
		/// The caller is neither the channel's client nor its provider.
		NotParticipant,
		/// The channel is closing or closed.
		ChannelClosing,
		/// The receipt names another channel.
		WrongChannel,
		/// The signature is not the client's over this receipt on this chain.
		BadSignature,
		/// The receipt settles no request beyond the last settled one (or owes less).
		StaleReceipt,
		/// The receipt asks more than the channel's price per request.
		Overcharged,
		/// The channel's balance does not cover the receipt.
		InsufficientBalance,
		/// The channel has `MaxPendingBatches` uncleared batches.
		TooManyBatches,
		/// `MaxDrawsPerBlock` audits are already drawn at that block; settle in the next one.
		DrawQueueFull,
		/// No such batch.
		UnknownBatch,
		/// The batch's dispute window (or its audit draw) is still open.
		DisputeWindowOpen,
		/// The batch's dispute window is over.
		DisputeWindowClosed,
		/// The batch is under audit.
		UnderAudit,
		/// The request is not in the batch.
		RequestOutsideBatch,
		/// No validator can audit this batch.
		NoAuditors,
		/// No such audit.
		UnknownAudit,
		/// The caller is not an auditor of this audit.
		NotAuditor,
		/// The commit period is over.
		CommitClosed,
		/// The reveal period has not started.
		RevealNotOpen,
		/// The reveal period is over.
		RevealClosed,
		/// The caller already committed.
		AlreadyCommitted,
		/// The caller did not commit.
		NotCommitted,
		/// The caller already revealed.
		AlreadyRevealed,
		/// The reveal does not match the commitment.
		CommitmentMismatch,
		/// The audit's reveal period is not over.
		AuditRunning,
		/// The channel's close delay is running (or it is not closing).
		CloseDelayRunning,
		/// The channel has uncleared batches.
		BatchesPending,
		/// A parameter is outside its bounds.
		ParamOutOfBounds,
		/// The channel already has a challenge waiting for its answer.
		ChallengePending,
		/// The channel has no challenge waiting.
		NoChallenge,
		/// The challenge's answer deadline has passed.
		ChallengeExpired,
		/// The challenge's answer deadline has not passed yet.
		AnswerWindowOpen,
		/// A challenge needs a non-empty input.
		EmptyInput,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			Self::draw_audits(now)
		}

		fn integrity_test() {
			assert!(T::MaxVersions::get() > 0, "MaxVersions must be positive");
			assert!(T::MaxOffersPerProvider::get() > 0, "MaxOffersPerProvider must be positive");
			assert!(T::MaxPendingBatches::get() > 0, "MaxPendingBatches must be positive");
			assert!(T::MaxDrawsPerBlock::get() > 0, "MaxDrawsPerBlock must be positive");
			assert!(T::MaxAuditors::get() > 0, "MaxAuditors must be positive");
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
		/// Set the license and access of a catalogued model.
		///
		/// Origin: the model's owner. Emits `TermsSet`.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::set_terms())]
		pub fn set_terms(
			origin: OriginFor<T>,
			model: ModelId,
			license: BoundedVec<u8, MaxLicenseLen>,
			access: Access,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_set_terms(who, model, license, access)
		}

		/// Remove a model and all its versions from the catalogue, returning the deposit.
		///
		/// Origin: the model's owner, once no provider offers it. Emits `ModelDelisted`.
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::delist(T::MaxVersions::get()))]
		pub fn delist(origin: OriginFor<T>, model: ModelId) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			let versions = Self::do_delist(who, model)?;
			Ok(Some(T::WeightInfo::delist(versions)).into())
		}

		/// Offer to serve `version` of `model` at `price` per request, reachable at `peer_id`
		/// (or change one's offer; open channels keep their price).
		///
		/// Origin: an eligible worker (its stake answers for its answers). A new offer holds
		/// `offer_deposit`. Emits `Offered`.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::offer())]
		pub fn offer(
			origin: OriginFor<T>,
			model: ModelId,
			version: RoundIndex,
			price: BalanceOf<T>,
			peer_id: PeerId,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_offer(who, model, version, price, peer_id)
		}

		/// Withdraw one's offer of `model`, returning its deposit. Channels already open go
		/// on until closed.
		///
		/// Origin: the provider. Emits `OfferWithdrawn`.
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::withdraw_offer())]
		pub fn withdraw_offer(origin: OriginFor<T>, model: ModelId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_withdraw_offer(who, model)
		}

		/// Open a channel with `provider` for its offer of `model`, prepaying `amount` (held)
		/// at the offer's price, which must not exceed `max_price`.
		///
		/// Origin: anyone the model's terms allow, other than the provider. Holds `amount`
		/// and `channel_deposit`. Emits `ChannelOpened`.
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::open_channel())]
		pub fn open_channel(
			origin: OriginFor<T>,
			provider: T::AccountId,
			model: ModelId,
			max_price: BalanceOf<T>,
			amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_open_channel(who, provider, model, max_price, amount)
		}

		/// Add `amount` to a channel's prepaid balance.
		///
		/// Origin: the channel's client, before it closes. Emits `ChannelToppedUp`.
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::top_up())]
		pub fn top_up(
			origin: OriginFor<T>,
			channel: ChannelId,
			amount: BalanceOf<T>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_top_up(who, channel, amount)
		}

		/// Settle the client's latest receipt: every request it counts beyond the last settled
		/// one becomes a batch, paid after its dispute window unless an audit fails.
		///
		/// Origin: the channel's provider, until the channel closes. `signature` is the
		/// client's over [`receipt_payload`]. Emits `Settled`.
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::settle())]
		pub fn settle(
			origin: OriginFor<T>,
			receipt: Receipt<BalanceOf<T>>,
			signature: T::Signature,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_settle(who, receipt, signature)
		}

		/// Pay a batch whose dispute window is over and that is not under audit.
		///
		/// Origin: anyone. Emits `BatchCleared`.
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::clear_batch())]
		pub fn clear_batch(origin: OriginFor<T>, batch: BatchId) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_clear_batch(batch)
		}

		/// Dispute request `request` of `batch`: validators audit it. Its auditors are drawn
		/// `audit_delay` blocks later, from randomness the client could not know.
		///
		/// Origin: the channel's client, within the batch's dispute window, while the batch is
		/// not under audit or dispute. Holds `dispute_bond`: returned with a refund of the batch
		/// if the audit fails (or if no validator can audit), paid to the provider if it passes.
		/// Emits `Disputed`, then `AuditStarted` at the draw.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::dispute())]
		pub fn dispute(origin: OriginFor<T>, batch: BatchId, request: u64) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_dispute(who, batch, request)
		}

		/// Commit to an audit verdict: `commitment` is [`audit_commitment_of`].
		///
		/// Origin: an auditor of `audit`, until its commit deadline. Emits `AuditCommitted`.
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::commit_audit())]
		pub fn commit_audit(
			origin: OriginFor<T>,
			audit: AuditId,
			commitment: H256,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_commit_audit(who, audit, commitment)
		}

		/// Reveal the committed audit verdict.
		///
		/// Origin: an auditor that committed, after the commit deadline and until the reveal
		/// deadline. Emits `AuditRevealed`.
		#[pallet::call_index(10)]
		#[pallet::weight(T::WeightInfo::reveal_audit())]
		pub fn reveal_audit(
			origin: OriginFor<T>,
			audit: AuditId,
			verdict: AuditVerdict,
			salt: [u8; 32],
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_reveal_audit(who, audit, verdict, salt)
		}

		/// Conclude an audit after its reveal deadline (or once every auditor revealed):
		/// slash and refund, or let the batch stand; pay and slash the auditors.
		///
		/// Origin: anyone. Emits `AuditConcluded`.
		#[pallet::call_index(11)]
		#[pallet::weight(T::WeightInfo::conclude_audit(T::MaxAuditors::get()))]
		pub fn conclude_audit(origin: OriginFor<T>, audit: AuditId) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_conclude_audit(audit)
		}

		/// Start closing a channel: by its client, after `close_delay` blocks (the provider
		/// may still settle until then); by its provider, at once.
		///
		/// Origin: the channel's client or provider. Emits `ChannelClosing`.
		#[pallet::call_index(12)]
		#[pallet::weight(T::WeightInfo::close_channel())]
		pub fn close_channel(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_close_channel(who, channel)
		}

		/// Finish closing a channel whose batches are all cleared or refunded: the client gets
		/// its unsettled balance and deposit back.
		///
		/// Origin: anyone, from the channel's `closes_at`. Emits `ChannelClosed`.
		#[pallet::call_index(13)]
		#[pallet::weight(T::WeightInfo::finish_close())]
		pub fn finish_close(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_finish_close(channel)
		}

		/// Put a request the provider did not answer over the network on chain: the provider
		/// must answer it with `answer_challenge` within `close_delay` blocks (at least
		/// `MinAnswerWindow`).
		///
		/// Origin: the channel's client, while the channel is open, has no other challenge, has
		/// fewer than twice `MaxPendingBatches` batches pending, and its unsettled balance pays
		/// for a request. Holds `dispute_bond` until the challenge ends (returned either way).
		/// Emits `Challenged`.
		#[pallet::call_index(15)]
		#[pallet::weight(T::WeightInfo::challenge())]
		pub fn challenge(
			origin: OriginFor<T>,
			channel: ChannelId,
			input: BoundedVec<u8, MaxChallengeBytes>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			Self::do_challenge(who, channel, input)
		}

		/// Answer a challenge on chain: the answer becomes the channel's next request, after
		/// the requests of `receipt` (the client's latest receipt, checked as `settle` checks
		/// it) if one is given, and they are settled together as one batch at the channel's
		/// price, drawn for audit and disputable as any other. Requests served but in no
		/// settled receipt are superseded. The empty output answers an input the model cannot
		/// take.
		///
		/// Origin: the channel's provider, by the challenge's deadline. Free of fees when it
		/// succeeds. Emits `Settled` for the batch and `ChallengeAnswered`.
		#[pallet::call_index(16)]
		#[pallet::weight(T::WeightInfo::answer_challenge())]
		pub fn answer_challenge(
			origin: OriginFor<T>,
			channel: ChannelId,
			output: BoundedVec<u8, MaxChallengeBytes>,
			receipt: Option<(Receipt<BalanceOf<T>>, T::Signature)>,
		) -> DispatchResultWithPostInfo {
			let who = ensure_signed(origin)?;
			Self::do_answer_challenge(who, channel, output, receipt)?;
			Ok(Pays::No.into())
		}

		/// End a challenge its provider did not answer by the deadline: the provider is
		/// slashed `wrong_answer_slash` of its worker stake (once per answer window, however
		/// many of its challenges expire), the client's bond returned and the channel closed at
		/// once (`finish_close` refunds the client).
		///
		/// Origin: anyone, after the deadline. Emits `ChallengeExpired` and `ChannelClosing`.
		#[pallet::call_index(17)]
		#[pallet::weight(T::WeightInfo::expire_challenge())]
		pub fn expire_challenge(origin: OriginFor<T>, channel: ChannelId) -> DispatchResult {
			ensure_signed(origin)?;
			Self::do_expire_challenge(channel)
		}

		/// Set the parameters (governance). Every field is checked against its bounds.
		#[pallet::call_index(14)]
		#[pallet::weight(T::WeightInfo::set_params())]
		pub fn set_params(origin: OriginFor<T>, params: ParamsOf<T>) -> DispatchResult {
			T::ParamsOrigin::ensure_origin(origin)?;
			Self::check_params(&params)?;
			ProtocolParams::<T>::put(params);
			Self::deposit_event(Event::ParamsUpdated { params });
			Ok(())
		}
	}
}
