/**
 * The rollout, run locally: the synthesized state machine definition executed by
 * aws-local-stepfunctions, each of its SDK tasks answered by a local stand-in chosen by the task's
 * Resource (`arn:aws:states:::aws-sdk:<service>:<action>[.waitForTaskToken]`):
 *   dynamodb   dynalite, a DynamoDB implementation, holding the rollout table
 *   ssm        the local Run Command against the fleet's real receivers, a parameter store, and
 *              the instance inventory (the hosts, their tags, whether their agent is online)
 *   cloudwatch scripted alarms
 *   sfn        describeExecution of this engine's own executions
 * Executions are started by name as StartExecution does: the same name again is the same execution.
 * Each keeps what Step Functions keeps of it (dates, output or error and cause, a history of its
 * states and SDK tasks), for the Step Functions API stand-in (./local-sfn-api) to answer from.
 */
import './promise-with-resolvers';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type GetItemCommandInput,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { StateMachine } from 'aws-local-stepfunctions';
import { rolloutExecutionName, type RolloutInput, type RolloutSummary } from '../../../protocol/rollout';
import type { RolloutSettings } from '../../../lib/constructs/fleet-rollout';
import { ROLLOUT_WAIT_STATES } from '../../../lib/constructs/fleet-rollout';
import type { FleetHosts } from './fleet-hosts';
import { LocalRunCommand, SsmError, type RunCommandEvent } from './local-run-command';
import { LOCAL_AWS, synthesizeRollout, type SynthesizedRollout } from './synthesized-rollout';

// dynalite has no type declarations.
const dynalite = require('dynalite') as (options: { createTableMs: number; deleteTableMs: number; updateTableMs: number }) => Server;

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';

export interface LocalExecution {
  name: string;
  arn: string;
  input: RolloutInput;
  status: ExecutionStatus;
  /** Settles when the execution ends: the summary it ended with (its output, or its failure's cause). */
  done: Promise<{ status: ExecutionStatus; error?: string; summary?: RolloutSummary }>;
  /** The states it entered, in order (Map iterations included). */
  states: string[];
  /** `$$.Task.Token` in this execution (its one callback task, the hold). */
  token: string;
  abort?: () => void;
  startDate: Date;
  stopDate?: Date;
  /** As DescribeExecution gives them: the output (JSON text) of a success, the error and cause of a failure. */
  output?: string;
  error?: string;
  cause?: string;
  /** As GetExecutionHistory gives it, oldest first: states entered and exited, SDK tasks scheduled and succeeded. */
  history: HistoryEvent[];
}

/** One event of an execution's history, in GetExecutionHistory's shape (only the kinds the engine records). */
export interface HistoryEvent {
  id: number;
  timestamp: Date;
  type: string;
  stateEnteredEventDetails?: { name: string; input: string };
  stateExitedEventDetails?: { name: string; output: string };
  taskScheduledEventDetails?: { resourceType: string; resource: string; region: string; parameters: string };
  taskSucceededEventDetails?: { resourceType: string; resource: string; output: string };
}

export interface LocalEngineOptions {
  rollout: RolloutSettings;
  hosts: FleetHosts;
  /** How long the whole bake lasts here (the definition's bakeSeconds, scaled). */
  bakeMs?: number;
  /** Every other Wait: polling a command, waiting at the lock. */
  pollMs?: number;
  /** Every Wait lasts what the definition says, as on AWS (bakeMs and pollMs are then unused). */
  synthesizedWaits?: boolean;
  /** The `triggler` each host's step runs (LocalRunCommand); the clone's bin/triggler.js by default. */
  hostCli?: string;
}

type TaskHandler = (input: Record<string, unknown>, execution: LocalExecution) => Promise<unknown>;

export class LocalRolloutEngine {
  readonly runCommand: LocalRunCommand;
  /** The parameter store (the fleet commit parameters). */
  readonly parameters = new Map<string, string>();
  /** Alarm name → its state; an alarm not named here is OK. */
  readonly alarms = new Map<string, 'OK' | 'ALARM'>();
  readonly executions = new Map<string, LocalExecution>();
  readonly dynamo: DynamoDBClient;
  private readonly machine: StateMachine;
  private readonly waits: Record<string, number>;
  private readonly tokens = new Map<string, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly progress: Array<(execution: LocalExecution, state: string) => void> = [];

  private constructor(
    readonly synthesized: SynthesizedRollout,
    readonly hosts: FleetHosts,
    private readonly server: Server,
    options: LocalEngineOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.dynamo = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: LOCAL_AWS.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const props = synthesized.props;
    this.runCommand = new LocalRunCommand(() => hosts.hosts, props.documentName, props.stepTimeoutSeconds * 1000, options.hostCli);
    this.machine = new StateMachine(synthesized.definition as never);
    this.waits = options.synthesizedWaits ? {} : this.waitOverrides(options.bakeMs ?? 1000, options.pollMs ?? 100);
  }

  static async start(options: LocalEngineOptions): Promise<LocalRolloutEngine> {
    const synthesized = synthesizeRollout(options.rollout);
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const engine = new LocalRolloutEngine(synthesized, options.hosts, server, options);
    await engine.dynamo.send(
      new CreateTableCommand({
        TableName: LOCAL_AWS.tableName,
        AttributeDefinitions: [{ AttributeName: 'trigger', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'trigger', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    return engine;
  }

  /** Hears every state an execution enters, as it enters it. */
  onProgress(listener: (execution: LocalExecution, state: string) => void): void {
    this.progress.push(listener);
  }

  onRunCommand(listener: (event: RunCommandEvent) => void): void {
    this.runCommand.onEvent(listener);
  }

  /** StartExecution: the name the senders give it; the same name again returns the same execution. */
  start(input: RolloutInput, name = rolloutExecutionName(input.trigger, input.deliveryId)): LocalExecution {
    const existing = this.executions.get(name);
    if (existing) {
      if (JSON.stringify(existing.input) !== JSON.stringify(input))
        throw Object.assign(new Error(`execution ${name} already exists with another input`), { name: 'ExecutionAlreadyExists' });
      return existing;
    }
    const arn = `arn:aws:states:${LOCAL_AWS.region}:${LOCAL_AWS.account}:execution:${LOCAL_AWS.stateMachineName}:${name}`;
    const token = `${name}/${randomUUID()}`;
    const execution: LocalExecution = {
      name,
      arn,
      input,
      token,
      status: 'RUNNING',
      states: [],
      done: undefined as never,
      startDate: new Date(),
      history: [],
    };
    const run = this.machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: this.handlers(execution) as never, waitTimeOverrides: this.waits },
      context: { Execution: { Name: name, Id: arn }, Task: { Token: token } },
    });
    this.executions.set(name, execution);
    execution.abort = run.abort;
    void this.follow(execution, run.eventLogs);
    execution.done = run.result.then(
      (output: unknown) => {
        execution.status = 'SUCCEEDED';
        execution.stopDate = new Date();
        execution.output = JSON.stringify(output);
        return { status: execution.status, summary: output as RolloutSummary };
      },
      (error: Error & { cause?: Error }) => {
        const failure = error.cause ?? error;
        execution.status = error.name === 'ExecutionAbortedError' ? 'ABORTED' : 'FAILED';
        execution.stopDate = new Date();
        if (execution.status === 'FAILED') [execution.error, execution.cause] = [failure.name, failure.message];
        let summary: RolloutSummary | undefined;
        try {
          summary = JSON.parse(failure.message) as RolloutSummary;
        } catch {
          summary = undefined;
        }
        return { status: execution.status, error: failure.name, ...(summary ? { summary } : {}) };
      },
    );
    return execution;
  }

  /** StopExecution: the execution ends ABORTED where it stands (its lock stays, as on AWS). */
  stop(name: string): void {
    this.executions.get(name)?.abort?.();
  }

  /** What `triggler fleet promote` does: the hold's task token from the table, then SendTaskSuccess. */
  async promote(trigger: string): Promise<void> {
    const token = await this.holdToken(trigger);
    this.sendTaskSuccess(token);
  }

  async holdToken(trigger: string): Promise<string> {
    const item = await this.item(trigger);
    const token = item?.holdToken?.S;
    if (!token) throw new Error(`no rollout of ${trigger} is waiting for promotion`);
    return token;
  }

  sendTaskSuccess(token: string): void {
    const waiting = this.tokens.get(token);
    if (!waiting) throw Object.assign(new Error('task token unknown or already answered'), { name: 'TaskTimedOut' });
    this.tokens.delete(token);
    waiting.resolve({});
  }

  sendTaskFailure(token: string, error: string): void {
    const waiting = this.tokens.get(token);
    if (!waiting) throw Object.assign(new Error('task token unknown or already answered'), { name: 'TaskTimedOut' });
    this.tokens.delete(token);
    waiting.reject(Object.assign(new Error(error), { name: error }));
  }

  /** The trigger's item in the rollout table, as DynamoDB holds it. */
  async item(trigger: string): Promise<Record<string, { S?: string; N?: string; SS?: string[] }> | undefined> {
    const answer = await this.dynamo.send(
      new GetItemCommand({ TableName: LOCAL_AWS.tableName, Key: { trigger: { S: trigger } }, ConsistentRead: true }),
    );
    return answer.Item as never;
  }

  /**
   * What the State Manager association does on a host that joins: `converge` with the commit in
   * the fleet commit parameter. Resolves with the invocation's status.
   */
  async converge(instanceId: string, repository: string, branch: string): Promise<string> {
    const name = `${this.synthesized.props.commitParameterPrefix}/${repository}/${branch}/commit`;
    const commit = this.parameters.get(name);
    if (!commit) throw new Error(`no fleet commit parameter ${name}`);
    const { Command } = this.runCommand.sendCommand({
      DocumentName: this.synthesized.props.documentName,
      InstanceIds: [instanceId],
      Parameters: { step: ['converge'], repository: [repository], branch: [branch], commit: [commit] },
    });
    for (;;) {
      const [listed] = this.runCommand.listCommands({ CommandId: Command.CommandId }).Commands;
      if (!['Pending', 'InProgress', 'Cancelling'].includes(listed!.Status as string)) return listed!.Status as string;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async dispose(): Promise<void> {
    // A hold still waiting: its task would otherwise keep its own timeout (days) running.
    for (const [token, waiting] of this.tokens) {
      this.tokens.delete(token);
      waiting.reject(Object.assign(new Error('the local engine stopped'), { name: 'States.TaskFailed' }));
    }
    for (const execution of this.executions.values()) if (execution.status === 'RUNNING') this.stop(execution.name);
    await Promise.allSettled([...this.executions.values()].map((execution) => execution.done));
    await this.runCommand.settle();
    this.dynamo.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async follow(
    execution: LocalExecution,
    events: AsyncGenerator<{ type: string; state?: { name: string; type: string; input: unknown; output?: unknown } }>,
  ): Promise<void> {
    for await (const event of events) {
      if (!event.state) continue;
      const { name, type, input, output } = event.state;
      if (event.type === 'StateExited')
        record(execution, `${type}StateExited`, { stateExitedEventDetails: { name, output: JSON.stringify(output ?? null) } });
      if (event.type !== 'StateEntered') continue;
      record(execution, `${type}StateEntered`, { stateEnteredEventDetails: { name, input: JSON.stringify(input ?? null) } });
      execution.states.push(name);
      for (const listener of this.progress) listener(execution, name);
    }
  }

  /** The definition's Wait states, shortened: the bake to `bakeMs` in all, every other wait to `pollMs`. */
  private waitOverrides(bakeMs: number, pollMs: number): Record<string, number> {
    const overrides: Record<string, number> = {};
    const { bakeSeconds } = this.synthesized.props.rollout;
    for (const [name, state] of allStates(this.synthesized.definition)) {
      if (state.Type !== 'Wait') continue;
      overrides[name] =
        name === ROLLOUT_WAIT_STATES.bake ? Math.round((bakeMs * (state.Seconds as number)) / Math.max(bakeSeconds, 1)) : pollMs;
    }
    return overrides;
  }

  /** One local handler per Task state, chosen by the service and action its Resource names. */
  private handlers(execution: LocalExecution): Record<string, (input: never) => Promise<unknown>> {
    const handlers: Record<string, (input: never) => Promise<unknown>> = {};
    for (const [name, state] of allStates(this.synthesized.definition)) {
      if (state.Type !== 'Task') continue;
      const match = /^arn:aws:states:::aws-sdk:([a-z0-9]+):([A-Za-z]+)(\.waitForTaskToken)?$/.exec(state.Resource as string);
      if (!match) throw new Error(`state ${name}: the local engine has no stand-in for ${String(state.Resource)}`);
      const [, service, action, callback] = match;
      const handler = this.service(service!, action!);
      const resourceType = `aws-sdk:${service!}`;
      const resource = `${action!}${callback ?? ''}`;
      handlers[name] = (async (input: Record<string, unknown>) => {
        record(execution, 'TaskScheduled', {
          taskScheduledEventDetails: { resourceType, resource, region: LOCAL_AWS.region, parameters: JSON.stringify(input) },
        });
        const answer = await handler(input, execution);
        if (!callback) {
          record(execution, 'TaskSucceeded', { taskSucceededEventDetails: { resourceType, resource, output: JSON.stringify(answer) } });
          return answer;
        }
        return new Promise((resolve, reject) => this.tokens.set(execution.token, { resolve, reject }));
      }) as (input: never) => Promise<unknown>;
    }
    return handlers;
  }

  private service(service: string, action: string): TaskHandler {
    const key = `${service}:${action}`;
    switch (key) {
      case 'dynamodb:updateItem':
        return (input) => this.dynamoCall(() => this.dynamo.send(new UpdateItemCommand(input as unknown as UpdateItemCommandInput)));
      case 'dynamodb:getItem':
        return (input) => this.dynamoCall(() => this.dynamo.send(new GetItemCommand(input as unknown as GetItemCommandInput)));
      case 'ssm:sendCommand':
        return async (input) => this.runCommand.sendCommand(input);
      case 'ssm:listCommands':
        return async (input) => this.runCommand.listCommands(input);
      case 'ssm:listCommandInvocations':
        return async (input) => this.runCommand.listCommandInvocations(input);
      case 'ssm:cancelCommand':
        return async (input) => this.runCommand.cancelCommand(input);
      case 'ssm:getParameter':
        return async (input) => {
          const value = this.parameters.get(input.Name as string);
          if (value === undefined) throw new SsmError('ParameterNotFoundException', `parameter ${String(input.Name)} not found`);
          return { Parameter: { Name: input.Name, Value: value, Type: 'String' } };
        };
      case 'ssm:putParameter':
        return async (input) => {
          this.parameters.set(input.Name as string, input.Value as string);
          return { Version: 1 };
        };
      case 'ssm:describeInstanceInformation':
        return async (input) => this.describeInstanceInformation(input);
      case 'cloudwatch:describeAlarms':
        return async (input) => {
          const names = input.AlarmNames as string[];
          const alarms = names.map((name) => ({ AlarmName: name, StateValue: this.alarms.get(name) ?? 'OK' }));
          return {
            MetricAlarms: alarms.filter((alarm) => input.StateValue === undefined || alarm.StateValue === input.StateValue),
            CompositeAlarms: [],
          };
        };
      case 'sfn:describeExecution':
        return async (input) => {
          const execution = [...this.executions.values()].find((candidate) => candidate.arn === input.ExecutionArn);
          if (!execution)
            throw Object.assign(new Error(`no execution ${String(input.ExecutionArn)}`), { name: 'Sfn.ExecutionDoesNotExistException' });
          return { ExecutionArn: execution.arn, Name: execution.name, Status: execution.status };
        };
      default:
        throw new Error(`the local engine has no stand-in for ${key}`);
    }
  }

  private describeInstanceInformation(input: Record<string, unknown>): Record<string, unknown> {
    const filters = (input.Filters as Array<{ Key: string; Values: string[] }>) ?? [];
    const matching = this.hosts.hosts.filter((host) =>
      filters.every((filter) => {
        if (filter.Key === 'PingStatus') return filter.Values.includes(host.online ? 'Online' : 'ConnectionLost');
        if (filter.Key.startsWith('tag:')) return filter.Values.includes(host.tags[filter.Key.slice(4)] ?? '');
        if (filter.Key === 'InstanceIds') return filter.Values.includes(host.instanceId);
        throw new SsmError('InvalidFilterKey', `the local inventory has no filter ${filter.Key}`);
      }),
    );
    const start = input.NextToken === undefined ? 0 : Number(input.NextToken);
    const size = (input.MaxResults as number | undefined) ?? 50;
    const page = matching.slice(start, start + size);
    return {
      InstanceInformationList: page.map((host) => ({ InstanceId: host.instanceId, PingStatus: host.online ? 'Online' : 'ConnectionLost' })),
      ...(start + size < matching.length ? { NextToken: String(start + size) } : {}),
    };
  }

  /** An SDK error becomes the error Step Functions names: `DynamoDb.<Exception>`. */
  private async dynamoCall(call: () => Promise<object>): Promise<unknown> {
    try {
      const { $metadata, ...answer } = (await call()) as Record<string, unknown>;
      void $metadata;
      return answer;
    } catch (error) {
      const named = error as Error;
      throw Object.assign(new Error(named.message), { name: `DynamoDb.${named.name}` });
    }
  }
}

type StateJson = Record<string, unknown> & { Type: string };

function record(execution: LocalExecution, type: string, details: Partial<HistoryEvent>): void {
  execution.history.push({ id: execution.history.length + 1, timestamp: new Date(), type, ...details });
}

/** Every state of a definition, those inside Parallel branches and Map processors too. */
function allStates(definition: Record<string, unknown>): Array<[string, StateJson]> {
  const states = Object.entries(definition.States as Record<string, StateJson>);
  return states.flatMap(([name, state]) => {
    const nested = [
      ...((state.Branches as Array<Record<string, unknown>> | undefined) ?? []),
      ...(state.ItemProcessor ? [state.ItemProcessor as Record<string, unknown>] : []),
      ...(state.Iterator ? [state.Iterator as Record<string, unknown>] : []),
    ];
    return [[name, state] as [string, StateJson], ...nested.flatMap((inner) => allStates(inner))];
  });
}
