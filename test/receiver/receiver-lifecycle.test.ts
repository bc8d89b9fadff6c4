/** The receiver's start and stop as a whole: a start that fails part-way leaves nothing behind. */
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { parseReceiverConfig, type ReceiverConfig } from '../../receiver/config/schema';
import { startReceiver } from '../../receiver/receiver';
import { tempDir } from '../support/receiver-fixture';

const TOKEN = 'lifecycle-token-0123456789abcdef';

async function listening(port = 0): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server;
}

const portOf = (server: Server): number => (server.address() as { port: number }).port;
const closed = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

describe('the receiver start', () => {
  let dir: string;
  const servers: Server[] = [];

  beforeEach(() => {
    dir = tempDir('triggler-lifecycle-');
  });
  afterEach(async () => {
    for (const server of servers.splice(0)) await closed(server);
    rmSync(dir, { recursive: true, force: true });
  });

  function config(deliveryPort: number, adminPort: number): ReceiverConfig {
    return parseReceiverConfig({
      stateDir: join(dir, 'state'),
      listen: { host: '127.0.0.1', port: deliveryPort },
      admin: { host: '127.0.0.1', port: adminPort },
      triggers: [{ repository: 'svc', branch: 'main', token: TOKEN, command: 'true' }],
    });
  }

  it('stops what it had started when the admin port is taken: the delivery port and the state directory are free again', async () => {
    const taken = await listening();
    servers.push(taken);
    // A port that was free a moment ago, for the delivery listener.
    const reserved = await listening();
    const deliveryPort = portOf(reserved);
    await closed(reserved);
    const logs: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });

    await expect(startReceiver(config(deliveryPort, portOf(taken)), { logger })).rejects.toThrow(/EADDRINUSE/);

    // The delivery listener is closed (its port can be bound again) and nothing failed to stop.
    servers.push(await listening(deliveryPort));
    expect(logs.filter((line) => line.msg === 'could not stop all that had started')).toEqual([]);
    await closed(servers.pop()!);
    // The runner let go of the state directory's lock: another receiver can start on it.
    const receiver = await startReceiver(config(0, 0), { logger });
    await receiver.close();
  });

  it('refuses a reload once the receiver has stopped', async () => {
    const running = config(0, 0);
    const receiver = await startReceiver(running, { logger: pino({ level: 'silent' }) });
    await receiver.close();
    await expect(receiver.reload(running)).rejects.toThrow('the receiver is stopped');
  });
});
