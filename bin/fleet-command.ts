/**
 * `triggler fleet`: the operator's side of a fleet's rollouts, through the AWS SDK (Step
 * Functions and Systems Manager), from anywhere with credentials for the account.
 *
 *   status    the newest rollout and each host's step: status, run id, release, where its log is
 *   rollouts  rollouts newest first, with how each ended
 *   show      one rollout: its summary (finished), or the state it is in now (running)
 *   promote   let a rollout held after its canary go on (`rollout.hold`)
 *   rollback  roll the fleet back to the newest earlier release present on every host (or --to)
 *   rerun     roll the same commit out again, on only the hosts that failed with --failed-only
 *
 * The state machine is `--state-machine`, else TRIGGLER_ROLLOUT_STATE_MACHINE_ARN (the stack's
 * output names it); the region is `--region`, else the state machine's own.
 */
import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import { Command } from 'commander';
import { describeAwsError, ROLLOUT_HOLD_STATE, ROLLOUT_STATE_MACHINE_ENV, rolloutInput, rolloutInputOfInstances } from '../protocol';
import { RolloutStarter, stateMachineArnProblem } from '../lambda/rollout-starter';
import { FLEET_SUMMARY } from './fleet-command-loader';
import { rollbackPlan, type RollbackPlan } from './fleet-rollback-plan';
import {
  describeRollout,
  executionHistory,
  holdTaskToken,
  hostStatuses,
  hostStatusesOfSummary,
  listRollouts,
  newestState,
  outcomeOf,
  sentCommands,
  type FleetClients,
  type HostStatus,
  type RolloutRecord,
} from './fleet-rollouts';
import { positiveInt } from './send-command';
import { table } from './table';

interface FleetOptions {
  stateMachine?: string;
  region?: string;
}

interface TriggerOption {
  trigger?: string;
}

/** What the commands need from outside: the clients (tests give their own) and the output. */
export interface FleetCommandDependencies {
  clients?: (stateMachineArn: string, region: string | undefined) => Pick<FleetClients, 'sfn' | 'ssm'>;
  stdout?: (text: string) => void;
  /** Epoch milliseconds: names the deliveries of rollouts the CLI starts. @default Date.now */
  now?: () => number;
}

const TRIGGER = /^[^@\s]+@\S+$/;

function triggerOption(value: string): string {
  if (!TRIGGER.test(value)) throw new Error(`--trigger: "${value}" is not <repository>@<branch> (my-app@main)`);
  return value;
}

/** The state machine and region the flags and the environment name; an error names the flag. */
export function fleetTarget(options: FleetOptions, env: NodeJS.ProcessEnv = process.env): { stateMachineArn: string; region?: string } {
  const arn = options.stateMachine ?? env[ROLLOUT_STATE_MACHINE_ENV]?.trim();
  if (!arn) {
    throw new Error(
      `--state-machine: not given, and ${ROLLOUT_STATE_MACHINE_ENV} is not set. The stack's output RolloutStateMachineArn names it: ` +
        'aws cloudformation describe-stacks --stack-name <stack> --query "Stacks[0].Outputs"',
    );
  }
  const problem = stateMachineArnProblem(arn);
  if (problem) throw new Error(`--state-machine${options.stateMachine ? '' : ` (from ${ROLLOUT_STATE_MACHINE_ENV})`}: ${problem}`);
  return { stateMachineArn: arn, region: options.region ?? arn.split(':')[3] };
}

const when = (date: Date | undefined) => (date ? date.toISOString().replace(/\.\d+Z$/, 'Z') : '');
const took = (record: RolloutRecord) =>
  record.startDate && record.stopDate ? `${Math.round((record.stopDate.getTime() - record.startDate.getTime()) / 1000)}s` : '';

function rolloutsTable(records: readonly RolloutRecord[]): string {
  return table(
    ['ROLLOUT', 'TRIGGER', 'COMMIT', 'OUTCOME', 'STARTED', 'TOOK'],
    records.map((r) => [r.name, r.input?.trigger ?? '?', (r.input?.commit ?? '').slice(0, 12), outcomeOf(r), when(r.startDate), took(r)]),
  );
}

function hostsTable(hosts: readonly HostStatus[]): string {
  const rows = hosts.map((h) => [h.instanceId, h.step, h.status, h.result?.runId ?? '', h.result?.release ?? '', h.result?.error ?? '']);
  const text = table(['HOST', 'STEP', 'STATUS', 'RUN', 'RELEASE', 'ERROR'], rows);
  const logs = hosts.filter((h) => h.log);
  if (logs.length === 0) return text;
  const groups = [...new Set(logs.map((h) => h.log!.group))];
  return `${text}\n\nWhole output, in CloudWatch Logs group ${groups.join(', ')} (aws logs get-log-events --log-group-name <group> --log-stream-name <stream>):\n${table(
    ['HOST', 'LOG STREAM'],
    logs.map((h) => [h.instanceId, h.log!.stream]),
  )}`;
}

function rolloutHeader(record: RolloutRecord): string {
  const input = record.input;
  const lines = [
    `rollout  ${record.name}`,
    `trigger  ${input?.trigger ?? '?'}  commit ${input?.commit ?? '?'}`,
    `status   ${record.status}, ${outcomeOf(record)}${record.startDate ? `, started ${when(record.startDate)}` : ''}${record.stopDate ? `, ended ${when(record.stopDate)}` : ''}`,
  ];
  if (record.summary?.reason) lines.push(`reason   ${record.summary.reason}`);
  // A rollback that did not bring a host back leaves it on the rollout's commit: said beside the outcome, not only in the table.
  for (const host of record.summary?.hosts ?? []) {
    const rollback = host.rollback;
    if (rollback && rollback.invocation !== 'Success')
      lines.push(`not back ${host.instanceId}: ${rollback.result?.error ?? `its rollback ended ${rollback.invocation}`}`);
  }
  if (!record.summary && record.cause) lines.push(`cause    ${record.cause.slice(0, 500)}`);
  return lines.join('\n');
}

/** Each host's newest step: from the Run Command invocations, else (expired, or no command sent) from the summary. */
async function hostsOf(clients: FleetClients, record: RolloutRecord): Promise<HostStatus[]> {
  const fromCommands = await hostStatuses(clients, sentCommands(await executionHistory(clients, record.arn)));
  const fromSummary = record.summary ? hostStatusesOfSummary(record.summary) : [];
  const seen = new Set(fromCommands.map((h) => h.instanceId));
  return [...fromCommands, ...fromSummary.filter((h) => !seen.has(h.instanceId))];
}

/** The rollout an argument names, or the newest (of a trigger when given). */
async function chosenRollout(clients: FleetClients, id: string | undefined, options: TriggerOption): Promise<RolloutRecord> {
  if (id !== undefined) return describeRollout(clients, id);
  const [newest] = await listRollouts(clients, { limit: 1, ...(options.trigger ? { trigger: options.trigger } : {}) });
  if (!newest) throw new Error(`no rollouts${options.trigger ? ` of ${options.trigger}` : ''} in ${clients.stateMachineArn}`);
  return newest;
}

function describePlan(plan: RollbackPlan): string {
  return [
    `${plan.trigger}: from ${plan.current.commit} (rollout ${plan.current.rollout})`,
    `${' '.repeat(plan.trigger.length)}  to   ${plan.target.commit}${plan.target.rollout ? ` (rollout ${plan.target.rollout})` : ''}`,
    '',
    table(
      ['HOST', 'CURRENT RELEASE', 'ROLLS BACK TO'],
      plan.hosts.map((h) => [h.instanceId, h.currentRelease ?? '?', h.targetRelease ?? '(prepared again from the commit)']),
    ),
    '',
    'As a rollout of that commit: prepare on every host (reusing its release), canary, batches, rollback on failure.',
  ].join('\n');
}

export function fleetCommand(dependencies: FleetCommandDependencies = {}): Command {
  const out = dependencies.stdout ?? ((text: string) => void process.stdout.write(text));
  const now = dependencies.now ?? Date.now;

  const clientsFor = (options: FleetOptions): FleetClients => {
    const { stateMachineArn, region } = fleetTarget(options);
    const made = dependencies.clients?.(stateMachineArn, region) ?? {
      sfn: new SFNClient(region ? { region } : {}),
      ssm: new SSMClient(region ? { region } : {}),
    };
    return { ...made, stateMachineArn };
  };

  const withTarget = (command: Command): Command =>
    command
      .option(
        '--state-machine <arn>',
        `the rollout state machine (default: $${ROLLOUT_STATE_MACHINE_ENV}; the stack's output RolloutStateMachineArn)`,
      )
      .option('--region <region>', "AWS region (default: the state machine's)");
  const withTrigger = (command: Command): Command =>
    command.option('-t, --trigger <repository@branch>', 'only rollouts of this trigger', triggerOption);

  const fleet = new Command('fleet')
    .description(FLEET_SUMMARY)
    .addHelpText(
      'after',
      `\nEvery command needs the rollout state machine: --state-machine <arn>, or ${ROLLOUT_STATE_MACHINE_ENV} in the environment.\nCredentials and region come from the AWS SDK's usual places (AWS_PROFILE, ...); the region defaults to the state machine's.\n\nExamples:\n  export ${ROLLOUT_STATE_MACHINE_ENV}=arn:aws:states:eu-west-1:123456789012:stateMachine:FleetRollout\n  triggler fleet status --trigger my-app@main\n  triggler fleet rollback --trigger my-app@main          # shows the plan\n  triggler fleet rollback --trigger my-app@main --yes    # and starts it`,
    );

  fleet.addCommand(
    withTrigger(withTarget(new Command('status')))
      .description("the newest rollout and each host's step: status, run id, release, and where its whole output is")
      .option('--json', 'print JSON')
      .action(async (options: FleetOptions & TriggerOption & { json?: boolean }) => {
        const clients = clientsFor(options);
        const record = await chosenRollout(clients, undefined, options);
        const hosts = await hostsOf(clients, record);
        const state = record.status === 'RUNNING' ? newestState(await executionHistory(clients, record.arn)) : undefined;
        if (options.json) {
          out(`${JSON.stringify({ rollout: record, ...(state ? { state: state.name } : {}), hosts }, null, 2)}\n`);
          return;
        }
        out(
          `${rolloutHeader(record)}${state ? `\nnow in   ${state.name}` : ''}\n\n${hosts.length ? hostsTable(hosts) : 'no host has run a step yet'}\n`,
        );
      }),
  );

  fleet.addCommand(
    withTrigger(withTarget(new Command('rollouts')))
      .description('rollouts newest first, with how each ended (succeeded, failed, rolled-back, superseded, running, stopped)')
      .option('-n, --limit <n>', 'how many', positiveInt, 20)
      .option('--json', 'print JSON')
      .action(async (options: FleetOptions & TriggerOption & { limit: number; json?: boolean }) => {
        const records = await listRollouts(clientsFor(options), {
          limit: options.limit,
          ...(options.trigger ? { trigger: options.trigger } : {}),
        });
        if (options.json) out(`${JSON.stringify(records, null, 2)}\n`);
        else out(records.length ? `${rolloutsTable(records)}\n` : 'no rollouts yet\n');
      }),
  );

  fleet.addCommand(
    withTarget(new Command('show'))
      .description("one rollout: a finished one's summary (each host's steps), or the state a running one is in and its data")
      .argument('<id>', 'the rollout: its execution name (from `fleet rollouts`) or ARN')
      .option('--json', 'print JSON')
      .action(async (id: string, options: FleetOptions & { json?: boolean }) => {
        const clients = clientsFor(options);
        const record = await describeRollout(clients, id);
        const state = record.status === 'RUNNING' ? newestState(await executionHistory(clients, record.arn)) : undefined;
        if (options.json) {
          out(`${JSON.stringify({ ...record, ...(state ? { state } : {}) }, null, 2)}\n`);
          return;
        }
        const parts = [rolloutHeader(record)];
        if (record.summary) parts.push(hostsTable(hostStatusesOfSummary(record.summary)));
        if (state)
          parts.push(
            `now in ${state.name}${state.enteredAt ? ` since ${when(state.enteredAt)}` : ''}, with:\n${JSON.stringify(state.data, null, 2)}`,
          );
        out(`${parts.join('\n\n')}\n`);
      }),
  );

  fleet.addCommand(
    withTrigger(withTarget(new Command('promote')))
      .description(`let a rollout held after its canary go on to the batches (the state "${ROLLOUT_HOLD_STATE}", rollout.hold)`)
      .argument('[id]', 'the rollout (default: the one running rollout waiting there)')
      .action(async (id: string | undefined, options: FleetOptions & TriggerOption) => {
        const clients = clientsFor(options);
        let candidates: RolloutRecord[];
        if (id !== undefined) candidates = [await describeRollout(clients, id)];
        else
          candidates = await listRollouts(clients, {
            limit: 100,
            status: 'RUNNING',
            ...(options.trigger ? { trigger: options.trigger } : {}),
          });
        const waiting: { record: RolloutRecord; token: string }[] = [];
        const problems: string[] = [];
        for (const record of candidates) {
          if (record.status !== 'RUNNING') {
            problems.push(`${record.name} is ${outcomeOf(record)}, not running`);
            continue;
          }
          const hold = holdTaskToken(await executionHistory(clients, record.arn));
          if (hold.token) waiting.push({ record, token: hold.token });
          else problems.push(`${record.name}: ${hold.problem}`);
        }
        if (waiting.length === 0) {
          throw new Error(
            `no rollout waits for promotion${options.trigger ? ` of ${options.trigger}` : ''}${problems.length ? `: ${problems.join('; ')}` : ''}`,
          );
        }
        if (waiting.length > 1) {
          throw new Error(
            `${waiting.length} rollouts wait for promotion; name one (<id>) or pass --trigger: ${waiting.map((w) => w.record.name).join(', ')}`,
          );
        }
        const [{ record, token }] = waiting as [{ record: RolloutRecord; token: string }];
        await clients.sfn
          .send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify({ promotedAt: new Date(now()).toISOString() }) }))
          .catch((error: unknown) => {
            throw new Error(`Step Functions refused the promotion of ${record.name}: ${describeAwsError(error)}`, { cause: error });
          });
        out(
          `promoted ${record.name} (${record.input?.trigger ?? '?'} ${record.input?.commit?.slice(0, 12) ?? ''}): it goes on to the batches\n`,
        );
      }),
  );

  fleet.addCommand(
    withTarget(new Command('rollback'))
      .description(
        'roll the fleet back: with no --to, to the newest earlier commit whose release is on every host; shows the plan, acts with --yes',
      )
      .option(
        '-t, --trigger <repository@branch>',
        'the trigger to roll back (needed when rollouts of several triggers are in the records)',
        triggerOption,
      )
      .option('--to <commit>', 'the commit to go back to (a whole id, or a prefix of one a rollout deployed)')
      .option('-y, --yes', 'start the rollback; without it only the plan is shown')
      .option('--history <n>', 'how many of the newest rollouts to read for the plan', positiveInt, 100)
      .addHelpText(
        'after',
        "\nThe hosts and their releases are read from the rollouts' records: the fleet is the instances of the newest successful rollout of every host (and of the re-runs on some hosts since), a host has a release of each commit its prepare step laid out. The rollback is a rollout of the older commit, so it gets the same canary, batches and failure policy, and the fleet's commit parameter (what new hosts converge to) moves back with it. A release a host has since pruned is prepared again from its commit.",
      )
      .action(async (options: FleetOptions & TriggerOption & { to?: string; yes?: boolean; history: number }) => {
        const clients = clientsFor(options);
        const records = await listRollouts(clients, { limit: options.history, ...(options.trigger ? { trigger: options.trigger } : {}) });
        const triggers = [...new Set(records.flatMap((r) => (r.input ? [r.input.trigger] : [])))];
        if (triggers.length === 0)
          throw new Error(
            `no rollouts${options.trigger ? ` of ${options.trigger}` : ''} in ${clients.stateMachineArn}: nothing to roll back`,
          );
        if (triggers.length > 1)
          throw new Error(`--trigger: rollouts of ${triggers.join(', ')} are in the records; name the one to roll back`);
        const plan = rollbackPlan(records, options.to);
        if ('problem' in plan) throw new Error(`${triggers[0]}: ${plan.problem}`);
        out(`${describePlan(plan)}\n`);
        if (!options.yes) {
          out('\nNothing started: run again with --yes to roll back.\n');
          return;
        }
        const input = rolloutInput(plan.repository, plan.branch, plan.target.commit, `triggler-fleet-rollback-${now()}`);
        const started = await new RolloutStarter(clients.sfn, clients.stateMachineArn).startInput(input);
        out(`\nstarted rollout ${started.executionName}: follow it with triggler fleet status --trigger ${plan.trigger}\n`);
      }),
  );

  fleet.addCommand(
    withTrigger(withTarget(new Command('rerun')))
      .description("roll a rollout's commit out again: on every host, or with --failed-only on the hosts that failed in it")
      .argument('[id]', 'the rollout (default: the newest finished one, of --trigger when given)')
      .option('--failed-only', 'only the hosts whose step failed (the rollout input names them: instances)')
      .addHelpText(
        'after',
        "\nA re-run is a new rollout of the same commit (prepare reuses each host's good release), started with the input field `instances` when --failed-only: the rollout then uses those instances, of those still in the fleet, instead of every instance with the fleet tag. It waits its turn behind a running rollout of the trigger like any push.",
      )
      .action(async (id: string | undefined, options: FleetOptions & TriggerOption & { failedOnly?: boolean }) => {
        const clients = clientsFor(options);
        let record: RolloutRecord | undefined;
        if (id !== undefined) record = await describeRollout(clients, id);
        else {
          const records = await listRollouts(clients, { limit: 20, ...(options.trigger ? { trigger: options.trigger } : {}) });
          record = records.find((r) => r.status !== 'RUNNING');
          if (!record)
            throw new Error(
              `no finished rollout${options.trigger ? ` of ${options.trigger}` : ''} among the newest ${records.length}: name one (<id>)`,
            );
        }
        if (record.status === 'RUNNING') throw new Error(`${record.name} is still running: re-run it once it has finished`);
        if (!record.input) throw new Error(`${record.name} has no rollout input to run again`);
        const base = rolloutInput(
          record.input.repository,
          record.input.branch,
          record.input.commit,
          `triggler-fleet-rerun-${record.name}-${now()}`,
        );
        let input = base;
        if (options.failedOnly) {
          if (!record.summary)
            throw new Error(
              `${record.name} left no summary (${outcomeOf(record)}): which hosts failed is unknown; rerun without --failed-only`,
            );
          // Only a rollout that went through leaves the other hosts on its commit: after a rollback
          // (or a failed prepare) they are on the previous one, and switching only some would split the fleet.
          if (record.summary.outcome !== 'succeeded') {
            throw new Error(
              `--failed-only: ${record.name} ended ${record.summary.outcome}, so no host runs its commit; rerun without --failed-only`,
            );
          }
          const failed = record.summary.hosts
            .filter((host) => [host.prepare, host.switch].some((step) => step !== undefined && step.invocation !== 'Success'))
            .map((host) => host.instanceId);
          if (failed.length === 0) {
            out(`no host failed in ${record.name}: nothing to re-run\n`);
            return;
          }
          input = rolloutInputOfInstances(base, failed);
        }
        const started = await new RolloutStarter(clients.sfn, clients.stateMachineArn).startInput(input);
        out(
          `started rollout ${started.executionName} of ${input.trigger} ${input.commit.slice(0, 12)} on ${input.instances ? input.instances.join(', ') : 'every host'}\n`,
        );
      }),
  );

  return fleet;
}
