/**
 * Receiver figures (issue 2): rejections/s for both schemes, accepted Standard deliveries/s, the
 * seed-check cost against plain SHA-256, a burst during a long run, and the receiver's memory.
 * The receiver runs in its own process (`triggler serve`); autocannon loads it from this one.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { hash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { request } from 'undici';
import { receiverBuildOptions } from '../lib/constructs/receiver-host/receiver-bundle';
import { buildDeliveryRequest, seedSignature, standardWebhookHeaders } from '../protocol';
import type { RunRecord } from '../receiver/runs/run-record';

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

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  return port;
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
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** RSS of the receiver: its primary and, in cluster mode, its worker processes (not the commands it runs). */
function rssMiB(pid: number): { total: number; peak: number; each: number[] } {
  const kb = (p: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
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
  statuses: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
}

/**
 * wrk (C, one thread) sends raw HTTP requests read from a file, one after another, so the load
 * generator spends no time signing; a Lua `done` hook prints the counts as JSON.
 */
function load(url: string, rawRequests: string[], dir: string): LoadResult {
  const requestsFile = join(dir, `requests-${Date.now()}.txt`);
  // One request a line, its CRLFs written as \x01 (which no request holds).
  writeFileSync(requestsFile, rawRequests.map((r) => `${r.replaceAll('\r\n', '\x01')}\n`).join(''));
  const script = join(dir, 'load.lua');
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
  io.write(string.format('WRK_RESULT {"requests": %d, "seconds": %f, "p50": %f, "p99": %f, "statuses": {%s}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(parts, ', ')))
end
`,
  );
  const run = spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${DURATION}s`, '-s', script, url], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`wrk failed: ${run.stderr || run.error?.message}`);
  const line = run.stdout.split('\n').find((l) => l.startsWith('WRK_RESULT '));
  if (!line) throw new Error(`wrk printed no result:\n${run.stdout}`);
  const result = JSON.parse(line.slice('WRK_RESULT '.length)) as { requests: number; seconds: number; p50: number; p99: number; statuses: Record<string, number> };
  return { perSecond: result.requests / result.seconds, statuses: result.statuses, p50Ms: result.p50, p99Ms: result.p99 };
}

/** Repeats a load (fresh requests each time) and keeps the median run, with the spread. */
function loadMedian(url: string, makeRequests: (repetition: number) => string[], dir: string): LoadResult & { spread: string } {
  const results: LoadResult[] = [];
  for (let repetition = 0; repetition < REPETITIONS; repetition++) results.push(load(url, makeRequests(repetition), dir));
  results.sort((a, b) => a.perSecond - b.perSecond);
  const median = results[Math.floor(results.length / 2)]!;
  return { ...median, spread: `${Math.round(results[0]!.perSecond)}–${Math.round(results.at(-1)!.perSecond)}` };
}

function statusCounts(result: LoadResult): string {
  return Object.entries(result.statuses).map(([status, count]) => `${status}: ${count}`).join(', ');
}

function rawHttp(method: string, path: string, headers: Record<string, string>, body = ''): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines.join('\r\n')}${lines.length ? '\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
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

/**
 * The same flood of badly signed requests against adnanh/webhook (Debian package `webhook`), with
 * an HMAC-SHA256 rule on the body, so both figures come from this machine on this day.
 */
async function adnanhWebhookRejections(dir: string): Promise<string> {
  if (spawnSync('sh', ['-c', 'command -v webhook']).status !== 0) return 'not measured: `apt-get install webhook` to compare';
  const port = await freePort();
  const hooks = [
    {
      id: 'bench',
      'execute-command': '/bin/true',
      'trigger-rule-mismatch-http-response-code': 401,
      'trigger-rule': { match: { type: 'payload-hmac-sha256', secret: randomBytes(24).toString('hex'), parameter: { source: 'header', name: 'X-Hub-Signature-256' } } },
    },
  ];
  writeFileSync(join(dir, 'hooks.json'), JSON.stringify(hooks));
  const log = openSync(join(dir, 'webhook.log'), 'w');
  const child = spawn('webhook', ['-hooks', join(dir, 'hooks.json'), '-ip', '127.0.0.1', '-port', String(port)], { stdio: ['ignore', log, log] });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const body = '{"ref":"refs/heads/main"}';
    const result = load(`http://127.0.0.1:${port}`, [rawHttp('POST', '/hooks/bench', { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }, body)], dir);
    return `${Math.round(result.perSecond)} rejections/s (${statusCounts(result)})`;
  } finally {
    child.kill('SIGTERM');
  }
}

type MedianResult = LoadResult & { spread: string };

interface FloodFigures {
  rejectStandard: MedianResult;
  rejectSeed: MedianResult;
  acceptTrue: MedianResult;
  acceptSleep: MedianResult;
  rssAfterRejects: ReturnType<typeof rssMiB>;
  rssAfterAccepts: ReturnType<typeof rssMiB>;
}

function signedDeliveries(count: number, tag: string): string[] {
  const requests: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `msg_${tag}_${i}`;
    const delivery = buildDeliveryRequest({
      scheme: 'standard',
      token: TOKEN,
      id,
      timestamp: now(),
      data: { repository: 'bench', branch: 'main', ref: 'refs/heads/main', commit: i.toString(16).padStart(40, '0'), source: 'bench' },
    });
    requests.push(rawHttp('POST', delivery.path, delivery.headers, delivery.body));
  }
  return requests;
}

/** The floods against one receiver set-up: forged both ways, then unique valid deliveries. */
async function flood(dir: string, bundle: string, workers: number): Promise<FloodFigures> {
  let receiver = await startReceiver(dir, bundle, 'true', workers);
  try {
    const badBody = '{"data":{}}';
    const badStandard = standardWebhookHeaders(`whsec_${randomBytes(32).toString('base64')}`, 'msg_forged', now(), badBody);
    const rejectStandard = loadMedian(receiver.url, () => [rawHttp('POST', '/hooks/bench/main', { ...badStandard, 'content-type': 'application/json' }, badBody)], dir);
    const rejectSeed = loadMedian(receiver.url, () => [rawHttp('GET', '/legacy-master', { 'x-signature': 'ab'.repeat(32), 'x-signature-timestamp': String(now()) })], dir);
    const rssAfterRejects = rssMiB(receiver.child.pid!);
    // Unique ids: more signed requests than a run can send, each used once.
    const acceptTrue = loadMedian(receiver.url, (rep) => signedDeliveries(16_000 * DURATION, `true${workers}_${rep}`), dir);
    await receiver.stop();
    receiver = await startReceiver(dir, bundle, 'sleep 1', workers);
    const acceptSleep = loadMedian(receiver.url, (rep) => signedDeliveries(16_000 * DURATION, `sleep${workers}_${rep}`), dir);
    const rssAfterAccepts = rssMiB(receiver.child.pid!);
    return { rejectStandard, rejectSeed, acceptTrue, acceptSleep, rssAfterRejects, rssAfterAccepts };
  } finally {
    await receiver.stop();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'triggler-bench-'));
  const out: string[] = [
    '\n## Receiver (issue 2)\n',
    `The receiver as it ships (one esbuild bundle run by \`node\`), logging every delivery (one JSON line each) to a file, as it would to journald. Load: wrk, one thread, ${CONNECTIONS} connections, ${DURATION} s per run, on the same 2-core machine; each figure is the median of ${REPETITIONS} runs (range in brackets, then the median run's answers). \`workers\` is the receiver config's number of processes taking deliveries.\n`,
  ];
  let receiver: Receiver | undefined;
  try {
    const bundle = bundleReceiver(dir);
    const one = await flood(dir, bundle, 1);
    const two = await flood(dir, bundle, 2);
    const seed = seedCheckCost();
    const row = (label: string, pick: (f: FloodFigures) => MedianResult, target: string) =>
      `| ${label} | ${Math.round(pick(two).perSecond)} (${pick(two).spread}; ${statusCounts(pick(two))}) | ${Math.round(pick(one).perSecond)} (${pick(one).spread}; ${statusCounts(pick(one))}) | ${target} |`;
    const mib = (r: ReturnType<typeof rssMiB>) => `${r.total.toFixed(0)} MiB${r.each.length > 1 ? ` (${r.each.map((m) => m.toFixed(0)).join(' + ')})` : ''}`;

    out.push('| figure | workers: 2 | workers: 1 | target |', '| --- | --- | --- | --- |');
    out.push(row('rejected deliveries/s, Standard Webhooks (bad signature)', (f) => f.rejectStandard, '≥ 12,000'));
    out.push(row('rejected deliveries/s, seed scheme (bad signature, 1000 rounds)', (f) => f.rejectSeed, '≥ 12,000'));
    out.push(row('accepted Standard deliveries/s, unique ids, one trigger, command `sleep 1`', (f) => f.acceptSleep, '≥ 6,000'));
    out.push(row('the same with command `true` (a new run spawned back to back)', (f) => f.acceptTrue, ''));
    out.push(`| latency p50 / p99, accepted (\`sleep 1\`) | ${two.acceptSleep.p50Ms.toFixed(1)} / ${two.acceptSleep.p99Ms.toFixed(1)} ms | ${one.acceptSleep.p50Ms.toFixed(1)} / ${one.acceptSleep.p99Ms.toFixed(1)} ms | |`);
    out.push(`| receiver RSS after the reject floods | ${mib(two.rssAfterRejects)} | ${mib(one.rssAfterRejects)} | ≤ 150 MB |`);
    out.push(`| receiver RSS after the accept flood (sum of peaks) | ${mib(two.rssAfterAccepts)} (${two.rssAfterAccepts.peak.toFixed(0)}) | ${mib(one.rssAfterAccepts)} (${one.rssAfterAccepts.peak.toFixed(0)}) | ≤ 150 MB |`);
    out.push(`| seed check, 1000 rounds, in-process | ${seed.perCheckUs.toFixed(0)} µs; 1000 × SHA-256 of 64 bytes: ${seed.baselineUs.toFixed(0)} µs; ratio ${(seed.perCheckUs / seed.baselineUs).toFixed(2)} | | ≤ 2× |`);

    // Burst: 30 deliveries to one trigger while a 2 s command runs.
    receiver = await startReceiver(dir, bundle, 'sleep 2', 1);
    const commits: string[] = [];
    for (let i = 0; i < 31; i++) {
      const commit = i.toString(16).padStart(40, '0');
      commits.push(commit);
      const delivery = buildDeliveryRequest({ scheme: 'standard', token: TOKEN, id: `msg_burst_${i}`, timestamp: now(), data: { repository: 'bench', branch: 'main', ref: 'refs/heads/main', commit, source: 'bench' } });
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
    out.push(
      `| burst: 1 delivery, then 30 more while its 2 s command runs | ${runs.length} runs; the last carried ${last?.deliveries} deliveries and commit ${last?.commit} (newest: ${commits.at(-1)}) | | ≤ 2 runs, last = newest |`,
    );
    out.push('', `adnanh/webhook ${spawnSync('webhook', ['-version'], { encoding: 'utf8' }).stdout?.trim() ?? ''}, the same forged flood (HMAC-SHA256 rule on the body), same machine: ${await adnanhWebhookRejections(dir)}.`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await receiver?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`receiver bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
