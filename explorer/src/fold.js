// What the explorer shows about the past, folded from the chain's events (pure functions: the
// browser feeds them decoded events, the tests feed them hand-written ones).
//
// An event is `{ block, section, method, fields }`, where `fields` maps each field name of the
// event to a plain value: account ids as SS58 strings, balances as BigInt, small integers as
// numbers, enum variants by name (`{ reason: 'FailedReplay' }`), Perbill as parts per billion.

// Why a participant lost stake, in words.
export const SLASH_REASONS = {
  NoReveal: 'validator did not reveal its verdict',
  Contradiction: 'validator contradicted the consensus',
  FailedReplay: 'worker failed replay: its training did not reproduce',
  BadAggregate: 'aggregator posted a wrong aggregate',
  EvidenceUnavailable: 'worker did not serve the evidence validators asked for',
  ApprovedPlant: 'validator approved a planted update without checking it',
  Planted: 'worker planted an update to test the validators (its own cost)',
  NoShow: 'worker was selected and did not submit an update',
  AggregateContradiction: 'validator voted against the aggregate the majority recomputed',
  AggregateNoReveal: 'validator committed to an aggregate vote and did not reveal it',
};

// Slash reasons that catch a worker's cheating, and those that catch a validator.
const WORKER_CHEATS = new Set(['FailedReplay', 'EvidenceUnavailable']);
const VALIDATOR_FAULTS = new Set([
  'NoReveal',
  'Contradiction',
  'ApprovedPlant',
  'BadAggregate',
  'AggregateContradiction',
  'AggregateNoReveal',
]);

export function emptyState() {
  return {
    lastBlock: 0,
    jobs: new Map(), // job id -> JobHistory
    accounts: new Map(), // SS58 -> { claimed, slashed, slashes: [] }
    slashes: [], // every slash, newest last
    verification: {
      updatesAssigned: 0,
      segmentsChallenged: 0,
      verdictsRevealed: 0,
      updatesAccepted: 0,
      updatesRejected: 0,
      cheatsCaught: 0,
      validatorsCaught: 0,
      plantsExposed: 0,
    },
    emitted: 0n,
  };
}

function job(state, id) {
  let history = state.jobs.get(id);
  if (!history) {
    history = { id, rounds: new Map(), created: null, finalized: null };
    state.jobs.set(id, history);
  }
  return history;
}

function round(state, jobId, index) {
  const history = job(state, jobId);
  let record = history.rounds.get(index);
  if (!record) {
    record = {
      round: index,
      phases: {}, // phase name -> block it started
      updates: new Map(), // worker -> { segments, validators, verdicts, verdict, score }
      model: null,
      paid: null,
      voided: null,
      settled: null,
    };
    history.rounds.set(index, record);
  }
  return record;
}

function update(record, worker) {
  let entry = record.updates.get(worker);
  if (!entry) {
    entry = { worker, segments: [], validators: [], revealed: 0, verdict: null, score: null };
    record.updates.set(worker, entry);
  }
  return entry;
}

function account(state, who) {
  let entry = state.accounts.get(who);
  if (!entry) {
    entry = { claimed: 0n, slashed: 0n, slashes: [] };
    state.accounts.set(who, entry);
  }
  return entry;
}

function recordSlash(state, block, jobId, who, reason, amount) {
  const slash = { block, job: jobId, who, reason, amount, why: SLASH_REASONS[reason] ?? reason };
  state.slashes.push(slash);
  const entry = account(state, who);
  entry.slashed += amount;
  entry.slashes.push(slash);
  if (WORKER_CHEATS.has(reason)) state.verification.cheatsCaught += 1;
  if (VALIDATOR_FAULTS.has(reason)) state.verification.validatorsCaught += 1;
}

// Applies one block's events, in order. Blocks must come in increasing order; a block already
// folded is ignored, so that a history scan and the live feed may overlap.
export function foldBlock(state, block, events) {
  if (block <= state.lastBlock) return false;
  state.lastBlock = block;
  for (const { section, method, fields: f } of events) {
    const key = `${section}.${method}`;
    switch (key) {
      case 'tasks.JobCreated':
        job(state, f.job).created = block;
        break;
      case 'tasks.RoundOpened':
        round(state, f.job, f.round).phases.Open = block;
        break;
      case 'tasks.TrainingStarted':
        round(state, f.job, f.round).phases.Training = block;
        break;
      case 'tasks.VerificationStarted':
        round(state, f.job, f.round).phases.Verifying = block;
        break;
      case 'validation.CommitStarted':
        round(state, f.job, f.round).phases.Commit = block;
        break;
      case 'validation.RevealStarted':
        round(state, f.job, f.round).phases.Reveal = block;
        break;
      case 'validation.AggregatorSelected':
        round(state, f.job, f.round).phases.Aggregation ??= block;
        break;
      case 'tasks.RoundCompleted': {
        const record = round(state, f.job, f.round);
        record.phases.Completed = block;
        record.model = f.model;
        record.paid = f.paid;
        break;
      }
      case 'tasks.RoundVoided': {
        const record = round(state, f.job, f.round);
        record.phases.Voided = block;
        record.voided = f.reason;
        break;
      }
      case 'tasks.JobFinalized':
        job(state, f.job).finalized = { block, model: f.final_model };
        break;
      case 'tasks.NoShowSlashed':
        recordSlash(state, block, f.job, f.worker, 'NoShow', f.slashed);
        break;
      case 'validation.ValidatorsAssigned': {
        const entry = update(round(state, f.job, f.round), f.worker);
        entry.segments = f.segments;
        entry.validators = f.validators;
        state.verification.updatesAssigned += 1;
        state.verification.segmentsChallenged += f.segments.length;
        break;
      }
      case 'validation.VerdictRevealed':
        // The event names the job and worker, not the round: the round being verified.
        for (const record of [...job(state, f.job).rounds.values()].reverse()) {
          if (record.updates.has(f.worker)) {
            record.updates.get(f.worker).revealed += 1;
            break;
          }
        }
        state.verification.verdictsRevealed += 1;
        break;
      case 'validation.UpdateVerified': {
        const entry = update(round(state, f.job, f.round), f.worker);
        entry.verdict = f.verdict;
        entry.score = f.score;
        if (f.verdict === 'Valid') state.verification.updatesAccepted += 1;
        else state.verification.updatesRejected += 1;
        break;
      }
      case 'validation.UpdateUnverified':
        update(round(state, f.job, f.round), f.worker).verdict = 'Unverified';
        break;
      case 'validation.UpdateUndecided':
        update(round(state, f.job, f.round), f.worker).verdict = 'Undecided';
        break;
      case 'validation.PlantExposed':
        state.verification.plantsExposed += 1;
        update(round(state, f.job, f.round), f.worker).planted = true;
        break;
      case 'validation.Slashed':
        recordSlash(state, block, f.job, f.who, f.reason, f.amount);
        break;
      case 'rewards.RoundSettled':
        round(state, f.job, f.round).settled = {
          budget: f.budget, emission: f.emission, fee: f.fee,
          workers: f.workers, validators: f.validators, providers: f.providers,
        };
        break;
      case 'rewards.Claimed':
        account(state, f.who).claimed += f.amount;
        break;
      case 'rewards.Emitted':
        state.emitted += f.amount;
        break;
      default:
        break;
    }
  }
  return true;
}

function median(sorted) {
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// The training curve of a job: for each round with verified updates, the held-out accuracy
// gain the validators agreed on (each accepted update's consensus score is
// `(1 + gain) / 2`, on the held-out set the job commits to), its median, lowest and highest,
// as fractions of 1 (0.1: ten points of accuracy over the round's starting model).
export function trainingCurve(history) {
  if (!history) return [];
  const points = [];
  for (const record of [...history.rounds.values()].sort((a, b) => a.round - b.round)) {
    const gains = [...record.updates.values()]
      .filter((u) => u.verdict === 'Valid' && u.score !== null)
      .map((u) => 2 * u.score - 1e9)
      .sort((a, b) => a - b);
    if (gains.length === 0) continue;
    points.push({
      round: record.round,
      median: median(gains) / 1e9,
      low: gains[0] / 1e9,
      high: gains[gains.length - 1] / 1e9,
      updates: gains.length,
    });
  }
  return points;
}

// Per-round verification of a job: updates, segments challenged, verdicts revealed, outcome.
export function roundVerification(history) {
  if (!history) return [];
  return [...history.rounds.values()]
    .sort((a, b) => a.round - b.round)
    .map((record) => {
      const updates = [...record.updates.values()];
      return {
        round: record.round,
        updates: updates.length,
        segments: updates.reduce((sum, u) => sum + u.segments.length, 0),
        revealed: updates.reduce((sum, u) => sum + u.revealed, 0),
        accepted: updates.filter((u) => u.verdict === 'Valid').length,
        rejected: updates.filter((u) => u.verdict === 'Invalid').length,
        planted: updates.filter((u) => u.planted).length,
      };
    });
}
