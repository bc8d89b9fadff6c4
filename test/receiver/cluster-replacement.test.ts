/**
 * Workers that die are replaced, whatever kills them and whenever: the receiver as it ships (the
 * bundled daemon, `"workers": 2`) in a child process, its workers killed under load, and a
 * replacement that cannot start. The primary stays up, the config it holds is the one replacements
 * get (the file on disk may be mid-edit), and every delivery answered 202 is in the journal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import { Agent, request } from 'undici';
import { receiverBuildOptions } from '../../lib/host-files/host-files';
import type { RunRecord } from '../../receiver/runs/run-record';
import { sendSignedPush, tempDir } from '../support/receiver-fixture';

const TOKEN = 'whsec_Y2x1c3RlciB0ZXN0IGtleSBjbHVzdGVyIHRlc3Qga2V5';
const KILLS = 100;

type LogLine = Record<string, unknown>;

describe('a receiver whose workers die', () => {
  let dir: string;
  let child: ChildProcess;
  const logs: LogLine[] = [];
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let url: string;
  let adminUrl: string;
  /** Every worker this file killed, across its tests. */
  const killed = new Set<number>();
  // A fresh connection per request, so the shared port hands them to both workers. A connection
  // the cluster handed to a worker as it was killed is never answered: like a real sender, give up
  // on it (it was not answered 202, so the sender would send it again).
  const agent = new Agent({ pipelining: 0, keepAliveTimeout: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });

  /** The first log line, from `from` on, that matches. */
  function logLine(match: (line: LogLine) => boolean, from = 0): Promise<LogLine> {
    const seen = logs.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolveLine) => waiters.push({ match, resolve: resolveLine }));
  }

  beforeAll(async () => {
    dir = tempDir();
    await build(receiverBuildOptions(resolve(__dirname, '..', '..', 'receiver', 'daemon.ts'), join(dir, 'receiver.js'), 'node20'));
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ 'app/main': TOKEN }), { mode: 0o600 });
    writeFileSync(
      join(dir, 'receiver.json'),
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: 0 },
        workers: 2,
        stateDir: './state',
        tokens: { file: './tokens.json' },
        limits: { keepRuns: 10_000 },
        triggers: [{ repository: 'app', branch: 'main', command: 'true' }],
      }),
      { mode: 0o600 },
    );
    child = spawn(process.execPath, [join(dir, 'receiver.js'), '--config', join(dir, 'receiver.json')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as LogLine;
      logs.push(line);
      for (const waiter of waiters.filter((w) => w.match(line))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    });
    const listening = await Promise.race([
      logLine((line) => line.msg === 'receiver listening'),
      once(child, 'exit').then(([code]) => Promise.reject(new Error(`receiver exited ${code}`))),
    ]);
    url = String(listening.url);
    adminUrl = String(listening.adminUrl);
  }, 120_000);

  afterAll(async () => {
    if (child.exitCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
    // The receiver stops its workers one by one, each with up to 5 s to drain.
  }, 60_000);

  /** The pids of workers that said they listen and were not killed yet, newest first. */
  function servingPids(): number[] {
    return logs
      .filter((line) => line.msg === 'worker listening')
      .map((line) => Number(line.pid))
      .filter((pid) => !killed.has(pid))
      .reverse();
  }

  async function health(): Promise<{
    statusCode: number;
    body: { status: string; delivery?: { status: string; reason?: string; workers: { serving: number; configured: number } } };
  }> {
    const response = await request(`${adminUrl}/healthz`);
    return { statusCode: response.statusCode, body: (await response.body.json()) as never };
  }

  const deliver = async (id: string) => (await sendSignedPush(url, { token: TOKEN, id }, agent)).status;

  /** Until the workers serve as configured again. */
  async function allServing(): Promise<void> {
    while ((await health()).body.delivery?.status !== 'ok') await new Promise((r) => setTimeout(r, 100));
  }

  it('replaces a worker that dies before it listens, with backoff, and says degraded on /healthz meanwhile', async () => {
    const [victim] = servingPids();
    // Every replacement will fail to open its token file until it is back.
    renameSync(join(dir, 'tokens.json'), join(dir, 'tokens.away'));
    const from = logs.length;
    process.kill(victim!, 'SIGKILL');
    killed.add(victim!);
    const backedOff = await logLine((line) => line.msg === 'worker died; starting another' && Number(line.retryInMs) >= 1000, from);
    expect(backedOff).toMatchObject({ serving: 1, configured: 2 });

    const degraded = await health();
    expect(degraded.statusCode).toBe(503);
    expect(degraded.body.status).toBe('degraded');
    expect(degraded.body.delivery).toMatchObject({ status: 'degraded', workers: { serving: 1, configured: 2 } });
    expect(degraded.body.delivery!.reason).toContain('1 of 2 workers serve');
    expect(await deliver('msg_degraded')).toBe(202);

    renameSync(join(dir, 'tokens.away'), join(dir, 'tokens.json'));
    await logLine((line) => line.msg === 'worker listening' && line.serving === 2, from);
    await allServing();
  }, 120_000);

  it(`survives ${KILLS} worker kills under load: the primary stays, workers come back, every 202 is journalled`, async () => {
    // An operator mid-edit: replacements must start from the config the primary holds.
    writeFileSync(join(dir, 'receiver.json'), '{ "listen": { "host": ', { mode: 0o600 });
    const accepted: string[] = [];
    let loading = true;
    const sender = async (name: string) => {
      for (let i = 0; loading; i++) {
        const id = `msg_${name}_${i}`;
        try {
          if ((await deliver(id)) === 202) accepted.push(id);
        } catch {
          // A connection cut by its worker's death: never answered, so the sender would retry.
        }
      }
    };
    const load = Promise.all(['a', 'b', 'c'].map(sender));

    for (let kill = 0; kill < KILLS; kill++) {
      // One worker at a time, once both serve, each in turn: the other keeps taking deliveries.
      const victim = servingPids()[kill % 2];
      const from = logs.length;
      process.kill(victim!, 'SIGKILL');
      killed.add(victim!);
      await logLine((line) => line.msg === 'worker listening' && line.serving === 2, from);
    }
    await allServing();
    loading = false;
    await load;

    expect(child.exitCode).toBeNull();
    expect(logs.filter((line) => line.msg === 'worker died; starting another').length).toBeGreaterThanOrEqual(KILLS);
    expect((await health()).body.delivery).toMatchObject({ status: 'ok', workers: { serving: 2, configured: 2 } });
    expect(accepted.length).toBeGreaterThan(0);
    expect(await deliver('msg_after_kills')).toBe(202);

    // Every delivery answered 202 is in the journal, in a run.
    let runs: RunRecord[];
    for (;;) {
      const response = await request(`${adminUrl}/runs?limit=10000`);
      runs = ((await response.body.json()) as { runs: RunRecord[] }).runs;
      if (runs.every((run) => run.status !== 'pending' && run.status !== 'running')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const journalled = new Set(runs.flatMap((run) => run.deliveryIds));
    expect(accepted.filter((id) => !journalled.has(id))).toEqual([]);
  }, 900_000);
});
