// A whole network's health, seen from a third-party client: every node imports and finalizes the
// same chain, all four validators author blocks, and the workers and AI validators are
// registered on chain. Run by `scripts/docker.sh check` against the compose network:
//   AGORA_NETWORK_PORTS  the nodes' RPC ports, separated by spaces (default 9944)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, waitFor } from './lib.js';

const PORTS = (process.env.AGORA_NETWORK_PORTS ?? '9944').split(/\s+/).filter(Boolean);
const VALIDATORS = 4;
const WORKERS = 3;
const AI_VALIDATORS = 2;

let apis = [];

before(async () => {
  apis = await Promise.all(PORTS.map(async (port) => (await connect(`ws://127.0.0.1:${port}`)).api));
});

after(async () => {
  await Promise.all(apis.map((api) => api.disconnect()));
});

test('every node sees its peers and imports new blocks', async () => {
  await Promise.all(apis.map(async (api, i) => {
    const health = await api.rpc.system.health();
    assert.ok(health.peers.toNumber() >= PORTS.length - 1, `node ${PORTS[i]} has ${health.peers} peers`);
    const start = (await api.rpc.chain.getHeader()).number.toNumber();
    await waitFor(
      (cb) => api.rpc.chain.subscribeNewHeads(cb),
      (header) => header.number.toNumber() >= start + 2,
      60_000,
      `node ${PORTS[i]}: best block ${start + 2}`,
    );
  }));
});

test('finality advances and every node finalized the same blocks', async () => {
  const [first] = apis;
  const start = (await first.rpc.chain.getHeader(await first.rpc.chain.getFinalizedHead())).number.toNumber();
  const header = await waitFor(
    (cb) => first.rpc.chain.subscribeFinalizedHeads(cb),
    (h) => h.number.toNumber() >= start + 2,
    90_000,
    `finalized block ${start + 2}`,
  );
  const number = header.number.toNumber();
  for (const [i, api] of apis.entries()) {
    await waitFor(
      (cb) => api.rpc.chain.subscribeFinalizedHeads(cb),
      (h) => h.number.toNumber() >= number,
      60_000,
      `node ${PORTS[i]}: finalized block ${number}`,
    );
    const hash = await api.rpc.chain.getBlockHash(number);
    assert.equal(hash.toHex(), header.hash.toHex(), `node ${PORTS[i]} finalized block ${number}`);
  }
});

test(`all ${VALIDATORS} validators author blocks`, async () => {
  const [api] = apis;
  assert.equal((await api.query.babe.authorities()).length, VALIDATORS);
  const authors = new Set();
  await waitFor(
    (cb) => api.rpc.chain.subscribeNewHeads(cb),
    (header) => {
      for (const log of header.digest.logs) {
        if (log.isPreRuntime && log.asPreRuntime[0].toString() === 'BABE') {
          const digest = api.registry.createType('RawBabePreDigest', log.asPreRuntime[1]);
          const claim = digest.isPrimary ? digest.asPrimary
            : digest.isSecondaryPlain ? digest.asSecondaryPlain : digest.asSecondaryVRF;
          authors.add(claim.authorityIndex.toNumber());
        }
      }
      return authors.size === VALIDATORS;
    },
    180_000,
    `blocks from all ${VALIDATORS} authorities (seen ${[...authors]})`,
  );
});

test(`${WORKERS} workers and ${AI_VALIDATORS} AI validators are registered, with stake`, async () => {
  const [api] = apis;
  const workers = await api.query.contributions.workers.entries();
  const validators = await api.query.contributions.validators.entries();
  assert.ok(workers.length >= WORKERS, `${workers.length} workers registered`);
  assert.ok(validators.length >= AI_VALIDATORS, `${validators.length} AI validators registered`);
  for (const [, participant] of [...workers, ...validators]) {
    assert.ok(participant.unwrap().stake.toBigInt() > 0n);
  }
  const shards = await api.query.contributions.shards.entries();
  assert.ok(shards.length >= 1, 'the data provider registered its shards');
});
