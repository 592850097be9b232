//! Channels: prepaying, settling receipts, paying batches, closing.

use crate::{
	pallet::*, receipt_payload, transcript_start, types::*, BalanceOf, BatchOf, ChannelOf,
};
use agora_primitives::ParticipantRegistry;
use frame_support::{
	ensure,
	pallet_prelude::DispatchResult,
	traits::{
		fungible::MutateHold,
		tokens::{Fortitude, Precision, Restriction},
		Get,
	},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::{
	traits::{Saturating, Verify, Zero},
	DispatchError,
};

impl<T: Config> Pallet<T> {
	pub(crate) fn do_open_channel(
		client: T::AccountId,
		provider: T::AccountId,
		model: ModelId,
		max_price: BalanceOf<T>,
		amount: BalanceOf<T>,
	) -> DispatchResult {
		ensure!(client != provider, Error::<T>::SelfDealing);
		let offer = Offers::<T>::get(&provider, model).ok_or(Error::<T>::UnknownOffer)?;
		// A provider slashed below the minimum stake keeps its offer but gets no new client.
		ensure!(T::Registry::eligible_worker(&provider).is_some(), Error::<T>::NotEligible);
		let entry = Models::<T>::get(model).ok_or(Error::<T>::UnknownModel)?;
		ensure!(entry.access == Access::Public || entry.owner == client, Error::<T>::AccessDenied);
		ensure!(offer.price <= max_price, Error::<T>::PriceAboveLimit);
		ensure!(amount >= offer.price, Error::<T>::BalanceTooLow);
		let deposit = ProtocolParams::<T>::get().channel_deposit;
		T::Currency::hold(&HoldReason::ChannelDeposit.into(), &client, deposit)?;
		T::Currency::hold(&HoldReason::ChannelEscrow.into(), &client, amount)?;
		let id = NextChannel::<T>::mutate(|next| {
			let id = *next;
			*next = next.saturating_add(1);
			id
		});
		Channels::<T>::insert(
			id,
			Channel {
				client: client.clone(),
				provider: provider.clone(),
				model,
				version: offer.version,
				price: offer.price,
				balance: amount,
				pending_amount: Zero::zero(),
				deposit,
				settled_requests: 0,
				settled_amount: Zero::zero(),
				transcript: transcript_start(id),
				pending_batches: 0,
				closes_at: None,
			},
		);
		ProviderChannels::<T>::mutate(&provider, |n| *n = n.saturating_add(1));
		Self::deposit_event(Event::ChannelOpened {
			channel: id,
			client,
			provider,
			model,
			version: offer.version,
			price: offer.price,
			balance: amount,
		});
		Ok(())
	}

	pub(crate) fn do_top_up(
		who: T::AccountId,
		id: ChannelId,
		amount: BalanceOf<T>,
	) -> DispatchResult {
		Channels::<T>::try_mutate(id, |channel| -> DispatchResult {
			let channel = channel.as_mut().ok_or(Error::<T>::UnknownChannel)?;
			ensure!(channel.client == who, Error::<T>::NotClient);
			ensure!(channel.closes_at.is_none(), Error::<T>::ChannelClosing);
			T::Currency::hold(&HoldReason::ChannelEscrow.into(), &who, amount)?;
			channel.balance = channel.balance.saturating_add(amount);
			Ok(())
		})?;
		Self::deposit_event(Event::ChannelToppedUp { channel: id, amount });
		Ok(())
	}

	/// Checks that `receipt` is the client's, on this chain, for requests beyond the settled
	/// ones, at most at the channel's price and within its balance; returns what it adds.
	pub(crate) fn check_receipt(
		channel: &ChannelOf<T>,
		receipt: &Receipt<BalanceOf<T>>,
		signature: &T::Signature,
	) -> Result<BalanceOf<T>, DispatchError> {
		let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
		ensure!(
			signature.verify(&receipt_payload(&genesis, receipt)[..], &channel.client),
			Error::<T>::BadSignature
		);
		ensure!(
			receipt.requests > channel.settled_requests && receipt.amount >= channel.settled_amount,
			Error::<T>::StaleReceipt
		);
		let requests: BalanceOf<T> = receipt
			.requests
			.try_into()
			.map_err(|_| DispatchError::from(Error::<T>::Overcharged))?;
		ensure!(receipt.amount <= channel.price.saturating_mul(requests), Error::<T>::Overcharged);
		let amount = receipt.amount.saturating_sub(channel.settled_amount);
		ensure!(
			channel.pending_amount.saturating_add(amount) <= channel.balance,
			Error::<T>::InsufficientBalance
		);
		Ok(amount)
	}

	pub(crate) fn do_settle(
		who: T::AccountId,
		receipt: Receipt<BalanceOf<T>>,
		signature: T::Signature,
	) -> DispatchResult {
		let id = receipt.channel;
		let mut channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		ensure!(channel.provider == who, Error::<T>::NotProvider);
		let now = frame_system::Pallet::<T>::block_number();
		if let Some(closes_at) = channel.closes_at {
			ensure!(now < closes_at, Error::<T>::ChannelClosing);
		}
		let amount = Self::check_receipt(&channel, &receipt, &signature)?;
		ensure!(channel.pending_batches < T::MaxPendingBatches::get(), Error::<T>::TooManyBatches);
		let params = ProtocolParams::<T>::get();
		let draw_at = now.saturating_add(params.audit_delay);
		let batch = NextBatch::<T>::get();
		PendingDraws::<T>::try_append(draw_at, batch).map_err(|_| Error::<T>::DrawQueueFull)?;
		NextBatch::<T>::put(batch.saturating_add(1));
		let first = channel.settled_requests.saturating_add(1);
		Batches::<T>::insert(
			batch,
			Batch {
				channel: id,
				first_request: first,
				last_request: receipt.requests,
				amount,
				transcript_before: channel.transcript,
				transcript: receipt.transcript,
				settled_at: now,
				status: BatchStatus::AwaitingDraw,
				dispute: None,
			},
		);
		channel.settled_requests = receipt.requests;
		channel.settled_amount = receipt.amount;
		channel.transcript = receipt.transcript;
		channel.pending_amount = channel.pending_amount.saturating_add(amount);
		channel.pending_batches = channel.pending_batches.saturating_add(1);
		Channels::<T>::insert(id, channel);
		Self::deposit_event(Event::Settled {
			channel: id,
			batch,
			first,
			last: receipt.requests,
			amount,
			draw_at,
		});
		Ok(())
	}

	/// Moves `amount` of the client's channel escrow to `to` (free); returns what moved.
	fn pay_from_escrow(
		client: &T::AccountId,
		to: &T::AccountId,
		amount: BalanceOf<T>,
	) -> BalanceOf<T> {
		if amount.is_zero() {
			return amount;
		}
		T::Currency::transfer_on_hold(
			&HoldReason::ChannelEscrow.into(),
			client,
			to,
			amount,
			Precision::BestEffort,
			Restriction::Free,
			Fortitude::Polite,
		)
		.unwrap_or_else(|e| {
			log::warn!(target: "runtime::inference", "escrow payment failed: {e:?}");
			Zero::zero()
		})
	}

	pub(crate) fn do_clear_batch(id: BatchId) -> DispatchResult {
		let batch = Batches::<T>::get(id).ok_or(Error::<T>::UnknownBatch)?;
		match batch.status {
			BatchStatus::Audited(_) => return Err(Error::<T>::UnderAudit.into()),
			BatchStatus::AwaitingDraw => return Err(Error::<T>::DisputeWindowOpen.into()),
			BatchStatus::Open => {},
		}
		let params = ProtocolParams::<T>::get();
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(
			now > batch.settled_at.saturating_add(params.dispute_window),
			Error::<T>::DisputeWindowOpen
		);
		let mut channel = Channels::<T>::get(batch.channel).ok_or_else(|| {
			frame_support::defensive!("batch of an unknown channel", id);
			Error::<T>::UnknownChannel
		})?;
		let protocol_fee = Self::pay_from_escrow(
			&channel.client,
			&T::Treasury::get(),
			params.protocol_fee.mul_floor(batch.amount),
		);
		let audit_fee = Self::pay_from_escrow(
			&channel.client,
			&Self::pot_account(),
			params.audit_fee.mul_floor(batch.amount),
		);
		let rest = batch.amount.saturating_sub(protocol_fee).saturating_sub(audit_fee);
		let provider_paid = Self::pay_from_escrow(&channel.client, &channel.provider, rest);
		// Whatever could not move (nothing, unless a hold went missing) stays the client's.
		let unpaid = rest.saturating_sub(provider_paid);
		if !unpaid.is_zero() {
			let _ = T::Currency::release(
				&HoldReason::ChannelEscrow.into(),
				&channel.client,
				unpaid,
				Precision::BestEffort,
			);
		}
		channel.balance = channel.balance.saturating_sub(batch.amount);
		channel.pending_amount = channel.pending_amount.saturating_sub(batch.amount);
		channel.pending_batches = channel.pending_batches.saturating_sub(1);
		Channels::<T>::insert(batch.channel, channel);
		Batches::<T>::remove(id);
		Self::deposit_event(Event::BatchCleared {
			batch: id,
			channel: batch.channel,
			provider_paid,
			protocol_fee,
			audit_fee,
		});
		Ok(())
	}

	/// Refunds a batch to its client (a failed audit); returns the amount.
	pub(crate) fn refund_batch(id: BatchId, batch: &BatchOf<T>) -> BalanceOf<T> {
		Batches::<T>::remove(id);
		let Some(mut channel) = Channels::<T>::get(batch.channel) else {
			frame_support::defensive!("batch of an unknown channel", id);
			return Zero::zero();
		};
		let refunded = T::Currency::release(
			&HoldReason::ChannelEscrow.into(),
			&channel.client,
			batch.amount,
			Precision::BestEffort,
		)
		.unwrap_or_else(|e| {
			frame_support::defensive!("batch refund failed", (id, e));
			Zero::zero()
		});
		channel.balance = channel.balance.saturating_sub(batch.amount);
		channel.pending_amount = channel.pending_amount.saturating_sub(batch.amount);
		channel.pending_batches = channel.pending_batches.saturating_sub(1);
		Channels::<T>::insert(batch.channel, channel);
		refunded
	}

	pub(crate) fn do_close_channel(who: T::AccountId, id: ChannelId) -> DispatchResult {
		let closes_at = Channels::<T>::try_mutate(id, |channel| {
			let channel = channel.as_mut().ok_or(Error::<T>::UnknownChannel)?;
			let now = frame_system::Pallet::<T>::block_number();
			let closes_at = if who == channel.provider {
				now
			} else if who == channel.client {
				ensure!(channel.closes_at.is_none(), Error::<T>::ChannelClosing);
				now.saturating_add(ProtocolParams::<T>::get().close_delay)
			} else {
				return Err(Error::<T>::NotParticipant);
			};
			let closes_at = channel.closes_at.map_or(closes_at, |at| at.min(closes_at));
			channel.closes_at = Some(closes_at);
			Ok(closes_at)
		})?;
		Self::deposit_event(Event::ChannelClosing { channel: id, closes_at });
		Ok(())
	}

	pub(crate) fn do_finish_close(id: ChannelId) -> DispatchResult {
		let channel = Channels::<T>::get(id).ok_or(Error::<T>::UnknownChannel)?;
		let now = frame_system::Pallet::<T>::block_number();
		ensure!(channel.closes_at.is_some_and(|at| now >= at), Error::<T>::CloseDelayRunning);
		ensure!(channel.pending_batches == 0, Error::<T>::BatchesPending);
		ensure!(
			!Challenges::<T>::contains_key(&channel.provider, id),
			Error::<T>::ChallengePending
		);
		let balance = T::Currency::release(
			&HoldReason::ChannelEscrow.into(),
			&channel.client,
			channel.balance,
			Precision::BestEffort,
		)?;
		let deposit = T::Currency::release(
			&HoldReason::ChannelDeposit.into(),
			&channel.client,
			channel.deposit,
			Precision::BestEffort,
		)?;
		ProviderChannels::<T>::mutate_exists(&channel.provider, |n| {
			*n = n.map(|n| n.saturating_sub(1)).filter(|n| *n > 0)
		});
		Channels::<T>::remove(id);
		Self::deposit_event(Event::ChannelClosed {
			channel: id,
			refunded: balance.saturating_add(deposit),
		});
		Ok(())
	}

	/// Invariants of channels and batches.
	#[cfg(any(test, feature = "try-runtime"))]
	pub(crate) fn channels_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
		use alloc::collections::btree_map::BTreeMap;
		use frame_support::traits::fungible::InspectHold;
		let mut per_provider: BTreeMap<T::AccountId, u32> = BTreeMap::new();
		let mut escrow_per_client: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
		for (id, channel) in Channels::<T>::iter() {
			ensure!(id < NextChannel::<T>::get(), "channel id from the future");
			ensure!(channel.pending_amount <= channel.balance, "pending beyond the balance");
			let (mut batches, mut pending) = (0u32, BalanceOf::<T>::zero());
			for (_, batch) in Batches::<T>::iter().filter(|(_, b)| b.channel == id) {
				batches += 1;
				pending = pending.saturating_add(batch.amount);
				ensure!(batch.last_request <= channel.settled_requests, "batch beyond settled");
			}
			ensure!(batches == channel.pending_batches, "pending batch count out of step");
			ensure!(pending == channel.pending_amount, "pending amount out of step");
			*per_provider.entry(channel.provider.clone()).or_default() += 1;
			let held = escrow_per_client.entry(channel.client.clone()).or_default();
			*held = held.saturating_add(channel.balance);
		}
		for (client, escrow) in escrow_per_client {
			ensure!(
				T::Currency::balance_on_hold(&HoldReason::ChannelEscrow.into(), &client) == escrow,
				"channel escrow hold out of step"
			);
		}
		for (provider, n) in ProviderChannels::<T>::iter() {
			ensure!(per_provider.get(&provider) == Some(&n), "provider channel count out of step");
		}
		ensure!(
			per_provider.len() == ProviderChannels::<T>::iter().count(),
			"provider with channels but no count"
		);
		for (id, batch) in Batches::<T>::iter() {
			ensure!(Channels::<T>::contains_key(batch.channel), "batch of a closed channel");
			ensure!(id < NextBatch::<T>::get(), "batch id from the future");
			ensure!(batch.first_request <= batch.last_request, "empty batch");
			if batch.dispute.is_some() {
				ensure!(batch.status == BatchStatus::AwaitingDraw, "dispute of an audited batch");
			}
			if let BatchStatus::Audited(audit) = batch.status {
				ensure!(
					Audits::<T>::get(audit).is_some_and(|a| a.batch == id),
					"audited batch without its audit"
				);
			}
		}
		Ok(())
	}
}
