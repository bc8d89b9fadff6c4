/**
 * The deploy key resource of the secrets handler, against an SSM that keeps what it is given (a
 * mocked client, aws-sdk-client-mock): a key pair is written only when absent, its private half
 * is a key the real ssh-keygen reads, a later deploy gets the same public half back without
 * reading the private one, a delete removes only this stack's parameters, and the private key
 * never leaves the PutParameter request.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  InvalidResourceId,
  ListTagsForResourceCommand,
  ParameterAlreadyExists,
  ParameterNotFound,
  PutParameterCommand,
  SSMClient,
  type Tag,
} from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { createLambdaLogger } from '../../lambda/log';
import { OWNER_TAG_KEY, createTokenProvider } from '../../lambda/token-provider';
import { newDeployKey } from '../../protocol/ssh-keys';

const STACK_ID = 'arn:aws:cloudformation:eu-west-1:123456789012:stack/GitTriggler/0b1c2d3e-aaaa-bbbb-cccc-000000000000';
const OTHER_STACK_ID = 'arn:aws:cloudformation:eu-west-1:123456789012:stack/Other/99999999-aaaa-bbbb-cccc-000000000000';
const NAME = '/git-triggler/tokens/deploy-keys/owner/site';
const PUBLIC_NAME = `${NAME}.pub`;
const COMMENT = 'git-triggler GitTriggler owner/site';

interface Stored {
  value: string;
  type: string;
  tags: Tag[];
  version: number;
}

const ssm = mockClient(SSMClient);
let store: Map<string, Stored>;
let logLines: string[];
let onEvent: ReturnType<typeof createTokenProvider>;
let scratch: string;

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-deploy-key-'));
});

afterAll(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** An SSM that behaves as the real one does for the calls the handler makes. */
function fakeSsm(): void {
  ssm.on(PutParameterCommand).callsFake((input: { Name: string; Value: string; Type: string; Overwrite?: boolean; Tags?: Tag[] }) => {
    const existing = store.get(input.Name);
    if (existing && !input.Overwrite) throw new ParameterAlreadyExists({ message: 'The parameter already exists.', $metadata: {} });
    if (input.Overwrite && input.Tags)
      throw Object.assign(new Error('tags and overwrite cannot be used together'), { name: 'ValidationException' });
    const version = (existing?.version ?? 0) + 1;
    store.set(input.Name, { value: input.Value, type: input.Type, tags: existing?.tags ?? input.Tags ?? [], version });
    return { Version: version };
  });
  ssm.on(GetParameterCommand).callsFake((input: { Name: string; WithDecryption?: boolean }) => {
    const stored = store.get(input.Name);
    if (!stored) throw new ParameterNotFound({ message: 'not found', $metadata: {} });
    if (stored.type === 'SecureString' && input.WithDecryption !== true)
      return { Parameter: { Name: input.Name, Value: 'AQICAHh-ciphertext', Type: stored.type } };
    return { Parameter: { Name: input.Name, Value: stored.value, Type: stored.type, Version: stored.version } };
  });
  ssm.on(ListTagsForResourceCommand).callsFake((input: { ResourceId: string }) => {
    const stored = store.get(input.ResourceId);
    if (!stored) throw new InvalidResourceId({ message: 'no such parameter', $metadata: {} });
    return { TagList: stored.tags };
  });
  ssm.on(DeleteParameterCommand).callsFake((input: { Name: string }) => {
    if (!store.delete(input.Name)) throw new ParameterNotFound({ message: 'not found', $metadata: {} });
    return {};
  });
}

beforeEach(() => {
  ssm.reset();
  store = new Map();
  fakeSsm();
  logLines = [];
  const log = createLambdaLogger({ destination: { write: (line: string) => void logLines.push(line) }, level: 'info' });
  onEvent = createTokenProvider(new SSMClient({ region: 'eu-west-1' }), log);
});

function event(requestType: 'Create' | 'Update' | 'Delete', properties: Record<string, string> = {}): CloudFormationCustomResourceEvent {
  const common = {
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:framework',
    ResponseURL: 'https://example.invalid/response',
    StackId: STACK_ID,
    RequestId: 'request-1',
    LogicalResourceId: 'TokensDeployKeyOwnerSite1a2b3c4d',
    ResourceType: 'Custom::TrigglerDeployKey',
    ResourceProperties: {
      ServiceToken: 'x',
      ParameterName: NAME,
      PublicParameterName: PUBLIC_NAME,
      Comment: COMMENT,
      RetainOnDelete: 'false',
      ...properties,
    },
  };
  const physicalId = `git-triggler-deploy-key:${NAME}`;
  if (requestType === 'Create') return { ...common, RequestType: 'Create' };
  if (requestType === 'Delete') return { ...common, RequestType: 'Delete', PhysicalResourceId: physicalId };
  return { ...common, RequestType: 'Update', PhysicalResourceId: physicalId, OldResourceProperties: common.ResourceProperties };
}

/** What `ssh-keygen -y` reads from the key, written as a 0600 file for it and removed after. */
function publicKeyByOpenSsh(privateKey: string): string {
  const file = path.join(scratch, `key-${process.hrtime.bigint()}`);
  fs.writeFileSync(file, privateKey, { mode: 0o600 });
  try {
    return execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
  } finally {
    fs.rmSync(file, { force: true });
  }
}

function putInputs() {
  return ssm.commandCalls(PutParameterCommand).map((call) => call.args[0].input);
}

describe('create', () => {
  test('writes the private half as a SecureString and the public half as a String, only when absent, both tagged; returns the public half', async () => {
    const response = await onEvent(event('Create'));

    expect(response.PhysicalResourceId).toBe(`git-triggler-deploy-key:${NAME}`);
    const [privateWrite, publicWrite] = putInputs();
    expect(putInputs()).toHaveLength(2);
    expect(privateWrite).toMatchObject({
      Name: NAME,
      Type: 'SecureString',
      Overwrite: false,
      Tags: [{ Key: OWNER_TAG_KEY, Value: STACK_ID }],
    });
    expect(publicWrite).toMatchObject({
      Name: PUBLIC_NAME,
      Type: 'String',
      Overwrite: false,
      Tags: [{ Key: OWNER_TAG_KEY, Value: STACK_ID }],
    });
    expect(privateWrite!.Value).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(response.Data).toEqual({ PublicKey: publicWrite!.Value });
    expect(response.Data!.PublicKey).toMatch(new RegExp(`^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/]+=* ${COMMENT}$`));
  });

  test('the private half is a key OpenSSH reads, and its public half is the one returned', async () => {
    const response = await onEvent(event('Create'));
    expect(publicKeyByOpenSsh(store.get(NAME)!.value)).toBe(response.Data!.PublicKey);
  });

  test('each repository gets a key of its own', async () => {
    const first = await onEvent(event('Create'));
    const second = await onEvent(
      event('Create', {
        ParameterName: '/git-triggler/tokens/deploy-keys/owner/app',
        PublicParameterName: '/git-triggler/tokens/deploy-keys/owner/app.pub',
      }),
    );
    expect(second.Data!.PublicKey).not.toBe(first.Data!.PublicKey);
  });
});

describe('a later deploy, with the key in place', () => {
  test.each(['Create', 'Update'] as const)(
    '%s keeps it, returns the same public half, and reads only the public parameter, never decrypting',
    async (requestType) => {
      const first = await onEvent(event('Create'));
      const privateKey = store.get(NAME)!.value;
      ssm.resetHistory();

      const again = await onEvent(event(requestType));

      expect(again).toEqual(first);
      expect(store.get(NAME)).toMatchObject({ value: privateKey, version: 1 });
      expect(putInputs().map((input) => [input.Name, input.Overwrite])).toEqual([[NAME, false]]);
      expect(ssm.commandCalls(GetParameterCommand).map((call) => call.args[0].input)).toEqual([{ Name: PUBLIC_NAME }]);
      expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
    },
  );

  test('a key replaced by hand (private and public half overwritten) is the one returned', async () => {
    await onEvent(event('Create'));
    const replacement = newDeployKey('replaced by hand');
    store.set(NAME, { ...store.get(NAME)!, value: replacement.privateKey, version: 2 });
    store.set(PUBLIC_NAME, { ...store.get(PUBLIC_NAME)!, value: `${replacement.publicKey}\n`, version: 2 });

    expect((await onEvent(event('Update'))).Data).toEqual({ PublicKey: replacement.publicKey });
  });

  test('a private half without its public half (a key made by hand) fails, naming both parameters and the way out, quoting no key', async () => {
    const own = newDeployKey('made by hand');
    store.set(NAME, { value: own.privateKey, type: 'SecureString', tags: [], version: 1 });

    const failure = onEvent(event('Create'));
    await expect(failure).rejects.toThrow(
      `the deploy key ${NAME} exists but its public half ${PUBLIC_NAME} does not, and the stack never reads a private key`,
    );
    const message = await failure.catch((error: Error) => error.message);
    expect(message).toContain('ssh-keygen -y -f <private key file>');
    expect(message).toContain(`or delete ${NAME} so the next deploy generates a new key`);
    expect(store.get(NAME)!.value).toBe(own.privateKey);
    expect(store.has(PUBLIC_NAME)).toBe(false);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
  });

  test('a public parameter holding anything but one public key line is refused, never quoted (nothing else reaches the outputs)', async () => {
    const own = newDeployKey('made by hand');
    store.set(NAME, { value: own.privateKey, type: 'SecureString', tags: [], version: 1 });
    // The private key pasted into the public parameter by mistake.
    store.set(PUBLIC_NAME, { value: own.privateKey, type: 'String', tags: [], version: 1 });

    const message = await onEvent(event('Create')).then(
      () => 'accepted',
      (error: Error) => error.message,
    );
    expect(message).toContain(`${PUBLIC_NAME} does not hold one OpenSSH public key line`);
    for (const line of own.privateKey.split('\n').filter((l) => l.length > 20)) expect(message).not.toContain(line);
  });
});

describe('a new key over a stale public half', () => {
  test('the private half deleted (to replace the key) gets a new pair: the public half is overwritten to match, its tags kept', async () => {
    const first = await onEvent(event('Create'));
    store.delete(NAME);

    const second = await onEvent(event('Update'));

    expect(second.Data!.PublicKey).not.toBe(first.Data!.PublicKey);
    expect(store.get(PUBLIC_NAME)).toMatchObject({
      value: second.Data!.PublicKey,
      version: 2,
      tags: [{ Key: OWNER_TAG_KEY, Value: STACK_ID }],
    });
    expect(publicKeyByOpenSsh(store.get(NAME)!.value)).toBe(second.Data!.PublicKey);
    expect(putInputs().at(-1)).toMatchObject({ Name: PUBLIC_NAME, Overwrite: true });
    expect(putInputs().at(-1)).not.toHaveProperty('Tags');
  });

  test('when the public half cannot be written, the new private half is taken back (none is left without its public half)', async () => {
    ssm
      .on(PutParameterCommand, { Name: PUBLIC_NAME })
      .rejects(Object.assign(new Error('User is not authorized to perform: ssm:PutParameter'), { name: 'AccessDeniedException' }));

    await expect(onEvent(event('Create'))).rejects.toThrow(
      `could not write deploy key public half parameter ${PUBLIC_NAME}: AccessDeniedException`,
    );
    expect(store.has(NAME)).toBe(false);
  });
});

describe('delete', () => {
  test('removes both halves when this stack created them', async () => {
    await onEvent(event('Create'));
    await expect(onEvent(event('Delete'))).resolves.toEqual({ PhysicalResourceId: `git-triggler-deploy-key:${NAME}` });
    expect(store.size).toBe(0);
  });

  test('keeps a key that existed before the stack, or that another stack created', async () => {
    store.set(NAME, { value: 'x', type: 'SecureString', tags: [{ Key: 'team', Value: 'ops' }], version: 1 });
    store.set(PUBLIC_NAME, { value: 'y', type: 'String', tags: [{ Key: OWNER_TAG_KEY, Value: OTHER_STACK_ID }], version: 1 });
    await onEvent(event('Delete'));
    expect([...store.keys()]).toEqual([NAME, PUBLIC_NAME]);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
  });

  test('a key already gone is not an error', async () => {
    await expect(onEvent(event('Delete'))).resolves.toBeDefined();
  });

  test('retains everything when RetainOnDelete is true', async () => {
    await onEvent(event('Create'));
    ssm.resetHistory();
    await onEvent(event('Delete', { RetainOnDelete: 'true' }));
    expect(ssm.calls()).toHaveLength(0);
    expect(store.size).toBe(2);
  });

  test('a key under an earlier tokens.prefix is kept, saying so: the role may manage only the current one', async () => {
    const log = createLambdaLogger({ destination: { write: (line: string) => void logLines.push(line) }, level: 'info' });
    const underPrefix = createTokenProvider(new SSMClient({ region: 'eu-west-1' }), log, { prefix: '/team/new-tokens' });
    await onEvent(event('Create'));
    ssm.resetHistory();
    await expect(underPrefix(event('Delete'))).resolves.toEqual({ PhysicalResourceId: `git-triggler-deploy-key:${NAME}` });
    expect(ssm.calls()).toHaveLength(0);
    expect(store.size).toBe(2);
    expect(logLines.map((line) => JSON.parse(line) as { msg: string; parameter?: string }).at(-1)).toMatchObject({
      parameter: NAME,
      msg: expect.stringContaining('under an earlier tokens.prefix'),
    });
    // Under the current prefix, the same Delete removes both halves.
    const samePrefix = createTokenProvider(new SSMClient({ region: 'eu-west-1' }), log, {
      prefix: NAME.slice(0, NAME.indexOf('/deploy-keys/')),
    });
    await samePrefix(event('Delete'));
    expect(store.size).toBe(0);
  });

  test('properties that were never valid delete nothing, and do not fail the rollback', async () => {
    await expect(onEvent(event('Delete', { ParameterName: 'relative' }))).resolves.toEqual({
      PhysicalResourceId: `git-triggler-deploy-key:${NAME}`,
    });
    expect(ssm.calls()).toHaveLength(0);
  });
});

test('refuses properties it does not understand, naming them', async () => {
  await expect(onEvent(event('Create', { ParameterName: 'relative', Comment: '' }))).rejects.toThrow(
    /the deploy key resource's properties are not valid: ResourceProperties\.ParameterName: must start with \/ and not end with \/; ResourceProperties\.Comment: must not be empty/,
  );
  expect(ssm.calls()).toHaveLength(0);
});

test('a resource type the handler does not serve fails on create, and its delete removes nothing', async () => {
  const other = { ...event('Create'), ResourceType: 'Custom::Other' } as CloudFormationCustomResourceEvent;
  await expect(onEvent(other)).rejects.toThrow(
    'this handler serves Custom::TrigglerTokens and Custom::TrigglerDeployKey, not Custom::Other',
  );
  await expect(onEvent({ ...event('Delete'), ResourceType: 'Custom::Other' } as CloudFormationCustomResourceEvent)).resolves.toBeDefined();
  expect(ssm.calls()).toHaveLength(0);
});

test('no log line, response or error holds a private key', async () => {
  const responses = [await onEvent(event('Create')), await onEvent(event('Update'))];
  const privateKey = store.get(NAME)!.value;
  store.delete(PUBLIC_NAME);
  const error = await onEvent(event('Update')).then(
    () => 'accepted',
    (failure: Error) => `${failure.message} ${String(failure.stack)}`,
  );
  await onEvent(event('Delete'));

  expect(logLines.length).toBeGreaterThan(3);
  // The key's body: every base64 line between the armour lines.
  const secretLines = privateKey.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
  expect(secretLines.length).toBeGreaterThan(2);
  for (const text of [...logLines, JSON.stringify(responses), error]) {
    for (const line of secretLines) expect(text).not.toContain(line);
  }
});
