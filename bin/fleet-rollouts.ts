/**
 * What `triggler fleet` reads of a fleet's rollouts, all from AWS's own records: the executions of
 * the rollout state machine (their input, and the RolloutSummary that is a finished execution's
 * output or its failure's cause), their history (the newest state of a running one, the hold
 * state's task token, the Run Command commands each step sent) and the commands' invocations
 * (each host's status, its step's JSON line, where its whole output is in CloudWatch Logs).
 */
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  type ExecutionStatus,
  type HistoryEvent,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { ListCommandInvocationsCommand, type SSMClient } from '@aws-sdk/client-ssm';
import {
  awsErrorName,
  describeAwsError,
  rolloutExecutionName,
  ROLLOUT_HOLD_STATE,
  rolloutSummaryOf,
  type HostStepResult,
  type RolloutInput,
  type RolloutSummary,
} from '../protocol';

export interface FleetClients {
  sfn: SFNClient;
  ssm: SSMClient;
  stateMachineArn: string;
}

/** One rollout as `fleet rollouts` and `fleet show` present it. */
export interface RolloutRecord {
  name: string;
  arn: string;
  status: ExecutionStatus | string;
  startDate?: Date;
  stopDate?: Date;
  input?: RolloutInput;
  /** A finished execution's output (success) or its failure's cause, when it is a RolloutSummary. */
  summary?: RolloutSummary;
  /** A failure that left no summary: Step Functions' error and cause. */
  error?: string;
  cause?: string;
}

/** How a rollout ended (the summary's outcome), or the execution's own status while it has none. */
export function outcomeOf(record: RolloutRecord): string {
  if (record.summary) return record.summary.outcome;
  switch (record.status) {
    case 'RUNNING':
      return 'running';
    case 'ABORTED':
      return 'stopped';
    case 'TIMED_OUT':
      return 'timed-out';
    default:
      return record.error ? `${String(record.status).toLowerCase()} (${record.error})` : String(record.status).toLowerCase();
  }
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isInput(value: unknown): value is RolloutInput {
  const input = value as Partial<RolloutInput> | undefined;
  return typeof input === 'object' && input !== null && typeof input.trigger === 'string' && typeof input.commit === 'string';
}

/** An SDK call whose failure names what was asked of whom. */
async function asked<T>(what: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw new Error(`${what}: ${describeAwsError(error)}`, { cause: error });
  }
}

/** An execution's ARN from its name (or the ARN itself). */
export function executionArnOfId(stateMachineArn: string, id: string): string {
  if (id.startsWith('arn:')) return id;
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${id}`;
}

export async function describeRollout(clients: FleetClients, id: string): Promise<RolloutRecord> {
  const executionArn = executionArnOfId(clients.stateMachineArn, id);
  const described = await asked(`cannot read rollout ${id}`, clients.sfn.send(new DescribeExecutionCommand({ executionArn })));
  const input = parseJson(described.input);
  const summary = rolloutSummaryOf(described.status === 'SUCCEEDED' ? described.output : described.cause);
  return {
    name: described.name ?? id,
    arn: described.executionArn ?? executionArn,
    status: described.status ?? 'UNKNOWN',
    ...(described.startDate ? { startDate: new Date(described.startDate) } : {}),
    ...(described.stopDate ? { stopDate: new Date(described.stopDate) } : {}),
    ...(isInput(input) ? { input } : {}),
    ...(summary ? { summary } : {}),
    ...(!summary && described.error ? { error: described.error } : {}),
    ...(!summary && described.cause ? { cause: described.cause } : {}),
  };
}

/**
 * The rollouts, newest first (ListExecutions' order), read whole; of one trigger when given. The
 * execution name starts with the trigger's readable prefix, which narrows the reading; the input
 * decides.
 */
export async function listRollouts(
  clients: FleetClients,
  options: { limit: number; trigger?: string; status?: ExecutionStatus },
): Promise<RolloutRecord[]> {
  const prefix = options.trigger === undefined ? undefined : rolloutExecutionName(options.trigger, '').replace(/[0-9a-f]{32}$/, '');
  const records: RolloutRecord[] = [];
  let nextToken: string | undefined;
  do {
    const page = await asked(
      `cannot list the executions of ${clients.stateMachineArn}`,
      clients.sfn.send(
        new ListExecutionsCommand({
          stateMachineArn: clients.stateMachineArn,
          maxResults: 100,
          ...(options.status ? { statusFilter: options.status } : {}),
          ...(nextToken ? { nextToken } : {}),
        }),
      ),
    );
    for (const execution of page.executions ?? []) {
      if (records.length >= options.limit) break;
      if (prefix !== undefined && !(execution.name ?? '').startsWith(prefix)) continue;
      const record = await describeRollout(clients, execution.executionArn ?? execution.name ?? '');
      if (options.trigger !== undefined && record.input?.trigger !== options.trigger) continue;
      records.push(record);
    }
    nextToken = page.nextToken;
  } while (nextToken && records.length < options.limit);
  return records;
}

/** An execution's whole history, oldest first. */
export async function executionHistory(clients: FleetClients, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await asked(
      `cannot read the history of ${executionArn}`,
      clients.sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000, ...(nextToken ? { nextToken } : {}) })),
    );
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** The state a running rollout is in now, with the data it entered with. */
export function newestState(history: readonly HistoryEvent[]): { name: string; enteredAt?: Date; data: unknown } | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const entered = history[i]!.stateEnteredEventDetails;
    if (entered?.name !== undefined) {
      const at = history[i]!.timestamp;
      return { name: entered.name, ...(at ? { enteredAt: new Date(at) } : {}), data: parseJson(entered.input) ?? entered.input };
    }
  }
  return undefined;
}

/** The first string under a key named taskToken (any case, `task_token` or an expression's `:taskToken` too; DynamoDB's `{ S: ... }` read through). */
function taskTokenIn(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (/^:?task_?token$/i.test(key)) {
      if (typeof inner === 'string') return inner;
      const attribute = (inner as { S?: unknown } | null)?.S;
      if (typeof attribute === 'string') return attribute;
    }
    const found = taskTokenIn(inner);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The task token the hold state waits on, when the rollout is waiting there now: the state named
 * ROLLOUT_HOLD_STATE is a `.waitForTaskToken` task whose parameters carry `$$.Task.Token` under a
 * key named `taskToken`.
 */
export function holdTaskToken(history: readonly HistoryEvent[]): { token?: string; problem?: string } {
  let enteredAt = -1;
  for (let i = history.length - 1; i >= 0; i--) {
    const event = history[i]!;
    if (event.stateExitedEventDetails?.name === ROLLOUT_HOLD_STATE) return { problem: 'it passed the hold already' };
    if (event.stateEnteredEventDetails?.name === ROLLOUT_HOLD_STATE) {
      enteredAt = i;
      break;
    }
  }
  if (enteredAt < 0) return { problem: `it is not in the state "${ROLLOUT_HOLD_STATE}" (is rollout.hold on?)` };
  for (const event of history.slice(enteredAt)) {
    const parameters = event.taskScheduledEventDetails?.parameters;
    if (parameters !== undefined) {
      const token = taskTokenIn(parseJson(parameters));
      if (token !== undefined) return { token };
    }
  }
  return { problem: `its state "${ROLLOUT_HOLD_STATE}" scheduled no task with a taskToken yet` };
}

/** One Run Command command a rollout step sent (from the sendCommand task's result in the history). */
export interface SentCommand {
  commandId: string;
  step: string;
  instanceIds: string[];
  logGroup?: string;
}

export function sentCommands(history: readonly HistoryEvent[]): SentCommand[] {
  const commands: SentCommand[] = [];
  for (const event of history) {
    const details = event.taskSucceededEventDetails;
    if (!details || details.resource !== 'sendCommand' || !(details.resourceType ?? '').endsWith('ssm')) continue;
    const command = (parseJson(details.output) as { Command?: Record<string, unknown> } | undefined)?.Command;
    if (!command || typeof command.CommandId !== 'string') continue;
    const parameters = (command.Parameters ?? {}) as Record<string, unknown>;
    const step = Array.isArray(parameters.step) ? String(parameters.step[0]) : typeof parameters.step === 'string' ? parameters.step : '?';
    const logGroup = (command.CloudWatchOutputConfig as { CloudWatchLogGroupName?: unknown } | undefined)?.CloudWatchLogGroupName;
    commands.push({
      commandId: command.CommandId,
      step,
      instanceIds: Array.isArray(command.InstanceIds) ? command.InstanceIds.map(String) : [],
      ...(typeof logGroup === 'string' ? { logGroup } : {}),
    });
  }
  return commands;
}

/** A host's newest step in a rollout, as its SSM invocation reports it. */
export interface HostStatus {
  instanceId: string;
  step: string;
  /** The invocation's status: Success, Failed, InProgress, TimedOut, Cancelled, ... */
  status: string;
  result?: HostStepResult;
  commandId?: string;
  /** Where the step's whole output is: the CloudWatch log group and stream of the invocation. */
  log?: { group: string; stream: string };
}

/** The step's JSON line in an invocation's output: its last line that is one. */
export function stepResultIn(output: string | undefined): HostStepResult | undefined {
  for (const line of (output ?? '').split('\n').reverse()) {
    const parsed = parseJson(line.trim()) as Partial<HostStepResult> | undefined;
    if (parsed && typeof parsed === 'object' && typeof parsed.status === 'string' && typeof parsed.host === 'string')
      return parsed as HostStepResult;
  }
  return undefined;
}

/**
 * Each host's newest step: the invocations of every command the rollout sent, the later command
 * of a host winning. The log stream is Run Command's `<command>/<instance>/<step name>/stdout`.
 */
export async function hostStatuses(clients: FleetClients, commands: readonly SentCommand[]): Promise<HostStatus[]> {
  const byHost = new Map<string, HostStatus>();
  for (const command of commands) {
    let nextToken: string | undefined;
    do {
      const page = await clients.ssm
        .send(
          new ListCommandInvocationsCommand({
            CommandId: command.commandId,
            Details: true,
            ...(nextToken ? { NextToken: nextToken } : {}),
          }),
        )
        .catch((error: unknown) => {
          // Run Command keeps a command's invocations for 30 days; the summary still names its hosts.
          if (awsErrorName(error) === 'InvalidCommandId') return { CommandInvocations: [], NextToken: undefined };
          throw new Error(`cannot read the invocations of command ${command.commandId}: ${describeAwsError(error)}`, { cause: error });
        });
      for (const invocation of page.CommandInvocations ?? []) {
        const instanceId = invocation.InstanceId ?? '?';
        const plugin = invocation.CommandPlugins?.[0];
        const group = invocation.CloudWatchOutputConfig?.CloudWatchLogGroupName ?? command.logGroup;
        const result = stepResultIn(plugin?.Output);
        byHost.set(instanceId, {
          instanceId,
          step: command.step,
          status: invocation.StatusDetails ?? invocation.Status ?? '?',
          commandId: command.commandId,
          ...(result ? { result } : {}),
          ...(group && plugin?.Name
            ? { log: { group, stream: `${command.commandId}/${instanceId}/${plugin.Name.replace(/:/g, '-')}/stdout` } }
            : {}),
        });
      }
      nextToken = page.NextToken;
    } while (nextToken);
  }
  return [...byHost.values()];
}

/** Each host's newest step as a finished rollout's summary records it (no SSM call; no log location). */
export function hostStatusesOfSummary(summary: RolloutSummary): HostStatus[] {
  return summary.hosts.map((host) => {
    const [step, outcome] = (['rollback', 'switch', 'prepare'] as const).map((name) => [name, host[name]] as const).find(([, o]) => o) ?? [
      'none',
      undefined,
    ];
    return {
      instanceId: host.instanceId,
      step,
      status: outcome?.invocation ?? 'not run',
      ...(outcome?.result ? { result: outcome.result } : {}),
    };
  });
}
