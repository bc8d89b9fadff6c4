/** notifications in the stack: the topic, its policy, the host's grant, the alarm and the receiver config that uses them (cdk-nag included). */
import { Match, Template as Assertions } from 'aws-cdk-lib/assertions';
import { configOf, exampleConfigInput, removeScratch, trigglerApp } from '../../support/stack-fixture';

afterAll(removeScratch);

function synth(notifications: Record<string, unknown>) {
  const { app, stack } = trigglerApp(configOf({ ...exampleConfigInput(), notifications }));
  // cdk-nag runs on synth: an unacknowledged finding throws here.
  app.synth();
  return Assertions.fromStack(stack);
}

/** The receiver config cfn-init writes, with the topic's Ref left in place. */
function receiverConfigText(t: Assertions): string {
  return JSON.stringify(t.findResources('AWS::EC2::Instance'));
}

describe('stack notifications', () => {
  test('e-mail: an encrypted topic with its subscriptions, TLS-only policy, the host may publish to it only, and an alarm on failed runs', () => {
    const t = synth({ email: ['ops@example.com'] });
    t.resourceCountIs('AWS::SNS::Topic', 1);
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    t.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    const [topicId] = Object.keys(t.findResources('AWS::SNS::Topic'));
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'sns:Publish', Effect: 'Allow', Resource: { Ref: topicId } }),
          Match.objectLike({
            Action: 'cloudwatch:PutMetricData',
            Resource: '*',
            Condition: { StringEquals: { 'cloudwatch:namespace': 'GitTriggler/GitTriggler' } },
          }),
        ]),
      },
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'GitTriggler/GitTriggler',
      MetricName: 'FailedRuns',
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: topicId }],
    });
    const text = receiverConfigText(t);
    expect(text).toContain('"format":"sns"');
    expect(text).toContain(`"Ref":"${topicId}"`);
    expect(text).toContain('"format":"cloudwatch"');
  });

  test("the topic's key is the stack's own, and its policy lets CloudWatch publish the alarm to the topic", () => {
    const t = synth({ email: ['ops@example.com'] });
    const [keyId, key] = Object.entries(t.findResources('AWS::KMS::Key'))[0]!;
    expect(key).toMatchObject({ Properties: { EnableKeyRotation: true, PendingWindowInDays: 7 }, DeletionPolicy: 'Delete' });
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    const statements = (
      key.Properties as { KeyPolicy: { Statement: { Sid?: string; Principal: unknown; Action: string[]; Condition?: unknown }[] } }
    ).KeyPolicy.Statement;
    expect(statements.find((statement) => statement.Sid === 'CloudWatchAlarmsPublish')).toMatchObject({
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    });
    expect(JSON.stringify(t.toJSON())).not.toContain('alias/aws/sns');
  });

  test('an existing topic: no topic of ours, the grant names it, and the alarm notifies it', () => {
    const topicArn = 'arn:aws:sns:eu-west-1:123456789012:ops';
    const t = synth({ topicArn, on: ['failed'] });
    t.resourceCountIs('AWS::SNS::Topic', 0);
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sns:Publish', Resource: topicArn })]) },
    });
    t.resourceCountIs('AWS::CloudWatch::Alarm', 2); // the sender's failure-queue alarm and ours
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'FailedRuns', AlarmActions: [topicArn] });
    expect(receiverConfigText(t)).toContain(topicArn);
  });

  test('refuses e-mail addresses for a topic the stack does not own', () => {
    expect(() =>
      configOf({
        ...exampleConfigInput(),
        notifications: { topicArn: 'arn:aws:sns:eu-west-1:123456789012:ops', email: ['a@example.com'] },
      }),
    ).toThrow(/notifications\.email/);
  });
});
