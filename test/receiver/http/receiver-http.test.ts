import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { request } from 'undici';
import { buildDeliveryRequest, seedSignature, standardWebhookHeaders } from '../../../protocol';
import { expectEachTestToRunNothing, rawRequest, startTestReceiver, tempDir, type TestReceiver } from '../../support/receiver-fixture';

const TOKEN = 'whsec_dGhpcyBpcyBhIHRlc3Qga2V5IGZvciB0aGUgcmVjZWl2ZXI=';
const SEED_TOKEN = 'seed-token-for-the-original-sender';
const now = () => Math.floor(Date.now() / 1000);

/** Each run appends "<branch> <commit> <scheme>" to runs.txt in the receiver's folder. */
const RECORD_RUN = 'printf "%s %s %s\\n" "$TRIGGLER_BRANCH" "$TRIGGLER_COMMIT" "$TRIGGLER_SCHEME" >> runs.txt';

function standardRequest(
  repository: string,
  branch: string,
  options: { id?: string; token?: string; commit?: string; timestamp?: number } = {},
) {
  return buildDeliveryRequest({
    scheme: 'standard',
    token: options.token ?? TOKEN,
    id: options.id ?? `msg_${Math.random().toString(36).slice(2)}`,
    timestamp: options.timestamp ?? now(),
    data: { repository, branch, ref: `refs/heads/${branch}`, commit: options.commit ?? 'c0ffee', source: 'test' },
  });
}

describe('receiver over HTTP', () => {
  let receiver: TestReceiver;
  let workDir: string;

  beforeAll(async () => {
    workDir = tempDir();
    receiver = await startTestReceiver({
      signature: { iterations: 50 },
      limits: { bodyBytes: 64 * 1024, headersTimeoutSeconds: 1 },
      triggers: [
        { repository: 'app', branch: 'main', token: TOKEN, command: RECORD_RUN, cwd: workDir },
        { repository: 'app', branch: 'feature/x', token: TOKEN, command: RECORD_RUN, cwd: workDir },
        { repository: 'legacy', branch: 'master', token: SEED_TOKEN, command: RECORD_RUN, cwd: workDir },
      ],
    });
  });

  afterAll(async () => {
    try {
      await receiver?.dispose();
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  });

  const ranLines = () => (existsSync(join(workDir, 'runs.txt')) ? readFileSync(join(workDir, 'runs.txt'), 'utf8').trim().split('\n') : []);

  it('answers /healthz', async () => {
    const res = await receiver.send('/healthz', { method: 'GET' });
    expect(res).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('answers /healthz 503 "degraded", with the reason, while the journal cannot be written', async () => {
    const health = jest
      .spyOn(receiver.runner, 'health')
      .mockReturnValue({ status: 'degraded', reason: 'ENOSPC: no space left on device', since: '2026-12-01T00:00:00.000Z' });
    try {
      const res = await receiver.send('/healthz', { method: 'GET' });
      expect(res).toMatchObject({ status: 503, body: { status: 'degraded', reason: 'ENOSPC: no space left on device' } });
    } finally {
      health.mockRestore();
    }
    expect((await receiver.send('/healthz', { method: 'GET' })).status).toBe(200);
  });

  it('accepts a Standard Webhooks delivery signed by the standardwebhooks library and runs the command', async () => {
    const before = ranLines().length;
    const body = JSON.stringify({
      type: 'git.push',
      timestamp: new Date().toISOString(),
      data: { repository: 'app', branch: 'feature/x', ref: 'refs/heads/feature/x', commit: 'abc123', source: 'test' },
    });
    const ts = new Date();
    const signature = new Webhook(TOKEN).sign('msg_lib_1', ts, body);
    const res = await receiver.send('/hooks/app/feature%2Fx', {
      headers: {
        'webhook-id': 'msg_lib_1',
        'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)),
        'webhook-signature': signature,
        'content-type': 'application/json',
      },
      body,
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'accepted', delivery: 'msg_lib_1', run: { repository: 'app', branch: 'feature/x' } });
    const runs = await receiver.settledRuns();
    const run = runs.find((r) => r.id === (res.body.run as { id: string }).id);
    expect(run).toMatchObject({ status: 'succeeded', commit: 'abc123', exitCode: 0 });
    expect(ranLines().slice(before)).toEqual(['feature/x abc123 standard']);
  });

  it('takes the branch with a raw slash in the path too', async () => {
    const res = await receiver.send('/hooks/app/feature/x', {
      ...(() => {
        const r = standardRequest('app', 'feature/x');
        return { headers: r.headers, body: r.body! };
      })(),
    });
    expect(res.status).toBe(202);
    await receiver.settledRuns();
  });

  it('accepts the seed scheme by GET and by POST, bit for bit what the original sender sends', async () => {
    const before = ranLines().length;
    const ts = now();
    const sig = seedSignature(ts, 'legacy', 'master', SEED_TOKEN, 50);
    const get = await receiver.send('/legacy-master', {
      method: 'GET',
      headers: { 'X-Signature': sig, 'X-Signature-Timestamp': String(ts) },
    });
    expect(get.status).toBe(202);
    await receiver.settledRuns();
    const ts2 = ts - 1;
    const sig2 = seedSignature(ts2, 'legacy', 'master', SEED_TOKEN, 50);
    const post = await receiver.send('/legacy-master', {
      method: 'POST',
      headers: { 'X-Signature': sig2, 'X-Signature-Timestamp': String(ts2) },
      body: 'ignored',
    });
    expect(post.status).toBe(202);
    await receiver.settledRuns();
    expect(ranLines().slice(before)).toEqual(['master  seed', 'master  seed']);
  });

  it('runs a repeated webhook-id once and answers the repeat with 200', async () => {
    const before = ranLines().length;
    const first = standardRequest('app', 'main', { id: 'msg_repeat', commit: 'aa11' });
    const a = await receiver.send(first.path, { headers: first.headers, body: first.body! });
    // A sender's retry: same id, signed again later.
    const retry = standardRequest('app', 'main', { id: 'msg_repeat', commit: 'aa11', timestamp: now() + 1 });
    const b = await receiver.send(retry.path, { headers: retry.headers, body: retry.body! });
    expect(a.status).toBe(202);
    expect(b.status).toBe(200);
    expect(b.body).toMatchObject({ status: 'duplicate', run: { id: (a.body.run as { id: string }).id } });
    await receiver.settledRuns();
    expect(ranLines().slice(before)).toEqual(['main aa11 standard']);
  });

  it('runs a repeated seed (timestamp, signature) once', async () => {
    const before = ranLines().length;
    const ts = now() - 5;
    const headers = { 'X-Signature': seedSignature(ts, 'legacy', 'master', SEED_TOKEN, 50), 'X-Signature-Timestamp': String(ts) };
    expect((await receiver.send('/legacy-master', { method: 'GET', headers })).status).toBe(202);
    expect((await receiver.send('/legacy-master', { method: 'GET', headers })).body).toMatchObject({ status: 'duplicate' });
    await receiver.settledRuns();
    expect(ranLines().length - before).toBe(1);
  });

  describe('bad input: none runs anything', () => {
    expectEachTestToRunNothing(() => receiver);

    it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])('a missing %s is a 400 naming it', async (name) => {
      const r = standardRequest('app', 'main');
      const headers = { ...r.headers };
      delete headers[name];
      const res = await receiver.send(r.path, { headers, body: r.body! });
      expect(res.status).toBe(400);
      expect(res.body.error).toContain(name);
    });

    it('a malformed webhook-signature or timestamp is a 400 naming it', async () => {
      const r = standardRequest('app', 'main');
      expect(
        (await receiver.send(r.path, { headers: { ...r.headers, 'webhook-signature': 'v1,???' }, body: r.body! })).body.error,
      ).toContain('webhook-signature');
      expect(
        (await receiver.send(r.path, { headers: { ...r.headers, 'webhook-timestamp': 'yesterday' }, body: r.body! })).body.error,
      ).toContain('webhook-timestamp');
    });

    it.each(['X-Signature', 'X-Signature-Timestamp'])('a missing seed %s is a 400 naming it', async (name) => {
      const ts = now();
      const headers: Record<string, string> = {
        'X-Signature': seedSignature(ts, 'legacy', 'master', SEED_TOKEN, 50),
        'X-Signature-Timestamp': String(ts),
      };
      delete headers[name];
      const res = await receiver.send('/legacy-master', { method: 'GET', headers });
      expect(res.status).toBe(400);
      expect(res.body.error).toContain(name);
    });

    it('a timestamp outside the window is a 400 saying too old or too new, for both schemes', async () => {
      // Ten seconds past each edge: the receiver reads its clock after the test does, so a
      // timestamp one second past the future edge is inside it whenever a second ticks between.
      const old = standardRequest('app', 'main', { timestamp: now() - 310 });
      const res1 = await receiver.send(old.path, { headers: old.headers, body: old.body! });
      expect(res1).toMatchObject({ status: 400, body: { error: 'webhook-timestamp is too old' } });
      const future = standardRequest('app', 'main', { timestamp: now() + 310 });
      expect((await receiver.send(future.path, { headers: future.headers, body: future.body! })).body.error).toBe(
        'webhook-timestamp is too far in the future',
      );
      const tsOld = now() - 310;
      const seedOld = await receiver.send('/legacy-master', {
        method: 'GET',
        headers: { 'X-Signature': seedSignature(tsOld, 'legacy', 'master', SEED_TOKEN, 50), 'X-Signature-Timestamp': String(tsOld) },
      });
      expect(seedOld).toMatchObject({ status: 400, body: { error: 'X-Signature-Timestamp is too old' } });
      const tsNew = now() + 100;
      const seedNew = await receiver.send('/legacy-master', {
        method: 'GET',
        headers: { 'X-Signature': seedSignature(tsNew, 'legacy', 'master', SEED_TOKEN, 50), 'X-Signature-Timestamp': String(tsNew) },
      });
      expect(seedNew).toMatchObject({ status: 400, body: { error: 'X-Signature-Timestamp is too far in the future' } });
    });

    it('a bad signature and an unknown trigger get the same 401; the log tells them apart', async () => {
      const bad = standardRequest('app', 'main', { token: 'whsec_d3JvbmcgdG9rZW4gd3JvbmcgdG9rZW4=' });
      const unknown = standardRequest('nope', 'main');
      const a = await receiver.send(bad.path, { headers: bad.headers, body: bad.body! });
      const b = await receiver.send(unknown.path, { headers: unknown.headers, body: unknown.body! });
      expect(a.status).toBe(401);
      expect(b).toEqual({ ...a, headers: b.headers });
      const reasons = receiver.logs.filter((l) => l.status === 401).map((l) => l.reason);
      expect(reasons).toEqual(expect.arrayContaining(['bad webhook-signature', 'no trigger for this repository and branch']));
      const ts = now();
      const seedBad = await receiver.send('/legacy-master', {
        method: 'GET',
        headers: { 'X-Signature': 'a'.repeat(64), 'X-Signature-Timestamp': String(ts) },
      });
      expect(seedBad.status).toBe(401);
    });

    it('never logs a token', () => {
      const all = JSON.stringify(receiver.logs);
      expect(all).not.toContain(TOKEN);
      expect(all).not.toContain(TOKEN.slice(6));
      expect(all).not.toContain(SEED_TOKEN);
    });

    it('a valid signature over a body that is not a JSON object with data is a 400', async () => {
      for (const body of ['not json', '[]', '{"type":"git.push"}', '{"data":"x"}', '{"data":{"commit":"--upload-pack=touch /tmp/x"}}']) {
        const ts = now();
        const id = `msg_body_${Math.random()}`;
        const res = await receiver.send('/hooks/app/main', { headers: standardWebhookHeaders(TOKEN, id, ts, body), body });
        expect(res.status).toBe(400);
        expect(String(res.body.error)).toMatch(/^(body|data\.?[a-zA-Z]*) /);
      }
    });

    it.each([
      ['a NUL', 'ada\u0000lovelace'],
      ['a newline', 'ada\nTRIGGLER_COMMIT=evil'],
      ['a carriage return', 'ada\r'],
      ['257 characters (the listener here takes 64 KiB bodies; 128 KiB fails alike)', 'a'.repeat(257)],
      ['nothing', ''],
      ['a number', 42],
    ])('a signed data.pusher holding %s is a 400 naming it, and nothing runs', async (_what, pusher) => {
      const body = JSON.stringify({
        type: 'git.push',
        timestamp: new Date().toISOString(),
        data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: 'abc123', pusher, source: 'test' },
      });
      const res = await receiver.send('/hooks/app/main', {
        headers: standardWebhookHeaders(TOKEN, `msg_pusher_${Math.random()}`, now(), body),
        body,
      });
      expect(res).toMatchObject({
        status: 400,
        body: { error: 'data.pusher must be 1 to 256 characters, none of them a control character' },
      });
    });

    it('a signed body naming another trigger than its path is a 400', async () => {
      const r = standardRequest('app', 'feature/x');
      const res = await receiver.send('/hooks/app/main', { headers: r.headers, body: r.body! });
      expect(res).toMatchObject({ status: 400, body: { error: 'data.branch does not match the branch in the path' } });
    });

    it('a body over the limit is a 413, declared or chunked, without reading it all', async () => {
      const r = standardRequest('app', 'main');
      const big = await receiver.send(r.path, { headers: r.headers, body: Buffer.alloc(65 * 1024, 'a') });
      expect(big.status).toBe(413);
      // Chunked, no length: cut off once it passes the limit, before the sender is done.
      let sent = 0;
      async function* chunks() {
        for (let i = 0; i < 10_000; i++) {
          sent += 16 * 1024;
          yield Buffer.alloc(16 * 1024, 'b');
        }
      }
      const response = await request(`${receiver.url}${r.path}`, {
        method: 'POST',
        headers: r.headers,
        body: Readable.from(chunks()),
      }).catch((error: Error) => error);
      if (!(response instanceof Error)) {
        expect(response.statusCode).toBe(413);
        await response.body.dump();
      }
      expect(sent).toBeLessThan(10_000 * 16 * 1024);
      expect((await receiver.send('/healthz', { method: 'GET' })).status).toBe(200);
    });

    it('a seed POST with a valid signature but a body over the limit is a 413 and runs nothing', async () => {
      const ts = now() - 7;
      const headers = { 'X-Signature': seedSignature(ts, 'legacy', 'master', SEED_TOKEN, 50), 'X-Signature-Timestamp': String(ts) };
      const declared = await receiver.send('/legacy-master', { method: 'POST', headers, body: Buffer.alloc(65 * 1024, 'a') });
      expect(declared.status).toBe(413);
      const chunked = await request(`${receiver.url}/legacy-master`, {
        method: 'POST',
        headers,
        body: Readable.from([Buffer.alloc(40 * 1024, 'b'), Buffer.alloc(40 * 1024, 'c')]),
      }).catch((error: Error) => error);
      if (!(chunked instanceof Error)) {
        expect(chunked.statusCode).toBe(413);
        await chunked.body.dump();
      }
    });

    it('headers over the limit are a 431', async () => {
      const r = standardRequest('app', 'main');
      const res = await receiver.send(r.path, { headers: { ...r.headers, 'x-padding': 'p'.repeat(20 * 1024) }, body: r.body! });
      expect(res.status).toBe(431);
    });

    it('a slow client is cut off with 408', async () => {
      const [host, port] = receiver.url.replace('http://', '').split(':');
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(Number(port), host!, () => socket.write('POST /hooks/app/main HTTP/1.1\r\nHost: x\r\n'));
        let text = '';
        socket.on('data', (d) => (text += d.toString()));
        socket.on('close', () => resolve(text));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    });

    it('a wrong method is a 405 saying what is allowed', async () => {
      const hook = await receiver.send('/hooks/app/main', { method: 'GET' });
      expect(hook).toMatchObject({ status: 405, headers: { allow: 'POST' } });
      const seed = await receiver.send('/legacy-master', { method: 'DELETE' });
      expect(seed.status).toBe(405);
      expect(seed.headers.allow).toBe('GET, POST');
    });

    it('malformed HTTP is a 400', async () => {
      const answer = await rawRequest(receiver.url, 'NOT HTTP AT ALL');
      expect(answer.status).toBe(400);
    });

    it('path traversal, bad encoding and shell metacharacters are 4xx and run nothing', async () => {
      const marker = join(receiver.dir, 'pwned');
      const r = standardRequest('app', 'main');
      const paths = [
        '/../../etc/passwd',
        '/hooks/../hooks/app/main',
        `/hooks/app/main;touch%20${encodeURIComponent(marker)}`,
        `/$(touch%20${encodeURIComponent(marker)})-main`,
        '/legacy-master%00',
        '/hooks/%E0%A4%A/main',
        '/hooks/app/%ff',
        '/hooks//main',
      ];
      const seedHeaders = `X-Signature: ${'a'.repeat(64)}\r\nX-Signature-Timestamp: ${now()}`;
      const standardHeaders = Object.entries(r.headers)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n');
      for (const path of paths) {
        // Sent raw: an HTTP client would resolve the dot segments before the receiver sees them.
        const hook = await rawRequest(receiver.url, `POST ${path} HTTP/1.1\r\nHost: x\r\n${standardHeaders}`, r.body!);
        expect([path, hook.status >= 400 && hook.status < 500]).toEqual([path, true]);
        const seed = await rawRequest(receiver.url, `GET ${path} HTTP/1.1\r\nHost: x\r\n${seedHeaders}`);
        expect([path, seed.status >= 400 && seed.status < 500]).toEqual([path, true]);
      }
      expect(existsSync(marker)).toBe(false);
    });

    it('accepts no mutation of a signed request (fast-check)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: 6 }), fc.nat(), async (which, seed) => {
          const r = standardRequest('app', 'main', { id: `msg_fc_${seed}_${which}` });
          const headers = { ...r.headers };
          let body = r.body!;
          let path = r.path;
          const flip = (s: string, at: number) =>
            s.slice(0, at) + String.fromCharCode(((s.charCodeAt(at) - 32 + 1 + (seed % 90)) % 95) + 32) + s.slice(at + 1);
          if (which === 0) headers['webhook-id'] = `${headers['webhook-id']}x`;
          else if (which === 1) headers['webhook-timestamp'] = String(Number(headers['webhook-timestamp']) - 1 - (seed % 200));
          else if (which === 2) body = flip(body, seed % body.length);
          else if (which === 3) headers['webhook-signature'] = flip(headers['webhook-signature']!, 3 + (seed % 40));
          else if (which === 4) path = '/hooks/app/feature%2Fx';
          else if (which === 5) body = `${body} `;
          else
            headers['webhook-signature'] = standardWebhookHeaders(
              'whsec_b3RoZXIgdG9rZW4gb3RoZXIgdG9rZW4=',
              headers['webhook-id']!,
              Number(headers['webhook-timestamp']),
              body,
            )['webhook-signature']!;
          const res = await receiver.send(path, { headers, body });
          expect([400, 401]).toContain(res.status);
        }),
        { numRuns: 120 },
      );
    });
  });
});
