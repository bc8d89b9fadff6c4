/**
 * The exported Lambda handler, configured only through its environment, reading tokens with the
 * real SSM client from the local SSM endpoint (AWS_ENDPOINT_URL_SSM); and that local endpoint
 * itself, driven by the real SDK, since other tests (token rotation) build on it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import type { CodeCommitTriggerEvent, Context } from 'aws-lambda';
import { Webhook } from 'standardwebhooks';
import { DeliveryFailedError, handler } from '../../lambda/sender';
import { SenderConfigError } from '../../lambda/sender-routes';
import { startLocalSsm, type LocalSsm } from '../../scripts/local-ssm';
import { startRecordingReceiver, type RecordingReceiver } from '../support/recording-receiver';

const PARAMETER = '/triggler/lambda-pipeline-repo/master';
const FIRST_TOKEN = 'first-token-from-local-ssm-0001';
const ROTATED_TOKEN = 'rotated-token-from-local-ssm-0002';

const context = { awsRequestId: 'local-1', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;
const SET_ENV = [
  'AWS_ENDPOINT_URL_SSM',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_REGION',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_EC2_METADATA_DISABLED',
  'TRIGGLER_ROUTES',
  'TRIGGLER_TOKEN_TTL_SECONDS',
  'TRIGGLER_TIMEOUT_MS',
  'TRIGGLER_LOG_LEVEL',
] as const;
const UNSET_ENV = ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'TRIGGLER_COMMIT_DETAILS'] as const;

let ssm: LocalSsm;
let receiver: RecordingReceiver;
let awsDir: string;
const savedEnv: Record<string, string | undefined> = {};

function sampleEvent(branch: string, eventId: string): CodeCommitTriggerEvent {
  const event = JSON.parse(
    readFileSync(join(__dirname, '..', 'support', 'fixtures', 'codecommit-event.json'), 'utf8'),
  ) as CodeCommitTriggerEvent;
  event.Records[0]!.eventId = eventId;
  event.Records[0]!.codecommit.references[0]!.ref = `refs/heads/${branch}`;
  return event;
}

function verifiedWith(token: string, index: number): unknown {
  const request = receiver.requests[index]!;
  return new Webhook(Buffer.from(token).toString('base64')).verify(request.body, request.headers);
}

beforeAll(async () => {
  ssm = await startLocalSsm({ region: 'us-east-2' });
  receiver = await startRecordingReceiver();
  awsDir = mkdtempSync(join(tmpdir(), 'triggler-sender-aws-'));
  for (const name of [...SET_ENV, ...UNSET_ENV]) savedEnv[name] = process.env[name];
  for (const name of UNSET_ENV) delete process.env[name];
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SSM: ssm.url,
    AWS_ACCESS_KEY_ID: 'AKIDLOCALSSMTEST',
    AWS_SECRET_ACCESS_KEY: 'local-ssm-test-secret',
    AWS_REGION: 'us-east-2',
    // Nothing from the host's own AWS setup may take part.
    AWS_CONFIG_FILE: join(awsDir, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(awsDir, 'credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    TRIGGLER_ROUTES: JSON.stringify([
      { repository: 'lambda-pipeline-repo', branch: 'master', url: receiver.url, tokenParameter: PARAMETER, scheme: 'standard' },
      { repository: 'lambda-pipeline-repo', branch: 'orphan', url: receiver.url, tokenParameter: '/triggler/absent', scheme: 'standard' },
    ]),
    TRIGGLER_TOKEN_TTL_SECONDS: '1',
    TRIGGLER_TIMEOUT_MS: '3000',
    TRIGGLER_LOG_LEVEL: 'silent',
  });
  ssm.put(PARAMETER, FIRST_TOKEN);
});

afterAll(async () => {
  for (const name of [...SET_ENV, ...UNSET_ENV]) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
  await Promise.all([ssm.close(), receiver.close()]);
  rmSync(awsDir, { recursive: true, force: true });
});

describe('the handler, configured by its environment, with tokens from the local SSM endpoint', () => {
  it('reads the token through AWS_ENDPOINT_URL_SSM once, then from its cache', async () => {
    ssm.resetCalls();
    await handler(sampleEvent('master', 'event-1'), context);
    await handler(sampleEvent('master', 'event-2'), context);
    expect(ssm.calls.GetParameter).toBe(1);
    expect(receiver.requests).toHaveLength(2);
    expect(verifiedWith(FIRST_TOKEN, 0)).toMatchObject({ data: { repository: 'lambda-pipeline-repo', branch: 'master' } });
    expect(verifiedWith(FIRST_TOKEN, 1)).toMatchObject({ data: { eventId: 'event-2' } });
  });

  it('signs with a rotated token once the cache time has passed', async () => {
    ssm.put(PARAMETER, ROTATED_TOKEN);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    ssm.resetCalls();
    receiver.requests.length = 0;
    await handler(sampleEvent('master', 'event-3'), context);
    expect(ssm.calls.GetParameter).toBe(1);
    expect(verifiedWith(ROTATED_TOKEN, 0)).toMatchObject({ data: { eventId: 'event-3' } });
    expect(() => verifiedWith(FIRST_TOKEN, 0)).toThrow();
  });

  it('fails the delivery whose parameter does not exist, naming the pair', async () => {
    receiver.requests.length = 0;
    const event = sampleEvent('orphan', 'event-4');
    event.Records[0]!.codecommit.references.push({ ref: 'refs/heads/master', commit: '5e493c6f3067653f3d04eca608b4901eb227078' });
    const failure = handler(event, context);
    await expect(failure).rejects.toBeInstanceOf(DeliveryFailedError);
    await expect(failure).rejects.toThrow(/lambda-pipeline-repo@orphan .*ParameterNotFound/);
    expect(receiver.requests.map((r) => r.path)).toEqual(['/hooks/lambda-pipeline-repo/master']);
  });

  it('refuses to run with invalid routes, naming the field', async () => {
    const routes = process.env.TRIGGLER_ROUTES;
    process.env.TRIGGLER_ROUTES = JSON.stringify([
      { repository: 'r', branch: 'b', url: 'https://receiver.example.com', scheme: 'standard' },
    ]);
    try {
      const failure = handler(sampleEvent('master', 'event-5'), context);
      await expect(failure).rejects.toBeInstanceOf(SenderConfigError);
      await expect(failure).rejects.toThrow('TRIGGLER_ROUTES[0].tokenParameter');
    } finally {
      process.env.TRIGGLER_ROUTES = routes;
    }
  });
});

describe('the local SSM endpoint, through the real SDK', () => {
  const client = () =>
    new SSMClient({
      endpoint: ssm.url,
      region: 'us-east-2',
      credentials: { accessKeyId: 'AKIDLOCALSSMTEST', secretAccessKey: 'local-ssm-test-secret' },
      maxAttempts: 1,
    });

  it('creates, refuses to overwrite silently, overwrites with a new version, and keeps the history', async () => {
    const sdk = client();
    const name = '/fixture/rotation/token';
    expect((await sdk.send(new PutParameterCommand({ Name: name, Value: 'version-one-value', Type: 'SecureString' }))).Version).toBe(1);
    await expect(sdk.send(new PutParameterCommand({ Name: name, Value: 'other', Type: 'SecureString' }))).rejects.toMatchObject({
      name: 'ParameterAlreadyExists',
      $metadata: { httpStatusCode: 400 },
    });
    expect((await sdk.send(new PutParameterCommand({ Name: name, Value: 'version-two-value', Overwrite: true }))).Version).toBe(2);

    const current = await sdk.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    expect(current.Parameter).toMatchObject({ Name: name, Type: 'SecureString', Value: 'version-two-value', Version: 2 });
    expect(current.Parameter?.LastModifiedDate).toBeInstanceOf(Date);

    const encrypted = await sdk.send(new GetParameterCommand({ Name: name }));
    expect(encrypted.Parameter?.Value).not.toContain('version-two-value');

    const first = await sdk.send(new GetParameterCommand({ Name: `${name}:1`, WithDecryption: true }));
    expect(first.Parameter).toMatchObject({ Value: 'version-one-value', Version: 1, Selector: ':1' });

    const history = await sdk.send(new GetParameterHistoryCommand({ Name: name, WithDecryption: true }));
    expect(history.Parameters?.map((p) => [p.Version, p.Value])).toEqual([
      [1, 'version-one-value'],
      [2, 'version-two-value'],
    ]);
    expect(history.Parameters![1]!.LastModifiedDate!.getTime()).toBeGreaterThan(history.Parameters![0]!.LastModifiedDate!.getTime());
  });

  it('reads several parameters, by name and by path, one level or recursively, page by page', async () => {
    const sdk = client();
    for (const name of ['/fixture/tree/a', '/fixture/tree/b', '/fixture/tree/deep/c']) ssm.put(name, `value-of-${name}`);
    const byName = await sdk.send(new GetParametersCommand({ Names: ['/fixture/tree/a', '/fixture/tree/none'], WithDecryption: true }));
    expect(byName.Parameters?.map((p) => p.Value)).toEqual(['value-of-/fixture/tree/a']);
    expect(byName.InvalidParameters).toEqual(['/fixture/tree/none']);

    const oneLevel = await sdk.send(new GetParametersByPathCommand({ Path: '/fixture/tree', WithDecryption: true }));
    expect(oneLevel.Parameters?.map((p) => p.Name)).toEqual(['/fixture/tree/a', '/fixture/tree/b']);

    const names: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await sdk.send(
        new GetParametersByPathCommand({ Path: '/fixture/tree/', Recursive: true, MaxResults: 2, NextToken: nextToken }),
      );
      names.push(...(page.Parameters ?? []).map((p) => p.Name!));
      nextToken = page.NextToken;
      pages++;
    } while (nextToken);
    expect(names).toEqual(['/fixture/tree/a', '/fixture/tree/b', '/fixture/tree/deep/c']);
    expect(pages).toBe(2);
  });

  it("deletes, and answers ParameterNotFound in AWS's error shape", async () => {
    const sdk = client();
    ssm.put('/fixture/deleted', 'soon-gone-value');
    await sdk.send(new DeleteParameterCommand({ Name: '/fixture/deleted' }));
    expect(ssm.get('/fixture/deleted')).toBeUndefined();
    await expect(sdk.send(new GetParameterCommand({ Name: '/fixture/deleted' }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
    await expect(sdk.send(new DeleteParameterCommand({ Name: '/fixture/deleted' }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
  });

  it('validates names as SSM does', async () => {
    await expect(client().send(new PutParameterCommand({ Name: 'relative/name', Value: 'v', Type: 'String' }))).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });

  it('counts calls per operation and fails the next call when told', async () => {
    const sdk = client();
    ssm.put('/fixture/counted', 'counted-value');
    ssm.resetCalls();
    ssm.failNext('GetParameter', { type: 'ThrottlingException', message: 'Rate exceeded' });
    await expect(sdk.send(new GetParameterCommand({ Name: '/fixture/counted' }))).rejects.toMatchObject({ name: 'ThrottlingException' });
    await sdk.send(new GetParameterCommand({ Name: '/fixture/counted' }));
    await sdk.send(new GetParametersCommand({ Names: ['/fixture/counted'] }));
    expect(ssm.calls.GetParameter).toBe(2);
    expect(ssm.calls.GetParameters).toBe(1);
    expect(ssm.calls.PutParameter).toBe(0);
  });

  it('refuses an unsigned request with a JSON 1.1 error body', async () => {
    const response = await fetch(ssm.url, {
      method: 'POST',
      headers: { 'x-amz-target': 'AmazonSSM.GetParameter', 'content-type': 'application/x-amz-json-1.1' },
      body: JSON.stringify({ Name: PARAMETER }),
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(await response.json()).toEqual({ __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
  });
});
