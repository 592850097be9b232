// The training protocol's calls, used from a third-party client: a worker registers with a
// bonded stake, a submitter escrows a job budget, reads the job back over the runtime API and
// the node's RPC, and cancels it for a full refund.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AGR, connect, submitOk } from './lib.js';

let api;
let keyring;
let provider;

before(async () => {
  ({ api, keyring, provider } = await connect());
});

after(async () => {
  await api?.disconnect();
});

const held = async (who) => (await api.query.balances.holds(who))
  .reduce((sum, hold) => sum + hold.amount.toBigInt(), 0n);

test('a worker registers with a bonded stake held on its account', async () => {
  const ferdie = keyring.addFromUri('//Ferdie');
  const stake = 150n * AGR;
  const heldBefore = await held(ferdie.address);
  const { events } = await submitOk(
    api,
    api.tx.contributions.registerWorker(
      stake,
      '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp',
      '/ip4/127.0.0.1/tcp/40000',
      { device: 'Cuda', memoryMib: 24_576, throughput: 1_200 },
    ),
    ferdie,
  );
  const registered = events.find(({ event }) => event.section === 'contributions'
    && event.method === 'Registered');
  assert.ok(registered, 'no Contributions.Registered event');
  assert.equal(registered.event.data.role.toString(), 'Worker');
  assert.equal(registered.event.data.stake.toBigInt(), stake);
  assert.equal(await held(ferdie.address) - heldBefore, stake);
});

test('a job escrows its budget and a deposit, is readable over the runtime API and RPC, cancels, and keeps its deposit until reaped', async () => {
  const alice = keyring.addFromUri('//Alice');
  const budget = 50n * AGR;
  const spec = {
    architecture: 'mlp:in=64,hidden=128,out=10',
    hyperparameters: '{"lr":0.05,"batch":32}',
    initialWeights: `0x${'11'.repeat(32)}`,
    dataset: 'Private',
    rounds: 2,
    localSteps: 50,
    checkpointInterval: 10,
    samplesPerRound: 1_000,
    workersPerRound: 2,
    validatorsPerUpdate: 2,
    mode: 'Evaluation',
    periods: { open: 5, training: 10, commit: 5, reveal: 5, aggregation: 5 },
  };
  const deposit = BigInt((await api.query.tasks.protocolParams()).toJSON().jobDeposit);
  assert.ok(deposit > 0n, 'a job slot costs a deposit');
  const heldBefore = await held(alice.address);
  const { events } = await submitOk(api, api.tx.tasks.createJob(spec, budget), alice);
  const created = events.find(({ event }) => event.section === 'tasks' && event.method === 'JobCreated');
  assert.ok(created, 'no Tasks.JobCreated event');
  const job = created.event.data.job.toNumber();
  assert.equal(created.event.data.budget.toBigInt(), budget);
  assert.equal(await held(alice.address) - heldBefore, budget + deposit);

  const details = await api.call.tasksApi.job(job);
  assert.ok(details.isSome, 'tasksApi.job returned nothing');
  const rpcDetails = await provider.send('agora_job', [job]);
  assert.ok(rpcDetails, 'agora_job returned nothing');
  const status = await provider.send('agora_roundStatus', [job]);
  assert.ok(status, 'agora_roundStatus returned nothing');

  const cancelled = await submitOk(api, api.tx.tasks.cancelJob(job), alice);
  const event = cancelled.events.find(({ event: e }) => e.section === 'tasks' && e.method === 'JobCancelled');
  assert.ok(event, 'no Tasks.JobCancelled event');
  assert.equal(event.event.data.refunded.toBigInt(), budget);
  // The budget is back; the deposit pays for the job's record until it is reaped.
  assert.equal(await held(alice.address) - heldBefore, deposit);
  const retention = api.consts.tasks.jobRetention.toNumber();
  assert.ok(retention > 0, 'an ended job stays readable for a while');
  await assert.rejects(
    submitOk(api, api.tx.tasks.reapJob(job), alice),
    /RetentionNotOver/,
    'an ended job cannot be reaped before its retention is over',
  );
});
