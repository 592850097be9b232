// The explorer in a real browser (Debian's Chromium, headless, driven by playwright-core)
// against a network with a job in progress. Run by `scripts/demo.sh --check` right after it
// creates its job:
//
//   node e2e/check.js --url URL --job N --out DIR [--slash REASON] [--restart COMMAND]
//
// It checks, in order: the page connects; the job appears; its round timeline moves; the
// accuracy chart draws a point; a slash shows with its reason (when --slash names one); once
// the job is finalized, its download link gives the model whose hash is on chain; COMMAND restarts the node the page is connected to and the page follows
// new blocks again without a reload. It saves a screenshot after each step in DIR.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { blake2AsHex } from '@polkadot/util-crypto';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    job: { type: 'string' },
    out: { type: 'string' },
    slash: { type: 'string' },
    restart: { type: 'string' },
    browser: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
    timeout: { type: 'string', default: '900' },
  },
});
if (!args.url || !args.job || !args.out) {
  console.error('usage: node e2e/check.js --url URL --job N --out DIR [--slash REASON] [--restart COMMAND]');
  process.exit(2);
}
mkdirSync(args.out, { recursive: true });
const job = Number(args.job);
const limit = Number(args.timeout) * 1000;
const started = Date.now();
const left = () => Math.max(1000, limit - (Date.now() - started));
const say = (text) => console.log(`[explorer-check] ${((Date.now() - started) / 1000).toFixed(0)} s: ${text}`);

const browser = await chromium.launch({
  executablePath: args.browser,
  // The machine has no internet: no background connections, no first-run work.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
const errors = [];
page.on('pageerror', (error) => errors.push(error.message));
const shot = (name) => page.screenshot({ path: join(args.out, `${name}.png`), fullPage: true });

try {
  // The server may still be building the page.
  for (let attempt = 0; ; attempt += 1) {
    try {
      await page.goto(args.url);
      break;
    } catch (error) {
      if (attempt >= 60) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: 60_000 });
  say('connected');

  await page.waitForSelector(`tr[data-job="${job}"]`, { timeout: left() });
  await page.click(`tr[data-job="${job}"]`);
  say(`job #${job} listed`);

  const first = await page.getAttribute('#timeline', 'data-current');
  await page.waitForFunction(
    (before) => document.querySelector('#timeline')?.dataset.current !== before,
    first, { timeout: left(), polling: 500 },
  );
  say(`timeline moved from ${first} to ${await page.getAttribute('#timeline', 'data-current')}`);
  await shot('timeline');

  await page.waitForFunction(() => Number(document.querySelector('#curve')?.dataset.points) >= 1,
    null, { timeout: left(), polling: 1000 });
  say(`chart drew ${await page.getAttribute('#curve', 'data-points')} point(s)`);

  if (args.slash) {
    await page.waitForSelector(`tr.slash[data-reason="${args.slash}"]`, { timeout: left() });
    const text = await page.textContent(`tr.slash[data-reason="${args.slash}"]`);
    say(`slash shown: ${text.replace(/\s+/g, ' ').trim()}`);
  }

  await page.waitForSelector(`tr[data-job="${job}"] td.status-Finalized`, { timeout: left() });
  await page.waitForFunction(() => Number(document.querySelector('#curve')?.dataset.points) >= 2,
    null, { timeout: 60_000, polling: 1000 }).catch(() => {});
  say('job finalized');
  await shot('explorer');

  const link = await page.waitForSelector('#download-link', { timeout: 30_000 });
  const expected = await page.getAttribute('#download code', 'title');
  const response = await fetch(new URL(await link.getAttribute('href'), page.url()));
  if (!response.ok) throw new Error(`download: HTTP ${response.status}: ${await response.text()}`);
  const model = new Uint8Array(await response.arrayBuffer());
  const got = blake2AsHex(model, 256);
  if (got !== expected) throw new Error(`downloaded model hashes to ${got}, the chain says ${expected}`);
  say(`downloaded the final model (${model.length} bytes), blake2-256 ${got} as on chain`);

  if (args.restart) {
    const best = async () => Number((await page.textContent('#best')).replace('#', '')) || 0;
    const before = await best();
    // The page must notice that the node went away, not only carry on afterwards.
    await page.evaluate(() => {
      window.sawDisconnect = false;
      const conn = document.querySelector('#conn');
      new MutationObserver(() => {
        if (conn.dataset.state !== 'connected') window.sawDisconnect = true;
      }).observe(conn, { attributes: true });
    });
    say(`restarting the node (best #${before}): ${args.restart}`);
    execFileSync('bash', ['-c', args.restart], { stdio: 'inherit' });
    await page.waitForFunction(
      (n) => document.querySelector('#conn')?.dataset.state === 'connected'
        && Number(document.querySelector('#best')?.textContent.replace('#', '')) > n,
      before + 1, { timeout: 180_000, polling: 1000 },
    );
    if (!(await page.evaluate(() => window.sawDisconnect))) {
      throw new Error('the page never showed that the node was gone');
    }
    say(`after the restart the page follows the chain again: best ${await page.textContent('#best')}`);
    await shot('after-restart');
  }
  if (errors.length) throw new Error(`errors in the page: ${errors.join('; ')}`);
  say('PASS');
} catch (error) {
  failed = true;
  console.error(`[explorer-check] FAIL: ${error.message}`);
  await shot('failure').catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
