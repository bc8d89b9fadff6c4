/** A real receiver on 127.0.0.1 in a temporary folder, with its logs captured for assertions. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { type Dispatcher, request } from 'undici';
import { jsonOrText } from '../../bin/deliver';
import { buildDeliveryRequest } from '../../protocol';
import { parseReceiverConfig, type ReceiverConfigInput } from '../../receiver/config/schema';
import type { RunRecord } from '../../receiver/runs/run-record';
import { startReceiver, type ReceiverOptions, type InProcessReceiver } from '../../receiver/receiver';

export interface TestReceiver extends InProcessReceiver {
  dir: string;
  logs: Array<Record<string, unknown>>;
  /** Sends a request to the delivery listener. */
  send(
    path: string,
    init?: { method?: string; headers?: Record<string, string>; body?: string | Buffer },
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }>;
  /** Waits until every accepted delivery has run, then returns the runs, oldest first. */
  settledRuns(): Promise<RunRecord[]>;
  /** Closes the receiver and removes its folder. */
  dispose(): Promise<void>;
}

/**
 * Sends a request exactly as written (no URL normalisation, unlike HTTP clients) and returns the
 * status and body text: for paths with `..`, raw bytes, or no HTTP at all.
 */
export function rawRequest(url: string, head: string, body = ''): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () =>
      socket.end(`${head}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`),
    );
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
  });
}

/**
 * For a describe block whose every test must run nothing: compares the receiver's run count
 * (after every accepted delivery has run) before and after each test.
 */
export function expectEachTestToRunNothing(receiver: () => TestReceiver): void {
  let runsBefore = 0;
  beforeEach(async () => {
    runsBefore = (await receiver().settledRuns()).length;
  });
  afterEach(async () => {
    expect((await receiver().settledRuns()).length).toBe(runsBefore);
  });
}

export function tempDir(prefix = 'triggler-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startTestReceiver(
  input: Omit<ReceiverConfigInput, 'listen' | 'admin' | 'stateDir'> & Partial<Pick<ReceiverConfigInput, 'stateDir'>>,
  options: ReceiverOptions & { dir?: string } = {},
): Promise<TestReceiver> {
  const dir = options.dir ?? tempDir();
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  let receiver: InProcessReceiver;
  try {
    const config = parseReceiverConfig({
      stateDir: join(dir, 'state'),
      ...input,
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
    });
    receiver = await startReceiver(config, { logger, ...options });
  } catch (error) {
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let disposed = false;
  return {
    ...receiver,
    dir,
    logs,
    async send(path, init = {}) {
      const response = await request(receiver.url + path, {
        method: (init.method ?? 'POST') as 'POST',
        headers: init.headers ?? {},
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
      return { status: response.statusCode, body: jsonOrText(await response.body.text()), headers: response.headers };
    },
    async settledRuns() {
      await receiver.runner.idle();
      return receiver.runner.history.runs(10_000).reverse();
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await receiver.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A push signed as the sender signs it (Standard Webhooks), sent to a test receiver, which must
 * answer 202. Resolves with the id of the run that carries it.
 */
export async function pushStandard(
  receiver: TestReceiver,
  push: { token: string; repository: string; branch: string; commit: string; id?: string },
): Promise<string> {
  const delivery = buildDeliveryRequest({
    scheme: 'standard',
    token: push.token,
    id: push.id ?? `msg_${Math.random().toString(36).slice(2)}`,
    timestamp: Math.floor(Date.now() / 1000),
    data: { repository: push.repository, branch: push.branch, ref: `refs/heads/${push.branch}`, commit: push.commit, source: 'cli' },
  });
  const answer = await receiver.send(delivery.path, { headers: delivery.headers, body: delivery.body! });
  if (answer.status !== 202) throw new Error(`the receiver answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return (answer.body.run as { id: string }).id;
}

/**
 * A push signed as the sender signs it (Standard Webhooks) for app/main, sent to the receiver at
 * `url` (one in another process, or over TLS through `dispatcher`): its status and Retry-After.
 */
export async function sendSignedPush(
  url: string,
  push: { token: string; id: string; commit?: string },
  dispatcher?: Dispatcher,
): Promise<{ status: number; retryAfter?: string }> {
  const delivery = buildDeliveryRequest({
    scheme: 'standard',
    token: push.token,
    id: push.id,
    timestamp: Math.floor(Date.now() / 1000),
    data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: push.commit ?? 'c'.repeat(40), source: 'test' },
  });
  const response = await request(url + delivery.path, {
    method: 'POST',
    headers: delivery.headers,
    body: delivery.body!,
    ...(dispatcher ? { dispatcher } : {}),
  });
  await response.body.dump();
  const retryAfter = response.headers['retry-after'];
  return { status: response.statusCode, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) };
}
