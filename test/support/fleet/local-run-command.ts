/**
 * A local Run Command: SendCommand, ListCommands, ListCommandInvocations and CancelCommand as
 * the rollout state machine calls them, answered the way SSM answers. Each invocation runs the
 * Command document's command — `triggler fleet-step <step> --repository R --branch B [--commit C]
 * --config <the host's receiver config>`, the real CLI as a child process — against the host's
 * real receiver. MaxConcurrency and MaxErrors bound the dispatch, a cancel stops what runs and
 * what waits, and each invocation ends Success, Failed, TimedOut, Cancelled or Undeliverable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { FLEET_STEP_PATTERNS, FLEET_STEPS } from '../../../bin/fleet-step';
import { CLI, ROOT } from '../cli';
import type { FleetHost } from './fleet-hosts';

/** SSM keeps the first 2,500 characters of a plugin's output in the invocation. */
const OUTPUT_LIMIT = 2500;
const ERROR_MARKER = '\n----------ERROR-------\n';
const MAX_INSTANCE_IDS = 50;

/** The Command document's parameters and what each may be: the rollout sends exactly these. */
const DOCUMENT_PARAMETERS: Record<string, RegExp> = {
  step: new RegExp(`^(?:${FLEET_STEPS.join('|')})$`),
  repository: FLEET_STEP_PATTERNS.repository,
  branch: FLEET_STEP_PATTERNS.branch,
  // Empty for a rollback with no fleet commit before it: the release before current.
  commit: new RegExp(`^(?:${FLEET_STEP_PATTERNS.commit.source.slice(1, -1)})?$`),
};

type InvocationStatus = 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut' | 'Cancelled' | 'Undeliverable';

interface Invocation {
  InstanceId: string;
  Status: InvocationStatus;
  output: string;
  responseCode: number;
  child?: ChildProcess;
}

interface LocalCommand {
  CommandId: string;
  DocumentName: string;
  Parameters: Record<string, string[]>;
  logGroup: string | undefined;
  maxConcurrency: number;
  maxErrors: number;
  invocations: Invocation[];
  cancelled: boolean;
  stopped: boolean;
}

/** The CloudWatchOutputConfig SSM gives back with a command and with each of its invocations. */
function cloudWatchOutputOf(command: LocalCommand): Record<string, unknown> {
  return command.logGroup ? { CloudWatchOutputConfig: { CloudWatchLogGroupName: command.logGroup, CloudWatchOutputEnabled: true } } : {};
}

export class SsmError extends Error {
  constructor(code: string, message: string) {
    super(message);
    this.name = `Ssm.${code}`;
  }
}

/** What the local Run Command reports as it works: for a test's assertions and the demo's progress. */
export type RunCommandEvent =
  | { type: 'sent'; commandId: string; step: string; instanceIds: string[] }
  | { type: 'invocation'; commandId: string; step: string; instanceId: string; status: InvocationStatus; output: string }
  | { type: 'cancelled'; commandId: string; step: string };

export class LocalRunCommand {
  private readonly commands = new Map<string, LocalCommand>();
  /** Each invocation's whole output, by log group (CloudWatchOutputConfig). */
  readonly logs = new Map<string, string[]>();
  private readonly listeners: Array<(event: RunCommandEvent) => void> = [];

  constructor(
    private readonly hosts: () => FleetHost[],
    private readonly documentName: string,
    /** The document's executionTimeout. */
    private readonly executionTimeoutMs: number,
    /** The `triggler` the document runs: the clone's by default, or a bundle as `npm pack` ships it. */
    private readonly cli = CLI,
  ) {}

  /** Listeners run synchronously, before the commands they hear of go on. */
  onEvent(listener: (event: RunCommandEvent) => void): void {
    this.listeners.push(listener);
  }

  sendCommand(input: Record<string, unknown>): { Command: Record<string, unknown> } {
    if (input.DocumentName !== this.documentName) throw new SsmError('InvalidDocument', `no document ${String(input.DocumentName)}`);
    const ids = input.InstanceIds as string[];
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_INSTANCE_IDS)
      throw new SsmError(
        'ValidationException',
        `InstanceIds must hold 1 to ${MAX_INSTANCE_IDS} ids, not ${Array.isArray(ids) ? ids.length : 'none'}`,
      );
    const known = new Set(this.hosts().map((host) => host.instanceId));
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length > 0) throw new SsmError('InvalidInstanceId', `not managed instances: ${unknown.join(', ')}`);
    const parameters = input.Parameters as Record<string, string[]>;
    this.checkParameters(parameters);
    const command: LocalCommand = {
      CommandId: randomUUID(),
      DocumentName: this.documentName,
      Parameters: parameters,
      logGroup: (input.CloudWatchOutputConfig as { CloudWatchLogGroupName?: string } | undefined)?.CloudWatchLogGroupName,
      maxConcurrency: this.limit(input.MaxConcurrency, ids.length, 50),
      maxErrors: this.limit(input.MaxErrors, ids.length, 0),
      invocations: ids.map((id) => ({ InstanceId: id, Status: 'Pending', output: '', responseCode: -1 })),
      cancelled: false,
      stopped: false,
    };
    this.commands.set(command.CommandId, command);
    this.emit({ type: 'sent', commandId: command.CommandId, step: parameters.step![0]!, instanceIds: ids });
    this.dispatch(command);
    // As SSM answers: the command with what it was sent (`triggler fleet status` reads its step and log group from it).
    return {
      Command: {
        CommandId: command.CommandId,
        DocumentName: command.DocumentName,
        Status: 'Pending',
        InstanceIds: ids,
        Parameters: parameters,
        ...(input.MaxConcurrency === undefined ? {} : { MaxConcurrency: input.MaxConcurrency }),
        ...(input.MaxErrors === undefined ? {} : { MaxErrors: input.MaxErrors }),
        ...cloudWatchOutputOf(command),
      },
    };
  }

  listCommands(input: Record<string, unknown>): { Commands: Array<Record<string, unknown>> } {
    const command = this.command(input.CommandId);
    const count = (...statuses: InvocationStatus[]) => command.invocations.filter((i) => statuses.includes(i.Status)).length;
    return {
      Commands: [
        {
          CommandId: command.CommandId,
          DocumentName: command.DocumentName,
          Status: this.status(command),
          TargetCount: command.invocations.length,
          CompletedCount: count('Success', 'Failed', 'TimedOut', 'Cancelled', 'Undeliverable'),
          ErrorCount: count('Failed', 'TimedOut'),
          DeliveryTimedOutCount: count('Undeliverable'),
        },
      ],
    };
  }

  listCommandInvocations(input: Record<string, unknown>): { CommandInvocations: Array<Record<string, unknown>> } {
    const command = this.command(input.CommandId);
    const details = input.Details === true;
    return {
      CommandInvocations: command.invocations.map((invocation) => ({
        CommandId: command.CommandId,
        InstanceId: invocation.InstanceId,
        DocumentName: command.DocumentName,
        Status: invocation.Status,
        StatusDetails: invocation.Status,
        ...cloudWatchOutputOf(command),
        CommandPlugins: !details
          ? []
          : invocation.Status === 'Undeliverable' || invocation.Status === 'Pending'
            ? []
            : [
                {
                  Name: 'runFleetStep',
                  Status: invocation.Status,
                  ResponseCode: invocation.responseCode,
                  Output: invocation.output.slice(0, OUTPUT_LIMIT),
                },
              ],
      })),
    };
  }

  cancelCommand(input: Record<string, unknown>): Record<string, never> {
    const command = this.command(input.CommandId);
    command.cancelled = true;
    this.emit({ type: 'cancelled', commandId: command.CommandId, step: command.Parameters.step![0]! });
    for (const invocation of command.invocations) {
      if (invocation.Status === 'Pending') invocation.Status = 'Cancelled';
      else if (invocation.Status === 'InProgress') invocation.child?.kill('SIGTERM');
    }
    return {};
  }

  /** Waits until no invocation of any command runs (a test's clean-up). */
  async settle(): Promise<void> {
    const running = [...this.commands.values()].flatMap((command) =>
      command.invocations.filter((i) => i.child && i.child.exitCode === null && i.child.signalCode === null),
    );
    await Promise.all(running.map((invocation) => new Promise((resolve) => invocation.child!.once('exit', resolve))));
  }

  private checkParameters(parameters: Record<string, string[]>): void {
    const names = Object.keys(parameters ?? {}).sort();
    const expected = Object.keys(DOCUMENT_PARAMETERS).sort();
    if (names.join() !== expected.join())
      throw new SsmError('InvalidParameters', `the document takes exactly ${expected.join(', ')}; given ${names.join(', ') || 'none'}`);
    for (const [name, pattern] of Object.entries(DOCUMENT_PARAMETERS)) {
      const values = parameters[name]!;
      if (!Array.isArray(values) || values.length !== 1 || typeof values[0] !== 'string' || !pattern.test(values[0]))
        throw new SsmError('InvalidParameters', `parameter ${name} fails its allowedPattern: ${JSON.stringify(values)}`);
    }
  }

  /** "10" or "25%" of the targets (at least 1 for a percentage above 0), or the default. */
  private limit(value: unknown, targets: number, fallback: number): number {
    if (value === undefined) return fallback;
    const text = String(value);
    const percent = /^(\d+)%$/.exec(text);
    if (percent) return Number(percent[1]) === 0 ? 0 : Math.max(1, Math.floor((targets * Number(percent[1])) / 100));
    if (!/^\d+$/.test(text)) throw new SsmError('ValidationException', `not a count or a percentage: ${text}`);
    return Number(text);
  }

  private command(id: unknown): LocalCommand {
    const command = this.commands.get(String(id));
    if (!command) throw new SsmError('InvalidCommandId', `no command ${String(id)}`);
    return command;
  }

  private status(command: LocalCommand): string {
    const statuses = command.invocations.map((invocation) => invocation.Status);
    if (statuses.some((status) => status === 'Pending' || status === 'InProgress'))
      return command.cancelled ? 'Cancelling' : statuses.every((s) => s === 'Pending') ? 'Pending' : 'InProgress';
    if (command.cancelled) return 'Cancelled';
    if (statuses.every((status) => status === 'Success')) return 'Success';
    return 'Failed';
  }

  /** Starts invocations while MaxConcurrency allows and the errors stay within MaxErrors. */
  private dispatch(command: LocalCommand): void {
    const errors = command.invocations.filter((i) => i.Status === 'Failed' || i.Status === 'TimedOut').length;
    if (errors > command.maxErrors && !command.stopped) {
      // Past MaxErrors SSM sends to no more targets; those left never run.
      command.stopped = true;
      for (const invocation of command.invocations) if (invocation.Status === 'Pending') invocation.Status = 'Cancelled';
    }
    if (command.cancelled || command.stopped) return;
    let running = command.invocations.filter((i) => i.Status === 'InProgress').length;
    for (const invocation of command.invocations) {
      if (running >= Math.max(1, command.maxConcurrency)) break;
      if (invocation.Status !== 'Pending') continue;
      running += 1;
      this.run(command, invocation);
    }
  }

  private run(command: LocalCommand, invocation: Invocation): void {
    const host = this.hosts().find((candidate) => candidate.instanceId === invocation.InstanceId)!;
    const step = command.Parameters.step![0]!;
    if (!host.online) {
      this.finish(command, invocation, 'Undeliverable', '', -1);
      return;
    }
    invocation.Status = 'InProgress';
    const commit = command.Parameters.commit![0]!;
    const args = [
      this.cli,
      'fleet-step',
      step,
      '--repository',
      command.Parameters.repository![0]!,
      '--branch',
      command.Parameters.branch![0]!,
      ...(commit === '' ? [] : ['--commit', commit]),
      '--config',
      host.configFile,
    ];
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    invocation.child = child;
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, this.executionTimeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const output = stderr === '' ? stdout : `${stdout}${ERROR_MARKER}${stderr}`;
      const status: InvocationStatus = command.cancelled ? 'Cancelled' : timedOut ? 'TimedOut' : code === 0 ? 'Success' : 'Failed';
      this.finish(command, invocation, status, output, code ?? -1);
    });
  }

  private finish(command: LocalCommand, invocation: Invocation, status: InvocationStatus, output: string, code: number): void {
    invocation.Status = status;
    invocation.output = output;
    invocation.responseCode = code;
    if (command.logGroup) {
      const lines = this.logs.get(command.logGroup) ?? [];
      lines.push(`${command.CommandId}/${invocation.InstanceId}: ${output}`);
      this.logs.set(command.logGroup, lines);
    }
    this.emit({
      type: 'invocation',
      commandId: command.CommandId,
      step: command.Parameters.step![0]!,
      instanceId: invocation.InstanceId,
      status,
      output,
    });
    this.dispatch(command);
  }

  private emit(event: RunCommandEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
