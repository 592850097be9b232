// The explorer's pure logic: the detection rule matches pallet-validation's challenge.rs, and
// events fold into the curves, slashes and earnings the page shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { challengesNeeded, detectionProbability, jobDetection } from '../src/detection.js';
import { emptyState, foldBlock, roundVerification, trainingCurve } from '../src/fold.js';

const percent = (p) => p * 10_000_000; // Perbill parts

test('challenge counts are the pallet\'s (challenge.rs tests)', () => {
  for (let n = 1; n <= 10; n += 1) assert.equal(challengesNeeded(n, percent(10), percent(99)), n);
  assert.equal(challengesNeeded(1_000_000, percent(10), percent(99)), 44);
  for (let n = 1; n <= 500; n += 1) {
    const k = challengesNeeded(n, percent(10), percent(99));
    const bad = Math.max(1, Math.ceil(n / 10));
    assert.ok(1 - detectionProbability(n, bad, k) <= 0.01 + 1e-12, `n = ${n}: ${k} draws miss too often`);
    if (k > 0) assert.ok(1 - detectionProbability(n, bad, k - 1) > 0.01 - 1e-12, `n = ${n}: ${k} is too many`);
    assert.ok(k <= 44);
  }
});

test('a job\'s detection figures: the digits job is re-executed in full', () => {
  const digits = jobDetection(40, 10, percent(10), percent(99));
  assert.deepEqual({ segments: digits.segments, reexecuted: digits.reexecuted }, { segments: 4, reexecuted: 4 });
  assert.equal(digits.probability, 1);
  const long = jobDetection(10_000, 10, percent(10), percent(99));
  assert.equal(long.segments, 1000);
  assert.ok(long.reexecuted <= 45 && long.probability >= 0.99);
});

const ev = (section, method, fields) => ({ section, method, fields });

test('events fold into rounds, a training curve, slashes with reasons and earnings', () => {
  const state = emptyState();
  foldBlock(state, 3, [ev('tasks', 'JobCreated', { job: 0 }), ev('tasks', 'RoundOpened', { job: 0, round: 1 })]);
  foldBlock(state, 6, [ev('tasks', 'TrainingStarted', { job: 0, round: 1 })]);
  foldBlock(state, 12, [
    ev('tasks', 'VerificationStarted', { job: 0, round: 1 }),
    ev('validation', 'ValidatorsAssigned', { job: 0, round: 1, worker: 'charlie', validators: ['bob', 'ferdie'], segments: [0, 1, 2, 3] }),
    ev('validation', 'ValidatorsAssigned', { job: 0, round: 1, worker: 'eve', validators: ['bob', 'ferdie'], segments: [1, 3] }),
    ev('validation', 'ValidatorsAssigned', { job: 0, round: 1, worker: 'dave', validators: ['bob', 'ferdie'], segments: [3] }),
  ]);
  foldBlock(state, 16, [
    ev('validation', 'VerdictRevealed', { job: 0, worker: 'charlie', validator: 'bob' }),
    ev('validation', 'VerdictRevealed', { job: 0, worker: 'eve', validator: 'bob' }),
  ]);
  foldBlock(state, 18, [
    ev('validation', 'UpdateVerified', { job: 0, round: 1, worker: 'charlie', verdict: 'Valid', score: 800_000_000 }),
    ev('validation', 'UpdateVerified', { job: 0, round: 1, worker: 'dave', verdict: 'Valid', score: 900_000_000 }),
    ev('validation', 'UpdateVerified', { job: 0, round: 1, worker: 'eve', verdict: 'Invalid', score: 0 }),
    ev('validation', 'Slashed', { job: 0, who: 'eve', reason: 'FailedReplay', amount: 10n }),
  ]);
  // A block seen twice (history scan and live feed overlap) is folded once.
  assert.equal(foldBlock(state, 18, [ev('validation', 'Slashed', { job: 0, who: 'eve', reason: 'FailedReplay', amount: 10n })]), false);
  foldBlock(state, 20, [
    ev('tasks', 'RoundCompleted', { job: 0, round: 1, model: '0xab', paid: 50n }),
    ev('rewards', 'Claimed', { who: 'charlie', amount: 7n }),
    ev('rewards', 'Emitted', { amount: 3n }),
  ]);

  const history = state.jobs.get(0);
  const first = history.rounds.get(1);
  assert.deepEqual(first.phases, { Open: 3, Training: 6, Verifying: 12, Completed: 20 });
  assert.equal(first.model, '0xab');
  assert.deepEqual(trainingCurve(history), [{ round: 1, median: 0.7, low: 0.6, high: 0.8, updates: 2 }]);
  assert.deepEqual(roundVerification(history), [
    { round: 1, updates: 3, segments: 7, revealed: 2, accepted: 2, rejected: 1, planted: 0 },
  ]);
  assert.equal(state.slashes.length, 1);
  assert.equal(state.slashes[0].reason, 'FailedReplay');
  assert.match(state.slashes[0].why, /failed replay/);
  assert.equal(state.accounts.get('eve').slashed, 10n);
  assert.equal(state.accounts.get('charlie').claimed, 7n);
  assert.equal(state.verification.cheatsCaught, 1);
  assert.equal(state.verification.segmentsChallenged, 7);
  assert.equal(state.emitted, 3n);
});
