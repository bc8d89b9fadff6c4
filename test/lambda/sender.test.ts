/**
 * The sender against real HTTP servers on 127.0.0.1, with SSM (and CodeCommit) mocked by
 * aws-sdk-client-mock. Signatures are checked with independent code: the `standardwebhooks`
 * package for the Standard scheme, the protocol's seedSignature for the seed scheme.
 */
import { writeSelfSigned } from '../support/self-signed';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodeCommitClient, GetCommitCommand } from '@aws-sdk/client-codecommit';
import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import type { CodeCommitTriggerEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
// Types for the matchers the jest setup installs (toHaveReceivedCommandWith, ...).
import 'aws-sdk-client-mock-jest';
import { Webhook } from 'standardwebhooks';
import { seedSignature, type PushEvent } from '../../protocol';
import { createLambdaLogger } from '../../lambda/log';
import { createSender, DeliveryFailedError, webhookIdFor, type SenderReport } from '../../lambda/sender';
import { CodeCommitDetailsReader } from '../../lambda/sender-commit-details';
import { parseSenderRoutes } from '../../lambda/sender-routes';
import { SsmTokenCache } from '../../lambda/ssm-token-cache';
import { refusedUrl, startRecordingReceiver, type RecordedRequest, type RecordingReceiver } from '../support/recording-receiver';

const REPO = 'lambda-pipeline-repo';
const LEGACY = 'legacy-site';
const RAW_TOKEN = 'master-token-0123456789abcdef';
const WHSEC_TOKEN = `whsec_${Buffer.from('feature-login-key-0123456789').toString('base64')}`;
const SEED_TOKEN = 'legacy-seed-token-0123456789';
const TOKENS: Record<string, string> = {
  '/triggler/lambda-pipeline-repo/master': RAW_TOKEN,
  '/triggler/lambda-pipeline-repo/feature/login': WHSEC_TOKEN,
  '/triggler/legacy-site/main': SEED_TOKEN,
};
/** Every form a token could leak in: as stored, and as the base64 a Webhook key is given in. */
const TOKEN_FORMS = [RAW_TOKEN, WHSEC_TOKEN, WHSEC_TOKEN.slice('whsec_'.length), SEED_TOKEN, Buffer.from(RAW_TOKEN).toString('base64')];

const ssm = mockClient(SSMClient);
const codeCommit = mockClient(CodeCommitClient);
const context = { awsRequestId: 'request-1', getRemainingTimeInMillis: () => 60_000 };

function loadEvent(name: 'codecommit-event.json' | 'codecommit-multi-event.json'): CodeCommitTriggerEvent {
  return JSON.parse(readFileSync(join(__dirname, '..', 'support', 'fixtures', name), 'utf8')) as CodeCommitTriggerEvent;
}

/** The documented sample event with its one record's references replaced by these branches. */
function eventFor(branches: string[], eventId = '31ade2c7-f889-47c5-a937-1cf99e2790e9'): CodeCommitTriggerEvent {
  const event = loadEvent('codecommit-event.json');
  const record = event.Records[0]!;
  record.eventId = eventId;
  record.codecommit.references = branches.map((branch, i) => ({
    ref: `refs/heads/${branch}`,
    commit: `${String(i).repeat(40)}`.slice(0, 40),
  }));
  return event;
}

interface RouteInput {
  repository?: string;
  branch: string;
  url: string;
  tokenParameter?: string;
  scheme?: 'standard' | 'seed';
  iterations?: number;
}

function senderFor(
  routes: RouteInput[],
  options: { timeoutMs?: number; tokenClock?: () => number; ttlSeconds?: number; commitDetailsTimeoutMs?: number } = {},
) {
  const lines: string[] = [];
  const logger = createLambdaLogger({ destination: { write: (line: string) => void lines.push(line) }, level: 'debug' });
  const table = parseSenderRoutes(
    JSON.stringify(
      routes.map((r) => ({
        repository: r.repository ?? REPO,
        tokenParameter: `/triggler/${r.repository ?? REPO}/master`,
        scheme: 'standard',
        ...r,
      })),
    ),
  );
  const send = createSender({
    routes: table,
    tokens: new SsmTokenCache({
      client: new SSMClient({ region: 'us-east-2' }),
      ttlSeconds: options.ttlSeconds ?? 60,
      ...(options.tokenClock ? { now: options.tokenClock } : {}),
    }),
    logger,
    timeoutMs: options.timeoutMs ?? 5000,
    ...(options.commitDetailsTimeoutMs !== undefined
      ? { commitDetails: new CodeCommitDetailsReader(logger, options.commitDetailsTimeoutMs) }
      : {}),
  });
  return { send, lines, logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** Verifies a recorded Standard delivery with the standardwebhooks package; returns its body. */
function verifyStandard(request: RecordedRequest, token: string): PushEvent {
  const key = token.startsWith('whsec_') ? token : Buffer.from(token).toString('base64');
  return new Webhook(key).verify(request.body, request.headers) as PushEvent;
}

async function rejection(promise: Promise<unknown>): Promise<DeliveryFailedError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DeliveryFailedError);
    return error as DeliveryFailedError;
  }
  throw new Error('expected the handler to throw');
}

let receiver: RecordingReceiver;

beforeAll(async () => {
  receiver = await startRecordingReceiver();
});

afterAll(async () => {
  await receiver.close();
});

beforeEach(() => {
  receiver.requests.length = 0;
  ssm.reset();
  codeCommit.reset();
  ssm.on(GetParameterCommand).callsFake((input: { Name: string }) => {
    const value = TOKENS[input.Name];
    if (value === undefined) throw new ParameterNotFound({ $metadata: {}, message: `Parameter ${input.Name} not found.` });
    return { Parameter: { Name: input.Name, Type: 'SecureString', Value: value, Version: 1 } };
  });
});

describe('every record and every reference', () => {
  it('delivers each routed branch, signed, keeps slash branches whole, and sends nothing for deletions, tags and unrouted branches', async () => {
    const { send } = senderFor([
      { branch: 'master', url: receiver.url },
      { branch: 'feature/login', url: receiver.url, tokenParameter: '/triggler/lambda-pipeline-repo/feature/login' },
      // Routed, but deleted in the event: nothing must go out for it.
      { branch: 'old-release', url: receiver.url },
      // A tag named like a routed branch is still a tag.
      { branch: 'v1.0.0', url: receiver.url },
      { repository: LEGACY, branch: 'main', url: receiver.url, scheme: 'seed', tokenParameter: '/triggler/legacy-site/main' },
    ]);
    const before = Math.floor(Date.now() / 1000);

    const report = await send(loadEvent('codecommit-multi-event.json'), context);

    expect(receiver.requests.map((r) => `${r.method} ${r.path}`).sort()).toEqual([
      'GET /legacy-site-main',
      'POST /hooks/lambda-pipeline-repo/feature%2Flogin',
      'POST /hooks/lambda-pipeline-repo/master',
    ]);

    const master = verifyStandard(receiver.requestsTo('/hooks/lambda-pipeline-repo/master')[0]!, RAW_TOKEN);
    expect(master.type).toBe('git.push');
    expect(master.data).toMatchObject({
      repository: REPO,
      branch: 'master',
      ref: 'refs/heads/master',
      commit: '5e493c6f3067653f3d04eca608b4901eb227078',
      source: 'codecommit',
      region: 'us-east-2',
      account: '123456789012',
      pusher: 'arn:aws:iam::123456789012:user/intern',
      eventId: '31ade2c7-f889-47c5-a937-1cf99e2790e9',
    });

    const login = verifyStandard(receiver.requestsTo('/hooks/lambda-pipeline-repo/feature%2Flogin')[0]!, WHSEC_TOKEN);
    expect(login.data).toMatchObject({
      branch: 'feature/login',
      ref: 'refs/heads/feature/login',
      commit: '9f2c1b7a4d3e8f6a0b5c2d1e7f4a3b6c9d0e1f2a',
    });

    const seed = receiver.requestsTo('/legacy-site-main')[0]!;
    expect(seed.body).toBe('');
    const timestamp = Number(seed.headers['x-signature-timestamp']);
    expect(timestamp).toBeGreaterThanOrEqual(before);
    expect(seed.headers['x-signature']).toBe(seedSignature(timestamp, LEGACY, 'main', SEED_TOKEN, 1000));

    expect(report.deliveries.every((d) => d.ok && d.status === 202)).toBe(true);
    expect(report.skipped).toEqual([
      { repository: REPO, ref: 'refs/heads/old-release', reason: 'deleted' },
      { repository: REPO, ref: 'refs/tags/v1.0.0', reason: 'tag' },
    ]);
    expect(report.unrouted).toEqual([{ repository: REPO, branch: 'experiment' }]);
    expect(ssm).toHaveReceivedCommandWith(GetParameterCommand, { Name: '/triggler/lambda-pipeline-repo/master', WithDecryption: true });
  });

  it('delivers the sample event from the AWS documentation to its route', async () => {
    const { send } = senderFor([{ branch: 'master', url: `${receiver.url}/` }]);
    await send(loadEvent('codecommit-event.json'), context);
    expect(receiver.requests).toHaveLength(1);
    const body = verifyStandard(receiver.requests[0]!, RAW_TOKEN);
    expect(body.data).toMatchObject({ repository: REPO, branch: 'master', commit: '5e493c6f3067653f3d04eca608b4901eb227078' });
    expect(receiver.requests[0]!.headers['content-type']).toBe('application/json');
  });

  it("signs a seed delivery with the route's rounds and keeps a slash branch whole in its path", async () => {
    const { send } = senderFor([
      {
        repository: LEGACY,
        branch: 'release/2.0',
        url: `${receiver.url}/base`,
        scheme: 'seed',
        iterations: 5,
        tokenParameter: '/triggler/legacy-site/main',
      },
    ]);
    const event = eventFor(['release/2.0']);
    event.Records[0]!.eventSourceARN = 'arn:aws:codecommit:us-east-2:123456789012:legacy-site';
    await send(event, context);
    expect(receiver.requests).toHaveLength(1);
    const request = receiver.requests[0]!;
    expect(request.method).toBe('GET');
    expect(request.path).toBe('/base/legacy-site-release%2F2.0');
    const ts = request.headers['x-signature-timestamp']!;
    expect(ts).toMatch(/^[0-9]+$/);
    expect(request.headers['x-signature']).toBe(seedSignature(ts, LEGACY, 'release/2.0', SEED_TOKEN, 5));
    expect(request.headers['x-signature']).not.toBe(seedSignature(ts, LEGACY, 'release/2.0', SEED_TOKEN, 1000));
  });

  it('sends one branch to every receiver routed for it', async () => {
    const second = await startRecordingReceiver();
    try {
      const { send } = senderFor([
        { branch: 'master', url: receiver.url },
        { branch: 'master', url: second.url },
      ]);
      const report = await send(eventFor(['master']), context);
      expect(receiver.requests).toHaveLength(1);
      expect(second.requests).toHaveLength(1);
      expect(report.deliveries).toHaveLength(2);
    } finally {
      await second.close();
    }
  });
});

describe('failed deliveries', () => {
  let failing: RecordingReceiver;
  let redirecting: RecordingReceiver;
  let silent: RecordingReceiver;
  let untrusted: RecordingReceiver;
  let refused: string;
  let certDir: string;

  beforeAll(async () => {
    failing = await startRecordingReceiver(() => ({ status: 500, body: '{"error":"the receiver broke"}' }));
    redirecting = await startRecordingReceiver(() => ({ status: 302, headers: { location: `${receiver.url}/followed` } }));
    silent = await startRecordingReceiver(() => 'no answer');
    refused = await refusedUrl();
    certDir = mkdtempSync(join(tmpdir(), 'triggler-sender-tls-'));
    writeSelfSigned({ cert: join(certDir, 'cert.pem'), key: join(certDir, 'key.pem') });
    untrusted = await startRecordingReceiver(undefined, {
      tls: { key: readFileSync(join(certDir, 'key.pem'), 'utf8'), cert: readFileSync(join(certDir, 'cert.pem'), 'utf8') },
    });
  });

  afterAll(async () => {
    await Promise.all([failing.close(), redirecting.close(), silent.close(), untrusted.close()]);
    rmSync(certDir, { recursive: true, force: true });
  });

  const cases: Array<[string, () => string, RegExp]> = [
    ['a non-2xx answer', () => failing.url, /HTTP 500: \{"error":"the receiver broke"\}/],
    ['a redirect', () => redirecting.url, /HTTP 302 redirect \(redirects are not followed\)/],
    ['a receiver that never answers', () => silent.url, /timed out after 300 ms/],
    ['a refused connection', () => refused, /ECONNREFUSED/],
    ['an untrusted TLS certificate', () => untrusted.url, /self[- ]signed/i],
  ];

  it.each(cases)('%s fails that delivery, the others still go out, and the handler throws naming the pair', async (_name, url, reason) => {
    const { send } = senderFor(
      [
        { branch: 'good', url: receiver.url },
        { branch: 'bad', url: url() },
      ],
      { timeoutMs: 300 },
    );
    const error = await rejection(send(eventFor(['bad', 'good']), context));
    expect(error.message).toContain('lambda-pipeline-repo@bad');
    expect(error.message).not.toContain('lambda-pipeline-repo@good');
    expect(error.message).toMatch(reason);
    expect(error.failures.map((f) => f.branch)).toEqual(['bad']);
    expect(receiver.requestsTo('/hooks/lambda-pipeline-repo/good')).toHaveLength(1);
    expect(receiver.requestsTo('/followed')).toHaveLength(0);
  });

  it('names every failed pair of one event together', async () => {
    const { send } = senderFor(
      [
        { branch: 'good', url: receiver.url },
        { branch: 'http-500', url: failing.url },
        { branch: 'redirect', url: redirecting.url },
        { branch: 'slow', url: silent.url },
        { branch: 'down', url: refused },
      ],
      { timeoutMs: 300 },
    );
    const error = await rejection(send(eventFor(['good', 'http-500', 'redirect', 'slow', 'down']), context));
    expect(error.message).toMatch(/^4 of 5 deliveries failed: /);
    for (const branch of ['http-500', 'redirect', 'slow', 'down']) expect(error.message).toContain(`lambda-pipeline-repo@${branch}`);
    expect(receiver.requestsTo('/hooks/lambda-pipeline-repo/good')).toHaveLength(1);
  });

  it('fails the delivery whose token parameter is missing, naming the pair and the parameter, and sends the rest', async () => {
    const { send } = senderFor([
      { branch: 'master', url: receiver.url },
      { branch: 'feature/login', url: receiver.url, tokenParameter: '/triggler/missing' },
    ]);
    const error = await rejection(send(eventFor(['master', 'feature/login']), context));
    expect(error.message).toContain('lambda-pipeline-repo@feature/login');
    expect(error.message).toContain('token parameter /triggler/missing could not be read: ParameterNotFound');
    expect(error.message).not.toContain('@master');
    expect(receiver.requests.map((r) => r.path)).toEqual(['/hooks/lambda-pipeline-repo/master']);
    for (const token of TOKEN_FORMS) expect(error.message).not.toContain(token);
  });

  it("stops waiting before Lambda's own timeout, so the failure is reported rather than cut off", async () => {
    const { send } = senderFor([{ branch: 'slow', url: silent.url }], { timeoutMs: 10_000 });
    const started = Date.now();
    const error = await rejection(send(eventFor(['slow']), { awsRequestId: 'short', getRemainingTimeInMillis: () => 1400 }));
    expect(error.message).toMatch(/lambda-pipeline-repo@slow \(.*timed out after [0-9]+ ms\)/);
    expect(Date.now() - started).toBeLessThan(5000);

    const late = await rejection(send(eventFor(['slow']), { awsRequestId: 'late', getRemainingTimeInMillis: () => 500 }));
    expect(late.message).toContain('no time left in this invocation');
  });

  it('reports a record it cannot read after delivering the others', async () => {
    const { send } = senderFor([{ branch: 'master', url: receiver.url }]);
    const event = eventFor(['master']);
    event.Records.push({ ...event.Records[0]!, eventSourceARN: 'not-an-arn' });
    const error = await rejection(send(event, context));
    expect(error.message).toContain('Records[1].eventSourceARN (must be a CodeCommit repository ARN)');
    expect(receiver.requests).toHaveLength(1);
  });
});

describe('tokens', () => {
  it('reads a token once per TTL, shared by the deliveries that need it', async () => {
    let clock = 1_700_000_000_000;
    const { send } = senderFor(
      [
        { branch: 'master', url: receiver.url },
        // Same parameter: one read serves both.
        { branch: 'develop', url: receiver.url },
      ],
      { tokenClock: () => clock, ttlSeconds: 60 },
    );
    await send(eventFor(['master', 'develop']), context);
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 1);

    clock += 59_000;
    await send(eventFor(['master'], 'second-event'), context);
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 1);

    clock += 2_000;
    await send(eventFor(['master'], 'third-event'), context);
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 2);
    expect(receiver.requests).toHaveLength(4);
  });

  it('does not remember a failed read: the next delivery asks SSM again', async () => {
    ssm
      .on(GetParameterCommand)
      .rejectsOnce(new ParameterNotFound({ $metadata: {}, message: 'gone' }))
      .callsFake((input: { Name: string }) => ({
        Parameter: { Name: input.Name, Value: TOKENS[input.Name] },
      }));
    const { send } = senderFor([{ branch: 'master', url: receiver.url }]);
    await rejection(send(eventFor(['master']), context));
    await send(eventFor(['master']), context);
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 2);
    expect(receiver.requests).toHaveLength(1);
  });
});

describe('the token cache', () => {
  it('refuses an empty parameter, naming it', async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Name: '/triggler/empty', Value: '' } });
    const cache = new SsmTokenCache({ client: new SSMClient({ region: 'us-east-2' }), ttlSeconds: 60 });
    await expect(cache.token('/triggler/empty')).rejects.toThrow(
      'token parameter /triggler/empty could not be read: the parameter has no value',
    );
  });

  it('with a TTL of 0 reads SSM every time', async () => {
    const cache = new SsmTokenCache({ client: new SSMClient({ region: 'us-east-2' }), ttlSeconds: 0 });
    await cache.token('/triggler/lambda-pipeline-repo/master');
    await cache.token('/triggler/lambda-pipeline-repo/master');
    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 2);
  });
});

describe('webhook-id', () => {
  it('is the same for a retried event and different for every reference and every event', async () => {
    const { send } = senderFor([
      { branch: 'master', url: receiver.url },
      { branch: 'develop', url: receiver.url },
    ]);
    const event = eventFor(['master', 'develop']);
    await send(event, context);
    await send(JSON.parse(JSON.stringify(event)) as CodeCommitTriggerEvent, context);
    await send(eventFor(['master'], 'another-event'), context);

    const ids = (branch: string) => receiver.requestsTo(`/hooks/lambda-pipeline-repo/${branch}`).map((r) => r.headers['webhook-id']);
    const [masterFirst, masterRetry, masterOther] = ids('master');
    const [developFirst, developRetry] = ids('develop');
    expect(masterRetry).toBe(masterFirst);
    expect(developRetry).toBe(developFirst);
    expect(developFirst).not.toBe(masterFirst);
    expect(masterOther).not.toBe(masterFirst);
    expect(masterFirst).toBe(webhookIdFor({ eventId: event.Records[0]!.eventId, repository: REPO, ref: 'refs/heads/master' }));
    expect(masterFirst).toMatch(/^[\x21-\x7e]{1,256}$/);
  });
});

describe('logs', () => {
  it('writes one JSON line per delivery with its facts, and no token in any line or error', async () => {
    const down = await refusedUrl();
    const { send, lines, logs } = senderFor([
      { branch: 'master', url: receiver.url },
      { branch: 'feature/login', url: down, tokenParameter: '/triggler/lambda-pipeline-repo/feature/login' },
      { repository: LEGACY, branch: 'main', url: receiver.url, scheme: 'seed', tokenParameter: '/triggler/legacy-site/main' },
    ]);
    const error = await rejection(send(loadEvent('codecommit-multi-event.json'), context));

    const deliveryLines = logs().filter((line) => line.msg === 'delivered' || line.msg === 'delivery failed');
    expect(deliveryLines).toHaveLength(3);
    for (const line of deliveryLines) {
      expect(line).toEqual(
        expect.objectContaining({
          level: expect.any(String),
          requestId: 'request-1',
          repository: expect.any(String),
          branch: expect.any(String),
          commit: expect.stringMatching(/^[0-9a-f]{39,40}$/),
          scheme: expect.stringMatching(/^(standard|seed)$/),
          ms: expect.any(Number),
        }),
      );
      expect(line).toHaveProperty('status');
    }
    expect(deliveryLines.find((l) => l.branch === 'master')).toMatchObject({ msg: 'delivered', status: 202, scheme: 'standard' });
    expect(deliveryLines.find((l) => l.branch === 'main')).toMatchObject({ msg: 'delivered', status: 202, scheme: 'seed' });
    expect(deliveryLines.find((l) => l.branch === 'feature/login')).toMatchObject({ msg: 'delivery failed', status: null, level: 'error' });
    expect(logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('reference skipped'))).toHaveLength(2);
    expect(logs().some((l) => l.msg === 'no route for this branch; nothing sent' && l.branch === 'experiment')).toBe(true);

    const everything = [...lines, error.message, error.stack ?? ''].join('\n');
    for (const token of TOKEN_FORMS) expect(everything).not.toContain(token);
  });

  it('censors a token field even if one is passed to the logger', () => {
    const lines: string[] = [];
    const logger = createLambdaLogger({ destination: { write: (line: string) => void lines.push(line) } });
    logger.info({ token: RAW_TOKEN, route: { token: SEED_TOKEN } }, 'careless');
    expect(lines.join('')).not.toContain(RAW_TOKEN);
    expect(lines.join('')).not.toContain(SEED_TOKEN);
  });
});

describe('commit details (optional enrichment)', () => {
  const sendMaster = async (timeoutMs: number): Promise<{ report: SenderReport; body: PushEvent; logs: Record<string, unknown>[] }> => {
    const { send, logs } = senderFor([{ branch: 'master', url: receiver.url }], { commitDetailsTimeoutMs: timeoutMs });
    const report = await send(eventFor(['master']), context);
    return { report, body: verifyStandard(receiver.requests[0]!, RAW_TOKEN), logs: logs() };
  };

  it('adds the commit message and author to a Standard delivery', async () => {
    codeCommit.on(GetCommitCommand).resolves({
      commit: { message: 'Fix the login form\n', author: { name: 'Intern', email: 'intern@example.com', date: '1552424305 +0000' } },
    });
    const { body } = await sendMaster(1000);
    expect(body.data).toMatchObject({ message: 'Fix the login form\n', author: { name: 'Intern', email: 'intern@example.com' } });
    expect(codeCommit).toHaveReceivedCommandWith(GetCommitCommand, {
      repositoryName: REPO,
      commitId: '0000000000000000000000000000000000000000',
    });
  });

  it('delivers without them when the lookup fails', async () => {
    codeCommit.on(GetCommitCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    const { report, body, logs } = await sendMaster(1000);
    expect(report.deliveries[0]!.ok).toBe(true);
    expect(body.data.message).toBeUndefined();
    expect(logs.some((l) => typeof l.error === 'string' && l.error.startsWith('AccessDeniedException: denied'))).toBe(true);
  });

  it('delivers without them when the lookup never answers', async () => {
    codeCommit.on(GetCommitCommand).callsFake(() => new Promise(() => undefined));
    const { report, body, logs } = await sendMaster(100);
    expect(report.deliveries[0]!.ok).toBe(true);
    expect(body.data.message).toBeUndefined();
    expect(logs.some((l) => l.msg === 'commit details timed out; delivering without them')).toBe(true);
  });

  it('is not looked up for seed routes, whose request has no body', async () => {
    const { send } = senderFor(
      [{ repository: LEGACY, branch: 'main', url: receiver.url, scheme: 'seed', tokenParameter: '/triggler/legacy-site/main' }],
      { commitDetailsTimeoutMs: 1000 },
    );
    const event = eventFor(['main']);
    event.Records[0]!.eventSourceARN = 'arn:aws:codecommit:us-east-2:123456789012:legacy-site';
    await send(event, context);
    expect(codeCommit).toHaveReceivedCommandTimes(GetCommitCommand, 0);
    expect(receiver.requests).toHaveLength(1);
  });
});
