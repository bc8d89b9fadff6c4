/**
 * SIGHUP to a real `triggler serve`: triggers added and removed take effect, a bad config is refused
 * whole, a field that needs a restart is named; and HTTPS with a self-signed certificate made here,
 * renewed without a restart.
 */
import { writeSelfSigned } from '../support/self-signed';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import pino from 'pino';
import { Agent, request } from 'undici';
import { buildDeliveryRequest } from '../../protocol';
import { parseReceiverConfig } from '../../receiver/config/schema';
import { startReceiver } from '../../receiver/receiver';
import { freePort, startCli, stopCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';
import { waitFor } from '../support/wait-for';

const TOKEN = 'whsec_cmVsb2FkIHRlc3QgdG9rZW4gZm9yIHRoZSByZWNlaXZlcg==';
const NEW_TOKEN = 'whsec_YSBuZXcgdG9rZW4gdGhlIHJlbG9hZCBtdXN0IG5vdCBwdXQgaW4gdXNl';

function signed(repository: string, branch: string, token = TOKEN) {
  return buildDeliveryRequest({
    scheme: 'standard',
    token,
    id: `msg_${Math.random().toString(36).slice(2)}`,
    timestamp: Math.floor(Date.now() / 1000),
    data: { repository, branch, ref: `refs/heads/${branch}`, commit: 'a'.repeat(40), source: 'test' },
  });
}

async function send(url: string, repository: string, branch: string, dispatcher?: Agent, token = TOKEN): Promise<number> {
  const delivery = signed(repository, branch, token);
  const response = await request(`${url}${delivery.path}`, {
    method: 'POST',
    headers: delivery.headers,
    body: delivery.body!,
    ...(dispatcher ? { dispatcher } : {}),
  });
  await response.body.dump();
  return response.statusCode;
}

describe('SIGHUP reloads the whole config', () => {
  const dir = tempDir('triggler-reload-');
  const configFile = join(dir, 'receiver.json');
  let port: number;
  const config = (triggers: object[], extra: object = {}) =>
    fs.writeFileSync(
      configFile,
      JSON.stringify({ listen: { host: '127.0.0.1', port }, admin: false, stateDir: './state', triggers, ...extra }),
      { mode: 0o600 },
    );
  const trigger = (branch: string) => ({ repository: 'app', branch, token: TOKEN, command: `echo ${branch} >> ${join(dir, 'ran.txt')}` });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('adds and removes triggers, refuses a bad config whole, and names a field that needs a restart', async () => {
    port = await freePort();
    config([trigger('main')]);
    const serve = await startCli(['serve', '--config', configFile], /receiver listening/);
    const url = `http://127.0.0.1:${port}`;
    try {
      expect(await send(url, 'app', 'main')).toBe(202);
      expect(await send(url, 'app', 'dev')).toBe(401);

      config([trigger('main'), trigger('dev')]);
      serve.child.kill('SIGHUP');
      await waitFor('the reload', () => serve.output().includes('"msg":"config reloaded"'));
      expect(serve.output()).toContain('"added":["app@dev"]');
      expect(await send(url, 'app', 'dev')).toBe(202);

      fs.writeFileSync(configFile, '{ "triggers": [ { "repository": "app", "branch": "main", "comand": "true" } ] }');
      serve.child.kill('SIGHUP');
      await waitFor('the refusal', () => serve.output().includes('config reload refused'));
      const refusal =
        serve
          .output()
          .split('\n')
          .find((line) => line.includes('config reload refused')) ?? '';
      expect(refusal).toContain('triggers[0].comand: unknown key (did you mean \\"command\\"?)');
      expect(await send(url, 'app', 'dev')).toBe(202);

      config([trigger('dev')], { limits: { maxConcurrentRuns: 2 } });
      serve.child.kill('SIGHUP');
      // The log is written asynchronously: the warning after the reload's line may come a moment later.
      await waitFor('the second reload and its warning', () =>
        serve.output().includes('config reloaded, but limits takes effect only after a restart'),
      );
      expect(serve.output().match(/"msg":"config reloaded"/g)).toHaveLength(2);
      expect(serve.output()).toContain('"removed":["app@main"]');
      expect(await send(url, 'app', 'main')).toBe(401);
      expect(await send(url, 'app', 'dev')).toBe(202);
      await waitFor(
        'the runs',
        () => fs.existsSync(join(dir, 'ran.txt')) && fs.readFileSync(join(dir, 'ran.txt'), 'utf8').trim().split('\n').length === 4,
      );
    } finally {
      await stopCli(serve.child);
    }
  });
});

describe('listen.tls', () => {
  const dir = tempDir('triggler-tls-');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function certificate(name: string): { cert: string; key: string } {
    const cert = join(dir, `${name}.pem`);
    const key = join(dir, `${name}-key.pem`);
    writeSelfSigned({ cert, key }, name);
    return { cert, key };
  }

  function servedCertificate(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerCertificate().subject.CN as string);
        socket.end();
      });
      socket.on('error', reject);
    });
  }

  it('serves HTTPS with the configured certificate, refuses plain HTTP, and takes a renewed one on SIGHUP', async () => {
    const first = certificate('first');
    const port = await freePort();
    const configFile = join(dir, 'receiver.json');
    const tls = { cert: join(dir, 'live.pem'), key: join(dir, 'live-key.pem') };
    fs.copyFileSync(first.cert, tls.cert);
    fs.copyFileSync(first.key, tls.key);
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        listen: { host: '127.0.0.1', port, tls },
        admin: false,
        stateDir: './state',
        triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
      }),
      { mode: 0o600 },
    );
    const serve = await startCli(['serve', '--config', configFile], /receiver listening/);
    try {
      expect(serve.output()).toContain(`"url":"https://127.0.0.1:${port}"`);
      const trusting = new Agent({ connect: { ca: fs.readFileSync(first.cert) } });
      expect(await send(`https://127.0.0.1:${port}`, 'app', 'main', trusting)).toBe(202);
      await trusting.close();
      await expect(request(`http://127.0.0.1:${port}/healthz`, { headersTimeout: 2000, bodyTimeout: 2000 })).rejects.toThrow();
      expect(await servedCertificate(port)).toBe('first');

      const renewed = certificate('renewed');
      fs.copyFileSync(renewed.cert, tls.cert);
      fs.copyFileSync(renewed.key, tls.key);
      serve.child.kill('SIGHUP');
      await waitFor('the reload', () => serve.output().includes('"msg":"config reloaded"'));
      expect(await servedCertificate(port)).toBe('renewed');
    } finally {
      await stopCli(serve.child);
    }
  });

  it("refuses a reload whose certificate cannot be read, or whose key is not the certificate's: its new trigger and token do not take effect", async () => {
    const kept = certificate('kept');
    const port = await freePort();
    const configFile = join(dir, 'unreadable.json');
    const url = `https://127.0.0.1:${port}`;
    const write = (tls: object, triggers: object[]) =>
      fs.writeFileSync(
        configFile,
        JSON.stringify({ listen: { host: '127.0.0.1', port, tls }, admin: false, stateDir: './state-unreadable', triggers }),
        { mode: 0o600 },
      );
    write(kept, [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }]);
    const serve = await startCli(['serve', '--config', configFile], /receiver listening/);
    const trusting = new Agent({ connect: { ca: fs.readFileSync(kept.cert) } });
    try {
      expect(await send(url, 'app', 'main', trusting)).toBe(202);

      const missing = { cert: join(dir, 'missing.pem'), key: join(dir, 'missing-key.pem') };
      write(missing, [
        { repository: 'app', branch: 'main', token: NEW_TOKEN, command: 'true' },
        { repository: 'app', branch: 'dev', token: NEW_TOKEN, command: 'true' },
      ]);
      serve.child.kill('SIGHUP');
      await waitFor('the refusal', () => serve.output().includes('config reload refused'));
      const refusal =
        serve
          .output()
          .split('\n')
          .find((line) => line.includes('config reload refused')) ?? '';
      expect(refusal).toContain(`listen.tls.cert: cannot read ${missing.cert}: ENOENT`);
      expect(serve.output()).not.toContain('"msg":"config reloaded"');

      expect(await send(url, 'app', 'main', trusting)).toBe(202);
      expect(await send(url, 'app', 'main', trusting, NEW_TOKEN)).toBe(401);
      expect(await send(url, 'app', 'dev', trusting, NEW_TOKEN)).toBe(401);
      expect(await servedCertificate(port)).toBe('kept');

      // Both files read, but the key is another certificate's: refused the same way.
      const other = certificate('other');
      write({ cert: kept.cert, key: other.key }, [{ repository: 'app', branch: 'dev', token: NEW_TOKEN, command: 'true' }]);
      serve.child.kill('SIGHUP');
      await waitFor(
        'the second refusal',
        () =>
          serve
            .output()
            .split('\n')
            .filter((line) => line.includes('config reload refused')).length === 2,
      );
      expect(serve.output()).not.toContain('"msg":"config reloaded"');
      expect(await send(url, 'app', 'main', trusting)).toBe(202);
      expect(await send(url, 'app', 'dev', trusting, NEW_TOKEN)).toBe(401);
      expect(await servedCertificate(port)).toBe('kept');
    } finally {
      await trusting.close();
      await stopCli(serve.child);
    }
  });

  it('re-reads, on a reload without a config, the certificate at the paths the last config reload named', async () => {
    const first = certificate('before-reload');
    const moved = { cert: join(dir, 'moved.pem'), key: join(dir, 'moved-key.pem') };
    const afterReload = certificate('after-reload');
    fs.copyFileSync(afterReload.cert, moved.cert);
    fs.copyFileSync(afterReload.key, moved.key);
    const base = {
      admin: false,
      stateDir: join(dir, 'state-moved'),
      triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
    } as const;
    const receiver = await startReceiver(parseReceiverConfig({ ...base, listen: { host: '127.0.0.1', port: 0, tls: first } }), {
      logger: pino({ level: 'silent' }),
    });
    try {
      const port = Number(new URL(receiver.url).port);
      expect(await servedCertificate(port)).toBe('before-reload');
      await receiver.reload(parseReceiverConfig({ ...base, listen: { host: '127.0.0.1', port, tls: moved } }));
      expect(await servedCertificate(port)).toBe('after-reload');

      const renewed = certificate('renewed-in-place');
      fs.copyFileSync(renewed.cert, moved.cert);
      fs.copyFileSync(renewed.key, moved.key);
      await receiver.reload();
      expect(await servedCertificate(port)).toBe('renewed-in-place');
    } finally {
      await receiver.close();
    }
  });
});
