/**
 * The repository-trigger custom-resource handler against a mocked CodeCommit (aws-sdk-client-mock):
 * PutRepositoryTriggers replaces the whole list, so the handler must read, merge by name and write
 * back, keeping every trigger the repository's owner made.
 */
import {
  CodeCommitClient,
  GetRepositoryTriggersCommand,
  PutRepositoryTriggersCommand,
  RepositoryDoesNotExistException,
  type RepositoryTrigger,
} from '@aws-sdk/client-codecommit';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { createLambdaLogger } from '../../lambda/log';
import { createRepositoryTriggersProvider, ownerMark } from '../../lambda/repository-triggers-provider';

const SENDER_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:GitTriggler-Sender';
const codecommit = mockClient(CodeCommitClient);
let onEvent: ReturnType<typeof createRepositoryTriggersProvider>;

const ownersTrigger: RepositoryTrigger = {
  name: 'notify-team',
  destinationArn: 'arn:aws:sns:eu-west-1:123456789012:team',
  customData: 'owner data',
  branches: [],
  events: ['all'],
};
const ours: RepositoryTrigger & { name: string } = {
  name: 'git-triggler-GitTriggler',
  destinationArn: SENDER_ARN,
  branches: ['main', 'release/v2'],
  events: ['createReference', 'updateReference'],
};

/** Our trigger as the merge resource Merge0 writes it: marked as its own. */
const marked = (trigger: RepositoryTrigger, logicalId = 'Merge0'): RepositoryTrigger => ({ ...trigger, customData: ownerMark(logicalId) });

beforeEach(() => {
  codecommit.reset();
  const log = createLambdaLogger({ destination: { write: () => undefined }, level: 'info' });
  onEvent = createRepositoryTriggersProvider(new CodeCommitClient({ region: 'eu-west-1' }), log);
});

function event(
  requestType: 'Create' | 'Update' | 'Delete',
  properties: Record<string, unknown>,
  old?: Record<string, unknown>,
  logicalId = 'Merge0',
): CloudFormationCustomResourceEvent {
  const common = {
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:framework',
    ResponseURL: 'https://example.invalid/response',
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/GitTriggler/id',
    RequestId: 'request-1',
    LogicalResourceId: logicalId,
    ResourceType: 'Custom::TrigglerRepositoryTriggers',
    ResourceProperties: { ServiceToken: 'x', ...properties },
  };
  if (requestType === 'Create') return { ...common, RequestType: 'Create' };
  if (requestType === 'Delete') return { ...common, RequestType: 'Delete', PhysicalResourceId: String(properties.RepositoryName) };
  return {
    ...common,
    RequestType: 'Update',
    PhysicalResourceId: String(old?.RepositoryName),
    OldResourceProperties: { ServiceToken: 'x', ...old },
  };
}

function written(): RepositoryTrigger[][] {
  return codecommit.commandCalls(PutRepositoryTriggersCommand).map((call) => call.args[0].input.triggers ?? []);
}

describe('create', () => {
  test("adds our trigger and keeps the owner's, exactly as it was read", async () => {
    codecommit.on(GetRepositoryTriggersCommand).resolves({ configurationId: 'c1', triggers: [ownersTrigger] });
    codecommit.on(PutRepositoryTriggersCommand).resolves({ configurationId: 'c2' });

    const response = await onEvent(event('Create', { RepositoryName: 'service', Triggers: [ours] }));

    expect(response).toEqual({ PhysicalResourceId: 'service' });
    expect(codecommit.commandCalls(PutRepositoryTriggersCommand)[0]!.args[0].input.repositoryName).toBe('service');
    expect(written()).toEqual([[ownersTrigger, marked(ours)]]);
  });

  test('replaces a trigger of ours left by an earlier deploy instead of adding a second', async () => {
    const stale = { ...ours, branches: ['old'] };
    codecommit.on(GetRepositoryTriggersCommand).resolves({ triggers: [stale, ownersTrigger] });
    codecommit.on(PutRepositoryTriggersCommand).resolves({});
    await onEvent(event('Create', { RepositoryName: 'service', Triggers: [ours] }));
    expect(written()).toEqual([[ownersTrigger, marked(ours)]]);
  });

  test("refuses to pass CodeCommit's 10 triggers, naming the owner's, and writes nothing", async () => {
    const tenOfTheirs = Array.from({ length: 10 }, (_, i) => ({ ...ownersTrigger, name: `theirs-${i}` }));
    codecommit.on(GetRepositoryTriggersCommand).resolves({ triggers: tenOfTheirs });
    await expect(onEvent(event('Create', { RepositoryName: 'service', Triggers: [ours] }))).rejects.toThrow(
      'repository service would have 11 triggers and CodeCommit allows 10: it has 10 of its own (theirs-0, theirs-1, theirs-2, theirs-3, theirs-4, theirs-5, theirs-6, theirs-7, theirs-8, theirs-9); remove some, then deploy again',
    );
    expect(codecommit.commandCalls(PutRepositoryTriggersCommand)).toHaveLength(0);
  });

  test('fails clearly when the repository does not exist', async () => {
    codecommit
      .on(GetRepositoryTriggersCommand)
      .rejects(new RepositoryDoesNotExistException({ message: 'no such repository', $metadata: {} }));
    await expect(onEvent(event('Create', { RepositoryName: 'missing', Triggers: [ours] }))).rejects.toThrow(
      'repository missing does not exist (set createRepository: true to have the stack create it)',
    );
  });
});

describe("AccessDenied while the handler's new IAM policy propagates", () => {
  /** A clock the retry moves forward itself: no test waits for real time. */
  function fakeRetry(forMs: number) {
    let now = 0;
    const waits: number[] = [];
    const retry = { forMs, everyMs: 5_000, now: () => now, sleep: async (ms: number) => void (waits.push(ms), (now += ms)) };
    return { retry, waits };
  }
  const denied = () =>
    Object.assign(new Error('User is not authorized to perform codecommit:GetRepositoryTriggers'), { name: 'AccessDeniedException' });

  test('a Create retries it until the policy applies, then merges', async () => {
    const { retry, waits } = fakeRetry(180_000);
    onEvent = createRepositoryTriggersProvider(
      new CodeCommitClient({ region: 'eu-west-1' }),
      createLambdaLogger({ destination: { write: () => undefined } }),
      retry,
    );
    codecommit
      .on(GetRepositoryTriggersCommand)
      .rejectsOnce(denied())
      .rejectsOnce(denied())
      .resolves({ triggers: [ownersTrigger] });
    codecommit.on(PutRepositoryTriggersCommand).resolves({ configurationId: 'c2' });
    expect(await onEvent(event('Create', { RepositoryName: 'service', Triggers: [ours] }))).toEqual({ PhysicalResourceId: 'service' });
    expect(waits).toEqual([5_000, 5_000]);
    expect(written()).toEqual([[ownersTrigger, marked(ours)]]);
  });

  test('a Create gives up after its bounded time with the AccessDenied itself', async () => {
    const { retry, waits } = fakeRetry(20_000);
    onEvent = createRepositoryTriggersProvider(
      new CodeCommitClient({ region: 'eu-west-1' }),
      createLambdaLogger({ destination: { write: () => undefined } }),
      retry,
    );
    codecommit.on(GetRepositoryTriggersCommand).rejects(denied());
    await expect(onEvent(event('Create', { RepositoryName: 'service', Triggers: [ours] }))).rejects.toThrow(/not authorized/);
    expect(waits).toEqual([5_000, 5_000, 5_000, 5_000]);
    expect(written()).toEqual([]);
  });

  test('an Update or Delete does not retry: its policy has long applied', async () => {
    const { retry, waits } = fakeRetry(180_000);
    onEvent = createRepositoryTriggersProvider(
      new CodeCommitClient({ region: 'eu-west-1' }),
      createLambdaLogger({ destination: { write: () => undefined } }),
      retry,
    );
    codecommit.on(GetRepositoryTriggersCommand).rejects(denied());
    await expect(
      onEvent(event('Update', { RepositoryName: 'service', Triggers: [ours] }, { RepositoryName: 'service', Triggers: [ours] })),
    ).rejects.toThrow(/not authorized/);
    await expect(onEvent(event('Delete', { RepositoryName: 'service', Triggers: [ours] }))).rejects.toThrow(/not authorized/);
    expect(waits).toEqual([]);
  });

  test('other errors are not retried', async () => {
    const { retry, waits } = fakeRetry(180_000);
    onEvent = createRepositoryTriggersProvider(
      new CodeCommitClient({ region: 'eu-west-1' }),
      createLambdaLogger({ destination: { write: () => undefined } }),
      retry,
    );
    codecommit.on(GetRepositoryTriggersCommand).rejects(new RepositoryDoesNotExistException({ message: 'gone', $metadata: {} }));
    await expect(onEvent(event('Create', { RepositoryName: 'service', Triggers: [ours] }))).rejects.toThrow(/does not exist/);
    expect(waits).toEqual([]);
  });
});

describe('update', () => {
  test("drops a trigger of ours that left the config, keeps the owner's", async () => {
    const renamed = { ...ours, name: 'git-triggler-Renamed' };
    codecommit.on(GetRepositoryTriggersCommand).resolves({ triggers: [ownersTrigger, ours] });
    codecommit.on(PutRepositoryTriggersCommand).resolves({});
    await onEvent(event('Update', { RepositoryName: 'service', Triggers: [renamed] }, { RepositoryName: 'service', Triggers: [ours] }));
    expect(written()).toEqual([[ownersTrigger, marked(renamed)]]);
  });

  test('moving to another repository leaves the old one to the delete CloudFormation sends next', async () => {
    codecommit.on(GetRepositoryTriggersCommand, { repositoryName: 'new-home' }).resolves({ triggers: [] });
    codecommit.on(PutRepositoryTriggersCommand).resolves({});
    const response = await onEvent(
      event('Update', { RepositoryName: 'new-home', Triggers: [ours] }, { RepositoryName: 'service', Triggers: [ours] }),
    );
    expect(response.PhysicalResourceId).toBe('new-home');
    expect(codecommit.commandCalls(GetRepositoryTriggersCommand).map((c) => c.args[0].input.repositoryName)).toEqual(['new-home']);
    expect(written()).toEqual([[marked(ours)]]);
  });
});

describe('delete', () => {
  test('a merge resource that a new version of the stack renamed keeps the trigger its successor wrote', async () => {
    // The new resource (another logical id) is created first and writes our trigger ...
    let triggers: RepositoryTrigger[] = [ownersTrigger, marked(ours)];
    codecommit.on(GetRepositoryTriggersCommand).callsFake(() => ({ triggers }));
    codecommit.on(PutRepositoryTriggersCommand).callsFake((input: { triggers: RepositoryTrigger[] }) => {
      triggers = input.triggers;
      return {};
    });
    await onEvent(event('Create', { RepositoryName: 'service', Triggers: [ours] }, undefined, 'MergeService1a2b3c4d'));
    expect(triggers).toEqual([ownersTrigger, marked(ours, 'MergeService1a2b3c4d')]);
    // ... then CloudFormation deletes the old one, which must leave it.
    await onEvent(event('Delete', { RepositoryName: 'service', Triggers: [ours] }));
    expect(triggers).toEqual([ownersTrigger, marked(ours, 'MergeService1a2b3c4d')]);
    expect(written()).toHaveLength(1);
    // Its own delete, later, removes it.
    await onEvent(event('Delete', { RepositoryName: 'service', Triggers: [ours] }, undefined, 'MergeService1a2b3c4d'));
    expect(triggers).toEqual([ownersTrigger]);
  });

  test('removes a trigger of ours it marked, and one an older version wrote without a mark', async () => {
    codecommit.on(GetRepositoryTriggersCommand).resolves({ triggers: [ownersTrigger, marked(ours)] });
    codecommit.on(PutRepositoryTriggersCommand).resolves({});
    await onEvent(event('Delete', { RepositoryName: 'service', Triggers: [ours] }));
    expect(written()).toEqual([[ownersTrigger]]);
  });

  test('removes only our trigger', async () => {
    codecommit.on(GetRepositoryTriggersCommand).resolves({ triggers: [ownersTrigger, ours] });
    codecommit.on(PutRepositoryTriggersCommand).resolves({});
    const response = await onEvent(event('Delete', { RepositoryName: 'service', Triggers: [ours] }));
    expect(response.PhysicalResourceId).toBe('service');
    expect(written()).toEqual([[ownersTrigger]]);
  });

  test('writes nothing when our trigger is already gone', async () => {
    codecommit.on(GetRepositoryTriggersCommand).resolves({ triggers: [ownersTrigger] });
    await onEvent(event('Delete', { RepositoryName: 'service', Triggers: [ours] }));
    expect(codecommit.commandCalls(PutRepositoryTriggersCommand)).toHaveLength(0);
  });

  test('properties that were never valid (the Create failed on them) remove nothing, and do not fail the rollback', async () => {
    await expect(onEvent(event('Delete', { RepositoryName: 'bad name', Triggers: [ours] }))).resolves.toEqual({
      PhysicalResourceId: 'bad name',
    });
    expect(codecommit.calls()).toHaveLength(0);
  });

  test('a deleted repository is not an error', async () => {
    codecommit.on(GetRepositoryTriggersCommand).rejects(new RepositoryDoesNotExistException({ message: 'gone', $metadata: {} }));
    await expect(onEvent(event('Delete', { RepositoryName: 'service', Triggers: [ours] }))).resolves.toEqual({
      PhysicalResourceId: 'service',
    });
  });

  test("removing our last trigger writes an empty list, the API's way to clear triggers", async () => {
    codecommit.on(GetRepositoryTriggersCommand).resolves({ triggers: [ours] });
    codecommit.on(PutRepositoryTriggersCommand).resolves({});
    await onEvent(event('Delete', { RepositoryName: 'service', Triggers: [ours] }));
    expect(written()).toEqual([[]]);
  });
});

test('refuses properties it does not understand, naming them', async () => {
  await expect(onEvent(event('Create', { RepositoryName: 'bad name', Triggers: [{ ...ours, events: [] }] }))).rejects.toThrow(
    /ResourceProperties\.RepositoryName: must be a CodeCommit repository name; ResourceProperties\.Triggers\.0\.events: must list at least one event/,
  );
  expect(codecommit.calls()).toHaveLength(0);
});

describe("the existing repositories' check (Custom::TrigglerRepositoryCheck)", () => {
  function checkEvent(requestType: 'Create' | 'Update' | 'Delete', properties: Record<string, unknown>): CloudFormationCustomResourceEvent {
    const base = event(requestType, properties, properties);
    const physicalId =
      requestType === 'Create' ? {} : { PhysicalResourceId: 'git-triggler-repository-check:CodeCommitExistingRepositoriesCheck' };
    return {
      ...base,
      ...physicalId,
      ResourceType: 'Custom::TrigglerRepositoryCheck',
      LogicalResourceId: 'CodeCommitExistingRepositoriesCheck',
    } as CloudFormationCustomResourceEvent;
  }

  test('passes when each repository exists and has room for our trigger (ours already there counts once), writing nothing', async () => {
    const nineOfTheirs = Array.from({ length: 9 }, (_, i) => ({ ...ownersTrigger, name: `theirs-${i}` }));
    codecommit.on(GetRepositoryTriggersCommand, { repositoryName: 'service' }).resolves({ triggers: [...nineOfTheirs, ours] });
    codecommit.on(GetRepositoryTriggersCommand, { repositoryName: 'tools' }).resolves({ triggers: [] });
    const response = await onEvent(checkEvent('Create', { RepositoryNames: ['service', 'tools'], TriggerName: ours.name }));
    expect(response.PhysicalResourceId).toBe('git-triggler-repository-check:CodeCommitExistingRepositoriesCheck');
    expect(codecommit.commandCalls(PutRepositoryTriggersCommand)).toHaveLength(0);
  });

  test('fails naming every repository that is missing or full, in one message', async () => {
    const tenOfTheirs = Array.from({ length: 10 }, (_, i) => ({ ...ownersTrigger, name: `theirs-${i}` }));
    codecommit
      .on(GetRepositoryTriggersCommand, { repositoryName: 'missing' })
      .rejects(new RepositoryDoesNotExistException({ message: 'no', $metadata: {} }));
    codecommit.on(GetRepositoryTriggersCommand, { repositoryName: 'full' }).resolves({ triggers: tenOfTheirs });
    codecommit.on(GetRepositoryTriggersCommand, { repositoryName: 'fine' }).resolves({ triggers: [ownersTrigger] });
    await expect(onEvent(checkEvent('Update', { RepositoryNames: ['fine', 'full', 'missing'], TriggerName: ours.name }))).rejects.toThrow(
      'repository full already has 10 triggers of its own (theirs-0, theirs-1, theirs-2, theirs-3, theirs-4, theirs-5, theirs-6, theirs-7, theirs-8, theirs-9) and CodeCommit allows 10: remove one, then deploy again; ' +
        'repository missing does not exist (create it, or set createRepository: true to have the stack create it)',
    );
    expect(codecommit.commandCalls(PutRepositoryTriggersCommand)).toHaveLength(0);
  });

  test('its delete touches nothing', async () => {
    await expect(onEvent(checkEvent('Delete', { RepositoryNames: ['service'], TriggerName: ours.name }))).resolves.toEqual({
      PhysicalResourceId: 'git-triggler-repository-check:CodeCommitExistingRepositoriesCheck',
    });
    expect(codecommit.calls()).toHaveLength(0);
  });
});
