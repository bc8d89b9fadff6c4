/**
 * The AWS ends of notifications: an SNS topic (e-mail subscribers, or anything else subscribed)
 * and a CloudWatch metric (for an alarm). Their SDK clients are loaded only when a config names
 * them, like the SSM token source: a receiver that notifies no AWS service does not pay for them.
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { SNSClient } from '@aws-sdk/client-sns';
import { describeAwsError, snsSubject } from '../../protocol';

export interface AwsPublishers {
  /** Publishes one message to an SNS topic (its region is the topic's). */
  publish(topicArn: string, subject: string, message: string): Promise<void>;
  /** Puts one data point of `FailedRuns` (count) in `namespace`. */
  putFailedRun(namespace: string): Promise<void>;
}

/** The SDK's own credential and region resolution; the topic ARN names its region. */
export function awsPublishers(): AwsPublishers {
  const sns = new Map<string, SNSClient>();
  let cloudWatch: CloudWatchClient | undefined;
  return {
    async publish(topicArn, subject, message) {
      const { SNSClient: Client, PublishCommand } = require('@aws-sdk/client-sns') as typeof import('@aws-sdk/client-sns');
      const region = topicArn.split(':')[3] || undefined;
      const key = region ?? '';
      let client = sns.get(key);
      if (!client) {
        client = new Client(region ? { region } : {});
        sns.set(key, client);
      }
      // SNS subjects: ASCII, no line breaks, at most 100 characters.
      const input = {
        TopicArn: topicArn,
        Subject: snsSubject(subject, 'triggler run'),
        Message: message,
      };
      await client.send(new PublishCommand(input)).catch((error: unknown) => {
        throw new Error(`SNS refused the message to ${topicArn}: ${describeAwsError(error)}`, { cause: error });
      });
    },
    async putFailedRun(namespace) {
      const { CloudWatchClient: Client, PutMetricDataCommand } =
        require('@aws-sdk/client-cloudwatch') as typeof import('@aws-sdk/client-cloudwatch');
      cloudWatch ??= new Client({});
      await cloudWatch
        .send(
          new PutMetricDataCommand({
            Namespace: namespace,
            MetricData: [{ MetricName: 'FailedRuns', Value: 1, Unit: 'Count', Timestamp: new Date() }],
          }),
        )
        .catch((error: unknown) => {
          throw new Error(`CloudWatch refused the FailedRuns data point in ${namespace}: ${describeAwsError(error)}`, { cause: error });
        });
    },
  };
}
