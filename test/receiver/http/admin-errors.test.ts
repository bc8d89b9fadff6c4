/** The admin listener answers what an action throws through the error catalogue, as the delivery listener does. */
import * as fs from 'node:fs';
import pino from 'pino';
import { request } from 'undici';
import { listen } from '../../../receiver/delivery-listener';
import { ReceiverError } from '../../../receiver/errors';
import { adminAuthorization, ensureAdminCredential } from '../../../receiver/http/admin-credential';
import { createAdminServer } from '../../../receiver/http/admin-server';
import { JournalWriteError } from '../../../receiver/runs/run-store';
import { RunRequestRefused } from '../../../receiver/runs/runner';
import { tempDir } from '../../support/receiver-fixture';

describe('admin listener errors', () => {
  const dir = tempDir();
  const credential = ensureAdminCredential(dir);
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const thrown: Record<string, unknown> = {
    journal: new JournalWriteError(new Error('ENOSPC: no space left on device')),
    stopping: new ReceiverError('stopping', 'the runner is shutting down'),
    missing: new RunRequestRefused('no run r9', 'not-found'),
    fault: new TypeError("Cannot read properties of undefined (reading 'id')"),
  };
  const server = createAdminServer(
    { runs: () => [], run: () => undefined, runLog: async () => undefined },
    {
      credential,
      logger,
      actions: [{ path: /^\/throw\/([a-z]+)$/, run: ([name]) => Promise.reject(thrown[name!]) }],
    },
  );
  let url: string;

  beforeAll(async () => {
    url = await listen(server, '127.0.0.1', 0);
  });
  afterAll(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function post(name: string): Promise<{ status: number; retryAfter: unknown; body: unknown }> {
    const response = await request(`${url}/throw/${name}`, { method: 'POST', headers: { authorization: adminAuthorization(credential) } });
    return { status: response.statusCode, retryAfter: response.headers['retry-after'], body: await response.body.json() };
  }

  it('answers a receiver that cannot take the run 503 with Retry-After, without the detail of the log', async () => {
    expect(await post('journal')).toEqual({
      status: 503,
      retryAfter: '5',
      body: { error: 'the receiver cannot take deliveries right now; try again' },
    });
    expect(await post('stopping')).toEqual({
      status: 503,
      retryAfter: '5',
      body: { error: 'the receiver cannot take deliveries right now; try again' },
    });
  });

  it('answers a refused request with its own message and status', async () => {
    expect(await post('missing')).toEqual({ status: 404, retryAfter: undefined, body: { error: 'no run r9' } });
  });

  it('answers a fault of ours 500 with no detail, and logs it with its stack', async () => {
    expect(await post('fault')).toEqual({ status: 500, retryAfter: undefined, body: { error: 'internal error' } });
    const line = logs.find((entry) => entry.msg === 'admin request failed');
    expect(line).toMatchObject({
      level: 50,
      path: '/throw/fault',
      err: { type: 'TypeError', message: "Cannot read properties of undefined (reading 'id')" },
    });
    expect(String((line!.err as { stack: string }).stack)).toContain('admin-errors.test.ts');
  });
});
