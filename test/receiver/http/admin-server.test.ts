import * as fs from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import {
  ADMIN_CREDENTIAL_FILE,
  adminAuthorization,
  ensureAdminCredential,
  readAdminCredential,
} from '../../../receiver/http/admin-credential';
import { createAdminServer } from '../../../receiver/http/admin-server';
import { listen } from '../../../receiver/delivery-listener';
import { rawRequest, startTestReceiver, tempDir, type TestReceiver } from '../../support/receiver-fixture';

describe('admin listener', () => {
  let receiver: TestReceiver;

  beforeAll(async () => {
    receiver = await startTestReceiver({
      triggers: [{ repository: 'app', branch: 'main', token: 'admin-test-token-0123456789', command: 'true' }],
    });
  });
  afterAll(() => receiver.dispose());

  it.each(['//[', '//', '*'])('answers the request target %s with 400 and keeps running', async (target) => {
    const answer = await rawRequest(receiver.adminUrl!, `GET ${target} HTTP/1.1\r\nHost: x`);
    expect(answer.status).toBe(400);
    const health = await request(`${receiver.adminUrl}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  });

  it("keeps its credential in the state directory, readable by the receiver's user only", () => {
    const file = join(receiver.dir, 'state', ADMIN_CREDENTIAL_FILE);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(readAdminCredential(join(receiver.dir, 'state'))).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('admin writes', () => {
  const dir = tempDir();
  const credential = ensureAdminCredential(dir);
  const done: string[][] = [];
  const server = createAdminServer(
    { runs: () => [], run: () => undefined, runLog: async () => undefined },
    {
      credential,
      actions: [
        { path: /^\/runs\/([a-z0-9]+)\/rerun$/, run: async (params) => (done.push(params), { status: 202, body: { status: 'queued' } }) },
      ],
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

  it('refuses an action without the credential, or with another, and runs nothing', async () => {
    for (const headers of [{}, { authorization: adminAuthorization('x'.repeat(43)) }, { authorization: credential }]) {
      const response = await request(`${url}/runs/r1/rerun`, { method: 'POST', headers });
      expect(response.statusCode).toBe(401);
      await response.body.dump();
    }
    expect(done).toEqual([]);
  });

  it('runs an action that carries the credential', async () => {
    const response = await request(`${url}/runs/r1/rerun`, { method: 'POST', headers: { authorization: adminAuthorization(credential) } });
    expect(response.statusCode).toBe(202);
    expect(await response.body.json()).toEqual({ status: 'queued' });
    expect(done).toEqual([['r1']]);
  });

  it('makes a credential file that others can read private again', () => {
    fs.chmodSync(join(dir, ADMIN_CREDENTIAL_FILE), 0o644);
    expect(ensureAdminCredential(dir)).toBe(credential);
    expect(fs.statSync(join(dir, ADMIN_CREDENTIAL_FILE)).mode & 0o777).toBe(0o600);
  });

  it('says how to get the credential when the state directory has none', () => {
    const empty = tempDir();
    try {
      expect(() => readAdminCredential(empty)).toThrow(
        /no admin credential at .*admin-token: has the receiver with this stateDir started yet\?/,
      );
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
