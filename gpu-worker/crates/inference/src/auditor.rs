//! The auditor: a validator's duty when the chain draws it to audit a settled request.
//!
//! It asks the provider for the request's evidence (input, answer, and every transcript step
//! of its batch), checks that the steps lead from the batch's transcript head before to the one
//! the client signed, re-runs the channel's model version on the input, and commits to its
//! verdict: `Correct` if the answers agree ([`crate::answer::answers_agree`]), `Wrong` if they
//! do not, `Unavailable` if the provider does not prove what it answered. The verdict and salt
//! are kept on disk before the commitment is sent, so a restart reveals what was committed.
//! An auditor that cannot fetch the model itself commits nothing (its own failure is not the
//! provider's). A provider that does not send the evidence (unreachable, busy, refusing, its
//! view of the chain a block behind) is asked again at every pass, and judged `Unavailable`
//! only [`UNAVAILABLE_MARGIN`] blocks before the commit deadline: a network hiccup must not
//! cost an honest provider its stake.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use agora_ml::models::Model;
use agora_p2p::{BlobNetwork, QueryRequest, QueryResponse};
use anyhow::{anyhow, Context, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::answer::{answer_or_refusal, answers_agree};
use crate::evidence::{evidence_matches, Evidence};
use crate::market::{AuditView, MarketCall, MarketChain};
use crate::provider::load_version;
use crate::receipt::{audit_commitment, AuditVerdict};
use crate::QueryNetwork;

/// How long the provider has to send the evidence, per attempt.
const EVIDENCE_TIMEOUT: Duration = Duration::from_secs(20);

/// Blocks before the commit deadline from which a provider that still has not sent the
/// evidence is judged `Unavailable` (the commitment needs a block to land).
pub const UNAVAILABLE_MARGIN: u32 = 2;

/// What examining an audited request found.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
	/// A verdict the provider's own evidence decides (`Unavailable` here: evidence that does
	/// not match the transcript the client signed).
	Verdict(AuditVerdict),
	/// The provider sent no evidence this time (why).
	NoEvidence(String),
}

/// A committed verdict, kept until it is revealed.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Committed {
	verdict: AuditVerdict,
	salt: [u8; 32],
}

pub struct Auditor<C, N> {
	chain: C,
	net: N,
	state_file: PathBuf,
	device: Device,
	models: HashMap<(u64, u32), Model>,
	committed: BTreeMap<u64, Committed>,
}

impl<C: MarketChain, N: BlobNetwork + QueryNetwork> Auditor<C, N> {
	/// An auditor keeping its commitments in `state_dir/audits.json`.
	pub fn new(chain: C, net: N, state_dir: &std::path::Path, device: Device) -> Result<Self> {
		let state_file = state_dir.join("audits.json");
		let committed = agora_core::state::read_json(&state_file)
			.map_err(|e| anyhow!("{e}"))?
			.unwrap_or_default();
		Ok(Auditor { chain, net, state_file, device, models: HashMap::new(), committed })
	}

	/// Audits every few seconds, for ever.
	pub async fn run(&mut self) -> Result<()> {
		loop {
			if let Err(e) = self.tick().await {
				tracing::warn!("auditor: {e:#}");
			}
			tokio::time::sleep(Duration::from_secs(3)).await;
		}
	}

	/// One pass over the audits in progress: examine and commit, reveal, conclude.
	pub async fn tick(&mut self) -> Result<()> {
		let me = self.chain.account();
		let now = self.chain.best_number().await?;
		let audits = self.chain.audits().await?;
		for audit in &audits {
			let Some(mine) = audit.auditors.iter().find(|a| a.who == me) else { continue };
			if !mine.committed && now <= audit.commit_deadline {
				let verdict = match self.examine(audit).await {
					Ok(Finding::Verdict(verdict)) => verdict,
					Ok(Finding::NoEvidence(why))
						if now.saturating_add(UNAVAILABLE_MARGIN) >= audit.commit_deadline =>
					{
						tracing::info!(audit = audit.id, "no evidence by the deadline: {why}");
						AuditVerdict::Unavailable
					},
					Ok(Finding::NoEvidence(why)) => {
						tracing::info!(audit = audit.id, "no evidence yet, asking again: {why}");
						continue;
					},
					Err(e) => {
						tracing::warn!(audit = audit.id, "cannot audit yet: {e:#}");
						continue;
					},
				};
				let mut salt = [0u8; 32];
				rand::thread_rng().fill_bytes(&mut salt);
				self.committed.insert(audit.id, Committed { verdict, salt });
				agora_core::state::write_json(&self.state_file, &self.committed)?;
				let commitment = audit_commitment(audit.id, verdict, &salt, &me.0);
				self.chain.submit(MarketCall::CommitAudit { audit: audit.id, commitment }).await?;
				tracing::info!(audit = audit.id, ?verdict, "audit verdict committed");
			} else if mine.committed
				&& !mine.revealed
				&& now > audit.commit_deadline
				&& now <= audit.reveal_deadline
			{
				let Some(Committed { verdict, salt }) = self.committed.get(&audit.id).copied()
				else {
					tracing::warn!(audit = audit.id, "committed verdict lost: cannot reveal");
					continue;
				};
				self.chain
					.submit(MarketCall::RevealAudit { audit: audit.id, verdict, salt })
					.await?;
				tracing::info!(audit = audit.id, ?verdict, "audit verdict revealed");
			} else if now > audit.reveal_deadline
				|| (mine.revealed && audit.auditors.iter().all(|a| a.revealed))
			{
				// Anyone may conclude; the first transaction does it and the others fail.
				match self.chain.submit(MarketCall::ConcludeAudit { audit: audit.id }).await {
					Ok(()) => tracing::info!(audit = audit.id, "audit concluded"),
					Err(e) => tracing::debug!(audit = audit.id, "not concluded: {e:#}"),
				}
			}
		}
		// Forget what the chain no longer holds.
		let open: std::collections::BTreeSet<u64> = audits.iter().map(|a| a.id).collect();
		let before = self.committed.len();
		self.committed.retain(|id, _| open.contains(id));
		if self.committed.len() != before {
			agora_core::state::write_json(&self.state_file, &self.committed)?;
		}
		Ok(())
	}

	/// The verdict this auditor committed on `audit` (until it is concluded).
	pub fn committed(&self, audit: u64) -> Option<AuditVerdict> {
		self.committed.get(&audit).map(|c| c.verdict)
	}

	/// What the audited request's evidence shows; an error when the auditor itself cannot
	/// tell (the chain or the model unreachable).
	pub async fn examine(&mut self, audit: &AuditView) -> Result<Finding> {
		let batch = self.chain.batch(audit.batch).await?.context("the audited batch is gone")?;
		let channel =
			self.chain.channel(batch.channel).await?.context("the audited channel is gone")?;
		let Some(provider) = self.chain.worker_peer(&channel.provider).await? else {
			return Ok(Finding::NoEvidence("the provider has no registered address".into()));
		};
		let request = QueryRequest::Evidence {
			channel: batch.channel,
			first: batch.first_request,
			last: batch.last_request,
			request: audit.request,
		};
		let response =
			tokio::time::timeout(EVIDENCE_TIMEOUT, self.net.query(&provider, request)).await;
		let evidence = match response {
			Ok(Ok(QueryResponse::Evidence { steps, input, output })) => {
				Evidence { steps, input, output }
			},
			Ok(Ok(other)) => return Ok(Finding::NoEvidence(format!("it answered {other:?}"))),
			Ok(Err(e)) => return Ok(Finding::NoEvidence(format!("unreachable: {e:#}"))),
			Err(_) => return Ok(Finding::NoEvidence("no answer in time".into())),
		};
		if !evidence_matches(
			&evidence,
			batch.first_request,
			audit.request,
			&batch.transcript_before,
			&batch.transcript,
		) {
			tracing::info!(audit = audit.id, "the evidence does not match the signed transcript");
			return Ok(Finding::Verdict(AuditVerdict::Unavailable));
		}
		let key = (channel.model, channel.version);
		if !self.models.contains_key(&key) {
			let model =
				load_version(&self.chain, &self.net, channel.model, channel.version, self.device)
					.await?;
			self.models.insert(key, model);
		}
		let model = self.models.get(&key).context("model just loaded")?;
		let started = std::time::Instant::now();
		// An input the model cannot take has one right answer: the empty refusal (what an
		// honest provider gives a challenge it cannot compute).
		let verdict = match answer_or_refusal(model, &evidence.input) {
			Ok(recomputed) if answers_agree(&evidence.output, &recomputed) => AuditVerdict::Correct,
			_ => AuditVerdict::Wrong,
		};
		tracing::info!(
			audit = audit.id,
			?verdict,
			compute_us = started.elapsed().as_micros() as u64,
			"request re-executed"
		);
		Ok(Finding::Verdict(verdict))
	}
}
