/**
 * Notifications to AWS: a failed run of a real receiver publishes to an SNS topic and puts a
 * `FailedRuns` data point in CloudWatch. The AWS services cannot run here: their SDK clients are
 * mocked with aws-sdk-client-mock, and every request is checked.
 */
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { awsPublishers } from '../../../receiver/notify/aws-publishers';
import { pushStandard, startTestReceiver, type TestReceiver } from '../../support/receiver-fixture';
import { waitFor } from '../../support/wait-for';

const TOKEN = 'aws-notify-test-token-0123456789';
const TOPIC = 'arn:aws:sns:eu-central-1:123456789012:triggler-runs';

describe('SNS and CloudWatch notifications', () => {
  const sns = mockClient(SNSClient);
  const cloudWatch = mockClient(CloudWatchClient);
  let receiver: TestReceiver | undefined;

  beforeEach(() => {
    sns.reset();
    cloudWatch.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    cloudWatch.on(PutMetricDataCommand).resolves({});
  });
  afterEach(async () => {
    await receiver?.dispose();
    receiver = undefined;
  });
  afterAll(() => {
    sns.restore();
    cloudWatch.restore();
  });

  it('a failed run is published to the topic, in its region, and counted in the namespace; a success is not', async () => {
    receiver = await startTestReceiver({
      triggers: [
        {
          repository: 'svc',
          branch: 'main',
          token: TOKEN,
          command: 'echo "building $TRIGGLER_COMMIT"; [ "$TRIGGLER_COMMIT" != "$BAD" ] || { echo "tests failed" >&2; exit 3; }',
          env: { BAD: 'b'.repeat(40) },
        },
      ],
      notify: [
        { format: 'sns', topicArn: TOPIC },
        { format: 'cloudwatch', namespace: 'GitTriggler' },
      ],
    });
    for (const commit of ['a'.repeat(40), 'b'.repeat(40)]) {
      await pushStandard(receiver, { token: TOKEN, repository: 'svc', branch: 'main', commit });
      await receiver.settledRuns();
    }

    await waitFor(
      'the SNS message and the data point',
      () => sns.commandCalls(PublishCommand).length === 1 && cloudWatch.commandCalls(PutMetricDataCommand).length === 1,
    );
    const [publish] = sns.commandCalls(PublishCommand);
    const input = publish!.args[0].input;
    expect(input.TopicArn).toBe(TOPIC);
    expect(input.Subject).toMatch(/^[\x20-\x7e]{1,100}$/);
    expect(input.Subject).toContain('svc');
    expect(input.Subject).toContain('failed');
    expect(input.Message).toContain('tests failed');
    // The client talks to the topic's region, whatever the receiver's own.
    expect(await (publish!.thisValue as SNSClient).config.region()).toBe('eu-central-1');

    const [metric] = cloudWatch.commandCalls(PutMetricDataCommand);
    expect(metric!.args[0].input).toMatchObject({
      Namespace: 'GitTriggler',
      MetricData: [{ MetricName: 'FailedRuns', Value: 1, Unit: 'Count' }],
    });
    // Nothing for the run that succeeded.
    await receiver.settledRuns();
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('keeps an SNS subject to what SNS takes: ASCII, one line, at most 100 characters', async () => {
    await awsPublishers().publish(TOPIC, `déploiement ✓ ${'x'.repeat(200)}\nsecond line`, 'body');
    const subject = sns.commandCalls(PublishCommand)[0]!.args[0].input.Subject!;
    expect(subject).toMatch(/^[\x20-\x7e]+$/);
    expect(subject.length).toBeLessThanOrEqual(100);
    expect(subject.startsWith('dploiement  xxx')).toBe(true);
    await awsPublishers().publish(TOPIC, '✓✓✓', 'body');
    expect(sns.commandCalls(PublishCommand)[1]!.args[0].input.Subject).toBe('triggler run');
  });

  it('a refusal from SNS is given up once its retry time is over, naming the AWS error, and the receiver stays up', async () => {
    sns
      .on(PublishCommand)
      .rejects(Object.assign(new Error('User is not authorized to perform SNS:Publish'), { name: 'AuthorizationErrorException' }));
    receiver = await startTestReceiver({
      triggers: [{ repository: 'svc', branch: 'main', token: TOKEN, command: 'exit 1' }],
      notify: [{ format: 'sns', topicArn: TOPIC, retrySeconds: 0 }],
    });
    await pushStandard(receiver, { token: TOKEN, repository: 'svc', branch: 'main', commit: 'c'.repeat(40) });
    await receiver.settledRuns();
    const given = await waitFor('the notification to be given up', () =>
      receiver!.logs.find((line) => /notification/.test(String(line.msg)) && line.level === 50),
    );
    expect((given.err as { message?: unknown }).message).toContain(
      `SNS refused the message to ${TOPIC}: AuthorizationErrorException: User is not authorized to perform SNS:Publish`,
    );
    expect((await receiver.send('/healthz', { method: 'GET' })).status).toBe(200);
  });
});
