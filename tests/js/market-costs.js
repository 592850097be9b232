// What the inference market costs on chain: the weight and fee of each call a provider,
// client and auditor sends, and their total per 1,000 requests settled in batches of
// `--batch` at the runtime's audit rate. Run against a node (`agora-node --dev`):
//   node market-costs.js WS_URL [BATCH]
import { connect } from './lib.js';

const [url = 'ws://127.0.0.1:9944', batchArg = '100'] = process.argv.slice(2);
const batch = BigInt(batchArg);
const { api, keyring } = await connect(url);
try {
  const alice = keyring.addFromUri('//Alice');
  const params = await api.query.inference.protocolParams();
  const auditors = params.auditors.toNumber();
  const receipt = { channel: 0, requests: batch, amount: 1n, transcript: `0x${'11'.repeat(32)}` };
  const signature = { Sr25519: `0x${'22'.repeat(64)}` };
  const calls = {
    openChannel: api.tx.inference.openChannel(alice.address, 0, 1, 1),
    settle: api.tx.inference.settle(receipt, signature),
    clearBatch: api.tx.inference.clearBatch(0),
    commitAudit: api.tx.inference.commitAudit(0, `0x${'33'.repeat(32)}`),
    revealAudit: api.tx.inference.revealAudit(0, 'Correct', `0x${'44'.repeat(32)}`),
    concludeAudit: api.tx.inference.concludeAudit(0),
    closeChannel: api.tx.inference.closeChannel(0),
    finishClose: api.tx.inference.finishClose(0),
  };
  const cost = {};
  for (const [name, tx] of Object.entries(calls)) {
    const info = await tx.paymentInfo(alice);
    cost[name] = { refTime: info.weight.refTime.toBigInt(), fee: info.partialFee.toBigInt() };
  }
  const agr = (planck) => `${(Number(planck) / 1e12).toFixed(6)} AGR`;
  const ms = (refTime) => `${(Number(refTime) / 1e9).toFixed(3)} ms`;
  console.log('| call | weight (ref time) | fee |\n| --- | --- | --- |');
  for (const [name, { refTime, fee }] of Object.entries(cost)) console.log(`| ${name} | ${ms(refTime)} | ${agr(fee)} |`);
  // Per 1,000 requests: settle and clear each batch; a share `auditRate` of the batches audited
  // (each auditor commits and reveals, one conclude).
  const batches = 1000n / batch;
  const rate = params.auditRate.toBigInt(); // parts per billion
  const total = (key) => {
    const audit = BigInt(auditors) * (cost.commitAudit[key] + cost.revealAudit[key]) + cost.concludeAudit[key];
    return batches * (cost.settle[key] + cost.clearBatch[key]) + (batches * rate * audit) / 1_000_000_000n;
  };
  console.log(`\nper 1,000 requests in batches of ${batch} (audit rate ${Number(rate) / 1e7}%, ${auditors} auditors):` +
    ` weight ${ms(total('refTime'))}, fees ${agr(total('fee'))}`);
} finally {
  await api.disconnect();
}
