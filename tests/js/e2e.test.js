// The outcome of a whole decentralized training job, read from the chain by a third-party
// client. Run by `scripts/demo.sh --check` once its job has finished:
//   AGORA_E2E_JOB      the job id
//   AGORA_E2E_MODEL    the final model as downloaded from the workers over libp2p
//   AGORA_E2E_CHEATER  how Eve cheated (`none` if she was honest: then Mallory, the planter and
//                      the lazy validator did not run either, and nobody's network was flaky)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { blake2AsHex } from '@polkadot/util-crypto';
import { connect } from './lib.js';

const JOB = Number(process.env.AGORA_E2E_JOB ?? 0);
const MODEL = process.env.AGORA_E2E_MODEL;
const CHEATING = (process.env.AGORA_E2E_CHEATER ?? 'none') !== 'none';

let api;
let keyring;
let details;
let events = []; // every event of every block: { block, section, method, data }
let genesisIssuance;

before(async () => {
  ({ api, keyring } = await connect());
  const job = await api.call.tasksApi.job(JOB);
  assert.ok(job.isSome, `job ${JOB} exists`);
  details = job.unwrap();
  const head = (await api.rpc.chain.getHeader()).number.toNumber();
  for (let n = 1; n <= head; n += 1) {
    const at = await api.at(await api.rpc.chain.getBlockHash(n));
    for (const { event } of await at.query.system.events()) {
      events.push({ block: n, section: event.section, method: event.method, data: event.data });
    }
  }
  const genesis = await api.at(await api.rpc.chain.getBlockHash(0));
  genesisIssuance = (await genesis.query.balances.totalIssuance()).toBigInt();
});

after(async () => {
  await api?.disconnect();
});

const account = (name) => keyring.addFromUri(`//${name}`).address;
const find = (section, method) => events.filter((e) => e.section === section && e.method === method);
const same = (a, b) => a.toString() === b.toString();

// What an account earned: what it claimed plus what is still owed to it.
async function earned(name) {
  const who = account(name);
  const claimed = find('rewards', 'Claimed')
    .filter((e) => same(e.data.who, who))
    .reduce((sum, e) => sum + e.data.amount.toBigInt(), 0n);
  const pending = (await api.query.rewards.pending(who)).toBigInt();
  return claimed + pending;
}

test('the job is finalized with a model for every round', () => {
  assert.equal(details.status.type, 'Finalized');
  assert.equal(details.models.length, details.spec.rounds.toNumber());
  assert.equal(details.escrow.toBigInt(), 0n);
  assert.ok(find('tasks', 'JobFinalized').some((e) => e.data.job.toNumber() === JOB));
});

test('the final model on chain is the model the workers serve', () => {
  assert.ok(MODEL, 'AGORA_E2E_MODEL names the downloaded model');
  const downloaded = blake2AsHex(readFileSync(MODEL), 256);
  assert.equal(details.latestModel.toHex(), downloaded);
  const lastRound = details.models[details.models.length - 1];
  assert.equal(lastRound[1].toHex(), downloaded);
});

test('the cheating worker is slashed for failed replay and earns nothing', { skip: !CHEATING }, async () => {
  const eve = account('Eve');
  const slashes = find('validation', 'Slashed').filter((e) => same(e.data.who, eve));
  assert.ok(slashes.length >= 1, 'Eve was slashed');
  assert.equal(slashes[0].data.reason.type, 'FailedReplay');
  assert.ok(slashes[0].data.amount.toBigInt() > 0n, 'she lost stake');
  // (her daemon may have bonded the slashed amount again since: it keeps its stake topped up)
  assert.equal(await earned('Eve'), 0n);
  // Nobody honest was slashed, not even Dave and Bob, whose downloads kept failing once.
  for (const name of ['Charlie', 'Dave', 'Ferdie', 'Bob']) {
    assert.ok(!find('validation', 'Slashed').some((e) => same(e.data.who, account(name))), name);
  }
});

test('Mallory, who trained on other data than her shards, is slashed and earns nothing', { skip: !CHEATING }, async () => {
  const mallory = account('Eve//stash');
  const slashes = find('validation', 'Slashed').filter((e) => same(e.data.who, mallory));
  assert.ok(slashes.length >= 1, 'Mallory was slashed');
  assert.ok(slashes.every((e) => e.data.reason.type === 'FailedReplay'), 'for an invalid run');
  assert.equal(await earned('Eve//stash'), 0n);
});

test('the planter exposed its planted updates and paid for the test', { skip: !CHEATING }, async () => {
  const planter = account('Dave//stash');
  const exposed = find('validation', 'PlantExposed').filter((e) => same(e.data.worker, planter));
  assert.ok(exposed.length >= 1, 'a planted update was exposed');
  const slashes = find('validation', 'Slashed').filter((e) => same(e.data.who, planter));
  assert.ok(slashes.some((e) => e.data.reason.type === 'Planted'), 'the planter was slashed');
  assert.equal(await earned('Dave//stash'), 0n);
});

test('the lazy validator is caught approving a plant, slashed and paid nothing', { skip: !CHEATING }, async () => {
  const lazy = account('Ferdie//stash');
  const reasons = find('validation', 'Slashed')
    .filter((e) => same(e.data.who, lazy))
    .map((e) => e.data.reason.type);
  assert.ok(reasons.includes('ApprovedPlant'), `slashed for approving a plant (${reasons})`);
  assert.equal(await earned('Ferdie//stash'), 0n);
  // Validators that checked were never slashed for the plants or for Eve.
  for (const name of ['Ferdie', 'Bob']) {
    assert.ok((await earned(name)) > 0n, `${name} was paid`);
  }
});

test('honest workers, validators and the data provider are paid', async () => {
  for (const name of ['Charlie', 'Dave', 'Ferdie', 'Bob']) {
    assert.ok((await earned(name)) > 0n, `${name} earned a reward`);
  }
  const settled = find('rewards', 'RoundSettled').filter((e) => e.data.job.toNumber() === JOB);
  assert.equal(settled.length, details.spec.rounds.toNumber());
  for (const round of settled) {
    assert.ok(round.data.providers.toBigInt() > 0n, 'data provider share paid');
    assert.ok(round.data.fee.toBigInt() > 0n, 'protocol fee to the treasury');
  }
  // The submitter paid exactly the budget of the completed rounds.
  assert.equal(details.spent.toBigInt(), details.budget.toBigInt());
});

test('balances are conserved: issuance grew only by emission and every planck is accounted', async () => {
  const emitted = find('rewards', 'Emitted').reduce((sum, e) => sum + e.data.amount.toBigInt(), 0n);
  assert.ok(emitted > 0n);
  // Staking's era emission: the treasury's remainder and the era rewards paid out.
  const staked = find('staking', 'EraPaid').reduce((sum, e) => sum + e.data.remainder.toBigInt(), 0n)
    + find('staking', 'Rewarded').reduce((sum, e) => sum + e.data.amount.toBigInt(), 0n);
  const issuance = (await api.query.balances.totalIssuance()).toBigInt();
  assert.equal(issuance - genesisIssuance, emitted + staked);
  let held = 0n;
  for (const [, info] of await api.query.system.account.entries()) {
    held += info.data.free.toBigInt() + info.data.reserved.toBigInt();
  }
  assert.equal(held, issuance);
});

// The demo's inference step (AGORA_E2E_MARKET=1): Alice bought predictions from Charlie's
// `agora-worker serve` over libp2p; every batch was audited (the demo sets the audit rate to
// 100%), passed, and was paid; the channel closed and the rest came back to Alice.
const MARKET = process.env.AGORA_E2E_MARKET === '1';

test('Alice bought predictions from the served model: settled, audited, paid, closed', { skip: !MARKET }, async () => {
  const opened = find('inference', 'ChannelOpened').filter(
    (e) => same(e.data.client, account('Alice')) && e.data.model.toNumber() === JOB,
  );
  assert.equal(opened.length, 1, 'one channel for the job\'s model');
  const { channel, provider, price, balance } = opened[0].data;
  assert.ok(same(provider, account('Charlie')));
  const ofChannel = (method) => find('inference', method).filter((e) => e.data.channel.eq(channel));
  const settled = ofChannel('Settled');
  assert.ok(settled.length >= 1, 'settled on chain');
  assert.equal(settled.at(-1).data.last.toNumber(), 20, 'all 20 answers settled');
  let amount = 0n;
  for (const batch of settled) amount += batch.data.amount.toBigInt();
  assert.equal(amount, 20n * price.toBigInt(), 'each answer paid at the offer\'s price');
  const batches = new Set(settled.map((e) => e.data.batch.toNumber()));
  const concluded = find('inference', 'AuditConcluded').filter((e) => batches.has(e.data.batch.toNumber()));
  assert.equal(concluded.length, batches.size, 'every batch audited');
  for (const audit of concluded) {
    assert.equal(audit.data.outcome.type, 'Passed');
    assert.equal(audit.data.slashed.toBigInt(), 0n);
  }
  const cleared = ofChannel('BatchCleared');
  assert.equal(cleared.length, batches.size, 'every batch paid');
  let paid = 0n;
  for (const batch of cleared) {
    const { providerPaid, protocolFee, auditFee } = batch.data;
    assert.ok(protocolFee.toBigInt() > 0n && auditFee.toBigInt() > 0n, 'fees to the treasury and the audit pot');
    paid += providerPaid.toBigInt() + protocolFee.toBigInt() + auditFee.toBigInt();
  }
  assert.equal(paid, amount, 'what was settled was paid out, nothing more');
  const closed = ofChannel('ChannelClosed');
  assert.equal(closed.length, 1);
  const deposit = (await api.query.inference.protocolParams()).channelDeposit.toBigInt();
  assert.equal(closed[0].data.refunded.toBigInt(), balance.toBigInt() - amount + deposit, 'the rest came back');
});
