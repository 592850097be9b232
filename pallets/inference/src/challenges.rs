//! Challenges: a request the provider did not answer over the network, put on chain by its
//! client, answered on chain or punished.
//!
//! Who could profit, and what stops them:
//! - a provider that takes channels and answers nothing: a challenge makes it answer on chain
//!   within `close_delay` blocks or lose `wrong_answer_slash` of its stake, and the channel
//!   closes at once, refunding the client;
//! - a provider that answers a challenge with anything: the answer joins the channel's
//!   transcript as a batch of one, drawn for audit like any other and disputable by the client;
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
use sp_runtime::traits::{Saturating, Zero};

impl<T: Config> Pallet<T> {
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
		let params = ProtocolParams::<T>::get();
		T::Currency::hold(&HoldReason::ChallengeBond.into(), &who, params.dispute_bond)?;
		let deadline = frame_system::Pallet::<T>::block_number().saturating_add(params.close_delay);
		Challenges::<T>::insert(
			&channel.provider,
			id,
			Challenge { input, bond: params.dispute_bond, deadline },
		);
		Self::deposit_event(Event::Challenged { channel: id, provider: channel.provider, deadline });
		Ok(())
	}

	pub(crate) fn do_answer_challenge(
		who: T::AccountId,
		id: ChannelId,
		output: BoundedVec<u8, MaxChallengeBytes>,
	) -> DispatchResult {
		let mut channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(channel.provider == who, Error::<T>::NotProvider);
		let challenge = Challenges::<T>::get(&who, id).ok_or(Error::<T>::NoChallenge)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now <= challenge.deadline, Error::<T>::ChallengeExpired);
		let request = channel.settled_requests.saturating_add(1);
		let transcript_before = channel.transcript;
		let transcript = transcript_step(
			transcript_before,
			request,
			H256(sp_io::hashing::blake2_256(&challenge.input)),
			H256(sp_io::hashing::blake2_256(&output)),
		);
		// The answer must never fail for want of room (the provider would be slashed for an
		// answer it gave): without room for a batch it stands unpaid and unaudited.
		let available = channel.balance.saturating_sub(channel.pending_amount);
		let mut amount = channel.price.min(available);
		let mut batch = None;
		if channel.pending_batches < T::MaxPendingBatches::get() {
			let id_of_batch = NextBatch::<T>::get();
			NextBatch::<T>::put(id_of_batch.saturating_add(1));
			let params = ProtocolParams::<T>::get();
			let draw_at = now.saturating_add(params.audit_delay);
			// A full draw queue leaves it to its client's dispute.
			let status = match PendingDraws::<T>::try_append(draw_at, id_of_batch) {
				Ok(()) => BatchStatus::AwaitingDraw,
				Err(()) => BatchStatus::Open,
			};
			Batches::<T>::insert(
				id_of_batch,
				Batch {
					channel: id,
					first_request: request,
					last_request: request,
					amount,
					transcript_before,
					transcript,
					settled_at: now,
					status,
					dispute: None,
				},
			);
			channel.pending_amount = channel.pending_amount.saturating_add(amount);
			channel.pending_batches = channel.pending_batches.saturating_add(1);
			batch = Some(id_of_batch);
			Self::deposit_event(Event::Settled {
				channel: id,
				batch: id_of_batch,
				first: request,
				last: request,
				amount,
				draw_at,
			});
		} else {
			amount = Zero::zero();
		}
		channel.settled_requests = request;
		channel.settled_amount = channel.settled_amount.saturating_add(amount);
		channel.transcript = transcript;
		Channels::<T>::insert(id, &channel);
		Challenges::<T>::remove(&who, id);
		Self::release_challenge_bond(&channel.client, challenge.bond);
		Self::deposit_event(Event::ChallengeAnswered { channel: id, request, output, amount, batch });
		Ok(())
	}

	pub(crate) fn do_expire_challenge(id: ChannelId) -> DispatchResult {
		let mut channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		let challenge =
			Challenges::<T>::get(&channel.provider, id).ok_or(Error::<T>::NoChallenge)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(now > challenge.deadline, Error::<T>::AnswerWindowOpen);
		let slashed = T::Registry::slash(
			&channel.provider,
			Role::Worker,
			ProtocolParams::<T>::get().wrong_answer_slash,
		);
		Challenges::<T>::remove(&channel.provider, id);
		Self::release_challenge_bond(&channel.client, challenge.bond);
		let closes_at = channel.closes_at.map_or(now, |at| at.min(now));
		channel.closes_at = Some(closes_at);
		let provider = channel.provider.clone();
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
