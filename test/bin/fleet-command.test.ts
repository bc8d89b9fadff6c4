/**
 * `triggler fleet ...`: the real CLI as a child process, its Step Functions and Systems Manager
 * calls answered by aws-sdk-client-mock inside it (test/support/fleet-cli). Each test says what AWS
 * holds (executions, their summaries and histories, Run Command invocations) and checks what the
 * CLI prints and every call it makes.
 */
import { rolloutExecutionName, rolloutInput, rolloutInputOfInstances, ROLLOUT_HOLD_STATE, type RolloutSummary } from '../../protocol';
import { runFleetCli, type AwsAnswer } from '../support/fleet-cli';

const REGION = 'eu-west-1';
const STATE_MACHINE = `arn:aws:states:${REGION}:123456789012:stateMachine:FleetRollout`;
const ENV = { TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: STATE_MACHINE };
const TRIGGER = 'my-app@main';
const [C1, C2, C3, C4] = ['1', '2', '3', '4'].map((digit) => digit.repeat(40)) as [string, string, string, string];
const HOSTS = ['i-0aaa', 'i-0bbb', 'i-0ccc'];

const executionArn = (name: string) => `arn:aws:states:${REGION}:123456789012:execution:FleetRollout:${name}`;

interface Execution {
  name: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  commit: string;
  trigger?: string;
  summary?: Partial<RolloutSummary>;
  startDate: string;
  /** The input's instances: a rollout of only these hosts (`rerun --failed-only`). */
  instances?: string[];
}

function execution(
  n: number,
  status: Execution['status'],
  commit: string,
  summary?: Partial<RolloutSummary>,
  trigger = TRIGGER,
): Execution {
  return {
    name: rolloutExecutionName(trigger, `delivery-${n}`),
    status,
    commit,
    trigger,
    ...(summary ? { summary } : {}),
    startDate: `2026-12-0${n}T10:00:00Z`,
  };
}

/** A summary in which each host prepared and switched the commit (each its own release), but the failed ones. */
function summaryOf(
  commit: string,
  outcome: RolloutSummary['outcome'],
  hosts = HOSTS,
  failedSwitch: string[] = [],
): Partial<RolloutSummary> {
  return {
    outcome,
    commit,
    trigger: TRIGGER,
    repository: 'my-app',
    branch: 'main',
    instances: hosts,
    ...(outcome === 'succeeded' ? {} : { reason: 'the canary health check failed' }),
    hosts: hosts.map((instanceId) => ({
      instanceId,
      prepare: {
        invocation: 'Success',
        result: {
          status: 'succeeded',
          runId: `r_prep_${instanceId}`,
          release: `rel-${commit.slice(0, 4)}-${instanceId}`,
          commit,
          host: instanceId,
        },
      },
      switch: failedSwitch.includes(instanceId)
        ? {
            invocation: 'Failed',
            result: {
              status: 'rolled-back',
              runId: `r_sw_${instanceId}`,
              release: null,
              commit,
              host: instanceId,
              error: 'health check failed',
            },
          }
        : {
            invocation: 'Success',
            result: {
              status: 'succeeded',
              runId: `r_sw_${instanceId}`,
              release: `rel-${commit.slice(0, 4)}-${instanceId}`,
              commit,
              host: instanceId,
            },
          },
    })),
  };
}

/** What Step Functions holds of these executions: ListExecutions (newest first) and DescribeExecution of each. */
function executionsAnswers(executions: Execution[]): AwsAnswer[] {
  return [
    {
      client: 'sfn',
      command: 'ListExecutions',
      output: {
        executions: executions.map((e) => ({
          executionArn: executionArn(e.name),
          stateMachineArn: STATE_MACHINE,
          name: e.name,
          status: e.status,
          startDate: e.startDate,
        })),
      },
    },
    {
      client: 'sfn',
      command: 'ListExecutions',
      input: { statusFilter: 'RUNNING' },
      output: {
        executions: executions
          .filter((e) => e.status === 'RUNNING')
          .map((e) => ({ executionArn: executionArn(e.name), name: e.name, status: e.status, startDate: e.startDate })),
      },
    },
    ...executions.map((e): AwsAnswer => {
      const [repository, branch] = (e.trigger ?? TRIGGER).split('@') as [string, string];
      const whole = rolloutInput(repository, branch, e.commit, `delivery-${e.name}`);
      const input = e.instances ? rolloutInputOfInstances(whole, e.instances) : whole;
      const summary = e.summary ? JSON.stringify({ ...input, ...e.summary }) : undefined;
      return {
        client: 'sfn',
        command: 'DescribeExecution',
        input: { executionArn: executionArn(e.name) },
        output: {
          executionArn: executionArn(e.name),
          stateMachineArn: STATE_MACHINE,
          name: e.name,
          status: e.status,
          startDate: e.startDate,
          ...(e.status === 'RUNNING' ? {} : { stopDate: e.startDate.replace('10:00:00', '10:04:10') }),
          input: JSON.stringify(input),
          ...(e.status === 'SUCCEEDED' && summary ? { output: summary } : {}),
          ...(e.status === 'FAILED' && summary ? { error: 'RolloutFailed', cause: summary } : {}),
        },
      };
    }),
  ];
}

function history(name: string, events: Record<string, unknown>[]): AwsAnswer {
  return {
    client: 'sfn',
    command: 'GetExecutionHistory',
    input: { executionArn: executionArn(name) },
    output: { events: events.map((event, i) => ({ id: i + 1, timestamp: `2026-12-09T10:0${i}:00Z`, ...event })) },
  };
}

const entered = (name: string, input: unknown = {}) => ({
  type: 'TaskStateEntered',
  stateEnteredEventDetails: { name, input: JSON.stringify(input) },
});
const sentCommand = (commandId: string, step: string, instanceIds: string[]) => ({
  type: 'TaskSucceeded',
  taskSucceededEventDetails: {
    resourceType: 'aws-sdk:ssm',
    resource: 'sendCommand',
    output: JSON.stringify({
      Command: {
        CommandId: commandId,
        DocumentName: 'triggler-fleet-step',
        InstanceIds: instanceIds,
        Parameters: { step: [step] },
        CloudWatchOutputConfig: { CloudWatchLogGroupName: '/triggler/fleet-steps', CloudWatchOutputEnabled: true },
      },
    }),
  },
});

describe('reading rollouts', () => {
  const running = execution(9, 'RUNNING', C4);
  const succeeded = execution(8, 'SUCCEEDED', C3, summaryOf(C3, 'succeeded'));
  const rolledBack = execution(7, 'FAILED', C2, summaryOf(C2, 'rolled-back', HOSTS, ['i-0aaa']));
  const otherTrigger = execution(6, 'SUCCEEDED', C1, { ...summaryOf(C1, 'succeeded'), trigger: 'site@main' }, 'site@main');
  const answers = executionsAnswers([running, succeeded, rolledBack, otherTrigger]);

  it('`rollouts` lists them newest first with how each ended; --trigger keeps one trigger', async () => {
    const all = await runFleetCli(['rollouts'], answers, ENV);
    expect(all.stderr).toBe('');
    const lines = all.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ROLLOUT\s+TRIGGER\s+COMMIT\s+OUTCOME\s+STARTED\s+TOOK$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/).slice(0, 4))).toEqual([
      [running.name, TRIGGER, C4.slice(0, 12), 'running'],
      [succeeded.name, TRIGGER, C3.slice(0, 12), 'succeeded'],
      [rolledBack.name, TRIGGER, C2.slice(0, 12), 'rolled-back'],
      [otherTrigger.name, 'site@main', C1.slice(0, 12), 'succeeded'],
    ]);
    expect(lines[2]).toContain('250s');
    expect(all.calls.filter((c) => c.command === 'ListExecutions')[0]!.input).toMatchObject({ stateMachineArn: STATE_MACHINE });

    const one = await runFleetCli(['rollouts', '--trigger', 'site@main', '--json'], answers, ENV);
    const records = JSON.parse(one.stdout) as { name: string; summary: RolloutSummary }[];
    expect(records.map((r) => r.name)).toEqual([otherTrigger.name]);
    // Executions of other triggers are told apart by their name, without being described.
    expect(one.calls.filter((c) => c.command === 'DescribeExecution').map((c) => c.input.executionArn)).toEqual([
      executionArn(otherTrigger.name),
    ]);
  });

  it("`status` shows the newest rollout's hosts from Run Command: status, run id, release and the log stream", async () => {
    const output = (instance: string, release: string) =>
      `fetching...\n${JSON.stringify({ status: 'succeeded', runId: `r_${instance}`, release, commit: C4, host: `ip-${instance}` })}\n`;
    const result = await runFleetCli(
      ['status', '--trigger', TRIGGER],
      [
        ...answers,
        history(running.name, [
          entered('Snapshot the fleet'),
          entered('Prepare everywhere'),
          sentCommand('cmd-prepare', 'prepare', HOSTS),
          entered('Switch the canary'),
          sentCommand('cmd-canary', 'switch', ['i-0aaa']),
        ]),
        {
          client: 'ssm',
          command: 'ListCommandInvocations',
          input: { CommandId: 'cmd-prepare' },
          output: {
            CommandInvocations: HOSTS.map((instance) => ({
              CommandId: 'cmd-prepare',
              InstanceId: instance,
              Status: 'Success',
              StatusDetails: 'Success',
              CloudWatchOutputConfig: { CloudWatchLogGroupName: '/triggler/fleet-steps', CloudWatchOutputEnabled: true },
              CommandPlugins: [{ Name: 'fleetStep', Status: 'Success', Output: output(instance, `rel-prep-${instance}`) }],
            })),
          },
        },
        {
          client: 'ssm',
          command: 'ListCommandInvocations',
          input: { CommandId: 'cmd-canary' },
          output: {
            CommandInvocations: [
              {
                CommandId: 'cmd-canary',
                InstanceId: 'i-0aaa',
                Status: 'InProgress',
                StatusDetails: 'InProgress',
                CommandPlugins: [{ Name: 'fleetStep', Status: 'InProgress', Output: '' }],
              },
            ],
          },
        },
      ],
      ENV,
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain(`rollout  ${running.name}`);
    expect(result.stdout).toContain('now in   Switch the canary');
    const rows = result.stdout.split('\n').filter((line) => /^i-0/.test(line));
    expect(rows.slice(0, 3).map((line) => line.split(/\s+/))).toEqual([
      ['i-0aaa', 'switch', 'InProgress'],
      ['i-0bbb', 'prepare', 'Success', 'r_i-0bbb', 'rel-prep-i-0bbb'],
      ['i-0ccc', 'prepare', 'Success', 'r_i-0ccc', 'rel-prep-i-0ccc'],
    ]);
    expect(result.stdout).toContain('CloudWatch Logs group /triggler/fleet-steps');
    // The canary's invocation has no log group of its own in this answer: the command's is used.
    expect(rows.slice(3)).toEqual([
      expect.stringMatching(/^i-0aaa\s+cmd-canary\/i-0aaa\/fleetStep\/stdout$/),
      expect.stringMatching(/^i-0bbb\s+cmd-prepare\/i-0bbb\/fleetStep\/stdout$/),
      expect.stringMatching(/^i-0ccc\s+cmd-prepare\/i-0ccc\/fleetStep\/stdout$/),
    ]);
  });

  it('`status` of a rollout whose commands Run Command no longer keeps reads each host from the summary', async () => {
    const result = await runFleetCli(
      ['status', '--trigger', 'my-app@main', '--json'],
      [
        ...executionsAnswers([succeeded]),
        history(succeeded.name, [sentCommand('cmd-expired', 'switch', HOSTS)]),
        { client: 'ssm', command: 'ListCommandInvocations', error: { name: 'InvalidCommandId', message: 'InvalidCommandId' } },
      ],
      ENV,
    );
    expect(result.stderr).toBe('');
    const { hosts } = JSON.parse(result.stdout) as {
      hosts: { instanceId: string; step: string; status: string; result: { release: string } }[];
    };
    expect(hosts.map((h) => [h.instanceId, h.step, h.status, h.result.release])).toEqual(
      HOSTS.map((host) => [host, 'switch', 'Success', `rel-3333-${host}`]),
    );
  });

  it('`show` reads the summary of a finished rollout (its cause when it failed), and the newest state of a running one', async () => {
    const failed = await runFleetCli(['show', rolledBack.name], answers, ENV);
    expect(failed.stdout).toContain('status   FAILED, rolled-back');
    expect(failed.stdout).toContain('reason   the canary health check failed');
    expect(failed.stdout).toMatch(/i-0aaa\s+switch\s+Failed\s+r_sw_i-0aaa\s+health check failed/);
    expect(failed.stdout).toMatch(/i-0bbb\s+switch\s+Success\s+r_sw_i-0bbb\s+rel-2222-i-0bbb/);
    expect(failed.calls.map((c) => c.command)).toEqual(['DescribeExecution']);

    // A host its rollback did not bring back is named beside the outcome, with the reason its step gave.
    const stayed = execution(5, 'FAILED', C1, {
      ...summaryOf(C1, 'rolled-back'),
      hosts: [
        {
          ...summaryOf(C1, 'rolled-back').hosts![0]!,
          rollback: {
            invocation: 'Failed',
            result: {
              status: 'nothing-to-roll-back',
              runId: null,
              release: 'rel-1111-i-0aaa',
              commit: C1,
              host: 'i-0aaa',
              error: 'nothing to roll back to: ...',
            },
          },
        },
      ],
    });
    const notBack = await runFleetCli(['show', stayed.name], executionsAnswers([stayed]), ENV);
    expect(notBack.stdout).toContain('status   FAILED, rolled-back');
    expect(notBack.stdout).toContain('not back i-0aaa: nothing to roll back to: ...');
    expect(failed.stdout).not.toContain('not back');

    const live = await runFleetCli(
      ['show', executionArn(running.name), '--json'],
      [...answers, history(running.name, [entered('Snapshot the fleet'), entered('Bake', { bakeSeconds: 300, canary: ['i-0aaa'] })])],
      ENV,
    );
    expect(JSON.parse(live.stdout)).toMatchObject({
      name: running.name,
      status: 'RUNNING',
      state: { name: 'Bake', data: { bakeSeconds: 300, canary: ['i-0aaa'] } },
    });
  });
});

describe('acting on rollouts', () => {
  it('`promote` sends the task token the hold state waits on, and says why when none waits', async () => {
    const held = execution(9, 'RUNNING', C4);
    const waiting = history(held.name, [
      entered('Switch the canary'),
      entered(ROLLOUT_HOLD_STATE),
      {
        type: 'TaskScheduled',
        taskScheduledEventDetails: {
          resourceType: 'dynamodb',
          resource: 'updateItem.waitForTaskToken',
          region: REGION,
          // What the state machine's hold task schedules (lib/constructs/fleet-rollout.ts).
          parameters: JSON.stringify({
            TableName: 'Rollouts',
            Key: { trigger: { S: TRIGGER } },
            UpdateExpression: 'SET holdToken = :taskToken',
            ExpressionAttributeValues: { ':taskToken': { S: 'AQCEAAAAKgAAAA-token' } },
          }),
        },
      },
    ]);
    const promoted = await runFleetCli(
      ['promote'],
      [...executionsAnswers([held]), waiting, { client: 'sfn', command: 'SendTaskSuccess', output: {} }],
      ENV,
    );
    expect(promoted.stderr).toBe('');
    expect(promoted.stdout).toContain(`promoted ${held.name}`);
    const sent = promoted.calls.filter((c) => c.command === 'SendTaskSuccess');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.input.taskToken).toBe('AQCEAAAAKgAAAA-token');
    expect(JSON.parse(sent[0]!.input.output as string)).toHaveProperty('promotedAt');

    const baking = await runFleetCli(['promote'], [...executionsAnswers([held]), history(held.name, [entered('Bake')])], ENV);
    expect(baking.code).toBe(1);
    expect(baking.stderr).toContain(
      `no rollout waits for promotion: ${held.name}: it is not in the state "${ROLLOUT_HOLD_STATE}" (is rollout.hold on?)`,
    );
    expect(baking.calls.some((c) => c.command === 'SendTaskSuccess')).toBe(false);
  });

  // The fleet: i-0ccc joined after the rollout of C2, so only C1 and C3 have releases on every host.
  const current = execution(8, 'SUCCEEDED', C3, summaryOf(C3, 'succeeded'));
  const failedSinceC2 = execution(7, 'FAILED', C4, summaryOf(C4, 'rolled-back', HOSTS, ['i-0aaa']));
  const onTwoHosts = execution(6, 'SUCCEEDED', C2, summaryOf(C2, 'succeeded', ['i-0aaa', 'i-0bbb']));
  const onAll = execution(5, 'SUCCEEDED', C1, summaryOf(C1, 'succeeded'));
  const rollbackAnswers = [
    ...executionsAnswers([current, failedSinceC2, onTwoHosts, onAll]),
    {
      client: 'sfn',
      command: 'StartExecution',
      output: { executionArn: executionArn('x'), startDate: '2026-12-09T11:00:00Z' },
    } as AwsAnswer,
  ];

  it('`rollback` with no version picks the newest earlier release on every host, shows the plan, and acts only with --yes', async () => {
    const plan = await runFleetCli(['rollback'], rollbackAnswers, ENV);
    expect(plan.stderr).toBe('');
    expect(plan.stdout).toContain(`${TRIGGER}: from ${C3} (rollout ${current.name})`);
    expect(plan.stdout).toContain(`to   ${C1} (rollout ${onAll.name})`);
    for (const host of HOSTS) expect(plan.stdout).toMatch(new RegExp(`${host}\\s+rel-3333-${host}\\s+rel-1111-${host}`));
    expect(plan.stdout).toContain('Nothing started: run again with --yes to roll back.');
    expect(plan.calls.some((c) => c.command === 'StartExecution')).toBe(false);

    const acted = await runFleetCli(['rollback', '--yes'], rollbackAnswers, ENV);
    const [start] = acted.calls.filter((c) => c.command === 'StartExecution');
    const input = JSON.parse(start!.input.input as string) as ReturnType<typeof rolloutInput>;
    expect(input).toEqual(rolloutInput('my-app', 'main', C1, input.deliveryId));
    expect(start!.input).toMatchObject({ stateMachineArn: STATE_MACHINE, name: rolloutExecutionName(TRIGGER, input.deliveryId) });
    expect(acted.stdout).toContain(`started rollout ${start!.input.name as string}`);

    const named = await runFleetCli(['rollback', '--to', C2.slice(0, 8)], rollbackAnswers, ENV);
    expect(named.stdout).toContain(`to   ${C2} (rollout ${onTwoHosts.name})`);
    expect(named.stdout).toMatch(/i-0ccc\s+rel-3333-i-0ccc\s+\(prepared again from the commit\)/);

    const unknown = await runFleetCli(['rollback', '--to', 'abcdef0'], rollbackAnswers, ENV);
    expect([unknown.code, unknown.stderr]).toEqual([
      1,
      `triggler: ${TRIGGER}: --to: no rollout of this trigger deployed a commit starting abcdef0; give the whole commit id\n`,
    ]);
  });

  it('`rollback` after a re-run on one host plans for the whole fleet, not only that host', async () => {
    const rerunOnOne = { ...execution(6, 'SUCCEEDED', C2, summaryOf(C2, 'succeeded', ['i-0ccc'])), instances: ['i-0ccc'] };
    const whole = execution(5, 'SUCCEEDED', C2, summaryOf(C2, 'succeeded', HOSTS, ['i-0ccc']));
    const before = execution(4, 'SUCCEEDED', C1, summaryOf(C1, 'succeeded'));
    const plan = await runFleetCli(['rollback'], executionsAnswers([rerunOnOne, whole, before]), ENV);
    expect(plan.stderr).toBe('');
    expect(plan.stdout).toContain(`to   ${C1} (rollout ${before.name})`);
    for (const host of HOSTS) expect(plan.stdout).toMatch(new RegExp(`^${host}\\s+rel-2222-${host}\\s+rel-1111-${host}$`, 'm'));
  });

  it('`rollback` after the first-ever rollout refuses: there is no earlier commit', async () => {
    const result = await runFleetCli(['rollback', '--yes'], executionsAnswers([onAll]), ENV);
    expect([result.code, result.stderr]).toEqual([
      1,
      `triggler: ${TRIGGER}: ${C1.slice(0, 12)} is the only commit a rollout of this trigger deployed in the records read: there is no earlier one to roll back to (read more of them with --history)\n`,
    ]);
    expect(result.calls.some((c) => c.command === 'StartExecution')).toBe(false);
  });

  it('`rollback` needs --trigger when the records hold several triggers', async () => {
    const other = execution(4, 'SUCCEEDED', C1, { ...summaryOf(C1, 'succeeded'), trigger: 'site@main' }, 'site@main');
    const result = await runFleetCli(['rollback'], executionsAnswers([current, other]), ENV);
    expect([result.code, result.stderr]).toEqual([
      1,
      'triggler: --trigger: rollouts of my-app@main, site@main are in the records; name the one to roll back\n',
    ]);
  });

  it('`rerun --failed-only` rolls the same commit out on only the hosts that failed, named in the input', async () => {
    const partly = execution(8, 'SUCCEEDED', C3, summaryOf(C3, 'succeeded', HOSTS, ['i-0bbb']));
    const result = await runFleetCli(
      ['rerun', partly.name, '--failed-only'],
      [...executionsAnswers([partly]), { client: 'sfn', command: 'StartExecution', output: { executionArn: executionArn('y') } }],
      ENV,
    );
    expect(result.stderr).toBe('');
    const [start] = result.calls.filter((c) => c.command === 'StartExecution');
    const input = JSON.parse(start!.input.input as string) as Record<string, unknown>;
    expect(input).toEqual({ ...rolloutInput('my-app', 'main', C3, input.deliveryId as string), instances: ['i-0bbb'] });
    expect(result.stdout).toContain(`of ${TRIGGER} ${C3.slice(0, 12)} on i-0bbb`);

    const rolled = await runFleetCli(['rerun', failedSinceC2.name, '--failed-only'], executionsAnswers([failedSinceC2]), ENV);
    expect(rolled.code).toBe(1);
    expect(rolled.stderr).toContain(
      `--failed-only: ${failedSinceC2.name} ended rolled-back, so no host runs its commit; rerun without --failed-only`,
    );
    expect(rolled.calls.some((c) => c.command === 'StartExecution')).toBe(false);
  });
});

describe('asking the operator', () => {
  it('names the flag that is missing or wrong, before any AWS call', async () => {
    const none = await runFleetCli(['rollouts'], []);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('triggler: --state-machine: not given, and TRIGGLER_ROLLOUT_STATE_MACHINE_ARN is not set');
    const bad = await runFleetCli(['status', '--state-machine', 'FleetRollout'], []);
    expect(bad.stderr).toContain('--state-machine: must be a state machine ARN');
    const trigger = await runFleetCli(['status', '--trigger', 'my-app'], [], ENV);
    expect(trigger.stderr).toContain('--trigger: "my-app" is not <repository>@<branch> (my-app@main)');
    expect([...none.calls, ...bad.calls, ...trigger.calls]).toEqual([]);
  });

  it('says in --help what the commands need and do', async () => {
    const help = await runFleetCli(['--help'], []);
    for (const command of ['status', 'rollouts', 'show', 'promote', 'rollback', 'rerun'])
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    expect(help.stdout).toContain('--state-machine <arn>, or TRIGGLER_ROLLOUT_STATE_MACHINE_ARN');
    const rollback = await runFleetCli(['rollback', '--help'], []);
    expect(rollback.stdout).toContain('--yes');
    expect(rollback.stdout.replace(/\s+/g, ' ')).toContain(
      'to the newest earlier commit whose release is on every host; shows the plan, acts with --yes',
    );
  });
});
