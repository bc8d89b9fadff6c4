/**
 * What keeps the admin listener the operator's own: only its own names as `Host` (so a web page
 * that rebinds its name to this host reads nothing), `nosniff` on every answer, and a connection
 * cap of its own.
 */
import * as fs from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { listen } from '../../../receiver/delivery-listener';
import { ensureAdminCredential } from '../../../receiver/http/admin-credential';
import { type AdminServer, createAdminServer, splitHost } from '../../../receiver/http/admin-server';
import type { RunRecord } from '../../../receiver/runs/run-record';
import { tempDir } from '../../support/receiver-fixture';

const run = { id: 'r1', status: 'succeeded', repository: 'site', branch: 'main' } as RunRecord;
const history = {
  runs: () => [run],
  run: (id: string) => (id === run.id ? run : undefined),
  runLog: async (id: string) => (id === run.id ? Buffer.from('<script>alert(1)</script>\n') : undefined),
};

/** A GET with the Host header as given (HTTP clients set their own). */
function get(port: number, path: string, host: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin listener guards', () => {
  const dir = tempDir();
  const credential = ensureAdminCredential(dir);
  let server: AdminServer;
  let port: number;
  const held: Socket[] = [];

  const connectionsOpen = (): Promise<number> => new Promise((resolve) => server.getConnections((_error, count) => resolve(count)));

  beforeAll(async () => {
    server = createAdminServer(history, {
      credential,
      logger: pino({ level: 'silent' }),
      allowedHosts: ['triggler.internal'],
      maxConnections: 3,
    });
    port = Number(new URL(await listen(server, '127.0.0.1', 0)).port);
  });
  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each(['localhost', '127.0.0.1', '[::1]', 'triggler.internal', 'LOCALHOST'])(
    'answers Host %s, with its port or without',
    async (name) => {
      expect((await get(port, '/runs', `${name}:${port}`)).status).toBe(200);
      expect((await get(port, '/runs', name)).status).toBe(200);
    },
  );

  it.each(['attacker.example', `attacker.example:${'PORT'}`, 'localhost:1', '127.0.0.2', 'localhost.attacker.example', 'localhost:80:80'])(
    'answers 421 to Host %p and reads nothing',
    async (host) => {
      const answer = await get(port, '/runs/r1/log', host.replace('PORT', String(port)));
      expect(answer.status).toBe(421);
      expect(answer.body).not.toContain('alert');
      expect(JSON.parse(answer.body)).toEqual({ error: 'this listener does not answer to that host name' });
    },
  );

  it('reads a Host header as a name and a port', async () => {
    expect(splitHost('[::1]:5001')).toEqual({ name: '[::1]', port: '5001' });
    expect(splitHost('Example.COM')).toEqual({ name: 'example.com', port: undefined });
    expect(splitHost('a:b:c')).toBeUndefined();
  });

  it.each(['/runs', '/runs/r1/log', '/healthz', '/nowhere', '/runs/r1/log/events'])('says nosniff on %s', async (path) => {
    const answer = await get(port, path, `localhost:${port}`);
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
  });

  it('answers connections past its own cap 503 with Retry-After at once, and closes them', async () => {
    while ((await connectionsOpen()) > 0) await new Promise((resolve) => setImmediate(resolve));
    // Three connections, each seen through (a request answered on it), then held open.
    for (let i = 0; i < 3; i++) {
      const socket = connect(port, '127.0.0.1');
      held.push(socket);
      await new Promise<void>((resolve) => {
        socket.once('data', () => resolve());
        socket.write(`GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      });
    }
    const over = connect(port, '127.0.0.1');
    let text = '';
    over.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await new Promise((resolve) => over.once('close', resolve));
    expect(text).toMatch(/^HTTP\/1\.1 503 /);
    expect(text).toMatch(/\r\nretry-after: 1\r\n/);
    // Once one closes, a new connection is served again.
    const closed = held.pop()!;
    await new Promise((resolve) => {
      closed.once('close', resolve);
      closed.destroy();
    });
    while ((await connectionsOpen()) > 2) await new Promise((resolve) => setImmediate(resolve));
    expect((await get(port, '/healthz', 'localhost')).status).toBe(200);
  });
});
