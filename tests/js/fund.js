// Funds development accounts from //Alice in one batch: each gets AMOUNT AGR. Used by
// scripts/local-testnet.sh for its extra workers (AGORA_EXTRA_WORKERS):
//   node fund.js WS_URL AMOUNT URI...
import { AGR, connect, submitOk } from './lib.js';

const [url, amount, ...uris] = process.argv.slice(2);
if (!url || !amount || uris.length === 0) throw new Error('usage: node fund.js WS_URL AMOUNT URI...');
const { api, keyring } = await connect(url);
try {
  const alice = keyring.addFromUri('//Alice');
  const transfers = uris.map((uri) =>
    api.tx.balances.transferKeepAlive(keyring.addFromUri(uri).address, BigInt(amount) * AGR));
  await submitOk(api, api.tx.utility.batchAll(transfers), alice);
  console.log(`funded ${uris.length} accounts with ${amount} AGR each`);
} finally {
  await api.disconnect();
}
