// Serves the built explorer (dist/) and, where a worker binary is given, the final models of
// finalized jobs: GET /model/<job> runs `agora-worker job download` against this server's own
// node (--rpc; never an address a client names), which fetches the model from the workers over
// libp2p and checks its hash against the chain, then sends the file. One download runs at a
// time.
//
//   node serve.js [--port 8080] [--host 127.0.0.1] [--rpc ws://127.0.0.1:9944]
//                 [--worker-bin PATH] [--cache DIR]
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    rpc: { type: 'string', default: 'ws://127.0.0.1:9944' },
    'worker-bin': { type: 'string' },
    cache: { type: 'string', default: join(process.env.TMPDIR ?? '/tmp', 'agora-explorer') },
  },
});

const root = join(dirname(fileURLToPath(import.meta.url)), 'dist');
if (!existsSync(join(root, 'index.html'))) {
  console.error(`no build in ${root}: run \`npm run build\` first`);
  process.exit(1);
}
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css',
  '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json',
};
const workerBin = args['worker-bin'] && existsSync(args['worker-bin']) ? args['worker-bin'] : null;
// Downloads waiting or running; one runs at a time, whoever asks, and past a few a client is
// turned away.
const MAX_QUEUED = 4;
let queued = 0;
let queue = Promise.resolve();
class Busy extends Error {}

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

// Writes the final model of `job` to `out`. Nothing is cached by job id, which names another
// model on another chain (or after a restart of a development chain); the blob store the CLI
// keeps is addressed by content hash, so a model it fetched once is not fetched again.
function download(job, out) {
  if (queued >= MAX_QUEUED) return Promise.reject(new Busy());
  queued += 1;
  const attempt = queue.then(() => new Promise((resolve, reject) => {
    // The download signs nothing; the CLI wants an account, so it gets a throwaway one.
    const child = spawn(workerBin, ['job', 'download', '--node', args.rpc, '--suri', '//agora-explorer',
      '--job', String(job), '--out', out, '--store', join(args.cache, 'store')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-2000); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && existsSync(out)) resolve(out);
      else reject(new Error(stderr.trim().split('\n').pop() || `agora-worker exited with ${code}`));
    });
  }));
  queue = attempt.catch(() => {});
  return attempt.finally(() => { queued -= 1; });
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/config.json') {
    send(res, 200, JSON.stringify({ rpc: args.rpc, download: Boolean(workerBin) }), TYPES['.json']);
    return;
  }
  const model = url.pathname.match(/^\/model\/(\d{1,19})$/);
  if (model) {
    if (!workerBin) return send(res, 404, 'this explorer serves no models (start it with --worker-bin)');
    mkdirSync(args.cache, { recursive: true });
    const dir = mkdtempSync(join(args.cache, 'model-'));
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    try {
      const file = await download(model[1], join(dir, 'model.safetensors'));
      res.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': statSync(file).size,
        'Content-Disposition': `attachment; filename="agora-job-${model[1]}.safetensors"`,
      });
      res.on('close', cleanup);
      createReadStream(file).pipe(res);
    } catch (error) {
      cleanup();
      if (error instanceof Busy) send(res, 503, 'busy: other downloads are queued, try again later');
      else send(res, 502, `download failed: ${error.message}`);
    }
    return;
  }
  const path = normalize(join(root, url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname)));
  if (!path.startsWith(root + sep) || !existsSync(path) || !statSync(path).isFile()) {
    return send(res, 404, 'not found');
  }
  res.writeHead(200, { 'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream' });
  createReadStream(path).pipe(res);
});

server.listen(Number(args.port), args.host, () => {
  console.log(`Agora Explorer on http://${args.host}:${args.port}/ (node ${args.rpc})`);
});
