// Governance through a third-party client only: token holders put protocol changes to a
// referendum, vote with locked AGR, and a passed referendum is enacted; a failed one changes
// nothing; a runtime upgrade (spec_version bump) goes the same way on the root track.
//
// AGORA_UPGRADE_WASM: path of a runtime built with a higher spec_version (scripts/test.sh
// builds one with AGORA_SPEC_VERSION); without it the upgrade test is reported as skipped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { blake2AsHex } from '@polkadot/util-crypto';
import { AGR, connect, submitOk, waitFor } from './lib.js';

const VOTE = 900_000n * AGR;
let api;
let keyring;
let accounts;

before(async () => {
  ({ api, keyring } = await connect());
  accounts = Object.fromEntries(
    ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve'].map((name) => [name, keyring.addFromUri(`//${name}`)]),
  );
});

after(async () => {
  await api?.disconnect();
});

function findEvent(events, section, method) {
  return events.find(({ event }) => event.section === section && event.method === method);
}

// Stores the call as a preimage, submits the referendum on the origin's track and places the
// decision deposit, in one batch; returns the referendum index.
async function propose(origin, call) {
  const encoded = call.method.toHex();
  const hash = blake2AsHex(encoded, 256);
  const len = (encoded.length - 2) / 2;
  const { events } = await submitOk(
    api,
    api.tx.utility.batchAll([
      api.tx.preimage.notePreimage(encoded),
      api.tx.referenda.submit(origin, { Lookup: { hash, len } }, { After: 1 }),
    ]),
    accounts.Alice,
  );
  const submitted = findEvent(events, 'referenda', 'Submitted');
  assert.ok(submitted, 'no Referenda.Submitted event');
  const index = submitted.event.data.index.toNumber();
  await submitOk(api, api.tx.referenda.placeDecisionDeposit(index), accounts.Alice);
  return index;
}

function vote(index, voter, aye, balance) {
  return submitOk(
    api,
    api.tx.convictionVoting.vote(index, {
      Standard: { vote: { aye, conviction: 'Locked1x' }, balance },
    }),
    voter,
  );
}

// Waits for an event of `section.method` whose data matches `predicate`, from now on.
function waitForEvent(section, method, predicate, timeoutMs) {
  return waitFor(
    (cb) => api.query.system.events(cb),
    (events) => events.some(({ event }) => event.section === section && event.method === method
      && predicate(event.data)),
    timeoutMs,
    `${section}.${method}`,
  );
}

test('a passed referendum changes a protocol parameter', async () => {
  const before = (await api.query.tasks.protocolParams()).toJSON();
  const wanted = { ...before, minBudget: BigInt(before.minBudget) * 2n };

  const index = await propose(
    { Governance: 'ProtocolParameters' },
    api.tx.tasks.setParams(wanted),
  );
  const confirmed = waitForEvent('referenda', 'Confirmed', (d) => d.index.toNumber() === index, 120_000);
  await Promise.all([
    vote(index, accounts.Alice, true, VOTE),
    vote(index, accounts.Bob, true, VOTE),
    vote(index, accounts.Charlie, true, VOTE),
    vote(index, accounts.Dave, false, 100_000n * AGR),
  ]);
  await confirmed;

  const changed = await waitFor(
    (cb) => api.query.tasks.protocolParams(cb),
    (params) => BigInt(params.toJSON().minBudget) === wanted.minBudget,
    60_000,
    'the enacted parameter change',
  );
  assert.equal(BigInt(changed.toJSON().minBudget), BigInt(before.minBudget) * 2n);
  const info = await api.query.referenda.referendumInfoFor(index);
  assert.ok(info.unwrap().isApproved, `referendum ${index} is ${info.toString()}`);
});

test('a rejected referendum leaves everything unchanged', async () => {
  const before = (await api.query.rewards.protocolParams()).toJSON();
  const index = await propose(
    { Governance: 'ProtocolParameters' },
    api.tx.rewards.setParams({ ...before, emissionPerBlock: 0 }),
  );
  const rejected = waitForEvent('referenda', 'Rejected', (d) => d.index.toNumber() === index, 180_000);
  await Promise.all([
    vote(index, accounts.Alice, false, VOTE),
    vote(index, accounts.Eve, true, 100_000n * AGR),
  ]);
  await rejected;

  assert.deepEqual((await api.query.rewards.protocolParams()).toJSON(), before);
  const info = await api.query.referenda.referendumInfoFor(index);
  assert.ok(info.unwrap().isRejected, `referendum ${index} is ${info.toString()}`);
});

test('a parameter outside its bounds is rejected with a named error', async () => {
  const params = (await api.query.rewards.protocolParams()).toJSON();
  const tooMuch = { ...params, emissionPerBlock: 1_000n * AGR };
  const { events } = await submitOk(
    api,
    api.tx.sudo.sudo(api.tx.rewards.setParams(tooMuch)),
    accounts.Alice,
  );
  const sudid = findEvent(events, 'sudo', 'Sudid');
  const result = sudid.event.data.sudoResult;
  assert.ok(result.isErr, 'out-of-bounds parameters were accepted');
  const error = api.registry.findMetaError(result.asErr.asModule);
  assert.equal(error.section, 'rewards');
  assert.match(error.name, /Emission|Bound|Param/);
  assert.deepEqual((await api.query.rewards.protocolParams()).toJSON(), params);
});

test('a runtime upgrade is enacted by referendum on the root track', async (t) => {
  const wasmPath = process.env.AGORA_UPGRADE_WASM;
  if (!wasmPath) {
    t.skip('AGORA_UPGRADE_WASM not set');
    return;
  }
  const code = readFileSync(wasmPath);
  const codeHash = blake2AsHex(code, 256);
  const specBefore = (await api.rpc.state.getRuntimeVersion()).specVersion.toNumber();

  const index = await propose({ system: 'Root' }, api.tx.system.authorizeUpgrade(codeHash));
  const authorized = waitForEvent('system', 'UpgradeAuthorized', (d) => d.codeHash.toHex() === codeHash, 180_000);
  await Promise.all(['Alice', 'Bob', 'Charlie', 'Dave'].map((name) => vote(index, accounts[name], true, VOTE)));
  await authorized;

  const updated = waitForEvent('system', 'CodeUpdated', () => true, 120_000);
  await submitOk(api, api.tx.system.applyAuthorizedUpgrade(`0x${code.toString('hex')}`), accounts.Eve);
  await updated;

  const version = await waitFor(
    (cb) => api.rpc.state.subscribeRuntimeVersion(cb),
    (v) => v.specVersion.toNumber() > specBefore,
    60_000,
    'the new runtime version',
  );
  assert.ok(version.specVersion.toNumber() > specBefore);
  assert.equal(version.specName.toString(), 'agora');
});
