/**
 * Token rotation under live traffic, end to end: the real sender handler (`lambda/sender.ts`,
 * configured by its environment) delivers pushes at 25 a second for 6.5 seconds into a real
 * receiver; both read the token from the same local SSM endpoint through the real SDK. Half-way,
 * `triggler tokens rotate` writes a new token. No valid delivery may be refused, and every
 * delivery must have run or been coalesced into a run. Once the grace period is over, a delivery
 * signed with the old token is refused.
 *
 * A second route sends every push to a recording receiver too, so the test can tell which token
 * signed what and prove that both were in use around the rotation.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CodeCommitTriggerEvent, Context } from 'aws-lambda';
import { Webhook } from 'standardwebhooks';
import { tokensCommand } from '../../bin/tokens-command';
import { handler, type SenderReport } from '../../lambda/sender';
import { buildDeliveryRequest } from '../../protocol';
import { startLocalSsm, type LocalSsm } from '../../scripts/local-ssm';
import { startRecordingReceiver, type RecordingReceiver } from '../support/recording-receiver';
import { startTestReceiver, type TestReceiver } from '../support/receiver-fixture';

const PREFIX = '/git-triggler/tokens';
const PARAMETER = `${PREFIX}/pipeline/main`;
const FIRST_TOKEN = 'whsec_Zmlyc3QtdG9rZW4tZmlyc3QtdG9rZW4tZmlyc3QtdG9rZW4=';
const RATE_PER_SECOND = 25;
const TRAFFIC_MS = 6500;
/** A bound on the traffic, whatever the machine's speed: ten times what TRAFFIC_MS sends at RATE_PER_SECOND. */
const MAX_DELIVERIES = Math.floor((TRAFFIC_MS / 1000) * RATE_PER_SECOND) * 10;
const ROTATE_AT_MS = 3000;
/** Sender cache 1 s < receiver grace 3 s: the same relation as 60 s < 900 s in production. */
const SENDER_TTL_SECONDS = 1;
const RECEIVER_TTL_SECONDS = 1;
const GRACE_SECONDS = 3;

const ENV: Record<string, string> = {
  AWS_ACCESS_KEY_ID: 'AKIDLOCALSSMTEST',
  AWS_SECRET_ACCESS_KEY: 'local-ssm-test-secret',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  TRIGGLER_TOKEN_TTL_SECONDS: String(SENDER_TTL_SECONDS),
  TRIGGLER_TIMEOUT_MS: '10000',
  TRIGGLER_LOG_LEVEL: 'silent',
};
const UNSET = ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'TRIGGLER_COMMIT_DETAILS'];
const context = { awsRequestId: 'rotation-e2e', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pushEvent(index: number): CodeCommitTriggerEvent {
  const event = JSON.parse(
    readFileSync(join(__dirname, '..', 'support', 'fixtures', 'codecommit-event.json'), 'utf8'),
  ) as CodeCommitTriggerEvent;
  const record = event.Records[0]!;
  record.eventSourceARN = 'arn:aws:codecommit:us-east-1:123456789012:pipeline';
  record.eventId = `rotation-push-${index}`;
  record.codecommit.references = [{ ref: 'refs/heads/main', commit: index.toString(16).padStart(40, '0') }];
  return event;
}

describe('token rotation under live traffic (sender handler -> receiver, both on SSM)', () => {
  const saved: Record<string, string | undefined> = {};
  let ssm: LocalSsm;
  let receiver: TestReceiver;
  let recorder: RecordingReceiver;
  let awsDir: string;
  /**
   * The receiver's token clock stops here while the traffic is in flight: a delivery the sender
   * signed with the old token inside the grace period is checked inside it too, however long a
   * busy machine takes to get it to the receiver. Real time otherwise.
   */
  let tokenClockStop = Number.POSITIVE_INFINITY;

  beforeAll(async () => {
    ssm = await startLocalSsm();
    recorder = await startRecordingReceiver();
    awsDir = mkdtempSync(join(tmpdir(), 'triggler-rotation-aws-'));
    for (const name of [
      ...Object.keys(ENV),
      'AWS_ENDPOINT_URL_SSM',
      'AWS_CONFIG_FILE',
      'AWS_SHARED_CREDENTIALS_FILE',
      'TRIGGLER_ROUTES',
      ...UNSET,
    ])
      saved[name] = process.env[name];
    for (const name of UNSET) delete process.env[name];
    Object.assign(process.env, ENV, {
      AWS_ENDPOINT_URL_SSM: ssm.url,
      AWS_CONFIG_FILE: join(awsDir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(awsDir, 'credentials'),
    });
    ssm.put(PARAMETER, FIRST_TOKEN);
    receiver = await startTestReceiver(
      {
        tokens: { ssm: { prefix: PREFIX, ttlSeconds: RECEIVER_TTL_SECONDS, graceSeconds: GRACE_SECONDS } },
        limits: { maxConcurrentRuns: 2 },
        triggers: [{ repository: 'pipeline', branch: 'main', command: ['true'] }],
      },
      { tokenSources: { now: () => Math.min(Date.now(), tokenClockStop) } },
    );
    process.env.TRIGGLER_ROUTES = JSON.stringify([
      { repository: 'pipeline', branch: 'main', url: receiver.url, tokenParameter: PARAMETER, scheme: 'standard' },
      { repository: 'pipeline', branch: 'main', url: recorder.url, tokenParameter: PARAMETER, scheme: 'standard' },
    ]);
  });

  afterAll(async () => {
    await receiver?.dispose();
    await Promise.all([ssm?.close(), recorder?.close()]);
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(awsDir, { recursive: true, force: true });
  });

  it('refuses no valid delivery across a rotation, runs every one, and refuses the old token after the grace period', async () => {
    const started = Date.now();
    const deliveries: Array<Promise<{ sentAt: number; report?: SenderReport; error?: unknown }>> = [];
    let rotation: Promise<{ stdout: string }> | undefined;
    /** When the rotated parameter was written, once the rotate command is done. */
    let rotatedAtMs: number | undefined;
    let lastSentAt = 0;
    // The traffic lasts TRAFFIC_MS and, however long a busy machine takes to rotate, until a
    // delivery went out after the sender's token cache must have taken the new token: a bounded
    // number of deliveries, so a rotation that never ends fails the test instead of hanging it.
    const trafficDone = () =>
      Date.now() - started >= TRAFFIC_MS && rotatedAtMs !== undefined && lastSentAt > rotatedAtMs + SENDER_TTL_SECONDS * 1000;
    const startRotationWhenDue = () => {
      if (rotation || Date.now() - started < ROTATE_AT_MS) return;
      // The rotation is no earlier than now, so its grace period lasts past this.
      tokenClockStop = Date.now() + GRACE_SECONDS * 1000 - 1;
      // The real command, in-process: the same code `npx triggler tokens rotate` runs.
      const output = { stdout: '' };
      rotation = tokensCommand({ stdout: (t) => (output.stdout += t), stderr: () => undefined })
        .parseAsync(['rotate', '--prefix', PREFIX, 'pipeline', 'main'], { from: 'user' })
        .then(() => {
          rotatedAtMs = ssm.get(PARAMETER)!.lastModifiedDate.getTime();
          // The grace period runs from the new version's modification time: stop just inside it.
          tokenClockStop = rotatedAtMs + GRACE_SECONDS * 1000 - 1;
          return output;
        });
    };
    let i = 0;
    while (!trafficDone() && i < MAX_DELIVERIES) {
      // Paced against the clock, not by sleeping a fixed step: every delivery due by now goes out
      // at once, without waiting a turn behind the deliveries in flight, so a slow moment or a
      // busy machine does not lower the rate; then one turn of the event loop, so that the
      // rotation and the deliveries in flight go on.
      const due = Math.min(MAX_DELIVERIES, Math.floor(((Date.now() - started) * RATE_PER_SECOND) / 1000) + 1);
      if (i >= due) {
        await sleep(started + (i * 1000) / RATE_PER_SECOND - Date.now());
        continue;
      }
      for (; i < due; i++) {
        startRotationWhenDue();
        const sentAt = Date.now();
        lastSentAt = sentAt;
        deliveries.push(
          handler(pushEvent(i), context).then(
            (report) => ({ sentAt, report }),
            (error: unknown) => ({ sentAt, error }),
          ),
        );
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const total = deliveries.length;
    const trafficEnded = Date.now();
    const results = await Promise.all(deliveries);
    tokenClockStop = Number.POSITIVE_INFINITY;
    expect((await rotation!).stdout).toBe(`rotated ${PARAMETER} version 2\n`);
    const rotated = ssm.get(PARAMETER)!;
    const newToken = rotated.value;
    const rotatedAt = rotated.lastModifiedDate.getTime();

    // The traffic really was as described: at least 20 a second for at least 5 seconds.
    expect(results.length / ((trafficEnded - started) / 1000)).toBeGreaterThanOrEqual(20);
    expect(trafficEnded - started).toBeGreaterThanOrEqual(5000);

    // Zero refused valid deliveries: every push reached the receiver and was accepted.
    expect(results.filter((r) => r.error !== undefined).map((r) => String(r.error))).toEqual([]);
    const toReceiver = results.map((r) => r.report!.deliveries.find((d) => d.url.startsWith(receiver.url))!);
    expect(toReceiver.filter((d) => d.status !== 202)).toEqual([]);

    // Both tokens were in use: pushes before the rotation signed with the first, later ones with the new.
    const signedWith = (token: string) =>
      recorder.requests.filter((r) => {
        try {
          new Webhook(token).verify(r.body, r.headers);
          return true;
        } catch {
          return false;
        }
      }).length;
    expect(recorder.requests).toHaveLength(total);
    expect(signedWith(FIRST_TOKEN)).toBeGreaterThan(0);
    expect(signedWith(newToken)).toBeGreaterThan(0);
    expect(signedWith(FIRST_TOKEN) + signedWith(newToken)).toBe(total);
    // Rotation came with traffic on both sides of it.
    expect(results.filter((r) => r.sentAt < rotatedAt).length).toBeGreaterThan(0);
    expect(results.filter((r) => r.sentAt > rotatedAt + SENDER_TTL_SECONDS * 1000).length).toBeGreaterThan(0);

    // Every accepted delivery ran, alone or coalesced into a run with others.
    const runs = await receiver.settledRuns();
    const carried = new Set(runs.flatMap((run) => run.deliveryIds));
    expect(toReceiver.filter((d) => !carried.has(d.deliveryId)).map((d) => d.deliveryId)).toEqual([]);
    expect(runs.every((run) => run.status === 'succeeded')).toBe(true);

    // After the grace period (and a receiver cache time), the old token is refused; the new one is not.
    await sleep(Math.max(0, rotatedAt + GRACE_SECONDS * 1000 + 300 - Date.now()));
    const stale = buildDeliveryRequest({
      scheme: 'standard',
      token: FIRST_TOKEN,
      id: 'msg_old_token_after_grace',
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'pipeline', branch: 'main', ref: 'refs/heads/main', commit: 'f'.repeat(40), source: 'test' },
    });
    expect((await receiver.send(stale.path, { headers: stale.headers, body: stale.body! })).status).toBe(401);
    const after = await handler(pushEvent(total), context);
    expect(after.deliveries.find((d) => d.url.startsWith(receiver.url))?.status).toBe(202);
    await receiver.settledRuns();

    // No token in any receiver log line.
    const logText = receiver.logs.map((r) => JSON.stringify(r)).join('\n');
    expect(logText).not.toContain(FIRST_TOKEN);
    expect(logText).not.toContain(newToken);
  });
});
