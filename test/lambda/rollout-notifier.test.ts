/**
 * The rollout.finished notifier: Step Functions' status change events in, one notification per
 * target out — to real HTTP servers on 127.0.0.1 (a Standard Webhooks endpoint, checked with the
 * independent `standardwebhooks` package, and a Slack-compatible one), and to SNS, CloudWatch,
 * SSM and Step Functions mocked with aws-sdk-client-mock.
 */
import { PutMetricDataCommand, CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { Webhook } from 'standardwebhooks';
import { createLambdaLogger } from '../../lambda/log';
import {
  createRolloutNotifier,
  rolloutNotifySettingsFromEnvironment,
  type ExecutionStatusChange,
  type RolloutNotifySettings,
} from '../../lambda/rollout-notifier';
import { SsmTokenCache } from '../../lambda/ssm-token-cache';
import { rolloutInput, type RolloutFinishedEvent, type RolloutSummary } from '../../protocol';
import { startRecordingReceiver, type RecordingReceiver } from '../support/recording-receiver';

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:FleetRollout';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:triggler-rollouts';
const SIGNING_TOKEN = `whsec_${Buffer.from('rollout-notification-signing-key!').toString('base64')}`;
const COMMIT = 'c0ffee'.padEnd(40, '0');
const input = rolloutInput('my-app', 'main', COMMIT, 'msg_delivery');

const ssm = mockClient(SSMClient);
const sns = mockClient(SNSClient);
const cloudWatch = mockClient(CloudWatchClient);
const sfn = mockClient(SFNClient);

let webhook: RecordingReceiver;
let slack: RecordingReceiver;

beforeAll(async () => {
  webhook = await startRecordingReceiver(() => ({ status: 204 }));
  slack = await startRecordingReceiver((request) => (request.path === '/gone' ? { status: 410 } : { status: 200, body: 'ok' }));
});

afterAll(async () => {
  await webhook?.close();
  await slack?.close();
});

beforeEach(() => {
  for (const mock of [ssm, sns, cloudWatch, sfn]) mock.reset();
  webhook.requests.length = 0;
  slack.requests.length = 0;
  ssm
    .on(GetParameterCommand, { Name: '/fleet/notify/token' })
    .resolves({ Parameter: { Name: '/fleet/notify/token', Value: SIGNING_TOKEN, Version: 1 } });
  ssm
    .on(GetParameterCommand, { Name: '/fleet/notify/slack' })
    .resolves({ Parameter: { Name: '/fleet/notify/slack', Value: `${slack.url}/services/T000/B000/secret`, Version: 1 } });
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
  cloudWatch.on(PutMetricDataCommand).resolves({});
});

const rolledBack: RolloutSummary = {
  ...input,
  outcome: 'rolled-back',
  reason: 'host i-0bbb failed its switch in batch 2 (maxFailedHosts 0)',
  instances: ['i-0aaa', 'i-0bbb', 'i-0ccc'],
  hosts: [
    {
      instanceId: 'i-0aaa',
      prepare: { invocation: 'Success', result: { status: 'succeeded', runId: 'r_a1', release: 'rel-a', commit: COMMIT, host: 'a' } },
      switch: { invocation: 'Success', result: { status: 'succeeded', runId: 'r_a2', release: 'rel-a', commit: COMMIT, host: 'a' } },
      rollback: {
        invocation: 'Success',
        result: { status: 'succeeded', runId: 'r_a3', release: 'rel-old-a', commit: 'f'.repeat(40), host: 'a' },
      },
    },
    {
      instanceId: 'i-0bbb',
      prepare: { invocation: 'Success', result: { status: 'succeeded', runId: 'r_b1', release: 'rel-b', commit: COMMIT, host: 'b' } },
      switch: {
        invocation: 'Failed',
        result: { status: 'rolled-back', runId: 'r_b2', release: null, commit: COMMIT, host: 'b', error: 'health check failed' },
      },
    },
    {
      instanceId: 'i-0ccc',
      prepare: { invocation: 'Success', result: { status: 'succeeded', runId: 'r_c1', release: 'rel-c', commit: COMMIT, host: 'c' } },
    },
  ],
};

function statusChange(overrides: Partial<ExecutionStatusChange>): { detail: ExecutionStatusChange } {
  return {
    detail: {
      executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:my-app-main-0123`,
      stateMachineArn: STATE_MACHINE,
      name: 'my-app-main-0123',
      status: 'FAILED',
      startDate: Date.parse('2026-12-06T10:00:00Z'),
      stopDate: Date.parse('2026-12-06T10:05:30Z'),
      input: JSON.stringify(input),
      output: null,
      error: 'RolloutRolledBack',
      cause: JSON.stringify(rolledBack),
      ...overrides,
    },
  };
}

function notifier(settings: RolloutNotifySettings, options: { firstRetryMs?: number } = {}) {
  const lines: string[] = [];
  const logger = createLambdaLogger({ destination: { write: (line: string) => void lines.push(line) } });
  const notify = createRolloutNotifier({
    settings,
    logger,
    secrets: new SsmTokenCache({ client: new SSMClient({ region: 'eu-west-1' }), ttlSeconds: 60 }),
    sfn: new SFNClient({ region: 'eu-west-1' }),
    sns: new SNSClient({ region: 'eu-west-1' }),
    cloudWatch: new CloudWatchClient({ region: 'eu-west-1' }),
    ...options,
  });
  return { notify, logText: () => lines.join('\n') };
}

/** A target of each format, the Standard Webhooks one at `webhookUrl`. */
const everyFormat = (webhookUrl = webhook.url): RolloutNotifySettings =>
  rolloutNotifySettingsFromEnvironment({
    TRIGGLER_ROLLOUT_NOTIFY: JSON.stringify({
      targets: [
        { format: 'standard', url: `${webhookUrl}/hooks/rollouts`, tokenParameter: '/fleet/notify/token' },
        { format: 'slack', urlParameter: '/fleet/notify/slack' },
        { format: 'sns', topicArn: TOPIC },
        { format: 'cloudwatch', namespace: 'GitTriggler' },
      ],
    }),
  });

/** What the notifier answers when every target of everyFormat() had its notification. */
const EVERY_FORMAT_SENT = [
  ['standard', true],
  ['slack', true],
  ['sns', true],
  ['cloudwatch', true],
];

describe('one rollout.finished notification per target', () => {
  it("names each host's outcome from the summary in every format", async () => {
    const { notify, logText } = notifier(everyFormat());
    const sent = await notify(statusChange({}));
    expect(sent.map((s) => [s.format, s.ok])).toEqual(EVERY_FORMAT_SENT);

    expect(webhook.requests).toHaveLength(1);
    const [request] = webhook.requests;
    const event = new Webhook(SIGNING_TOKEN).verify(request!.body, request!.headers) as RolloutFinishedEvent;
    expect(event.type).toBe('rollout.finished');
    expect(event.data).toMatchObject({
      rollout: 'my-app-main-0123',
      trigger: 'my-app@main',
      commit: COMMIT,
      outcome: 'rolled-back',
      reason: rolledBack.reason,
      durationSeconds: 330,
      hosts: [
        { instanceId: 'i-0aaa', outcome: 'rolled-back', runId: 'r_a3', release: 'rel-old-a' },
        { instanceId: 'i-0bbb', outcome: 'failed', runId: 'r_b2', release: null, error: 'health check failed' },
        { instanceId: 'i-0ccc', outcome: 'prepared', runId: 'r_c1', release: 'rel-c' },
      ],
    });

    expect(slack.requests.map((r) => r.path)).toEqual(['/services/T000/B000/secret']);
    const text = (JSON.parse(slack.requests[0]!.body) as { text: string }).text;
    expect(text).toBe(
      `↩️ my-app@main rollout rolled-back after 330 s, commit ${COMMIT.slice(0, 12)} (host i-0bbb failed its switch in batch 2 (maxFailedHosts 0)): i-0aaa rolled-back, i-0bbb failed, i-0ccc prepared; rollout my-app-main-0123`,
    );

    expect(sns).toHaveReceivedCommandWith(PublishCommand, {
      TopicArn: TOPIC,
      Subject: expect.stringMatching(/^my-app@main rollout rolled-back/),
    });
    const message = sns.commandCalls(PublishCommand)[0]!.args[0].input.Message!;
    expect(message.split('\n').slice(2)).toEqual([
      'i-0aaa: rolled-back, release rel-old-a, run r_a3',
      'i-0bbb: failed, run r_b2 (health check failed)',
      'i-0ccc: prepared, release rel-c, run r_c1',
    ]);
    expect(cloudWatch).toHaveReceivedCommandWith(PutMetricDataCommand, {
      Namespace: 'GitTriggler',
      MetricData: [expect.objectContaining({ MetricName: 'FailedRollouts', Value: 1 })],
    });
    // The Slack URL's secret path and the signing token are in no log line.
    expect(logText()).not.toContain('secret');
    expect(logText()).not.toContain(SIGNING_TOKEN.slice(6));
  });

  it('reads the execution when the event could not carry the summary, and says why a stopped rollout left none', async () => {
    const { reason: _reason, ...withoutReason } = rolledBack;
    const succeeded: RolloutSummary = { ...withoutReason, outcome: 'succeeded', hosts: rolledBack.hosts.slice(2) };
    sfn
      .on(DescribeExecutionCommand)
      .resolves({ status: 'SUCCEEDED', input: JSON.stringify(input), output: JSON.stringify(succeeded) } as never);
    const { notify } = notifier(everyFormat());
    await notify(statusChange({ status: 'SUCCEEDED', output: null, cause: null, error: null }));
    expect(sfn).toHaveReceivedCommandTimes(DescribeExecutionCommand, 1);
    const event = JSON.parse(webhook.requests[0]!.body) as RolloutFinishedEvent;
    expect([event.data.outcome, event.data.hosts.map((h) => h.outcome)]).toEqual(['succeeded', ['prepared']]);
    expect(cloudWatch).toHaveReceivedCommandWith(PutMetricDataCommand, { MetricData: [expect.objectContaining({ Value: 0 })] });

    sfn.reset();
    sfn
      .on(DescribeExecutionCommand)
      .resolves({ status: 'ABORTED', input: JSON.stringify(input), cause: 'stopped by an operator' } as never);
    await notify(statusChange({ status: 'ABORTED', cause: null, error: null }));
    const stopped = JSON.parse(webhook.requests[1]!.body) as RolloutFinishedEvent;
    expect(stopped.data).toMatchObject({ outcome: 'stopped', trigger: 'my-app@main', reason: 'stopped by an operator', hosts: [] });
  });

  it('sends only the outcomes a target asks for, and nothing for a superseded rollout by default', async () => {
    const settings = rolloutNotifySettingsFromEnvironment({
      TRIGGLER_ROLLOUT_NOTIFY: JSON.stringify({
        targets: [
          { format: 'sns', topicArn: TOPIC, on: ['failed', 'rolled-back'] },
          { format: 'slack', url: `${slack.url}/hook` },
        ],
      }),
    });
    const { notify } = notifier(settings);
    const superseded: RolloutSummary = { ...rolledBack, outcome: 'superseded', hosts: [], instances: [] };
    expect(await notify(statusChange({ status: 'SUCCEEDED', output: JSON.stringify(superseded) }))).toEqual([]);
    const succeeded = await notify(statusChange({ status: 'SUCCEEDED', output: JSON.stringify({ ...rolledBack, outcome: 'succeeded' }) }));
    expect(succeeded.map((s) => s.format)).toEqual(['slack']);
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(await notify(statusChange({ status: 'RUNNING' }))).toEqual([]);
  });

  it("fails the invocation naming each target that failed, after trying the rest (the URL's origin only)", async () => {
    const settings = rolloutNotifySettingsFromEnvironment({
      TRIGGLER_ROLLOUT_NOTIFY: JSON.stringify({
        targets: [
          { format: 'slack', url: `${slack.url}/gone` },
          { format: 'sns', topicArn: TOPIC },
        ],
      }),
    });
    const { notify } = notifier(settings);
    await expect(notify(statusChange({}))).rejects.toThrow(
      `1 of 2 rollout notifications failed: targets[0] (slack: ${slack.url} answered 410)`,
    );
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
  });

  it('tries a target that failed again on its own: the targets that had it never hear twice', async () => {
    // A webhook endpoint down for its first request, then up.
    let answered = 0;
    const flaky = await startRecordingReceiver(() => (answered++ === 0 ? { status: 503 } : { status: 204 }));
    try {
      const { notify, logText } = notifier(everyFormat(flaky.url), { firstRetryMs: 10 });
      const sent = await notify(statusChange({}));
      expect(sent.map((s) => [s.format, s.ok])).toEqual(EVERY_FORMAT_SENT);
      expect(flaky.requests).toHaveLength(2);
      // The same webhook-id on the retry: the receiving end can tell it is one notification.
      expect(flaky.requests[1]!.headers['webhook-id']).toBe(flaky.requests[0]!.headers['webhook-id']);
      expect(slack.requests).toHaveLength(1);
      expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
      expect(cloudWatch).toHaveReceivedCommandTimes(PutMetricDataCommand, 1);
      expect(logText()).toContain('rollout notification failed; retrying');
    } finally {
      await flaky.close();
    }
  });

  it("gives up a target still failing when the invocation's time runs out, failing it alone; the others heard once", async () => {
    sns.on(PublishCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const { notify } = notifier(everyFormat(), { firstRetryMs: 10 });
    // Lambda's clock: time for one retry, then none.
    const left = [60_000, 0];
    const clock = { getRemainingTimeInMillis: () => left.shift() ?? 0 };
    await expect(notify(statusChange({}), clock)).rejects.toThrow(
      /^1 of 4 rollout notifications failed: targets\[2\] \(sns: .*Rate exceeded/,
    );
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 2);
    expect(webhook.requests).toHaveLength(1);
    expect(slack.requests).toHaveLength(1);
    expect(cloudWatch).toHaveReceivedCommandTimes(PutMetricDataCommand, 1);
  });

  it('tries reading the execution again when Step Functions fails it, then tells every target once', async () => {
    const { reason: _reason, ...withoutReason } = rolledBack;
    const succeeded: RolloutSummary = { ...withoutReason, outcome: 'succeeded', hosts: rolledBack.hosts.slice(2) };
    sfn
      .on(DescribeExecutionCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .resolves({ status: 'SUCCEEDED', input: JSON.stringify(input), output: JSON.stringify(succeeded) } as never);
    const { notify } = notifier(everyFormat(), { firstRetryMs: 10 });
    const sent = await notify(statusChange({ status: 'SUCCEEDED', output: null, cause: null, error: null }));
    expect(sent.map((s) => [s.format, s.ok])).toEqual(EVERY_FORMAT_SENT);
    expect(sfn).toHaveReceivedCommandTimes(DescribeExecutionCommand, 2);
    expect(webhook.requests).toHaveLength(1);
    expect(slack.requests).toHaveLength(1);
  });

  it('refuses settings that miss what a format needs, naming the target', () => {
    const parse = (targets: unknown[]) => () =>
      rolloutNotifySettingsFromEnvironment({ TRIGGLER_ROLLOUT_NOTIFY: JSON.stringify({ targets }) });
    expect(parse([{ format: 'standard', url: 'https://example.com/hook' }])).toThrow(
      'TRIGGLER_ROLLOUT_NOTIFY.targets[0]: format standard needs url and tokenParameter',
    );
    expect(parse([{ format: 'slack', url: 'https://example.com/a', urlParameter: '/x' }])).toThrow(
      'format slack needs one of url and urlParameter',
    );
    expect(parse([{ format: 'sns', topicArn: 'my-topic' }])).toThrow(
      'TRIGGLER_ROLLOUT_NOTIFY.targets[0].topicArn: must be an SNS topic ARN',
    );
    expect(parse([])).toThrow('TRIGGLER_ROLLOUT_NOTIFY.targets: must hold at least one target');
  });
});
