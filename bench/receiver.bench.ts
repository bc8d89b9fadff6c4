/**
 * Receiver figures beside bare `node:http` (the ceiling for Node here) and adnanh/webhook (and, for
 * forged Standard Webhooks and accepts, the floor: node:http doing only what such a request must), for the
 * receiver users run: the packed CLI's serve bundle (`node dist/triggler-serve.js serve`, what `triggler serve` runs), built as `npm pack`
 * builds it. Every load is wrk in the same shape for every server (bench/wrk-load.ts): one
 * static request for the rejection floods, pre-signed unique deliveries for the accept flood.
 * Each flood runs in ROUNDS rounds, the servers one after another in each round (alternating
 * pairs), every server fresh each time; ratios are taken within a round and their median reported.
 * For the receiver, each run also gives its RSS at rest, at its peak and after the flood, and the
 * latency of valid deliveries sent alongside. Then the body flood, the live log under viewers, the
 * seed-check cost and a burst during a long run. Prints markdown to paste into BENCHMARKS.md.
 *
 *   BENCH_SECONDS (10)          each rejection-by-seed, accept and body flood, each live-log phase
 *   BENCH_FORGED_SECONDS (30)   the forged Standard Webhooks flood
 *   BENCH_ROUNDS (3)            rounds of alternating runs (the ratios are medians of these)
 *   BENCH_WORKERS (1)           the receiver's `workers`
 *   BENCH_WRK_THREADS (1)       wrk threads; each sends its own share of the unique deliveries
 *   BENCH_ACCEPT_IDS_PER_SECOND (30000)  unique deliveries made per second of an accept flood
 *   BENCH_SCENARIO              one scenario alone: forged-standard, forged-seed, accept (its floods' tables only) or live-log
 *   BENCH_PIN=0                 wrk and the servers unpinned, sharing every core (bench/cpu-pinning.ts)
 */
import { createHmac, hash, randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { buildDeliveryRequest, seedSignature, standardWebhookHeaders } from '../protocol';
import type { RunRecord } from '../receiver';
import {
  type BenchReceiver,
  buildReceiverCli,
  type ComparedServer,
  type FloorMode,
  cpuSeconds,
  type ReceiverSetup,
  rssMiB,
  startBareNode,
  startReceiver,
  startFloor,
  startWebhook,
  webhookVersion,
} from './compared-servers';
import { pinLoadHere, pinningDescription } from './cpu-pinning';
import { probePath, runBench } from './support';
import { type LoadResult, rawHttp, staticLoad, uniqueLoad, type WrkSettings } from './wrk-load';

const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const FORGED_SECONDS = Number(process.env.BENCH_FORGED_SECONDS ?? 30);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);
const WRK_THREADS = Number(process.env.BENCH_WRK_THREADS ?? 1);
const ACCEPT_IDS_PER_SECOND = Number(process.env.BENCH_ACCEPT_IDS_PER_SECOND ?? 30_000);
const CONNECTIONS = 32;
/** How long a receiver is left alone before its RSS is read at rest, and after a flood. */
const SETTLE_MS = 1000;
const TOKEN = `whsec_${randomBytes(32).toString('base64')}`;
const SEED_TOKEN = randomBytes(24).toString('hex');
const WEBHOOK_SECRET = randomBytes(24).toString('hex');
const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Read before the bench pins itself to one core, which `nproc` would then report. */
const NPROC = spawnSync('nproc', { encoding: 'utf8' }).stdout.trim();
let setup: ReceiverSetup;
const wrk = (seconds: number): WrkSettings => ({ scratch: setup.dir, threads: WRK_THREADS, connections: CONNECTIONS, seconds });

function standardDelivery(id: string, commit: string) {
  return buildDeliveryRequest({
    scheme: 'standard',
    token: TOKEN,
    id,
    timestamp: now(),
    data: { repository: 'bench', branch: 'main', ref: 'refs/heads/main', commit, source: 'bench' },
  });
}

type Contender = 'receiver' | 'bare' | 'webhook' | 'floor';

interface StaticRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

interface Flood {
  label: string;
  seconds: number;
  /** The receiver's command while it runs. */
  command: string;
  /** What bare node:http answers. */
  bareStatus: number;
  /** The node:http floor the flood also runs against: the least a server must still do for its requests. */
  floor?: FloorMode;
  load(server: ComparedServer, contender: Contender, tag: string): Promise<LoadResult>;
  /** For a static load: its request, sent once to see what each server answers. */
  request?(contender: Contender): StaticRequest;
}

const forgedStandard: Flood = {
  label: `forged Standard Webhooks deliveries (bad signature), ${FORGED_SECONDS} s`,
  seconds: FORGED_SECONDS,
  command: 'true',
  bareStatus: 401,
  floor: 'refusal',
  request(contender) {
    if (contender === 'webhook') {
      const headers = { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` };
      return { method: 'POST', path: '/hooks/bench', headers, body: '{"ref":"refs/heads/main"}' };
    }
    const body = '{"data":{}}';
    const forged = standardWebhookHeaders(`whsec_${randomBytes(32).toString('base64')}`, 'msg_forged', now(), body);
    return { method: 'POST', path: '/hooks/bench/main', headers: { ...forged, 'content-type': 'application/json' }, body };
  },
  load(server, contender) {
    return staticLoad(wrk(this.seconds), server.url, this.request!(contender));
  },
};

const forgedSeed: Flood = {
  label: `forged seed-scheme deliveries (bad signature), ${DURATION} s`,
  seconds: DURATION,
  command: 'true',
  bareStatus: 401,
  request(contender) {
    const headers = { 'x-signature': 'ab'.repeat(32), 'x-signature-timestamp': String(now()) };
    return { method: 'GET', path: contender === 'webhook' ? '/hooks/bench' : '/legacy-master', headers };
  },
  load(server, contender) {
    return staticLoad(wrk(this.seconds), server.url, this.request!(contender));
  },
};

/** Signed GitHub-style deliveries for webhook's HMAC rule, each body different, like ours. */
function hubSignedDelivery(index: number, tag: string): string {
  const body = JSON.stringify({ ref: 'refs/heads/main', after: index.toString(16).padStart(40, '0'), id: `msg_${tag}_${index}` });
  const signature = `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`;
  return rawHttp('POST', '/hooks/bench', { 'content-type': 'application/json', 'x-hub-signature-256': signature }, body);
}

const accept: Flood = {
  label: `unique valid deliveries (the receiver's command \`sleep 1\`), ${DURATION} s`,
  seconds: DURATION,
  command: 'sleep 1',
  bareStatus: 202,
  floor: 'accept',
  load(server, contender, tag) {
    const count = ACCEPT_IDS_PER_SECOND * this.seconds;
    const make =
      contender === 'webhook'
        ? (i: number) => hubSignedDelivery(i, tag)
        : (i: number) => {
            const delivery = standardDelivery(`msg_${tag}_${i}`, i.toString(16).padStart(40, '0'));
            return rawHttp('POST', delivery.path, delivery.headers, delivery.body);
          };
    // The receiver and the floor must never see an id twice (a repeat is a cheaper 200); the others remember none.
    return uniqueLoad(wrk(this.seconds), server.url, count, make, {
      wrap: contender === 'bare' || contender === 'webhook',
      stopPath: '/healthz',
    });
  },
};

/** A load and what it cost the server: CPU time (user + system) per request answered. */
interface MeasuredLoad extends LoadResult {
  cpuUsPerRequest: number;
}

async function measured(server: ComparedServer, load: () => Promise<LoadResult>): Promise<MeasuredLoad> {
  const before = cpuSeconds(server.pid);
  const result = await load();
  return { ...result, cpuUsPerRequest: ((cpuSeconds(server.pid) - before) * 1e6) / result.requests };
}

interface ReceiverRun {
  load: MeasuredLoad;
  restMiB: number;
  peakMiB: number;
  afterMiB: number;
  p50Ms: number;
  p99Ms: number;
  answers: Record<string, number>;
}

interface Round {
  receiver: ReceiverRun;
  bare: MeasuredLoad;
  webhook?: MeasuredLoad;
  floor?: MeasuredLoad;
}

/**
 * While a flood runs: the receiver's RSS every 100 ms (the largest kept) and the latency of a
 * valid delivery sent every 20 ms, each with a new id.
 */
function alongside(
  receiver: BenchReceiver,
  tag: string,
  probe = true,
): { stop(): Promise<{ rssMiB: number; p50Ms: number; p99Ms: number; answers: Record<string, number> }> } {
  let running = probe;
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, rssMiB(receiver.pid) || 0)), 100);
  const latencies: number[] = [];
  const answers: Record<string, number> = {};
  const sender = (async () => {
    for (let i = 0; running; i++) {
      const delivery = standardDelivery(`msg_valid_${tag}_${i}`, 'abc123');
      const start = process.hrtime.bigint();
      let answer: string;
      try {
        const response = await request(receiver.url + delivery.path, { method: 'POST', headers: delivery.headers, body: delivery.body! });
        await response.body.dump();
        answer = String(response.statusCode);
      } catch (error) {
        answer = (error as NodeJS.ErrnoException).code ?? 'error';
      }
      answers[answer] = (answers[answer] ?? 0) + 1;
      latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
      await sleep(20);
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
 * A fresh receiver under `flood`: RSS at rest, during and after; then the same flood again with a
 * valid delivery every 20 ms beside it, for their latency. The throughput is the first flood's,
 * under the same load shape as bare Node and webhook (the valid deliveries, and the runs they
 * start, would take CPU from the receiver alone).
 */
async function receiverRun(flood: Flood, tag: string): Promise<ReceiverRun> {
  const receiver = await startReceiver({ ...setup, command: flood.command, workers: WORKERS });
  try {
    await sleep(SETTLE_MS);
    const restMiB = rssMiB(receiver.pid);
    const sampled = alongside(receiver, tag, false);
    const load = await measured(receiver, () => flood.load(receiver, 'receiver', tag));
    const peak = await sampled.stop();
    await sleep(SETTLE_MS);
    const afterMiB = rssMiB(receiver.pid);
    const side = alongside(receiver, `${tag}-probe`);
    await flood.load(receiver, 'receiver', `${tag}-probe`);
    const during = await side.stop();
    return {
      load,
      restMiB,
      peakMiB: peak.rssMiB,
      afterMiB,
      p50Ms: during.p50Ms,
      p99Ms: during.p99Ms,
      answers: during.answers,
    };
  } finally {
    await receiver.stop();
  }
}

function startOther(flood: Flood, contender: Exclude<Contender, 'receiver'>): Promise<ComparedServer> {
  if (contender === 'bare') return startBareNode(flood.bareStatus);
  if (contender === 'floor') return startFloor(flood.floor!, TOKEN, setup.dir);
  return startWebhook(setup.dir, WEBHOOK_SECRET);
}

async function otherRun(flood: Flood, contender: Exclude<Contender, 'receiver'>, tag: string): Promise<MeasuredLoad> {
  const server = await startOther(flood, contender);
  try {
    return await measured(server, () => flood.load(server, contender, tag));
  } finally {
    await server.stop();
  }
}

/** What each server answers the flood's request (sent once, to a fresh server): the status and the start of the body. */
async function answersTo(flood: Flood, withWebhook: boolean): Promise<string> {
  if (!flood.request) return '';
  const seen: string[] = [];
  for (const contender of ['receiver', 'bare', ...(withWebhook ? ['webhook'] : []), ...(flood.floor ? ['floor'] : [])] as Contender[]) {
    const server =
      contender === 'receiver'
        ? await startReceiver({ ...setup, command: flood.command, workers: WORKERS })
        : await startOther(flood, contender);
    try {
      const sent = flood.request(contender);
      const response = await request(server.url + sent.path, {
        method: sent.method as 'GET' | 'POST',
        headers: sent.headers,
        ...(sent.body === undefined ? {} : { body: sent.body }),
      });
      const body = (await response.body.text()).trim().slice(0, 60);
      seen.push(`${server.name} ${response.statusCode} \`${body}\``);
    } finally {
      await server.stop();
    }
  }
  return seen.join('; ');
}

async function rounds(flood: Flood, withWebhook: boolean, key: string): Promise<Round[]> {
  const all: Round[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const receiver = await receiverRun(flood, `${key}r${round}`);
    const bare = await otherRun(flood, 'bare', `${key}b${round}`);
    const webhook = withWebhook ? await otherRun(flood, 'webhook', `${key}w${round}`) : undefined;
    const floor = flood.floor ? await otherRun(flood, 'floor', `${key}f${round}`) : undefined;
    all.push({ receiver, bare, ...(webhook ? { webhook } : {}), ...(floor ? { floor } : {}) });
  }
  return all;
}

function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const range = (values: number[], digits = 0) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `${sorted[0]!.toFixed(digits)}–${sorted.at(-1)!.toFixed(digits)}`;
};
const rateCell = (values: number[]) => (values.length ? `${Math.round(median(values))} (${range(values)})` : 'not measured');
const ratioCell = (values: number[]) => (values.length ? `${median(values).toFixed(2)}× (${range(values, 2)})` : '—');
const mib = (value: number) => `${value.toFixed(0)} MiB`;
const met = (ok: boolean) => (ok ? 'yes' : '**no**');

/**
 * The flood that once took the receiver past 1 GiB: 200 connections, each sending all but the last
 * byte of a 4.9 MiB body with a fresh timestamp and a forged signature, opened again as soon as the
 * receiver closes one, for the length of a run. In its own process, so that writing it does not
 * slow the bench's own event loop, which times the valid deliveries.
 */
function unfinishedBodies(receiver: BenchReceiver): Promise<{ refused: number }> {
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

async function burst(): Promise<string> {
  const receiver = await startReceiver({ ...setup, command: 'sleep 2', workers: 1 });
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
  receiver: BenchReceiver,
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
async function liveLog(): Promise<{ lines: string[]; readersP99Ms: number }> {
  const seconds = 3 * DURATION + 10;
  // One process writing 16 KiB lines every 15 ms (a shell loop spawning per line cannot keep the rate on a busy host).
  const writer = `const line = Buffer.alloc(16384, 120); line[16383] = 10; const end = Date.now() + ${seconds * 1000}; const t = setInterval(() => { process.stdout.write(line); if (Date.now() > end) clearInterval(t); }, 15);`;
  const noisy = `${JSON.stringify(process.execPath)} -e ${JSON.stringify(writer)}`;
  const receiver = await startReceiver({ ...setup, command: noisy, workers: 1 });
  try {
    const first = standardDelivery('msg_live_first', 'f'.repeat(40));
    const answer = await request(receiver.url + first.path, { method: 'POST', headers: first.headers, body: first.body! });
    const runId = ((await answer.body.json()) as { run: { id: string } }).run.id;
    const phase = async (tag: string, reading: number, silent: number) => {
      const side = alongside(receiver, `live_${tag}`);
      const viewers = reading + silent > 0 ? await liveLogViewers(receiver, runId, reading, silent).done : undefined;
      if (!viewers) await new Promise((r) => setTimeout(r, DURATION * 1000));
      const figures = await side.stop();
      return { ...figures, rssAfterMiB: rssMiB(receiver.pid), viewers };
    };
    const none = await phase('none', 0, 0);
    const readers = await phase('reading', 50, 0);
    const silent = await phase('silent', 0, 50);
    const row = (label: string, f: typeof none) =>
      `| ${label} | ${f.rssMiB.toFixed(0)} MiB | ${f.rssAfterMiB.toFixed(0)} MiB | ${f.p50Ms.toFixed(1)} / ${f.p99Ms.toFixed(1)} ms | ${JSON.stringify(f.answers)} | ${f.viewers ? `${(f.viewers.bytesRead / 2 ** 20 / 50).toFixed(1)} MiB read each; ${f.viewers.following} still following at the end, ${f.viewers.ended} told the run ended, ${f.viewers.dropped} dropped, ${f.viewers.refused} refused` : '—'} |`;
    const lines = [
      '',
      `Live log: one run printing 16 KiB lines every 15 ms (about 1 MiB/s; the log so far, sent on arrival, is 1 MiB), ${DURATION} s per phase (then 2 s more of reading what is left), the viewers in a process of their own; valid deliveries sent alongside every 20 ms.`,
      '',
      '| viewers of the run | RSS (peak of samples) | RSS after | valid delivery p50 / p99 | valid deliveries answered | what the viewers saw |',
      '| --- | --- | --- | --- | --- | --- |',
      row('none', none),
      row('50 reading', readers),
      row('50 never reading', silent),
    ];
    return { lines, readersP99Ms: readers.p99Ms };
  } finally {
    await receiver.stop();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'triggler-bench-'));
  try {
    pinLoadHere();
    const cli = await buildReceiverCli(dir);
    setup = { cli, dir, command: 'true', workers: WORKERS, tokens: { standard: TOKEN, seed: SEED_TOKEN } };
    const scenario = process.env.BENCH_SCENARIO;
    if (scenario === 'live-log') {
      process.stdout.write(`${pinningDescription()}.\n${(await liveLog()).lines.join('\n')}\n`);
      return;
    }
    const webhook = webhookVersion();
    const floods = [
      { key: 'std', scenario: 'forged-standard', flood: forgedStandard },
      { key: 'seed', scenario: 'forged-seed', flood: forgedSeed },
      { key: 'acc', scenario: 'accept', flood: accept },
    ].filter((flood) => scenario === undefined || flood.scenario === scenario);
    if (floods.length === 0) throw new Error(`BENCH_SCENARIO=${scenario}: not one of forged-standard, forged-seed, accept, live-log`);
    const measured: MeasuredFlood[] = [];
    for (const { key, flood } of floods) {
      const answers = await answersTo(flood, webhook !== undefined);
      measured.push({ key, flood, answers, rounds: await rounds(flood, webhook !== undefined, key) });
    }
    if (scenario !== undefined) {
      process.stdout.write(`${floodTables(measured, webhook).join('\n')}\n`);
      return;
    }
    const bodies = await (async () => {
      const receiver = await startReceiver({ ...setup, command: 'true', workers: WORKERS });
      try {
        await sleep(SETTLE_MS);
        const restMiB = rssMiB(receiver.pid);
        const side = alongside(receiver, 'bodies');
        const result = await unfinishedBodies(receiver);
        const during = await side.stop();
        await sleep(SETTLE_MS);
        return { ...result, ...during, restMiB, afterMiB: rssMiB(receiver.pid) };
      } finally {
        await receiver.stop();
      }
    })();
    const seed = seedCheckCost();
    const burstResult = await burst();
    const live = await liveLog();
    process.stdout.write(`${report(measured, bodies, webhook, { seed, burstResult, live }).join('\n')}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface MeasuredFlood {
  key: string;
  flood: Flood;
  rounds: Round[];
  answers: string;
}

const perSecond = (rounds: Round[], pick: (round: Round) => LoadResult | undefined) =>
  rounds.flatMap((round) => (pick(round) ? [pick(round)!.perSecond] : []));
const ratios = (rounds: Round[], pick: (round: Round) => LoadResult | undefined) =>
  rounds.flatMap((round) => (pick(round) ? [round.receiver.load.perSecond / pick(round)!.perSecond] : []));
const cpuPerRequest = (rounds: Round[], pick: (round: Round) => MeasuredLoad | undefined) =>
  rounds.flatMap((round) => (pick(round) ? [pick(round)!.cpuUsPerRequest] : []));
const cpuRatios = (rounds: Round[], pick: (round: Round) => MeasuredLoad | undefined) =>
  rounds.flatMap((round) => (pick(round) ? [round.receiver.load.cpuUsPerRequest / pick(round)!.cpuUsPerRequest] : []));

/** The tables of the floods: rates, CPU per request, answers, and the receiver's RSS and valid-delivery latency under each. */
function floodTables(measured: MeasuredFlood[], webhook: string | undefined): string[] {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} (\`nproc\` ${NPROC}, \`uname -m\` ${spawnSync('uname', ['-m'], { encoding: 'utf8' }).stdout.trim()}), Node.js ${process.version}, ${webhook ?? 'no webhook installed'}, ${new Date().toISOString().slice(0, 10)}`;
  const out = [
    '\n## Receiver, side by side\n',
    `${machine}. ${pinningDescription()}. The receiver is the packed CLI's serve bundle (\`node dist/triggler-serve.js serve\`, \`workers: ${WORKERS}\`), logging JSON lines at info to a file. wrk ${WRK_THREADS} thread(s), ${CONNECTIONS} connections; ${ROUNDS} rounds, each running the receiver, bare \`node:http\` and webhook (and, for forged Standard Webhooks and for accepts, the node:http floor below) one after another on the same load, each fresh. Cells: the median (range); ratios are taken within each round, then their median (range). Rejection floods: one static request (no Lua per request); accept flood: pre-signed unique deliveries, each wrk thread its own share, none sent twice to the receiver.\n`,
    '| per second | receiver | bare node:http | adnanh/webhook | receiver ÷ bare | receiver ÷ webhook |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const { flood, rounds } of measured) {
    out.push(
      `| ${flood.label} | ${rateCell(perSecond(rounds, (r) => r.receiver.load))} | ${rateCell(perSecond(rounds, (r) => r.bare))} | ${rateCell(perSecond(rounds, (r) => r.webhook))} | ${ratioCell(ratios(rounds, (r) => r.bare))} | ${ratioCell(ratios(rounds, (r) => r.webhook))} |`,
    );
  }
  out.push(
    '',
    "CPU time per request answered: the server's user + system time over the flood (/proc/PID/stat, its workers included, not the commands it starts nor webhook's forks) ÷ the requests wrk counted; far less disturbed by other work on the machine than the rates.",
    '',
    '| µs of CPU per request | receiver | bare node:http | adnanh/webhook | receiver ÷ bare | receiver ÷ webhook |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  const usCell = (values: number[]) => (values.length ? `${median(values).toFixed(1)} (${range(values, 1)})` : 'not measured');
  for (const { flood, rounds } of measured) {
    out.push(
      `| ${flood.label} | ${usCell(cpuPerRequest(rounds, (r) => r.receiver.load))} | ${usCell(cpuPerRequest(rounds, (r) => r.bare))} | ${usCell(cpuPerRequest(rounds, (r) => r.webhook))} | ${ratioCell(cpuRatios(rounds, (r) => r.bare))} | ${ratioCell(cpuRatios(rounds, (r) => r.webhook))} |`,
    );
  }
  const floored = measured.filter(({ rounds }) => rounds.some((r) => r.floor));
  if (floored.length > 0) {
    out.push(
      '',
      "The floors on node:http, in the same rounds: the least a server must still do for each request of the flood, and nothing else (no routing, header checks, time window, runs, counting, recording or log; bench/probes/floor-http.js). For forged Standard Webhooks: read the body, HMAC it, compare in constant time, answer 401 with a body made once. For accepts: that, then parse the body, remember the id, append a line to a journal opened O_DSYNC (deliveries arriving during a write share the next one) and answer 202 once it is on the disk. Receiver ÷ floor is what the receiver's own work costs; floor ÷ bare and floor ÷ webhook are what the work itself costs on node:http.",
      '',
      '| flood | floor per second | floor µs of CPU per request | receiver ÷ floor | floor ÷ bare | floor ÷ webhook |',
      '| --- | --- | --- | --- | --- | --- |',
    );
    const floorRatios = (rounds: Round[], pick: (round: Round) => LoadResult | undefined) =>
      rounds.flatMap((round) => (round.floor && pick(round) ? [round.floor.perSecond / pick(round)!.perSecond] : []));
    for (const { flood, rounds } of floored) {
      out.push(
        `| ${flood.label} | ${rateCell(perSecond(rounds, (r) => r.floor))} | ${usCell(cpuPerRequest(rounds, (r) => r.floor))} | ${ratioCell(ratios(rounds, (r) => r.floor))} | ${ratioCell(floorRatios(rounds, (r) => r.bare))} | ${ratioCell(floorRatios(rounds, (r) => r.webhook))} |`,
      );
    }
  }
  out.push('', 'What each server answered:');
  for (const { flood, rounds, answers } of measured) {
    const counts = rounds.map((r) =>
      r.receiver.load.statuses ? JSON.stringify(r.receiver.load.statuses) : `${r.receiver.load.errors} non-2xx`,
    );
    const ranOut = rounds.reduce((sum, r) => sum + (r.receiver.load.exhausted ?? 0), 0);
    const floorCounts = rounds.flatMap((r) => (r.floor?.statuses ? [JSON.stringify(r.floor.statuses)] : []));
    const floorRanOut = rounds.reduce((sum, r) => sum + (r.floor?.exhausted ?? 0), 0);
    out.push(
      `- ${flood.label}: ${answers ? `${answers}; ` : ''}receiver per round ${counts.join(', ')}${floorCounts.length ? `; floor per round ${floorCounts.join(', ')}` : ''}${ranOut > 0 ? `; **the receiver's wrk ran out of unique deliveries ${ranOut} times: raise BENCH_ACCEPT_IDS_PER_SECOND, its figure is a lower bound**` : ''}${floorRanOut > 0 ? `; **the floor's wrk ran out of unique deliveries ${floorRanOut} times: its figure is a lower bound**` : ''}.`,
    );
  }
  out.push(
    '',
    `| the receiver under this flood | RSS at rest | RSS peak (samples every 100 ms) | RSS ${SETTLE_MS / 1000} s after | valid delivery p50 / p99 (one every 20 ms) | valid deliveries answered (all rounds) |`,
    '| --- | --- | --- | --- | --- | --- |',
  );
  const answered = (runs: ReceiverRun[]) => {
    const total: Record<string, number> = {};
    for (const run of runs) for (const [status, count] of Object.entries(run.answers)) total[status] = (total[status] ?? 0) + count;
    return JSON.stringify(total);
  };
  for (const { flood, rounds } of measured) {
    const runs = rounds.map((r) => r.receiver);
    out.push(
      `| ${flood.label} | ${mib(median(runs.map((r) => r.restMiB)))} | ${mib(median(runs.map((r) => r.peakMiB)))} | ${mib(median(runs.map((r) => r.afterMiB)))} | ${median(runs.map((r) => r.p50Ms)).toFixed(1)} / ${median(runs.map((r) => r.p99Ms)).toFixed(1)} ms | ${answered(runs)} |`,
    );
  }
  return out;
}

function report(
  measured: MeasuredFlood[],
  bodies: {
    refused: number;
    rssMiB: number;
    p50Ms: number;
    p99Ms: number;
    answers: Record<string, number>;
    restMiB: number;
    afterMiB: number;
  },
  webhook: string | undefined,
  rest: { seed: { perCheckUs: number; baselineUs: number }; burstResult: string; live: { lines: string[]; readersP99Ms: number } },
): string[] {
  const of = (key: string) => measured.find((m) => m.key === key)!;
  const out = floodTables(measured, webhook);
  out.push(
    `| 200 unfinished 4.9 MiB bodies, ${DURATION} s (one run; ${bodies.refused} connections answered 503 past the body budget) | ${mib(bodies.restMiB)} | ${mib(bodies.rssMiB)} | ${mib(bodies.afterMiB)} | ${bodies.p50Ms.toFixed(1)} / ${bodies.p99Ms.toFixed(1)} ms | ${JSON.stringify(bodies.answers)} |`,
  );

  const std = of('std').rounds;
  const seedRounds = of('seed').rounds;
  const acc = of('acc').rounds;
  const p99s = [...[...std, ...seedRounds, ...acc].map((r) => r.receiver.p99Ms), bodies.p99Ms, rest.live.readersP99Ms];
  const target = (label: string, value: number, ok: (v: number) => boolean, shown: string) =>
    `| ${label} | ${shown} | ${Number.isNaN(value) ? 'not measured' : met(ok(value))} |`;
  const stdBare = median(ratios(std, (r) => r.bare));
  const seedBare = median(ratios(seedRounds, (r) => r.bare));
  const stdWebhook = median(ratios(std, (r) => r.webhook));
  const seedWebhook = median(ratios(seedRounds, (r) => r.webhook));
  const accWebhook = median(ratios(acc, (r) => r.webhook));
  const accBare = median(ratios(acc, (r) => r.bare));
  const rest60 = median([...std, ...seedRounds, ...acc].map((r) => r.receiver.restMiB));
  const afterForged = median(std.map((r) => r.receiver.afterMiB));
  const afterAccept = median(acc.map((r) => r.receiver.afterMiB));
  out.push(
    '',
    '| target | measured (medians) | met? |',
    '| --- | --- | --- |',
    target(
      'rejected/s ≥ 0.7× bare node:http, one process',
      Math.min(stdBare, seedBare),
      (v) => v >= 0.7,
      `Standard ${stdBare.toFixed(2)}×, seed ${seedBare.toFixed(2)}×`,
    ),
    target(
      'rejected/s ≥ 1.0× adnanh/webhook',
      Math.min(stdWebhook, seedWebhook),
      (v) => v >= 1,
      `Standard ${stdWebhook.toFixed(2)}×, seed ${seedWebhook.toFixed(2)}×`,
    ),
    target('accepted/s ≥ 2× webhook', accWebhook, (v) => v >= 2, `${accWebhook.toFixed(2)}×`),
    target('accepted/s ≥ 0.4× bare node:http answering 202', accBare, (v) => v >= 0.4, `${accBare.toFixed(2)}×`),
    target('RSS at rest ≤ 60 MiB', rest60, (v) => v <= 60, mib(rest60)),
    target(`RSS after a ${FORGED_SECONDS} s forged flood ≤ 100 MiB`, afterForged, (v) => v <= 100, mib(afterForged)),
    target('RSS after an accept flood ≤ 150 MiB', afterAccept, (v) => v <= 150, mib(afterAccept)),
    target(
      'valid-delivery p99 ≤ 100 ms under every flood (forged, body, accept, 50 live-log readers)',
      Math.max(...p99s),
      (v) => v <= 100,
      `worst ${Math.max(...p99s).toFixed(1)} ms (forged Standard ${median(std.map((r) => r.receiver.p99Ms)).toFixed(1)}, seed ${median(seedRounds.map((r) => r.receiver.p99Ms)).toFixed(1)}, accept ${median(acc.map((r) => r.receiver.p99Ms)).toFixed(1)}, bodies ${bodies.p99Ms.toFixed(1)}, live-log readers ${rest.live.readersP99Ms.toFixed(1)})`,
    ),
    '',
    `Seed check, 1000 rounds, in-process: ${rest.seed.perCheckUs.toFixed(0)} µs; 1000 × SHA-256 of 64 bytes: ${rest.seed.baselineUs.toFixed(0)} µs (ratio ${(rest.seed.perCheckUs / rest.seed.baselineUs).toFixed(2)}). Burst, 1 delivery then 30 more while its 2 s command runs: ${rest.burstResult}.`,
    ...rest.live.lines,
  );
  return out;
}

runBench('receiver', main);
