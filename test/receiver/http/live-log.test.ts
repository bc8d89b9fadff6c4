/**
 * The live log (`GET /runs/<id>/log/events`): one tail per run for all its viewers, only new bytes
 * sent, viewers that do not read dropped before they hold more than a bound, and caps on viewers.
 * A real admin listener over a real bounded run log that the test writes to, so that what is
 * written when is the test's to say.
 */
import * as fs from 'node:fs';
import { connect, type Socket } from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { listen } from '../../../receiver/delivery-listener';
import { ensureAdminCredential } from '../../../receiver/http/admin-credential';
import { type AdminServer, type AdminServerOptions, createAdminServer, type RunHistory } from '../../../receiver/http/admin-server';
import { BoundedRunLog } from '../../../receiver/runs/run-log';
import type { RunRecord } from '../../../receiver/runs/run-record';
import { pushStandard, startTestReceiver, tempDir, type TestReceiver } from '../../support/receiver-fixture';

/** Runs whose status and log the test sets. */
class TestRuns implements RunHistory {
  readonly status = new Map<string, RunRecord['status']>();
  readonly logs = new Map<string, BoundedRunLog>();

  runs(): RunRecord[] {
    return [...this.status.keys()].map((id) => this.run(id)!);
  }
  run(id: string): RunRecord | undefined {
    const status = this.status.get(id);
    return status ? ({ id, status, repository: 'site', branch: 'main' } as RunRecord) : undefined;
  }
  async runLog(id: string): Promise<Buffer | undefined> {
    return this.logs.get(id)?.snapshot();
  }
  liveLog(id: string): BoundedRunLog | undefined {
    return this.status.get(id) === 'running' ? this.logs.get(id) : undefined;
  }
}

interface SseEvent {
  name: string;
  data: unknown;
}

/** A viewer that reads: every event, in order, until the stream ends. */
class ReadingViewer {
  readonly events: SseEvent[] = [];
  readonly ended: Promise<void>;
  private waiters: Array<() => void> = [];

  constructor(url: string) {
    this.ended = (async () => {
      const response = await request(url);
      expect(response.statusCode).toBe(200);
      const decoder = new TextDecoder();
      let pending = '';
      for await (const chunk of response.body) {
        pending += decoder.decode(chunk as Buffer, { stream: true });
        let at: number;
        while ((at = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, at);
          pending = pending.slice(at + 2);
          const name = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (name !== undefined && data !== undefined) this.events.push({ name, data: JSON.parse(data) });
          for (const wake of this.waiters.splice(0)) wake();
        }
      }
    })();
  }

  get text(): string {
    return this.events
      .filter((event) => event.name === 'append')
      .map((event) => event.data as string)
      .join('');
  }

  /** Resolves once the events read so far satisfy `done`. */
  async until(done: (viewer: ReadingViewer) => boolean): Promise<void> {
    while (!done(this)) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/** A viewer that connects, asks for the stream, and never reads a byte of the answer. */
function silentViewer(url: string, sockets: Socket[]): void {
  const { hostname, port, pathname } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) }, () =>
    socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`),
  );
  socket.pause();
  // The server may reset it once it is dropped.
  socket.on('error', () => undefined);
  sockets.push(socket);
}

/** Waits until the listener has `count` viewers (each registers once its request is read). */
async function viewersReach(server: AdminServer, count: number): Promise<void> {
  while (server.liveLogs.viewers().length !== count) await new Promise((resolve) => setImmediate(resolve));
}

describe('live log', () => {
  const dir = tempDir();
  const credential = ensureAdminCredential(dir);
  const opened: Array<{ server: AdminServer; sockets: Socket[] }> = [];

  async function start(
    options: Partial<AdminServerOptions> = {},
  ): Promise<{ runs: TestRuns; server: AdminServer; url: string; sockets: Socket[] }> {
    const runs = new TestRuns();
    const server = createAdminServer(runs, { credential, logger: pino({ level: 'silent' }), ...options });
    const url = await listen(server, '127.0.0.1', 0);
    const sockets: Socket[] = [];
    opened.push({ server, sockets });
    return { runs, server, url, sockets };
  }

  function running(runs: TestRuns, id: string, limitBytes = 1024 * 1024): BoundedRunLog {
    const log = new BoundedRunLog(path.join(dir, `${id}.log`), limitBytes, pino({ level: 'silent' }));
    runs.logs.set(id, log);
    runs.status.set(id, 'running');
    return log;
  }

  afterEach(async () => {
    for (const { server, sockets } of opened.splice(0)) {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    for (const log of fs.readdirSync(dir).filter((name) => name.endsWith('.log'))) fs.rmSync(path.join(dir, log));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('drops viewers that do not read once they hold the bound, and holds no more for them', async () => {
    const bound = 64 * 1024;
    const { runs, server, url, sockets } = await start({ liveLog: { viewerBufferBytes: bound } });
    const log = running(runs, 'r1');
    for (let i = 0; i < 10; i++) silentViewer(`${url}/runs/r1/log/events`, sockets);
    await viewersReach(server, 10);
    const seen = server.liveLogs.viewers();
    // 32 MiB of output in 16 KiB chunks: far more than the sockets and the bound can hold together.
    const chunk = Buffer.alloc(16 * 1024, 'x');
    for (let i = 0; i < 2048; i++) log.write(chunk);
    expect(server.liveLogs.viewers()).toHaveLength(0);
    expect(server.liveLogs.droppedViewers).toBe(10);
    // Each held at most the bound plus the one event that took it past.
    for (const viewer of seen) expect(viewer.peakBufferedBytes).toBeLessThanOrEqual(bound + chunk.length + 100);
    // Output after the drops is written to no one.
    for (const viewer of seen) expect(viewer.res.writableEnded).toBe(true);
  });

  it('sends each viewer that reads every byte once and in order, whenever it joined, beside viewers that do not read', async () => {
    const { runs, server, url, sockets } = await start();
    const log = running(runs, 'r1');
    const output = Array.from({ length: 4000 }, (_, i) => `line ${i}: ünïcödé ✓ 𝄞\n`).join('');
    const bytes = Buffer.from(output);
    const early = [new ReadingViewer(`${url}/runs/r1/log/events`), new ReadingViewer(`${url}/runs/r1/log/events`)];
    for (let i = 0; i < 5; i++) silentViewer(`${url}/runs/r1/log/events`, sockets);
    await viewersReach(server, 7);
    // Chunks of uneven sizes that split multi-byte characters, as pipes deliver them.
    let at = 0;
    for (let size = 1; at < bytes.length / 2; at += size, size = ((size * 7) % 997) + 1)
      log.write(bytes.subarray(at, Math.min(at + size, bytes.length / 2)));
    at = Math.floor(bytes.length / 2);
    const late = new ReadingViewer(`${url}/runs/r1/log/events`);
    await viewersReach(server, 8);
    for (let size = 3; at < bytes.length; at += size, size = ((size * 5) % 1009) + 1)
      log.write(bytes.subarray(at, Math.min(at + size, bytes.length)));
    await log.finish();
    runs.status.set('r1', 'succeeded');
    for (const viewer of [...early, late]) {
      await viewer.ended;
      expect(viewer.text).toBe(output);
      expect(viewer.events.at(-1)).toEqual({ name: 'end', data: { status: 'succeeded' } });
      expect(viewer.events.filter((event) => !['append', 'end'].includes(event.name))).toEqual([]);
    }
    expect(server.liveLogs.droppedViewers).toBe(0);
  });

  it('gives a viewer the log so far on top of its bound, so that a reader is not dropped before it could read it', async () => {
    const { runs, server, url } = await start({ liveLog: { viewerBufferBytes: 64 * 1024 } });
    const log = running(runs, 'r1');
    const soFar = 'y'.repeat(1024 * 1024 - 1) + '\n';
    log.write(Buffer.from(soFar));
    const viewer = new ReadingViewer(`${url}/runs/r1/log/events`);
    await viewersReach(server, 1);
    // Written before the viewer had a turn to read anything.
    log.write(Buffer.from('z'.repeat(2048)));
    expect(server.liveLogs.droppedViewers).toBe(0);
    runs.status.set('r1', 'succeeded');
    await viewer.ended;
    expect(viewer.text).toBe(`${soFar}${'z'.repeat(2048)}`);
  });

  it('past the run log bound, sends only what is new: never the whole log again', async () => {
    const { runs, url } = await start();
    const log = running(runs, 'r1', 1000);
    const before = 'x'.repeat(5000);
    log.write(Buffer.from(before));
    const viewer = new ReadingViewer(`${url}/runs/r1/log/events`);
    await viewer.until((v) => v.events.length === 1);
    // What it joined to is what the stored log holds: head, marker, tail.
    expect(viewer.text).toBe(log.snapshot().toString());
    const lines = Array.from({ length: 200 }, (_, i) => `after ${i}\n`);
    for (const line of lines) log.write(Buffer.from(line));
    await viewer.until((v) => v.text.endsWith('after 199\n'));
    expect(viewer.events.slice(1).map((event) => event.data)).toEqual(lines);
    runs.status.set('r1', 'succeeded');
    await viewer.ended;
  });

  it('answers a viewer past the cap on one run, or on all, 503 with Retry-After', async () => {
    const { runs, server, url } = await start({ liveLog: { maxViewersPerRun: 2, maxViewers: 3 } });
    running(runs, 'a');
    running(runs, 'b');
    const viewers = [new ReadingViewer(`${url}/runs/a/log/events`), new ReadingViewer(`${url}/runs/a/log/events`)];
    await viewersReach(server, 2);
    const overRun = await request(`${url}/runs/a/log/events`);
    expect({ status: overRun.statusCode, retryAfter: overRun.headers['retry-after'], body: await overRun.body.json() }).toEqual({
      status: 503,
      retryAfter: '5',
      body: { error: 'too many viewers follow live logs; try again' },
    });
    viewers.push(new ReadingViewer(`${url}/runs/b/log/events`));
    await viewersReach(server, 3);
    const overAll = await request(`${url}/runs/b/log/events`);
    expect(overAll.statusCode).toBe(503);
    await overAll.body.dump();
    runs.status.set('a', 'succeeded');
    runs.status.set('b', 'succeeded');
    for (const viewer of viewers) await viewer.ended;
    await viewersReach(server, 0);
    const finished = await request(`${url}/runs/a/log/events`);
    expect(finished.statusCode).toBe(200);
    await finished.body.dump();
  });
});

describe('live log of a real run', () => {
  let receiver: TestReceiver;
  const token = 'live-log-token-0123456789abcdef';

  afterEach(() => receiver?.dispose());

  it('follows the command as it prints, until it ends', async () => {
    const dir = tempDir();
    const gate = path.join(dir, 'go-on');
    try {
      receiver = await startTestReceiver({
        triggers: [
          { repository: 'site', branch: 'main', token, command: `echo first; while [ ! -e '${gate}' ]; do sleep 0.05; done; echo second` },
        ],
      });
      const runId = await pushStandard(receiver, { token, repository: 'site', branch: 'main', commit: 'a'.repeat(40) });
      const viewer = new ReadingViewer(`${receiver.adminUrl}/runs/${runId}/log/events`);
      await viewer.until((v) => v.text.includes('first\n'));
      fs.writeFileSync(gate, '');
      await viewer.ended;
      expect(viewer.text).toBe('first\nsecond\n');
      expect(viewer.events.at(-1)).toEqual({ name: 'end', data: { status: 'succeeded' } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
