/**
 * `"workers": 2`: the real CLI in a child process, its workers real processes sharing the port, the
 * primary holding the runner. Deliveries are accepted by whichever worker gets them and run once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import type { RunRecord } from '../../receiver/runs/run-record';
import { sendSignedPush, tempDir } from '../support/receiver-fixture';
import { waitFor } from '../support/wait-for';

const CLI = resolve(__dirname, '..', '..', 'bin', 'triggler.js');
const TOKEN = 'whsec_Y2x1c3RlciB0ZXN0IGtleSBjbHVzdGVyIHRlc3Qga2V5';

function workerPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((child) => {
      try {
        return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('serve');
      } catch {
        return false;
      }
    });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('receiver with workers', () => {
  let dir: string;
  let child: ChildProcess;
  let logs: Array<Record<string, unknown>>;
  let url: string;
  let adminUrl: string;
  // Fresh connections per request, so the shared port hands them to both workers.
  const agent = new Agent({ pipelining: 0, keepAliveTimeout: 1 });

  beforeAll(async () => {
    dir = tempDir();
    writeFileSync(
      join(dir, 'receiver.json'),
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: 0 },
        workers: 2,
        stateDir: './state',
        triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'sleep 0.3' }],
      }),
      { mode: 0o600 },
    );
    logs = [];
    child = spawn(process.execPath, [CLI, 'serve', '--config', join(dir, 'receiver.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((resolveReady, reject) => {
      child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
      lines.on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'receiver listening') {
          url = String(entry.url);
          adminUrl = String(entry.adminUrl);
          resolveReady();
        }
      });
    });
    await ready;
  });

  afterAll(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const deliver = async (id: string, commit: string) => (await sendSignedPush(url, { token: TOKEN, id, commit }, agent)).status;

  async function settledRuns(): Promise<RunRecord[]> {
    for (;;) {
      const response = await request(`${adminUrl}/runs?limit=1000`);
      const { runs } = (await response.body.json()) as { runs: RunRecord[] };
      if (runs.every((r) => r.status !== 'pending' && r.status !== 'running')) return runs;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('starts two worker processes beside the primary', () => {
    expect(logs.find((l) => l.msg === 'receiver listening')).toMatchObject({ workers: 2 });
    expect(workerPids(child.pid!)).toHaveLength(2);
  });

  it('accepts deliveries on both workers, runs each once, and answers a repeat on another worker as a duplicate', async () => {
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => deliver(`msg_cluster_${i}`, i.toString(16).padStart(40, 'c'))));
    expect(statuses.every((s) => s === 202)).toBe(true);
    const repeats = await Promise.all(Array.from({ length: 10 }, (_, i) => deliver(`msg_cluster_${i}`, i.toString(16).padStart(40, 'c'))));
    expect(repeats.every((s) => s === 200)).toBe(true);
    const runs = await settledRuns();
    const carried = runs.flatMap((r) => r.deliveryIds).filter((id) => id.startsWith('msg_cluster_'));
    expect(new Set(carried).size).toBe(40);
    expect(carried).toHaveLength(40);
    expect(runs.every((r) => r.status === 'succeeded')).toBe(true);
    // Both workers took deliveries.
    const workers = new Set(logs.filter((l) => l.msg === 'delivery accepted').map((l) => l.worker));
    expect(workers.size).toBe(2);
  });

  it('replaces a worker that dies, and keeps taking deliveries', async () => {
    const [victim] = workerPids(child.pid!);
    process.kill(victim!, 'SIGKILL');
    await waitFor('the primary to notice', () => logs.some((l) => l.msg === 'worker died; starting another'));
    expect(logs.some((l) => l.msg === 'worker died; starting another')).toBe(true);
    await waitFor('a second worker again', () => workerPids(child.pid!).length >= 2);
    expect(workerPids(child.pid!)).toHaveLength(2);
    const statuses = await Promise.all(Array.from({ length: 6 }, (_, i) => deliver(`msg_after_${i}`, i.toString(16).padStart(40, 'a'))));
    expect(statuses.every((s) => s === 202)).toBe(true);
  });

  it('stops on SIGTERM: workers drain and exit, then the primary, with status 0', async () => {
    const workers = workerPids(child.pid!);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number];
    expect(code).toBe(0);
    expect(workers.filter(alive)).toEqual([]);
    expect(logs.at(-1)).toMatchObject({ msg: 'receiver stopped' });
  });
});
