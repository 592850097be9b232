// Agora Explorer: renders a ChainView into the page (plain DOM, redrawn on every change).
import {
  CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip,
} from 'chart.js';
import { ChainView } from './chain.js';
import { jobDetection } from './detection.js';
import { roundVerification, trainingCurve } from './fold.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Tooltip, Legend);

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const PHASES = ['Open', 'Training', 'Commit', 'Reveal', 'Aggregation'];

let view;
let config = { rpc: 'ws://127.0.0.1:9944', download: false };
let selectedJob = params.has('job') ? Number(params.get('job')) : null;
let chart;
let lastDraw = 0;
let drawTimer = null;

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const short = (text) => (text && text.length > 16 ? `${text.slice(0, 8)}…${text.slice(-6)}` : text ?? '–');
const account = (who) => `<span class="account" title="${escape(who)}">${escape(short(who))}</span>`;
const hash = (h) => `<code title="${escape(h)}">${escape(short(h))}</code>`;

function amount(value) {
  if (value === null || value === undefined) return '–';
  const decimals = BigInt(view?.live.decimals ?? 12);
  const unit = 10n ** decimals;
  const whole = value / unit;
  const fraction = ((value % unit) * 10_000n) / unit;
  return `${whole.toLocaleString('en')}.${fraction.toString().padStart(4, '0')} ${escape(view?.live.token ?? 'AGR')}`;
}

const percent = (fraction, digits = 1) => `${(fraction * 100).toFixed(digits)} %`;
const rows = (items, render, empty, columns) =>
  items.length ? items.map(render).join('') : `<tr><td colspan="${columns}">${empty}</td></tr>`;

function renderNetwork(live, state) {
  $('best').textContent = live.best !== undefined ? `#${live.best}` : '–';
  $('finalized').textContent = live.finalized !== undefined ? `#${live.finalized}` : '–';
  $('lag').textContent = live.best !== undefined && live.finalized !== undefined
    ? `${live.best - live.finalized} blocks` : '–';
  const times = live.blockTimes ?? [];
  if (times.length >= 2) {
    const first = times[0];
    const last = times[times.length - 1];
    const blocks = last.number - first.number;
    $('blocktime').textContent = blocks > 0 ? `${((last.at - first.at) / blocks / 1000).toFixed(1)} s` : '–';
  }
  $('validators').textContent = live.authorities ?? '–';
  $('peers').textContent = live.peers !== undefined ? `${live.peers}${live.syncing ? ' (syncing)' : ''}` : '–';
  $('chain').textContent = live.chain ? `${live.chain}, runtime v${live.specVersion}` : '–';
  $('emitted').textContent = amount(state.emitted);
}

function phaseOf(job) {
  if (job.status !== 'Active') return job.status;
  return job.verification ? job.verification.stage : job.phase;
}

function renderJobs(live) {
  const jobs = live.jobs ?? [];
  if (selectedJob === null && jobs.length) selectedJob = (jobs.find((j) => j.status === 'Active') ?? jobs[0]).id;
  $('job-rows').innerHTML = rows(jobs, (j) => `
    <tr data-job="${j.id}" class="${j.id === selectedJob ? 'selected' : ''}">
      <td><a href="?${linkParams({ job: j.id })}">#${j.id}</a></td><td>${escape(j.architecture)}</td>
      <td class="status-${escape(j.status)}">${escape(j.status)}</td>
      <td>${j.status === 'Active' ? `${j.round}/${j.rounds}` : `${j.completedRounds}/${j.rounds}`}</td>
      <td>${escape(phaseOf(j))}</td><td>${amount(j.budget)}</td><td>${amount(j.spent)}</td>
      <td>${hash(j.latestModel)}</td>
    </tr>`, 'no job yet', 8);
}

function linkParams(extra) {
  const next = new URLSearchParams(params);
  for (const [key, value] of Object.entries(extra)) next.set(key, value);
  return next.toString();
}

function renderTimeline(job) {
  const current = phaseOf(job);
  const index = PHASES.indexOf(current);
  const finished = job.status !== 'Active';
  const length = { Open: 'open', Training: 'training', Commit: 'commit', Reveal: 'reveal', Aggregation: 'aggregation' };
  $('timeline').innerHTML = PHASES.map((phase, i) => {
    const state = finished || (index >= 0 && i < index) ? 'done' : i === index ? 'current' : 'todo';
    return `<div class="phase ${state}" data-phase="${phase}">
      <strong>${phase}</strong><small>${job.periods[length[phase]]} blocks</small></div>`;
  }).join('');
  $('timeline').dataset.current = finished ? job.status : `${job.round}:${current}`;
  const deadline = job.verification ? job.verification.deadline : job.deadline;
  const best = view.live.best ?? 0;
  $('deadline').textContent = finished
    ? `${job.status}: ${job.completedRounds} of ${job.rounds} rounds completed.`
    : `Round ${job.round} of ${job.rounds}: ${current} ends at block #${deadline}` +
      ` (${Math.max(0, deadline - best)} blocks from now).`;
}

let drawnPoints = '';

function drawChart(points) {
  const canvas = $('curve');
  const key = JSON.stringify(points);
  if (chart && key === drawnPoints) return;
  drawnPoints = key;
  const data = {
    labels: points.map((p) => `round ${p.round}`),
    datasets: [
      { label: 'median accepted update', data: points.map((p) => p.median * 100), borderColor: '#2f6fdf', backgroundColor: '#2f6fdf', tension: 0.2 },
      { label: 'lowest', data: points.map((p) => p.low * 100), borderColor: '#9ab', backgroundColor: '#9ab', borderDash: [4, 4], pointRadius: 2 },
      { label: 'highest', data: points.map((p) => p.high * 100), borderColor: '#7c9', backgroundColor: '#7c9', borderDash: [4, 4], pointRadius: 2 },
    ],
  };
  if (!chart) {
    chart = new Chart(canvas, {
      type: 'line',
      data,
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { y: { title: { display: true, text: 'accuracy gain (points)' }, suggestedMin: 0, suggestedMax: 100 } },
      },
    });
  } else {
    chart.data = data;
    chart.update();
  }
  canvas.dataset.points = String(points.length);
}

function renderJob(live, state) {
  const job = (live.jobs ?? []).find((j) => j.id === selectedJob);
  $('job').hidden = !job;
  if (!job) return;
  $('job-title').textContent = `Job #${job.id}: ${job.architecture}, ${job.mode} verification`;
  renderTimeline(job);
  const history = state.jobs.get(job.id);
  drawChart(trainingCurve(history));
  const records = history ? [...history.rounds.values()].sort((a, b) => a.round - b.round) : [];
  const at = (block) => (block ? `#${block}` : '–');
  $('round-rows').innerHTML = rows(records, (r) => `
    <tr><td>${r.round}</td><td>${at(r.phases.Open)}</td><td>${at(r.phases.Training)}</td>
      <td>${at(r.phases.Verifying)}</td><td>${r.voided ? `voided (${escape(r.voided)})` : at(r.phases.Completed)}</td>
      <td>${r.model ? hash(r.model) : '–'}</td><td>${amount(r.paid)}</td></tr>`, 'no round seen yet', 7);
  const finalModel = job.status === 'Finalized' ? job.latestModel : null;
  const command = `agora-worker job download --node ${view.url} --job ${job.id} --out model.safetensors`;
  $('download').innerHTML = finalModel
    ? `Final model ${hash(finalModel)}: ${config.download && view.url === config.rpc
      ? `<a id="download-link" href="/model/${job.id}">download (safetensors, checked against the chain)</a> or `
      : ''}<code>${escape(command)}</code>`
    : 'The final model can be downloaded once the job is finalized.';
}

function renderVerification(live, state) {
  const job = (live.jobs ?? []).find((j) => j.id === selectedJob);
  const p = live.validationParams;
  if (job && p) {
    const d = jobDetection(job.localSteps, job.checkpointInterval, p.detectableFraction, p.detectionProbability);
    $('detection').textContent = `Job #${job.id}: each update's run has ${d.segments} checkpoint segments; `
      + `${d.reexecuted} are re-executed by ${job.validatorsPerUpdate} validators (the last one always). `
      + `A run that fakes ${percent(d.fraction, 0)} of its other segments is caught with probability `
      + `${percent(d.probability, 2)} (chain target ${percent(d.target, 0)}).`;
  }
  const v = state.verification;
  const stats = [
    ['updates verified', v.updatesAssigned], ['segments challenged', v.segmentsChallenged],
    ['replays (verdicts revealed)', v.verdictsRevealed], ['accepted', v.updatesAccepted],
    ['rejected', v.updatesRejected], ['cheating workers caught', v.cheatsCaught],
    ['validators caught', v.validatorsCaught], ['plants exposed', v.plantsExposed],
  ];
  $('verify-stats').innerHTML = stats.map(([k, n]) => `<div><dt>${k}</dt><dd>${n}</dd></div>`).join('');
  const perRound = roundVerification(state.jobs.get(selectedJob));
  $('verify-rows').innerHTML = rows(perRound, (r) => `<tr><td>${r.round}</td><td>${r.updates}</td>
    <td>${r.segments}</td><td>${r.revealed}</td><td>${r.accepted}</td><td>${r.rejected}</td><td>${r.planted}</td></tr>`,
  'nothing verified yet for this job', 7);
  $('slashes').innerHTML = rows([...state.slashes].reverse(), (s) => `
    <tr class="slash" data-reason="${escape(s.reason)}"><td>#${s.block}</td><td>#${s.job}</td><td>${account(s.who)}</td>
      <td><strong>${escape(s.reason)}</strong>: ${escape(s.why)}</td><td>${amount(s.amount)}</td></tr>`, 'none', 5);
}

function renderParticipants(live, state) {
  const people = live.participants ?? [];
  $('participant-rows').innerHTML = rows(people, (p) => {
    const seen = state.accounts.get(p.who) ?? { claimed: 0n, slashed: 0n, slashes: [] };
    const reasons = [...new Set(seen.slashes.map((s) => s.reason))].join(', ');
    return `<tr><td>${escape(p.role)}</td><td>${account(p.who)}</td><td>${amount(p.stake)}</td>
      <td>${escape(p.status)}</td><td>${amount(seen.claimed + p.pending)}</td><td>${amount(seen.slashed)}</td>
      <td>${escape(reasons || '–')}</td></tr>`;
  }, 'nobody registered yet', 7);
}

function renderGovernance(live) {
  $('referenda').innerHTML = rows(live.referenda ?? [], (r) => r.status === 'Ongoing'
    ? `<tr><td>#${r.id}</td><td>${r.track}</td><td>ongoing since #${r.since}</td><td>${amount(r.ayes)}</td>
       <td>${amount(r.nays)}</td><td>${amount(r.support)}</td></tr>`
    : `<tr><td>#${r.id}</td><td>–</td><td>${escape(r.status)}${r.at ? ` at #${r.at}` : ''}</td><td colspan="3"></td></tr>`,
  'no referendum yet', 6);
  $('market-body').textContent = live.market
    ? 'The inference market pallet is present on this chain.'
    : 'This chain has no inference market yet: finished models are downloaded, not served.';
}

function draw() {
  lastDraw = Date.now();
  drawTimer = null;
  const { live, state } = view;
  const conn = $('conn');
  conn.dataset.state = view.connection;
  conn.textContent = view.connection === 'connected' ? `connected to ${view.url}` : `${view.connection}: ${view.url}`;
  $('error').hidden = !view.error;
  $('error').textContent = view.error ?? '';
  renderNetwork(live, state);
  renderJobs(live);
  renderJob(live, state);
  renderVerification(live, state);
  renderParticipants(live, state);
  renderGovernance(live);
  $('footer').textContent = live.historyFrom
    ? `Events folded from block #${live.historyFrom} to #${state.lastBlock} (finalized); earnings and slashes count what happened in that range.`
    : '';
}

// Redraws at most twice a second, however fast events arrive.
function scheduleDraw() {
  if (drawTimer) return;
  drawTimer = setTimeout(draw, Math.max(0, 500 - (Date.now() - lastDraw)));
}

async function main() {
  try {
    const response = await fetch('/config.json');
    if (response.ok) config = { ...config, ...(await response.json()) };
  } catch {
    // Served without serve.js (vite dev): the defaults stand.
  }
  const url = params.get('rpc') ?? config.rpc;
  $('rpc').value = url;
  $('endpoint').addEventListener('submit', (event) => {
    event.preventDefault();
    window.location.search = new URLSearchParams({ rpc: $('rpc').value.trim() }).toString();
  });
  $('job-rows').addEventListener('click', (event) => {
    const row = event.target.closest('tr[data-job]');
    if (!row) return;
    event.preventDefault();
    selectedJob = Number(row.dataset.job);
    params.set('job', selectedJob);
    window.history.replaceState(null, '', `?${params}`);
    draw();
  });
  view = new ChainView(url, { history: Number(params.get('history') ?? 5000), onChange: scheduleDraw });
  window.agoraExplorer = view;
  scheduleDraw();
  try {
    await view.start();
  } catch (error) {
    view.error = `cannot connect to ${url}: ${error.message}`;
    scheduleDraw();
  }
}

main();
