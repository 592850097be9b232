// What one job cost the chain, block by block: from its `JobCreated` to its `JobFinalized`, the
// blocks and seconds it took, the weight the chain used in those blocks (all of it, and the
// protocol's own transactions alone) and the protocol transactions by call, with their bytes.
// Prints one JSON line. It reads the state of every block of the job: the node must still have
// it (a node prunes state older than 256 blocks unless run with --state-pruning archive).
// Used by scripts/measure-scaling.sh:
//   node round-costs.js WS_URL JOB FROM_BLOCK
import { connect } from './lib.js';

const [url = 'ws://127.0.0.1:9944', jobArg, fromArg = '1'] = process.argv.slice(2);
if (jobArg === undefined) throw new Error('usage: node round-costs.js WS_URL JOB FROM_BLOCK');
const job = Number(jobArg);
const PROTOCOL = new Set(['tasks', 'validation', 'contributions', 'rewards']);

const { api } = await connect(url);
try {
  const head = (await api.rpc.chain.getHeader()).number.toNumber();
  let created = null;
  let finalized = null;
  let weight = { refTime: 0n, proofSize: 0n };
  let protocolWeight = { refTime: 0n, proofSize: 0n };
  const calls = {};
  const timestamps = {};
  for (let number = Number(fromArg); number <= head && finalized === null; number++) {
    const hash = await api.rpc.chain.getBlockHash(number);
    const at = await api.at(hash);
    const events = await at.query.system.events();
    const mine = (name) => events.some(({ event }) => api.events.tasks[name].is(event) && event.data.job.toNumber() === job);
    if (created === null && !mine('JobCreated')) continue;
    if (created === null) created = number;
    if (mine('JobFinalized')) finalized = number;
    timestamps[number] = (await at.query.timestamp.now()).toNumber();
    const used = await at.query.system.blockWeight();
    for (const dispatchClass of ['normal', 'operational', 'mandatory']) {
      weight.refTime += used[dispatchClass].refTime.toBigInt();
      weight.proofSize += used[dispatchClass].proofSize.toBigInt();
    }
    const block = await api.rpc.chain.getBlock(hash);
    block.block.extrinsics.forEach((extrinsic, index) => {
      const { section, method } = extrinsic.method;
      if (!PROTOCOL.has(section)) return;
      const name = `${section}.${method}`;
      calls[name] ??= { count: 0, bytes: 0 };
      calls[name].count += 1;
      calls[name].bytes += extrinsic.encodedLength;
      const success = events.find(({ phase, event }) => phase.isApplyExtrinsic &&
        phase.asApplyExtrinsic.toNumber() === index &&
        (api.events.system.ExtrinsicSuccess.is(event) || api.events.system.ExtrinsicFailed.is(event)));
      const info = success?.event.data.dispatchInfo;
      if (info) {
        protocolWeight.refTime += info.weight.refTime.toBigInt();
        protocolWeight.proofSize += info.weight.proofSize.toBigInt();
      }
    });
  }
  if (created === null || finalized === null) throw new Error(`job ${job} was not created and finalized after #${fromArg}`);
  const maxBlock = api.consts.system.blockWeights.maxBlock;
  const blocks = finalized - created;
  const seconds = (timestamps[finalized] - timestamps[created]) / 1000;
  const share = (used) => Number((used * 10_000n) / (BigInt(blocks + 1) * maxBlock.refTime.toBigInt())) / 100;
  console.log(JSON.stringify({
    job,
    blocks,
    seconds,
    weight_ms: Number(weight.refTime / 1_000_000n) / 1000,
    protocol_weight_ms: Number(protocolWeight.refTime / 1_000_000n) / 1000,
    protocol_share_of_block_capacity_percent: share(protocolWeight.refTime),
    protocol_proof_kib: Number(protocolWeight.proofSize / 1024n),
    protocol_calls: Object.values(calls).reduce((sum, c) => sum + c.count, 0),
    protocol_bytes: Object.values(calls).reduce((sum, c) => sum + c.bytes, 0),
    calls,
  }));
} finally {
  await api.disconnect();
}
