// Shared helpers for the @polkadot/api tests: connect to a running agora-node and wait for things.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';

export const WS_URL = process.env.AGORA_WS ?? 'ws://127.0.0.1:9944';
export const AGR = 10n ** 12n;

export async function connect(url = WS_URL) {
  await cryptoWaitReady();
  const provider = new WsProvider(url, 1000, {}, 30_000);
  const api = await ApiPromise.create({ provider, noInitWarn: true, throwOnConnect: true });
  const keyring = new Keyring({ type: 'sr25519', ss58Format: api.registry.chainSS58 });
  return { api, keyring, provider };
}

// Resolves with the first value of `subscribe` for which `predicate` holds, or rejects on timeout.
export function waitFor(subscribe, predicate, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    let unsubscribe = null;
    const timer = setTimeout(() => {
      if (unsubscribe) unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    subscribe((value) => {
      if (predicate(value)) {
        clearTimeout(timer);
        if (unsubscribe) unsubscribe();
        resolve(value);
      }
    }).then((unsub) => {
      unsubscribe = unsub;
    }, reject);
  });
}

// Signs and submits `tx`, resolving with the block hash and the events once it is in a block.
export function submitInBlock(tx, signer, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('transaction not included in time')), timeoutMs);
    tx.signAndSend(signer, ({ status, events, dispatchError }) => {
      if (status.isInBlock) {
        clearTimeout(timer);
        resolve({ blockHash: status.asInBlock, events, dispatchError });
      } else if (status.isInvalid || status.isDropped || status.isUsurped) {
        clearTimeout(timer);
        reject(new Error(`transaction ${status.type}`));
      }
    }).catch((error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

// Like `submitInBlock`, but a failed dispatch is an error naming the pallet's error.
export async function submitOk(api, tx, signer) {
  const result = await submitInBlock(tx, signer);
  if (result.dispatchError) {
    const error = result.dispatchError.isModule
      ? api.registry.findMetaError(result.dispatchError.asModule)
      : null;
    throw new Error(`dispatch failed: ${error ? `${error.section}.${error.name}` : result.dispatchError}`);
  }
  return result;
}

// What staking minted in blocks `from + 1 ..= to` (each block read once per connection): the
// treasury's remainder of each era's emission curve and the era rewards paid out, the only
// issuance besides the training protocol's emission.
const mintedByBlock = new WeakMap();
export async function stakingMinted(api, from, to) {
  if (!mintedByBlock.has(api)) mintedByBlock.set(api, new Map());
  const cache = mintedByBlock.get(api);
  let minted = 0n;
  for (let n = from + 1; n <= to; n += 1) {
    if (!cache.has(n)) {
      const at = await api.at(await api.rpc.chain.getBlockHash(n));
      let inBlock = 0n;
      for (const { event } of await at.query.system.events()) {
        if (api.events.staking.EraPaid.is(event)) inBlock += event.data.remainder.toBigInt();
        if (api.events.staking.Rewarded.is(event)) inBlock += event.data.amount.toBigInt();
      }
      cache.set(n, inBlock);
    }
    minted += cache.get(n);
  }
  return minted;
}
