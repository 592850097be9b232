//! The worker and validator daemons against the in-memory chain and network of [`crate::fakes`]:
//! restarts, dropped transactions, unreachable peers and nodes, declined rounds.

use std::path::Path;

use agora_chain::{
	aggregate_commitment, bounded, to_h256, verdict_commitment, AccountId32, BoundedVec,
	Dataset as ChainDataset, Duty, JobDetails, JobSpec, JobStatusView, PhasePeriods, ProtocolCall,
	RoundStatus, VerificationMode,
};
use agora_core::Digest;
use agora_ml::aggregate::Aggregator;
use agora_ml::compress::Compression;
use agora_ml::data::{digits_csv_path, load_digits, train_test_split, Dataset};
use agora_ml::models::Architecture;
use agora_ml::outer::OuterOptimizer;
use agora_ml::params::ParamSet;
use agora_ml::train::{OptimizerConfig, TrainingState};
use agora_p2p::{BlobKey, BlobNetwork};
use agora_protocol::{decode_round_model, model_blob, Hyperparameters, InnerState, Overlap};
use agora_text::tokenizer::{TextTokenizer, MIN_VOCAB};
use tch::Device;

use crate::daemon::{
	unavailable_margin, within_deadline, Conduct, Daemon, DaemonConfig, Role, FETCH_ATTEMPTS,
};
use crate::fakes::{FakeChain, FakeNet, Shared, World};

const WORKER: AccountId32 = AccountId32([1; 32]);
const VALIDATOR: AccountId32 = AccountId32([2; 32]);
const JOB: u64 = 0;
/// A pass's budget for evidence still arriving, shorter than the daemon's so that the tests of
/// stalled fetches take seconds.
const TEST_FETCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// A world with one replay-verified digits job in its training phase, whose round selected
/// `WORKER`, whose two shards a data provider's store serves and whose committed held-out
/// shard its submitter's store serves. Returns the held-out set.
fn world_with_a_job(provider_dir: &Path) -> (Shared, Dataset) {
	world_with_a_job_stepping(provider_dir, None, InnerState::Fresh)
}

/// [`world_with_a_job`] for a job whose rounds take `outer`'s step and start their optimizer
/// from `inner_state`.
fn world_with_a_job_stepping(
	provider_dir: &Path,
	outer: Option<OuterOptimizer>,
	inner_state: InnerState,
) -> (Shared, Dataset) {
	let world = Shared::default();
	let provider = FakeNet::new(&world, provider_dir);
	let digits = load_digits(&digits_csv_path()).unwrap();
	let (train, holdout) = train_test_split(&digits, 200, 0).unwrap();
	let shards: Vec<_> = [0u32..64, 64..128]
		.into_iter()
		.map(|range| {
			let bytes = train.subset(&range.collect::<Vec<_>>()).unwrap().encode_shard().unwrap();
			to_h256(&provider.store.put_blob(&bytes).unwrap())
		})
		.collect();
	// The submitter serves the held-out shard its job commits to.
	let submitter = FakeNet::new(&world, &provider_dir.join("submitter"));
	let holdout_shard = submitter.store.put_blob(&holdout.encode_shard().unwrap()).unwrap();
	let arch = Architecture::from_id("mlp-digits").unwrap();
	let hyperparameters = Hyperparameters {
		optimizer: OptimizerConfig::sgd(0.05, 0.9),
		batch_size: 16,
		seed: 3,
		init_seed: 1,
		aggregator: Aggregator::FedAvg,
		compression: Some(Compression::Int8),
		holdout: vec![holdout_shard],
		tokenizer: None,
		schedule: Default::default(),
		clip_norm: None,
		micro_batches: 1,
		outer,
		inner_state,
		precision: Default::default(),
		overlap: Overlap::Sequential,
	};
	let initial = model_blob(&arch, &arch.initial_params(1).unwrap()).unwrap();
	let initial = to_h256(&Digest::of(&[&initial]));
	let spec = JobSpec {
		architecture: bounded(arch.id().into_bytes()),
		hyperparameters: bounded(serde_json::to_vec(&hyperparameters).unwrap()),
		initial_weights: initial,
		dataset: ChainDataset::Shards(BoundedVec(shards)),
		rounds: 1,
		local_steps: 6,
		checkpoint_interval: 2,
		samples_per_round: 96,
		workers_per_round: 1,
		validators_per_update: 2,
		mode: VerificationMode::Replay,
		periods: PhasePeriods { open: 5, training: 50, commit: 50, reveal: 10, aggregation: 10 },
	};
	let details = JobDetails {
		submitter: AccountId32([9; 32]),
		spec,
		budget: 0,
		escrow: 0,
		spent: 0,
		round: 0,
		status: JobStatusView::Training,
		latest_model: initial,
		models: Vec::new(),
	};
	let round = RoundStatus {
		job: JOB,
		round: 0,
		phase: JobStatusView::Training,
		deadline: Some(60),
		applicants: vec![WORKER],
		workers: vec![(WORKER, 96, false)],
	};
	{
		let mut w = world.lock().unwrap();
		w.best = 10;
		w.jobs.insert(JOB, details);
		w.rounds.insert(JOB, round);
		w.duties.insert(WORKER, vec![Duty::Train { job: JOB, round: 0, quota: 96, deadline: 60 }]);
	}
	(world, holdout)
}

fn daemon(
	world: &Shared,
	me: AccountId32,
	role: Role,
	state_dir: &Path,
	holdout: Option<Dataset>,
) -> Daemon<FakeChain, FakeNet> {
	let net = FakeNet::new(world, &state_dir.join("store"));
	daemon_on(net, world, me, role, state_dir, holdout, Conduct::Honest)
}

fn daemon_on<N: BlobNetwork>(
	net: N,
	world: &Shared,
	me: AccountId32,
	role: Role,
	state_dir: &Path,
	holdout: Option<Dataset>,
	conduct: Conduct,
) -> Daemon<FakeChain, N> {
	let config = DaemonConfig {
		role,
		state_dir: state_dir.to_path_buf(),
		stake: 0,
		public_addr: "/ip4/127.0.0.1/tcp/1".into(),
		conduct,
		holdout,
		private_data: None,
		memory_mib: 0,
		device: Device::Cpu,
		fetch_budget_per_pass: TEST_FETCH_BUDGET,
	};
	Daemon::new(FakeChain { me, world: world.clone() }, net, config).unwrap()
}

fn sent(world: &Shared, who: AccountId32) -> Vec<ProtocolCall> {
	world.lock().unwrap().sent.iter().filter(|(by, _)| *by == who).map(|(_, c)| c.clone()).collect()
}

fn duties_of(world: &Shared, who: AccountId32) -> usize {
	world.lock().unwrap().duties.get(&who).map_or(0, Vec::len)
}

fn world(world: &Shared) -> std::sync::MutexGuard<'_, World> {
	world.lock().unwrap()
}

#[tokio::test]
async fn duties_survive_a_node_away_a_dropped_transaction_and_restarts() {
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, _) = world_with_a_job(dirs[0].path());

	// The node is away: the pass fails, nothing is sent, the duty stays.
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	world(&shared).node_down = true;
	assert!(worker.tick().await.is_err());
	assert!(sent(&shared, WORKER).is_empty());

	// It is back, but a reorganization drops the submitted update: the duty is still there.
	{
		let mut w = world(&shared);
		w.node_down = false;
		w.drop_next = 1;
	}
	worker.tick().await.unwrap();
	let first = sent(&shared, WORKER);
	assert!(matches!(first.as_slice(), [ProtocolCall::SubmitUpdate { .. }]), "{first:?}");
	assert_eq!(duties_of(&shared, WORKER), 1);

	// A restarted worker submits the same update from its record, without training again:
	// the data provider is gone, so training could not even fetch its shards.
	world(&shared).stores.remove(0);
	drop(worker);
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	worker.tick().await.unwrap();
	let calls = sent(&shared, WORKER);
	assert_eq!(calls.len(), 2);
	assert_eq!(calls[0], calls[1], "the same update, not a new one");
	assert_eq!(duties_of(&shared, WORKER), 0);
	let update = world(&shared).updates[&(JOB, WORKER)].clone();
	assert_eq!(update.checkpoints, 3, "6 steps with a checkpoint every 2");

	// A validator assigned the update: a fetch of its evidence fails at every attempt of the
	// pass, so it tries again at the next pass (the deadline is far) rather than judging the
	// update unavailable. (The held-out data is fetched beside the evidence: as many failures
	// again, so that both fail at every attempt.)
	world(&shared).duties.insert(
		VALIDATOR,
		vec![Duty::Commit {
			job: JOB,
			round: 0,
			worker: WORKER,
			segments: vec![0, 2],
			deadline: 60,
		}],
	);
	world(&shared).failing_fetches = 2 * FETCH_ATTEMPTS as usize;
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), None);
	validator.tick().await.unwrap();
	assert!(sent(&shared, VALIDATOR).is_empty(), "no verdict on a transient failure");
	validator.tick().await.unwrap();
	let commitment = match sent(&shared, VALIDATOR).as_slice() {
		[ProtocolCall::CommitVerdict { worker, commitment, .. }] if *worker == WORKER => {
			*commitment
		},
		other => panic!("expected one commitment, got {other:?}"),
	};

	// Restarted before the reveal stage: it reveals the verdict it committed to.
	drop(validator);
	world(&shared)
		.duties
		.insert(VALIDATOR, vec![Duty::Reveal { job: JOB, round: 0, worker: WORKER, deadline: 70 }]);
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), None);
	validator.tick().await.unwrap();
	match sent(&shared, VALIDATOR).last() {
		Some(ProtocolCall::RevealVerdict { verdict, score, salt, .. }) => {
			assert_eq!(*verdict, agora_chain::Verdict::Valid, "an honest update");
			assert_eq!(
				verdict_commitment(JOB, &WORKER, verdict, score.0, salt, &VALIDATOR),
				commitment
			);
		},
		other => panic!("expected a reveal, got {other:?}"),
	}
}

/// The aggregator and a validator of the round compute the same aggregate, commit to it
/// without showing it (the commitments differ: each is bound to its author), and after a
/// restart each reveals the hash and salt that open its own commitment.
#[tokio::test]
async fn aggregator_and_voter_commit_to_one_aggregate_and_reveal_it_after_a_restart() {
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, holdout) = world_with_a_job(dirs[0].path());
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	worker.tick().await.unwrap();
	assert!(matches!(sent(&shared, WORKER).as_slice(), [ProtocolCall::SubmitUpdate { .. }]));
	{
		let mut w = world(&shared);
		w.accepted.insert(JOB, (0, vec![WORKER]));
		w.duties.insert(WORKER, vec![Duty::Aggregate { job: JOB, round: 0, deadline: 80 }]);
		w.duties.insert(VALIDATOR, vec![Duty::VoteAggregate { job: JOB, round: 0, deadline: 80 }]);
	}
	let mut validator =
		daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), Some(holdout.clone()));
	worker.tick().await.unwrap();
	// The validator's vote looks dropped, so it votes again at the next pass: with the same
	// commitment, so that whichever of the two lands can be revealed.
	world(&shared).drop_next = 1;
	validator.tick().await.unwrap();
	validator.tick().await.unwrap();
	let votes: Vec<_> = sent(&shared, VALIDATOR)
		.into_iter()
		.filter(|c| matches!(c, ProtocolCall::VoteAggregate { .. }))
		.collect();
	assert_eq!(votes.len(), 2, "{votes:?}");
	assert_eq!(votes[0], votes[1], "a vote sent again is the same commitment");
	let posted = match sent(&shared, WORKER).last() {
		Some(ProtocolCall::PostAggregate { commitment, .. }) => *commitment,
		other => panic!("expected the aggregator's commitment, got {other:?}"),
	};
	let voted = match sent(&shared, VALIDATOR).last() {
		Some(ProtocolCall::VoteAggregate { commitment, .. }) => *commitment,
		other => panic!("expected the validator's commitment, got {other:?}"),
	};
	assert_ne!(posted, voted, "a commitment shows nothing another account could reuse");

	drop((worker, validator));
	{
		let mut w = world(&shared);
		w.duties.insert(WORKER, vec![Duty::RevealAggregate { job: JOB, round: 0, deadline: 90 }]);
		w.duties
			.insert(VALIDATOR, vec![Duty::RevealAggregate { job: JOB, round: 0, deadline: 90 }]);
	}
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), Some(holdout));
	worker.tick().await.unwrap();
	validator.tick().await.unwrap();
	let revealed = |who: AccountId32, commitment| match sent(&shared, who).last() {
		Some(ProtocolCall::RevealAggregate { job, round, model, salt }) => {
			assert_eq!(aggregate_commitment(*job, *round, model, salt, &who), commitment);
			*model
		},
		other => panic!("expected a reveal, got {other:?}"),
	};
	assert_eq!(revealed(WORKER, posted), revealed(VALIDATOR, voted), "one aggregate");
}

/// Aggregates round `round` of `JOB` from `WORKER`'s update: the worker posts, the validator
/// votes, both reveal; returns the revealed model hash.
async fn aggregate_round(
	shared: &Shared,
	worker: &mut Daemon<FakeChain, FakeNet>,
	validator: &mut Daemon<FakeChain, FakeNet>,
	round: u32,
) -> agora_chain::H256 {
	{
		let mut w = world(shared);
		w.accepted.insert(JOB, (round, vec![WORKER]));
		w.duties.insert(WORKER, vec![Duty::Aggregate { job: JOB, round, deadline: 80 }]);
		w.duties.insert(VALIDATOR, vec![Duty::VoteAggregate { job: JOB, round, deadline: 80 }]);
	}
	worker.tick().await.unwrap();
	validator.tick().await.unwrap();
	{
		let mut w = world(shared);
		w.duties.insert(WORKER, vec![Duty::RevealAggregate { job: JOB, round, deadline: 90 }]);
		w.duties.insert(VALIDATOR, vec![Duty::RevealAggregate { job: JOB, round, deadline: 90 }]);
	}
	worker.tick().await.unwrap();
	validator.tick().await.unwrap();
	let revealed = |who: AccountId32| match sent(shared, who).last() {
		Some(ProtocolCall::RevealAggregate { model, .. }) => *model,
		other => panic!("expected a reveal, got {other:?}"),
	};
	assert_eq!(revealed(WORKER), revealed(VALIDATOR), "one aggregate");
	revealed(WORKER)
}

/// A DiLoCo job over two rounds that carries its inner optimizer: the first round's record
/// carries the outer momentum and the mean of the runs' final optimizer buffers (the aggregator
/// and the voter each fetch and check the worker's last checkpoint), the worker's second run
/// starts from those buffers where the first left off, and the second round's aggregator and
/// voter (who fetch the record like anyone) step from the first record's momentum.
#[tokio::test]
async fn a_diloco_job_carries_its_outer_momentum_and_inner_state_from_round_to_round() {
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let outer = OuterOptimizer::diloco();
	let (shared, holdout) =
		world_with_a_job_stepping(dirs[0].path(), Some(outer), InnerState::Averaged);
	let arch = Architecture::from_id("mlp-digits").unwrap();
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), Some(holdout));
	let mut records = Vec::new();
	let mut starts = Vec::new();
	// Rounds are numbered from 1, as on chain.
	for round in 1..=2u32 {
		{
			let previous = records.last().map(|(hash, _)| *hash);
			let mut w = world(&shared);
			let job = w.jobs.get_mut(&JOB).unwrap();
			job.round = round;
			if let Some(previous) = previous {
				job.latest_model = previous;
				job.models.push((round - 1, previous));
			}
			w.rounds.get_mut(&JOB).unwrap().round = round;
			w.duties.insert(WORKER, vec![Duty::Train { job: JOB, round, quota: 96, deadline: 60 }]);
		}
		worker.tick().await.unwrap();
		let Some(ProtocolCall::SubmitUpdate { round: submitted, update, .. }) =
			sent(&shared, WORKER).last().cloned()
		else {
			panic!("the worker submits an update");
		};
		assert_eq!(submitted, round);
		let key = BlobKey::Commitment(Digest(update.checkpoint_root.0));
		let commitment = world(&shared).stores.iter().find_map(|store| store.get(&key).unwrap());
		let commitment: agora_proof::TrainingCommitment =
			serde_json::from_slice(&commitment.expect("the worker serves its commitment")).unwrap();
		starts.push(commitment.leaves[0].state_hash);
		let hash = aggregate_round(&shared, &mut worker, &mut validator, round).await;
		let key = BlobKey::Blob(Digest(hash.0));
		let blob = world(&shared)
			.stores
			.iter()
			.find_map(|store| store.get(&key).unwrap())
			.expect("the aggregators keep the record");
		records.push((hash, decode_round_model(&arch, &blob).unwrap()));
	}
	// With m' = 0.9 m + g and w' = w - 0.7 (g + 0.9 m'), each record's weights follow from the
	// previous record and its own momentum: from zero momentum in the first round, from the
	// first record's in the second.
	let initial = arch.initial_params(1).unwrap();
	let mut previous = (initial, ParamSet::zeros(arch.layout().unwrap()));
	for (_, record) in &records {
		let momentum = record.outer_momentum.as_ref().expect("the record carries the momentum");
		let (weights, before) = &previous;
		let expected: Vec<f32> = weights
			.values()
			.iter()
			.zip(before.values())
			.zip(momentum.values())
			.map(|((w, m), next)| {
				let gradient = next - 0.9 * m;
				w - 0.7 * (gradient + 0.9 * next)
			})
			.collect();
		let error = expected
			.iter()
			.zip(record.params.values())
			.map(|(e, a)| (e - a).abs())
			.fold(0f32, f32::max);
		assert!(error < 1e-5, "weights off the outer step by {error}");
		assert!(momentum.l2_norm() > 0.0);
		previous = (record.params.clone(), momentum.clone());
	}
	// The second run started at step 6 (after the first round's 6 steps) from the first
	// record's weights and optimizer buffers.
	let (_, first) = &records[0];
	let buffers = first.inner_optimizer.clone().expect("the record carries the inner state");
	assert!(buffers.l2_norm() > 0.0);
	let carried = TrainingState { step: 6, params: first.params.clone(), optimizer: buffers };
	assert_eq!(starts[1], carried.content_hash());
}

/// A job no validator can verify (here an architecture nobody knows, as an attacker's own
/// workers would train it): the assigned validator retries while the deadline is far, then
/// commits and reveals `Unavailable`, which never slashes a validator, instead of staying
/// silent, which would (`no_reveal_slash`).
#[tokio::test]
async fn a_validator_reports_a_job_it_cannot_verify_as_unavailable_rather_than_stay_silent() {
	let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, _) = world_with_a_job(dirs[0].path());
	{
		let mut w = world(&shared);
		w.duties.clear();
		w.jobs.get_mut(&JOB).unwrap().spec.architecture = bounded(b"no-such-architecture".to_vec());
		w.updates.insert(
			(JOB, WORKER),
			agora_chain::Update {
				delta: to_h256(&Digest::of(&[b"delta".as_slice()])),
				samples: 96,
				loss_micros: 1,
				checkpoint_root: to_h256(&Digest::of(&[b"root".as_slice()])),
				checkpoints: 3,
			},
		);
		w.duties.insert(
			VALIDATOR,
			vec![Duty::Commit {
				job: JOB,
				round: 0,
				worker: WORKER,
				segments: vec![0],
				deadline: 60,
			}],
		);
	}
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[1].path(), None);
	validator.tick().await.unwrap();
	assert!(sent(&shared, VALIDATOR).is_empty(), "the deadline is far: it asks again later");
	world(&shared).best = 58;
	validator.tick().await.unwrap();
	assert!(
		matches!(sent(&shared, VALIDATOR).as_slice(), [ProtocolCall::CommitVerdict { worker, .. }] if *worker == WORKER),
		"{:?}",
		sent(&shared, VALIDATOR)
	);
	world(&shared)
		.duties
		.insert(VALIDATOR, vec![Duty::Reveal { job: JOB, round: 0, worker: WORKER, deadline: 70 }]);
	validator.tick().await.unwrap();
	match sent(&shared, VALIDATOR).last() {
		Some(ProtocolCall::RevealVerdict { verdict, .. }) => {
			assert_eq!(*verdict, agora_chain::Verdict::Unavailable)
		},
		other => panic!("expected a reveal, got {other:?}"),
	}
}

/// Puts the world's job back in its open phase, nobody applied and no duties yet; returns the
/// round's status for other jobs to copy.
fn open_round(w: &mut World) -> RoundStatus<AccountId32, u32> {
	w.duties.clear();
	let mut open = w.rounds[&JOB].clone();
	open.phase = JobStatusView::Open;
	open.applicants.clear();
	open.workers.clear();
	open
}

#[tokio::test]
async fn a_worker_declines_rounds_it_cannot_run_and_applies_once_to_others() {
	let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, _) = world_with_a_job(dirs[0].path());
	{
		let mut w = world(&shared);
		let open = open_round(&mut w);
		let mut unknown = w.jobs[&JOB].clone();
		unknown.spec.architecture = bounded(b"no-such-architecture".to_vec());
		w.rounds.insert(JOB, open.clone());
		w.rounds.insert(1, RoundStatus { job: 1, ..open });
		w.jobs.insert(1, unknown);
	}
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	worker.tick().await.unwrap();
	worker.tick().await.unwrap();
	assert_eq!(sent(&shared, WORKER), vec![ProtocolCall::ApplyForRound { job: JOB }]);
}

/// While a round trains, a worker applies for the next one, whose workers are drawn when the
/// training closes: drawn, it starts training as soon as the round ends. Not in a job's last
/// round, and once.
#[tokio::test]
async fn a_worker_applies_for_the_next_round_while_this_one_trains() {
	let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, _) = world_with_a_job(dirs[0].path());
	{
		let mut w = world(&shared);
		w.duties.clear();
		let round = w.rounds.get_mut(&JOB).unwrap();
		round.round = 1;
		round.applicants.clear();
	}
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	worker.tick().await.unwrap();
	assert!(sent(&shared, WORKER).is_empty(), "round 1 is the job's last");
	world(&shared).jobs.get_mut(&JOB).unwrap().spec.rounds = 2;
	worker.tick().await.unwrap();
	worker.tick().await.unwrap();
	assert_eq!(sent(&shared, WORKER), vec![ProtocolCall::ApplyForRound { job: JOB }]);
}

/// A language-model job pins its tokenizer by hash: a worker applies only once it has fetched
/// the tokenizer from a peer (and then serves it itself), and declines a job whose tokenizer
/// nobody serves, produces tokens the model cannot read, or is not a tokenizer at all: a hash
/// that names a blob the worker serves (its own update, say) leaves that blob where it is.
#[tokio::test]
async fn a_worker_applies_to_a_language_model_job_only_with_its_tokenizer_served_and_fitting() {
	let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, _) = world_with_a_job(dirs[0].path());
	let documents = (0..200).map(|i| format!("the model reads token {i} and writes the next one"));
	let tokenizer = TextTokenizer::train(documents, MIN_VOCAB).unwrap();
	let served = FakeNet::new(&shared, &dirs[0].path().join("provider"));
	served.store.put(&BlobKey::Blob(tokenizer.hash()), tokenizer.json()).unwrap();
	let worker_store = agora_p2p::BlobStore::open(&dirs[1].path().join("store")).unwrap();
	let own_update = worker_store.put_blob(b"the worker's submitted update").unwrap();
	let job_on = |vocab: usize, pinned: Digest, w: &World| {
		let mut job = w.jobs[&JOB].clone();
		let arch = format!("gpt:vocab={vocab},ctx=8,width=16,heads=2,layers=1");
		job.spec.architecture = bounded(arch.into_bytes());
		let mut hyperparameters: Hyperparameters =
			serde_json::from_slice(&job.spec.hyperparameters.0).unwrap();
		hyperparameters.tokenizer = Some(pinned);
		job.spec.hyperparameters = bounded(serde_json::to_vec(&hyperparameters).unwrap());
		job
	};
	{
		let mut w = world(&shared);
		let open = open_round(&mut w);
		let fitting = job_on(512, tokenizer.hash(), &w);
		let unserved = job_on(512, Digest([7; 32]), &w);
		let too_small = job_on(256, tokenizer.hash(), &w);
		let not_a_tokenizer = job_on(512, own_update, &w);
		for (job, details) in [(1, fitting), (2, unserved), (3, too_small), (4, not_a_tokenizer)] {
			w.jobs.insert(job, details);
			w.rounds.insert(job, RoundStatus { job, ..open.clone() });
		}
		w.jobs.remove(&JOB);
		w.rounds.remove(&JOB);
	}
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	worker.tick().await.unwrap();
	worker.tick().await.unwrap();
	assert_eq!(sent(&shared, WORKER), vec![ProtocolCall::ApplyForRound { job: 1 }]);
	let key = BlobKey::Blob(tokenizer.hash());
	assert_eq!(worker_store.get(&key).unwrap().as_deref(), Some(tokenizer.json()), "it serves it");
	let kept = worker_store.get(&BlobKey::Blob(own_update)).unwrap();
	assert_eq!(kept.as_deref(), Some(&b"the worker's submitted update"[..]));
}

/// Two honest validators score an update on the held-out set the job commits to (neither has
/// one of its own) and reveal the same score; one of them is behind a network whose first
/// download of every blob fails, and still commits in its first pass.
#[cfg(feature = "cheats")]
#[tokio::test]
async fn honest_validators_agree_on_the_committed_holdout_even_behind_a_flaky_network() {
	use crate::faults::FlakyNetwork;

	const OTHER: AccountId32 = AccountId32([3; 32]);
	let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, _) = world_with_a_job(dirs[0].path());
	daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None).tick().await.unwrap();
	let commit =
		|worker| Duty::Commit { job: JOB, round: 0, worker, segments: vec![2], deadline: 60 };
	let reveal = |worker| Duty::Reveal { job: JOB, round: 0, worker, deadline: 70 };
	for validator in [VALIDATOR, OTHER] {
		world(&shared).duties.insert(validator, vec![commit(WORKER)]);
	}
	let flaky = FlakyNetwork::new(FakeNet::new(&shared, &dirs[2].path().join("store")));
	let mut flaky = daemon_on(
		flaky,
		&shared,
		VALIDATOR,
		Role::Validator,
		dirs[2].path(),
		None,
		Conduct::Honest,
	);
	let mut steady = daemon(&shared, OTHER, Role::Validator, dirs[3].path(), None);
	flaky.tick().await.unwrap();
	steady.tick().await.unwrap();
	for validator in [VALIDATOR, OTHER] {
		assert_eq!(sent(&shared, validator).len(), 1, "committed in one pass");
		world(&shared).duties.insert(validator, vec![reveal(WORKER)]);
	}
	flaky.tick().await.unwrap();
	steady.tick().await.unwrap();
	let revealed = |validator| match sent(&shared, validator).last() {
		Some(ProtocolCall::RevealVerdict { verdict, score, .. }) => (verdict.clone(), score.0),
		other => panic!("expected a reveal, got {other:?}"),
	};
	let (verdict, score) = revealed(VALIDATOR);
	assert_eq!(verdict, agora_chain::Verdict::Valid);
	assert!(score > 500_000_000, "training from the initial weights gains: {score}");
	assert_eq!(revealed(OTHER), (verdict, score), "the same score, not merely a close one");
}

/// The whole cheat catalogue against an honest validator that replays every segment: each
/// cheating worker's update is judged `Invalid`, or `Unavailable` where it serves no evidence
/// (a planted update included: no training commitment matches its root), and the honest
/// worker's update beside it `Valid`.
#[cfg(feature = "cheats")]
#[tokio::test]
async fn every_cheat_of_the_catalogue_is_caught_by_an_honest_validator() {
	use crate::daemon::SubmissionCheat;
	use agora_chain::Verdict;
	use std::collections::BTreeMap;

	const HONEST: AccountId32 = AccountId32([4; 32]);
	let training = ["skip-steps", "random-weights", "copied-weights", "fewer-samples"]
		.into_iter()
		.chain(["substituted-data", "fewer-steps"])
		.map(|name| (name, Conduct::Cheat(agora_protocol::parse_cheat(name).unwrap())));
	let submission = SubmissionCheat::NAMES
		.into_iter()
		.map(|name| (name, Conduct::Submission(SubmissionCheat::parse(name).unwrap())));
	let catalogue: Vec<_> = training.chain(submission).chain([("plant", Conduct::Plant)]).collect();
	assert_eq!(catalogue.len(), 12);
	for (name, conduct) in catalogue {
		let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
		let (shared, _) = world_with_a_job(dirs[0].path());
		// Two selected workers: the honest one first (it has an update to copy), one shard each.
		{
			let mut w = world(&shared);
			let status = w.rounds.get_mut(&JOB).unwrap();
			status.workers = vec![(HONEST, 96, false), (WORKER, 96, false)];
			let train = Duty::Train { job: JOB, round: 0, quota: 96, deadline: 60 };
			w.duties.insert(HONEST, vec![train.clone()]);
			w.duties.insert(WORKER, vec![train]);
		}
		daemon(&shared, HONEST, Role::Worker, dirs[1].path(), None).tick().await.unwrap();
		let net = FakeNet::new(&shared, &dirs[2].path().join("store"));
		let mut cheater =
			daemon_on(net, &shared, WORKER, Role::Worker, dirs[2].path(), None, conduct);
		cheater.tick().await.unwrap();
		if name == "replayed-run" {
			// Its first round is honest (nothing to replay yet); the next round replays it.
			{
				let mut w = world(&shared);
				w.rounds.get_mut(&JOB).unwrap().round = 1;
				let train = Duty::Train { job: JOB, round: 1, quota: 96, deadline: 60 };
				w.duties.insert(WORKER, vec![train]);
			}
			cheater.tick().await.unwrap();
		}
		let round = if name == "replayed-run" { 1 } else { 0 };
		let submitted = world(&shared).updates.contains_key(&(JOB, WORKER));
		assert!(submitted, "{name}: the chain accepted the submission");

		// The validator judges both updates; the deadline is near, so evidence that cannot be
		// fetched now is reported unavailable rather than retried.
		let near = world(&shared).best + 2;
		let commit = |worker| Duty::Commit {
			job: JOB,
			round,
			worker,
			segments: vec![0, 1, 2],
			deadline: near,
		};
		world(&shared).duties.insert(VALIDATOR, vec![commit(HONEST), commit(WORKER)]);
		let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[3].path(), None);
		validator.tick().await.unwrap();
		let reveal = |worker| Duty::Reveal { job: JOB, round, worker, deadline: near + 10 };
		world(&shared).duties.insert(VALIDATOR, vec![reveal(HONEST), reveal(WORKER)]);
		validator.tick().await.unwrap();
		let verdicts: BTreeMap<[u8; 32], Verdict> = sent(&shared, VALIDATOR)
			.into_iter()
			.filter_map(|call| match call {
				ProtocolCall::RevealVerdict { worker, verdict, .. } => Some((worker.0, verdict)),
				_ => None,
			})
			.collect();
		let expected = match name {
			"withheld-evidence" | "plant" => Verdict::Unavailable,
			_ => Verdict::Invalid,
		};
		assert_eq!(verdicts.get(&WORKER.0), Some(&expected), "{name}");
		if round == 0 {
			assert_eq!(verdicts.get(&HONEST.0), Some(&Verdict::Valid), "{name}: the honest one");
		}
	}
}

#[tokio::test]
async fn an_unseated_validator_daemon_claims_a_seat_once_one_frees() {
	let dir = tempfile::tempdir().unwrap();
	let shared = Shared::default();
	let (first, second) = (AccountId32([7; 32]), AccountId32([8; 32]));
	{
		let mut w = world(&shared);
		let registration = agora_chain::Endpoint {
			account: VALIDATOR,
			is_worker: false,
			stake: 1_000,
			active: true,
			peer_id: Vec::new(),
			multiaddr: Vec::new(),
		};
		w.registrations.insert((VALIDATOR, false), registration);
		w.seats = agora_chain::Seats {
			seated: vec![(first, 2_000), (second, 3_000)],
			capacity: 2,
			minimum: 500,
		};
	}
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dir.path(), None);
	// Every seat holds more: claiming would only be refused, and cost a fee.
	validator.tick().await.unwrap();
	assert!(sent(&shared, VALIDATOR).is_empty());
	// A seat frees (its validator left): the daemon claims it at once, and only once.
	world(&shared).seats.seated.retain(|(v, _)| *v != first);
	validator.tick().await.unwrap();
	validator.tick().await.unwrap();
	assert_eq!(sent(&shared, VALIDATOR), vec![ProtocolCall::ClaimSeat]);
	assert!(world(&shared).seats.holds(&VALIDATOR));
	// A slash lowers a seated stake below an unseated one: the unseated stake outbids it.
	{
		let mut w = world(&shared);
		w.seats.seated = vec![(first, 2_000), (second, 900)];
	}
	validator.tick().await.unwrap();
	assert_eq!(sent(&shared, VALIDATOR).len(), 2);
	// Below the minimum, or leaving, it claims nothing.
	{
		let mut w = world(&shared);
		w.seats.seated.clear();
		w.seats.minimum = 5_000;
	}
	validator.tick().await.unwrap();
	{
		let mut w = world(&shared);
		w.seats.minimum = 500;
		w.registrations.get_mut(&(VALIDATOR, false)).unwrap().active = false;
	}
	validator.tick().await.unwrap();
	assert_eq!(sent(&shared, VALIDATOR).len(), 2);
}

#[tokio::test]
async fn a_replay_that_cannot_finish_before_the_commit_deadline_is_given_up_in_time() {
	let shared = Shared::default();
	let chain = FakeChain { me: VALIDATOR, world: shared.clone() };
	world(&shared).best = 10;
	// Work that finishes is never given up, however close the deadline (here: already within
	// the margin): it is looked at before the height is.
	assert_eq!(within_deadline(&chain, 11, async { 7 }).await, Some(7));
	// Far from the deadline, slow work is waited for.
	let slow = async {
		tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
		8
	};
	assert_eq!(within_deadline(&chain, 100, slow).await, Some(8));
	// Work that never ends (a replay too long for the Commit phase on this machine) is given
	// up once the chain reaches the margin before the deadline, while the node is away too.
	let never = std::future::pending::<()>();
	let giving_up = tokio::spawn({
		let shared = shared.clone();
		async move {
			let chain = FakeChain { me: VALIDATOR, world: shared };
			within_deadline(&chain, 40, never).await
		}
	});
	tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
	assert!(!giving_up.is_finished(), "30 blocks before the deadline it keeps replaying");
	world(&shared).node_down = true;
	world(&shared).best = 38;
	tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
	assert!(!giving_up.is_finished(), "an unreachable node is no reason to give up");
	world(&shared).node_down = false;
	let given_up = tokio::time::timeout(std::time::Duration::from_secs(5), giving_up).await;
	assert_eq!(given_up.unwrap().unwrap(), None);
}

#[tokio::test]
async fn a_worker_stalling_its_evidence_delays_only_its_own_verdict_and_no_validator_misses_the_deadline(
) {
	const STALLER: AccountId32 = WORKER;
	const HONEST: AccountId32 = AccountId32([3; 32]);
	const OTHER_JOB: u64 = JOB + 1;
	let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, holdout) = world_with_a_job(dirs[0].path());
	{
		// A second job like the first, whose round selected the honest worker.
		let mut w = world(&shared);
		let details = w.jobs[&JOB].clone();
		w.jobs.insert(OTHER_JOB, details);
		let mut round = w.rounds[&JOB].clone();
		round.job = OTHER_JOB;
		round.applicants = vec![HONEST];
		round.workers = vec![(HONEST, 96, false)];
		w.rounds.insert(OTHER_JOB, round);
		w.duties.insert(
			HONEST,
			vec![Duty::Train { job: OTHER_JOB, round: 0, quota: 96, deadline: 60 }],
		);
	}
	daemon(&shared, STALLER, Role::Worker, dirs[1].path(), None).tick().await.unwrap();
	daemon(&shared, HONEST, Role::Worker, dirs[2].path(), None).tick().await.unwrap();
	let deadline = 60;
	{
		let mut w = world(&shared);
		let stalled = agora_chain::to_digest(&w.updates[&(JOB, STALLER)].checkpoint_root);
		w.stalled.push(stalled);
		// The staller's update is assigned first: done one after another, its fetch would hold
		// up the honest verdict.
		let commit =
			|job, worker| Duty::Commit { job, round: 0, worker, segments: vec![0, 2], deadline };
		w.duties.insert(VALIDATOR, vec![commit(JOB, STALLER), commit(OTHER_JOB, HONEST)]);
		w.best = 40;
	}
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[3].path(), Some(holdout));
	let commits_on = |worker: AccountId32| {
		sent(&shared, VALIDATOR)
			.iter()
			.filter(
				|call| matches!(call, ProtocolCall::CommitVerdict { worker: w, .. } if *w == worker),
			)
			.count()
	};
	// The honest update is judged and committed while the deadline is far, and the pass ends
	// after its budget for evidence still arriving, leaving the staller's for the next pass
	// (the validator's other duties are not held up until the deadline).
	let started = std::time::Instant::now();
	tokio::time::timeout(std::time::Duration::from_secs(60), validator.tick())
		.await
		.expect("the pass ends while the staller's fetch is stalled")
		.unwrap();
	assert!(started.elapsed() < TEST_FETCH_BUDGET * 3, "{:?}", started.elapsed());
	assert_eq!((commits_on(STALLER), commits_on(HONEST)), (0, 1), "20 blocks before the deadline");
	// Another pass while the deadline is far: the staller's evidence is waited for again.
	validator.tick().await.unwrap();
	assert_eq!(commits_on(STALLER), 0);
	// Near the deadline it is given up on and committed `Unavailable`, in time.
	world(&shared).best = deadline - 2;
	tokio::time::timeout(std::time::Duration::from_secs(60), validator.tick())
		.await
		.expect("the stalled fetch is given up")
		.unwrap();
	assert_eq!((commits_on(STALLER), commits_on(HONEST)), (1, 1));
	let reveal = |job, worker| Duty::Reveal { job, round: 0, worker, deadline: 70 };
	world(&shared).duties.insert(VALIDATOR, vec![reveal(JOB, STALLER), reveal(OTHER_JOB, HONEST)]);
	validator.tick().await.unwrap();
	let verdicts: Vec<_> = sent(&shared, VALIDATOR)
		.into_iter()
		.filter_map(|call| match call {
			ProtocolCall::RevealVerdict { worker, verdict, .. } => Some((worker, verdict)),
			_ => None,
		})
		.collect();
	assert_eq!(
		verdicts,
		vec![(STALLER, agora_chain::Verdict::Unavailable), (HONEST, agora_chain::Verdict::Valid)]
	);
}

#[tokio::test]
async fn a_submitter_stalling_its_held_out_data_cannot_get_its_honest_workers_reported_unavailable()
{
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, holdout) = world_with_a_job(dirs[0].path());
	daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None).tick().await.unwrap();
	let deadline = 60;
	{
		let mut w = world(&shared);
		// The submitter serves its held-out shard just inside each request's timeout.
		w.stalled.push(Digest::of(&[&holdout.encode_shard().unwrap()]));
		let commit =
			Duty::Commit { job: JOB, round: 0, worker: WORKER, segments: vec![0, 2], deadline };
		w.duties.insert(VALIDATOR, vec![commit]);
		w.best = 40;
	}
	// No `--holdout` of its own: the validator scores on what the job commits to.
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), None);
	let committed = || {
		sent(&shared, VALIDATOR)
			.iter()
			.filter(|call| matches!(call, ProtocolCall::CommitVerdict { .. }))
			.count()
	};
	macro_rules! pass {
		() => {
			tokio::time::timeout(std::time::Duration::from_secs(60), validator.tick())
				.await
				.expect("the pass ends while the held-out data is stalled")
				.unwrap()
		};
	}
	// The evidence is in at block 40: the held-out data is waited for until half of the 18
	// blocks then left before the margin (block 58) have passed.
	pass!();
	assert_eq!(committed(), 0, "the held-out data is waited for at first");
	world(&shared).best = 48;
	pass!();
	assert_eq!(committed(), 0);
	// Then the update is judged without it, 11 blocks before the deadline, not left for the
	// margin (by when no time would be left to replay it).
	world(&shared).best = 49;
	pass!();
	assert_eq!(committed(), 1, "committed 11 blocks before the deadline");
	let reveal = Duty::Reveal { job: JOB, round: 0, worker: WORKER, deadline: 70 };
	world(&shared).duties.insert(VALIDATOR, vec![reveal]);
	validator.tick().await.unwrap();
	let revealed: Vec<_> = sent(&shared, VALIDATOR)
		.into_iter()
		.filter_map(|call| match call {
			ProtocolCall::RevealVerdict { verdict, score, .. } => Some((verdict, score)),
			_ => None,
		})
		.collect();
	// Replayed and valid; scored neutrally, without the data the submitter withholds.
	assert_eq!(revealed, vec![(agora_chain::Verdict::Valid, agora_chain::Perbill(500_000_000))]);
}

/// What a worker that copied another's root can forge under it, served to validators that ask
/// it first.
#[derive(Clone, Copy)]
enum Forgery {
	/// Every checkpoint after the first is the first.
	Checkpoints,
	/// The commitment, bound to the copier instead (its root then no longer hashes its content).
	Commitment,
}

/// A copier submits the honest worker's update as its own (the chain cannot tell) and serves
/// `forgery` under the copied root; one validator judges the copy first, then the original.
/// Returns the revealed verdicts, the copier's first.
async fn judge_a_copy(forgery: Forgery) -> Vec<(AccountId32, agora_chain::Verdict)> {
	const COPIER: AccountId32 = AccountId32([4; 32]);
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, holdout) = world_with_a_job(dirs[0].path());
	daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None).tick().await.unwrap();
	let copier_peer = agora_p2p::PeerId::random();
	let deadline = 60;
	{
		let mut w = world(&shared);
		let update = w.updates[&(JOB, WORKER)].clone();
		let root = agora_chain::to_digest(&update.checkpoint_root);
		w.updates.insert((JOB, COPIER), update);
		let stored =
			|w: &World, key| w.stores.iter().find_map(|store| store.get(&key).unwrap()).unwrap();
		match forgery {
			Forgery::Checkpoints => {
				let first = stored(&w, BlobKey::Checkpoint { root, index: 0 });
				for index in 1..=3 {
					w.forged.push((
						copier_peer,
						BlobKey::Checkpoint { root, index },
						first.clone(),
					));
				}
			},
			Forgery::Commitment => {
				let key = BlobKey::Commitment(root);
				let mut commitment: agora_proof::TrainingCommitment =
					serde_json::from_slice(&stored(&w, key)).unwrap();
				commitment.binding.worker = COPIER.0;
				w.forged.push((copier_peer, key, serde_json::to_vec(&commitment).unwrap()));
			},
		}
		let endpoint = |account, peer_id: agora_p2p::PeerId| agora_chain::Endpoint {
			account,
			is_worker: true,
			stake: 100,
			active: true,
			peer_id: peer_id.to_bytes(),
			multiaddr: b"/ip4/127.0.0.1/tcp/1".to_vec(),
		};
		w.registrations.insert((COPIER, true), endpoint(COPIER, copier_peer));
		w.registrations.insert((WORKER, true), endpoint(WORKER, agora_p2p::PeerId::random()));
		let commit =
			|worker| Duty::Commit { job: JOB, round: 0, worker, segments: vec![0, 2], deadline };
		w.duties.insert(VALIDATOR, vec![commit(COPIER), commit(WORKER)]);
	}
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), Some(holdout));
	validator.tick().await.unwrap();
	// A copier whose evidence never checks out is given up on near the deadline.
	world(&shared).best = deadline - 2;
	validator.tick().await.unwrap();
	let reveal = |worker| Duty::Reveal { job: JOB, round: 0, worker, deadline: 70 };
	world(&shared).duties.insert(VALIDATOR, vec![reveal(COPIER), reveal(WORKER)]);
	validator.tick().await.unwrap();
	sent(&shared, VALIDATOR)
		.into_iter()
		.filter_map(|call| match call {
			ProtocolCall::RevealVerdict { worker, verdict, .. } => Some((worker, verdict)),
			_ => None,
		})
		.collect()
}

#[tokio::test]
async fn a_worker_that_copied_another_s_root_cannot_plant_forged_files_in_its_evidence() {
	use agora_chain::Verdict::{Invalid, Unavailable, Valid};
	const COPIER: AccountId32 = AccountId32([4; 32]);
	// Its run is bound to the worker it copied: invalid on its face, its checkpoints never
	// fetched, so its forged ones never stand in for the original's.
	assert_eq!(judge_a_copy(Forgery::Checkpoints).await, vec![(COPIER, Invalid), (WORKER, Valid)]);
	// A commitment that does not hash to its root is refused, never stored under it: the
	// original is judged on its own commitment, and the copy is either judged on that one
	// (bound to the original: invalid) or, if it was asked before the original arrived, not
	// judged at all.
	let verdicts = judge_a_copy(Forgery::Commitment).await;
	assert_eq!(verdicts.len(), 2);
	assert!(matches!(verdicts[0], (COPIER, Invalid | Unavailable)), "{verdicts:?}");
	assert_eq!(verdicts[1], (WORKER, Valid));
}

#[tokio::test]
async fn the_margin_before_a_commit_deadline_is_time_not_blocks() {
	use std::time::Duration;
	// 12 seconds of blocks, never fewer than 2.
	assert_eq!(unavailable_margin(Duration::from_secs(6)), 2);
	assert_eq!(unavailable_margin(Duration::from_secs(2)), 6);
	assert_eq!(unavailable_margin(Duration::from_millis(500)), 24);
	assert_eq!(unavailable_margin(Duration::from_secs(30)), 2);
	// On a chain of 2-second blocks, 5 blocks before the deadline is already too late to start
	// waiting: the replay is given up at the first look (at 6-second blocks it would go on).
	let shared = Shared::default();
	world(&shared).best = 10;
	world(&shared).block_time = Some(Duration::from_secs(2));
	let chain = FakeChain { me: VALIDATOR, world: shared.clone() };
	let given_up = tokio::time::timeout(
		Duration::from_secs(5),
		within_deadline(&chain, 15, std::future::pending::<()>()),
	)
	.await;
	assert_eq!(given_up.unwrap(), None);
	world(&shared).block_time = None;
	let slow = async {
		tokio::time::sleep(Duration::from_millis(1_500)).await;
		9
	};
	assert_eq!(within_deadline(&chain, 15, slow).await, Some(9));
}

/// [`world_with_a_job`] on private data, verified by evaluation: the data provider is gone, so
/// the only training data is a worker's own. Returns the held-out set and that data.
fn world_with_a_private_data_job(provider_dir: &Path) -> (Shared, Dataset, (Dataset, Digest)) {
	let (shared, holdout) = world_with_a_job(provider_dir);
	let digits = load_digits(&digits_csv_path()).unwrap();
	let own = digits.subset(&(400..496).collect::<Vec<_>>()).unwrap().encode_shard().unwrap();
	let own = agora_protocol::assemble_dataset(&[(Digest::of(&[&own]), own)]).unwrap();
	{
		let mut w = world(&shared);
		let spec = &mut w.jobs.get_mut(&JOB).unwrap().spec;
		spec.dataset = ChainDataset::Private;
		spec.mode = VerificationMode::Evaluation;
		w.stores.remove(0);
	}
	(shared, holdout, own)
}

/// A worker daemon with `own` data for jobs on private data (`--private-data`).
fn private_worker(
	world: &Shared,
	own: &(Dataset, Digest),
	state_dir: &Path,
) -> Daemon<FakeChain, FakeNet> {
	let config = DaemonConfig {
		role: Role::Worker,
		state_dir: state_dir.to_path_buf(),
		stake: 0,
		public_addr: "/ip4/127.0.0.1/tcp/1".into(),
		conduct: Conduct::Honest,
		holdout: None,
		private_data: Some(own.clone()),
		memory_mib: 0,
		device: Device::Cpu,
		fetch_budget_per_pass: TEST_FETCH_BUDGET,
	};
	let net = FakeNet::new(world, &state_dir.join("store"));
	Daemon::new(FakeChain { me: WORKER, world: world.clone() }, net, config).unwrap()
}

/// A job on private data, verified by evaluation: a worker without data of its own declines it;
/// one with `--private-data` applies, trains on its own data (no shard is fetched: nobody
/// serves any) and serves its run's evidence but never the data; a validator, which has nothing
/// to replay, checks the run's commitment and scores the update on the committed held-out set.
#[tokio::test]
async fn a_private_data_job_is_trained_on_own_data_and_judged_on_held_out_data() {
	let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, _, own) = world_with_a_private_data_job(dirs[0].path());
	{
		let mut w = world(&shared);
		// A second job on private data, open for applications.
		let mut open = w.rounds[&JOB].clone();
		open.phase = JobStatusView::Open;
		open.applicants.clear();
		open.workers.clear();
		let second = w.jobs[&JOB].clone();
		w.jobs.insert(1, second);
		w.rounds.insert(1, RoundStatus { job: 1, ..open });
	}
	const DATALESS: AccountId32 = AccountId32([5; 32]);
	let mut dataless = daemon(&shared, DATALESS, Role::Worker, dirs[3].path(), None);
	dataless.tick().await.unwrap();
	assert!(sent(&shared, DATALESS).is_empty(), "no data of its own: it does not apply");

	let mut worker = private_worker(&shared, &own, dirs[1].path());
	worker.tick().await.unwrap();
	let calls = sent(&shared, WORKER);
	assert!(calls.contains(&ProtocolCall::ApplyForRound { job: 1 }), "{calls:?}");
	assert!(
		calls.iter().any(|c| matches!(c, ProtocolCall::SubmitUpdate { job: JOB, .. })),
		"trained on its own data: {calls:?}"
	);
	// The chain draws segments in every mode; with nothing to replay them on, the validator
	// judges the commitment and the held-out score.
	world(&shared).duties.insert(
		VALIDATOR,
		vec![Duty::Commit {
			job: JOB,
			round: 0,
			worker: WORKER,
			segments: vec![0, 2],
			deadline: 60,
		}],
	);
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), None);
	validator.tick().await.unwrap();
	assert!(matches!(sent(&shared, VALIDATOR).as_slice(), [ProtocolCall::CommitVerdict { .. }]));
	world(&shared)
		.duties
		.insert(VALIDATOR, vec![Duty::Reveal { job: JOB, round: 0, worker: WORKER, deadline: 70 }]);
	validator.tick().await.unwrap();
	match sent(&shared, VALIDATOR).last() {
		Some(ProtocolCall::RevealVerdict { verdict, score, .. }) => {
			assert_eq!(*verdict, agora_chain::Verdict::Valid);
			// Paid for the held-out gain alone (private data): training from the initial
			// weights gains.
			assert!(score.0 > 0, "no held-out gain: {}", score.0);
		},
		other => panic!("expected a reveal, got {other:?}"),
	}
}

/// A job on private data is judged by its submitter's held-out data alone (nothing of the run
/// can be replayed): a submitter withholding that data gets its workers' updates reported
/// `HeldOutUnavailable`, its own doing, which slashes nobody, and not `Unavailable`, which
/// slashes the worker when most of the stake reports it.
#[tokio::test]
async fn a_submitter_withholding_a_private_data_jobs_held_out_data_gets_no_worker_blamed() {
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, holdout, own) = world_with_a_private_data_job(dirs[0].path());
	private_worker(&shared, &own, dirs[1].path()).tick().await.unwrap();
	{
		let mut w = world(&shared);
		// The submitter serves its held-out shard just inside each request's timeout.
		w.stalled.push(Digest::of(&[&holdout.encode_shard().unwrap()]));
		let commit =
			Duty::Commit { job: JOB, round: 0, worker: WORKER, segments: vec![0, 2], deadline: 60 };
		w.duties.insert(VALIDATOR, vec![commit]);
		w.best = 40;
	}
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), None);
	macro_rules! committed_at {
		($best:expr) => {{
			world(&shared).best = $best;
			tokio::time::timeout(std::time::Duration::from_secs(60), validator.tick())
				.await
				.expect("the pass ends while the held-out data is stalled")
				.unwrap();
			sent(&shared, VALIDATOR)
				.iter()
				.any(|call| matches!(call, ProtocolCall::CommitVerdict { .. }))
		}};
	}
	// With nothing to replay, the held-out data is asked for until a margin's worth of blocks
	// before the margin (2 blocks before the deadline at 60), not only until half of the time
	// left (block 49) as for a replayed run; then the update's other checks run, and pass.
	assert!(!committed_at!(40));
	assert!(!committed_at!(55));
	assert!(committed_at!(56), "reported a margin before the margin");
	let reveal = Duty::Reveal { job: JOB, round: 0, worker: WORKER, deadline: 70 };
	world(&shared).duties.insert(VALIDATOR, vec![reveal]);
	validator.tick().await.unwrap();
	let revealed: Vec<_> = sent(&shared, VALIDATOR)
		.into_iter()
		.filter_map(|call| match call {
			ProtocolCall::RevealVerdict { verdict, .. } => Some(verdict),
			_ => None,
		})
		.collect();
	assert_eq!(revealed, vec![agora_chain::Verdict::HeldOutUnavailable]);
}

/// Round 1 of a two-round DiLoCo job that carries its inner state and overlaps its rounds as
/// `overlap` says, trained by `WORKER` and now verified, with `drawn` drawn for round 2: the worker trains round 2 early (in the
/// background) and round 1 is aggregated. Returns the world, the daemons and round 1's record.
async fn round_one_verified_with_round_two_drawn(
	dirs: &[tempfile::TempDir],
	drawn: Vec<AccountId32>,
	overlap: Overlap,
) -> (Shared, Daemon<FakeChain, FakeNet>, Daemon<FakeChain, FakeNet>, agora_chain::H256) {
	let (shared, holdout) = world_with_a_job_stepping(
		dirs[0].path(),
		Some(OuterOptimizer::diloco()),
		InnerState::Averaged,
	);
	{
		let mut w = world(&shared);
		let job = w.jobs.get_mut(&JOB).unwrap();
		let mut hyperparameters: Hyperparameters =
			serde_json::from_slice(&job.spec.hyperparameters.0).unwrap();
		hyperparameters.overlap = overlap;
		job.spec.hyperparameters = bounded(serde_json::to_vec(&hyperparameters).unwrap());
		job.round = 1;
		job.spec.rounds = 2;
		w.rounds.get_mut(&JOB).unwrap().round = 1;
		w.duties.insert(WORKER, vec![Duty::Train { job: JOB, round: 1, quota: 96, deadline: 60 }]);
	}
	let mut worker = daemon(&shared, WORKER, Role::Worker, dirs[1].path(), None);
	let mut validator = daemon(&shared, VALIDATOR, Role::Validator, dirs[2].path(), Some(holdout));
	worker.tick().await.unwrap();
	{
		let mut w = world(&shared);
		w.rounds.get_mut(&JOB).unwrap().phase = JobStatusView::Verifying;
		w.jobs.get_mut(&JOB).unwrap().status = JobStatusView::Verifying;
		w.next_round.insert(JOB, drawn);
	}
	let record = aggregate_round(&shared, &mut worker, &mut validator, 1).await;
	(shared, worker, validator, record)
}

/// Round 2 of that job starts with `workers`: its record is round 1's and it trains.
fn start_round_two(shared: &Shared, record: agora_chain::H256, workers: &[AccountId32]) {
	start_round_after_round_one(shared, 2, record, workers);
}

/// Round `round` of that job starts with `workers` (and `WORKER` has to train in it), round 1's
/// record being the job's latest: round 2, or a later round after voided ones.
fn start_round_after_round_one(
	shared: &Shared,
	round: u32,
	record: agora_chain::H256,
	workers: &[AccountId32],
) {
	let mut w = world(shared);
	let job = w.jobs.get_mut(&JOB).unwrap();
	job.round = round;
	job.spec.rounds = job.spec.rounds.max(round);
	job.status = JobStatusView::Training;
	job.latest_model = record;
	job.models.push((1, record));
	let status = w.rounds.get_mut(&JOB).unwrap();
	status.round = round;
	status.phase = JobStatusView::Training;
	status.workers = workers.iter().map(|who| (*who, 96, false)).collect();
	w.next_round.remove(&JOB);
	w.duties.insert(WORKER, vec![Duty::Train { job: JOB, round, quota: 96, deadline: 60 }]);
}

/// A job whose rounds do not overlap: a worker drawn for round 2 waits for round 1's record
/// and trains from it.
#[tokio::test]
async fn a_job_whose_rounds_do_not_overlap_is_trained_in_sequence() {
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, mut worker, mut validator, record) =
		round_one_verified_with_round_two_drawn(&dirs, vec![WORKER], Overlap::Sequential).await;
	assert!(!dirs[1].path().join("early/job-0-round-2.json").exists());
	start_round_two(&shared, record, &[WORKER]);
	worker.tick().await.unwrap();
	let (start, verdict) = round_two_start_and_verdict(&shared, &mut validator).await;
	assert_eq!(start, start_from_record(&shared, record), "it trained from the record");
	assert_eq!(verdict, agora_chain::Verdict::Valid);
}

/// The state hash `WORKER`'s round-2 run started from, and the validator's verdict on it.
async fn round_two_start_and_verdict(
	shared: &Shared,
	validator: &mut Daemon<FakeChain, FakeNet>,
) -> (Digest, agora_chain::Verdict) {
	let Some(ProtocolCall::SubmitUpdate { round: 2, update, .. }) =
		sent(shared, WORKER).last().cloned()
	else {
		panic!("the worker submits its round-2 update");
	};
	let key = BlobKey::Commitment(Digest(update.checkpoint_root.0));
	let commitment = world(shared).stores.iter().find_map(|store| store.get(&key).unwrap());
	let commitment: agora_proof::TrainingCommitment =
		serde_json::from_slice(&commitment.expect("the worker serves its commitment")).unwrap();
	let commit =
		Duty::Commit { job: JOB, round: 2, worker: WORKER, segments: vec![0, 2], deadline: 60 };
	world(shared).duties.insert(VALIDATOR, vec![commit]);
	validator.tick().await.unwrap();
	world(shared)
		.duties
		.insert(VALIDATOR, vec![Duty::Reveal { job: JOB, round: 2, worker: WORKER, deadline: 70 }]);
	validator.tick().await.unwrap();
	let verdict = sent(shared, VALIDATOR)
		.into_iter()
		.find_map(|call| match call {
			ProtocolCall::RevealVerdict { verdict, .. } => Some(verdict),
			_ => None,
		})
		.expect("the validator reveals its verdict");
	(commitment.leaves[0].state_hash, verdict)
}

/// The start of round 2 from round 1's record (the run in sequence), for `record`.
fn start_from_record(shared: &Shared, record: agora_chain::H256) -> Digest {
	let arch = Architecture::from_id("mlp-digits").unwrap();
	let key = BlobKey::Blob(Digest(record.0));
	let blob = world(shared).stores.iter().find_map(|store| store.get(&key).unwrap()).unwrap();
	let record = decode_round_model(&arch, &blob).unwrap();
	let buffers = record.inner_optimizer.expect("the record carries the inner state");
	TrainingState { step: 6, params: record.params, optimizer: buffers }.content_hash()
}

/// A worker drawn for round 2 trains it while round 1 is verified, from round 1's start stepped
/// by its own round-1 update, and submits that run as soon as round 2 starts; the validator,
/// which reads in round 1's record that the worker's update was aggregated, rebuilds that start
/// and finds the run valid.
#[tokio::test]
async fn a_worker_drawn_for_the_next_round_trains_it_while_this_one_is_verified() {
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, mut worker, mut validator, record) =
		round_one_verified_with_round_two_drawn(&dirs, vec![WORKER], Overlap::Eager).await;
	start_round_two(&shared, record, &[WORKER]);
	worker.tick().await.unwrap();
	let (start, verdict) = round_two_start_and_verdict(&shared, &mut validator).await;
	assert_ne!(start, start_from_record(&shared, record), "it started eagerly");
	assert_eq!(verdict, agora_chain::Verdict::Valid);
	assert!(!dirs[1].path().join("early/job-0-round-2.json").exists(), "the early run is used up");
}

/// A worker trained round 2 early for its share among the workers drawn, but one of them is
/// left out when round 2 starts, so its share of the data changes: it drops the early run and
/// trains from round 1's record, and that run is valid too.
#[tokio::test]
async fn an_early_run_for_a_share_that_changed_is_dropped_and_the_round_trained_in_sequence() {
	const LEFT_OUT: AccountId32 = AccountId32([3; 32]);
	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, mut worker, mut validator, record) =
		round_one_verified_with_round_two_drawn(&dirs, vec![WORKER, LEFT_OUT], Overlap::Eager)
			.await;
	start_round_two(&shared, record, &[WORKER]);
	worker.tick().await.unwrap();
	let (start, verdict) = round_two_start_and_verdict(&shared, &mut validator).await;
	assert_eq!(start, start_from_record(&shared, record), "it trained from the record");
	assert_eq!(verdict, agora_chain::Verdict::Valid);
}

/// After a voided round, the latest record is not the previous round's, and no eager start is
/// accepted: a worker whose round-1 update round 1's record names, training round 3 (round 2
/// voided) from round 1's start stepped by that update, is judged `Invalid`. Without the rule
/// its validator would rebuild that very start from the record and the update and accept it.
#[tokio::test]
async fn no_eager_start_is_accepted_after_a_voided_round() {
	use agora_protocol::{assemble_dataset, decode_update, update_blob, RoundContext};
	use std::sync::atomic::AtomicBool;

	let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
	let (shared, _worker, mut validator, record) =
		round_one_verified_with_round_two_drawn(&dirs, vec![WORKER], Overlap::Eager).await;
	let (details, own) = {
		let w = world(&shared);
		(w.jobs[&JOB].clone(), w.updates[&(JOB, WORKER)].clone())
	};
	let arch = Architecture::from_id("mlp-digits").unwrap();
	let hyperparameters: Hyperparameters =
		serde_json::from_slice(&details.spec.hyperparameters.0).unwrap();
	let blob_of = |hash: Digest| {
		let key = BlobKey::Blob(hash);
		world(&shared).stores.iter().find_map(|store| store.get(&key).unwrap()).unwrap()
	};
	let own_update =
		decode_update(&arch, &blob_of(Digest(own.delta.0)), hyperparameters.compression).unwrap();
	let ChainDataset::Shards(shards) = &details.spec.dataset else { panic!("a job on shards") };
	let shards: Vec<(Digest, Vec<u8>)> =
		shards.0.iter().map(|h| (Digest(h.0), blob_of(Digest(h.0)))).collect();
	let (data, data_root) = assemble_dataset(&shards).unwrap();
	// Round 2's context as round 1's record would have started it, had round 2 trained: its
	// next round is round 3, and its eager start is round 1's start stepped by the update.
	let as_if_round_two = RoundContext {
		arch: arch.clone(),
		hyperparameters: hyperparameters.clone(),
		job: JOB,
		round: 2,
		local_steps: u64::from(details.spec.local_steps),
		checkpoint_interval: u64::from(details.spec.checkpoint_interval),
		global: arch.initial_params(hyperparameters.init_seed).unwrap(),
		outer_momentum: None,
		inner_optimizer: None,
		completed_rounds: 0,
		aggregated: Vec::new(),
	};
	let keep_going = AtomicBool::new(false);
	let run = as_if_round_two
		.train_next_round_early(&own_update, WORKER.0, (&data, data_root), Device::Cpu, &keep_going)
		.unwrap();
	// Served by the worker and submitted for round 3, after round 2 was voided.
	let store = agora_p2p::BlobStore::open(&dirs[1].path().join("store")).unwrap();
	let root = run.commitment.root;
	for (index, state) in run.checkpoints.iter().enumerate() {
		let path = store.path(&BlobKey::Checkpoint { root, index: index as u32 });
		std::fs::create_dir_all(path.parent().unwrap()).unwrap();
		state.save(&path, &arch).unwrap();
	}
	store.put(&BlobKey::Commitment(root), &serde_json::to_vec(&run.commitment).unwrap()).unwrap();
	let delta = as_if_round_two.delta_of(&run).unwrap();
	let delta = store.put_blob(&update_blob(&arch, &delta, hyperparameters.compression).unwrap());
	start_round_after_round_one(&shared, 3, record, &[WORKER]);
	{
		let mut w = world(&shared);
		let update = agora_chain::Update {
			delta: to_h256(&delta.unwrap()),
			samples: as_if_round_two.samples_per_worker(),
			loss_micros: 0,
			checkpoint_root: to_h256(&root),
			checkpoints: run.commitment.segments() as u32,
		};
		w.updates.insert((JOB, WORKER), update);
		let commit =
			Duty::Commit { job: JOB, round: 3, worker: WORKER, segments: vec![0, 2], deadline: 60 };
		w.duties.insert(VALIDATOR, vec![commit]);
	}
	validator.tick().await.unwrap();
	world(&shared)
		.duties
		.insert(VALIDATOR, vec![Duty::Reveal { job: JOB, round: 3, worker: WORKER, deadline: 70 }]);
	validator.tick().await.unwrap();
	let verdict = sent(&shared, VALIDATOR).into_iter().rev().find_map(|call| match call {
		ProtocolCall::RevealVerdict { verdict, .. } => Some(verdict),
		_ => None,
	});
	assert_eq!(verdict, Some(agora_chain::Verdict::Invalid));
}
