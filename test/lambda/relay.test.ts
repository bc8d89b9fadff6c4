/**
 * The webhook relay as the stack ships it (lambda/relay.ts bundled by esbuild as BundledNodeFunction
 * bundles it), called with Function URL events built from real provider payloads and real
 * signatures (@octokit/webhooks-methods for GitHub, node:crypto HMACs and the standardwebhooks
 * library for the others), reading the webhooks' tokens from the local SSM endpoint, in front of a
 * real receiver on 127.0.0.1 that holds the same tokens.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webhookExamples from '@octokit/webhooks-examples';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { Webhook } from 'standardwebhooks';
import type { RelayResult } from '../../lambda/relay';
import type { RelaySettings } from '../../lambda/relay-settings';
import { startLocalSsm, type LocalSsm } from '../../scripts/local-ssm';
import { refusedUrl, startRecordingReceiver, type RecordingReceiver } from '../support/recording-receiver';
import { signWithOctokit } from '../support/octokit-signer';
import { bundleLambda, functionUrlEvent, localSsmEnvironment } from '../../scripts/local-lambda';
import { startLambdaProcess, type LambdaProcess } from '../support/lambda-process';
import { startTestReceiver, type TestReceiver } from '../support/receiver-fixture';

const PREFIX = '/relay-test/tokens';
const GITHUB_SECRET = 'github-webhook-secret-of-Codertocat-Hello-World';
const GITLAB_SECRET = 'gitlab-secret-token-of-mike-diaspora-project';
const GITLAB_SIGNING_KEY = `whsec_${Buffer.from('gitlab-signing-key-of-the-signed-branch!').toString('base64')}`;
const GITEA_SECRET = 'gitea-webhook-secret-of-gitea-webhooks';
const BITBUCKET_SECRET = 'bitbucket-webhook-secret-of-team-name-repo';
const FORGED_SECRET = 'a-secret-nobody-configured-anywhere-at-all';
/** The secret of Octocoders/Hello-World's webhook before and after a rotation. */
const OCTOCODERS_SECRET = 'octocoders-webhook-secret-before-rotation';
const OCTOCODERS_ROTATED = 'octocoders-webhook-secret-after-rotation';
const BODY_LIMIT = 256 * 1024;

const fixture = (name: string) => readFileSync(join(__dirname, '..', 'support', 'fixtures', 'providers', `${name}.json`));
const example = (event: string, index: number) => JSON.stringify(webhookExamples.find((d) => d.name === event)!.examples[index]);
const hmacHex = (secret: string, body: Buffer | string) => createHmac('sha256', secret).update(body).digest('hex');

// GitHub's own examples: push[4] creates branch master of Codertocat/Hello-World; ping[0] tests a
// new webhook (of Octocoders/Hello-World: here given push[4]'s repository, the one configured).
const githubPush = example('push', 4);
const githubPing = JSON.stringify({ ...JSON.parse(example('ping', 0)), repository: JSON.parse(githubPush).repository });
const octocodersPing = example('ping', 0);
// ping[3]: an organisation webhook's ping, which names no repository.
const organisationPing = example('ping', 3);
// The same push with a commit message holding bytes that are not UTF-8 (0xff 0xfe): only a byte-exact
// relay keeps its signature valid.
const messageAt = githubPush.indexOf('"message":"') + '"message":"'.length;
const binaryPush = Buffer.concat([
  Buffer.from(githubPush.slice(0, messageAt)),
  Buffer.from([0xff, 0xfe]),
  Buffer.from(githubPush.slice(messageAt)),
]);

let dir: string;
let relay: LambdaProcess;
let ssm: LocalSsm;
let receiver: TestReceiver;
let githubSignatures: Map<string, string>;

function settings(overrides: Partial<RelaySettings> = {}): RelaySettings {
  return {
    receiverUrl: receiver.url,
    // Far above what the receiver in this process takes, busy machine or not; the test of the
    // relay's bound sets its own.
    timeoutMs: 10_000,
    bodyLimitBytes: BODY_LIMIT,
    tokenTtlSeconds: 60,
    tokenGraceSeconds: 900,
    routes: [
      { provider: 'github', repository: 'Codertocat/Hello-World', tokenParameter: `${PREFIX}/github/Codertocat/Hello-World` },
      { provider: 'github', repository: 'Octocoders/Hello-World', tokenParameter: `${PREFIX}/github/Octocoders/Hello-World` },
      { provider: 'gitlab', repository: 'mike/diaspora', tokenParameter: `${PREFIX}/gitlab/mike/diaspora` },
      { provider: 'gitlab', repository: 'mike/diaspora', tokenParameter: `${PREFIX}/mike/diaspora/signed` },
      { provider: 'gitea', repository: 'gitea/webhooks', tokenParameter: `${PREFIX}/gitea/webhooks` },
      { provider: 'bitbucket', repository: 'team_name/repo_name', tokenParameter: `${PREFIX}/bitbucket/team_name/repo_name` },
    ],
    ...overrides,
  };
}

/** Invokes the bundled handler with these settings in its environment, as Lambda would. */
function invoke(event: APIGatewayProxyEventV2, relaySettings = settings()): Promise<RelayResult> {
  return relay.invoke<RelayResult>(event, { TRIGGLER_RELAY: JSON.stringify(relaySettings) });
}

function githubEvent(
  body: Buffer | string,
  event: string,
  secret = GITHUB_SECRET,
  options: { base64?: boolean } = {},
): APIGatewayProxyEventV2 {
  const signature = githubSignatures.get(`${secret}\n${Buffer.from(body).toString('base64')}`);
  if (!signature) throw new Error('that body was not signed with that secret in beforeAll');
  return functionUrlEvent(
    '/hooks/github',
    {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/044aadd',
      'x-github-event': event,
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': signature,
    },
    body,
    options,
  );
}

const bodyOf = (result: RelayResult) => JSON.parse(result.body) as Record<string, unknown>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'triggler-relay-'));
  const bundle = join(dir, 'relay.js');
  await bundleLambda('relay', bundle);
  ssm = await startLocalSsm({ region: 'eu-west-1' });
  relay = await startLambdaProcess(bundle, {
    ...localSsmEnvironment(ssm.url, dir, 'eu-west-1'),
    TRIGGLER_LOG_LEVEL: process.env.RELAY_TEST_LOG ?? 'silent',
  });
  ssm.put(`${PREFIX}/github/Codertocat/Hello-World`, GITHUB_SECRET);
  ssm.put(`${PREFIX}/gitlab/mike/diaspora`, GITLAB_SECRET);
  ssm.put(`${PREFIX}/github/Octocoders/Hello-World`, OCTOCODERS_SECRET);
  ssm.put(`${PREFIX}/mike/diaspora/signed`, GITLAB_SIGNING_KEY);
  ssm.put(`${PREFIX}/gitea/webhooks`, GITEA_SECRET);
  ssm.put(`${PREFIX}/bitbucket/team_name/repo_name`, BITBUCKET_SECRET);
  receiver = await startTestReceiver({
    triggers: [
      {
        repository: 'Codertocat/Hello-World',
        branch: 'master',
        token: GITHUB_SECRET,
        tokenName: 'github/Codertocat/Hello-World',
        command: ['true'],
      },
      { repository: 'mike/diaspora', branch: 'master', token: GITLAB_SECRET, tokenName: 'gitlab/mike/diaspora', command: ['true'] },
      { repository: 'mike/diaspora', branch: 'signed', token: GITLAB_SIGNING_KEY, command: ['true'] },
      { repository: 'gitea/webhooks', branch: 'develop', token: GITEA_SECRET, tokenName: 'gitea/webhooks', command: ['true'] },
      {
        repository: 'team_name/repo_name',
        branch: 'name-of-branch',
        token: BITBUCKET_SECRET,
        tokenName: 'bitbucket/team_name/repo_name',
        command: ['true'],
      },
    ],
  });
  const signedBodies = [githubPush, githubPing, organisationPing, 'x'.repeat(BODY_LIMIT + 1)];
  githubSignatures = new Map();
  for (const secret of [GITHUB_SECRET, FORGED_SECRET, OCTOCODERS_SECRET, OCTOCODERS_ROTATED]) {
    const signatures = await signWithOctokit(secret, [...signedBodies, octocodersPing]);
    [...signedBodies, octocodersPing].forEach((b, i) =>
      githubSignatures.set(`${secret}\n${Buffer.from(b).toString('base64')}`, signatures[i]!),
    );
  }
  // Octokit signs text (its UTF-8 bytes); a body that is not UTF-8 is signed as its exact bytes here.
  githubSignatures.set(`${GITHUB_SECRET}\n${binaryPush.toString('base64')}`, `sha256=${hmacHex(GITHUB_SECRET, binaryPush)}`);
});

afterAll(async () => {
  await relay?.close();
  await receiver?.dispose();
  await ssm?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('verified pushes are forwarded and run', () => {
  test('GitHub: the receiver answers 202 for a push, and the run has its commit', async () => {
    const result = await invoke(githubEvent(githubPush, 'push'));
    expect({ status: result.statusCode, body: bodyOf(result) }).toMatchObject({
      status: 202,
      body: { status: 'accepted', run: { repository: 'Codertocat/Hello-World', branch: 'master' } },
    });
    expect(result.headers['content-type']).toMatch(/^application\/json/);
    const runs = await receiver.settledRuns();
    expect(runs.at(-1)).toMatchObject({ repository: 'Codertocat/Hello-World', branch: 'master', commit: JSON.parse(githubPush).after });
  });

  test('GitLab with its secret token, and with its signing token (standardwebhooks)', async () => {
    const body = fixture('gitlab-push');
    const plain = await invoke(
      functionUrlEvent(
        '/hooks/gitlab',
        {
          'content-type': 'application/json',
          'x-gitlab-event': 'Push Hook',
          'x-gitlab-token': GITLAB_SECRET,
          'x-gitlab-event-uuid': randomUUID(),
        },
        body,
      ),
    );
    expect(plain.statusCode).toBe(202);
    const signedBody = body.toString().replace('"ref": "refs/heads/master"', '"ref": "refs/heads/signed"');
    const id = `msg_${randomUUID()}`;
    const at = new Date();
    const signed = await invoke(
      functionUrlEvent(
        '/hooks/gitlab',
        {
          'content-type': 'application/json',
          'x-gitlab-event': 'Push Hook',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': new Webhook(GITLAB_SIGNING_KEY).sign(id, at, signedBody),
        },
        signedBody,
      ),
    );
    expect({ status: signed.statusCode, body: bodyOf(signed) }).toMatchObject({ status: 202, body: { run: { branch: 'signed' } } });
  });

  test('Gitea (X-Gitea-Signature) and Bitbucket (X-Hub-Signature) with their documented push payloads', async () => {
    const gitea = fixture('gitea-push');
    const giteaResult = await invoke(
      functionUrlEvent(
        '/hooks/gitea',
        {
          'content-type': 'application/json',
          'x-gitea-event': 'push',
          'x-gitea-delivery': randomUUID(),
          'x-gitea-signature': hmacHex(GITEA_SECRET, gitea),
        },
        gitea,
      ),
    );
    expect({ status: giteaResult.statusCode, body: bodyOf(giteaResult) }).toMatchObject({
      status: 202,
      body: { run: { repository: 'gitea/webhooks', branch: 'develop' } },
    });
    const bitbucket = fixture('bitbucket-push');
    const bitbucketResult = await invoke(
      functionUrlEvent(
        '/hooks/bitbucket',
        {
          'content-type': 'application/json',
          'x-event-key': 'repo:push',
          'x-request-uuid': randomUUID(),
          'x-hub-signature': `sha256=${hmacHex(BITBUCKET_SECRET, bitbucket)}`,
        },
        bitbucket,
      ),
    );
    expect({ status: bitbucketResult.statusCode, body: bodyOf(bitbucketResult) }).toMatchObject({
      status: 202,
      body: { run: { branch: 'name-of-branch' } },
    });
  });

  test("a base64-encoded body arrives byte for byte (bytes that are not UTF-8 included): the receiver's own HMAC check passes", async () => {
    const result = await invoke(githubEvent(binaryPush, 'push', GITHUB_SECRET, { base64: true }));
    expect({ status: result.statusCode, body: bodyOf(result) }).toMatchObject({ status: 202, body: { status: 'accepted' } });
  });

  test("a redelivery gets the receiver's own answer: a duplicate, nothing runs again", async () => {
    const event = githubEvent(githubPush, 'push');
    expect((await invoke(event)).statusCode).toBe(202);
    const again = await invoke(event);
    expect({ status: again.statusCode, body: bodyOf(again) }).toMatchObject({ status: 200, body: { status: 'duplicate' } });
  });
});

describe('answered by the relay: the receiver never sees these', () => {
  // Every request that reaches the receiver leaves a line (accepted, duplicate, rejected): none may.
  let linesBefore = 0;
  beforeEach(async () => {
    await receiver.settledRuns();
    linesBefore = receiver.logs.length;
  });
  afterEach(() => {
    expect(receiver.logs.slice(linesBefore)).toEqual([]);
  });

  // First: a failed check reads its token again at most every 5 s, and the organisation ping below tries this token too.
  test('after a rotation the new secret verifies at once (a failed check reads SSM again) and the previous one for the grace period', async () => {
    expect((await invoke(githubEvent(octocodersPing, 'ping', OCTOCODERS_SECRET))).statusCode).toBe(200);
    ssm.put(`${PREFIX}/github/Octocoders/Hello-World`, OCTOCODERS_ROTATED);
    expect((await invoke(githubEvent(octocodersPing, 'ping', OCTOCODERS_ROTATED))).statusCode).toBe(200);
    expect((await invoke(githubEvent(octocodersPing, 'ping', OCTOCODERS_SECRET))).statusCode).toBe(200);
    expect((await invoke(githubEvent(octocodersPing, 'ping', FORGED_SECRET))).statusCode).toBe(401);
  });

  test('a forged signature (a secret nobody configured) and a missing one are 401', async () => {
    const forged = await invoke(githubEvent(githubPush, 'push', FORGED_SECRET));
    expect({ status: forged.statusCode, body: bodyOf(forged) }).toEqual({
      status: 401,
      body: { error: 'unauthorized: unknown trigger or bad signature' },
    });
    const unsigned = githubEvent(githubPush, 'push');
    delete unsigned.headers['x-hub-signature-256'];
    expect((await invoke(unsigned)).statusCode).toBe(401);
    const gitlab = await invoke(
      functionUrlEvent('/hooks/gitlab', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': FORGED_SECRET }, fixture('gitlab-push')),
    );
    expect(gitlab.statusCode).toBe(401);
  });

  test("a signature valid for another repository's secret is 401 (only the claimed repository's tokens are tried)", async () => {
    const gitea = fixture('gitea-push');
    const result = await invoke(
      functionUrlEvent('/hooks/gitea', { 'x-gitea-event': 'push', 'x-gitea-signature': hmacHex(BITBUCKET_SECRET, gitea) }, gitea),
    );
    expect(result.statusCode).toBe(401);
  });

  test('a verified ping is answered 200 without waking the host; a forged ping is 401', async () => {
    const ping = await invoke(githubEvent(githubPing, 'ping'));
    expect({ status: ping.statusCode, body: bodyOf(ping) }).toEqual({ status: 200, body: { status: 'ok', event: 'ping' } });
    expect((await invoke(githubEvent(githubPing, 'ping', FORGED_SECRET))).statusCode).toBe(401);
  });

  test("an organisation's ping names no repository: every GitHub token is tried (the body is small), and only a real one answers 200", async () => {
    expect((await invoke(githubEvent(organisationPing, 'ping'))).statusCode).toBe(200);
    expect((await invoke(githubEvent(organisationPing, 'ping', FORGED_SECRET))).statusCode).toBe(401);
  });

  test("a body over the receiver's limit is 413, before any signature is checked", async () => {
    const result = await invoke(githubEvent('x'.repeat(BODY_LIMIT + 1), 'push'));
    expect({ status: result.statusCode, body: bodyOf(result) }).toEqual({
      status: 413,
      body: { error: `body is larger than ${BODY_LIMIT} bytes` },
    });
  });

  test('other paths and methods: 404 and 405', async () => {
    expect((await invoke(functionUrlEvent('/hooks/app/main', {}, '{}'))).statusCode).toBe(404);
    expect((await invoke(functionUrlEvent('/healthz', {}, '', { method: 'GET' }))).statusCode).toBe(404);
    const get = await invoke(functionUrlEvent('/hooks/github', {}, '', { method: 'GET' }));
    expect({ status: get.statusCode, allow: get.headers.allow }).toEqual({ status: 405, allow: 'POST' });
  });
});

describe('when the receiver cannot answer', () => {
  let silent: RecordingReceiver;
  beforeAll(async () => {
    silent = await startRecordingReceiver(() => 'no answer');
  });
  afterAll(() => silent.close());

  test('unreachable: 503 with Retry-After, so the provider shows a failed delivery to redeliver', async () => {
    const result = await invoke(githubEvent(githubPush, 'push'), settings({ receiverUrl: await refusedUrl() }));
    expect({ status: result.statusCode, retryAfter: result.headers['retry-after'], body: bodyOf(result) }).toEqual({
      status: 503,
      retryAfter: '60',
      body: { error: 'the receiver is unreachable; redeliver later' },
    });
  });

  test("slower than the relay's bound: 503 with Retry-After once the bound has passed, well under GitHub's 10 s", async () => {
    const started = Date.now();
    const result = await invoke(githubEvent(githubPush, 'push'), settings({ receiverUrl: silent.url, timeoutMs: 800 }));
    const took = Date.now() - started;
    expect({ status: result.statusCode, retryAfter: result.headers['retry-after'] }).toEqual({ status: 503, retryAfter: '60' });
    expect(took).toBeGreaterThanOrEqual(700);
    expect(took).toBeLessThan(3000);
    // The verified request did reach it, with the headers the receiver reads and nothing else of AWS's.
    const forwarded = silent.requests.at(-1)!;
    expect(forwarded).toMatchObject({ method: 'POST', path: '/hooks/github', body: githubPush });
    expect(
      Object.keys(forwarded.headers)
        .filter((name) => name.startsWith('x-'))
        .sort(),
    ).toEqual(['x-github-delivery', 'x-github-event', 'x-hub-signature-256']);
  });

  test('tokens that cannot be read: 503 with Retry-After, never a 401 for a delivery that may be good', async () => {
    const result = await invoke(
      githubEvent(githubPush, 'push'),
      settings({ routes: [{ provider: 'github', repository: 'Codertocat/Hello-World', tokenParameter: `${PREFIX}/not-there` }] }),
    );
    expect({ status: result.statusCode, retryAfter: result.headers['retry-after'] }).toEqual({ status: 503, retryAfter: '60' });
  });
});

test('settings that do not validate fail the invocation, naming each field and quoting no value', async () => {
  const bad = {
    ...settings(),
    receiverUrl: 'http://user:pass@10.0.0.1:5000',
    routes: [{ provider: 'gitee', repository: 'a', tokenParameter: '/p' }],
  };
  const failure = relay.invoke(functionUrlEvent('/hooks/github', {}, '{}'), { TRIGGLER_RELAY: JSON.stringify(bad) });
  await expect(failure).rejects.toThrow(/TRIGGLER_RELAY\.receiverUrl: must be an http:\/\/ or https:\/\/ URL without credentials/);
  await expect(failure).rejects.toThrow(/TRIGGLER_RELAY\.routes\[0\]\.provider/);
  await expect(failure).rejects.not.toThrow(/pass@/);
});
