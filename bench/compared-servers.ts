/**
 * The servers the receiver bench compares, each in a process of its own on 127.0.0.1: the receiver
 * as users run it (the packed CLI's serve bundle, `node triggler-serve.js serve`, which `triggler serve` runs), bare `node:http` answering a
 * fixed status (the ceiling for Node here), and adnanh/webhook (Debian package `webhook`) with an
 * HMAC-SHA256 rule on the body. Their RSS is read from /proc.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { buildCli, SERVE_BUNDLE_FILE } from '../scripts/build-cli';
import { onServerCore } from './cpu-pinning';
import { freePort, probePath, stopChild } from './support';

export interface ComparedServer {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export interface BenchReceiver extends ComparedServer {
  adminUrl: string;
  child: ChildProcess;
}

/** The CLI as `npm pack` ships it (dist/ built into `dir`); the bundle a user's `triggler serve` runs. */
export async function buildReceiverCli(dir: string): Promise<string> {
  await buildCli(join(dir, 'dist'));
  return join(dir, 'dist', SERVE_BUNDLE_FILE);
}

/** Resolves once `url` answers anything; rejects when the child exits first or after ~10 s. */
async function answering(url: string, child: ChildProcess): Promise<void> {
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

export interface ReceiverSetup {
  cli: string;
  dir: string;
  /** The `bench` trigger's command (`sleep 1`: deliveries coalesce while it runs). */
  command: string;
  workers: number;
  tokens: { standard: string; seed: string };
}

/** A fresh receiver (its own state directory), logging JSON lines at info to a file, as to journald. */
export async function startReceiver(setup: ReceiverSetup): Promise<BenchReceiver> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const name = `${Date.now()}-${port}`;
  const config = {
    listen: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: adminPort },
    workers: setup.workers,
    stateDir: join(setup.dir, `state-${name}`),
    log: { level: 'info' },
    triggers: [
      { repository: 'bench', branch: 'main', token: setup.tokens.standard, command: setup.command },
      { repository: 'legacy', branch: 'master', token: setup.tokens.seed, command: setup.command },
    ],
  };
  const configFile = join(setup.dir, `receiver-${name}.json`);
  writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  const log = openSync(join(setup.dir, 'receiver.log'), 'a');
  const child = spawn(...onServerCore(process.execPath, [setup.cli, 'serve', '--config', configFile, '--log-format', 'json']), {
    stdio: ['ignore', log, 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await answering(`${url}/healthz`, child);
  return { name: 'receiver', url, adminUrl: `http://127.0.0.1:${adminPort}`, pid: child.pid!, child, stop: () => stopChild(child) };
}

/** The ceiling for Node here: node:http reading the body and answering a fixed status. */
export async function startBareNode(status: number): Promise<ComparedServer> {
  const port = await freePort();
  const child = spawn(...onServerCore(process.execPath, [probePath('bare-http.js'), String(port), String(status)]), { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await answering(`${url}/`, child);
  return { name: 'bare node:http', url, pid: child.pid!, stop: () => stopChild(child) };
}

/** What a floor does: refuse a forged delivery, or accept a signed one. */
export type FloorMode = 'refusal' | 'accept';

/** A floor on node:http (bench/probes/floor-http.js) in its `mode`, verifying under `token`, journalling under `dir`. */
export async function startFloor(mode: FloorMode, token: string, dir: string): Promise<ComparedServer> {
  const port = await freePort();
  const args = [probePath('floor-http.js'), String(port), mode, join(dir, `floor-journal-${port}`)];
  const child = spawn(...onServerCore(process.execPath, args), {
    stdio: 'ignore',
    env: { ...process.env, FLOOR_TOKEN: token },
  });
  const url = `http://127.0.0.1:${port}`;
  await answering(`${url}/`, child);
  return { name: 'node:http floor', url, pid: child.pid!, stop: () => stopChild(child) };
}

export function webhookVersion(): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v webhook']).status !== 0) return undefined;
  return spawnSync('webhook', ['-version'], { encoding: 'utf8' }).stdout.trim();
}

/**
 * adnanh/webhook with an HMAC-SHA256 rule on the body. webhook 2.8.0 answers a bad signature 500
 * "Error occurred while evaluating hook rules." (a signature that does not match is an error of
 * the rule, not a mismatch; `trigger-rule-mismatch-http-response-code` applies only to a request
 * without the header), and runs /bin/true for each good one.
 */
export async function startWebhook(dir: string, secret: string): Promise<ComparedServer> {
  const port = await freePort();
  const hooks = [
    {
      id: 'bench',
      'execute-command': '/bin/true',
      'trigger-rule-mismatch-http-response-code': 401,
      'trigger-rule': {
        match: { type: 'payload-hmac-sha256', secret, parameter: { source: 'header', name: 'X-Hub-Signature-256' } },
      },
    },
  ];
  writeFileSync(join(dir, 'hooks.json'), JSON.stringify(hooks));
  const log = openSync(join(dir, 'webhook.log'), 'a');
  const child = spawn(...onServerCore('webhook', ['-hooks', join(dir, 'hooks.json'), '-ip', '127.0.0.1', '-port', String(port)]), {
    stdio: ['ignore', log, log],
  });
  const url = `http://127.0.0.1:${port}`;
  await answering(`${url}/`, child);
  return { name: 'adnanh/webhook', url, pid: child.pid!, stop: () => stopChild(child) };
}

/** A server's process and, in cluster mode, its worker processes (not the commands it runs); none once it is gone. */
function serverProcesses(pid: number): number[] {
  let children: number[];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Gone already.
    return [];
  }
  const workers = children.filter((c) => {
    try {
      return readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('serve');
    } catch {
      return false;
    }
  });
  return [pid, ...workers];
}

/** RSS in MiB of a server (its workers included). */
export function rssMiB(pid: number): number {
  const kb = (p: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
  const processes = serverProcesses(pid);
  return processes.length === 0 ? NaN : processes.reduce((sum, p) => sum + kb(p) / 1024, 0);
}

/** Clock ticks a second, the unit of /proc/PID/stat's CPU times. */
const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * CPU seconds (user + system) a server (its workers included) has used so far, from
 * /proc/PID/stat: what it spends per request is far less disturbed by other work on the machine
 * than how many it answers per second. Children that are not workers (commands, webhook's forks)
 * are not counted.
 */
export function cpuSeconds(pid: number): number {
  const ticks = (p: number) => {
    // The fields after the command's name (which may hold spaces), from the state on: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ').at(-1)!.split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  const processes = serverProcesses(pid);
  return processes.length === 0 ? NaN : processes.reduce((sum, p) => sum + ticks(p), 0) / TICKS_PER_SECOND;
}
