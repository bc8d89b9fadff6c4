/**
 * The queue where an asynchronous Lambda's events land once it has given up on them (its
 * on-failure destination): encrypted, TLS only, kept 14 days, and acknowledged for cdk-nag's
 * dead-letter rule with `reason`, since a queue behind it would only hide failures further.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

export function lastStopQueue(scope: Construct, id: string, reason: string): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason });
  return queue;
}
