// The inference market from a third-party client, on `agora-node --dev --sealing manual` (the
// test seals every block itself, so rounds and audits take seconds). Everyone is played with
// @polkadot/api: a training round runs to completion (a worker, three validators, commit-reveal
// verdicts and a commit-reveal aggregate), its model is listed in the catalogue, a provider
// offers it, a client prepays a channel and signs a receipt after each answer, and the provider
// settles them in batches. Then the attacks: forged and replayed receipts, a wrong answer caught
// by audit (the provider slashed, the client refunded), a provider that disappears (refund), a
// provider that takes a request and answers it neither over the network nor on chain (slashed,
// the client refunded), a request answered on chain (free, settled, in the transcript), and
// balances conserved throughout (fees and slashes go to the treasury; nothing is minted while no
// job is active, nothing burned).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { u8aConcat, u8aToHex, stringToU8a } from '@polkadot/util';
import { blake2AsU8a, decodeAddress } from '@polkadot/util-crypto';
import { AGR, connect, stakingMinted } from './lib.js';

let api;
let keyring;
let provider;
let alice; let bob; let charlie; let dave; let eve; let ferdie;
let job;
let treasury;
let pot;
const PRICE = 2n * AGR / 1000n; // 0.002 AGR per request
const validators = () => [charlie, eve, ferdie];

before(async () => {
  ({ api, keyring, provider } = await connect());
  [alice, bob, charlie, dave, eve, ferdie] = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie']
    .map((name) => keyring.addFromUri(`//${name}`));
  // A pallet's account: SCALE("modl", its 8-byte id), padded with zeros to 32 bytes.
  const palletAccount = (id) => u8aToHex(u8aConcat(stringToU8a('modl'), id, new Uint8Array(20)));
  treasury = palletAccount(stringToU8a('py/trsry'));
  pot = palletAccount(api.consts.inference.palletId.toU8a());
});

after(async () => {
  await api?.disconnect();
});

const seal = () => provider.send('engine_createBlock', [true, true, null]);

// Signs and submits `tx`, seals a block, and resolves with its events and dispatch error. A
// session's first block is full (pallet-session claims it for the rotation), so a transaction
// that missed the sealed block is sealed into the next one.
function submit(tx, signer) {
  return new Promise((resolve, reject) => {
    let included = false;
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      // Sealed and finalized at once, the status may skip InBlock.
      if (status.isInBlock || status.isFinalized) {
        included = true;
        resolve({ events, dispatchError });
      } else if (status.isInvalid || status.isDropped || status.isUsurped) {
        reject(new Error(`transaction ${status.type}`));
      }
    }).then(async () => {
      for (let attempt = 0; attempt < 3 && !included; attempt += 1) {
        await seal();
        await new Promise((settle) => setTimeout(settle, 1_000));
      }
    }).catch(reject);
  });
}

function errorName(result) {
  if (!result.dispatchError) return null;
  if (!result.dispatchError.isModule) return result.dispatchError.toString();
  const meta = api.registry.findMetaError(result.dispatchError.asModule);
  return `${meta.section}.${meta.name}`;
}

async function ok(tx, signer) {
  const result = await submit(tx, signer);
  assert.equal(errorName(result), null);
  return result;
}

async function fails(tx, signer, expected) {
  const result = await submit(tx, signer);
  assert.equal(errorName(result), expected);
}

const find = (events, section, method) => events
  .map(({ event }) => event)
  .find((e) => e.section === section && e.method === method);

// Seals blocks until one (the best block included) has an event for which `predicate` holds.
async function sealUntil(predicate, what, max = 60) {
  let hash = (await api.rpc.chain.getHeader()).hash;
  for (let i = 0; i <= max; i += 1) {
    const events = await (await api.at(hash)).query.system.events();
    const hit = events.map(({ event }) => event).find(predicate);
    if (hit) return hit;
    hash = (await seal()).hash;
  }
  throw new Error(`no ${what} within ${max} blocks`);
}

async function sealTo(block) {
  while ((await api.rpc.chain.getHeader()).number.toNumber() < block) await seal();
}

const is = (section, method, extra = () => true) => (e) => e.section === section
  && e.method === method && extra(e);

const account = (pair) => decodeAddress(pair.address);
const u64 = (n) => api.createType('u64', n).toU8a();
const blake = (...parts) => blake2AsU8a(u8aConcat(...parts), 256);
const salt = (pair) => blake(stringToU8a(`salt ${pair.address}`));

async function free(who) {
  return (await api.query.system.account(who)).data.free.toBigInt();
}
async function total(who) {
  const { data } = await api.query.system.account(who);
  return data.free.toBigInt() + data.reserved.toBigInt();
}
const everyone = () => [alice, bob, charlie, dave, eve, ferdie].map((p) => p.address)
  .concat([treasury, pot]);
// Everyone's holdings less what staking minted since genesis (each era's remainder goes to the
// treasury): the market itself neither mints nor burns.
async function sumOfEveryone() {
  let sum = 0n;
  for (const who of everyone()) sum += await total(who);
  return sum - await stakingMinted(api, 0, await headNumber());
}

async function headNumber() {
  return (await api.rpc.chain.getHeader()).number.toNumber();
}

const capability = { device: 'Cpu', memoryMib: 8_192, throughput: 100 };
const PEER = '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp';

test('a completed training round lists its model in the catalogue', async () => {
  await ok(api.tx.contributions.registerWorker(200n * AGR, PEER, '/ip4/127.0.0.1/tcp/4001', capability), dave);
  for (const v of validators()) {
    await ok(api.tx.contributions.registerValidator(2_000n * AGR, PEER, '/ip4/127.0.0.1/tcp/4002', capability), v);
  }
  const spec = {
    architecture: 'mlp:in=64,hidden=32,out=10',
    hyperparameters: '{"lr":0.05}',
    initialWeights: `0x${'11'.repeat(32)}`,
    dataset: 'Private',
    rounds: 1,
    localSteps: 10,
    checkpointInterval: 5,
    samplesPerRound: 100,
    workersPerRound: 1,
    validatorsPerUpdate: 2,
    mode: 'Evaluation',
    periods: { open: 3, training: 4, commit: 6, reveal: 6, aggregation: 6 },
  };
  const created = await ok(api.tx.tasks.createJob(spec, 20n * AGR), alice);
  job = find(created.events, 'tasks', 'JobCreated').data.job.toNumber();
  await ok(api.tx.tasks.applyForRound(job), dave);
  await sealUntil(is('tasks', 'TrainingStarted'), 'training');
  const update = {
    delta: `0x${'22'.repeat(32)}`,
    samples: 100,
    lossMicros: 300_000,
    checkpointRoot: `0x${'33'.repeat(32)}`,
    checkpoints: 2,
  };
  await ok(api.tx.tasks.submitUpdate(job, 1, update), dave);
  const assigned = await sealUntil(is('validation', 'ValidatorsAssigned'), 'validator assignment');
  const judges = assigned.data.validators.map((v) => validators().find((p) => p.address === v.toString()));
  const score = 900_000_000; // 90%
  for (const v of judges) {
    const commitment = blake(
      u64(job),
      account(dave),
      api.createType('AgoraPrimitivesVerdict', 'Valid').toU8a(),
      api.createType('u32', score).toU8a(),
      salt(v),
      account(v),
    );
    await ok(api.tx.validation.commitVerdict(job, dave.address, u8aToHex(commitment)), v);
  }
  await sealUntil(is('validation', 'RevealStarted'), 'reveal stage');
  for (const v of judges) {
    await ok(api.tx.validation.revealVerdict(job, dave.address, 'Valid', score, u8aToHex(salt(v))), v);
  }
  await sealUntil(is('validation', 'AggregatorSelected'), 'aggregation');
  const model = blake(stringToU8a('the aggregated model'));
  const aggregateCommitment = (who) => u8aToHex(blake(
    stringToU8a('agora/aggregate/v1'),
    u64(job),
    api.createType('u32', 1).toU8a(),
    model,
    salt(who),
    account(who),
  ));
  await ok(api.tx.validation.postAggregate(job, 1, aggregateCommitment(dave)), dave);
  for (const v of judges) await ok(api.tx.validation.voteAggregate(job, 1, aggregateCommitment(v)), v);
  await sealUntil(is('validation', 'AggregateRevealStarted'), 'aggregate reveal');
  for (const who of [dave, ...judges]) {
    await ok(api.tx.validation.revealAggregate(job, 1, u8aToHex(model), u8aToHex(salt(who))), who);
  }
  const listed = await sealUntil(is('inference', 'VersionListed'), 'catalogue listing');
  assert.equal(listed.data.model.toNumber(), job);
  assert.equal(listed.data.weights.toHex(), u8aToHex(model));
  assert.equal(listed.data.score.toNumber(), score);
  const entry = (await api.query.inference.models(job)).unwrap();
  assert.equal(entry.owner.toString(), alice.address);
  assert.equal(entry.access.toString(), 'OwnerOnly');
  assert.equal(entry.versions.toNumber(), 1);
  const version = (await api.query.inference.versions(job, 1)).unwrap();
  assert.equal(version.model.toHex(), u8aToHex(model));

  // The owner opens it to everyone under a license; a worker offers it.
  await ok(api.tx.inference.setTerms(job, 'Apache-2.0', 'Public'), alice);
  await ok(api.tx.inference.offer(job, 1, PRICE, PEER), dave);
  const offer = (await api.query.inference.offers(dave.address, job)).unwrap();
  assert.equal(offer.price.toBigInt(), PRICE);
});

// Short windows so that the test runs in seconds (governance sets them; --dev has sudo).
async function setParams(changes) {
  const params = { ...(await api.query.inference.protocolParams()).toJSON(), ...changes };
  await ok(api.tx.sudo.sudo(api.tx.inference.setParams(params)), alice);
}

// The client's side of a channel: the transcript of the answers it received and its receipts.
class Client {
  constructor(pair, channel) {
    this.pair = pair;
    this.channel = channel;
    this.requests = 0;
    this.amount = 0n;
    this.head = blake(stringToU8a('agora/inference-transcript1'), u64(channel));
  }

  // One answered request: extends the transcript and signs the cumulative receipt.
  answered(input, output) {
    this.requests += 1;
    this.amount += PRICE;
    this.head = blake(this.head, u64(this.requests), blake(input), blake(output));
    return this.receipt();
  }

  receipt(overrides = {}) {
    const receipt = api.createType('PalletInferenceReceipt', {
      channel: this.channel,
      requests: this.requests,
      amount: this.amount,
      transcript: u8aToHex(this.head),
      ...overrides,
    });
    const payload = u8aConcat(stringToU8a('agora/inference-receipt1'), api.genesisHash.toU8a(), receipt.toU8a());
    return { receipt, signature: { Sr25519: u8aToHex(this.pair.sign(payload)) } };
  }
}

async function openChannel(client, amount) {
  const { events } = await ok(api.tx.inference.openChannel(dave.address, job, PRICE, amount), client);
  return find(events, 'inference', 'ChannelOpened').data.channel.toNumber();
}

let conserved;

test('a paid session settles in batches and the provider is paid after the dispute window', async () => {
  await setParams({ auditRate: 10_000_000, disputeWindow: 6, commitPeriod: 5, revealPeriod: 5, closeDelay: 3 });
  conserved = await sumOfEveryone();
  const issuance = (await api.query.balances.totalIssuance()).toBigInt();
  const issuanceAt = await headNumber();
  const daveBefore = await free(dave.address);
  const channel = await openChannel(bob, 100n * PRICE);
  const client = new Client(bob, channel);
  let latest;
  for (let i = 0; i < 5; i += 1) latest = client.answered(stringToU8a(`input ${i}`), stringToU8a(`output ${i}`));
  const first = await ok(api.tx.inference.settle(latest.receipt, latest.signature), dave);
  const batch1 = find(first.events, 'inference', 'Settled');
  assert.equal(batch1.data.first.toNumber(), 1);
  assert.equal(batch1.data.last.toNumber(), 5);
  assert.equal(batch1.data.amount.toBigInt(), 5n * PRICE);
  for (let i = 5; i < 12; i += 1) latest = client.answered(stringToU8a(`input ${i}`), stringToU8a(`output ${i}`));
  const second = await ok(api.tx.inference.settle(latest.receipt, latest.signature), dave);
  const batch2 = find(second.events, 'inference', 'Settled');
  assert.equal(batch2.data.amount.toBigInt(), 7n * PRICE);
  const batches = [batch1, batch2].map((e) => e.data.batch.toNumber());
  // Not payable yet: the second batch's audit draw, and its dispute window, are ahead.
  await fails(api.tx.inference.clearBatch(batches[1]), bob, 'inference.DisputeWindowOpen');
  const settledAt = (await api.rpc.chain.getHeader()).number.toNumber();
  await sealTo(settledAt + 8);
  for (const id of batches) {
    const batch = (await api.query.inference.batches(id)).unwrap();
    if (batch.status.isAudited) {
      // Drawn at 1%: its auditors, too late to commit by now, let it stand.
      const audit = (await api.query.inference.audits(batch.status.asAudited)).unwrap();
      await sealTo(audit.revealDeadline.toNumber() + 1);
      await ok(api.tx.inference.concludeAudit(batch.status.asAudited), bob);
    }
    const cleared = await ok(api.tx.inference.clearBatch(id), bob);
    assert.ok(find(cleared.events, 'inference', 'BatchCleared'));
  }
  const paid = 12n * PRICE;
  const fees = paid / 20n + paid / 20n;
  assert.equal(await free(dave.address) - daveBefore, paid - fees - (await feesPaidBy(dave, second, first)));
  assert.equal(
    (await api.query.balances.totalIssuance()).toBigInt(),
    issuance + await stakingMinted(api, issuanceAt, await headNumber()),
  );
  assert.equal(await sumOfEveryone(), conserved);
});

// The transaction fees `pair` paid in the given results (they go to the treasury).
async function feesPaidBy(pair, ...results) {
  let fees = 0n;
  for (const result of results) {
    const paid = result.events.map(({ event }) => event).find((e) => e.section === 'transactionPayment'
      && e.method === 'TransactionFeePaid' && e.data.who.toString() === pair.address);
    if (paid) fees += paid.data.actualFee.toBigInt();
  }
  return fees;
}

async function judgeAudit(audit, verdictOf) {
  const a = (await api.query.inference.audits(audit)).unwrap();
  const auditors = a.auditors.map((x) => validators().find((p) => p.address === x.who.toString()));
  const verdicts = new Map(auditors.map((p) => [p.address, verdictOf(p)]));
  const commitmentOf = (p) => u8aToHex(blake(
    stringToU8a('agora/audit/v1'),
    u64(audit),
    api.createType('PalletInferenceAuditVerdict', verdicts.get(p.address)).toU8a(),
    salt(p),
    account(p),
  ));
  for (const p of auditors) await ok(api.tx.inference.commitAudit(audit, commitmentOf(p)), p);
  await sealTo(a.commitDeadline.toNumber() + 1);
  for (const p of auditors) {
    await ok(api.tx.inference.revealAudit(audit, verdicts.get(p.address), u8aToHex(salt(p))), p);
  }
  return auditors;
}

test('forged and replayed receipts are rejected', async () => {
  const channel = await openChannel(bob, 10n * PRICE);
  const client = new Client(bob, channel);
  const { receipt, signature } = client.answered(stringToU8a('x'), stringToU8a('y'));
  // Signed by another key.
  const forger = new Client(charlie, channel);
  forger.answered(stringToU8a('x'), stringToU8a('y'));
  await fails(api.tx.inference.settle(receipt, forger.receipt().signature), dave, 'inference.BadSignature');
  // The client's signature over a smaller amount, presented with a larger one.
  const inflated = client.receipt({ amount: 2n * PRICE, requests: 2 });
  await fails(api.tx.inference.settle(inflated.receipt, signature), dave, 'inference.BadSignature');
  // Asking more than the price per request, even signed.
  const greedy = client.receipt({ amount: 2n * PRICE });
  await fails(api.tx.inference.settle(greedy.receipt, greedy.signature), dave, 'inference.Overcharged');
  // Only the channel's provider settles.
  await fails(api.tx.inference.settle(receipt, signature), eve, 'inference.NotProvider');
  await ok(api.tx.inference.settle(receipt, signature), dave);
  // The same receipt again.
  await fails(api.tx.inference.settle(receipt, signature), dave, 'inference.StaleReceipt');
});

test('a wrong answer caught by audit slashes the provider and refunds the client', async () => {
  await setParams({ auditRate: 1_000_000_000 });
  const before = await sumOfEveryone();
  const stakeBefore = (await api.query.contributions.workers(dave.address)).unwrap().stake.toBigInt();
  const channel = await openChannel(bob, 50n * PRICE);
  const client = new Client(bob, channel);
  let latest;
  for (let i = 0; i < 8; i += 1) latest = client.answered(stringToU8a(`q${i}`), stringToU8a(`wrong ${i}`));
  const settled = await ok(api.tx.inference.settle(latest.receipt, latest.signature), dave);
  const batch = find(settled.events, 'inference', 'Settled').data.batch.toNumber();
  const started = await sealUntil(is('inference', 'AuditStarted', (e) => e.data.batch.toNumber() === batch), 'audit');
  const audit = started.data.audit.toNumber();
  const request = started.data.request.toNumber();
  assert.ok(request >= 1 && request <= 8);
  // Neither party audits itself.
  const auditors = started.data.auditors.map((a) => a.toString());
  assert.ok(!auditors.includes(dave.address) && !auditors.includes(bob.address));
  await fails(api.tx.inference.clearBatch(batch), dave, 'inference.UnderAudit');
  // The auditors re-ran request `request` and got another answer.
  await judgeAudit(audit, () => 'Wrong');
  const bobBefore = await free(bob.address);
  const concluded = await ok(api.tx.inference.concludeAudit(audit), ferdie);
  const event = find(concluded.events, 'inference', 'AuditConcluded');
  assert.equal(event.data.outcome.toString(), 'Failed');
  assert.equal(event.data.refunded.toBigInt(), 8n * PRICE);
  assert.ok(event.data.slashed.toBigInt() > 0n);
  const stakeAfter = (await api.query.contributions.workers(dave.address)).unwrap().stake.toBigInt();
  assert.equal(stakeBefore - stakeAfter, event.data.slashed.toBigInt());
  assert.equal(await free(bob.address) - bobBefore, 8n * PRICE);
  assert.equal((await api.query.inference.batches(batch)).isNone, true);
  assert.equal(await sumOfEveryone(), before);
});

test('a provider that disappears costs its client nothing but fees', async () => {
  await setParams({ auditRate: 10_000_000 });
  const bobBefore = await total(bob.address);
  const channel = await openChannel(bob, 40n * PRICE);
  // No answer ever comes: the client closes and, after the close delay, takes everything back.
  const closing = await ok(api.tx.inference.closeChannel(channel), bob);
  const closesAt = find(closing.events, 'inference', 'ChannelClosing').data.closesAt.toNumber();
  await fails(api.tx.inference.finishClose(channel), bob, 'inference.CloseDelayRunning');
  await sealTo(closesAt);
  const closed = await ok(api.tx.inference.finishClose(channel), bob);
  const deposit = BigInt((await api.query.inference.protocolParams()).toJSON().channelDeposit);
  assert.equal(find(closed.events, 'inference', 'ChannelClosed').data.refunded.toBigInt(), 40n * PRICE + deposit);
  assert.equal((await api.query.inference.channels(channel)).isNone, true);
  // Bob lost only the fees of his own three transactions.
  const lost = bobBefore - await total(bob.address);
  assert.ok(lost > 0n && lost < AGR / 10n, `Bob lost ${lost}`);
  assert.equal(await sumOfEveryone(), conserved);
});

test('a provider that takes a request and never answers it, even on chain, is slashed and its client refunded', async () => {
  const before = await sumOfEveryone();
  const bobBefore = await total(bob.address);
  const stakeBefore = (await api.query.contributions.workers(dave.address)).unwrap().stake.toBigInt();
  const channel = await openChannel(bob, 30n * PRICE);
  // Dave took the channel and answers nothing over the network: Bob puts the request on chain.
  const input = u8aToHex(new Uint8Array(256).fill(7));
  const challenged = await ok(api.tx.inference.challenge(channel, input), bob);
  const { deadline } = find(challenged.events, 'inference', 'Challenged').data;
  const pending = await api.query.inference.challenges(dave.address, channel);
  assert.equal(pending.unwrap().input.toHex(), input);
  await fails(api.tx.inference.challenge(channel, input), bob, 'inference.ChallengePending');
  await fails(api.tx.inference.expireChallenge(channel), ferdie, 'inference.AnswerWindowOpen');
  // Dave cannot close his way out of it.
  await ok(api.tx.inference.closeChannel(channel), dave);
  await fails(api.tx.inference.finishClose(channel), bob, 'inference.ChallengePending');
  await sealTo(deadline.toNumber() + 1);
  await fails(api.tx.inference.answerChallenge(channel, '0x01', null), dave, 'inference.ChallengeExpired');
  const expired = await ok(api.tx.inference.expireChallenge(channel), ferdie);
  const slashed = find(expired.events, 'inference', 'ChallengeExpired').data.slashed.toBigInt();
  assert.ok(slashed > 0n);
  const stakeAfter = (await api.query.contributions.workers(dave.address)).unwrap().stake.toBigInt();
  assert.equal(stakeBefore - stakeAfter, slashed);
  const closed = await ok(api.tx.inference.finishClose(channel), bob);
  const deposit = BigInt((await api.query.inference.protocolParams()).toJSON().channelDeposit);
  assert.equal(find(closed.events, 'inference', 'ChannelClosed').data.refunded.toBigInt(), 30n * PRICE + deposit);
  // Bob got everything back, bond included, but the fees of his transactions.
  const lost = bobBefore - await total(bob.address);
  assert.ok(lost > 0n && lost < AGR / 10n, `Bob lost ${lost}`);
  assert.equal(await sumOfEveryone(), before);
});

test('a request put on chain is answered there free of fees, settled at the price and audited like any other', async () => {
  const before = await sumOfEveryone();
  const channel = await openChannel(bob, 30n * PRICE);
  const client = new Client(bob, channel);
  // Two answers over the network, receipted, not settled yet.
  let latest;
  for (let i = 0; i < 2; i += 1) latest = client.answered(stringToU8a(`q${i}`), stringToU8a(`a${i}`));
  // The third is not answered: Bob puts it on chain, Dave answers it there, settling the
  // receipt for the first two in the same call.
  const input = new Uint8Array(64).fill(3);
  await ok(api.tx.inference.challenge(channel, u8aToHex(input)), bob);
  await fails(api.tx.inference.answerChallenge(channel, '0x01', null), eve, 'inference.NotProvider');
  const output = new Uint8Array(40).fill(9);
  const daveBefore = await total(dave.address);
  const answered = await ok(api.tx.inference.answerChallenge(
    channel,
    u8aToHex(output),
    [latest.receipt, latest.signature],
  ), dave);
  assert.equal(await total(dave.address), daveBefore, 'answering costs the provider nothing');
  const event = find(answered.events, 'inference', 'ChallengeAnswered');
  assert.equal(event.data.request.toNumber(), 3);
  assert.equal(event.data.output.toHex(), u8aToHex(output));
  assert.equal(event.data.amount.toBigInt(), PRICE);
  assert.equal(await feesPaidBy(dave, answered), 0n, 'answering is free');
  // The answer extends the transcript Bob signs: his receipts go on from request 3.
  client.answered(input, output);
  const settled = find(answered.events, 'inference', 'Settled');
  assert.equal(settled.data.first.toNumber(), 1);
  assert.equal(settled.data.last.toNumber(), 3);
  assert.equal(settled.data.amount.toBigInt(), 3n * PRICE);
  assert.equal(event.data.batch.toNumber(), settled.data.batch.toNumber());
  const batch = (await api.query.inference.batches(settled.data.batch)).unwrap();
  assert.equal(batch.transcript.toHex(), u8aToHex(client.head));
  latest = client.answered(stringToU8a('q3'), stringToU8a('a3'));
  const next = await ok(api.tx.inference.settle(latest.receipt, latest.signature), dave);
  assert.equal(find(next.events, 'inference', 'Settled').data.first.toNumber(), 4);
  assert.equal(await sumOfEveryone(), before);
});
