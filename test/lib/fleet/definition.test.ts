/** The synthesized rollout definition and the state machine role's grants, and its batch sizing run alone. */
import '../../support/fleet/promise-with-resolvers';
import { StateMachine } from 'aws-local-stepfunctions';
import { ROLLOUT_HOLD_STATE } from '../../../protocol/rollout';
import { INSTANCE_IDS_PER_COMMAND, nextPollWaits } from '../../../lib/constructs/fleet-rollout';
import { synthesizeRollout, LOCAL_AWS, LOCAL_FLEET_PROPS } from '../../support/fleet/synthesized-rollout';

const SETTINGS = { canary: 1, batchSize: '25%', maxFailedHosts: 1, bakeSeconds: 60, alarms: ['app-errors', 'app-latency'], hold: true };

function tasks(definition: Record<string, unknown>): Array<[string, string]> {
  return Object.entries(definition.States as Record<string, Record<string, unknown>>).flatMap(([name, state]) => [
    ...(state.Type === 'Task' ? [[name, state.Resource as string] as [string, string]] : []),
    ...[
      ...((state.Branches as Array<Record<string, unknown>>) ?? []),
      ...(state.ItemProcessor ? [state.ItemProcessor as Record<string, unknown>] : []),
    ].flatMap(tasks),
  ]);
}

describe('the rollout definition', () => {
  const { definition, statements } = synthesizeRollout(SETTINGS);

  it('calls AWS through SDK integrations only (no Lambda), and holds on a task token in the named state', () => {
    const resources = tasks(definition);
    for (const [, resource] of resources)
      expect(resource).toMatch(/^arn:aws:states:::aws-sdk:(ssm|dynamodb|cloudwatch|sfn):[a-zA-Z]+(\.waitForTaskToken)?$/);
    expect(Object.fromEntries(resources)[ROLLOUT_HOLD_STATE]).toBe('arn:aws:states:::aws-sdk:dynamodb:updateItem.waitForTaskToken');
    expect(new Set(resources.map(([, resource]) => resource.split(':').slice(-2).join(':')))).toEqual(
      new Set([
        'dynamodb:updateItem',
        'dynamodb:getItem',
        'dynamodb:updateItem.waitForTaskToken',
        'sfn:describeExecution',
        'ssm:getParameter',
        'ssm:describeInstanceInformation',
        'ssm:sendCommand',
        'ssm:listCommands',
        'ssm:cancelCommand',
        'ssm:listCommandInvocations',
        'ssm:putParameter',
        'cloudwatch:describeAlarms',
      ]),
    );
    expect(JSON.stringify(definition)).not.toMatch(/JSONata|lambda:invoke/i);
  });

  it("grants the role only what its steps need: the document, the fleet's tagged instances, the table, the alarms, the commit parameters, its own executions", () => {
    const arn = (service: string, resource: string) => `arn:aws:${service}:${LOCAL_AWS.region}:${LOCAL_AWS.account}:${resource}`;
    const grants = statements.map((statement) => [
      [statement.Action].flat().join(),
      [statement.Resource].flat().join(),
      statement.Condition ?? null,
    ]);
    expect(grants).toEqual(
      expect.arrayContaining([
        ['ssm:sendCommand', arn('ssm', `document/${LOCAL_FLEET_PROPS.documentName}`), null],
        ['ssm:SendCommand', arn('ec2', 'instance/*'), { StringEquals: { 'ssm:resourceTag/triggler:fleet': 'local' } }],
        ['dynamodb:updateItem', arn('dynamodb', `table/${LOCAL_AWS.tableName}`), null],
        ['dynamodb:getItem', arn('dynamodb', `table/${LOCAL_AWS.tableName}`), null],
        ['cloudwatch:describeAlarms', `${arn('cloudwatch', 'alarm:app-errors')},${arn('cloudwatch', 'alarm:app-latency')}`, null],
        ['ssm:getParameter', arn('ssm', 'parameter/triggler/fleet/*'), null],
        ['ssm:putParameter', arn('ssm', 'parameter/triggler/fleet/*'), null],
        ['states:DescribeExecution', arn('states', `execution:${LOCAL_AWS.stateMachineName}:*`), null],
      ]),
    );
    // Wildcard resources only for the calls that take none.
    const anywhere = grants.filter(([, resource]) => resource === '*').map(([action]) => action);
    expect(anywhere.sort()).toEqual([
      'ssm:cancelCommand',
      'ssm:describeInstanceInformation',
      'ssm:listCommandInvocations',
      'ssm:listCommands',
    ]);
    expect(grants).toHaveLength(12);
  });

  it('refuses settings it cannot roll out, naming the field', () => {
    expect(() => synthesizeRollout({ ...SETTINGS, batchSize: '0%' })).toThrow(/rollout.batchSize/);
    expect(() => synthesizeRollout({ ...SETTINGS, batchSize: 0 })).toThrow(/rollout.batchSize/);
    expect(() => synthesizeRollout({ ...SETTINGS, canary: 0 })).toThrow(/rollout.canary/);
    expect(() => synthesizeRollout({ ...SETTINGS, maxFailedHosts: -1 })).toThrow(/rollout.maxFailedHosts/);
  });

  it('looks at a running command after 1, 2 and 3 s, then every 5 s, with no state added to a look', async () => {
    const branch = (definition.States as Record<string, { Branches: Array<{ States: Record<string, Record<string, unknown>> }> }>)[
      'Roll out'
    ]!.Branches[0]!;
    // The prepare's Map as synthesized, its item processor whole: send, wait, look, tally, decide, read.
    const chunksName = `Prepare in chunks of ${INSTANCE_IDS_PER_COMMAND}`;
    // A JSON copy: structuredClone's arrays come from outside jest's realm, and the local engine's JSONPath then selects nothing in them.
    const chunks = JSON.parse(JSON.stringify(branch.States[chunksName]!)) as Record<string, unknown>;
    delete chunks.Next;
    chunks.End = true;
    const machine = new StateMachine({ StartAt: chunksName, States: { [chunksName]: chunks } } as never, {
      validationOptions: { noValidate: true },
    });
    const runningLooks = 7;
    let looks = 0;
    const run = machine.run(
      { prepared: { chunks: [['i-1']] }, trigger: 'app@main', repository: 'app', branch: 'main', commit: 'c'.repeat(40) },
      {
        overrides: {
          taskResourceLocalHandlers: {
            'Send the prepare': async () => ({ Command: { CommandId: 'command-1' } }),
            'Look at the prepare': async () => {
              looks += 1;
              return { Commands: [{ Status: looks <= runningLooks ? 'InProgress' : 'Success', ErrorCount: 0, DeliveryTimedOutCount: 0 }] };
            },
            'Read the prepare of each host': async () => ({
              CommandInvocations: [{ InstanceId: 'i-1', Status: 'Success', CommandPlugins: [] }],
            }),
          },
          // The wait's length is read from its input below; the test need not sit through it.
          waitTimeOverrides: { 'Wait for prepare': 0 },
        },
      },
    );
    const entered: Array<{ name: string; input: { progress?: { waitSeconds?: unknown } } }> = [];
    for await (const event of run.eventLogs) if (event.type === 'StateEntered') entered.push(event.state as (typeof entered)[number]);
    await run.result;
    const waits = entered.filter((state) => state.name === 'Wait for prepare').map((state) => state.input.progress?.waitSeconds);
    expect(waits).toEqual([1, 2, 3, 5, 5, 5, 5, 5]);
    // Standard bills per state entered: from one wait to the next, the wait, the look, the tally and the choice.
    const names = entered.map((state) => state.name);
    const first = names.indexOf('Wait for prepare');
    expect(names.slice(first, first + 5)).toEqual([
      'Wait for prepare',
      'Look at the prepare',
      'Add the prepare failures',
      'Has the prepare ended?',
      'Wait for prepare',
    ]);
    expect(names.filter((name) => name === 'Look at the prepare')).toHaveLength(runningLooks + 1);
  });

  it('keeps the schedule a table the state machine can index: whole growing seconds, the last repeated', () => {
    expect(nextPollWaits([1, 2, 3, 5])).toEqual([1, 2, 3, 5, 5, 5]);
    expect(nextPollWaits([2, 10])).toEqual([2, 2, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
    for (const schedule of [[2, 1], [1, 1.5], [0, 5], []]) expect(() => nextPollWaits(schedule)).toThrow(/poll schedule/);
  });

  it('sizes a percentage batch as ceil(fleet × share), with the arithmetic the states have', async () => {
    const sized = async (batchSize: string, count: number): Promise<number> => {
      const { definition: whole } = synthesizeRollout({ ...SETTINGS, batchSize });
      const branch = (whole.States as Record<string, { Branches: Array<{ States: Record<string, Record<string, unknown>> }> }>)['Roll out']!
        .Branches[0]!;
      const states = structuredClone(branch.States);
      const last = states['Divide by the whole'] ?? states['Size the batches']!;
      delete last.Next;
      last.End = true;
      const sizing = new StateMachine({ StartAt: 'Size the batches', States: states } as never, {
        validationOptions: { noValidate: true },
      });
      const result = (await sizing.run({ fleet: { count } }).result) as { sizing: { size: number } };
      return result.sizing.size;
    };
    for (const [share, counts] of [
      ['25%', [1, 3, 4, 7, 1000]],
      ['30%', [1, 4, 7, 10, 99]],
      ['1%', [1, 99, 1000]],
      ['100%', [1, 3, 1500]],
    ] as const) {
      for (const count of counts)
        expect([share, count, await sized(share, count)]).toEqual([share, count, Math.ceil((count * Number(share.slice(0, -1))) / 100)]);
    }
  });
});
