/**
 * Receiver figures, side by side with adnanh/webhook 2.8 (Debian package `webhook`) and a bare
 * `node:http` server (the ceiling for Node here), all loaded by wrk in the same shape: static
 * requests for the rejection floods (no per-request Lua for any server), the same cycling script
 * of signed requests for the accept floods. Under each flood of the receiver: its RSS and the
 * latency of valid deliveries sent alongside. Then the seed-check cost against plain SHA-256 and
 * a burst during a long run. Every server listens on 127.0.0.1; every load is bounded in time.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac, hash, randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { request } from 'undici';
import { receiverBuildOptions } from '../lib/host-files/host-files';
import { buildDeliveryRequest, seedSignature, standardWebhookHeaders } from '../protocol';
import type { RunRecord } from '../receiver';
import { freePort, probePath, stopChild } from './support';

const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 32;
/** Each load runs this many times; the median is reported, with the spread. */
const REPETITIONS = Number(process.env.BENCH_REPETITIONS ?? 3);
const TOKEN = `whsec_${randomBytes(32).toString('base64')}`;
const SEED_TOKEN = randomBytes(24).toString('hex');
const now = () => Math.floor(Date.now() / 1000);

interface Receiver {
  url: string;
  adminUrl: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The receiver as it ships to the host: one esbuild bundle, run by plain node. */
function bundleReceiver(dir: string): string {
  const file = join(dir, 'receiver.js');
  const result = buildSync(receiverBuildOptions(resolve(__dirname, '..', 'receiver', 'daemon.ts'), file, 'node20'));
  if (result.errors.length > 0) throw new Error(`bundling the receiver failed: ${result.errors[0]?.text}`);
  return file;
}

async function startReceiver(dir: string, bundle: string, command: string, workers: number): Promise<Receiver> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const config = {
    listen: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: adminPort },
    workers,
    stateDir: join(dir, `state-${workers}-${Date.now()}`),
    log: { level: 'info' },
    triggers: [
      { repository: 'bench', branch: 'main', token: TOKEN, command },
      { repository: 'legacy', branch: 'master', token: SEED_TOKEN, command },
    ],
  };
  writeFileSync(join(dir, 'receiver.json'), JSON.stringify(config), { mode: 0o600 });
  // Logs go to a file, as they would to journald: written by the receiver, read by nobody here.
  const log = openSync(join(dir, 'receiver.log'), 'w');
  const child = spawn(process.execPath, [bundle, '--config', join(dir, 'receiver.json')], { stdio: ['ignore', log, 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await request(`${url}/healthz`);
      await response.body.dump();
      break;
    } catch (error) {
      if (attempt > 100 || child.exitCode !== null) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    child,
    stop: () => stopChild(child),
  };
}

/** RSS of the receiver: its primary and, in cluster mode, its worker processes (not the commands it runs). */
function rssMiB(pid: number): { total: number; peak: number; each: number[] } {
  const kb = (p: number, field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const workers = children.filter((c) => {
    try {
      return readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('receiver.js');
    } catch {
      return false;
    }
  });
  const pids = [pid, ...workers];
  const each = pids.map((p) => kb(p, 'VmRSS') / 1024);
  return { total: each.reduce((a, b) => a + b, 0), peak: pids.reduce((a, p) => a + kb(p, 'VmHWM') / 1024, 0), each };
}

interface LoadResult {
  perSecond: number;
  /** Answers that were not 2xx/3xx. */
  errors: number;
  statuses?: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
}

/** Where the Lua scripts and request files go. */
let scratch = '';

function runWrk(url: string, script: string): Promise<LoadResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${DURATION}s`, '--latency', '-s', script, url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk failed: ${out}`));
      const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const ms = (label: string) => {
        const match = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
        if (!match) return NaN;
        return Number(match[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[match[2]!]!;
      };
      const result = /WRK_STATUSES (\{.*\})/.exec(out);
      resolvePromise({
        perSecond,
        errors,
        p50Ms: ms('50'),
        p99Ms: ms('99'),
        ...(result ? { statuses: JSON.parse(result[1]!) as Record<string, number> } : {}),
      });
    });
  });
}

/** One request, the same every time: wrk builds it once and runs no Lua per request. */
function staticLoad(url: string, method: string, path: string, headers: Record<string, string>, body = ''): Promise<LoadResult> {
  const script = join(scratch, `static-${Date.now()}.lua`);
  const lua = (s: string) => JSON.stringify(s);
  writeFileSync(
    script,
    `wrk.method = ${lua(method)}\nwrk.path = ${lua(path)}\nwrk.body = ${lua(body)}\n${Object.entries(headers)
      .map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`)
      .join('\n')}\n`,
  );
  return runWrk(url, script);
}

/**
 * Requests that must differ (unique delivery ids), read from a file and sent in turn by a Lua
 * `request` function, the statuses counted by a `response` function: the same script for every
 * server it is compared on.
 */
function cyclingLoad(url: string, rawRequests: string[]): Promise<LoadResult> {
  const requestsFile = join(scratch, `requests-${Date.now()}.txt`);
  // One request a line, its CRLFs written as \x01 (which no request holds).
  writeFileSync(requestsFile, rawRequests.map((r) => `${r.replaceAll('\r\n', '\x01')}\n`).join(''));
  const script = join(scratch, `cycling-${Date.now()}.lua`);
  writeFileSync(
    script,
    `
local requests, n, i = {}, 0, 0
statuses = {}
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
for line in io.lines("${requestsFile}") do n = n + 1; requests[n] = line:gsub('\\1', '\\r\\n') end
request = function() i = i % n + 1; return requests[i] end
response = function(status) statuses[status] = (statuses[status] or 0) + 1 end
done = function(summary, latency)
  local counts = {}
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("statuses")) do counts[k] = (counts[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(counts) do parts[#parts + 1] = string.format('"%d": %d', k, v) end
  io.write('WRK_STATUSES {' .. table.concat(parts, ', ') .. '}\\n')
end
`,
  );
  return runWrk(url, script);
}

async function median(run: () => Promise<LoadResult>): Promise<LoadResult & { spread: string }> {
  const results: LoadResult[] = [];
  for (let repetition = 0; repetition < REPETITIONS; repetition++) results.push(await run());
  results.sort((a, b) => a.perSecond - b.perSecond);
  const middle = results[Math.floor(results.length / 2)]!;
  return { ...middle, spread: `${Math.round(results[0]!.perSecond)}–${Math.round(results.at(-1)!.perSecond)}` };
}

function rawHttp(method: string, path: string, headers: Record<string, string>, body = ''): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines.join('\r\n')}${lines.length ? '\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function standardDelivery(id: string, commit: string) {
  return buildDeliveryRequest({
    scheme: 'standard',
    token: TOKEN,
    id,
    timestamp: now(),
    data: { repository: 'bench', branch: 'main', ref: 'refs/heads/main', commit, source: 'bench' },
  });
}

function signedDeliveries(count: number, tag: string): string[] {
  const requests: string[] = [];
  for (let i = 0; i < count; i++) {
    const delivery = standardDelivery(`msg_${tag}_${i}`, i.toString(16).padStart(40, '0'));
    requests.push(rawHttp('POST', delivery.path, delivery.headers, delivery.body));
  }
  return requests;
}

/** Signed GitHub-style deliveries for adnanh/webhook's HMAC rule, each body different like ours. */
function hubSignedDeliveries(count: number, secret: string): string[] {
  const requests: string[] = [];
  for (let i = 0; i < count; i++) {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: i.toString(16).padStart(40, '0'), id: `msg_${i}` });
    const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    requests.push(rawHttp('POST', '/hooks/bench', { 'content-type': 'application/json', 'x-hub-signature-256': signature }, body));
  }
  return requests;
}

interface Server {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function waitForPort(url: string, child: ChildProcess): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await request(url);
      await response.body.dump();
      return;
    } catch (error) {
      if (attempt > 100 || child.exitCode !== null) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const WEBHOOK_SECRET = randomBytes(24).toString('hex');

/** adnanh/webhook with an HMAC-SHA256 rule on the body; a bad signature is answered 401. */
async function startWebhook(dir: string): Promise<Server | undefined> {
  if (spawnSync('sh', ['-c', 'command -v webhook']).status !== 0) return undefined;
  const port = await freePort();
  const hooks = [
    {
      id: 'bench',
      'execute-command': '/bin/true',
      'trigger-rule-mismatch-http-response-code': 401,
      'trigger-rule': {
        match: { type: 'payload-hmac-sha256', secret: WEBHOOK_SECRET, parameter: { source: 'header', name: 'X-Hub-Signature-256' } },
      },
    },
  ];
  writeFileSync(join(dir, 'hooks.json'), JSON.stringify(hooks));
  const log = openSync(join(dir, 'webhook.log'), 'w');
  const child = spawn('webhook', ['-hooks', join(dir, 'hooks.json'), '-ip', '127.0.0.1', '-port', String(port)], {
    stdio: ['ignore', log, log],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForPort(`${url}/`, child).catch(() => undefined);
  return { name: 'adnanh/webhook', url, pid: child.pid!, stop: () => stopChild(child) };
}

/** The ceiling for Node here: node:http reading the body and answering a fixed status. */
async function startBareNode(status: number): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [probePath('bare-http.js'), String(port), String(status)], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitForPort(`${url}/`, child);
  return { name: 'bare node:http', url, pid: child.pid!, stop: () => stopChild(child) };
}

/**
 * While a flood runs: the receiver's RSS every 100 ms (the largest kept) and the latency of a
 * valid delivery sent every 20 ms, each with a new id.
 */
function alongside(
  receiver: Receiver,
  tag: string,
): { stop(): Promise<{ rssMiB: number; p50Ms: number; p99Ms: number; answers: Record<string, number> }> } {
  let running = true;
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, rssMiB(receiver.child.pid!).total)), 100);
  const latencies: number[] = [];
  const answers: Record<string, number> = {};
  const sender = (async () => {
    for (let i = 0; running; i++) {
      const delivery = standardDelivery(`msg_valid_${tag}_${i}`, 'abc123');
      const start = process.hrtime.bigint();
      try {
        const response = await request(receiver.url + delivery.path, { method: 'POST', headers: delivery.headers, body: delivery.body! });
        await response.body.dump();
        answers[response.statusCode] = (answers[response.statusCode] ?? 0) + 1;
      } catch (error) {
        answers[(error as NodeJS.ErrnoException).code ?? 'error'] = (answers[(error as NodeJS.ErrnoException).code ?? 'error'] ?? 0) + 1;
      }
      latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await sender;
      clearInterval(sampler);
      latencies.sort((a, b) => a - b);
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
      return { rssMiB: rss, p50Ms: at(0.5), p99Ms: at(0.99), answers };
    },
  };
}

/**
 * The flood that once took the receiver past 1 GiB: 200 connections, each sending all but the last
 * byte of a 4.9 MiB body with a fresh timestamp and a forged signature, opened again as soon as the
 * receiver closes one, for the length of a run. In its own process, so that writing it does not
 * slow the bench's own event loop, which times the valid deliveries.
 */
function unfinishedBodies(receiver: Receiver): Promise<{ refused: number }> {
  const { hostname, port } = new URL(receiver.url);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [probePath('unfinished-bodies.js'), port, hostname, String(DURATION)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (status) =>
      status === 0 ? resolvePromise({ refused: Number(out) }) : reject(new Error(`the body flood exited ${status}`)),
    );
  });
}

function seedCheckCost(): { perCheckUs: number; baselineUs: number } {
  const rounds = 1000;
  const reps = 400;
  const input = 'x'.repeat(64);
  let sink = 0;
  for (let i = 0; i < 50; i++) sink += seedSignature(i, 'legacy', 'master', SEED_TOKEN, rounds).length;
  let start = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) sink += seedSignature(1_700_000_000 + i, 'legacy', 'master', SEED_TOKEN, rounds).length;
  const perCheckUs = Number(process.hrtime.bigint() - start) / 1000 / reps;
  start = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) for (let j = 0; j < rounds; j++) sink += hash('sha256', input, 'hex').length;
  const baselineUs = Number(process.hrtime.bigint() - start) / 1000 / reps;
  if (sink === 0) throw new Error('unreachable');
  return { perCheckUs, baselineUs };
}

async function burst(dir: string, bundle: string): Promise<string> {
  const receiver = await startReceiver(dir, bundle, 'sleep 2', 1);
  try {
    const commits: string[] = [];
    for (let i = 0; i < 31; i++) {
      const commit = i.toString(16).padStart(40, '0');
      commits.push(commit);
      const delivery = standardDelivery(`msg_burst_${i}`, commit);
      const response = await request(receiver.url + delivery.path, { method: 'POST', headers: delivery.headers, body: delivery.body! });
      await response.body.dump();
      if (i === 0) await new Promise((r) => setTimeout(r, 300));
    }
    let runs: RunRecord[] = [];
    for (let i = 0; i < 100; i++) {
      const response = await request(`${receiver.adminUrl}/runs?limit=100`);
      runs = ((await response.body.json()) as { runs: RunRecord[] }).runs;
      if (runs.every((r) => r.status !== 'running' && r.status !== 'pending')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const last = runs[0];
    return `${runs.length} runs; the last carried ${last?.deliveries} deliveries and commit ${last?.commit} (newest: ${commits.at(-1)})`;
  } finally {
    await receiver.stop();
  }
}

/**
 * Live-log viewers of one run that prints about 1 MiB a second, in a process of their own so that
 * reading does not slow the bench's event loop, which times the valid deliveries: `reading` read
 * everything, the others never read a byte. Past the end, every socket is read to see what the
 * receiver said last. Resolves with what they saw.
 */
function liveLogViewers(
  receiver: Receiver,
  runId: string,
  reading: number,
  silent: number,
): { done: Promise<{ bytesRead: number; dropped: number; ended: number; following: number; refused: number }> } {
  const { hostname, port } = new URL(receiver.adminUrl);
  const code = `
const net = require('node:net');
const deadline = Date.now() + ${DURATION * 1000};
let bytesRead = 0, dropped = 0, ended = 0, following = 0, refused = 0;
const viewer = (reads) => new Promise((resolve) => {
  const socket = net.connect(${Number(port)}, ${JSON.stringify(hostname)}, () => socket.write('GET /runs/${runId}/log/events HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'));
  let tail = '';
  const look = (chunk) => { bytesRead += chunk.length; tail = (tail + chunk.toString('latin1')).slice(-4096); };
  if (!reads) socket.pause();
  socket.on('data', look);
  socket.on('error', () => undefined);
  setTimeout(() => { socket.resume(); setTimeout(() => socket.destroy(), 2000); }, Math.max(0, deadline - Date.now()));
  socket.on('close', () => { if (tail.includes('HTTP/1.1 503')) refused += 1; else if (tail.includes('event: dropped')) dropped += 1; else if (tail.includes('event: end')) ended += 1; else following += 1; resolve(); });
});
Promise.all([...Array.from({ length: ${reading} }, () => viewer(true)), ...Array.from({ length: ${silent} }, () => viewer(false))]).then(() => process.stdout.write(JSON.stringify({ bytesRead, dropped, ended, following, refused })));
`;
  return {
    done: new Promise((resolvePromise, reject) => {
      const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.once('exit', (status) =>
        status === 0 ? resolvePromise(JSON.parse(out)) : reject(new Error(`the live-log viewers exited ${status}`)),
      );
    }),
  };
}

/**
 * The live log under viewers: valid delivery latency and the receiver's RSS with no viewer, with
 * 50 that read and with 50 that never read, while one run prints about 1 MiB a second.
 */
async function liveLog(dir: string, bundle: string): Promise<string[]> {
  const seconds = 3 * DURATION + 10;
  // One process writing 16 KiB lines every 15 ms (a shell loop spawning per line cannot keep the rate on a busy host).
  const writer = `const line = Buffer.alloc(16384, 120); line[16383] = 10; const end = Date.now() + ${seconds * 1000}; const t = setInterval(() => { process.stdout.write(line); if (Date.now() > end) clearInterval(t); }, 15);`;
  const noisy = `${JSON.stringify(process.execPath)} -e ${JSON.stringify(writer)}`;
  const receiver = await startReceiver(dir, bundle, noisy, 1);
  try {
    const first = standardDelivery('msg_live_first', 'f'.repeat(40));
    const answer = await request(receiver.url + first.path, { method: 'POST', headers: first.headers, body: first.body! });
    const runId = ((await answer.body.json()) as { run: { id: string } }).run.id;
    const phase = async (tag: string, reading: number, silent: number) => {
      const side = alongside(receiver, `live_${tag}`);
      const viewers = reading + silent > 0 ? await liveLogViewers(receiver, runId, reading, silent).done : undefined;
      if (!viewers) await new Promise((r) => setTimeout(r, DURATION * 1000));
      const figures = await side.stop();
      return { ...figures, rssAfterMiB: rssMiB(receiver.child.pid!).total, viewers };
    };
    const none = await phase('none', 0, 0);
    const readers = await phase('reading', 50, 0);
    const silent = await phase('silent', 0, 50);
    const row = (label: string, f: typeof none) =>
      `| ${label} | ${f.rssMiB.toFixed(0)} MiB | ${f.rssAfterMiB.toFixed(0)} MiB | ${f.p50Ms.toFixed(1)} / ${f.p99Ms.toFixed(1)} ms | ${JSON.stringify(f.answers)} | ${f.viewers ? `${(f.viewers.bytesRead / 2 ** 20 / 50).toFixed(1)} MiB read each; ${f.viewers.following} still following at the end, ${f.viewers.ended} told the run ended, ${f.viewers.dropped} dropped, ${f.viewers.refused} refused` : '—'} |`;
    return [
      '',
      `Live log: one run printing 16 KiB lines every 15 ms (about 1 MiB/s; the log so far, sent on arrival, is 1 MiB), ${DURATION} s per phase (then 2 s more of reading what is left), the viewers in a process of their own; valid deliveries sent alongside every 20 ms.`,
      '',
      '| viewers of the run | RSS (peak of samples) | RSS after | valid delivery p50 / p99 | valid deliveries answered | what the viewers saw |',
      '| --- | --- | --- | --- | --- | --- |',
      row('none', none),
      row('50 reading', readers),
      row('50 never reading', silent),
    ];
  } finally {
    await receiver.stop();
  }
}

type Figure = LoadResult & { spread: string };
const rate = (f: Figure | undefined) => (f ? `${Math.round(f.perSecond)} (${f.spread})` : 'not measured');
const ratio = (a: Figure | undefined, b: Figure | undefined) => (a && b ? `${(a.perSecond / b.perSecond).toFixed(2)}×` : '—');

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'triggler-bench-'));
  scratch = dir;
  const out: string[] = [];
  const servers: Server[] = [];
  let receiver: Receiver | undefined;
  try {
    const bundle = bundleReceiver(dir);
    // BENCH_SCENARIO=live-log: that scenario alone.
    if (process.env.BENCH_SCENARIO === 'live-log') {
      process.stdout.write(`${(await liveLog(dir, bundle)).join('\n')}\n`);
      return;
    }
    const badBody = '{"data":{}}';
    const forgedStandard = () => standardWebhookHeaders(`whsec_${randomBytes(32).toString('base64')}`, 'msg_forged', now(), badBody);
    const forgedHub = { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` };
    const hubBody = '{"ref":"refs/heads/main"}';
    const perRun = 16_000 * DURATION;

    // adnanh/webhook and bare Node: rejections (static), then accepts (cycling).
    const webhook = await startWebhook(dir);
    let webhookReject: Figure | undefined;
    let webhookAccept: Figure | undefined;
    if (webhook) {
      servers.push(webhook);
      webhookReject = await median(() => staticLoad(webhook.url, 'POST', '/hooks/bench', forgedHub, hubBody));
      const signed = hubSignedDeliveries(20_000, WEBHOOK_SECRET);
      webhookAccept = await median(() => cyclingLoad(webhook.url, signed));
      await webhook.stop();
    }
    const bareReject = await (async () => {
      const bare = await startBareNode(401);
      servers.push(bare);
      try {
        return await median(() =>
          staticLoad(bare.url, 'POST', '/hooks/bench/main', { ...forgedStandard(), 'content-type': 'application/json' }, badBody),
        );
      } finally {
        await bare.stop();
      }
    })();
    const bareAccept = await (async () => {
      const bare = await startBareNode(202);
      servers.push(bare);
      try {
        const signed = signedDeliveries(20_000, 'bare');
        return await median(() => cyclingLoad(bare.url, signed));
      } finally {
        await bare.stop();
      }
    })();

    // The receiver, one process (as it ships), then with workers: 2.
    // The receiver, one process (as it ships), then with workers: 2; a fresh one for each flood, so
    // that each RSS figure is that flood's own.
    const floods = async (workers: number) => {
      const under = async <T>(tag: string, command: string, flood: (receiver: Receiver) => Promise<T>) => {
        receiver = await startReceiver(dir, bundle, command, workers);
        try {
          const side = alongside(receiver, `${workers}_${tag}`);
          const result = await flood(receiver);
          return { result, ...(await side.stop()) };
        } finally {
          await receiver.stop();
          receiver = undefined;
        }
      };
      const rejectStandard = await under('std', 'true', (r) =>
        median(() => staticLoad(r.url, 'POST', '/hooks/bench/main', { ...forgedStandard(), 'content-type': 'application/json' }, badBody)),
      );
      const rejectSeed = await under('seed', 'true', (r) =>
        median(() =>
          staticLoad(r.url, 'GET', '/legacy-master', { 'x-signature': 'ab'.repeat(32), 'x-signature-timestamp': String(now()) }),
        ),
      );
      const bodies = await under('bodies', 'true', (r) => unfinishedBodies(r));
      let repetition = 0;
      // A deploy takes a while: `sleep 1`, during which deliveries coalesce into the next run.
      const accept = await under('accept', 'sleep 1', (r) =>
        median(() => cyclingLoad(r.url, signedDeliveries(perRun, `acc${workers}_${repetition++}`))),
      );
      return { rejectStandard, rejectSeed, bodies, accept };
    };
    const one = await floods(1);
    const two = await floods(2);
    const seed = seedCheckCost();
    const burstResult = await burst(dir, bundle);
    const liveLogFigures = await liveLog(dir, bundle);

    const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} (\`nproc\` ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()}, \`uname -m\` ${spawnSync('uname', ['-m'], { encoding: 'utf8' }).stdout.trim()}), Node.js ${process.version}, ${spawnSync('webhook', ['-version'], { encoding: 'utf8' }).stdout?.trim() ?? 'no webhook'}, ${new Date().toISOString().slice(0, 10)}`;
    out.push(
      '\n## Receiver, side by side\n',
      `${machine}. wrk, one thread, ${CONNECTIONS} connections, ${DURATION} s per run, median of ${REPETITIONS} (range in brackets). Rejection floods: one static request (wrk builds it once, no Lua per request) for every server; accept floods: the same cycling script of signed requests for every server. Receiver logs to a file at info.\n`,
      '| per second | adnanh/webhook | bare node:http | receiver, 1 process | receiver, `workers: 2` | 1 process ÷ webhook | 1 process ÷ bare Node | `workers: 2` ÷ webhook |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      `| rejected, Standard Webhooks / HMAC (bad signature) | ${rate(webhookReject)} | ${rate(bareReject)} | ${rate(one.rejectStandard.result)} | ${rate(two.rejectStandard.result)} | ${ratio(one.rejectStandard.result, webhookReject)} | ${ratio(one.rejectStandard.result, bareReject)} | ${ratio(two.rejectStandard.result, webhookReject)} |`,
      `| rejected, seed scheme (bad signature) | | | ${rate(one.rejectSeed.result)} | ${rate(two.rejectSeed.result)} | ${ratio(one.rejectSeed.result, webhookReject)} | ${ratio(one.rejectSeed.result, bareReject)} | ${ratio(two.rejectSeed.result, webhookReject)} |`,
      `| accepted (unique signed deliveries; the receiver's command \`sleep 1\`) | ${rate(webhookAccept)} | ${rate(bareAccept)} | ${rate(one.accept.result)} | ${rate(two.accept.result)} | ${ratio(one.accept.result, webhookAccept)} | ${ratio(one.accept.result, bareAccept)} | ${ratio(two.accept.result, webhookAccept)} |`,
      '',
      `Answers (median run): webhook rejections ${webhookReject?.errors ?? '—'} non-2xx; receiver 1 process rejections ${one.rejectStandard.result.errors} / ${one.rejectSeed.result.errors} non-2xx; accepts webhook ${JSON.stringify(webhookAccept?.statuses)}, receiver ${JSON.stringify(one.accept.result.statuses)}, \`workers: 2\` ${JSON.stringify(two.accept.result.statuses)}.`,
      '',
      '| under this flood | RSS, 1 process (peak of samples) | valid delivery p50 / p99, 1 process | RSS, `workers: 2` (sum) | p50 / p99, `workers: 2` | valid deliveries answered (1 process) |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    for (const [label, pick] of [
      ['forged Standard deliveries', (f: typeof one) => f.rejectStandard],
      ['forged seed deliveries', (f: typeof one) => f.rejectSeed],
      ['200 unfinished 4.9 MiB bodies', (f: typeof one) => f.bodies],
      ['unique valid deliveries', (f: typeof one) => f.accept],
    ] as const) {
      const a = pick(one);
      const b = pick(two);
      out.push(
        `| ${label} | ${a.rssMiB.toFixed(0)} MiB | ${a.p50Ms.toFixed(1)} / ${a.p99Ms.toFixed(1)} ms | ${b.rssMiB.toFixed(0)} MiB | ${b.p50Ms.toFixed(1)} / ${b.p99Ms.toFixed(1)} ms | ${JSON.stringify(a.answers)} |`,
      );
    }
    out.push(
      '',
      `Unfinished-body flood: ${one.bodies.result.refused} (1 process) and ${two.bodies.result.refused} (\`workers: 2\`) connections answered 503 past the body budget.`,
      '',
      `Seed check, 1000 rounds, in-process: ${seed.perCheckUs.toFixed(0)} µs; 1000 × SHA-256 of 64 bytes: ${seed.baselineUs.toFixed(0)} µs (ratio ${(seed.perCheckUs / seed.baselineUs).toFixed(2)}). Burst, 1 delivery then 30 more while its 2 s command runs: ${burstResult}.`,
    );
    out.push(...liveLogFigures);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await (receiver as Receiver | undefined)?.stop();
    for (const server of servers) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`receiver bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
