import * as path from 'node:path';
import { Arn, ArnFormat, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { RolloutNotifyTarget } from '../../lambda/rollout-notifier';
import { propProblem, throwPropProblems } from '../construct-props';
import { BundledNodeFunction, environmentBytes, MAX_ENVIRONMENT_BYTES } from './bundled-node-function';
import { lastStopQueue } from './last-stop-queue';

export interface RolloutNotificationsProps {
  /** The rollout state machine whose finished executions are notified. */
  readonly stateMachine: sfn.IStateMachine;
  /**
   * Who hears of each finished rollout, and how (lambda/rollout-notifier: Standard Webhooks with a
   * signing token in SSM, Slack with its URL in SSM or given, SNS, CloudWatch). A Slack URL given
   * here shows in the template: name an SSM SecureString with `urlParameter` instead.
   */
  readonly targets: readonly RolloutNotifyTarget[];
  /**
   * Grants the notifier `ssm:GetParameter` (and the decryption) on the parameters its targets
   * name: signing tokens and secret URLs (TriggerTokens.grantRead does this for the stack's own).
   * @default - no grant: no target may name a parameter
   */
  readonly grantParameterRead?: (grantee: iam.IGrantable, parameterNames: string[]) => void;
  /**
   * Retention of the notifier's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * A resolved resource as cdk-nag names it in a finding's id: a Ref as `<Id>`, an attribute as
 * `<Id.Attr>`, a join joined, anything else as its JSON.
 */
function nagResourceText(resolved: unknown): string {
  if (typeof resolved === 'string') return resolved;
  const value = resolved as Record<string, unknown>;
  if (typeof value.Ref === 'string') return `<${value.Ref}>`;
  const attribute = value['Fn::GetAtt'];
  if (Array.isArray(attribute)) return `<${attribute.join('.')}>`;
  const join = value['Fn::Join'];
  if (Array.isArray(join) && Array.isArray(join[1])) return (join[1] as unknown[]).map(nagResourceText).join(String(join[0]));
  return JSON.stringify(resolved);
}

/** The notifier's entry, beside the other handlers. */
const ENTRY = path.join(__dirname, '..', '..', 'lambda', 'rollout-notifier.ts');

/**
 * One `rollout.finished` notification per finished rollout: an EventBridge rule on the rollout
 * state machine's execution status changes (succeeded, failed, timed out, aborted) invokes a small
 * Lambda that tells each target, naming each host's outcome. The notifier retries each target on
 * its own for two minutes, so Lambda retries no invocation (that would resend to the targets that
 * had it); an invocation that fails (a target still down) lands in an encrypted queue: a
 * notification is never lost silently. The function may read only the executions of this state machine, publish only to the
 * targets' topics and put metrics only in their namespaces.
 */
export class RolloutNotifications extends Construct {
  public readonly rule: events.Rule;
  public readonly notifier: BundledNodeFunction;
  /** Where an event lands when every attempt to notify failed. */
  public readonly failureQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: RolloutNotificationsProps) {
    super(scope, id);
    const settings = { targets: props.targets };
    const environment = { TRIGGLER_ROLLOUT_NOTIFY: Stack.of(this).toJsonString(settings) };
    const parameters = [
      ...new Set(props.targets.flatMap((t) => [t.tokenParameter, t.urlParameter].filter((p): p is string => p !== undefined))),
    ];
    throwPropProblems(this, [
      ...propProblem('targets', props.targets.length === 0 ? 'must hold at least one target' : undefined),
      ...propProblem(
        'grantParameterRead',
        parameters.length > 0 && !props.grantParameterRead ? `is needed: targets name the parameters ${parameters.join(', ')}` : undefined,
      ),
      ...propProblem(
        'targets',
        environmentBytes({ TRIGGLER_ROLLOUT_NOTIFY: JSON.stringify(settings) }) > MAX_ENVIRONMENT_BYTES
          ? `make the environment larger than Lambda's ${MAX_ENVIRONMENT_BYTES} bytes`
          : undefined,
      ),
    ]);

    this.failureQueue = lastStopQueue(
      this,
      'FailedNotifications',
      "This queue is the last stop: the rollout notifier's on-failure destination; a dead-letter queue behind it would only hide failures further.",
    );
    this.notifier = new BundledNodeFunction(this, 'Notifier', {
      entry: ENTRY,
      description: 'git-triggler rollout.finished notifications',
      // The notifier's retrySeconds (120 by default) and one last attempt's timeout fit in it.
      timeout: Duration.minutes(3),
      environment,
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
      asyncInvoke: { retryAttempts: 0, maxEventAge: Duration.hours(1), onFailure: new destinations.SqsDestination(this.failureQueue) },
    });
    const role = this.notifier.role;

    // The event carries the summary unless it is too large; then the notifier reads the execution.
    const stateMachineName = Arn.split(props.stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName;
    const executions = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['states:DescribeExecution'], resources: [executions] }));
    const topics = [...new Set(props.targets.flatMap((t) => (t.topicArn ? [t.topicArn] : [])))];
    if (topics.length > 0) role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: topics }));
    const namespaces = [...new Set(props.targets.flatMap((t) => (t.namespace ? [t.namespace] : [])))];
    if (namespaces.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['cloudwatch:PutMetricData'],
          resources: ['*'],
          conditions: { StringEquals: { 'cloudwatch:namespace': namespaces } },
        }),
      );
    }
    if (parameters.length > 0) props.grantParameterRead!(role, parameters);
    Validations.of(role).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::${nagResourceText(Stack.of(this).resolve(executions))}]`,
        reason: 'states:DescribeExecution on the executions of the one rollout state machine, whose names are not known before they start.',
      },
      ...(namespaces.length > 0
        ? [
            {
              id: 'AwsSolutions-IAM5[Resource::*]',
              reason:
                "cloudwatch:PutMetricData has no resource type; the grant is held to the targets' namespaces by the cloudwatch:namespace condition.",
            },
          ]
        : []),
    );

    this.rule = new events.Rule(this, 'RolloutFinished', {
      description: 'A fleet rollout (the rollout state machine) finished: notify its outcome',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [props.stateMachine.stateMachineArn], status: ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'] },
      },
      targets: [
        new targets.LambdaFunction(this.notifier.function, {
          retryAttempts: 2,
          maxEventAge: Duration.hours(1),
          deadLetterQueue: this.failureQueue,
        }),
      ],
    });
  }
}
