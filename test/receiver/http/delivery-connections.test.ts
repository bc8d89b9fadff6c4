/**
 * Connections that never say a word cannot lock senders out of the TLS listener: a connection
 * that sends no ClientHello is closed after the handshake timeout, one host holds at most its
 * share of connections, and past the global cap a client is answered 503 rather than reset. Idle
 * clients connect from other loopback addresses (127.0.0.2, ...), the sender from 127.0.0.1.
 */
import { writeSelfSigned } from '../../support/self-signed';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { Agent } from 'undici';
import { parseReceiverConfig, type ReceiverConfigInput } from '../../../receiver/config/schema';
import { startReceiver, type InProcessReceiver } from '../../../receiver/receiver';
import { sendSignedPush, tempDir } from '../../support/receiver-fixture';

const TOKEN = 'whsec_aWRsZSBzb2NrZXRzIHRlc3Qga2V5IGlkbGUgc29ja2V0cw==';

describe('the TLS delivery listener under idle connections', () => {
  let dir: string;
  let receiver: InProcessReceiver | undefined;
  let idle: Socket[] = [];
  let agent: Agent;

  beforeAll(() => {
    dir = tempDir();
    writeSelfSigned({ cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') });
    agent = new Agent({ connect: { ca: readFileSync(join(dir, 'cert.pem')) }, pipelining: 0 });
  });

  afterEach(async () => {
    for (const socket of idle) socket.destroy();
    idle = [];
    await receiver?.close();
    receiver = undefined;
  });

  afterAll(async () => {
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(limits: ReceiverConfigInput['limits']): Promise<InProcessReceiver> {
    const config = parseReceiverConfig({
      listen: { host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } },
      admin: false,
      stateDir: join(dir, `state-${Date.now()}`),
      limits,
      triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
    });
    receiver = await startReceiver(config, { logger: pino({ level: 'silent' }) });
    return receiver;
  }

  /** `count` TCP connections from `from` that never send a byte; resolves once each is connected. */
  async function openIdle(url: string, from: string, count: number): Promise<Socket[]> {
    const { port } = new URL(url);
    const sockets = await Promise.all(
      Array.from({ length: count }, async () => {
        const socket = connect({ host: '127.0.0.1', port: Number(port), localAddress: from });
        socket.on('error', () => undefined);
        await once(socket, 'connect');
        return socket;
      }),
    );
    idle.push(...sockets);
    return sockets;
  }

  const deliver = (url: string, id: string) => sendSignedPush(url, { token: TOKEN, id }, agent);

  it('closes a connection that never sends a ClientHello once the handshake timeout passes', async () => {
    const { url } = await start({ handshakeTimeoutSeconds: 1 });
    const [silent] = await openIdle(url, '127.0.0.2', 1);
    // Node's own default would hold it for two minutes, past this test's timeout.
    await once(silent!, 'close');
    expect(silent!.destroyed).toBe(true);
  }, 30_000);

  it('serves a sender while one host holds more idle connections than the whole cap', async () => {
    const { url, rejections } = await start({ maxConnections: 20, maxConnectionsPerClient: 5, handshakeTimeoutSeconds: 60 });
    // Connected before the sender, so accepted before it (the accept queue is first in, first out).
    await openIdle(url, '127.0.0.2', 25);
    expect(await deliver(url, 'msg_past_idle')).toEqual({ status: 202 });
    expect(rejections.counts()).toMatchObject({ 'too many connections from one client': 20 });
  }, 30_000);

  it('answers 503 with Retry-After, over TLS, to a client past the global cap', async () => {
    const { url } = await start({ maxConnections: 20, maxConnectionsPerClient: 5, handshakeTimeoutSeconds: 60 });
    for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) await openIdle(url, from, 5);
    expect(await deliver(url, 'msg_past_cap')).toEqual({ status: 503, retryAfter: '1' });
  }, 30_000);
});
