/**
 * The fleet's rollout engine: a Step Functions Standard state machine that drives Run Command
 * through its SDK integrations (no Lambda in the loop), and the DynamoDB table that keeps one
 * rollout per trigger at a time. docs/fleet.md walks through the phases and the failure policy.
 *
 * The definition is JSONPath Amazon States Language, built to run unchanged both on AWS and in
 * the local engine the tests use (aws-local-stepfunctions): no JSONata, no variables, and no
 * JSONPath that may select nothing (the local engine refuses an empty selection where AWS gives
 * `[]`). Lists that grow across steps (the fleet's snapshot, the hosts already switched, the
 * failed-host count) live in the trigger's table item instead of the state, since JSONPath cannot
 * append to an array: the item is the rollout's progress, which `triggler fleet status` reads too.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ROLLOUT_HOLD_STATE } from '../../protocol/rollout';

/** The `rollout` section of the stack config, resolved to its defaults. */
export interface RolloutSettings {
  /** Hosts switched first, alone; then `bakeSeconds` watching `alarms`. */
  readonly canary: number;
  /** A count of hosts, or a percentage of the fleet like "25%". */
  readonly batchSize: number | string;
  /** Failed hosts tolerated (summed over the batches) before the rollout stops and rolls back. */
  readonly maxFailedHosts: number;
  readonly bakeSeconds: number;
  /** CloudWatch alarm names: any in ALARM during the bake or after a batch stops the rollout. */
  readonly alarms: readonly string[];
  /** Pause after the canary until `triggler fleet promote`. */
  readonly hold: boolean;
}

export interface FleetRolloutProps {
  /** The SSM Command document that runs `triggler fleet-step` (lib/constructs: the fleet's document). */
  readonly documentName: string;
  /** The tag every fleet instance carries: the rollout snapshots the instances by it. */
  readonly fleetTag: { readonly key: string; readonly value: string };
  readonly rollout: RolloutSettings;
  /** Where Run Command writes each invocation's whole output (CloudWatchOutputConfig). */
  readonly commandLogGroupName: string;
  /** Prefix of the fleet's commit parameters (protocol/rollout: fleetCommitParameterName). */
  readonly commitParameterPrefix: string;
  /** Longest one host step may take, in seconds (the document's executionTimeout). */
  readonly stepTimeoutSeconds: number;
}

/** SendCommand takes at most 50 instance ids; a larger step is sent as several commands. */
export const INSTANCE_IDS_PER_COMMAND = 50;
/** Commands of one step in flight at once (SendCommand and ListCommands are throttled per account). */
const COMMANDS_IN_FLIGHT = 10;
/** Seconds between two looks at a command that has run a while, at the lock, and between two alarm checks in the bake. */
export const POLL_SECONDS = 5;
export const LOCK_POLL_SECONDS = 10;
export const BAKE_CHECK_SECONDS = 15;
/**
 * Seconds before each look at a running command: a step that takes a second is seen after one,
 * not five, and a long one is looked at every POLL_SECONDS after the first few. Whole seconds
 * (a Wait's SecondsPath takes an integer), growing, ending at POLL_SECONDS.
 */
export const STEP_POLL_SCHEDULE = [1, 2, 3, POLL_SECONDS] as const;

/**
 * The schedule as the state machine follows it: the wait after a wait of `i` seconds is entry `i`
 * (States.ArrayGetItem), so no count of looks is kept and the last wait repeats on its own.
 */
export function nextPollWaits(schedule: readonly number[] = STEP_POLL_SCHEDULE): number[] {
  const invalid = (seconds: number, i: number) => !Number.isInteger(seconds) || seconds < 1 || (i > 0 && seconds <= schedule[i - 1]!);
  if (schedule.length === 0 || schedule.some(invalid))
    throw new Error(`a poll schedule is whole seconds ≥ 1, each longer than the one before: [${schedule.join(', ')}]`);
  const last = schedule[schedule.length - 1]!;
  return Array.from({ length: last + 1 }, (_, waited) => schedule.find((seconds) => seconds > waited) ?? last);
}

/** How long a held rollout waits for `triggler fleet promote` before it rolls the canary back. */
export const HOLD_TIMEOUT = Duration.days(7);

/**
 * State names the local engine and the docs refer to: the Wait states whose durations a test
 * shortens, and the hold (protocol/rollout: ROLLOUT_HOLD_STATE).
 */
export const ROLLOUT_WAIT_STATES = {
  lock: 'Wait for the running rollout',
  bake: 'Bake',
  poll: (step: HostStep) => `Wait for ${step}`,
} as const;

type HostStep = 'prepare' | 'switch' | 'rollback';

/** The batch size for a rollout: a fixed count, or a fraction a/b of the fleet (from "NN%"). */
type BatchSize = { count: number } | { numerator: number; denominator: number };

function batchSize(value: number | string): BatchSize {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1) throw new Error(`rollout.batchSize must be a whole number of hosts ≥ 1, not ${value}`);
    return { count: value };
  }
  const percent = /^(\d{1,3})%$/.exec(value);
  const share = percent ? Number(percent[1]) : NaN;
  if (!(share >= 1 && share <= 100)) throw new Error(`rollout.batchSize must be a count or a percentage from 1% to 100%, not "${value}"`);
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const divisor = gcd(share, 100);
  return { numerator: share / divisor, denominator: 100 / divisor };
}

function validate(props: FleetRolloutProps): BatchSize {
  const { rollout } = props;
  if (!Number.isInteger(rollout.canary) || rollout.canary < 1)
    throw new Error(`rollout.canary must be a whole number ≥ 1, not ${rollout.canary}`);
  if (!Number.isInteger(rollout.maxFailedHosts) || rollout.maxFailedHosts < 0)
    throw new Error(`rollout.maxFailedHosts must be a whole number ≥ 0, not ${rollout.maxFailedHosts}`);
  if (!Number.isInteger(rollout.bakeSeconds) || rollout.bakeSeconds < 0)
    throw new Error(`rollout.bakeSeconds must be a whole number ≥ 0, not ${rollout.bakeSeconds}`);
  if (rollout.alarms.length > 100) throw new Error('rollout.alarms names at most 100 alarms (DescribeAlarms takes 100 names)');
  if (!Number.isInteger(props.stepTimeoutSeconds) || props.stepTimeoutSeconds < 30 || props.stepTimeoutSeconds > 2_592_000)
    throw new Error(`stepTimeoutSeconds must be 30 to 2592000 (SendCommand's TimeoutSeconds), not ${props.stepTimeoutSeconds}`);
  // States.Format treats these as its own syntax; the prefix is spliced into a format string.
  if (/[{}'\\]/.test(props.commitParameterPrefix))
    throw new Error(`commitParameterPrefix may not hold { } ' or \\: ${props.commitParameterPrefix}`);
  return batchSize(rollout.batchSize);
}

export class FleetRollout extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  /** One item per trigger: the running rollout's lock and the newest push waiting for it. */
  public readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string, props: FleetRolloutProps) {
    super(scope, id);
    const size = validate(props);
    this.table = new dynamodb.TableV2(this, 'Rollouts', {
      partitionKey: { name: 'trigger', type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const definition = new RolloutDefinition(this, props, size, this.table);
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition.start),
    });
    this.acknowledgeFindings(props);
    // Its own executions only, for an owner stopped by hand. A policy apart from the role's default
    // one: the state machine waits for its default policy, and this one names the state machine.
    const describeOwn = new iam.Policy(this, 'DescribeOwnExecutions', {
      roles: [this.stateMachine.role],
      statements: [
        new iam.PolicyStatement({
          actions: ['states:DescribeExecution'],
          resources: [
            Stack.of(this).formatArn({
              service: 'states',
              resource: 'execution',
              resourceName: `${this.stateMachine.stateMachineName}:*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          ],
        }),
      ],
    });
    const stack = Stack.of(this);
    const machineName = `<${stack.getLogicalId(this.stateMachine.node.defaultChild as sfn.CfnStateMachine)}.Name>`;
    Validations.of(describeOwn).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${machineName}:*]`,
      reason:
        "DescribeExecution of this state machine's own executions (their names are the senders'), to find a lock holder stopped by hand.",
    });
  }

  /** cdk-nag's findings on the engine, each with why it stands. */
  private acknowledgeFindings(props: FleetRolloutProps): void {
    Validations.of(this.stateMachine).acknowledge(
      {
        id: 'AwsSolutions-SF1',
        reason:
          "A Standard execution keeps its whole history (every state's input and output) for 90 days, and its output or failure cause is the rollout summary; logging ALL events to CloudWatch Logs would pay again for the same record.",
      },
      {
        id: 'AwsSolutions-SF2',
        reason:
          'The rollout calls AWS APIs only (no Lambda, no HTTP): its execution history shows each call and its time; X-Ray would add nothing but cost.',
      },
    );
    Validations.of(this.stateMachine.role).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'DescribeInstanceInformation, ListCommands, ListCommandInvocations and CancelCommand take no resource ARN; none of them reads data beyond command and instance metadata.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        reason: `SendCommand on instances, conditioned on the fleet tag (ssm:resourceTag/${props.fleetTag.key}): the fleet's instances change with the Auto Scaling group.`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter${props.commitParameterPrefix}/*]`,
        reason: 'The fleet commit parameters, one per trigger, all under the fleet commit prefix.',
      },
    );
  }
}

/** The execution input's fields (RolloutInput), carried into the state and the summary. */
const PUSH = {
  'trigger.$': '$.trigger',
  'repository.$': '$.repository',
  'branch.$': '$.branch',
  'commit.$': '$.commit',
  'deliveryId.$': '$.deliveryId',
} as const;

/** A call refused for its rate is tried again, backing off; any other error is the rollout's to handle. */
function throttled(service: string, ...errors: string[]): sfn.RetryProps {
  return {
    errors: errors.map((error) => `${service}.${error}`),
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 5,
    jitterStrategy: sfn.JitterType.FULL,
  };
}

/** A DynamoDB string attribute from a JSONPath. */
const str = (path: string) => ({ 'S.$': path });

/**
 * Builds the states. Each method returns the first state of a phase; names are the ones the
 * console, the execution history and docs/fleet.md show.
 */
class RolloutDefinition {
  readonly start: sfn.IChainable;
  private readonly stack: Stack;

  constructor(
    private readonly scope: Construct,
    private readonly props: FleetRolloutProps,
    private readonly size: BatchSize,
    private readonly table: dynamodb.TableV2,
  ) {
    this.stack = Stack.of(scope);
    const release = this.lockRelease();
    const rollout = this.rollout();
    rollout.addCatch(this.broken(release), { errors: ['States.ALL'], resultPath: '$.error' });
    const finish = new sfn.Choice(scope, 'How did it end?')
      .when(sfn.Condition.stringEquals('$.summary.outcome', 'succeeded'), new sfn.Succeed(scope, 'Rolled out', { outputPath: '$.summary' }))
      .otherwise(
        new sfn.Pass(scope, 'Say why', { parameters: { 'cause.$': 'States.JsonToString($.summary)' }, resultPath: '$.failure' }).next(
          new sfn.Fail(scope, 'Not rolled out', { errorPath: '$.summary.outcome', causePath: '$.failure.cause' }),
        ),
      );
    release.next(finish);
    const afterRollout = new sfn.Pass(scope, 'Keep the summary', {
      parameters: { 'summary.$': '$[0]', self: { 'name.$': '$$.Execution.Name', 'arn.$': '$$.Execution.Id' } },
    });
    afterRollout.next(release);
    rollout.next(afterRollout);
    this.start = new sfn.Pass(scope, 'Read the push', {
      parameters: {
        ...PUSH,
        // The input whole, for what only some executions carry (`instances`).
        'input.$': '$',
        self: { 'name.$': '$$.Execution.Name', 'arn.$': '$$.Execution.Id' },
      },
    }).next(this.lock(rollout));
  }

  /** A Pass state that writes `parameters` at `resultPath`. */
  private keep(id: string, resultPath: string, parameters: Record<string, unknown>): sfn.Pass {
    return new sfn.Pass(this.scope, id, { parameters, resultPath });
  }

  private key() {
    return { trigger: str('$.trigger') };
  }

  private dynamo(
    id: string,
    action: 'updateItem' | 'getItem',
    parameters: Record<string, unknown>,
    options: Partial<tasks.CallAwsServiceProps> = {},
  ) {
    const task = new tasks.CallAwsService(this.scope, id, {
      service: 'dynamodb',
      action,
      iamResources: [this.table.tableArn],
      parameters: { TableName: this.table.tableName, ...parameters },
      ...options,
    });
    // A callback task is not retried: a second one would wait for a second answer.
    if (options.integrationPattern === undefined)
      task.addRetry(throttled('DynamoDb', 'ThrottlingException', 'ProvisionedThroughputExceededException', 'RequestLimitExceeded'));
    return task;
  }

  /** The item, read consistently, at `resultPath`.item. */
  private readItem(id: string, resultPath: string) {
    return this.dynamo(id, 'getItem', { Key: this.key(), ConsistentRead: true }, { resultSelector: { 'item.$': '$.Item' }, resultPath });
  }

  /**
   * Coalescing: every execution first names itself `pending` (the newest push waiting), then takes
   * `owner` only while nobody holds it and it is still the newest. One that finds a newer push
   * pending ends superseded; one that finds the owner no longer running takes the lock over.
   */
  private lock(rollout: sfn.IChainable): sfn.IChainable {
    const s = this.scope;
    const me = { ':me': str('$.self.name'), ':arn': str('$.self.arn') };
    const conditionalCheckFailed = ['DynamoDb.ConditionalCheckFailedException'];
    const queue = this.dynamo(
      'Queue behind the running rollout',
      'updateItem',
      { Key: this.key(), UpdateExpression: 'SET pending = :me, pendingArn = :arn', ExpressionAttributeValues: me },
      { resultPath: sfn.JsonPath.DISCARD },
    );
    // A new owner starts from a clean item: the last rollout's progress goes with the lock.
    const take = this.dynamo(
      'Take the lock',
      'updateItem',
      {
        Key: this.key(),
        UpdateExpression:
          'SET #owner = :me, ownerArn = :arn REMOVE pending, pendingArn, instances, switched, failedHosts, stopReason, holdToken',
        ConditionExpression: 'attribute_not_exists(#owner) AND pending = :me',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: me,
      },
      { resultPath: sfn.JsonPath.DISCARD },
    );
    const read = this.readItem('Read the lock', '$.lock');
    const wait = new sfn.Wait(s, ROLLOUT_WAIT_STATES.lock, { time: sfn.WaitTime.duration(Duration.seconds(LOCK_POLL_SECONDS)) });
    const superseded = this.keep('Superseded', '$.summary', {
      ...PUSH,
      outcome: 'superseded',
      reason: 'a newer push to the same branch took its place before it began',
      instances: [],
      hosts: [],
    }).next(new sfn.Succeed(s, 'Leave it to the newer push', { outputPath: '$.summary' }));
    // A CustomState, not CallAwsService: its grant (FleetRollout: DescribeOwnExecutions) names the
    // state machine, which the role's default policy may not.
    const describeOwner = new sfn.CustomState(s, 'Is the owner still running?', {
      stateJson: {
        Type: 'Task',
        Resource: `arn:${this.stack.partition}:states:::aws-sdk:sfn:describeExecution`,
        Parameters: { 'ExecutionArn.$': '$.lock.item.ownerArn.S' },
        ResultSelector: { 'status.$': '$.Status' },
        ResultPath: '$.ownerState',
      },
    });
    const takeOver = this.dynamo(
      'Take over the lock',
      'updateItem',
      {
        Key: this.key(),
        UpdateExpression:
          'SET #owner = :me, ownerArn = :arn REMOVE pending, pendingArn, instances, switched, failedHosts, stopReason, holdToken',
        ConditionExpression: '#owner = :dead AND pending = :me',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ...me, ':dead': str('$.lock.item.owner.S') },
      },
      { resultPath: sfn.JsonPath.DISCARD },
    );
    const goneOwner = new sfn.Pass(s, 'The owner is gone', {
      result: sfn.Result.fromObject({ status: 'GONE' }),
      resultPath: '$.ownerState',
    });
    describeOwner.addCatch(goneOwner, { errors: ['Sfn.ExecutionDoesNotExistException'], resultPath: sfn.JsonPath.DISCARD });
    take.addCatch(read, { errors: conditionalCheckFailed, resultPath: sfn.JsonPath.DISCARD });
    takeOver.addCatch(wait, { errors: conditionalCheckFailed, resultPath: sfn.JsonPath.DISCARD });
    const ownerRunning = new sfn.Choice(s, 'Still running?')
      .when(sfn.Condition.stringEquals('$.ownerState.status', 'RUNNING'), wait)
      .otherwise(takeOver);
    describeOwner.next(ownerRunning);
    goneOwner.next(takeOver);
    read.next(
      new sfn.Choice(s, 'Still the newest push?')
        .when(sfn.Condition.not(sfn.Condition.isPresent('$.lock.item.pending')), superseded)
        .when(sfn.Condition.not(sfn.Condition.stringEqualsJsonPath('$.lock.item.pending.S', '$.self.name')), superseded)
        .when(sfn.Condition.not(sfn.Condition.isPresent('$.lock.item.owner')), take)
        .otherwise(describeOwner),
    );
    wait.next(take);
    take.next(rollout);
    takeOver.next(rollout);
    return queue.next(take);
  }

  private lockRelease(): sfn.TaskStateBase {
    const release = this.dynamo(
      'Release the lock',
      'updateItem',
      {
        // The key comes from the summary: the state holds nothing else after the rollout.
        Key: { trigger: str('$.summary.trigger') },
        UpdateExpression: 'REMOVE #owner, ownerArn',
        ConditionExpression: '#owner = :me',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':me': str('$.self.name') },
      },
      { resultPath: sfn.JsonPath.DISCARD },
    );
    // Taken over while this one looked dead: the lock is someone else's now.
    const released = new sfn.Pass(this.scope, 'Lock already taken over');
    release.addCatch(released, { errors: ['DynamoDb.ConditionalCheckFailedException'], resultPath: sfn.JsonPath.DISCARD });
    return release;
  }

  /** A task failed where nothing expected it (throttling past the retries, a missing permission). */
  private broken(release: sfn.IChainable): sfn.IChainable {
    return new sfn.Pass(this.scope, 'Rollout broke', {
      parameters: {
        summary: {
          ...PUSH,
          outcome: 'failed',
          'reason.$': "States.Format('the rollout stopped on an error: {}: {}', $.error.Error, $.error.Cause)",
          instances: [],
          hosts: [],
        },
        'self.$': '$.self',
      },
    }).next(release);
  }

  /** The rollout proper, in a Parallel so that any error lands in one Catch that still releases the lock. */
  private rollout(): sfn.Parallel {
    const s = this.scope;
    const parallel = new sfn.Parallel(s, 'Roll out');
    const previous = this.ssm('Read the fleet commit', 'getParameter', this.parameterArn(), {
      parameters: { 'Name.$': this.parameterName() },
      resultSelector: { 'commit.$': '$.Parameter.Value' },
      resultPath: '$.previous',
    });
    const noPrevious = new sfn.Pass(s, 'No fleet commit yet', { result: sfn.Result.fromObject({ commit: '' }), resultPath: '$.previous' });
    previous.addCatch(noPrevious, { errors: ['Ssm.ParameterNotFoundException'], resultPath: sfn.JsonPath.DISCARD });
    const snapshot = this.snapshot();
    previous.next(snapshot.start);
    noPrevious.next(snapshot.start);
    snapshot.end.next(this.plan()).next(this.prepare());
    parallel.branch(previous);
    return parallel;
  }

  private ssm(id: string, action: string, resources: string[], options: Partial<tasks.CallAwsServiceProps>) {
    return new tasks.CallAwsService(this.scope, id, { service: 'ssm', action, iamResources: resources, ...options }).addRetry(
      throttled('Ssm', 'ThrottlingException'),
    );
  }

  private parameterName(): string {
    return `States.Format('${this.props.commitParameterPrefix}/{}/{}/commit', $.repository, $.branch)`;
  }

  private parameterArn(): string[] {
    const prefix = this.props.commitParameterPrefix.replace(/^\//, '');
    return [
      this.stack.formatArn({
        service: 'ssm',
        resource: 'parameter',
        resourceName: `${prefix}/*`,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
    ];
  }

  /**
   * The fleet as it is now: instances with the fleet tag whose SSM agent is online, or of those
   * only the ones the input's `instances` names (`triggler fleet rerun --failed-only`). Pages of
   * 50 are kept in the item's `instances` set, read back once as the snapshot every later step uses.
   */
  private snapshot(): { start: sfn.IChainable; end: sfn.INextable & sfn.IChainable } {
    const s = this.scope;
    const fleetFilters = [
      { Key: `tag:${this.props.fleetTag.key}`, Values: [this.props.fleetTag.value] },
      { Key: 'PingStatus', Values: ['Online'] },
    ];
    const wholeFleet = new sfn.Pass(s, 'Look at the whole fleet', {
      parameters: { filters: fleetFilters },
      resultPath: '$.lookAt',
    });
    const askedHosts = new sfn.Pass(s, 'Look at the hosts asked for', {
      parameters: { filters: [...fleetFilters, { Key: 'InstanceIds', 'Values.$': '$.input.instances' }] },
      resultPath: '$.lookAt',
    });
    const which = new sfn.Choice(s, 'Only some hosts?')
      .when(sfn.Condition.isPresent('$.input.instances[0]'), askedHosts)
      .otherwise(wholeFleet);
    const first = this.ssm('Snapshot the fleet', 'describeInstanceInformation', ['*'], {
      parameters: { 'Filters.$': '$.lookAt.filters', MaxResults: 50 },
      resultPath: '$.page',
    });
    wholeFleet.next(first);
    askedHosts.next(first);
    const next = this.ssm('Snapshot the next page', 'describeInstanceInformation', ['*'], {
      parameters: { 'Filters.$': '$.lookAt.filters', MaxResults: 50, 'NextToken.$': '$.page.NextToken' },
      resultPath: '$.page',
    });
    const keep = this.dynamo(
      "Keep the page's instances",
      'updateItem',
      {
        Key: this.key(),
        UpdateExpression: 'ADD instances :ids',
        ExpressionAttributeValues: { ':ids': { 'SS.$': '$.page.InstanceInformationList[*].InstanceId' } },
      },
      { resultPath: sfn.JsonPath.DISCARD },
    );
    const read = this.readItem('Read the snapshot', '$.snapshot');
    const morePages = new sfn.Choice(s, 'More pages?').when(sfn.Condition.isPresent('$.page.NextToken'), next).otherwise(read);
    const anyOnPage = new sfn.Choice(s, 'Any instances on the page?')
      .when(sfn.Condition.isPresent('$.page.InstanceInformationList[0]'), keep)
      .otherwise(morePages);
    keep.next(morePages);
    first.next(anyOnPage);
    next.next(anyOnPage);
    const none = this.summary('No instances', 'failed', {
      'reason.$': `States.Format('no instance with the tag ${this.props.fleetTag.key}={} has its SSM agent online', '${this.props.fleetTag.value}')`,
      instances: [],
      hosts: [],
    });
    const ids = this.keep('Take the snapshot', '$.fleet', {
      'ids.$': '$.snapshot.item.instances.SS',
      'count.$': 'States.ArrayLength($.snapshot.item.instances.SS)',
    });
    read.next(new sfn.Choice(s, 'Any instances?').when(sfn.Condition.isPresent('$.snapshot.item.instances'), ids).otherwise(none));
    return { start: which, end: ids };
  }

  /** The branch's summary (RolloutSummary) at `$.summary`, then the end of the rollout branch. */
  private summary(id: string, outcome: string, fields: Record<string, unknown>): sfn.IChainable {
    return new sfn.Pass(this.scope, id, {
      parameters: {
        ...PUSH,
        outcome,
        ...fields,
      },
    });
  }

  /**
   * The batches after the canary: `$.plan.canary` (the first `canary` ids), `$.plan.batches`
   * (the rest, in batches of the batch size), `$.plan.indexes` (0 for the canary, then one per batch).
   */
  private plan(): sfn.IChainable {
    const s = this.scope;
    const { canary } = this.props.rollout;
    const first = this.keep('Pick the canary', '$.plan', { 'canary.$': `$.fleet.ids[0:${canary}]` });
    const sizeChain = this.batchSizeStates();
    const split = this.keep('Split the rest into batches', '$.plan', {
      'canary.$': '$.plan.canary',
      'batches.$': `States.ArrayPartition($.fleet.rest, $.sizing.size)`,
    });
    const rest = this.keep('Take the rest', '$.fleet', {
      'ids.$': '$.fleet.ids',
      'count.$': '$.fleet.count',
      'rest.$': `$.fleet.ids[${canary}:]`,
    });
    const noRest = this.keep('Only the canary', '$.plan', { 'canary.$': '$.plan.canary', batches: [] });
    const indexes = this.keep('Number the batches', '$.plan', {
      'canary.$': '$.plan.canary',
      'batches.$': '$.plan.batches',
      'indexes.$': 'States.ArrayRange(0, States.ArrayLength($.plan.batches), 1)',
    });
    rest.next(sizeChain.start);
    sizeChain.end.next(split);
    split.next(indexes);
    noRest.next(indexes);
    first.next(
      new sfn.Choice(s, 'More than the canary?').when(sfn.Condition.numberGreaterThan('$.fleet.count', canary), rest).otherwise(noRest),
    );
    return sfn.Chain.custom(first, [indexes], indexes);
  }

  /**
   * `$.sizing.size`: the batch size in hosts. A percentage p/q of n hosts is ceil(n·p/q), computed
   * with the only arithmetic States has: n·p by doubling and adding, and the division as the
   * length of ArrayRange(0, n·p + q − 1, q) less one.
   */
  private batchSizeStates(): { start: sfn.INextable & sfn.IChainable; end: sfn.INextable & sfn.IChainable } {
    const s = this.scope;
    if ('count' in this.size) {
      const fixed = new sfn.Pass(s, 'Size the batches', {
        result: sfn.Result.fromObject({ size: this.size.count }),
        resultPath: '$.sizing',
      });
      return { start: fixed, end: fixed };
    }
    const { numerator, denominator } = this.size;
    if (denominator === 1) {
      // 100%: one batch of the whole fleet (ArrayRange stops at 1,000 items, a fleet need not).
      const whole = this.keep('Size the batches', '$.sizing', { 'size.$': '$.fleet.count' });
      return { start: whole, end: whole };
    }
    const bits = numerator.toString(2).split('').reverse();
    const first = this.keep('Size the batches', '$.sizing', { 'd0.$': '$.fleet.count' });
    let last: sfn.Pass = first;
    for (let bit = 1; bit < bits.length; bit += 1) {
      const keep = Object.fromEntries(Array.from({ length: bit }, (_, i) => [`d${i}.$`, `$.sizing.d${i}`]));
      const next = this.keep(`Double the fleet ×${2 ** bit}`, '$.sizing', {
        ...keep,
        [`d${bit}.$`]: `States.MathAdd($.sizing.d${bit - 1}, $.sizing.d${bit - 1})`,
      });
      last.next(next);
      last = next;
    }
    const terms = bits.flatMap((bit, i) => (bit === '1' ? [`$.sizing.d${i}`] : []));
    const product = terms.slice(1).reduce((sum, term) => `States.MathAdd(${sum}, ${term})`, terms[0]!);
    const scaled = this.keep('Scale the fleet by the share', '$.sizing', { 'top.$': `States.MathAdd(${product}, ${denominator - 1})` });
    const divided = this.keep('Divide by the whole', '$.sizing', {
      'size.$': `States.MathAdd(States.ArrayLength(States.ArrayRange(0, $.sizing.top, ${denominator})), -1)`,
    });
    last.next(scaled);
    scaled.next(divided);
    return { start: first, end: divided };
  }

  /** Prepare on every host (MaxErrors 0): any failure ends the rollout with nothing switched. */
  private prepare(): sfn.IChainable {
    const s = this.scope;
    const step = this.hostStep('prepare', { ids: '$.fleet.ids', commit: '$.commit', resultPath: '$.prepared' });
    const verdict = this.keep('Tally the prepare', '$.preparedTally', {
      'statuses.$': 'States.ArrayUnique($.prepared.statuses)',
      'count.$': 'States.ArrayLength($.prepared.records)',
    });
    const failed = this.summary('Prepare failed', 'failed', {
      'reason.$':
        "States.Format('prepare did not succeed on every host ({} of {} answered, statuses {}): nothing was switched', $.preparedTally.count, $.fleet.count, States.JsonToString($.preparedTally.statuses))",
      'instances.$': '$.fleet.ids',
      'hosts.$': '$.prepared.records',
    });
    const everywhere = new sfn.Choice(s, 'Prepared everywhere?')
      .when(
        sfn.Condition.and(
          sfn.Condition.numberEqualsJsonPath('$.preparedTally.count', '$.fleet.count'),
          sfn.Condition.numberEquals('$.preparedTally.statusCount', 1),
          sfn.Condition.stringEquals('$.preparedTally.first', 'Success'),
        ),
        this.switchBatches(),
      )
      .otherwise(failed);
    const counted = this.keep('Count the statuses', '$.preparedTally', {
      'count.$': '$.preparedTally.count',
      'statuses.$': '$.preparedTally.statuses',
      'statusCount.$': 'States.ArrayLength($.preparedTally.statuses)',
      'first.$': 'States.ArrayGetItem($.preparedTally.statuses, 0)',
    });
    return sfn.Chain.start(step).next(verdict).next(counted).next(everywhere);
  }

  /**
   * The canary, then the batches, one at a time (a Map with MaxConcurrency 1 over the batch
   * indexes). Each batch first reads the item: once a batch stopped the rollout (too many failed
   * hosts, an alarm, no promotion), the rest only pass through.
   */
  private switchBatches(): sfn.IChainable {
    const s = this.scope;
    const { maxFailedHosts } = this.props.rollout;
    const batches = new sfn.Map(s, 'Switch batch by batch', {
      itemsPath: '$.plan.indexes',
      maxConcurrency: 1,
      itemSelector: {
        'index.$': '$$.Map.Item.Value',
        'canary.$': '$.plan.canary',
        'batches.$': '$.plan.batches',
        'trigger.$': '$.trigger',
        'repository.$': '$.repository',
        'branch.$': '$.branch',
        'commit.$': '$.commit',
      },
      resultSelector: { 'records.$': '$[*].records[*]' },
      resultPath: '$.switched',
    });
    const progress = this.readItem("Read the rollout's progress", '$.progress');
    const skip = new sfn.Pass(s, 'Skip the batch', { parameters: { records: [] } });
    const canary = new sfn.Pass(s, 'Take the canary', { parameters: { 'ids.$': '$.canary', limit: 0 }, resultPath: '$.batch' });
    const batch = this.keep('Take the batch', '$.batch', {
      'ids.$': 'States.ArrayGetItem($.batches, States.MathAdd($.index, -1))',
      limit: maxFailedHosts,
    });
    const failedSoFar = this.keep('Count the failed hosts so far', '$.batch', {
      'ids.$': '$.batch.ids',
      'limit.$': '$.batch.limit',
      'failed.$': 'States.StringToJson($.progress.item.failedHosts.N)',
    });
    const noneFailed = this.keep('No failed hosts so far', '$.batch', { 'ids.$': '$.batch.ids', 'limit.$': '$.batch.limit', failed: 0 });
    const step = this.hostStep('switch', {
      ids: '$.batch.ids',
      commit: '$.commit',
      failedBefore: '$.batch.failed',
      limit: '$.batch.limit',
      resultPath: '$.switchedBatch',
    });
    const anyFailed = new sfn.Choice(s, 'Any failed hosts so far?')
      .when(sfn.Condition.isPresent('$.progress.item.failedHosts'), failedSoFar)
      .otherwise(noneFailed);
    canary.next(anyFailed);
    batch.next(anyFailed);
    failedSoFar.next(step);
    noneFailed.next(step);
    const checked = this.readItem('Read the failed hosts', '$.after');
    const tooMany = this.stop(
      'Stop: too many failed hosts',
      "States.Format('{} hosts failed to switch; the rollout allows {}', $.after.item.failedHosts.N, $.batch.limit)",
    );
    const output = new sfn.Pass(s, 'Batch done', { parameters: { 'records.$': '$.switchedBatch.records' } });
    tooMany.next(output);
    const afterChecks = this.holdAfterCanary(output);
    const alarms = this.alarmChecks(afterChecks, output);
    const overLimit = new sfn.Choice(s, 'Past the failed-host limit?')
      .when(sfn.Condition.numberGreaterThanJsonPath('$.after.failed', '$.batch.limit'), tooMany)
      .otherwise(alarms);
    const parseFailed = new sfn.Choice(s, 'Any host failed?')
      .when(
        sfn.Condition.isPresent('$.after.item.failedHosts'),
        this.keep('Read the failed count', '$.after', {
          'item.$': '$.after.item',
          'failed.$': 'States.StringToJson($.after.item.failedHosts.N)',
        }).next(overLimit),
      )
      .otherwise(alarms);
    sfn.Chain.start(step).next(checked).next(parseFailed);
    batches.itemProcessor(
      sfn.Chain.start(progress).next(
        new sfn.Choice(s, 'Has the rollout stopped?')
          .when(sfn.Condition.isPresent('$.progress.item.stopReason'), skip)
          .when(sfn.Condition.numberEquals('$.index', 0), canary)
          .otherwise(batch),
      ),
    );
    return sfn.Chain.start(batches).next(this.afterBatches());
  }

  /** Writes why the rollout stops into the item: the next batches skip, the end rolls back. */
  private stop(id: string, reason: string): tasks.CallAwsService {
    return this.dynamo(
      id,
      'updateItem',
      { Key: this.key(), UpdateExpression: 'SET stopReason = :reason', ExpressionAttributeValues: { ':reason': str(reason) } },
      { resultPath: sfn.JsonPath.DISCARD },
    );
  }

  /**
   * After the canary: bake `bakeSeconds`, checking the alarms every few seconds; after a batch: one
   * check. Any alarm in ALARM stops the rollout.
   */
  private alarmChecks(next: sfn.IChainable, done: sfn.IChainable): sfn.IChainable {
    const s = this.scope;
    const { alarms, bakeSeconds } = this.props.rollout;
    const isCanary = sfn.Condition.numberEquals('$.index', 0);
    if (alarms.length === 0) {
      if (bakeSeconds === 0) return next;
      const bake = new sfn.Wait(s, ROLLOUT_WAIT_STATES.bake, { time: sfn.WaitTime.duration(Duration.seconds(bakeSeconds)) });
      bake.next(next);
      return new sfn.Choice(s, 'Canary to bake?').when(isCanary, bake).otherwise(next);
    }
    const checks = Math.max(1, Math.ceil(bakeSeconds / BAKE_CHECK_SECONDS));
    const interval = bakeSeconds === 0 ? 0 : Math.ceil(bakeSeconds / checks);
    const describe = new tasks.CallAwsService(s, 'Check the alarms', {
      service: 'cloudwatch',
      action: 'describeAlarms',
      iamResources: alarms.map((name) =>
        this.stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
      ),
      parameters: { AlarmNames: [...alarms], StateValue: 'ALARM', AlarmTypes: ['MetricAlarm', 'CompositeAlarm'] },
      resultSelector: { 'metric.$': '$.MetricAlarms', 'composite.$': '$.CompositeAlarms' },
      resultPath: '$.alarms',
    });
    const fired = this.stop('Stop: an alarm fired', "States.Format('alarm {} is in ALARM', $.alarmName.name)");
    fired.next(done);
    const metricName = this.keep('Name the metric alarm', '$.alarmName', { 'name.$': '$.alarms.metric[0].AlarmName' });
    const compositeName = this.keep('Name the composite alarm', '$.alarmName', { 'name.$': '$.alarms.composite[0].AlarmName' });
    metricName.next(fired);
    compositeName.next(fired);
    const startBake = new sfn.Pass(s, 'Start the bake', { result: sfn.Result.fromObject({ round: 0 }), resultPath: '$.bake' });
    const bake = new sfn.Wait(s, ROLLOUT_WAIT_STATES.bake, { time: sfn.WaitTime.duration(Duration.seconds(Math.max(interval, 1))) });
    const count = this.keep('Count the bake', '$.bake', { 'round.$': 'States.MathAdd($.bake.round, 1)' });
    bake.next(count).next(describe);
    const quiet = new sfn.Choice(s, 'Bake on?')
      .when(sfn.Condition.and(isCanary, sfn.Condition.numberLessThan('$.bake.round', bakeSeconds === 0 ? 0 : checks)), bake)
      .otherwise(next);
    describe.next(
      new sfn.Choice(s, 'Any alarm in ALARM?')
        .when(sfn.Condition.isPresent('$.alarms.metric[0]'), metricName)
        .when(sfn.Condition.isPresent('$.alarms.composite[0]'), compositeName)
        .otherwise(quiet),
    );
    return startBake.next(describe);
  }

  /**
   * `hold`: after the canary, the execution waits on a task token that `triggler fleet promote`
   * answers. The token is written into the trigger's item by the waiting task itself (DynamoDB
   * UpdateItem with .waitForTaskToken), so the operator's command finds it where it already reads
   * the rollout's progress, and nothing else (queue, topic, function) has to exist for it.
   */
  private holdAfterCanary(done: sfn.IChainable): sfn.IChainable {
    const s = this.scope;
    if (!this.props.rollout.hold) return done;
    const hold = this.dynamo(
      ROLLOUT_HOLD_STATE,
      'updateItem',
      {
        Key: this.key(),
        UpdateExpression: 'SET holdToken = :taskToken',
        // `triggler fleet promote` finds the token in this task's parameters by this name.
        ExpressionAttributeValues: { ':taskToken': { S: sfn.JsonPath.taskToken } },
      },
      {
        integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        taskTimeout: sfn.Timeout.duration(HOLD_TIMEOUT),
        resultPath: sfn.JsonPath.DISCARD,
      },
    );
    const clear = this.dynamo(
      'Promoted',
      'updateItem',
      { Key: this.key(), UpdateExpression: 'REMOVE holdToken' },
      { resultPath: sfn.JsonPath.DISCARD },
    );
    const notPromoted = this.stop('Stop: not promoted', "States.Format('not promoted: {}', $.holdError.Error)");
    hold.addCatch(notPromoted, { errors: ['States.ALL'], resultPath: '$.holdError' });
    notPromoted.next(done);
    hold.next(clear).next(done);
    return new sfn.Choice(s, 'Hold after the canary?').when(sfn.Condition.numberEquals('$.index', 0), hold).otherwise(done);
  }

  /** After the last batch: the fleet commit and success, or the rollback of every switched host. */
  private afterBatches(): sfn.IChainable {
    const s = this.scope;
    const read = this.readItem('Read how the switch went', '$.outcome');
    const record = this.ssm('Record the fleet commit', 'putParameter', this.parameterArn(), {
      parameters: { 'Name.$': this.parameterName(), 'Value.$': '$.commit', Type: 'String', Overwrite: true },
      resultPath: sfn.JsonPath.DISCARD,
    });
    const joinSucceeded = this.keep('Gather the steps', '$.gathered', {
      'steps.$': 'States.Array($.prepared.records, $.switched.records)',
    });
    const succeeded = this.summary('Succeeded', 'succeeded', { 'instances.$': '$.fleet.ids', 'hosts.$': '$.gathered.steps[*][*]' });
    record.next(joinSucceeded).next(succeeded);
    const rollback = this.hostStep('rollback', {
      ids: '$.outcome.item.switched.SS',
      commit: '$.previous.commit',
      resultPath: '$.rolledBack',
    });
    const joinRolledBack = this.keep('Gather the steps and the rollback', '$.gathered', {
      'steps.$': 'States.Array($.prepared.records, $.switched.records, $.rolledBack.records)',
    });
    const nothingToRollBack = this.keep('Gather the steps before the stop', '$.gathered', {
      'steps.$': 'States.Array($.prepared.records, $.switched.records)',
    });
    const rolledBack = this.summary('Rolled back', 'rolled-back', {
      'reason.$': '$.outcome.item.stopReason.S',
      'instances.$': '$.fleet.ids',
      'hosts.$': '$.gathered.steps[*][*]',
    });
    sfn.Chain.start(rollback).next(joinRolledBack).next(rolledBack);
    nothingToRollBack.next(rolledBack);
    return read.next(
      new sfn.Choice(s, 'Stopped?')
        .when(
          sfn.Condition.isPresent('$.outcome.item.stopReason'),
          new sfn.Choice(s, 'Any host switched?')
            .when(sfn.Condition.isPresent('$.outcome.item.switched'), rollback)
            .otherwise(nothingToRollBack),
        )
        .otherwise(record),
    );
  }

  /**
   * One step on a list of hosts: SendCommand in chunks of 50 ids (a Map), each polled with
   * ListCommands on STEP_POLL_SCHEDULE until every invocation has ended, cancelled as soon as the
   * failures (the command's own counts plus `failedBefore`) pass `limit`, then read host by host with
   * ListCommandInvocations (Details: each plugin's output holds the step's JSON line). The
   * records land at `resultPath`.records, one HostRolloutSteps per host with this step filled.
   * A switch also adds each host it may have switched, and each failure, to the item.
   */
  private hostStep(
    step: HostStep,
    paths: { ids: string; commit: string; resultPath: string; failedBefore?: string; limit?: string },
  ): sfn.IChainable {
    const s = this.scope;
    const title = step[0]!.toUpperCase() + step.slice(1);
    const chunks = new sfn.Map(s, `${title} in chunks of ${INSTANCE_IDS_PER_COMMAND}`, {
      itemsPath: `${paths.resultPath}.chunks`,
      maxConcurrency: COMMANDS_IN_FLIGHT,
      itemSelector: {
        'ids.$': '$$.Map.Item.Value',
        'trigger.$': '$.trigger',
        'repository.$': '$.repository',
        'branch.$': '$.branch',
        'commit.$': paths.commit,
        ...(paths.failedBefore ? { 'failedBefore.$': paths.failedBefore } : { failedBefore: 0 }),
        // The wait before the first look; each look sets the next one (STEP_POLL_SCHEDULE).
        progress: { waitSeconds: STEP_POLL_SCHEDULE[0] },
        // Past this many failures the command is cancelled: none for prepare, every host for a rollback.
        ...(step === 'rollback'
          ? { 'limit.$': `States.ArrayLength(${paths.ids})` }
          : paths.limit
            ? { 'limit.$': paths.limit }
            : { limit: 0 }),
      },
      resultSelector: { 'records.$': '$[*][*]', 'statuses.$': `$[*][*].${step}.invocation` },
      resultPath: paths.resultPath,
    });
    const split = this.keep(`Split the ${step} into chunks`, paths.resultPath, {
      'chunks.$': `States.ArrayPartition(${paths.ids}, ${INSTANCE_IDS_PER_COMMAND})`,
    });
    const send = this.ssm(`Send the ${step}`, 'sendCommand', [this.documentArn()], {
      parameters: {
        DocumentName: this.props.documentName,
        'InstanceIds.$': '$.ids',
        Parameters: {
          step: [step],
          'repository.$': 'States.Array($.repository)',
          'branch.$': 'States.Array($.branch)',
          'commit.$': 'States.Array($.commit)',
        },
        MaxConcurrency: '100%',
        // SSM stops sending past MaxErrors: a rollback goes to every host, whatever happens to one.
        'MaxErrors.$': step === 'rollback' ? "States.Format('{}', States.ArrayLength($.ids))" : "States.Format('{}', $.limit)",
        TimeoutSeconds: this.props.stepTimeoutSeconds,
        'Comment.$': `States.Format('${step} {} of {}', $.commit, $.trigger)`,
        CloudWatchOutputConfig: { CloudWatchOutputEnabled: true, CloudWatchLogGroupName: this.props.commandLogGroupName },
      },
      additionalIamStatements: this.sendCommandStatements(),
      resultSelector: { 'id.$': '$.Command.CommandId' },
      resultPath: '$.command',
    });
    const wait = new sfn.Wait(s, ROLLOUT_WAIT_STATES.poll(step), { time: sfn.WaitTime.secondsPath('$.progress.waitSeconds') });
    const poll = this.ssm(`Look at the ${step}`, 'listCommands', ['*'], {
      parameters: { 'CommandId.$': '$.command.id' },
      resultSelector: {
        'status.$': '$.Commands[0].Status',
        'failed.$': 'States.MathAdd($.Commands[0].ErrorCount, $.Commands[0].DeliveryTimedOutCount)',
      },
      resultPath: '$.listed',
    });
    const cancel = this.ssm(`Cancel the ${step}`, 'cancelCommand', ['*'], {
      parameters: { 'CommandId.$': '$.command.id' },
      resultPath: sfn.JsonPath.DISCARD,
    });
    const read = this.ssm(`Read the ${step} of each host`, 'listCommandInvocations', ['*'], {
      parameters: { 'CommandId.$': '$.command.id', Details: true, MaxResults: INSTANCE_IDS_PER_COMMAND },
      resultSelector: { 'invocations.$': '$.CommandInvocations' },
      resultPath: '$.invocations',
    });
    // The state that already follows every look sets the next wait: the schedule costs no transition.
    const tally = this.keep(`Add the ${step} failures`, '$.progress', {
      'status.$': '$.listed.status',
      'failed.$': 'States.MathAdd($.listed.failed, $.failedBefore)',
      'waitSeconds.$': `States.ArrayGetItem(States.Array(${nextPollWaits().join(', ')}), $.progress.waitSeconds)`,
    });
    const running = sfn.Condition.or(
      sfn.Condition.stringEquals('$.progress.status', 'Pending'),
      sfn.Condition.stringEquals('$.progress.status', 'InProgress'),
    );
    send.next(wait);
    wait.next(poll).next(tally);
    cancel.next(wait);
    tally.next(
      new sfn.Choice(s, `Has the ${step} ended?`)
        .when(sfn.Condition.and(running, sfn.Condition.numberGreaterThanJsonPath('$.progress.failed', '$.limit')), cancel)
        .when(sfn.Condition.or(running, sfn.Condition.stringEquals('$.progress.status', 'Cancelling')), wait)
        .otherwise(read),
    );
    read.next(this.eachHost(step));
    chunks.itemProcessor(send);
    return split.next(chunks);
  }

  private documentArn(): string {
    return this.stack.formatArn({
      service: 'ssm',
      resource: 'document',
      resourceName: this.props.documentName,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  /** SendCommand needs the document and each instance: only instances with the fleet tag. */
  private sendCommandStatements(): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({
        actions: ['ssm:SendCommand'],
        resources: [
          this.stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME }),
        ],
        conditions: { StringEquals: { [`ssm:resourceTag/${this.props.fleetTag.key}`]: this.props.fleetTag.value } },
      }),
    ];
  }

  /** One record per invocation: its status and, when the host printed it, the step's JSON line. */
  private eachHost(step: HostStep): sfn.IChainable {
    const s = this.scope;
    const title = step[0]!.toUpperCase() + step.slice(1);
    const hosts = new sfn.Map(s, `${title}: each host`, {
      itemsPath: '$.invocations.invocations',
      itemSelector: {
        'trigger.$': '$.trigger',
        'instanceId.$': '$$.Map.Item.Value.InstanceId',
        'invocation.$': '$$.Map.Item.Value.Status',
        'plugins.$': '$$.Map.Item.Value.CommandPlugins',
      },
    });
    const withLine = this.keep(`Read the ${step} line`, '$.record', {
      'instanceId.$': '$.instanceId',
      [step]: { 'invocation.$': '$.invocation', 'result.$': 'States.StringToJson($.output.lines[0])' },
    });
    const withoutLine = this.keep(`No ${step} line`, '$.record', {
      'instanceId.$': '$.instanceId',
      [step]: { 'invocation.$': '$.invocation' },
    });
    // The step prints its JSON line first; stderr, when there is any, follows a marker line. Only
    // the first line is parsed, and only when it looks like an object: a host that printed
    // something else keeps its invocation status alone. Nested Choices, not And: a rule may not
    // look at a field that is absent.
    const done = new sfn.Pass(s, `${title} recorded`, { outputPath: '$.record' });
    const firstLine = new sfn.Choice(s, `Did the ${step} print its line?`)
      .when(sfn.Condition.stringMatches('$.output.lines[0]', '{*'), withLine)
      .otherwise(withoutLine);
    const split = this.keep(`Split the ${step} output`, '$.output', { 'lines.$': "States.StringSplit($.plugins[0].Output, '\n')" }).next(
      new sfn.Choice(s, `Any ${step} line?`).when(sfn.Condition.isPresent('$.output.lines[0]'), firstLine).otherwise(withoutLine),
    );
    const shape = new sfn.Choice(s, `Did the ${step} print anything?`)
      .when(sfn.Condition.isPresent('$.plugins[0].Output'), split)
      .otherwise(withoutLine);
    if (step !== 'switch') {
      withLine.next(done);
      withoutLine.next(done);
      hosts.itemProcessor(shape);
      return hosts;
    }
    // A host whose switch was cancelled or timed out may have switched: it is rolled back with the rest.
    const mark = (id: string, expression: string, values: Record<string, unknown>) =>
      this.dynamo(
        id,
        'updateItem',
        { Key: this.key(), UpdateExpression: expression, ExpressionAttributeValues: values },
        { resultPath: sfn.JsonPath.DISCARD },
      ).next(done);
    const host = { 'SS.$': 'States.Array($.instanceId)' };
    const switched = mark('Mark it switched', 'ADD switched :host', { ':host': host });
    const maybe = mark('Mark it switched and failed', 'ADD switched :host, failedHosts :one', { ':host': host, ':one': { N: '1' } });
    const failed = mark('Mark it failed', 'ADD failedHosts :one', { ':one': { N: '1' } });
    const outcome = new sfn.Choice(s, 'Switched?')
      .when(sfn.Condition.stringEquals('$.invocation', 'Success'), switched)
      .when(
        sfn.Condition.or(sfn.Condition.stringEquals('$.invocation', 'Cancelled'), sfn.Condition.stringEquals('$.invocation', 'TimedOut')),
        maybe,
      )
      .otherwise(failed);
    withLine.next(outcome);
    withoutLine.next(outcome);
    hosts.itemProcessor(shape);
    return hosts;
  }
}
