// The outcome of scripts/faults.sh, read from the chain by a third-party client: Dave's worker
// was killed after applying to round 1 and restarted while round 1 was verified, after round
// 2's workers were drawn (from the applications taken while round 1 trained).
//   AGORA_E2E_JOB  the job id
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from './lib.js';

const JOB = Number(process.env.AGORA_E2E_JOB ?? 0);

let api;
let keyring;
let details;
const events = []; // { block, section, method, data }

before(async () => {
  ({ api, keyring } = await connect());
  details = (await api.call.tasksApi.job(JOB)).unwrap();
  const head = (await api.rpc.chain.getHeader()).number.toNumber();
  for (let n = 1; n <= head; n += 1) {
    const at = await api.at(await api.rpc.chain.getBlockHash(n));
    for (const { event } of await at.query.system.events()) {
      events.push({ block: n, section: event.section, method: event.method, data: event.data });
    }
  }
});

after(async () => {
  await api?.disconnect();
});

const dave = () => keyring.addFromUri('//Dave').address;
const ofJob = (section, method) => events.filter((e) => e.section === section
  && e.method === method && e.data.job.toNumber() === JOB);

test('the job completes every round despite the dead worker', () => {
  assert.equal(details.status.type, 'Finalized');
  assert.equal(details.models.length, 3);
  const completed = ofJob('tasks', 'RoundCompleted').map((e) => e.data.round.toNumber());
  assert.deepEqual(completed, [1, 2, 3]);
});

test('the dead worker was timed out and slashed for the no-show in round 1', () => {
  const noShows = ofJob('tasks', 'NoShowSlashed');
  assert.equal(noShows.length, 1);
  assert.equal(noShows[0].data.worker.toString(), dave());
  assert.equal(noShows[0].data.round.toNumber(), 1);
  assert.ok(noShows[0].data.slashed.toBigInt() > 0n);
  const round1 = ofJob('tasks', 'UpdateSubmitted').filter((e) => e.data.round.toNumber() === 1);
  assert.equal(round1.length, 2, 'the two live workers submitted');
  assert.ok(!round1.some((e) => e.data.worker.toString() === dave()));
});

test('rounds after the first are drawn while the round before trains, with no open phase', () => {
  const drawn = ofJob('tasks', 'NextRoundDrawn').map((e) => e.data.round.toNumber());
  assert.deepEqual(drawn, [2, 3]);
  const opened = ofJob('tasks', 'RoundOpened').map((e) => e.data.round.toNumber());
  assert.deepEqual(opened, [1]);
  // Dave was down when round 2 was drawn.
  const round2 = ofJob('tasks', 'NextRoundDrawn').find((e) => e.data.round.toNumber() === 2);
  assert.ok(!round2.data.workers.some(([who]) => who.toString() === dave()));
});

test('the restarted worker rejoined in round 3 with its stake topped up', async () => {
  const round3 = ofJob('tasks', 'UpdateSubmitted').filter((e) => e.data.round.toNumber() === 3);
  assert.ok(round3.some((e) => e.data.worker.toString() === dave()), 'Dave submitted in round 3');
  const bonded = events.filter((e) => e.section === 'contributions' && e.method === 'Bonded'
    && e.data.who.toString() === dave());
  assert.ok(bonded.length >= 1, 'Dave bonded extra stake after the slash');
  const worker = (await api.query.contributions.workers(dave())).unwrap();
  assert.ok(worker.stake.toBigInt() >= 100n * 10n ** 12n);
});
