/**
 * What the benches share: the probe programs in bench/probes/ run in a fresh `node` (results on
 * fd 3, its stdout discarded), percentiles, the figures' formats, a receiver that answers 202 and
 * checks nothing (the floor under a handler's cost), free ports and stopping a child. Not a bench
 * itself (run.ts runs *.bench.ts only). Benches stand alone: nothing here comes from test/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

/** A program under bench/probes/, plain JavaScript so that `node` runs it without a loader in the way of the figures. */
export function probePath(name: string): string {
  return join(__dirname, 'probes', name);
}

export async function runProbe(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<unknown> {
  const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stdio[3]!.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;
export const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
export const verdict = (value: number, target: number) => (value <= target ? `≤ ${target} ms: met` : `> ${target} ms: NOT met`);

export interface MinimalReceiver {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** A receiver that answers 202 to everything and checks nothing: the floor for a handler's cost. */
export async function startMinimalReceiver(): Promise<MinimalReceiver> {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(202, { 'content-type': 'application/json' });
      response.end('{"status":"accepted"}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      const closed = new Promise((done) => server.close(done));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Runs a bench's main; a failure is printed with its stack and exits 1, so `npm run bench` counts it. */
export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${name} bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}

/** A port nothing listens on right now, for a server a bench starts. */
export async function freePort(): Promise<number> {
  const server = createNetServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

/** SIGTERM, and wait for the exit (at once if it has exited already). */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** The middle value (of an even count, the upper of the two middle ones). */
export function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}
