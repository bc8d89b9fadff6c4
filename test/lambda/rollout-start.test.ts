/**
 * The senders when the receiver is a fleet: the CodeCommit sender and the webhook relay start a
 * rollout (StartExecution, mocked with aws-sdk-client-mock) instead of sending to a host. Checked:
 * the execution's input and name are the protocol's, a retry of the same delivery (Step Functions'
 * ExecutionAlreadyExists) is a success that starts nothing new, and only whole commit ids start one.
 */
import { randomUUID } from 'node:crypto';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { CodeCommitTriggerEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { createLambdaLogger } from '../../lambda/log';
import { createRelay, type RelayResult } from '../../lambda/relay';
import { relaySettingsFromEnvironment, type RelaySettings } from '../../lambda/relay-settings';
import { createRolloutSender } from '../../lambda/rollout-sender';
import { RolloutStarter } from '../../lambda/rollout-starter';
import { DeliveryFailedError, handler, webhookIdFor } from '../../lambda/sender';
import { rolloutSenderSettingsFromEnvironment, SenderConfigError } from '../../lambda/sender-routes';
import { rolloutExecutionName, rolloutInput } from '../../protocol';
import { functionUrlEvent } from '../../scripts/local-lambda';
import { signWithOctokit } from '../support/octokit-signer';

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:FleetRollout';
const COMMIT = 'a'.repeat(40);
const OTHER_COMMIT = 'b'.repeat(40);
const EVENT_ID = '31ade2c7-f889-47c5-a937-1cf99e2790e9';

const sfn = mockClient(SFNClient);

function logged() {
  const lines: string[] = [];
  const logger = createLambdaLogger({ destination: { write: (line: string) => void lines.push(line) }, level: 'debug' });
  return { logger, logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

function codeCommitEvent(references: { ref: string; commit: string; deleted?: boolean }[]): CodeCommitTriggerEvent {
  return {
    Records: [
      {
        awsRegion: 'eu-west-1',
        codecommit: { references },
        eventId: EVENT_ID,
        eventName: 'ReferenceChanges',
        eventPartNumber: 1,
        eventSource: 'aws:codecommit',
        eventSourceARN: 'arn:aws:codecommit:eu-west-1:123456789012:my-app',
        eventTime: '2026-03-12T20:58:25.400+0000',
        eventTotalParts: 1,
        eventTriggerConfigId: '0d17d6a4-efeb-46f3-b3ab-a63741badeb8',
        eventTriggerName: 'sender',
        eventVersion: '1.0',
        userIdentityARN: 'arn:aws:iam::123456789012:user/dev',
      },
    ],
  } as CodeCommitTriggerEvent;
}

function starter(): RolloutStarter {
  return new RolloutStarter(new SFNClient({ region: 'eu-west-1' }), STATE_MACHINE);
}

beforeEach(() => sfn.reset());

describe('the CodeCommit sender of a fleet', () => {
  const settings = rolloutSenderSettingsFromEnvironment({
    TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: STATE_MACHINE,
    // A fleet's routes name only the triggers; fields of a host's route are not read.
    TRIGGLER_ROUTES: JSON.stringify([
      { repository: 'my-app', branch: 'main' },
      { repository: 'my-app', branch: 'feature/login', url: 'http://unused', tokenParameter: '/unused' },
    ]),
  })!;

  it('starts one execution per routed push, with the input and the name of the protocol', async () => {
    sfn.on(StartExecutionCommand).callsFake((input: { name: string }) => ({
      executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: new Date(),
    }));
    const { logger, logs } = logged();
    const send = createRolloutSender({ triggers: settings.triggers, starter: starter(), logger });
    const event = codeCommitEvent([
      { ref: 'refs/heads/main', commit: COMMIT },
      { ref: 'refs/heads/feature/login', commit: OTHER_COMMIT },
      { ref: 'refs/heads/unrouted', commit: COMMIT },
      { ref: 'refs/tags/v1', commit: COMMIT },
    ]);
    const report = await send(event, { awsRequestId: 'request-1' });

    const mainDelivery = webhookIdFor({ eventId: EVENT_ID, repository: 'my-app', ref: 'refs/heads/main' });
    const loginDelivery = webhookIdFor({ eventId: EVENT_ID, repository: 'my-app', ref: 'refs/heads/feature/login' });
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 2);
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: STATE_MACHINE,
      name: rolloutExecutionName('my-app@main', mainDelivery),
      input: JSON.stringify({ trigger: 'my-app@main', repository: 'my-app', branch: 'main', commit: COMMIT, deliveryId: mainDelivery }),
    });
    const loginCall = sfn.commandCalls(StartExecutionCommand).find((call) => call.args[0].input.name?.startsWith('my-app-feature-login-'));
    expect(JSON.parse(loginCall!.args[0].input.input!)).toEqual(rolloutInput('my-app', 'feature/login', OTHER_COMMIT, loginDelivery));
    expect(report.deliveries).toEqual([]);
    expect(report.rollouts.map((r) => [r.branch, r.ok, r.alreadyStarted])).toEqual([
      ['main', true, false],
      ['feature/login', true, false],
    ]);
    expect(report.rollouts[0]!.executionArn).toBe(
      `arn:aws:states:eu-west-1:123456789012:execution:FleetRollout:${report.rollouts[0]!.executionName}`,
    );
    expect(report.unrouted).toEqual([{ repository: 'my-app', branch: 'unrouted' }]);
    expect(report.skipped).toEqual([{ repository: 'my-app', ref: 'refs/tags/v1', reason: 'tag' }]);
    expect(logs().filter((line) => line.msg === 'rollout started')).toHaveLength(2);
  });

  it("answers Lambda's retry of the same event with success: the rollout exists already, none more starts", async () => {
    const names: string[] = [];
    sfn.on(StartExecutionCommand).callsFake((input: { name: string }) => {
      if (names.includes(input.name))
        throw new ExecutionAlreadyExists({ message: `Execution Already Exists: '${input.name}'`, $metadata: {} });
      names.push(input.name);
      return { executionArn: `arn:aws:states:eu-west-1:123456789012:execution:FleetRollout:${input.name}`, startDate: new Date() };
    });
    const { logger, logs } = logged();
    const send = createRolloutSender({ triggers: settings.triggers, starter: starter(), logger });
    const event = codeCommitEvent([{ ref: 'refs/heads/main', commit: COMMIT }]);
    const first = await send(event);
    const retry = await send(event);
    expect(names).toHaveLength(1);
    expect(first.rollouts[0]).toMatchObject({ ok: true, alreadyStarted: false });
    expect(retry.rollouts[0]).toMatchObject({ ok: true, alreadyStarted: true, executionName: first.rollouts[0]!.executionName });
    expect(retry.rollouts[0]!.executionArn).toBe(first.rollouts[0]!.executionArn);
    expect(logs().map((line) => line.msg)).toContain('rollout was started already (a retry); not started again');
  });

  it('refuses a commit id that is not whole, and throws naming each push that did not start, after trying the rest', async () => {
    sfn
      .on(StartExecutionCommand)
      .rejects(Object.assign(new Error('User is not authorized to perform: states:StartExecution'), { name: 'AccessDeniedException' }));
    const { logger } = logged();
    const send = createRolloutSender({ triggers: settings.triggers, starter: starter(), logger });
    const event = codeCommitEvent([
      // The AWS documentation's sample commit id: 39 digits.
      { ref: 'refs/heads/main', commit: '5e493c6f3067653f3d04eca608b4901eb227078' },
      { ref: 'refs/heads/feature/login', commit: COMMIT },
    ]);
    const error = await send(event).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(DeliveryFailedError);
    const failed = error as DeliveryFailedError;
    expect(failed.failures.map((f) => [f.branch, f.error])).toEqual([
      ['main', 'commit 5e493c6f3067653f3d04eca608b4901eb227078 is not a whole commit id (40 or 64 lowercase hex digits)'],
      [
        'feature/login',
        'Step Functions did not start the rollout: AccessDeniedException: User is not authorized to perform: states:StartExecution',
      ],
    ]);
    // The malformed commit never reached Step Functions.
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
    expect(failed.message).toContain(STATE_MACHINE);
  });

  it('is what the Lambda entry point runs when its environment names the state machine: no token is read', async () => {
    sfn
      .on(StartExecutionCommand)
      .resolves({ executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:x`, startDate: new Date() });
    const ssm = mockClient(SSMClient);
    const saved = { ...process.env };
    Object.assign(process.env, {
      TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: STATE_MACHINE,
      TRIGGLER_ROUTES: JSON.stringify([{ repository: 'my-app', branch: 'main' }]),
      TRIGGLER_LOG_LEVEL: 'silent',
      AWS_REGION: 'eu-west-1',
    });
    try {
      const report = await handler(codeCommitEvent([{ ref: 'refs/heads/main', commit: COMMIT }]), {
        awsRequestId: 'request-1',
        getRemainingTimeInMillis: () => 30_000,
      } as never);
      expect(report).toMatchObject({ deliveries: [], rollouts: [{ repository: 'my-app', branch: 'main', commit: COMMIT, ok: true }] });
      expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
      expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 0);
    } finally {
      ssm.restore();
      process.env = saved;
    }
  });

  it('is chosen by TRIGGLER_ROLLOUT_STATE_MACHINE_ARN, which must be a state machine ARN', () => {
    expect(rolloutSenderSettingsFromEnvironment({ TRIGGLER_ROUTES: '[]' })).toBeUndefined();
    expect(() =>
      rolloutSenderSettingsFromEnvironment({ TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: 'FleetRollout', TRIGGLER_ROUTES: '[]' }),
    ).toThrow(
      new SenderConfigError(
        'TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: must be a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)',
        [],
      ),
    );
    expect(() =>
      rolloutSenderSettingsFromEnvironment({
        TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: STATE_MACHINE,
        TRIGGLER_ROUTES: '[{"repository":"my-app"}]',
      }),
    ).toThrow(/TRIGGLER_ROUTES\[0\]\.branch/);
  });
});

describe('the webhook relay of a fleet', () => {
  const SECRET = 'github-webhook-secret-of-the-fleet-repository';
  const TOKEN_PARAMETER = '/fleet/tokens/github/Codertocat/Hello-World';
  const settings: RelaySettings = relaySettingsFromEnvironment({
    TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: STATE_MACHINE,
    TRIGGLER_RELAY: JSON.stringify({
      timeoutMs: 8000,
      bodyLimitBytes: 1024 * 1024,
      tokenTtlSeconds: 60,
      tokenGraceSeconds: 900,
      routes: [{ provider: 'github', repository: 'Codertocat/Hello-World', tokenParameter: TOKEN_PARAMETER, branches: ['main'] }],
    }),
  });
  /** The relay's token reader, holding the one secret as SSM would. */
  const tokens = {
    acceptedTokens: async (parameter: string) => (parameter === TOKEN_PARAMETER ? [SECRET] : []),
    forget: () => undefined,
  };
  const push = (branch: string, after: string) =>
    JSON.stringify({
      ref: `refs/heads/${branch}`,
      before: '0'.repeat(40),
      after,
      repository: { name: 'Hello-World', full_name: 'Codertocat/Hello-World' },
      pusher: { name: 'Codertocat' },
    });

  async function post(body: string, event: string, delivery: string): Promise<RelayResult> {
    const [signature] = await signWithOctokit(SECRET, [body]);
    const { logger } = logged();
    const relay = createRelay({ settings, tokens, logger, rollouts: starter() });
    const headers = {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': delivery,
      'x-hub-signature-256': signature!,
    };
    return relay(functionUrlEvent('/hooks/github', headers, body));
  }

  it('starts a rollout of the pushed commit named from the provider delivery id, and a redelivery starts none more', async () => {
    const started = new Set<string>();
    sfn.on(StartExecutionCommand).callsFake((input: { name: string }) => {
      if (started.has(input.name)) throw new ExecutionAlreadyExists({ message: 'Execution Already Exists', $metadata: {} });
      started.add(input.name);
      return { executionArn: `arn:aws:states:eu-west-1:123456789012:execution:FleetRollout:${input.name}`, startDate: new Date() };
    });
    const delivery = randomUUID();
    const body = push('main', COMMIT);
    const first = await post(body, 'push', delivery);
    const redelivered = await post(body, 'push', delivery);

    const name = rolloutExecutionName('Codertocat/Hello-World@main', delivery);
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: STATE_MACHINE,
      name,
      input: JSON.stringify(rolloutInput('Codertocat/Hello-World', 'main', COMMIT, delivery)),
    });
    expect(started).toEqual(new Set([name]));
    expect([first.statusCode, redelivered.statusCode]).toEqual([202, 202]);
    expect(JSON.parse(first.body)).toEqual({
      status: 'accepted',
      delivery,
      rollouts: [{ trigger: 'Codertocat/Hello-World@main', execution: name, alreadyStarted: false }],
    });
    expect(JSON.parse(redelivered.body).rollouts).toEqual([
      { trigger: 'Codertocat/Hello-World@main', execution: name, alreadyStarted: true },
    ]);
  });

  it('starts nothing for a branch without a trigger or another event, and asks for a redelivery when Step Functions refuses', async () => {
    sfn.on(StartExecutionCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const other = await post(push('feature', COMMIT), 'push', randomUUID());
    expect(other.statusCode).toBe(200);
    expect(JSON.parse(other.body)).toMatchObject({ status: 'ignored', ignored: ['no trigger for branch feature'] });
    const star = await post(push('main', COMMIT), 'star', randomUUID());
    expect([star.statusCode, JSON.parse(star.body).status]).toEqual([200, 'ignored']);
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 0);

    const refused = await post(push('main', COMMIT), 'push', randomUUID());
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('60');
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
  });

  it("needs each route's branches, and no receiver URL, when the receiver is a fleet", () => {
    const relay =
      (routes: unknown[], env: Record<string, string> = { TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: STATE_MACHINE }) =>
      () =>
        relaySettingsFromEnvironment({
          ...env,
          TRIGGLER_RELAY: JSON.stringify({ timeoutMs: 8000, bodyLimitBytes: 1024, tokenTtlSeconds: 60, tokenGraceSeconds: 900, routes }),
        });
    const route = { provider: 'github', repository: 'Codertocat/Hello-World', tokenParameter: TOKEN_PARAMETER };
    expect(relay([route])).toThrow('TRIGGLER_RELAY.routes[0].branches: is required when TRIGGLER_ROLLOUT_STATE_MACHINE_ARN is set');
    expect(relay([route], {})).toThrow('TRIGGLER_RELAY.receiverUrl: is required (unless TRIGGLER_ROLLOUT_STATE_MACHINE_ARN is set)');
    expect(relay([{ ...route, branches: ['main'] }])()).toMatchObject({ receiverUrl: '', rolloutStateMachineArn: STATE_MACHINE });
  });
});
