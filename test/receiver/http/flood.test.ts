/**
 * What an unauthenticated flood can make the receiver hold, and what it answers past that: bodies
 * refused on their headers before a byte is read, a budget of body bytes in flight, a cap on
 * connections, and 503 (not a closed port) while the receiver stops. A valid delivery gets
 * through while the flood goes on.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { buildDeliveryRequest, seedSignature } from '../../../protocol';
import { startTestReceiver, tempDir, type TestReceiver } from '../../support/receiver-fixture';
import { waitFor } from '../../support/wait-for';

const TOKEN = 'whsec_dGhpcyBpcyBhIHRlc3Qga2V5IGZvciB0aGUgcmVjZWl2ZXI=';
const now = () => Math.floor(Date.now() / 1000);

interface OpenRequest {
  socket: Socket;
  /** What the receiver has answered so far. */
  answer(): string;
  /** Resolves with the answer once one has come (or the connection closed). */
  answered: Promise<string>;
}

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy();
});

/**
 * A connection that sends `head` and then `bodyBytes` of its body, and keeps the connection open.
 * Resolves once what it sent is in the kernel, on its way to the receiver, or the connection has closed.
 */
function openRequest(url: string, head: string, bodyBytes = 0): Promise<OpenRequest> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    sockets.push(socket);
    let text = '';
    let answeredResolve: (text: string) => void = () => undefined;
    const answered = new Promise<string>((r) => (answeredResolve = r));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (/\r\n\r\n/.test(text)) answeredResolve(text);
    });
    socket.on('close', () => answeredResolve(text));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      // A negative bodyBytes leaves the headers unfinished.
      socket.write(bodyBytes < 0 ? `${head}\r\n` : `${head}\r\n\r\n`);
      if (bodyBytes > 0) socket.write(Buffer.alloc(bodyBytes, 'x'));
      const opened = { socket, answer: () => text, answered };
      // Or once the receiver has closed it (a refused body is not read to its end).
      socket.write('', () => resolve(opened));
      socket.once('close', () => resolve(opened));
    });
    socket.once('error', reject);
  });
}

/**
 * Lets the receiver (in this process) take in what the test's connections sent or closed: the
 * kernel has it already, and each turn of the event loop reads what is ready. Counted in turns,
 * not milliseconds, so that a busy machine cannot make it too short.
 */
async function receiverTakesItIn(): Promise<void> {
  for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
}

/** A valid Standard delivery; `padding` characters in its (signed) data make it large. */
function sendValid(receiver: TestReceiver, padding = 0) {
  const r = buildDeliveryRequest({
    scheme: 'standard',
    token: TOKEN,
    id: `msg_${Math.random().toString(36).slice(2)}`,
    timestamp: now(),
    data: {
      repository: 'app',
      branch: 'main',
      ref: 'refs/heads/main',
      commit: 'abc123',
      source: 'test',
      ...(padding > 0 ? { padding: 'p'.repeat(padding) } : {}),
    },
  });
  return receiver.send(r.path, { headers: r.headers, body: r.body! });
}

function forgedStandardHead(contentLength: number): string {
  return [
    'POST /hooks/app/main HTTP/1.1',
    'Host: x',
    'webhook-id: msg_flood',
    `webhook-timestamp: ${now()}`,
    `webhook-signature: v1,${Buffer.alloc(32).toString('base64')}`,
    `Content-Length: ${contentLength}`,
  ].join('\r\n');
}

describe('headers are checked before a byte of the body is read', () => {
  let receiver: TestReceiver;
  beforeAll(async () => {
    receiver = await startTestReceiver({
      triggers: [
        { repository: 'app', branch: 'main', token: TOKEN, command: 'true' },
        { repository: 'legacy', branch: 'master', token: 'seed-token-of-the-legacy-trigger', command: 'true' },
      ],
    });
  });
  afterAll(() => receiver.dispose());

  it.each([
    ['a provider webhook without its signature', 'POST /hooks/github HTTP/1.1\r\nX-GitHub-Event: push', 401],
    [
      'a provider webhook whose signature is not one',
      'POST /hooks/github HTTP/1.1\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=xyz',
      401,
    ],
    ['a provider webhook without its event', `POST /hooks/bitbucket HTTP/1.1\r\nX-Hub-Signature: sha256=${'0'.repeat(64)}`, 400],
    [
      "a GitLab secret token that is no trigger's",
      'POST /hooks/gitlab HTTP/1.1\r\nX-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: not-a-configured-token',
      401,
    ],
    [
      'a Standard delivery with a stale timestamp',
      `POST /hooks/app/main HTTP/1.1\r\nwebhook-id: m\r\nwebhook-timestamp: ${now() - 1000}\r\nwebhook-signature: v1,${Buffer.alloc(32).toString('base64')}`,
      400,
    ],
    [
      'a Standard delivery to an unknown trigger',
      `POST /hooks/nope/main HTTP/1.1\r\nwebhook-id: m\r\nwebhook-timestamp: ${now()}\r\nwebhook-signature: v1,${Buffer.alloc(32).toString('base64')}`,
      401,
    ],
    [
      'a seed delivery to an unknown trigger',
      `POST /nope-main HTTP/1.1\r\nX-Signature: ${'a'.repeat(64)}\r\nX-Signature-Timestamp: ${now()}`,
      401,
    ],
  ])('%s is answered before its body is sent, and the connection closed', async (_what, head, status) => {
    const open = await openRequest(receiver.url, `${head}\r\nHost: x\r\nContent-Length: 4000000`);
    const answer = await open.answered;
    expect(statusOf(answer)).toBe(status);
    expect(answer.toLowerCase()).toContain('connection: close');
  });

  it('a seed body is held to the limit but never kept: a valid seed delivery with a body runs', async () => {
    const ts = now();
    const res = await receiver.send('/legacy-master', {
      method: 'POST',
      headers: {
        'X-Signature': seedSignature(ts, 'legacy', 'master', 'seed-token-of-the-legacy-trigger', 1000),
        'X-Signature-Timestamp': String(ts),
      },
      body: Buffer.alloc(1024 * 1024, 'x'),
    });
    expect(res.status).toBe(202);
    await receiver.settledRuns();
  });
});

describe('a budget of body bytes in flight', () => {
  let receiver: TestReceiver;
  const MiB = 1024 * 1024;
  beforeAll(async () => {
    receiver = await startTestReceiver({
      limits: { bodyBytes: MiB, inFlightBodyBytes: 4 * MiB },
      triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
    });
  });
  afterAll(() => receiver.dispose());

  it('refuses bodies past it with 503 and Retry-After, and lets a valid delivery through meanwhile', async () => {
    // Twelve unfinished bodies of 900 KiB (of 1 MiB declared): three quarters of the budget (3 MiB) hold three.
    const flood = await Promise.all(Array.from({ length: 12 }, () => openRequest(receiver.url, forgedStandardHead(MiB), 900 * 1024)));
    const refused = await waitForAnswers(flood, 9);
    for (const request of refused) {
      expect(statusOf(request.answer())).toBe(503);
      expect(request.answer().toLowerCase()).toContain('retry-after: 1');
    }
    const waiting = flood.filter((request) => request.answer() === '');
    expect(waiting).toHaveLength(3);
    // Counted under one reason, however much was held at each refusal.
    expect(
      receiver.rejections.counts()[`the bodies in flight hold what limits.inFlightBodyBytes (${4 * MiB}) allows`],
    ).toBeGreaterThanOrEqual(9);
    // The flood holds its share; a delivery as senders send them still gets through.
    expect((await sendValid(receiver)).status).toBe(202);
    // A large valid body finds no room while the flood holds three quarters...
    expect((await sendValid(receiver, 400 * 1024)).status).toBe(503);
    // ...and once the flood goes away, its bytes are given back.
    for (const request of flood) request.socket.destroy();
    // The receiver logs each request that ended mid-body, once it has let go of what it held.
    await waitFor('the three held bodies to be let go', () => receiver.logs.filter((line) => line.msg === 'request failed').length >= 3);
    expect((await sendValid(receiver, 900 * 1024)).status).toBe(202);
    await receiver.settledRuns();
  });

  it('refuses a declared body that cannot fit before reading it', async () => {
    const flood = await Promise.all(Array.from({ length: 3 }, () => openRequest(receiver.url, forgedStandardHead(MiB), 1000 * 1024)));
    await receiverTakesItIn();
    const late = await openRequest(receiver.url, forgedStandardHead(MiB));
    expect(statusOf(await late.answered)).toBe(503);
    for (const request of flood) request.socket.destroy();
  });
});

function waitForAnswers(requests: OpenRequest[], count: number): Promise<OpenRequest[]> {
  return waitFor(`${count} of the requests to be answered`, () => {
    const answered = requests.filter((request) => request.answer() !== '');
    return answered.length >= count && answered;
  });
}

describe('a cap on open connections', () => {
  it('answers a connection past it 503 at once and closes it; one under it is served', async () => {
    const receiver = await startTestReceiver({
      limits: { maxConnections: 4 },
      triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
    });
    try {
      // Four connections that never finish their headers.
      const idle = await Promise.all(
        Array.from({ length: 4 }, () => openRequest(receiver.url, 'POST /hooks/app/main HTTP/1.1\r\nHost: x\r\nX-Unfinished: yes', -1)),
      );
      await receiverTakesItIn();
      const extra = await openRequest(receiver.url, 'GET /healthz HTTP/1.1\r\nHost: x');
      const answer = await extra.answered;
      expect(statusOf(answer)).toBe(503);
      expect(answer.toLowerCase()).toContain('retry-after: 1');
      await new Promise<void>((resolve) => (extra.socket.destroyed ? resolve() : extra.socket.once('close', () => resolve())));
      for (const request of idle) request.socket.destroy();
      await receiverTakesItIn();
      expect((await sendValid(receiver)).status).toBe(202);
      expect(receiver.rejections.counts()['too many connections']).toBe(1);
    } finally {
      await receiver.dispose();
    }
  });
});

describe('while the receiver stops', () => {
  it('answers new connections 503 with Retry-After during the grace, instead of refusing them', async () => {
    // The command runs until the test lets it finish: the grace lasts as long as the test needs.
    const gate = tempDir();
    const release = join(gate, 'release');
    const receiver = await startTestReceiver({
      limits: { shutdownGraceSeconds: 300 },
      triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: `while [ ! -f '${release}' ]; do sleep 0.05; done` }],
    });
    try {
      expect((await sendValid(receiver)).status).toBe(202);
      await waitFor('the run to start', () => receiver.runner.history.runs().some((run) => run.status === 'running'));
      const closing = receiver.close();
      const during = await openRequest(receiver.url, 'GET /healthz HTTP/1.1\r\nHost: x');
      const answer = await during.answered;
      expect(statusOf(answer)).toBe(503);
      expect(answer.toLowerCase()).toContain('retry-after: 5');
      writeFileSync(release, '');
      await closing;
      expect(receiver.runner.history.runs()[0]?.status).toBe('succeeded');
    } finally {
      writeFileSync(release, '');
      await receiver.dispose();
      rmSync(gate, { recursive: true, force: true });
    }
  });
});

describe('limits.rememberedIds', () => {
  it('bounds the delivery ids the receiver remembers: past it the soonest to expire is forgotten', async () => {
    const receiver = await startTestReceiver({
      limits: { rememberedIds: 2 },
      triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
    });
    try {
      const send = (id: string) => {
        const r = buildDeliveryRequest({
          scheme: 'standard',
          token: TOKEN,
          id,
          timestamp: now(),
          data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: 'abc123', source: 'test' },
        });
        return receiver.send(r.path, { headers: r.headers, body: r.body! });
      };
      for (const id of ['msg_1', 'msg_2', 'msg_3']) expect((await send(id)).status).toBe(202);
      expect((await send('msg_3')).status).toBe(200);
      // msg_1 expired soonest of the three, and only two are kept.
      expect((await send('msg_1')).status).toBe(202);
      await receiver.settledRuns();
    } finally {
      await receiver.dispose();
    }
  });
});
