/**
 * The receiver's log is written a turn of the event loop at a time, and yet every line arrives: the real CLI in a
 * child process, its stdout a pipe, stopped right after a burst of accepted deliveries (each logs
 * a line), and failing at start-up right after it logged a warning.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { buildDeliveryRequest } from '../../protocol';
import { CLI } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

const TOKEN = 'whsec_bG9nIGRlc3RpbmF0aW9uIHRlc3Qga2V5IGxvZ3MgYWxs';
const DELIVERIES = 200;

type LogLine = Record<string, unknown>;

function serveChild(dir: string, config: object) {
  writeFileSync(join(dir, 'receiver.json'), JSON.stringify(config), { mode: 0o600 });
  const child = spawn(process.execPath, [CLI, 'serve', '--config', join(dir, 'receiver.json'), '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.resume();
  const lines = (): LogLine[] =>
    stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as LogLine);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, lines, exited };
}

describe('the receiver log', () => {
  let dir: string;
  let occupied: Server | undefined;

  beforeEach(() => {
    dir = tempDir();
  });

  afterEach(async () => {
    if (occupied) await new Promise((done) => occupied!.close(done));
    occupied = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('has every line of a burst of deliveries once SIGTERM has stopped the receiver', async () => {
    const served = serveChild(dir, {
      listen: { host: '127.0.0.1', port: 0 },
      admin: false,
      stateDir: './state',
      triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
    });
    try {
      let url: string | undefined;
      while (url === undefined) {
        const listening = served.lines().find((line) => line.msg === 'receiver listening');
        if (listening) url = listening.url as string;
        else await once(served.child.stdout!, 'data');
      }
      const timestamp = Math.floor(Date.now() / 1000);
      const answers = await Promise.all(
        Array.from({ length: DELIVERIES }, async (_, i) => {
          const delivery = buildDeliveryRequest({
            scheme: 'standard',
            token: TOKEN,
            id: `msg_log_${i}`,
            timestamp,
            data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: i.toString(16).padStart(40, '0'), source: 'test' },
          });
          const response = await request(url + delivery.path, { method: 'POST', headers: delivery.headers, body: delivery.body! });
          await response.body.dump();
          return response.statusCode;
        }),
      );
      expect(answers.filter((status) => status === 202)).toHaveLength(DELIVERIES);
      served.child.kill('SIGTERM');
      expect(await served.exited).toEqual([0, null]);
    } finally {
      if (served.child.exitCode === null && served.child.signalCode === null) served.child.kill('SIGKILL');
    }
    const lines = served.lines();
    const accepted = lines.filter((line) => line.msg === 'delivery accepted').map((line) => line.delivery);
    expect(accepted).toHaveLength(DELIVERIES);
    expect(new Set(accepted).size).toBe(DELIVERIES);
    expect(lines.at(-1)).toMatchObject({ msg: 'receiver stopped' });
  });

  it('has the lines logged before a start-up failure ended the process', async () => {
    occupied = createServer();
    await new Promise<void>((done) => occupied!.listen(0, '127.0.0.1', done));
    const port = (occupied.address() as { port: number }).port;
    const served = serveChild(dir, {
      listen: { host: '127.0.0.1', port },
      admin: false,
      stateDir: './state',
      // A short token draws a warning as the config is read, before the listener fails to start.
      triggers: [{ repository: 'app', branch: 'main', token: 's3c43t70k3n', command: 'true' }],
    });
    const [code] = await served.exited;
    expect(code).toBe(2);
    const lines = served.lines();
    expect(lines[0]).toMatchObject({ level: 40, msg: expect.stringContaining('characters long') });
    // The last line before the listener failed: the run store opened just before it.
    expect(lines.at(-1)).toMatchObject({ msg: 'run store opened' });
  });
});
