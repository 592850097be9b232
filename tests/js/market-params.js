// Sets the inference market's parameters through sudo (development and local chains only):
//   node market-params.js WS_URL '{"auditRate": 1000000000, "commitPeriod": 4}'
// The given fields replace the current ones; the others stay. scripts/demo.sh uses it for
// windows of seconds rather than the runtime's minutes and hours.
import { connect, submitOk } from './lib.js';

const [url, json] = process.argv.slice(2);
if (!url || !json) {
  console.error("usage: node market-params.js WS_URL '{\"field\": value, ...}'");
  process.exit(2);
}
const { api, keyring } = await connect(url);
try {
  const alice = keyring.addFromUri('//Alice');
  const params = { ...(await api.query.inference.protocolParams()).toJSON(), ...JSON.parse(json) };
  const { events } = await submitOk(api, api.tx.sudo.sudo(api.tx.inference.setParams(params)), alice);
  const sudid = events.find(({ event }) => event.section === 'sudo' && event.method === 'Sudid');
  const result = sudid?.event.data.sudoResult;
  if (!result || result.isErr) {
    const error = result?.asErr;
    const meta = error?.isModule ? api.registry.findMetaError(error.asModule) : null;
    throw new Error(`setParams failed: ${meta ? `${meta.section}.${meta.name}` : error}`);
  }
  console.log(`inference parameters: ${JSON.stringify((await api.query.inference.protocolParams()).toJSON())}`);
} finally {
  await api.disconnect();
}
