/**
 * The synthesized rollout state machine, run locally against three real receivers: a rollout
 * that succeeds everywhere, a sender's retry, and a rollout of only the hosts an operator names
 * (`triggler fleet rerun --failed-only`).
 */
import { waitForRun } from '../../../bin/runs-source';
import { FLEET_COMMIT_PARAMETER, FLEET_TRIGGER, localFleet } from '../../support/fleet/local-fleet';
import { LOCAL_FLEET_PROPS } from '../../support/fleet/synthesized-rollout';

describe('a rollout to three hosts', () => {
  const fleet = localFleet({ canary: 1, batchSize: 2, maxFailedHosts: 0, bakeSeconds: 30, alarms: ['app-errors'], hold: false }, 3);

  it('prepares on every host before switching any, then switches all: every current is the commit', async () => {
    const [hosts, engine] = [fleet.hosts(), fleet.engine()];
    const commit = hosts.repo.commit({ v: '1' });
    const ended = await engine.start(fleet.push(commit)).done;
    expect(ended).toMatchObject({ status: 'SUCCEEDED', summary: { outcome: 'succeeded', commit, trigger: FLEET_TRIGGER } });
    const summary = ended.summary!;
    const ids = hosts.hosts.map((host) => host.instanceId);
    expect([...summary.instances].sort()).toEqual(ids);
    expect(await fleet.currents()).toEqual([commit, commit, commit]);
    expect(engine.parameters.get(FLEET_COMMIT_PARAMETER)).toBe(commit);
    // One record per host and step, each with the host's own JSON line.
    const steps = (step: 'prepare' | 'switch') =>
      summary.hosts.filter((host) => host[step]).map((host) => ({ id: host.instanceId, ...host[step]! }));
    for (const step of ['prepare', 'switch'] as const) {
      expect(
        steps(step)
          .map((host) => host.id)
          .sort(),
      ).toEqual(ids);
      for (const host of steps(step)) expect(host).toMatchObject({ invocation: 'Success', result: { status: 'succeeded', commit } });
    }
    // The receivers' own run records: every prepare had finished before the first switch began.
    const runs = async (step: 'prepare' | 'switch') =>
      Promise.all(steps(step).map((host) => waitForRun(hosts.host(host.id).adminUrl, host.result!.runId!)));
    const prepares = await runs('prepare');
    const switches = await runs('switch');
    const lastPrepare = Math.max(...prepares.map((run) => Date.parse(run.finishedAt!)));
    const firstSwitch = Math.min(...switches.map((run) => Date.parse(run.startedAt!)));
    expect(lastPrepare).toBeLessThanOrEqual(firstSwitch);
    // Every invocation's whole output went to the command log group.
    expect(engine.runCommand.logs.get(LOCAL_FLEET_PROPS.commandLogGroupName)).toHaveLength(6);
  }, 120_000);

  it('a sender retry with the same delivery starts no second rollout', async () => {
    const engine = fleet.engine();
    const commit = fleet.hosts().repo.commit({ v: '2' });
    const input = fleet.push(commit);
    const first = engine.start(input);
    const retry = engine.start(input);
    expect(retry).toBe(first);
    expect((await first.done).summary).toMatchObject({ outcome: 'succeeded', commit });
    expect(engine.start(input)).toBe(first);
    expect([...engine.executions.values()].filter((execution) => execution.input.deliveryId === input.deliveryId)).toHaveLength(1);
    expect(await fleet.currents()).toEqual([commit, commit, commit]);
  }, 120_000);

  it('a rollout that names its instances prepares and switches those hosts only', async () => {
    const [hosts, engine] = [fleet.hosts(), fleet.engine()];
    const before = await fleet.currents();
    const commit = hosts.repo.commit({ v: '3' });
    const chosen = hosts.hosts[1]!.instanceId;
    const execution = engine.start({ ...fleet.push(commit), instances: [chosen] });
    const ended = await execution.done;
    expect(ended.summary).toMatchObject({ outcome: 'succeeded', commit, instances: [chosen] });
    expect(new Set(ended.summary!.hosts.map((host) => host.instanceId))).toEqual(new Set([chosen]));
    expect(await fleet.currents()).toEqual([before[0], commit, before[2]]);
  }, 120_000);
});
