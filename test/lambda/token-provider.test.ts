/**
 * The token custom-resource handler against a mocked SSM (aws-sdk-client-mock): tokens are written
 * only when absent, never overwritten, deleted only when this stack created them, and never leave
 * the PutParameter request (not in the response, not in a log line).
 */
import {
  DeleteParameterCommand,
  ListTagsForResourceCommand,
  ParameterAlreadyExists,
  ParameterNotFound,
  InvalidResourceId,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { createLambdaLogger } from '../../lambda/log';
import { OWNER_TAG_KEY, createTokenProvider } from '../../lambda/token-provider';
import { newToken as generateToken } from '../../protocol/token';

const STACK_ID = 'arn:aws:cloudformation:eu-west-1:123456789012:stack/GitTriggler/0b1c2d3e-aaaa-bbbb-cccc-000000000000';
const OTHER_STACK_ID = 'arn:aws:cloudformation:eu-west-1:123456789012:stack/Other/99999999-aaaa-bbbb-cccc-000000000000';

const ssm = mockClient(SSMClient);
let logLines: string[];
let onEvent: ReturnType<typeof createTokenProvider>;

beforeEach(() => {
  ssm.reset();
  logLines = [];
  const log = createLambdaLogger({ destination: { write: (line: string) => void logLines.push(line) }, level: 'info' });
  onEvent = createTokenProvider(new SSMClient({ region: 'eu-west-1' }), log);
});

function event(
  requestType: 'Create' | 'Update' | 'Delete',
  properties: { TokenNames: string[]; RetainOnDelete?: string; Prefix?: string },
  old?: { TokenNames: string[]; Prefix?: string },
): CloudFormationCustomResourceEvent {
  const common = {
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:framework',
    ResponseURL: 'https://example.invalid/response',
    StackId: STACK_ID,
    RequestId: 'request-1',
    LogicalResourceId: 'Tokens',
    ResourceType: 'Custom::TrigglerTokens',
    ResourceProperties: { ServiceToken: 'x', Prefix: '/git-triggler/tokens', RetainOnDelete: 'false', ...properties },
  };
  if (requestType === 'Create') return { ...common, RequestType: 'Create' };
  if (requestType === 'Delete') return { ...common, RequestType: 'Delete', PhysicalResourceId: 'git-triggler-tokens:/git-triggler/tokens' };
  return {
    ...common,
    RequestType: 'Update',
    PhysicalResourceId: 'git-triggler-tokens:/git-triggler/tokens',
    OldResourceProperties: { ServiceToken: 'x', Prefix: '/git-triggler/tokens', RetainOnDelete: 'false', ...old },
  };
}

function writtenTokens(): string[] {
  return ssm.commandCalls(PutParameterCommand).map((call) => call.args[0].input.Value!);
}

describe('generateToken', () => {
  test('is whsec_ and the base64 of 32 random bytes, different every time', () => {
    const tokens = new Set(Array.from({ length: 50 }, generateToken));
    expect(tokens.size).toBe(50);
    for (const token of tokens) {
      expect(token).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(token.slice('whsec_'.length), 'base64')).toHaveLength(32);
    }
  });
});

describe('create', () => {
  test("writes each token as a SecureString, only when absent, tagged as this stack's", async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 1 });
    const response = await onEvent(event('Create', { TokenNames: ['app/main', 'lib/release/v2'] }));

    expect(response).toEqual({ PhysicalResourceId: 'git-triggler-tokens:/git-triggler/tokens' });
    const inputs = ssm.commandCalls(PutParameterCommand).map((call) => call.args[0].input);
    expect(inputs.map((input) => input.Name)).toEqual(['/git-triggler/tokens/app/main', '/git-triggler/tokens/lib/release/v2']);
    for (const input of inputs) {
      expect(input).toMatchObject({ Type: 'SecureString', Overwrite: false, Tags: [{ Key: OWNER_TAG_KEY, Value: STACK_ID }] });
      expect(input.Value).toMatch(/^whsec_/);
    }
    expect(new Set(writtenTokens()).size).toBe(2);
  });

  test('is idempotent: an existing parameter (a rotated token) is kept, never overwritten', async () => {
    ssm
      .on(PutParameterCommand, { Name: '/git-triggler/tokens/app/main' })
      .rejects(new ParameterAlreadyExists({ message: 'The parameter already exists.', $metadata: {} }))
      .on(PutParameterCommand, { Name: '/git-triggler/tokens/lib/main' })
      .resolves({ Version: 1 });

    await onEvent(event('Create', { TokenNames: ['app/main', 'lib/main'] }));
    await onEvent(event('Create', { TokenNames: ['app/main', 'lib/main'] }));

    const calls = ssm.commandCalls(PutParameterCommand).map((call) => call.args[0].input);
    expect(calls).toHaveLength(4);
    expect(calls.every((input) => input.Overwrite === false)).toBe(true);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
    expect(
      logLines
        .map((line) => JSON.parse(line) as { parameter?: string; outcome?: string })
        .filter((l) => l.parameter === '/git-triggler/tokens/app/main')
        .map((l) => l.outcome),
    ).toEqual(['kept', 'kept']);
  });

  test('a shared token name is written once', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 1 });
    await onEvent(event('Create', { TokenNames: ['app/shared', 'app/shared'] }));
    expect(ssm.commandCalls(PutParameterCommand)).toHaveLength(1);
  });

  test('fails on any other SSM error, naming the parameter but never the token', async () => {
    ssm
      .on(PutParameterCommand)
      .rejects(Object.assign(new Error('User is not authorized to perform: ssm:PutParameter'), { name: 'AccessDeniedException' }));
    const failure = onEvent(event('Create', { TokenNames: ['app/main'] }));
    await expect(failure).rejects.toThrow('could not write token parameter /git-triggler/tokens/app/main: AccessDeniedException');
    const message = await failure.catch((error: Error) => error.message);
    expect(message).not.toContain(writtenTokens()[0]!);
  });

  test('refuses properties it does not understand, naming them', async () => {
    await expect(onEvent(event('Create', { TokenNames: [], RetainOnDelete: 'yes' }))).rejects.toThrow(
      /ResourceProperties\.TokenNames: must name at least one token; ResourceProperties\.RetainOnDelete/,
    );
    expect(ssm.calls()).toHaveLength(0);
  });
});

describe('update', () => {
  test('creates newly listed tokens and leaves the others, including ones that left the config', async () => {
    ssm
      .on(PutParameterCommand, { Name: '/git-triggler/tokens/new/main' })
      .resolves({ Version: 1 })
      .on(PutParameterCommand)
      .rejects(new ParameterAlreadyExists({ message: 'exists', $metadata: {} }));
    const response = await onEvent(event('Update', { TokenNames: ['app/main', 'new/main'] }, { TokenNames: ['app/main', 'gone/main'] }));

    expect(response.PhysicalResourceId).toBe('git-triggler-tokens:/git-triggler/tokens');
    expect(ssm.commandCalls(PutParameterCommand).map((call) => call.args[0].input.Name)).toEqual([
      '/git-triggler/tokens/app/main',
      '/git-triggler/tokens/new/main',
    ]);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
  });

  test('a new prefix writes the tokens under it and keeps the old ones: same physical resource, so CloudFormation deletes nothing', async () => {
    ssm.on(PutParameterCommand).resolves({ Version: 1 });
    const response = await onEvent(
      event('Update', { TokenNames: ['app/main', 'lib/main'], Prefix: '/team/tokens' }, { TokenNames: ['app/main', 'lib/main'] }),
    );

    // A changed physical id would make CloudFormation delete the old resource, and with it every
    // token (rotated ones too) under the old prefix.
    expect(response.PhysicalResourceId).toBe('git-triggler-tokens:/git-triggler/tokens');
    expect(ssm.commandCalls(PutParameterCommand).map((call) => call.args[0].input.Name)).toEqual([
      '/team/tokens/app/main',
      '/team/tokens/lib/main',
    ]);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
    expect(ssm.commandCalls(ListTagsForResourceCommand)).toHaveLength(0);
  });

  test('a token copied to the new prefix before the deploy is kept as it is (how to move tokens)', async () => {
    ssm.on(PutParameterCommand).rejects(new ParameterAlreadyExists({ message: 'exists', $metadata: {} }));
    await onEvent(event('Update', { TokenNames: ['app/main'], Prefix: '/team/tokens' }, { TokenNames: ['app/main'] }));
    expect(ssm.commandCalls(PutParameterCommand).map((call) => [call.args[0].input.Name, call.args[0].input.Overwrite])).toEqual([
      ['/team/tokens/app/main', false],
    ]);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
  });
});

describe('delete', () => {
  test('removes only the parameters this stack created', async () => {
    ssm
      .on(ListTagsForResourceCommand, { ResourceId: '/git-triggler/tokens/ours/main' })
      .resolves({ TagList: [{ Key: OWNER_TAG_KEY, Value: STACK_ID }] })
      .on(ListTagsForResourceCommand, { ResourceId: '/git-triggler/tokens/preexisting/main' })
      .resolves({ TagList: [{ Key: 'team', Value: 'ops' }] })
      .on(ListTagsForResourceCommand, { ResourceId: '/git-triggler/tokens/other-stack/main' })
      .resolves({ TagList: [{ Key: OWNER_TAG_KEY, Value: OTHER_STACK_ID }] })
      .on(ListTagsForResourceCommand, { ResourceId: '/git-triggler/tokens/gone/main' })
      .rejects(new InvalidResourceId({ message: 'no such parameter', $metadata: {} }));
    ssm.on(DeleteParameterCommand).resolves({});

    const response = await onEvent(event('Delete', { TokenNames: ['ours/main', 'preexisting/main', 'other-stack/main', 'gone/main'] }));

    expect(response.PhysicalResourceId).toBe('git-triggler-tokens:/git-triggler/tokens');
    expect(ssm.commandCalls(DeleteParameterCommand).map((call) => call.args[0].input.Name)).toEqual(['/git-triggler/tokens/ours/main']);
  });

  test('a parameter deleted meanwhile is not an error', async () => {
    ssm.on(ListTagsForResourceCommand).resolves({ TagList: [{ Key: OWNER_TAG_KEY, Value: STACK_ID }] });
    ssm.on(DeleteParameterCommand).rejects(new ParameterNotFound({ message: 'gone', $metadata: {} }));
    await expect(onEvent(event('Delete', { TokenNames: ['ours/main'] }))).resolves.toBeDefined();
  });

  test('properties that were never valid (the Create failed on them) delete nothing, and do not fail the rollback', async () => {
    await expect(onEvent(event('Delete', { TokenNames: [] }))).resolves.toEqual({
      PhysicalResourceId: 'git-triggler-tokens:/git-triggler/tokens',
    });
    expect(ssm.calls()).toHaveLength(0);
  });

  test('retains everything when RetainOnDelete is true', async () => {
    await onEvent(event('Delete', { TokenNames: ['ours/main'], RetainOnDelete: 'true' }));
    expect(ssm.calls()).toHaveLength(0);
  });
});

test('no log line and no response holds a token', async () => {
  ssm.on(PutParameterCommand).resolves({ Version: 1 });
  const response = await onEvent(event('Create', { TokenNames: ['app/main', 'lib/main', 'web/main'] }));
  const tokens = writtenTokens();
  expect(tokens).toHaveLength(3);
  expect(logLines.length).toBeGreaterThan(3);
  for (const token of tokens) {
    const secret = token.slice('whsec_'.length);
    expect(JSON.stringify(response)).not.toContain(secret);
    for (const line of logLines) expect(line).not.toContain(secret);
  }
});
