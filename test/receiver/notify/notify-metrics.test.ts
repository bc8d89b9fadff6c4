/**
 * What an operator hears and counts: a real notification sink on 127.0.0.1 receives a signed
 * run.finished for a failed run (checked with the standardwebhooks library) and a chat message for
 * the recovery; /metrics parses with a Prometheus text parser and counts what the test did; a
 * re-run goes through the admin credential; /healthz says what is degraded.
 */
import * as fs from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Webhook } from 'standardwebhooks';
import { request } from 'undici';
import { buildDeliveryRequest } from '../../../protocol';
import { adminAuthorization, readAdminCredential } from '../../../receiver/http/admin-credential';
import { listen } from '../../../receiver/delivery-listener';
import { pushStandard, startTestReceiver, tempDir, type TestReceiver } from '../../support/receiver-fixture';
import { waitFor } from '../../support/wait-for';

const TOKEN = 'notify-test-token-0123456789abc';
const SIGNING_KEY = `whsec_${Buffer.from('a notification signing key, 32 b').toString('base64')}`;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function startSink(failFirst: number): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  let failures = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/standard' && failures < failFirst) {
        failures += 1;
        res.writeHead(503).end();
        return;
      }
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  return { server, url: await listen(server, '127.0.0.1', 0), received };
}

const push = (receiver: TestReceiver, commit: string): Promise<string> =>
  pushStandard(receiver, {
    token: TOKEN,
    repository: 'svc',
    branch: 'main',
    commit,
    id: `msg_${commit.slice(0, 8)}_${Math.random().toString(36).slice(2)}`,
  });

describe('notifications, metrics, re-run and health', () => {
  const dir = tempDir();
  let sink: Awaited<ReturnType<typeof startSink>>;
  let receiver: TestReceiver;
  let failedRun: string;

  beforeAll(async () => {
    sink = await startSink(1);
    const tokensFile = join(dir, 'tokens.json');
    fs.writeFileSync(tokensFile, JSON.stringify({ 'svc/main': TOKEN, 'notify/ops': SIGNING_KEY }), { mode: 0o600 });
    const work = join(dir, 'work');
    fs.mkdirSync(work);
    receiver = await startTestReceiver(
      {
        tokens: { file: tokensFile },
        notify: [
          { format: 'standard', url: `${sink.url}/standard`, tokenName: 'notify/ops' },
          { format: 'slack', url: `${sink.url}/slack/T000/B000/secret-part`, on: ['recovered'] },
        ],
        // The first run fails, every later one succeeds.
        triggers: [
          {
            repository: 'svc',
            branch: 'main',
            cwd: work,
            command: 'if [ -e done ]; then echo fine; else touch done; echo "<b>boom</b>"; exit 7; fi',
          },
        ],
      },
      { dir },
    );
    failedRun = await push(receiver, '1'.repeat(40));
    await receiver.settledRuns();
    await push(receiver, '2'.repeat(40));
    await receiver.settledRuns();
    // The standard sink refused the first attempt: the notifier retries after a second.
    await waitFor('the sink to receive it', () => sink.received.length >= 3);
  });
  afterAll(async () => {
    await receiver.dispose();
    sink.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('posts a signed run.finished for a failed run, verified by the standardwebhooks library', () => {
    const standard = sink.received.filter((r) => r.path === '/standard');
    // The failure (its first attempt refused, retried) and the recovery: the default `on`.
    expect(standard).toHaveLength(2);
    const events = standard.map(
      (m) =>
        new Webhook(SIGNING_KEY).verify(m.body, m.headers as Record<string, string>) as { type: string; data: Record<string, unknown> },
    );
    expect(events.map((e) => e.data.event).sort()).toEqual(['failed', 'recovered']);
    const event = events.find((e) => e.data.status === 'failed')!;
    const message = standard[events.indexOf(event)];
    expect(event.type).toBe('run.finished');
    expect(event.data).toMatchObject({
      runId: failedRun,
      repository: 'svc',
      branch: 'main',
      status: 'failed',
      event: 'failed',
      commit: '1'.repeat(40),
      exitCode: 7,
    });
    expect(typeof event.data.durationSeconds).toBe('number');
    expect(event.data.logTail).toContain('<b>boom</b>');
    expect(message!.headers['webhook-id']).toBe(`msg_${failedRun}_0`);
  });

  it('tells a chat webhook of the recovery, escaping the log', () => {
    const slack = sink.received.filter((r) => r.path.startsWith('/slack'));
    expect(slack).toHaveLength(1);
    const { text } = JSON.parse(slack[0]!.body) as { text: string };
    expect(text).toMatch(/^✅ svc@main recovered/);
    expect(text).toContain('fine');
  });

  it("logs the failed attempt without the URL's path and counts it", async () => {
    const retried = receiver.logs.find((line) => line.msg === 'notification failed; retrying');
    expect(retried).toMatchObject({ format: 'standard', attempt: 1 });
    expect(JSON.stringify(receiver.logs)).not.toContain('secret-part');
    expect(JSON.stringify(receiver.logs)).not.toContain(SIGNING_KEY.slice(6));
  });

  it('shows on /metrics, in Prometheus text format, what the test did', async () => {
    const response = await request(`${receiver.adminUrl}/metrics`);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const families = parsePrometheusTextFormat(await response.body.text());
    const family = (name: string) => families.find((f) => f.name === name);
    const value = (name: string, labels: Record<string, string>) =>
      Number(
        (family(name)?.metrics as { labels?: Record<string, string>; value: string }[] | undefined)?.find((m) =>
          Object.entries(labels).every(([k, v]) => m.labels?.[k] === v),
        )?.value ?? NaN,
      );
    expect(value('triggler_deliveries_total', { trigger: 'svc@main', scheme: 'standard', outcome: 'accepted' })).toBe(2);
    expect(value('triggler_runs_total', { trigger: 'svc@main', status: 'failed' })).toBe(1);
    expect(value('triggler_runs_total', { trigger: 'svc@main', status: 'succeeded' })).toBe(1);
    expect(value('triggler_notifications_total', { format: 'standard', outcome: 'retried' })).toBe(1);
    expect(value('triggler_notifications_total', { format: 'standard', outcome: 'delivered' })).toBe(2);
    expect(value('triggler_notifications_total', { format: 'slack', outcome: 'delivered' })).toBe(1);
    expect(value('triggler_runs_running', {})).toBe(0);
    expect(value('triggler_runs_waiting', {})).toBe(0);
    expect(value('triggler_journal_bytes', {})).toBeGreaterThan(0);
    const durations = family('triggler_run_duration_seconds')!.metrics[0] as { buckets: Record<string, string> };
    expect(durations.buckets['+Inf']).toBe('2');
    expect(family('process_cpu_user_seconds_total')?.type).toBe('COUNTER');
  });

  it("counts the delivery listener's rejections by reason", async () => {
    for (const id of ['msg_forged_1', 'msg_forged_2']) {
      const forged = buildDeliveryRequest({
        scheme: 'standard',
        token: 'not-the-trigger-token-0123',
        id,
        timestamp: Math.floor(Date.now() / 1000),
        data: { repository: 'svc', branch: 'main', ref: 'refs/heads/main', commit: 'f'.repeat(40), source: 'test' },
      });
      expect((await receiver.send(forged.path, { headers: forged.headers, body: forged.body! })).status).toBe(401);
    }
    const text = await (await request(`${receiver.adminUrl}/metrics`)).body.text();
    expect(text).toContain('triggler_rejections_total{reason="bad webhook-signature"} 2');
  });

  it('adds up rejection counts from several sources (worker processes, say)', async () => {
    receiver.metrics.registerRejectionCounts(() => ({ 'bad webhook-signature': 3, 'unknown trigger': 0 }));
    const text = await (await request(`${receiver.adminUrl}/metrics`)).body.text();
    expect(text).toContain('triggler_rejections_total{reason="bad webhook-signature"} 5');
    expect(text).not.toContain('unknown trigger');
  });

  it('re-runs a run only with the admin credential, recording rerunOf and the same commit', async () => {
    const refused = await request(`${receiver.adminUrl}/runs/${failedRun}/rerun`, { method: 'POST' });
    expect(refused.statusCode).toBe(401);
    await refused.body.dump();
    const credential = readAdminCredential(join(dir, 'state'));
    const queued = await request(`${receiver.adminUrl}/runs/${failedRun}/rerun`, {
      method: 'POST',
      headers: { authorization: adminAuthorization(credential) },
    });
    expect(queued.statusCode).toBe(202);
    const { run } = (await queued.body.json()) as { run: { id: string } };
    await receiver.settledRuns();
    expect(receiver.history.run(run.id)).toMatchObject({
      rerunOf: failedRun,
      commit: '1'.repeat(40),
      status: 'succeeded',
      deliveryIds: receiver.history.run(failedRun)!.deliveryIds.slice(-1),
    });
    const missing = await request(`${receiver.adminUrl}/runs/r_nosuchrun/rerun`, {
      method: 'POST',
      headers: { authorization: adminAuthorization(credential) },
    });
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();
  });

  it('says on /healthz that the journal takes writes and the token source answers', async () => {
    const response = await request(`${receiver.adminUrl}/healthz`);
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toEqual({ status: 'ok', journal: { status: 'ok' }, tokens: { status: 'ok' } });
  });
});

describe('admin /healthz with a token source that does not answer', () => {
  it('answers 503 naming the token, never its value', async () => {
    const receiver = await startTestReceiver(
      { tokens: { ssm: { prefix: '/t' } }, triggers: [{ repository: 'svc', branch: 'main', command: 'true' }] },
      {
        tokenSources: {
          ssm: () => ({ tokens: async () => Promise.reject(new Error('SSM answered AccessDenied')), refresh: async () => false }),
        },
      },
    );
    try {
      const response = await request(`${receiver.adminUrl}/healthz`);
      expect(response.statusCode).toBe(503);
      expect(await response.body.json()).toEqual({
        status: 'degraded',
        journal: { status: 'ok' },
        tokens: { status: 'degraded', reason: 'svc/main: SSM answered AccessDenied' },
      });
    } finally {
      await receiver.dispose();
    }
  });
});
