//! Challenges: a request the provider did not answer over the network, put on chain by its
//! client, answered on chain or punished.
//!
//! Who could profit, and what stops them:
//! - a provider that takes channels and answers nothing: a challenge makes it answer on chain
//!   within `close_delay` blocks (at least `MinAnswerWindow`) or lose `wrong_answer_slash` of
//!   its stake, and the channel closes at once, refunding the client;
//! - clients that challenge many channels of a provider while it is unreachable: the provider
//!   is slashed once per answer window, however many expire;
//! - a provider that answers a challenge with anything: the answer joins the channel's
//!   transcript in a batch drawn for audit like any other and disputable by the client; room
//!   for that batch cannot be refused (answers may exceed `MaxPendingBatches`, up to twice it,
//!   and a full draw queue pushes the draw to a later block);
//! - a provider that would lose the answers it served but had not settled: it settles the
//!   client's latest receipt in the same call, as the same batch;
//! - a client that challenges to get answers for free: the answer is settled at the channel's
//!   price, and a challenge needs the unsettled balance to pay for it;
//! - a client that challenges to cost an honest provider: answering is free of fees, and the
//!   provider is paid the price of the request;
//! - a provider that closes the channel to escape a challenge: the channel cannot finish
//!   closing (nor its stake unbond) while the challenge waits.

use crate::{pallet::*, transcript_step, types::*, BalanceOf};
use agora_primitives::{ParticipantRegistry, Role, H256};
use frame_support::{
	ensure,
	pallet_prelude::DispatchResult,
	traits::{fungible::MutateHold, tokens::Precision, Get},
	BoundedVec,
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{Saturating, Zero};

/// Blocks after the first one that an answer's audit draw may be pushed to when draw queues are
/// full (a provider filling them with its own settlements must fill all of them).
pub(crate) const DRAW_SEARCH: u32 = 8;

impl<T: Config> Pallet<T> {
	/// Blocks a provider has to answer a challenge: the close delay, but never less than
	/// `MinAnswerWindow` (governance cannot make a network hiccup slashable).
	pub(crate) fn answer_window() -> BlockNumberFor<T> {
		ProtocolParams::<T>::get().close_delay.max(T::MinAnswerWindow::get())
	}

	pub(crate) fn do_challenge(
		who: T::AccountId,
		id: ChannelId,
		input: BoundedVec<u8, MaxChallengeBytes>,
	) -> DispatchResult {
		let channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(channel.client == who, Error::<T>::NotClient);
		ensure!(channel.closes_at.is_none(), Error::<T>::ChannelClosing);
		ensure!(!input.is_empty(), Error::<T>::EmptyInput);
		ensure!(
			!Challenges::<T>::contains_key(&channel.provider, id),
			Error::<T>::ChallengePending
		);
		ensure!(
			channel.pending_amount.saturating_add(channel.price) <= channel.balance,
			Error::<T>::InsufficientBalance
		);
		// Settlements stop at `MaxPendingBatches`; answers to challenges may go beyond it, up to
		// twice that, so that a provider cannot refuse them room by filling its batches.
		ensure!(
			channel.pending_batches < T::MaxPendingBatches::get().saturating_mul(2),
			Error::<T>::TooManyBatches
		);
		let bond = ProtocolParams::<T>::get().dispute_bond;
		T::Currency::hold(&HoldReason::ChallengeBond.into(), &who, bond)?;
		let deadline =
			frame_system::Pallet::<T>::block_number().saturating_add(Self::answer_window());
		Challenges::<T>::insert(&channel.provider, id, Challenge { input, bond, deadline });
		Self::deposit_event(Event::Challenged {
			channel: id,
			provider: channel.provider,
			deadline,
		});
		Ok(())
	}

	pub(crate) fn do_answer_challenge(
		who: T::AccountId,
		id: ChannelId,
		output: BoundedVec<u8, MaxChallengeBytes>,
		settle: Option<(Receipt<BalanceOf<T>>, T::Signature)>,
	) -> DispatchResult {
		let mut channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(channel.provider == who, Error::<T>::NotProvider);
		let challenge = Challenges::<T>::get(&who, id).ok_or(Error::<T>::NoChallenge)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now <= challenge.deadline, Error::<T>::ChallengeExpired);
		let first = channel.settled_requests.saturating_add(1);
		let transcript_before = channel.transcript;
		// The client's latest receipt, settled in the same batch: the answers it signs for are
		// never lost to the challenge, whatever the channel's batches or the draw queue.
		let mut amount = Zero::zero();
		if let Some((receipt, signature)) = settle {
			ensure!(receipt.channel == id, Error::<T>::WrongChannel);
			amount = Self::check_receipt(&channel, &receipt, &signature)?;
			channel.settled_requests = receipt.requests;
			channel.settled_amount = receipt.amount;
			channel.transcript = receipt.transcript;
			channel.pending_amount = channel.pending_amount.saturating_add(amount);
		}
		let request = channel.settled_requests.saturating_add(1);
		let transcript = transcript_step(
			channel.transcript,
			request,
			H256(sp_io::hashing::blake2_256(&challenge.input)),
			H256(sp_io::hashing::blake2_256(&output)),
		);
		// The challenge checked that the balance paid for it; the receipt may have spent it.
		let paid = channel.price.min(channel.balance.saturating_sub(channel.pending_amount));
		amount = amount.saturating_add(paid);
		channel.pending_amount = channel.pending_amount.saturating_add(paid);
		channel.settled_requests = request;
		channel.settled_amount = channel.settled_amount.saturating_add(paid);
		channel.transcript = transcript;
		channel.pending_batches = channel.pending_batches.saturating_add(1);
		let batch = NextBatch::<T>::get();
		NextBatch::<T>::put(batch.saturating_add(1));
		// Not drawn at all only if every draw queue searched is full: the client may dispute.
		let (status, draw_at) = match Self::queue_draw(now, batch) {
			Some(at) => (BatchStatus::AwaitingDraw, at),
			None => (BatchStatus::Open, now),
		};
		Batches::<T>::insert(
			batch,
			Batch {
				channel: id,
				first_request: first,
				last_request: request,
				amount,
				transcript_before,
				transcript,
				settled_at: now,
				status,
				dispute: None,
			},
		);
		Self::deposit_event(Event::Settled {
			channel: id,
			batch,
			first,
			last: request,
			amount,
			draw_at,
		});
		if status == BatchStatus::Open {
			Self::deposit_event(Event::AuditNotDrawn { batch });
		}
		Channels::<T>::insert(id, &channel);
		Challenges::<T>::remove(&who, id);
		Self::release_challenge_bond(&channel.client, challenge.bond);
		Self::deposit_event(Event::ChallengeAnswered {
			channel: id,
			request,
			output,
			amount: paid,
			batch,
		});
		Ok(())
	}

	/// Queues `batch`'s audit draw in the first block from `audit_delay` blocks on that has room
	/// (up to [`DRAW_SEARCH`] blocks on); `None` if none has.
	fn queue_draw(now: BlockNumberFor<T>, batch: BatchId) -> Option<BlockNumberFor<T>> {
		let first = now.saturating_add(ProtocolParams::<T>::get().audit_delay);
		(0..DRAW_SEARCH).find_map(|offset| {
			let at = first.saturating_add(offset.into());
			PendingDraws::<T>::try_append(at, batch).ok().map(|()| at)
		})
	}

	pub(crate) fn do_expire_challenge(id: ChannelId) -> DispatchResult {
		let mut channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		let provider = channel.provider.clone();
		let challenge = Challenges::<T>::get(&provider, id).ok_or(Error::<T>::NoChallenge)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now > challenge.deadline, Error::<T>::AnswerWindowOpen);
		// Once per answer window: many channels challenged at once while the provider was
		// unreachable cost it one slash, not one per channel.
		let slashed = match ChallengeSlashedAt::<T>::get(&provider) {
			Some(at) if now < at.saturating_add(Self::answer_window()) => Zero::zero(),
			_ => {
				ChallengeSlashedAt::<T>::insert(&provider, now);
				T::Registry::slash(
					&provider,
					Role::Worker,
					ProtocolParams::<T>::get().wrong_answer_slash,
				)
			},
		};
		Challenges::<T>::remove(&provider, id);
		Self::release_challenge_bond(&channel.client, challenge.bond);
		let closes_at = channel.closes_at.map_or(now, |at| at.min(now));
		channel.closes_at = Some(closes_at);
		Channels::<T>::insert(id, channel);
		Self::deposit_event(Event::ChallengeExpired { channel: id, provider, slashed });
		Self::deposit_event(Event::ChannelClosing { channel: id, closes_at });
		Ok(())
	}

	fn release_challenge_bond(client: &T::AccountId, bond: BalanceOf<T>) {
		if let Err(e) = T::Currency::release(
			&HoldReason::ChallengeBond.into(),
			client,
			bond,
			Precision::BestEffort,
		) {
			frame_support::defensive!("challenge bond could not be released", e);
		}
	}

	/// Invariants of challenges: each on an existing channel of its provider, every client's
	/// bonds held.
	#[cfg(any(test, feature = "try-runtime"))]
	pub(crate) fn challenges_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		use frame_support::traits::fungible::InspectHold;
		let mut bonds: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (provider, id, challenge) in Challenges::<T>::iter() {
			let channel = Channels::<T>::get(id).ok_or("challenge of a closed channel")?;
			ensure!(channel.provider == provider, "challenge filed under another provider");
			ensure!(!challenge.input.is_empty(), "challenge without an input");
			let held = bonds.entry(channel.client).or_default();
			*held = held.saturating_add(challenge.bond);
		}
		for (client, bond) in bonds {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ChallengeBond.into(), &client) == bond,
				"challenge bond hold out of step"
			);
		}
		Ok(())
	}
}
