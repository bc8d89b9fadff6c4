import * as path from 'node:path';
import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { SenderRoute as SenderRouteSchema } from '../../lambda/sender-routes';
import { ROLLOUT_STATE_MACHINE_ENV } from '../../protocol/rollout';
import { propProblem, throwPropProblems, type PropProblem } from '../construct-props';
import { bundledVpcFunction, environmentBytes, LONGEST_RESOLVED_URL, MAX_ENVIRONMENT_BYTES } from './bundled-node-function';
import { lastStopQueue } from './last-stop-queue';
import type { TriggerTokens } from './trigger-tokens';

const REPOSITORY_ROOT = path.join(__dirname, '..', '..');

/**
 * One entry of `TRIGGLER_ROUTES`, as the sender reads it (its schema is the sender's). Here the
 * url may be a token (the receiver host's address), resolved at deploy.
 */
export type SenderRoute = Readonly<SenderRouteSchema>;

export interface SenderFunctionProps {
  /** The VPC the sender runs in (the receiver's). */
  readonly vpc: ec2.IVpc;
  /**
   * The subnets of `vpc` the sender's network interfaces go in.
   * @default - the VPC's isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** Where each (repository, branch) is delivered, and with which token and scheme; at least one. */
  readonly routes: SenderRoute[];
  /** The tokens the routes name; the function may read exactly those. */
  readonly tokens: TriggerTokens;
  /**
   * Memory of the sender in MiB.
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * How long one invocation (every delivery of one push event) may run; longer than `deliveryTimeout`.
   * @default Duration.seconds(60)
   */
  readonly timeout?: Duration;
  /**
   * How long one HTTP delivery to the receiver may take.
   * @default Duration.seconds(10)
   */
  readonly deliveryTimeout?: Duration;
  /**
   * How long the sender reuses a token it read from SSM.
   * @default Duration.seconds(60)
   */
  readonly tokenCacheTtl?: Duration;
  /**
   * Lambda's retries of a failed asynchronous invocation, 0 to 2.
   * @default 2
   */
  readonly retryAttempts?: number;
  /**
   * How long Lambda keeps retrying an event before it goes to the failure queue, 1 minute to 6 hours.
   * @default Duration.hours(6)
   */
  readonly maxEventAge?: Duration;
  /**
   * Add the commit message and author (CodeCommit GetCommit); the VPC then needs a CodeCommit endpoint.
   * @default false
   */
  readonly commitDetails?: boolean;
  /**
   * The SNS topic the failure alarm notifies.
   * @default - no action: the alarm shows in CloudWatch
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Retention of the sender's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * On a fleet: the rollout state machine the sender starts for each push instead of delivering
   * to one host; it may start executions of this machine and no other.
   * @default - none: the sender delivers to the routes' URLs
   */
  readonly rolloutStateMachine?: sfn.IStateMachine;
  /**
   * The sender's TypeScript entry.
   * @default lambda/sender.ts
   */
  readonly entry?: string;
}

/** The sender's settings with their defaults filled in, as the checks below need them. */
interface SenderSettings {
  timeout: Duration;
  deliveryTimeout: Duration;
  retryAttempts: number;
  maxEventAge: Duration;
  environment: Record<string, string>;
}

/** Every bad prop of a SenderFunction. */
export function senderFunctionPropProblems(props: SenderFunctionProps, settings: SenderSettings): PropProblem[] {
  const problems: PropProblem[] = [
    ...propProblem(
      'routes',
      props.routes.length === 0 ? 'must hold at least one route (a sender with nothing to deliver is a mistake)' : undefined,
    ),
    ...props.routes.flatMap((route, i) => [
      ...propProblem(
        `routes[${i}].tokenParameter`,
        props.tokens.parameterNames.includes(route.tokenParameter)
          ? undefined
          : `${route.tokenParameter} is not one of the tokens' parameters`,
      ),
      ...propProblem(
        `routes[${i}].url`,
        Token.isUnresolved(route.url) || /^https?:\/\/[^/?#\s]+/.test(route.url) ? undefined : 'must be an http:// or https:// URL',
      ),
    ]),
    ...propProblem(
      'timeout',
      settings.timeout.toSeconds() <= settings.deliveryTimeout.toSeconds() ? 'must be longer than deliveryTimeout' : undefined,
    ),
    ...propProblem(
      'retryAttempts',
      settings.retryAttempts < 0 || settings.retryAttempts > 2
        ? `must be 0 to 2 (Lambda's limit), got ${settings.retryAttempts}`
        : undefined,
    ),
    ...propProblem(
      'maxEventAge',
      settings.maxEventAge.toSeconds() < 60 || settings.maxEventAge.toSeconds() > 21600
        ? "must be 1 minute to 6 hours (Lambda's limit)"
        : undefined,
    ),
  ];
  // The routes' URLs are tokens until deploy: measure them at their longest resolved length.
  const resolvedRoutes = JSON.stringify(
    props.routes.map((route) => ({ ...route, url: Token.isUnresolved(route.url) ? LONGEST_RESOLVED_URL : route.url })),
  );
  const bytes = environmentBytes({ ...settings.environment, TRIGGLER_ROUTES: resolvedRoutes });
  if (bytes > MAX_ENVIRONMENT_BYTES) {
    problems.push({
      prop: 'routes',
      problem: `${props.routes.length} routes make the environment about ${bytes} bytes; Lambda allows ${MAX_ENVIRONMENT_BYTES} (split the triggers over two stacks)`,
    });
  }
  return problems;
}

/**
 * The sender: a Lambda in the VPC that CodeCommit invokes on a push and that delivers signed
 * requests to the receiver. Its asynchronous invocations are retried, and an event that still
 * fails lands in an encrypted SQS queue with an alarm on it: a failed delivery is never lost
 * silently.
 */
export class SenderFunction extends Construct implements ec2.IConnectable {
  public readonly function: lambda.IFunction;
  public readonly role: iam.Role;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly connections: ec2.Connections;
  public readonly failureQueue: sqs.Queue;
  public readonly failureAlarm: cloudwatch.Alarm;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: SenderFunctionProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.seconds(60);
    const deliveryTimeout = props.deliveryTimeout ?? Duration.seconds(10);
    const tokenCacheTtl = props.tokenCacheTtl ?? Duration.seconds(60);
    const retryAttempts = props.retryAttempts ?? 2;
    const maxEventAge = props.maxEventAge ?? Duration.hours(6);
    const environment: Record<string, string> = {
      TRIGGLER_ROUTES: Stack.of(this).toJsonString(props.routes.map((route) => ({ ...route }))),
      TRIGGLER_TIMEOUT_MS: String(deliveryTimeout.toMilliseconds()),
      TRIGGLER_TOKEN_TTL_SECONDS: String(tokenCacheTtl.toSeconds()),
      ...(props.commitDetails ? { TRIGGLER_COMMIT_DETAILS: 'true' } : {}),
      ...(props.rolloutStateMachine ? { [ROLLOUT_STATE_MACHINE_ENV]: props.rolloutStateMachine.stateMachineArn } : {}),
    };
    throwPropProblems(this, senderFunctionPropProblems(props, { timeout, deliveryTimeout, retryAttempts, maxEventAge, environment }));

    this.failureQueue = lastStopQueue(
      this,
      'FailedDeliveries',
      "This queue is the last stop: it is the sender's on-failure destination, watched by an alarm; a dead-letter queue behind it would only hide failures further.",
    );

    const { bundled, securityGroup } = bundledVpcFunction(this, 'Sender', {
      entry: props.entry ?? path.join(REPOSITORY_ROOT, 'lambda', 'sender.ts'),
      description: 'git-triggler sender: CodeCommit pushes become signed deliveries to the receiver',
      timeout,
      memorySize: props.memorySize,
      environment,
      logRetention: props.logRetention,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroupDescription: 'git-triggler sender: reaches only the receiver port and the VPC endpoints',
      whyInVpc: 'The sender runs in the VPC to reach the receiver privately',
      asyncInvoke: { retryAttempts, maxEventAge, onFailure: new destinations.SqsDestination(this.failureQueue) },
    });
    this.securityGroup = securityGroup;
    this.function = bundled.function;
    this.role = bundled.role;
    this.logGroup = bundled.logGroup;
    this.connections = new ec2.Connections({ securityGroups: [this.securityGroup] });

    const tokenParameters = [...new Set(props.routes.map((route) => route.tokenParameter))];
    props.tokens.grantRead(this.role, tokenParameters);
    props.rolloutStateMachine?.grantStartExecution(this.role);
    if (props.commitDetails) {
      const stack = Stack.of(this);
      const repositories = [...new Set(props.routes.map((route) => route.repository))];
      this.role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['codecommit:GetCommit'],
          // Built from names: taking the ARN from a repository resource would make a cycle
          // (the repository's trigger refers to this function).
          resources: repositories.map((name) => stack.formatArn({ service: 'codecommit', resource: name })),
        }),
      );
    }

    this.failureAlarm = new cloudwatch.Alarm(this, 'FailedDeliveriesAlarm', {
      alarmDescription:
        "git-triggler: a push could not be delivered to the receiver after every retry; its event is in the sender's failure queue.",
      metric: this.failureQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) this.failureAlarm.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic));
  }
}
