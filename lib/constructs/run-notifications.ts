import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { ReceiverConfigInput } from '../../receiver/config/schema';

export interface RunNotificationsProps {
  /** Addresses subscribed (by e-mail, each confirms once) to the topic the receiver publishes to. @default none */
  readonly emails?: string[];
  /**
   * Publish to this existing topic instead of one the stack creates; the alarm notifies it too, so
   * if it is encrypted, its key's policy must let CloudWatch (cloudwatch.amazonaws.com) use it for
   * kms:Decrypt and kms:GenerateDataKey* (the AWS-managed aws/sns key cannot).
   * @default a new topic encrypted with a key of its own
   */
  readonly topicArn?: string;
  /** The run outcomes published to the topic. @default failed, timed-out, rolled-back, recovered */
  readonly on?: NonNullable<ReceiverConfigInput['notify']>[number]['on'];
  /** Where the receiver puts its `FailedRuns` data points, which the alarm watches. */
  readonly metricNamespace: string;
}

/**
 * When a run ends badly, someone hears: an SNS topic the receiver publishes run outcomes to (with
 * e-mail subscribers), and an alarm on the `FailedRuns` metric the receiver puts for each failed,
 * timed-out or rolled-back run, which notifies the same topic. The host may publish to that topic
 * only, and put metrics in that namespace only.
 *
 * The topic is encrypted with a customer-managed key rather than the AWS-managed aws/sns key,
 * whose policy nobody can change: CloudWatch alarms publish to an encrypted topic only when the
 * key's policy lets cloudwatch.amazonaws.com use it. The key costs $1 a month (plus $0.03 per
 * 10,000 requests, a few a month here).
 */
export class RunNotifications extends Construct {
  public readonly topic: sns.ITopic;
  public readonly alarm: cloudwatch.Alarm;
  /** What the receiver config's `notify` gets: the topic, and the metric for the alarm. */
  public readonly receiverNotify: NonNullable<ReceiverConfigInput['notify']>;

  constructor(scope: Construct, id: string, props: RunNotificationsProps) {
    super(scope, id);
    if (props.topicArn) {
      this.topic = sns.Topic.fromTopicArn(this, 'Topic', props.topicArn);
    } else {
      const key = new kms.Key(this, 'TopicKey', {
        description: 'git-triggler run notifications: encrypts the topic; CloudWatch may use it to publish the failed-runs alarm',
        enableKeyRotation: true,
        // Messages live in the topic only until delivered: nothing is left for the key to open.
        removalPolicy: RemovalPolicy.DESTROY,
        pendingWindow: Duration.days(7),
      });
      key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CloudWatchAlarmsPublish',
          principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
        }),
      );
      const topic = new sns.Topic(this, 'Topic', { displayName: 'git-triggler runs', masterKey: key, enforceSSL: true });
      for (const email of props.emails ?? []) topic.addSubscription(new subscriptions.EmailSubscription(email));
      this.topic = topic;
    }
    const failedRuns = new cloudwatch.Metric({
      namespace: props.metricNamespace,
      metricName: 'FailedRuns',
      statistic: 'Sum',
      period: Duration.minutes(5),
    });
    this.alarm = failedRuns.createAlarm(this, 'FailedRunsAlarm', {
      alarmDescription: 'A git-triggler run failed, timed out or was rolled back (the receiver puts one FailedRuns data point for each)',
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // No data is no failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.topic));
    this.receiverNotify = [
      { format: 'sns', topicArn: this.topic.topicArn, ...(props.on ? { on: props.on } : {}) },
      { format: 'cloudwatch', namespace: props.metricNamespace, on: ['failed', 'timed-out', 'rolled-back'] },
    ];
  }

  /** The host's right to publish to the topic and to put the alarm's metric, nothing more. */
  grantPublish(grantee: iam.IGrantable & Construct): void {
    this.topic.grantPublish(grantee);
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': this.receiverNotify[1]!.namespace! } },
      }),
    );
    Validations.of(grantee).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          "cloudwatch:PutMetricData has no resource type; the grant is held to the receiver's own namespace by the cloudwatch:namespace condition.",
      },
      {
        id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
        reason:
          'Publishing to a topic encrypted with the AWS-managed SNS key needs a data key; this is the grant CDK gives a publisher for that key, on that key only.',
      },
    );
  }
}
