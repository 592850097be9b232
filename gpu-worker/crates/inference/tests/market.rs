//! The provider, client and auditor over real libp2p nodes, with the chain in memory: a paid
//! session, the receipts a provider refuses, a settlement, and audits of an honest provider, a
//! provider that answers with other weights, and one that lost its evidence; a peer that is not
//! the drawn auditor refused the evidence.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_chain::{AccountId32, Balance};
use agora_inference::auditor::{Auditor, Finding, UNAVAILABLE_MARGIN};
use agora_inference::client::Session;
use agora_inference::market::*;
use agora_inference::memory::{MemoryMarket, World};
use agora_inference::provider::{Provider, ProviderConfig};
use agora_inference::receipt::{content_hash, transcript_step, AuditVerdict, Receipt};
use agora_ml::models::{Architecture, Model};
use agora_p2p::{identity, BlobStore, Network, Peer, QueryRequest, QueryResponse};
use subxt_signer::sr25519::{self, Keypair};
use tch::Device;
use tokio::sync::mpsc;

const PRICE: Balance = 1_000;
const GENESIS: [u8; 32] = [42; 32];

fn account(keypair: &Keypair) -> AccountId32 {
	keypair.public_key().to_account_id()
}

fn model(seed: u64) -> Model {
	let arch = Architecture::from_id("mlp-digits").unwrap();
	Model::new(&arch, &arch.initial_params(seed).unwrap(), Device::Cpu).unwrap()
}

fn input(i: usize) -> Vec<u8> {
	(0..64).flat_map(|j| (((i * 7 + j) % 17) as f32 / 16.0).to_le_bytes()).collect()
}

async fn node(
	dir: &std::path::Path,
	queries: Option<mpsc::Sender<agora_p2p::InboundQuery>>,
) -> Network {
	let store = BlobStore::open(dir).unwrap();
	let listen = Some("/ip4/127.0.0.1/tcp/0".parse().unwrap());
	Network::start_with_queries(identity::Keypair::generate_ed25519(), listen, store, queries)
		.await
		.unwrap()
}

fn peer(net: &Network) -> Peer {
	Peer { id: net.peer_id(), addr: net.listen_addr().unwrap().clone() }
}

struct Setup {
	world: Arc<Mutex<World>>,
	provider_account: AccountId32,
	client: Keypair,
	dirs: Vec<tempfile::TempDir>,
}

/// A world with channel 1 from Alice to the provider, for version 1 of model 1 (seed 1's
/// weights, whose blob `holder` stores).
fn setup(holder: &Network) -> Setup {
	let arch = Architecture::from_id("mlp-digits").unwrap();
	let blob = agora_protocol::model_blob(&arch, &arch.initial_params(1).unwrap()).unwrap();
	let hash = holder.store().put_blob(&blob).unwrap();
	let client = sr25519::dev::alice();
	let provider_account = account(&sr25519::dev::dave());
	let mut world = World {
		genesis: GENESIS,
		now: 10,
		dispute_window: 10,
		version: Some((arch.id(), hash.0)),
		..Default::default()
	};
	world.open(ChannelView {
		id: 1,
		client: account(&client),
		provider: provider_account,
		model: 1,
		version: 1,
		price: PRICE,
		balance: 6 * PRICE,
		pending_amount: 0,
		settled_requests: 0,
		settled_amount: 0,
		closes_at: None,
	});
	Setup { world: Arc::new(Mutex::new(world)), provider_account, client, dirs: Vec::new() }
}

fn config(dir: &std::path::Path) -> ProviderConfig {
	ProviderConfig {
		state_dir: dir.to_path_buf(),
		model: 1,
		version: 1,
		price: PRICE,
		settle_every: 3,
		settle_after: Duration::from_secs(3600),
		device: Device::Cpu,
	}
}

/// Runs a session of 6 answers with `serving_seed`'s weights, settles the receipted 5, and
/// audits request 3: what the auditor found, and the verdict it committed.
async fn session_and_audit(
	serving_seed: u64,
	lose_evidence: bool,
) -> (Setup, Finding, AuditVerdict) {
	let provider_dir = tempfile::tempdir().unwrap();
	let (queries_tx, queries) = mpsc::channel(16);
	let provider_net = node(provider_dir.path(), Some(queries_tx)).await;
	let mut setup = setup(&provider_net);
	setup.world.lock().unwrap().peers.push((setup.provider_account, peer(&provider_net)));
	let provider_chain = MemoryMarket { me: setup.provider_account, world: setup.world.clone() };
	let provider =
		Provider::with_model(provider_chain, model(serving_seed), config(provider_dir.path()))
			.unwrap();

	let client_dir = tempfile::tempdir().unwrap();
	let client_net = node(client_dir.path(), None).await;
	let auditor_dir = tempfile::tempdir().unwrap();
	let auditor_net = node(auditor_dir.path(), None).await;
	let validator = account(&sr25519::dev::charlie());
	setup.world.lock().unwrap().validators.push((validator, peer(&auditor_net)));
	let auditor_chain = MemoryMarket { me: validator, world: setup.world.clone() };
	let mut auditor =
		Auditor::new(auditor_chain, auditor_net, auditor_dir.path(), Device::Cpu).unwrap();

	let world = setup.world.clone();
	let client_keys = setup.client.clone();
	let provider_peer = peer(&provider_net);
	let scenario = async {
		let mut session =
			Session::new(&client_net, provider_peer.clone(), &client_keys, GENESIS, 1, PRICE);
		for i in 0..5 {
			let answered = session.predict(input(i)).await.unwrap();
			assert_eq!(answered.index, i as u64 + 1);
			assert_eq!(answered.output.len(), 40, "10 logits");
		}
		session.finish().await.unwrap();

		// Attacks on the provider: every one refused.
		let bob = sr25519::dev::bob();
		let forged = Receipt { requests: 5, ..session.receipt() }.sign(&bob, &GENESIS);
		let undercounted = Receipt { requests: 4, amount: 4 * PRICE, ..session.receipt() }
			.sign(&client_keys, &GENESIS);
		let honest = session.receipt().sign(&client_keys, &GENESIS);
		let other_chain = session.receipt().sign(&client_keys, &[1; 32]);
		for (index, receipt) in
			[(6, forged), (6, undercounted), (6, other_chain), (8, honest.clone())]
		{
			let request = QueryRequest::Predict {
				channel: 1,
				index,
				input: input(0),
				receipt: Some(receipt),
			};
			let response = client_net.query(&provider_peer, request).await.unwrap();
			assert!(matches!(response, QueryResponse::Refused { .. }), "{response:?}");
		}
		// The sixth request is paid for.
		let sixth =
			QueryRequest::Predict { channel: 1, index: 6, input: input(6), receipt: Some(honest) };
		let QueryResponse::Answer { output: sixth_output } =
			client_net.query(&provider_peer, sixth).await.unwrap()
		else {
			panic!("the sixth request is answered");
		};

		// The provider settles the latest receipt (5 answers; the sixth is not receipted yet).
		provider.tick().await.unwrap();
		let batch = world.lock().unwrap().batches[0].clone();
		assert_eq!((batch.first_request, batch.last_request, batch.amount), (1, 5, 5 * PRICE));

		// The seventh is more than the channel's balance (6 requests) covers.
		let receipted = session.receipt();
		let six = Receipt {
			requests: 6,
			amount: 6 * PRICE,
			transcript: transcript_step(
				&receipted.transcript,
				6,
				&content_hash(&input(6)),
				&content_hash(&sixth_output),
			),
			..receipted
		};
		let seventh = QueryRequest::Predict {
			channel: 1,
			index: 7,
			input: input(7),
			receipt: Some(six.sign(&client_keys, &GENESIS)),
		};
		let response = client_net.query(&provider_peer, seventh).await.unwrap();
		assert!(matches!(response, QueryResponse::Refused { .. }), "{response:?}");

		if lose_evidence {
			std::fs::remove_dir_all(provider_dir.path().join("evidence")).unwrap();
		}
		let audit = AuditView {
			id: 0,
			batch: batch.id,
			request: 3,
			disputed: false,
			auditors: vec![AuditorView { who: validator, committed: false, revealed: false }],
			commit_deadline: 20,
			reveal_deadline: 30,
		};
		world.lock().unwrap().audits.push(audit.clone());

		// The client's inputs and answers go only to the drawn auditor, not to any peer.
		let snooping = QueryRequest::Evidence { channel: 1, first: 1, last: 5, request: 3 };
		let response = client_net.query(&provider_peer, snooping).await.unwrap();
		assert!(matches!(response, QueryResponse::Refused { .. }), "{response:?}");

		let finding = auditor.examine(&audit).await.unwrap();
		// The daemon's pass commits it, but a provider that sent nothing is asked again until
		// `UNAVAILABLE_MARGIN` blocks before the commit deadline.
		auditor.tick().await.unwrap();
		if matches!(finding, Finding::NoEvidence(_)) {
			assert_eq!(auditor.committed(0), None, "no verdict while there is time");
			world.lock().unwrap().now = audit.commit_deadline - UNAVAILABLE_MARGIN;
			auditor.tick().await.unwrap();
		}
		(finding, auditor.committed(0).expect("a committed verdict"))
	};
	let (finding, committed) = tokio::select! {
		_ = provider.run(queries) => panic!("the provider stopped"),
		result = scenario => result,
	};
	let sent = setup.world.lock().unwrap().submitted.iter().any(|(who, call)| {
		*who == validator && matches!(call, MarketCall::CommitAudit { audit: 0, .. })
	});
	assert!(sent, "the auditor sent its commitment");
	setup.dirs.extend([provider_dir, client_dir, auditor_dir]);
	(setup, finding, committed)
}

#[tokio::test]
async fn an_honest_provider_is_paid_and_passes_its_audit() {
	let (setup, finding, committed) = session_and_audit(1, false).await;
	assert_eq!(finding, Finding::Verdict(AuditVerdict::Correct));
	assert_eq!(committed, AuditVerdict::Correct);
	let world = setup.world.lock().unwrap();
	let settled =
		world.submitted.iter().filter(|(_, c)| matches!(c, MarketCall::Settle { .. })).count();
	assert_eq!(settled, 1);
}

#[tokio::test]
async fn a_provider_serving_other_weights_is_found_wrong() {
	let (_, finding, committed) = session_and_audit(2, false).await;
	assert_eq!(finding, Finding::Verdict(AuditVerdict::Wrong));
	assert_eq!(committed, AuditVerdict::Wrong);
}

#[tokio::test]
async fn a_provider_without_its_evidence_is_asked_again_then_found_unavailable() {
	let (_, finding, committed) = session_and_audit(1, true).await;
	assert!(matches!(finding, Finding::NoEvidence(_)), "{finding:?}");
	assert_eq!(committed, AuditVerdict::Unavailable);
}

/// A provider restarted after a crash settles a restored receipt only if its evidence log
/// holds every answer the receipt signs for: one it could not prove would be judged
/// `Unavailable` and cost it its stake.
#[tokio::test]
async fn a_restarted_provider_settles_only_the_receipts_its_evidence_proves() {
	for evidence_survived in [true, false] {
		let dir = tempfile::tempdir().unwrap();
		let holder = node(dir.path(), None).await;
		let setup = setup(&holder);
		let chain = MemoryMarket { me: setup.provider_account, world: setup.world.clone() };
		let mut head = agora_inference::receipt::transcript_start(1);
		let log =
			agora_inference::evidence::EvidenceLog::open(&dir.path().join("evidence")).unwrap();
		for index in 1..=3 {
			let output = vec![index as u8; 40];
			if evidence_survived {
				log.append(1, index, &input(index as usize), &output).unwrap();
			}
			head = transcript_step(
				&head,
				index,
				&content_hash(&input(index as usize)),
				&content_hash(&output),
			);
		}
		let receipt = Receipt { channel: 1, requests: 3, amount: 3 * PRICE, transcript: head };
		let signed = receipt.sign(&setup.client, &GENESIS);
		agora_core::state::write_json(&dir.path().join("receipts/channel-1.json"), &signed)
			.unwrap();

		let provider = Provider::with_model(chain, model(1), config(dir.path())).unwrap();
		let (closed, queries) = mpsc::channel(1);
		drop(closed);
		provider.run(queries).await.unwrap();
		provider.tick().await.unwrap();
		let settled: Vec<_> =
			setup.world.lock().unwrap().batches.iter().map(|b| b.last_request).collect();
		let expected: Vec<u64> = if evidence_survived { vec![3] } else { vec![] };
		assert_eq!(settled, expected, "evidence survived: {evidence_survived}");
	}
}

/// A client says the provider did not answer and puts a request on chain. The provider answers
/// it there at its next look, settling the latest receipt with it; the answer is the channel's
/// next request, and the auditor drawn for it gets the evidence and finds it correct. An input
/// the model cannot take gets the empty refusal, which the auditor also finds correct.
#[tokio::test]
async fn a_request_put_on_chain_is_answered_there_and_proved_to_its_auditor() {
	let provider_dir = tempfile::tempdir().unwrap();
	let (queries_tx, queries) = mpsc::channel(16);
	let provider_net = node(provider_dir.path(), Some(queries_tx)).await;
	let setup = setup(&provider_net);
	setup.world.lock().unwrap().peers.push((setup.provider_account, peer(&provider_net)));
	let provider_chain = MemoryMarket { me: setup.provider_account, world: setup.world.clone() };
	let provider =
		Provider::with_model(provider_chain, model(1), config(provider_dir.path())).unwrap();
	let client_dir = tempfile::tempdir().unwrap();
	let client_net = node(client_dir.path(), None).await;
	let auditor_dir = tempfile::tempdir().unwrap();
	let auditor_net = node(auditor_dir.path(), None).await;
	let validator = account(&sr25519::dev::charlie());
	setup.world.lock().unwrap().validators.push((validator, peer(&auditor_net)));
	let auditor_chain = MemoryMarket { me: validator, world: setup.world.clone() };
	let mut auditor =
		Auditor::new(auditor_chain, auditor_net, auditor_dir.path(), Device::Cpu).unwrap();
	let world = setup.world.clone();

	let scenario = async {
		let mut session =
			Session::new(&client_net, peer(&provider_net), &setup.client, GENESIS, 1, PRICE);
		// Three answers; the provider holds the receipt for two.
		for i in 0..3 {
			session.predict(input(i)).await.unwrap();
		}
		let challenged = input(9);
		let refused = vec![1u8, 2, 3];
		let mut expected_head = None;
		for (audit_id, challenge_input) in [(0, challenged.clone()), (1, refused.clone())] {
			let deadline = world.lock().unwrap().now + 5;
			world.lock().unwrap().challenges.push((
				setup.provider_account,
				ChallengeView { channel: 1, input: challenge_input.clone(), deadline },
			));
			// Its next look answers it (the daemon's own looks run beside this one).
			for _ in 0..100 {
				provider.tick().await.unwrap();
				if world.lock().unwrap().challenges.is_empty() {
					break;
				}
				tokio::time::sleep(Duration::from_millis(50)).await;
			}
			let batch = {
				let world = world.lock().unwrap();
				assert!(world.challenges.is_empty(), "answered");
				world.batches.last().unwrap().clone()
			};
			if audit_id == 0 {
				// The receipt for requests 1..=2 settled with the answer, as request 3, in one
				// batch; the unreceipted third answer is superseded.
				assert_eq!(world.lock().unwrap().batches.len(), 1);
				assert_eq!((batch.first_request, batch.last_request), (1, 3));
				assert_eq!(batch.amount, 3 * PRICE);
				let mut head = agora_inference::receipt::transcript_start(1);
				for (index, input) in [(1, input(0)), (2, input(1)), (3, challenged.clone())] {
					let output = agora_inference::answer::answer(&model(1), &input).unwrap();
					head = transcript_step(
						&head,
						index,
						&content_hash(&input),
						&content_hash(&output),
					);
				}
				assert_eq!(batch.transcript, head);
				expected_head = Some(head);
			} else {
				assert_eq!((batch.first_request, batch.last_request), (4, 4));
				let head = transcript_step(
					&expected_head.unwrap(),
					4,
					&content_hash(&refused),
					&content_hash(&[]),
				);
				assert_eq!(batch.transcript, head, "the empty refusal");
				assert_eq!(batch.amount, PRICE);
			}
			let audit = AuditView {
				id: audit_id,
				batch: batch.id,
				request: batch.last_request,
				disputed: false,
				auditors: vec![AuditorView { who: validator, committed: false, revealed: false }],
				commit_deadline: 20,
				reveal_deadline: 30,
			};
			world.lock().unwrap().audits.push(audit.clone());
			let finding = auditor.examine(&audit).await.unwrap();
			assert_eq!(finding, Finding::Verdict(AuditVerdict::Correct), "audit {audit_id}");
		}
		// The channel goes on over the network from the chain's count.
		let channel = world.lock().unwrap().channels[0].clone();
		assert_eq!((channel.settled_requests, channel.settled_amount), (4, 4 * PRICE));
		assert_eq!(provider.served(1), 4);
	};
	tokio::select! {
		_ = provider.run(queries) => panic!("the provider stopped"),
		() = scenario => {},
	}
	let answered = world
		.lock()
		.unwrap()
		.submitted
		.iter()
		.filter(|(_, c)| matches!(c, MarketCall::AnswerChallenge { .. }))
		.count();
	assert_eq!(answered, 2);
}
