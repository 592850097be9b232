// The chain foundation, seen from a third-party client: blocks are authored and finalized, the
// metadata lists our pallets, and a balance transfer lands with the right event and amounts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AGR, connect, submitInBlock, waitFor } from './lib.js';

const EXPECTED_PALLETS = [
  'System', 'Timestamp', 'Babe', 'Grandpa', 'Balances', 'TransactionPayment', 'Utility', 'Sudo',
  'Scheduler', 'Preimage', 'Referenda', 'ConvictionVoting', 'Treasury', 'Governance',
  'Contributions', 'Tasks', 'Validation', 'Rewards', 'Inference',
];

let api;
let keyring;

before(async () => {
  ({ api, keyring } = await connect());
});

after(async () => {
  await api?.disconnect();
});

test('chain identifies as Agora with the AGR token and its own SS58 prefix', async () => {
  const properties = await api.rpc.system.properties();
  assert.equal(properties.tokenSymbol.unwrap()[0].toString(), 'AGR');
  assert.equal(properties.tokenDecimals.unwrap()[0].toNumber(), 12);
  assert.equal(properties.ss58Format.unwrap().toNumber(), 7306);
  assert.equal(api.runtimeVersion.specName.toString(), 'agora');
  assert.equal(api.consts.system.ss58Prefix.toNumber(), 7306);
});

test('blocks are authored and finalized', async () => {
  const start = (await api.rpc.chain.getHeader()).number.toNumber();
  const best = await waitFor(
    (cb) => api.rpc.chain.subscribeNewHeads(cb),
    (header) => header.number.toNumber() >= start + 2,
    60_000,
    `best block ${start + 2}`,
  );
  assert.ok(best.number.toNumber() >= start + 2);

  const finalizedStart = (await api.rpc.chain.getHeader(await api.rpc.chain.getFinalizedHead()))
    .number.toNumber();
  const finalized = await waitFor(
    (cb) => api.rpc.chain.subscribeFinalizedHeads(cb),
    (header) => header.number.toNumber() > finalizedStart && header.number.toNumber() >= 1,
    60_000,
    'finality to advance',
  );
  assert.ok(finalized.number.toNumber() >= 1);
});

test('metadata lists the runtime pallets', async () => {
  const metadata = await api.rpc.state.getMetadata();
  const pallets = metadata.asLatest.pallets.map((p) => p.name.toString());
  for (const name of EXPECTED_PALLETS) {
    assert.ok(pallets.includes(name), `pallet ${name} missing from metadata: ${pallets}`);
  }
  const extensions = metadata.asLatest.extrinsic.transactionExtensions
    ?? metadata.asLatest.extrinsic.signedExtensions;
  const names = extensions.map((e) => e.identifier.toString());
  assert.ok(names.includes('CheckMetadataHash'), `CheckMetadataHash missing: ${names}`);
});

test('a transfer from Alice to Bob lands with the right event and amounts', async () => {
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');
  const amount = 3n * AGR + 141n;

  const bobBefore = (await api.query.system.account(bob.address)).data.free.toBigInt();
  const aliceBefore = (await api.query.system.account(alice.address)).data.free.toBigInt();

  const { blockHash, events, dispatchError } = await submitInBlock(
    api.tx.balances.transferKeepAlive(bob.address, amount),
    alice,
  );
  assert.equal(dispatchError, undefined, `transfer failed: ${dispatchError}`);

  const transfer = events.find(({ event }) => api.events.balances.Transfer.is(event.event ?? event));
  assert.ok(transfer, 'no Balances.Transfer event');
  const [from, to, value] = transfer.event.data;
  assert.equal(from.toString(), alice.address);
  assert.equal(to.toString(), bob.address);
  assert.equal(value.toBigInt(), amount);
  assert.ok(events.some(({ event }) => api.events.system.ExtrinsicSuccess.is(event)));

  const feePaid = events.find(({ event }) => api.events.transactionPayment.TransactionFeePaid.is(event));
  assert.ok(feePaid, 'no TransactionPayment.TransactionFeePaid event');
  const fee = feePaid.event.data.actualFee.toBigInt();
  assert.ok(fee > 0n, 'the transfer paid no fee');

  const at = await api.at(blockHash);
  const bobAfter = (await at.query.system.account(bob.address)).data.free.toBigInt();
  const aliceAfter = (await at.query.system.account(alice.address)).data.free.toBigInt();
  assert.equal(bobAfter - bobBefore, amount, 'Bob did not receive exactly the amount');
  assert.equal(aliceBefore - aliceAfter, amount + fee, 'Alice paid more or less than amount + fee');
});
