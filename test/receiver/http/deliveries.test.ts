/**
 * Recent deliveries on the admin listener of a real receiver: what each delivery's record holds
 * (headers less secrets, the answer, the run, the reason of a refusal), the rings' bounds, the
 * JSON API and a redelivery through it.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import webhookExamples from '@octokit/webhooks-examples';
import { request } from 'undici';
import { buildDeliveryRequest } from '../../../protocol';
import { parseReceiverConfig } from '../../../receiver/config/schema';
import { adminAuthorization, readAdminCredential } from '../../../receiver/http/admin-credential';
import type { DeliveryView } from '../../../receiver/http/delivery-recorder';
import { pushStandard, startTestReceiver, tempDir, type TestReceiver } from '../../support/receiver-fixture';
import { RECORD_RUN, recordedRuns } from '../../support/run-recorder';

const TOKEN = 'deliveries-test-token-0123456789abcdef';
const GITHUB_SECRET = 'deliveries-test-github-secret-0123456789';
const SEED_TOKEN = 'deliveries-seed-token-0123456789abcdef';

/** Five deliveries per trigger, in 64 KiB. */
const LIMITS = { recentDeliveries: 5, recentDeliveryBytes: 64 * 1024 };

/** The triggers the receiver starts with; `workDir`: where the recording ones write what their runs were told. */
const TRIGGERS = (workDir: string) => [
  { repository: 'web', branch: 'main', token: TOKEN, command: RECORD_RUN, cwd: workDir },
  { repository: 'Codertocat/Hello-World', branch: 'master', token: GITHUB_SECRET, command: RECORD_RUN, cwd: workDir },
  { repository: 'legacy', branch: 'main', token: SEED_TOKEN, command: 'true', iterations: 10 },
  { repository: 'busy', branch: 'main', token: TOKEN, command: 'true' },
];

const pushMaster = structuredClone(webhookExamples.find((d) => d.name === 'push')!.examples[4]) as unknown as Record<string, unknown>;

describe('recent deliveries', () => {
  let receiver: TestReceiver;
  let credential: string;
  /** Where the runs record what they were told. */
  const workDir = tempDir('triggler-deliveries-');
  /** Every secret a request carried: none may appear in an answer of the admin listener. */
  const secrets = [TOKEN, GITHUB_SECRET, SEED_TOKEN];

  const standard = (id: string, commit: string, token = TOKEN) => {
    const delivery = buildDeliveryRequest({
      scheme: 'standard',
      token,
      id,
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'web', branch: 'main', ref: 'refs/heads/main', commit, source: 'test' },
    });
    secrets.push(delivery.headers['webhook-signature']!.replace(/^v1,/, ''));
    return receiver.send(delivery.path, { headers: delivery.headers, body: delivery.body! });
  };

  async function admin(path: string, init: { method?: 'GET' | 'POST'; headers?: Record<string, string> } = {}) {
    const response = await request(`${receiver.adminUrl}${path}`, { method: init.method ?? 'GET', headers: init.headers ?? {} });
    const text = await response.body.text();
    for (const secret of secrets) expect(text).not.toContain(secret);
    return { status: response.statusCode, text, json: JSON.parse(text) as Record<string, unknown> };
  }

  const listed = async (query = ''): Promise<DeliveryView[]> => (await admin(`/deliveries${query}`)).json.deliveries as DeliveryView[];

  beforeAll(async () => {
    receiver = await startTestReceiver({ triggers: TRIGGERS(workDir), limits: LIMITS });
    credential = adminAuthorization(readAdminCredential(join(receiver.dir, 'state')));
  });
  afterAll(async () => {
    await receiver.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('keeps an accepted, a duplicate and a forged delivery with their answers, newest first, secrets redacted', async () => {
    const id = `msg_${randomUUID()}`;
    const accepted = await standard(id, 'a'.repeat(40));
    expect(accepted.status).toBe(202);
    const duplicate = await standard(id, 'a'.repeat(40));
    expect(duplicate.status).toBe(200);
    const forged = await standard(`msg_${randomUUID()}`, 'b'.repeat(40), 'not-the-token-of-this-trigger-at-all');
    expect(forged.status).toBe(401);
    secrets.push('not-the-token-of-this-trigger-at-all');

    const web = await listed('?trigger=web%40main');
    expect(web.map((d) => d.outcome)).toEqual(['rejected', 'duplicate', 'accepted']);
    const [rejected, repeat, first] = web as [DeliveryView, DeliveryView, DeliveryView];
    const runId = (accepted.body.run as { id: string }).id;
    expect(first).toMatchObject({
      trigger: 'web@main',
      run: runId,
      commit: 'a'.repeat(40),
      redeliverable: true,
      answer: { status: 202, body: { status: 'accepted', delivery: id } },
      request: { method: 'POST', path: '/hooks/web/main' },
    });
    expect(repeat).toMatchObject({ run: runId, redeliverable: false, answer: { status: 200, body: { status: 'duplicate' } } });
    // A refusal says why, as the log does; the client was told only "unauthorized".
    expect(rejected).toMatchObject({ reason: 'bad webhook-signature', answer: { status: 401 }, redeliverable: false });
    expect(rejected.run).toBeUndefined();
    const headers = new Map(first.request.headers.map(([name, value]) => [name.toLowerCase(), value]));
    expect(headers.get('webhook-id')).toBe(id);
    expect(headers.get('webhook-signature')).toBe('(redacted)');
    expect(headers.get('webhook-timestamp')).toMatch(/^\d+$/);
    expect(headers.get('content-type')).toBe('application/json');

    const one = await admin(`/deliveries/${first.id}`);
    expect(one.json.delivery).toEqual(first);
  });

  it('redacts a seed signature, a provider signature, credentials, cookies and token-like query parameters', async () => {
    const seed = buildDeliveryRequest({
      scheme: 'seed',
      token: SEED_TOKEN,
      repository: 'legacy',
      branch: 'main',
      timestamp: Math.floor(Date.now() / 1000),
      iterations: 10,
    });
    secrets.push(seed.headers['x-signature']!);
    const seedAnswer = await receiver.send(`${seed.path}?api_key=query-secret-0123456789&page=2`, {
      method: 'GET',
      headers: {
        ...seed.headers,
        authorization: 'Bearer header-secret-0123456789',
        cookie: 'session=cookie-secret-0123456789',
        'x-api-token': 'another-secret-0123456789',
      },
    });
    secrets.push('query-secret-0123456789', 'header-secret-0123456789', 'cookie-secret-0123456789', 'another-secret-0123456789');
    expect(seedAnswer.status).toBe(202);

    const body = JSON.stringify(pushMaster);
    const signature = `sha256=${createHmac('sha256', GITHUB_SECRET).update(body).digest('hex')}`;
    secrets.push(signature.slice('sha256='.length));
    const github = await receiver.send('/hooks/github', {
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': signature,
      },
      body,
    });
    expect(github.status).toBe(202);

    const [legacy] = await listed('?trigger=legacy%40main');
    expect(legacy!.request.path).toBe(`${seed.path}?api_key=(redacted)&page=2`);
    const headers = Object.fromEntries(legacy!.request.headers.map(([name, value]) => [name.toLowerCase(), value]));
    expect(headers).toMatchObject({
      'x-signature': '(redacted)',
      'x-signature-timestamp': seed.headers['x-signature-timestamp'],
      authorization: '(redacted)',
      cookie: '(redacted)',
      'x-api-token': '(redacted)',
    });
    const [hello] = await listed(`?trigger=${encodeURIComponent('Codertocat/Hello-World@master')}`);
    expect(hello).toMatchObject({ outcome: 'accepted', commit: pushMaster.after, redeliverable: true });
    expect(Object.fromEntries(hello!.request.headers)).toMatchObject({ 'x-hub-signature-256': '(redacted)' });
  });

  it('keeps requests that name no trigger apart, and bounds each trigger by count', async () => {
    for (let i = 0; i < 8; i++) expect((await receiver.send(`/no-such-route-${i}`, { method: 'GET' })).status).toBe(400);
    const unknown = await listed('?trigger=unknown');
    expect(unknown).toHaveLength(5);
    expect(unknown[0]!.request.path).toBe('/no-such-route-7');
    expect(unknown.every((d) => d.trigger === 'unknown' && d.outcome === 'rejected')).toBe(true);
    // The flood of unknown paths pushed nothing of web@main out.
    expect((await listed('?trigger=web%40main')).map((d) => d.outcome)).toEqual(['rejected', 'duplicate', 'accepted']);
    // A trigger's own flood keeps only its newest five.
    for (let i = 0; i < 7; i++) await receiver.send(`/hooks/busy/main`, { headers: { 'webhook-id': `m${i}` } });
    const busy = await listed('?trigger=busy%40main');
    expect(busy).toHaveLength(5);
    expect(busy.every((d) => d.answer.status === 400)).toBe(true);
    // ...and within its bytes: five requests with 15 KB of headers each do not fit in 64 KiB.
    const big = 'x'.repeat(15_000);
    for (let i = 0; i < 5; i++) await receiver.send(`/hooks/busy/main`, { headers: { 'webhook-id': `big${i}`, 'x-padding': big } });
    const kept = await listed('?trigger=busy%40main');
    expect(kept.length).toBeLessThan(5);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((d) => d.request.headers.some(([name, value]) => name === 'x-padding' && value === big))).toBe(true);
    // The health check is no delivery.
    await receiver.send('/healthz', { method: 'GET' });
    expect((await listed()).some((d) => d.request.path === '/healthz')).toBe(false);
  });

  it("files a trigger added by a reload under its own name, keeping the others' deliveries", async () => {
    const before = await listed('?trigger=web%40main');
    await receiver.reload(
      parseReceiverConfig({
        stateDir: join(receiver.dir, 'state'),
        listen: { host: '127.0.0.1', port: Number(new URL(receiver.url).port) },
        admin: { host: '127.0.0.1', port: Number(new URL(receiver.adminUrl!).port) },
        limits: LIMITS,
        triggers: [...TRIGGERS(workDir), { repository: 'added', branch: 'main', token: TOKEN, command: 'true' }],
      }),
    );
    expect((await receiver.send('/hooks/added/main', { headers: { 'webhook-id': 'x' } })).status).toBe(400);
    expect((await listed('?trigger=added%40main')).map((d) => d.request.path)).toEqual(['/hooks/added/main']);
    expect(await listed('?trigger=web%40main')).toEqual(before);
  });

  it('redelivers an accepted delivery as a new run of its push, with the admin credential', async () => {
    const [hello] = await listed(`?trigger=${encodeURIComponent('Codertocat/Hello-World@master')}`);
    const path = `/deliveries/${hello!.id}/redeliver`;
    expect((await admin(path, { method: 'POST' })).status).toBe(401);
    const queued = await admin(path, { method: 'POST', headers: { authorization: credential } });
    expect(queued.status).toBe(202);
    const runId = (queued.json.run as { id: string }).id;
    expect(runId).not.toBe(hello!.run);
    const runs = await receiver.settledRuns();
    const run = runs.find((r) => r.id === runId)!;
    expect(run).toMatchObject({ status: 'succeeded', redeliveryOf: hello!.id, scheme: 'github', commit: pushMaster.after });
    expect(run.deliveryIds).toEqual([hello!.answer.body.delivery]);
    // The command saw the push as the first delivery brought it, pusher and event included.
    const seen = recordedRuns(workDir).filter((r) => r.repository === 'Codertocat/Hello-World');
    expect(seen).toHaveLength(2);
    expect(seen[1]).toEqual(seen[0]);

    const [rejected] = await listed('?trigger=web%40main');
    const refused = await admin(`/deliveries/${rejected!.id}/redeliver`, { method: 'POST', headers: { authorization: credential } });
    expect(refused.status).toBe(409);
    expect(refused.json.error).toMatch(/was rejected: only an accepted delivery/);
    const missing = await admin('/deliveries/d0-1/redeliver', { method: 'POST', headers: { authorization: credential } });
    expect(missing.status).toBe(404);
    expect((await admin('/deliveries/d0-1')).status).toBe(404);
  });
});

describe('recent deliveries turned off', () => {
  it('keeps none with limits.recentDeliveries 0: the page and the redelivery are not there, deliveries are answered as ever', async () => {
    const receiver = await startTestReceiver({
      triggers: [{ repository: 'busy', branch: 'main', token: TOKEN, command: 'true' }],
      limits: { recentDeliveries: 0 },
    });
    try {
      expect(await pushStandard(receiver, { token: TOKEN, repository: 'busy', branch: 'main', commit: 'e'.repeat(40) })).toMatch(/^r_/);
      const page = await request(`${receiver.adminUrl}/deliveries`);
      expect(page.statusCode).toBe(404);
      await page.body.dump();
      const credential = adminAuthorization(readAdminCredential(join(receiver.dir, 'state')));
      const redeliver = await request(`${receiver.adminUrl}/deliveries/d0-1/redeliver`, {
        method: 'POST',
        headers: { authorization: credential },
      });
      expect(redeliver.statusCode).toBe(404);
      await redeliver.body.dump();
    } finally {
      await receiver.dispose();
    }
  });
});
