// The explorer's view of one node: it connects with @polkadot/api, folds the events of the
// last `history` finalized blocks and then of every newly finalized block, and reads the live
// state (jobs, rounds, verifications, participants, referenda) at every new best block. The
// connection reconnects by itself when the node goes away; a gap of finalized blocks missed
// meanwhile is folded when it is back.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { emptyState, foldBlock } from './fold.js';

const BATCH = 16;
// Blocks between two reads of the participants and referenda.
const SLOW_EVERY = 5;

// A decoded value as the fold functions expect it (see fold.js).
export function plain(codec) {
  if (codec === null || codec === undefined) return null;
  if (Array.isArray(codec)) return codec.map(plain);
  const raw = typeof codec.toRawType === 'function' ? codec.toRawType() : '';
  if (/^AccountId(32)?$/.test(raw)) return codec.toString();
  if ('isBasic' in codec && 'type' in codec) {
    return codec.isBasic ? codec.type : { type: codec.type, value: plain(codec.value) };
  }
  if (typeof codec.unwrapOr === 'function' && 'isSome' in codec) {
    return codec.isSome ? plain(codec.unwrap()) : null;
  }
  if (typeof codec.toBigInt === 'function' && typeof codec.bitLength === 'function') {
    return codec.bitLength() >= 128 ? codec.toBigInt() : codec.toNumber();
  }
  if (codec instanceof Uint8Array && typeof codec.toHex === 'function') return codec.toHex();
  return codec.toJSON();
}

export function decodeEvent({ event }) {
  const names = event.meta.fields.map((field, i) =>
    field.name.isSome ? field.name.unwrap().toString() : String(i));
  const fields = {};
  names.forEach((name, i) => {
    fields[name] = plain(event.data[i]);
  });
  return { section: event.section, method: event.method, fields };
}

export class ChainView {
  constructor(url, { history = 5000, onChange = () => {} } = {}) {
    this.url = url;
    this.history = history;
    this.onChange = onChange;
    this.state = emptyState();
    this.connection = 'connecting';
    this.error = null;
    this.live = {};
    this.folding = Promise.resolve();
    this.refreshing = false;
    this.refreshAgain = false;
  }

  async start() {
    const provider = new WsProvider(this.url, 2000);
    provider.on('connected', () => this.setConnection('connected'));
    provider.on('disconnected', () => this.setConnection('disconnected'));
    provider.on('error', () => this.setConnection('disconnected'));
    this.api = await ApiPromise.create({ provider, noInitWarn: true });
    this.setConnection('connected');
    const [chain, version] = await Promise.all([this.api.rpc.system.chain(), this.api.rpc.state.getRuntimeVersion()]);
    this.live.chain = chain.toString();
    this.live.specVersion = version.specVersion.toNumber();
    this.live.decimals = this.api.registry.chainDecimals[0] ?? 12;
    this.live.token = this.api.registry.chainTokens[0] ?? 'AGR';
    // Subscriptions survive reconnection: @polkadot/api subscribes again on its own.
    await this.api.rpc.chain.subscribeFinalizedHeads((header) => {
      this.live.finalized = header.number.toNumber();
      this.foldUpTo(this.live.finalized);
    });
    await this.api.rpc.chain.subscribeNewHeads((header) => {
      const number = header.number.toNumber();
      this.live.blockTimes = [...(this.live.blockTimes ?? []), { number, at: Date.now() }].slice(-20);
      this.live.best = number;
      this.refresh();
    });
  }

  setConnection(state) {
    if (this.connection === state) return;
    this.connection = state;
    if (state === 'connected' && this.api) this.refresh();
    this.onChange(this);
  }

  // Folds every finalized block not folded yet, up to `target`, oldest first; one pass at a time.
  foldUpTo(target) {
    this.folding = this.folding.then(async () => {
      let from = this.state.lastBlock + 1;
      if (this.state.lastBlock === 0) from = Math.max(1, target - this.history + 1);
      this.live.historyFrom ??= from;
      for (let start = from; start <= target; start += BATCH) {
        const numbers = [];
        for (let n = start; n < Math.min(start + BATCH, target + 1); n += 1) numbers.push(n);
        const blocks = await Promise.all(numbers.map(async (n) => {
          const hash = await this.api.rpc.chain.getBlockHash(n);
          const events = await (await this.api.at(hash)).query.system.events();
          return { n, events: events.map(decodeEvent) };
        }));
        for (const { n, events } of blocks) foldBlock(this.state, n, events);
        this.onChange(this);
      }
    }).catch((error) => {
      this.error = `reading events: ${error.message}`;
      this.onChange(this);
    });
    return this.folding;
  }

  // Reads the live state at the best block; a refresh asked for during one runs right after it.
  async refresh() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    try {
      await this.readLive();
      this.error = null;
    } catch (error) {
      this.error = `reading state: ${error.message}`;
    } finally {
      this.refreshing = false;
      this.onChange(this);
    }
    if (this.refreshAgain) {
      this.refreshAgain = false;
      this.refresh();
    }
  }

  async readLive() {
    const { api } = this;
    const q = api.query;
    const [health, authorities, jobs, params] = await Promise.all([
      api.rpc.system.health(),
      q.babe.authorities(),
      q.tasks.jobs.entries(),
      q.validation.protocolParams(),
    ]);
    this.live.peers = health.peers.toNumber();
    this.live.syncing = health.isSyncing.isTrue;
    this.live.authorities = authorities.length;
    this.live.validationParams = {
      detectableFraction: params.detectableFraction.toNumber(),
      detectionProbability: params.detectionProbability.toNumber(),
    };
    this.live.jobs = jobs
      .map(([key, value]) => ({ id: key.args[0].toNumber(), ...this.jobView(value.unwrap()) }))
      .sort((a, b) => b.id - a.id);
    const active = this.live.jobs.filter((j) => j.status === 'Active');
    const verifications = await Promise.all(active.map((j) => q.validation.verifications(j.id)));
    const verifying = new Map();
    active.forEach((j, i) => {
      if (verifications[i].isSome) {
        const v = verifications[i].unwrap();
        verifying.set(j.id, { round: v.round.toNumber(), stage: v.stage.type, deadline: v.deadline.toNumber() });
      }
    });
    for (const j of this.live.jobs) j.verification = verifying.get(j.id) ?? null;

    // Participants and referenda change slowly and cost a scan of their maps: every few blocks.
    const best = this.live.best ?? 0;
    if (this.slowReadAt === undefined || best - this.slowReadAt >= SLOW_EVERY || best < this.slowReadAt) {
      await this.readParticipants();
      this.live.referenda = await this.readReferenda();
      this.slowReadAt = best;
    }
    this.live.market = 'inference' in q ? 'present' : null;
  }

  async readParticipants() {
    const q = this.api.query;
    const [workers, validators, pending, shards] = await Promise.all([
      q.contributions.workers.entries(),
      q.contributions.validators.entries(),
      q.rewards.pending.entries(),
      q.contributions.shards.entries(),
    ]);
    const pendingOf = new Map(pending.map(([key, value]) => [key.args[0].toString(), value.toBigInt()]));
    const providers = new Map();
    for (const [, shard] of shards) {
      const s = shard.unwrap();
      providers.set(s.provider.toString(), (providers.get(s.provider.toString()) ?? 0) + 1);
    }
    const participant = (role) => ([key, value]) => {
      const who = key.args[0].toString();
      const p = value.unwrap();
      return { role, who, stake: p.stake.toBigInt(), status: p.status.type, pending: pendingOf.get(who) ?? 0n };
    };
    this.live.participants = [
      ...workers.map(participant('worker')),
      ...validators.map(participant('validator')),
      ...[...providers.entries()].map(([who, count]) => ({
        role: 'data provider', who, stake: null, status: `${count} shards`, pending: pendingOf.get(who) ?? 0n,
      })),
    ];
  }

  jobView(job) {
    const spec = job.spec;
    return {
      submitter: job.submitter.toString(),
      status: job.status.type,
      round: job.round.toNumber(),
      rounds: spec.rounds.toNumber(),
      phase: job.phase.type,
      deadline: job.deadline.toNumber(),
      latestModel: job.latestModel.toHex(),
      completedRounds: job.completedRounds.toNumber(),
      budget: job.budget.toBigInt(),
      spent: job.spent.toBigInt(),
      escrow: job.escrow.toBigInt(),
      architecture: spec.architecture.toUtf8 ? spec.architecture.toUtf8() : spec.architecture.toString(),
      localSteps: spec.localSteps.toNumber(),
      checkpointInterval: spec.checkpointInterval.toNumber(),
      workersPerRound: spec.workersPerRound.toNumber(),
      validatorsPerUpdate: spec.validatorsPerUpdate.toNumber(),
      mode: spec.mode.type,
      periods: Object.fromEntries(
        ['open', 'training', 'commit', 'reveal', 'aggregation'].map((p) => [p, spec.periods[p].toNumber()]),
      ),
    };
  }

  async readReferenda() {
    if (!this.api.query.referenda) return [];
    const entries = await this.api.query.referenda.referendumInfoFor.entries();
    return entries.map(([key, value]) => {
      const info = value.unwrap();
      const id = key.args[0].toNumber();
      if (info.isOngoing) {
        const o = info.asOngoing;
        return {
          id, status: 'Ongoing', track: o.track.toNumber(),
          ayes: o.tally.ayes.toBigInt(), nays: o.tally.nays.toBigInt(), support: o.tally.support.toBigInt(),
          since: o.submitted.toNumber(),
        };
      }
      const ended = info[`as${info.type}`];
      const at = Array.isArray(ended) ? ended[0] : ended;
      return { id, status: info.type, at: typeof at?.toNumber === 'function' ? at.toNumber() : null };
    }).sort((a, b) => b.id - a.id);
  }
}
