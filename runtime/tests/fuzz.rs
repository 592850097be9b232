//! Random sequences of the protocol's calls on the real `agora_runtime::Runtime`, from random
//! origins with random arguments (bounded types at their limits included), in blocks built by
//! `frame_executive`. After every block the invariants of [`blocks::assert_invariants`] must
//! hold (holds equal recorded stakes, deposits and escrows; every seat held by an active
//! validator; the pool covers what it owes; total issuance moved only by emission; every unit
//! in some account), and no call may panic.
//!
//! The arguments are drawn near the protocol's paths (existing jobs, accounts, shards, rounds,
//! the commitments a validator made) so that the sequences reach deep states — rounds that
//! train, verify, slash, aggregate and pay — rather than failing at the first check; a share of
//! every argument is drawn wild. Runs are seeded and reproducible: a failure prints its seed.
//!
//! Among the random calls, honest participants do the duties the chain gives them
//! ([`honest_duties`], each left out one time in ten), so that rounds get through verification,
//! aggregation and settlement while the random calls try to derail them.
//!
//! `AGORA_FUZZ_RUNS` (default 12) runs of `BLOCKS` blocks with `CALLS_PER_BLOCK` random calls
//! each: 108,000 random calls by default, besides the honest duties. One call in seven is the
//! inference market's (catalogue terms, offers, channels, receipts signed by the client or
//! forged, batches, disputes, challenges answered or expired, audit commits and reveals).

mod blocks;
mod common;

use agora_primitives::{
	Capability, Dataset, DeviceKind, JobSpec, PhasePeriods, Role, Update, Verdict,
	VerificationMode, H256,
};
use agora_runtime::{
	currency::AGR, AccountId, Balance, BlockNumber, Runtime, RuntimeCall, RuntimeOrigin,
};
use blocks::Chain;
use codec::{Decode, Encode, MaxEncodedLen};
use sp_keyring::Sr25519Keyring as Keyring;
use sp_runtime::{traits::Dispatchable, Perbill};
use std::collections::BTreeMap;

/// Blocks per run: the scenario stays within the first BABE epoch (100 blocks).
const BLOCKS: u32 = 90;
const CALLS_PER_BLOCK: u32 = 100;
const DEFAULT_RUNS: u64 = 12;

/// The development preset's twelve endowed accounts and two that hold nothing.
const ACCOUNTS: [Keyring; 14] = [
	Keyring::Alice,
	Keyring::Bob,
	Keyring::Charlie,
	Keyring::Dave,
	Keyring::Eve,
	Keyring::Ferdie,
	Keyring::AliceStash,
	Keyring::BobStash,
	Keyring::CharlieStash,
	Keyring::DaveStash,
	Keyring::EveStash,
	Keyring::FerdieStash,
	Keyring::One,
	Keyring::Two,
];

/// SplitMix64: small, seeded, good enough to pick calls.
struct Rng(u64);

impl Rng {
	fn next(&mut self) -> u64 {
		self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
		let mut z = self.0;
		z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
		z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
		z ^ (z >> 31)
	}

	fn below(&mut self, n: u64) -> u64 {
		self.next() % n.max(1)
	}

	fn chance(&mut self, percent: u64) -> bool {
		self.below(100) < percent
	}

	fn pick<T: Copy>(&mut self, items: &[T]) -> T {
		items[self.below(items.len() as u64) as usize]
	}

	fn bytes(&mut self, n: usize) -> Vec<u8> {
		(0..n).map(|_| self.next() as u8).collect()
	}

	/// A small block count: the bounds' edges and a few ordinary periods.
	fn period(&mut self) -> BlockNumber {
		self.pick(&[0, 1, 2, 3, 3, 4, 5, 6, 250_000])
	}

	/// An amount near the protocol's thresholds, or a wild one.
	fn amount(&mut self) -> Balance {
		match self.below(8) {
			0 => 0,
			1 => 1,
			2 => self.below(10) as Balance * AGR,
			3 => 100 * AGR,
			4 => 1_000 * AGR,
			5 => (10 + self.below(5_000) as Balance) * AGR,
			6 => Balance::MAX,
			_ => self.next() as Balance,
		}
	}

	/// A value of `T` decoded from random bytes, or `None` when they do not decode.
	fn decoded<T: Decode + MaxEncodedLen>(&mut self) -> Option<T> {
		let bytes = self.bytes(T::max_encoded_len());
		T::decode(&mut &bytes[..]).ok()
	}

	/// `current`, SCALE-encoded, with one byte changed: a neighbour of valid parameters.
	fn mutated<T: Encode + Decode>(&mut self, current: &T) -> Option<T> {
		let mut bytes = current.encode();
		let at = self.below(bytes.len() as u64) as usize;
		bytes[at] = self.next() as u8;
		T::decode(&mut &bytes[..]).ok()
	}
}

/// Who committed a verdict: (validator, job, worker).
type Commitment = (AccountId, u64, AccountId);
/// What it committed to: (verdict, score, salt).
type Committed = (Verdict, Perbill, [u8; 32]);

/// What the fuzzer remembers to make calls that can succeed: the shards it tried to register
/// and the verdicts each validator committed (to reveal them).
#[derive(Default)]
struct Memory {
	shards: Vec<H256>,
	commitments: BTreeMap<Commitment, Committed>,
	/// The aggregate hash and salt each account committed to, by (account, job, round).
	aggregates: BTreeMap<(AccountId, u64, u32), (H256, [u8; 32])>,
	/// The inference audit verdict and salt each auditor committed to, by (auditor, audit).
	audits: BTreeMap<(AccountId, u64), (pallet_inference::AuditVerdict, [u8; 32])>,
	/// Requests each client counted as answered on each channel (what it signs receipts for).
	answered: BTreeMap<u64, u64>,
}

/// The aggregate every honest participant of `job`'s `round` computes.
fn honest_aggregate(job: u64, round: u32) -> H256 {
	H256(sp_io::hashing::blake2_256(&(b"fuzz/aggregate", job, round).encode()))
}

/// A commitment to an aggregate, mostly the honest one and mostly well formed, remembered so
/// that it can be revealed.
fn aggregate_commitment(
	r: &mut Rng,
	memory: &mut Memory,
	who: &AccountId,
	job: u64,
	round: u32,
) -> H256 {
	let aggregate = if r.chance(80) { honest_aggregate(job, round) } else { hash(r) };
	let salt: [u8; 32] = r.bytes(32).try_into().unwrap();
	if !r.chance(90) {
		return H256::repeat_byte(r.next() as u8);
	}
	memory.aggregates.entry((who.clone(), job, round)).or_insert((aggregate, salt));
	pallet_validation::aggregate_commitment_of(job, round, &aggregate, &salt, who)
}

fn account(k: Keyring) -> AccountId {
	k.to_account_id()
}

fn capability(r: &mut Rng) -> Capability {
	let device = if r.chance(50) { DeviceKind::Cuda } else { DeviceKind::Cpu };
	let throughput = r.pick(&[0, 1, 100, u32::MAX]);
	Capability { device, memory_mib: r.next() as u32, throughput }
}

fn endpoint(r: &mut Rng) -> (agora_primitives::PeerId, agora_primitives::Multiaddr) {
	// Empty, ordinary and at the type's limit (64 and 256 bytes).
	let peer_len = r.pick(&[0usize, 38, 64]);
	let addr_len = r.pick(&[0usize, 24, 256]);
	(r.bytes(peer_len).try_into().unwrap(), r.bytes(addr_len).try_into().unwrap())
}

/// A job spec: a verifiable one, half of the time with one field drawn wild (the bounded
/// fields at their limits included).
fn spec(r: &mut Rng, memory: &Memory) -> JobSpec<BlockNumber> {
	let shards: Vec<H256> = memory
		.shards
		.iter()
		.copied()
		.filter(|shard| pallet_contributions::Shards::<Runtime>::contains_key(shard))
		.take(1 + r.below(4) as usize)
		.collect();
	let (dataset, mode) = if shards.is_empty() {
		(Dataset::Private, VerificationMode::Evaluation)
	} else {
		(Dataset::Shards(shards.try_into().unwrap()), VerificationMode::Replay)
	};
	let mut spec = JobSpec {
		architecture: b"mlp-digits".to_vec().try_into().unwrap(),
		hyperparameters: b"{}".to_vec().try_into().unwrap(),
		initial_weights: H256::repeat_byte(7),
		dataset,
		rounds: 1 + r.below(3) as u32,
		local_steps: 40,
		checkpoint_interval: 10,
		samples_per_round: 6_400,
		workers_per_round: 1 + r.below(3) as u32,
		validators_per_update: 2,
		mode,
		periods: PhasePeriods { open: 3, training: 4, commit: 3, reveal: 3, aggregation: 3 },
	};
	if r.chance(50) {
		match r.below(12) {
			0 => {
				let len = r.pick(&[0usize, 64]);
				spec.architecture = r.bytes(len).try_into().unwrap();
			},
			1 => spec.hyperparameters = r.bytes(1024).try_into().unwrap(),
			2 => spec.dataset = Dataset::Private,
			3 => spec.rounds = r.pick(&[0, 101, u32::MAX]),
			4 => spec.local_steps = r.pick(&[0, 1, 9, u32::MAX]),
			5 => spec.checkpoint_interval = r.pick(&[0, 1, 41, u32::MAX]),
			6 => spec.samples_per_round = r.pick(&[0, 1, u32::MAX]),
			7 => spec.workers_per_round = r.pick(&[0, 16, 17, u32::MAX]),
			8 => spec.validators_per_update = r.pick(&[0, 1, 5, 9, u32::MAX]),
			9 => spec.mode = VerificationMode::Evaluation,
			10 => spec.periods.training = r.period(),
			_ => spec.periods.commit = r.period(),
		}
	}
	spec
}

/// An active job (mostly), an ended one, or none at all.
fn job(r: &mut Rng) -> u64 {
	let next = pallet_tasks::NextJobId::<Runtime>::get();
	let active: Vec<u64> =
		pallet_tasks::ActiveJobs::<Runtime>::get().iter().map(|(job, _)| *job).collect();
	if !active.is_empty() && r.chance(90) {
		active[r.below(active.len() as u64) as usize]
	} else if next > 0 && r.chance(50) {
		r.below(next)
	} else {
		r.pick(&[next, u64::MAX])
	}
}

/// The job's current round (mostly), or another.
fn round_of(r: &mut Rng, job: u64) -> u32 {
	let round = pallet_tasks::Jobs::<Runtime>::get(job).map_or(1, |j| j.round);
	if r.chance(85) {
		round
	} else {
		r.pick(&[0, round.wrapping_add(1), u32::MAX])
	}
}

/// A worker that submitted to `job` (mostly), or anyone.
fn worker_of(r: &mut Rng, job: u64) -> AccountId {
	let workers: Vec<AccountId> =
		pallet_tasks::RoundWorkers::<Runtime>::get(job).iter().map(|s| s.who.clone()).collect();
	if !workers.is_empty() && r.chance(85) {
		workers[r.below(workers.len() as u64) as usize].clone()
	} else {
		account(r.pick(&ACCOUNTS))
	}
}

/// `who` most of the time when there is one, else a random account: calls come mostly from
/// the participant a call needs (so that rounds progress), sometimes from anyone.
fn mostly(r: &mut Rng, who: Option<AccountId>) -> AccountId {
	match who {
		Some(who) if r.chance(85) => who,
		_ => account(r.pick(&ACCOUNTS)),
	}
}

fn any_of(r: &mut Rng, accounts: Vec<AccountId>) -> Option<AccountId> {
	(!accounts.is_empty()).then(|| accounts[r.below(accounts.len() as u64) as usize].clone())
}

/// A validator assigned to `worker`'s update in `job`, if any.
fn assigned_validator(r: &mut Rng, job: u64, worker: &AccountId) -> Option<AccountId> {
	let check = pallet_validation::Checks::<Runtime>::get(job, worker)?;
	any_of(r, check.assignments.iter().map(|a| a.validator.clone()).collect())
}

/// A registered worker.
fn registered_worker(r: &mut Rng) -> Option<AccountId> {
	any_of(r, pallet_contributions::Workers::<Runtime>::iter_keys().collect())
}

fn hash(r: &mut Rng) -> H256 {
	H256::repeat_byte(r.pick(&[0u8, 1, 2, 3]))
}

fn role(r: &mut Rng) -> Role {
	if r.chance(50) {
		Role::Worker
	} else {
		Role::Validator
	}
}

/// One call and the origin it is dispatched from.
fn random_call(r: &mut Rng, memory: &mut Memory) -> (RuntimeOrigin, RuntimeCall) {
	use pallet_contributions::Call as C;
	use pallet_rewards::Call as R;
	use pallet_tasks::Call as T;
	use pallet_validation::Call as V;
	let mut who = account(r.pick(&ACCOUNTS));
	let mut origin = None;
	let call = match r.below(112) {
		96..=111 => inference_call(r, memory, &mut who),
		0..=7 => {
			let (peer_id, multiaddr) = endpoint(r);
			let (stake, capability) = (r.amount(), capability(r));
			RuntimeCall::Contributions(C::register_worker { stake, peer_id, multiaddr, capability })
		},
		8..=15 => {
			let (peer_id, multiaddr) = endpoint(r);
			let (stake, capability) = (r.amount(), capability(r));
			RuntimeCall::Contributions(C::register_validator {
				stake,
				peer_id,
				multiaddr,
				capability,
			})
		},
		16..=17 => RuntimeCall::Contributions(C::bond_extra { role: role(r), amount: r.amount() }),
		18 => RuntimeCall::Contributions(C::claim_seat {}),
		19 => {
			let (peer_id, multiaddr) = endpoint(r);
			let (role, capability) = (role(r), capability(r));
			RuntimeCall::Contributions(C::update_endpoint { role, peer_id, multiaddr, capability })
		},
		20 => RuntimeCall::Contributions(C::unbond { role: role(r) }),
		21 => RuntimeCall::Contributions(C::withdraw_unbonded { role: role(r) }),
		22..=24 => {
			let shard = H256::repeat_byte(0x40 + r.below(8) as u8);
			if !memory.shards.contains(&shard) {
				memory.shards.push(shard);
			}
			let samples = r.pick(&[0u32, 64, u32::MAX]);
			RuntimeCall::Contributions(C::register_shard { shard, samples })
		},
		25 => {
			let shard = H256::repeat_byte(0x40 + r.below(8) as u8);
			RuntimeCall::Contributions(C::deregister_shard { shard })
		},
		26..=28 => {
			let spec = spec(r, memory);
			RuntimeCall::Tasks(T::create_job { spec, budget: r.amount() })
		},
		29 => RuntimeCall::Tasks(T::cancel_job { job: job(r) }),
		30..=54 => {
			let worker = registered_worker(r);
			who = mostly(r, worker);
			RuntimeCall::Tasks(T::apply_for_round { job: job(r) })
		},
		55..=64 => {
			let job = job(r);
			let round = round_of(r, job);
			who = worker_of(r, job);
			let checkpoints = pallet_tasks::Jobs::<Runtime>::get(job)
				.map_or(1, |j| j.spec.local_steps.div_ceil(j.spec.checkpoint_interval.max(1)));
			let update = Update {
				delta: hash(r),
				samples: r.pick(&[0u32, 1, 1_000, u32::MAX]),
				loss_micros: r.next(),
				checkpoint_root: hash(r),
				checkpoints: if r.chance(80) { checkpoints } else { r.pick(&[0, 1, u32::MAX]) },
			};
			RuntimeCall::Tasks(T::submit_update { job, round, update })
		},
		65..=74 => {
			let job = job(r);
			let worker = worker_of(r, job);
			let verdict =
				r.pick(&[Verdict::Valid, Verdict::Valid, Verdict::Invalid, Verdict::Unavailable]);
			let score = Perbill::from_parts(r.below(1_000_000_001) as u32);
			let salt: [u8; 32] = r.bytes(32).try_into().unwrap();
			let commitment = if r.chance(90) {
				pallet_validation::commitment_of(job, &worker, verdict, score, &salt, &who)
			} else {
				H256::repeat_byte(r.next() as u8)
			};
			// The first commitment counts on chain; later attempts fail.
			memory
				.commitments
				.entry((who.clone(), job, worker.clone()))
				.or_insert((verdict, score, salt));
			RuntimeCall::Validation(V::commit_verdict { job, worker, commitment })
		},
		75..=84 => {
			let job = job(r);
			let worker = worker_of(r, job);
			let validator = assigned_validator(r, job, &worker);
			who = mostly(r, validator);
			let (verdict, score, salt) = memory
				.commitments
				.get(&(who.clone(), job, worker.clone()))
				.copied()
				.filter(|_| r.chance(90))
				.unwrap_or((Verdict::Valid, Perbill::from_percent(50), [0; 32]));
			RuntimeCall::Validation(V::reveal_verdict { job, worker, verdict, score, salt })
		},
		85..=86 => {
			let job = job(r);
			let round = round_of(r, job);
			let aggregator =
				pallet_validation::Verifications::<Runtime>::get(job).and_then(|v| v.aggregator);
			who = mostly(r, aggregator);
			let commitment = aggregate_commitment(r, memory, &who, job, round);
			RuntimeCall::Validation(V::post_aggregate { job, round, commitment })
		},
		87..=88 => {
			let job = job(r);
			let round = round_of(r, job);
			let voters: Vec<AccountId> = pallet_validation::RoundValidators::<Runtime>::get(job)
				.iter()
				.map(|v| v.who.clone())
				.collect();
			let voter = any_of(r, voters);
			who = mostly(r, voter);
			let commitment = aggregate_commitment(r, memory, &who, job, round);
			RuntimeCall::Validation(V::vote_aggregate { job, round, commitment })
		},
		89..=90 => {
			let job = job(r);
			let round = round_of(r, job);
			let committed: Vec<AccountId> = memory
				.aggregates
				.keys()
				.filter(|(_, j, n)| *j == job && *n == round)
				.map(|(who, _, _)| who.clone())
				.collect();
			let revealer = any_of(r, committed);
			who = mostly(r, revealer);
			let (aggregate, salt) = memory
				.aggregates
				.get(&(who.clone(), job, round))
				.copied()
				.filter(|_| r.chance(90))
				.unwrap_or((hash(r), [0; 32]));
			RuntimeCall::Validation(V::reveal_aggregate { job, round, aggregate, salt })
		},
		91 => {
			let secret: [u8; 32] = r.bytes(32).try_into().unwrap();
			RuntimeCall::Validation(V::expose_plant { job: job(r), secret })
		},
		92 => RuntimeCall::Tasks(T::reap_job { job: job(r) }),
		93 => RuntimeCall::Rewards(R::claim {}),
		94 => RuntimeCall::Rewards(R::payout { who: account(r.pick(&ACCOUNTS)) }),
		95 => RuntimeCall::Balances(pallet_balances::Call::transfer_allow_death {
			dest: account(r.pick(&ACCOUNTS)).into(),
			value: r.amount(),
		}),
		// Governance's parameter changes, from the root origin (as an enacted referendum
		// would) and from plain accounts (which must fail): wild values and near neighbours
		// of the current ones, every field's bounds included.
		_ => {
			if r.chance(80) {
				origin = Some(RuntimeOrigin::root());
			}
			let wild = r.chance(30);
			let call = match r.below(5) {
				4 => {
					let current = pallet_inference::ProtocolParams::<Runtime>::get();
					let params = if wild { r.decoded() } else { r.mutated(&current) };
					params.map(|params| {
						RuntimeCall::Inference(pallet_inference::Call::set_params { params })
					})
				},
				0 => {
					let current = pallet_contributions::ProtocolParams::<Runtime>::get();
					let params = if wild { r.decoded() } else { r.mutated(&current) };
					params.map(|params| RuntimeCall::Contributions(C::set_params { params }))
				},
				1 => {
					let current = pallet_tasks::ProtocolParams::<Runtime>::get();
					let params = if wild { r.decoded() } else { r.mutated(&current) };
					params.map(|params| RuntimeCall::Tasks(T::set_params { params }))
				},
				2 => {
					let current = pallet_validation::ProtocolParams::<Runtime>::get();
					let params = if wild { r.decoded() } else { r.mutated(&current) };
					params.map(|params| RuntimeCall::Validation(V::set_params { params }))
				},
				_ => {
					let current = pallet_rewards::ProtocolParams::<Runtime>::get();
					let params = if wild { r.decoded() } else { r.mutated(&current) };
					params.map(|params| RuntimeCall::Rewards(R::set_params { params }))
				},
			};
			call.unwrap_or(RuntimeCall::Rewards(R::claim {}))
		},
	};
	(origin.unwrap_or_else(|| RuntimeOrigin::signed(who)), call)
}

/// A model in the catalogue, mostly, or a wild id.
fn model(r: &mut Rng) -> u64 {
	let listed: Vec<u64> = pallet_inference::Models::<Runtime>::iter_keys().collect();
	if !listed.is_empty() && r.chance(90) {
		listed[r.below(listed.len() as u64) as usize]
	} else {
		r.below(8)
	}
}

/// An open channel, mostly, or a wild id.
fn channel(r: &mut Rng) -> u64 {
	let open: Vec<u64> = pallet_inference::Channels::<Runtime>::iter_keys().collect();
	if !open.is_empty() && r.chance(90) {
		open[r.below(open.len() as u64) as usize]
	} else {
		r.below(8)
	}
}

/// A batch or audit id near the pallet's next one.
fn recent(r: &mut Rng, next: u64) -> u64 {
	next.saturating_sub(1 + r.below(4))
}

/// One of the inference market's calls, from the account that makes sense for it mostly
/// (`who` is replaced): the owner, a provider, a client, an auditor.
fn inference_call(r: &mut Rng, memory: &mut Memory, who: &mut AccountId) -> RuntimeCall {
	use pallet_inference::{AuditVerdict, Call as I};
	let verdict = |r: &mut Rng| {
		r.pick(&[AuditVerdict::Correct, AuditVerdict::Wrong, AuditVerdict::Unavailable])
	};
	match r.below(18) {
		0 => {
			let model = model(r);
			if let Some(entry) = pallet_inference::Models::<Runtime>::get(model) {
				if r.chance(90) {
					*who = entry.owner;
				}
			}
			let len = r.pick(&[0, 10, 64]);
			let license = frame_support::BoundedVec::truncate_from(r.bytes(len));
			let access = if r.chance(80) {
				pallet_inference::Access::Public
			} else {
				pallet_inference::Access::OwnerOnly
			};
			RuntimeCall::Inference(I::set_terms { model, license, access })
		},
		1 => {
			let model = model(r);
			if let Some(entry) = pallet_inference::Models::<Runtime>::get(model) {
				*who = entry.owner;
			}
			RuntimeCall::Inference(I::delist { model })
		},
		2 | 3 => {
			if let Some(worker) = registered_worker(r) {
				*who = worker;
			}
			let model = model(r);
			let version = pallet_inference::Models::<Runtime>::get(model)
				.map(|e| if r.chance(90) { e.latest } else { 0 })
				.unwrap_or(1);
			let price = r.pick(&[0, 1, AGR / 1_000, AGR, Balance::MAX]);
			let len = r.pick(&[0, 38, 64]);
			let peer_id = frame_support::BoundedVec::truncate_from(r.bytes(len));
			RuntimeCall::Inference(I::offer { model, version, price, peer_id })
		},
		4 => {
			let model = model(r);
			RuntimeCall::Inference(I::withdraw_offer { model })
		},
		5 | 6 => {
			let offers: Vec<(AccountId, u64)> =
				pallet_inference::Offers::<Runtime>::iter_keys().collect();
			let (provider, model) = if !offers.is_empty() && r.chance(90) {
				offers[r.below(offers.len() as u64) as usize].clone()
			} else {
				(account(r.pick(&ACCOUNTS)), model(r))
			};
			let max_price = r.pick(&[0, AGR, Balance::MAX]);
			RuntimeCall::Inference(I::open_channel {
				provider,
				model,
				max_price,
				amount: r.amount(),
			})
		},
		7 => {
			let channel = channel(r);
			if let Some(c) = pallet_inference::Channels::<Runtime>::get(channel) {
				*who = c.client;
			}
			RuntimeCall::Inference(I::top_up { channel, amount: r.amount() })
		},
		8 | 9 => {
			// The provider settles a receipt its client signed, mostly well formed: more
			// requests answered at the channel's price, or a stale, greedy or forged one.
			let channel = channel(r);
			let c = pallet_inference::Channels::<Runtime>::get(channel);
			let (client, price, settled) = c
				.as_ref()
				.map(|c| (c.client.clone(), c.price, c.settled_requests))
				.unwrap_or((account(Keyring::Bob), 1, 0));
			if let Some(c) = &c {
				*who = c.provider.clone();
			}
			let answered = memory.answered.entry(channel).or_insert(settled);
			*answered = (*answered).max(settled) + r.pick(&[0, 1, 5, 100]);
			let requests = if r.chance(90) { *answered } else { r.next() };
			let amount = match r.below(10) {
				0 => price.saturating_mul(Balance::from(requests)).saturating_add(1),
				1 => 0,
				_ => price.saturating_mul(Balance::from(requests)),
			};
			let receipt =
				pallet_inference::Receipt { channel, requests, amount, transcript: hash(r) };
			let genesis = frame_system::Pallet::<Runtime>::block_hash(0);
			let payload = pallet_inference::receipt_payload(&genesis, &receipt);
			let signer = if r.chance(90) {
				ACCOUNTS.into_iter().find(|k| account(*k) == client).unwrap_or(Keyring::Bob)
			} else {
				r.pick(&ACCOUNTS)
			};
			let signature = sp_runtime::MultiSignature::Sr25519(signer.sign(&payload));
			RuntimeCall::Inference(I::settle { receipt, signature })
		},
		10 => {
			let batch = recent(r, pallet_inference::NextBatch::<Runtime>::get());
			RuntimeCall::Inference(I::clear_batch { batch })
		},
		11 => {
			let batch = recent(r, pallet_inference::NextBatch::<Runtime>::get());
			let b = pallet_inference::Batches::<Runtime>::get(batch);
			if let Some(c) =
				b.as_ref().and_then(|b| pallet_inference::Channels::<Runtime>::get(b.channel))
			{
				*who = c.client;
			}
			let request = b.map(|b| b.first_request + r.below(2)).unwrap_or(1);
			RuntimeCall::Inference(I::dispute { batch, request })
		},
		12 => {
			let audit = recent(r, pallet_inference::NextAudit::<Runtime>::get());
			if let Some(a) = pallet_inference::Audits::<Runtime>::get(audit) {
				let auditor = a.auditors[r.below(a.auditors.len() as u64) as usize].who.clone();
				*who = auditor;
			}
			let (verdict, salt): (AuditVerdict, [u8; 32]) =
				(verdict(r), r.bytes(32).try_into().unwrap());
			memory.audits.entry((who.clone(), audit)).or_insert((verdict, salt));
			let (verdict, salt) = memory.audits[&(who.clone(), audit)];
			let commitment = pallet_inference::audit_commitment_of(audit, verdict, &salt, who);
			RuntimeCall::Inference(I::commit_audit { audit, commitment })
		},
		13 => {
			let audit = recent(r, pallet_inference::NextAudit::<Runtime>::get());
			let committed: Vec<AccountId> = memory
				.audits
				.keys()
				.filter(|(_, a)| *a == audit)
				.map(|(who, _)| who.clone())
				.collect();
			if let Some(auditor) = any_of(r, committed) {
				*who = auditor;
			}
			let (verdict, salt) =
				memory.audits.get(&(who.clone(), audit)).copied().unwrap_or((verdict(r), [0; 32]));
			RuntimeCall::Inference(I::reveal_audit { audit, verdict, salt })
		},
		14 => {
			let audit = recent(r, pallet_inference::NextAudit::<Runtime>::get());
			RuntimeCall::Inference(I::conclude_audit { audit })
		},
		15 => {
			// A client puts a request on chain: empty, small or as large as allowed.
			let channel = channel(r);
			if let Some(c) = pallet_inference::Channels::<Runtime>::get(channel) {
				*who = c.client;
			}
			let max =
				<pallet_inference::MaxChallengeBytes as frame_support::traits::Get<u32>>::get();
			let len = r.pick(&[0, 1, 256, max as u64]) as usize;
			let input = frame_support::BoundedVec::truncate_from(r.bytes(len));
			RuntimeCall::Inference(I::challenge { channel, input })
		},
		16 => {
			// Its provider answers it (anything), or anyone expires it.
			let channel = channel(r);
			let c = pallet_inference::Channels::<Runtime>::get(channel);
			if r.chance(70) {
				if let Some(c) = c {
					*who = c.provider;
				}
				let output = {
					let len = r.below(64) as usize;
					frame_support::BoundedVec::truncate_from(r.bytes(len))
				};
				RuntimeCall::Inference(I::answer_challenge { channel, output, receipt: None })
			} else {
				RuntimeCall::Inference(I::expire_challenge { channel })
			}
		},
		_ => {
			let channel = channel(r);
			if let Some(c) = pallet_inference::Channels::<Runtime>::get(channel) {
				*who = if r.chance(50) { c.client } else { c.provider };
			}
			if r.chance(50) {
				RuntimeCall::Inference(I::close_channel { channel })
			} else {
				RuntimeCall::Inference(I::finish_close { channel })
			}
		},
	}
}

/// The calls honest participants make for the duties the chain gives them (train, commit and
/// reveal verdicts, commit and reveal aggregates), each left out one time in ten (a no-show, a
/// validator that never reveals): what carries rounds through verification to settlement while
/// the random calls around them try to derail them.
fn honest_duties(r: &mut Rng, memory: &mut Memory) -> Vec<(RuntimeOrigin, RuntimeCall)> {
	use agora_primitives::Duty;
	use pallet_tasks::Call as T;
	use pallet_validation::Call as V;
	let mut calls = Vec::new();
	for who in ACCOUNTS.map(account) {
		let mut duties = pallet_tasks::Pallet::<Runtime>::worker_duties(&who);
		duties.extend(pallet_validation::Pallet::<Runtime>::validator_duties(&who));
		for duty in duties {
			if !r.chance(90) {
				continue;
			}
			let call = match duty {
				Duty::Train { job, round, .. } => {
					let Some(spec) = pallet_tasks::Jobs::<Runtime>::get(job).map(|j| j.spec) else {
						continue;
					};
					let update = Update {
						delta: honest_aggregate(job, round),
						samples: spec.samples_per_round / spec.workers_per_round.max(1),
						loss_micros: 1_000,
						checkpoint_root: H256(sp_io::hashing::blake2_256(&who.encode())),
						checkpoints: spec.local_steps.div_ceil(spec.checkpoint_interval.max(1)),
					};
					RuntimeCall::Tasks(T::submit_update { job, round, update })
				},
				Duty::Commit { job, worker, .. } => {
					let verdict = if r.chance(95) { Verdict::Valid } else { Verdict::Invalid };
					let (score, salt) = (Perbill::from_percent(60), [r.next() as u8; 32]);
					memory
						.commitments
						.insert((who.clone(), job, worker.clone()), (verdict, score, salt));
					let commitment =
						pallet_validation::commitment_of(job, &worker, verdict, score, &salt, &who);
					RuntimeCall::Validation(V::commit_verdict { job, worker, commitment })
				},
				Duty::Reveal { job, worker, .. } => {
					let Some((verdict, score, salt)) =
						memory.commitments.get(&(who.clone(), job, worker.clone())).copied()
					else {
						continue;
					};
					RuntimeCall::Validation(V::reveal_verdict { job, worker, verdict, score, salt })
				},
				Duty::Aggregate { job, round, .. } | Duty::VoteAggregate { job, round, .. } => {
					let (aggregate, salt) = (honest_aggregate(job, round), [r.next() as u8; 32]);
					memory.aggregates.insert((who.clone(), job, round), (aggregate, salt));
					let commitment = pallet_validation::aggregate_commitment_of(
						job, round, &aggregate, &salt, &who,
					);
					if matches!(duty, Duty::Aggregate { .. }) {
						RuntimeCall::Validation(V::post_aggregate { job, round, commitment })
					} else {
						RuntimeCall::Validation(V::vote_aggregate { job, round, commitment })
					}
				},
				Duty::RevealAggregate { job, round, .. } => {
					let Some((aggregate, salt)) =
						memory.aggregates.get(&(who.clone(), job, round)).copied()
					else {
						continue;
					};
					RuntimeCall::Validation(V::reveal_aggregate { job, round, aggregate, salt })
				},
			};
			calls.push((RuntimeOrigin::signed(who.clone()), call));
		}
	}
	calls
}

/// Counts of what one run did, to show that it went deep.
#[derive(Default, Debug)]
struct Tally {
	calls: u64,
	succeeded: u64,
	duties: u64,
	duties_done: u64,
	rounds_completed: u64,
	slashes: u64,
	/// Inference market events: versions listed, settlements, audits started and concluded,
	/// batches paid.
	versions_listed: u64,
	settlements: u64,
	audits_started: u64,
	audits_concluded: u64,
	batches_cleared: u64,
}

fn run(seed: u64) -> Tally {
	let mut tally = Tally::default();
	common::genesis(sp_genesis_builder::DEV_RUNTIME_PRESET).execute_with(|| {
		let mut r = Rng(seed);
		let mut memory = Memory::default();
		let mut chain = Chain::start();
		// Audit and payment windows that fit in a run (governance may set them so), so that
		// audits conclude and batches are paid while the random calls go on.
		let mut params = pallet_inference::ProtocolParams::<Runtime>::get();
		params.audit_rate = Perbill::from_percent(50);
		params.commit_period = 3;
		params.reveal_period = 3;
		params.dispute_window = 8;
		params.close_delay = 3;
		RuntimeCall::Inference(pallet_inference::Call::set_params { params })
			.dispatch(RuntimeOrigin::root())
			.expect("short inference windows are within bounds");
		for _ in 0..BLOCKS {
			for _ in 0..CALLS_PER_BLOCK {
				let (origin, call) = random_call(&mut r, &mut memory);
				tally.calls += 1;
				if call.dispatch(origin).is_ok() {
					tally.succeeded += 1;
				}
			}
			for (origin, call) in honest_duties(&mut r, &mut memory) {
				tally.duties += 1;
				if call.dispatch(origin).is_ok() {
					tally.duties_done += 1;
				}
			}
			chain.next_block();
			for event in chain.events.drain(..) {
				match event {
					agora_runtime::RuntimeEvent::Tasks(pallet_tasks::Event::RoundCompleted {
						..
					}) => tally.rounds_completed += 1,
					agora_runtime::RuntimeEvent::Contributions(
						pallet_contributions::Event::Slashed { .. },
					) => tally.slashes += 1,
					agora_runtime::RuntimeEvent::Inference(event) => match event {
						pallet_inference::Event::VersionListed { .. } => tally.versions_listed += 1,
						pallet_inference::Event::Settled { .. } => tally.settlements += 1,
						pallet_inference::Event::AuditStarted { .. } => tally.audits_started += 1,
						pallet_inference::Event::AuditConcluded { .. } => {
							tally.audits_concluded += 1
						},
						pallet_inference::Event::BatchCleared { .. } => tally.batches_cleared += 1,
						_ => {},
					},
					_ => {},
				}
			}
		}
		chain.close_block();
	});
	tally
}

#[test]
fn random_call_sequences_keep_every_invariant() {
	let runs =
		std::env::var("AGORA_FUZZ_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_RUNS);
	let first_seed = std::env::var("AGORA_FUZZ_SEED").ok().and_then(|v| v.parse().ok());
	let mut total = Tally::default();
	for run_index in 0..runs {
		let seed = first_seed.unwrap_or(0xA60A_u64).wrapping_add(run_index);
		let outcome = std::panic::catch_unwind(|| run(seed));
		let tally = outcome.unwrap_or_else(|_| {
			panic!("fuzz run with seed {seed} failed (AGORA_FUZZ_SEED={seed} AGORA_FUZZ_RUNS=1)")
		});
		total.calls += tally.calls;
		total.succeeded += tally.succeeded;
		total.duties += tally.duties;
		total.duties_done += tally.duties_done;
		total.rounds_completed += tally.rounds_completed;
		total.slashes += tally.slashes;
		total.versions_listed += tally.versions_listed;
		total.settlements += tally.settlements;
		total.audits_started += tally.audits_started;
		total.audits_concluded += tally.audits_concluded;
		total.batches_cleared += tally.batches_cleared;
	}
	println!("fuzz: {runs} runs, {total:?}");
	assert_eq!(total.calls, runs * u64::from(BLOCKS * CALLS_PER_BLOCK));
	// The sequences must get past the input checks (jobs created, workers selected, some of
	// them slashed) and, with the honest duties among them, carry rounds through verification,
	// aggregation and settlement.
	assert!(total.succeeded * 50 > total.calls, "fewer than 2 % of the calls succeeded: {total:?}");
	if runs >= DEFAULT_RUNS {
		assert!(total.slashes > 0, "nobody was ever slashed: {total:?}");
		assert!(total.rounds_completed > 0, "no round was ever completed: {total:?}");
		assert!(total.audits_concluded > 0, "no inference audit ever concluded: {total:?}");
		assert!(total.batches_cleared > 0, "no inference batch was ever paid: {total:?}");
	}
}
