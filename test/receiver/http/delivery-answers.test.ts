/**
 * The delivery listener's answers, byte for byte, on kept-alive connections: refusals of every
 * scheme come from the error catalogue with the same status, body and headers each time, the
 * connection is kept when the request was read whole and closed when its body was refused unread,
 * and a valid delivery after a run of refusals on the same connection is accepted. Signatures come
 * from the independent libraries (standardwebhooks, @octokit/webhooks-methods, Python's hashlib).
 */
import { connect, type Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { signWithOctokit } from '../../support/octokit-signer';
import { pythonSeedSignature } from '../../support/python-seed';
import { startTestReceiver, type TestReceiver } from '../../support/receiver-fixture';
import { waitFor } from '../../support/wait-for';

const TOKEN = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const FORGED = 'whsec_QWxzbyBhIGtleSwgYnV0IG5vdCB0aGUgcmlnaHQgb25l';
const SEED_TOKEN = 'seed-token-for-the-original-sender';
const GITHUB_SECRET = 'a github webhook secret, long enough';
/** Small limits, so that one body held or given back shows. */
const BODY_LIMIT = 3000;
const BODY_BUDGET = 4000;
const UNAUTHORIZED = '{"error":"unauthorized: unknown trigger or bad signature"}';

interface Answer {
  status: number;
  /** Header names in lower case, in the order sent. */
  headers: Array<[string, string]>;
  body: string;
}

/** One kept-alive connection: requests written exactly as given, answers read one by one. */
class Connection {
  private received = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => undefined);
  }

  static open(url: string): Promise<Connection> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes one piece of a request; resolves once the kernel has it. */
  write(bytes: string | Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(bytes, () => resolve()));
  }

  async request(method: string, path: string, headers: Record<string, string>, body = ''): Promise<Answer> {
    await this.write(head(method, path, headers, Buffer.byteLength(body)) + body);
    return this.answer();
  }

  /** The next whole answer on the connection. */
  async answer(): Promise<Answer> {
    for (;;) {
      const end = this.received.indexOf('\r\n\r\n');
      if (end >= 0) {
        const lines = this.received.subarray(0, end).toString('latin1').split('\r\n');
        const headers = lines.slice(1).map((line): [string, string] => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
        });
        const length = Number(headers.find(([name]) => name === 'content-length')?.[1] ?? 0);
        if (this.received.length >= end + 4 + length) {
          const body = this.received.subarray(end + 4, end + 4 + length).toString('utf8');
          this.received = this.received.subarray(end + 4 + length);
          return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)?.[1]), headers, body };
        }
      }
      if (this.closed) throw new Error(`the connection closed before a whole answer: ${this.received.toString('latin1')}`);
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }

  /** Resolves once the receiver has closed the connection. */
  async closedByPeer(): Promise<void> {
    while (!this.closed) {
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }
}

function head(method: string, path: string, headers: Record<string, string>, bodyBytes: number): string {
  const lines = Object.entries({ host: '127.0.0.1', ...headers, 'content-length': String(bodyBytes) }).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** The headers of an answer, without those Node adds to every one (date, keep-alive). */
function ownHeaders(answer: Answer): Array<[string, string]> {
  return answer.headers.filter(
    ([name, value]) => name !== 'date' && name !== 'keep-alive' && !(name === 'connection' && value === 'keep-alive'),
  );
}

function jsonHeaders(body: string, ...extra: Array<[string, string]>): Array<[string, string]> {
  return [['content-type', 'application/json; charset=utf-8'], ['content-length', String(Buffer.byteLength(body))], ...extra];
}

const now = () => Math.floor(Date.now() / 1000);

function pushBody(commit: string): string {
  return JSON.stringify({
    type: 'git.push',
    timestamp: new Date().toISOString(),
    data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit, source: 'test' },
  });
}

/** Standard Webhooks headers for `body`, signed by the standardwebhooks library with `token`. */
function standardHeaders(token: string, id: string, timestamp: number, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': new Webhook(token).sign(id, new Date(timestamp * 1000), body),
  };
}

describe('the delivery listener answers', () => {
  let receiver: TestReceiver;
  beforeAll(async () => {
    receiver = await startTestReceiver({
      limits: { bodyBytes: BODY_LIMIT, inFlightBodyBytes: BODY_BUDGET },
      triggers: [
        { repository: 'app', branch: 'main', token: TOKEN, command: 'true' },
        { repository: 'legacy', branch: 'master', token: SEED_TOKEN, command: 'true' },
        { repository: 'Hello-World', branch: 'main', token: GITHUB_SECRET, command: 'true' },
      ],
    });
  });
  afterAll(() => receiver.dispose());

  it('every scheme refused alike, again and again, on kept-alive connections, and then a valid delivery', async () => {
    let connection = await Connection.open(receiver.url);
    try {
      const body = pushBody('a'.repeat(40));
      const github = JSON.stringify({
        ref: 'refs/heads/main',
        after: 'b'.repeat(40),
        repository: { name: 'Hello-World', full_name: 'o/Hello-World' },
      });
      const [forgedHub] = await signWithOctokit('not the secret', [github]);
      const ts = now();
      // What, how, status, body, and whether the connection closes: a refusal before a body is read does.
      const refusals: Array<[string, () => Promise<Answer>, number, string, boolean?]> = [
        [
          'a forged Standard signature',
          () => connection.request('POST', '/hooks/app/main', standardHeaders(FORGED, 'msg_forged', ts, body), body),
          401,
          UNAUTHORIZED,
        ],
        [
          'a Standard timestamp too old',
          () => connection.request('POST', '/hooks/app/main', standardHeaders(TOKEN, 'msg_old', ts - 3600, body), body),
          400,
          '{"error":"webhook-timestamp is too old"}',
          true,
        ],
        [
          'an unknown Standard trigger',
          () => connection.request('POST', '/hooks/app/nope', standardHeaders(TOKEN, 'msg_nope', ts, body), body),
          401,
          UNAUTHORIZED,
          true,
        ],
        [
          'a forged seed signature',
          () => connection.request('GET', '/legacy-master', { 'X-Signature-Timestamp': String(ts), 'X-Signature': 'a'.repeat(64) }),
          401,
          UNAUTHORIZED,
        ],
        [
          'a seed request without its timestamp',
          () => connection.request('GET', '/legacy-master', { 'X-Signature': 'a'.repeat(64) }),
          400,
          '{"error":"X-Signature-Timestamp is missing"}',
        ],
        [
          'a forged GitHub signature',
          () =>
            connection.request(
              'POST',
              '/hooks/github',
              {
                'content-type': 'application/json',
                'x-github-event': 'push',
                'x-github-delivery': 'd-1',
                'x-hub-signature-256': forgedHub!,
              },
              github,
            ),
          401,
          UNAUTHORIZED,
        ],
      ];
      for (let round = 0; round < 3; round++) {
        for (const [what, send, status, text, closes = false] of refusals) {
          const answer = await send();
          expect({ what, status: answer.status, body: answer.body }).toEqual({ what, status, body: text });
          expect(ownHeaders(answer)).toEqual(closes ? jsonHeaders(text, ['connection', 'close']) : jsonHeaders(text));
          if (!closes) continue;
          await connection.closedByPeer();
          connection = await Connection.open(receiver.url);
        }
      }
      const accepted = await connection.request('POST', '/hooks/app/main', standardHeaders(TOKEN, 'msg_valid', now(), body), body);
      expect(accepted.status).toBe(202);
      expect(JSON.parse(accepted.body)).toMatchObject({ status: 'accepted', delivery: 'msg_valid' });
      const seedTs = now();
      const seed = await connection.request('GET', '/legacy-master', {
        'X-Signature-Timestamp': String(seedTs),
        'X-Signature': pythonSeedSignature(seedTs, 'legacy', 'master', SEED_TOKEN, 1000),
      });
      expect(seed.status).toBe(202);
      // The same signature again, now computed and remembered: a repeat, answered at once.
      expect(
        (await connection.request('GET', '/legacy-master', { 'X-Signature-Timestamp': String(seedTs), 'X-Signature': 'b'.repeat(64) }))
          .status,
      ).toBe(401);
    } finally {
      connection.socket.destroy();
    }
    await receiver.settledRuns();
    // The first refusals of each reason are logged in full, with what the log says beside the reason.
    expect(receiver.logs).toContainEqual(
      expect.objectContaining({
        msg: 'delivery rejected',
        reason: 'bad webhook-signature',
        status: 401,
        repository: 'app',
        branch: 'main',
        path: '/hooks/app/main',
      }),
    );
    expect(receiver.logs).toContainEqual(
      expect.objectContaining({
        msg: 'delivery rejected',
        reason: 'no trigger for this repository and branch',
        repository: 'app',
        branch: 'nope',
      }),
    );
    expect(receiver.logs).toContainEqual(
      expect.objectContaining({
        msg: 'delivery rejected',
        reason: 'webhook-timestamp is too old',
        header: 'webhook-timestamp',
        status: 400,
      }),
    );
    expect(receiver.logs).toContainEqual(
      expect.objectContaining({ msg: 'delivery rejected', reason: 'bad X-Hub-Signature-256', provider: 'github', delivery: 'd-1' }),
    );
    expect(receiver.rejections.counts()).toMatchObject({
      'bad webhook-signature': 3,
      'bad seed signature': 4,
      'bad X-Hub-Signature-256': 3,
    });
  });

  it('a refusal before its body is read closes the connection once answered, whether or not the body came', async () => {
    const body = pushBody('c'.repeat(40));
    const headers = standardHeaders(TOKEN, 'msg_unknown', now(), body);
    for (const sent of [body.slice(0, 10), body]) {
      const connection = await Connection.open(receiver.url);
      try {
        await connection.write(head('POST', '/hooks/app/unknown', headers, Buffer.byteLength(body)) + sent);
        const answer = await connection.answer();
        expect(answer.status).toBe(401);
        expect(ownHeaders(answer)).toEqual(jsonHeaders(UNAUTHORIZED, ['connection', 'close']));
        await connection.closedByPeer();
      } finally {
        connection.socket.destroy();
      }
    }
  });

  it('a body over the limit declared is refused before it is read, with connection: close', async () => {
    const connection = await Connection.open(receiver.url);
    try {
      await connection.write(head('POST', '/hooks/app/main', standardHeaders(TOKEN, 'msg_big', now(), '{}'), 2 * 1024 * 1024));
      const answer = await connection.answer();
      expect(answer.status).toBe(413);
      const text = JSON.stringify({ error: `body is larger than ${BODY_LIMIT} bytes` });
      expect(answer.body).toBe(text);
      expect(ownHeaders(answer)).toEqual(jsonHeaders(text, ['connection', 'close']));
      await connection.closedByPeer();
    } finally {
      connection.socket.destroy();
    }
  });

  it('a body that comes in several pieces is read whole and verified', async () => {
    const commit = 'd'.repeat(40);
    const body = pushBody(commit);
    const headers = standardHeaders(TOKEN, 'msg_pieces', now(), body);
    const connection = await Connection.open(receiver.url);
    const runsBefore = (await receiver.settledRuns()).length;
    try {
      await connection.write(head('POST', '/hooks/app/main', headers, Buffer.byteLength(body)));
      // Each piece is in the kernel before the next is written; however the receiver reads them,
      // the body it verifies must be the one that was signed.
      const thirds = [0, Math.floor(body.length / 3), Math.floor((2 * body.length) / 3), body.length];
      for (let i = 0; i < 3; i++) {
        await connection.write(body.slice(thirds[i], thirds[i + 1]));
        for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      }
      const answer = await connection.answer();
      expect(answer.status).toBe(202);
    } finally {
      connection.socket.destroy();
    }
    const runs = await receiver.settledRuns();
    expect(runs).toHaveLength(runsBefore + 1);
    expect(runs.at(-1)).toMatchObject({ commit });
  });

  it('gives back what a body held when its client goes away mid-body', async () => {
    // A forged delivery holding most of the budget, its client gone mid-body.
    const held = pushBody('e'.repeat(40)).padEnd(2800, ' ');
    const connection = await Connection.open(receiver.url);
    await connection.write(
      head('POST', '/hooks/app/main', standardHeaders(FORGED, 'msg_gone', now(), held), held.length) + held.slice(0, 2500),
    );
    const failedBefore = receiver.logs.filter((line) => line.msg === 'request failed').length;
    connection.socket.destroy();
    await waitFor(
      'the receiver to let the body go',
      () => receiver.logs.filter((line) => line.msg === 'request failed').length > failedBefore,
    );
    // A delivery that would not fit beside it is accepted.
    const body = pushBody('f'.repeat(40)).padEnd(2000, ' ');
    const again = await Connection.open(receiver.url);
    try {
      expect((await again.request('POST', '/hooks/app/main', standardHeaders(TOKEN, 'msg_after', now(), body), body)).status).toBe(202);
    } finally {
      again.socket.destroy();
    }
    await receiver.settledRuns();
  });
});
