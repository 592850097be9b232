import { connect } from './lib.js';
const [url, jobArg] = process.argv.slice(2);
const job = Number(jobArg);
const { api } = await connect(url);
const head = (await api.rpc.chain.getHeader()).number.toNumber();
const rows = [];
for (let n = 1; n <= head; n++) {
  const at = await api.at(await api.rpc.chain.getBlockHash(n));
  for (const { event } of await at.query.system.events()) {
    if (event.section !== 'tasks' && event.section !== 'validation') continue;
    const d = event.data.toJSON ? event.data : null;
    const j = event.data.job?.toNumber?.();
    if (j !== job) continue;
    if (['RoundOpened', 'TrainingStarted', 'NextRoundDrawn', 'VerificationStarted', 'RoundCompleted', 'RoundVoided', 'JobFinalized', 'JobCreated'].includes(event.method)) {
      const ts = (await at.query.timestamp.now()).toNumber();
      rows.push(`${n}\t${ts}\t${event.method}\t${event.data.round?.toString() ?? ''}`);
    }
  }
}
console.log(rows.join('\n'));
await api.disconnect();
