/**
 * `triggler fleet rollback` with no version, against the synthesized rollout on the local engine:
 * the real CLI as a child process, its AWS SDK pointed at the engine (LocalAwsEndpoint), three
 * real receivers. The plan it shows is checked against each host's deploy path, and the rollout it
 * starts runs like any other. Then the rollout's own rollback where a host has nothing before its
 * current release: the fleet's first rollouts.
 */
import { ReleaseLayout, type ReleaseListing } from '../../../receiver';
import type { RolloutSettings } from '../../../lib/constructs/fleet-rollout';
import { runCli, type CliResult } from '../../support/cli';
import { LocalAwsEndpoint } from '../../support/fleet/local-aws-endpoint';
import { FLEET_COMMIT_PARAMETER, FLEET_TRIGGER, localFleet, type LocalFleet } from '../../support/fleet/local-fleet';

const SETTINGS: RolloutSettings = { canary: 1, batchSize: 2, maxFailedHosts: 0, bakeSeconds: 30, alarms: ['app-errors'], hold: false };

/** The fleet with the Step Functions and Systems Manager APIs answered from its engine. */
function fleetBehindAws(count: number): { fleet: LocalFleet; triggler: (...args: string[]) => Promise<CliResult> } {
  let endpoint: LocalAwsEndpoint | undefined;
  const fleet = localFleet(SETTINGS, count, async (ready) => {
    endpoint = await LocalAwsEndpoint.start(ready.engine());
  });
  afterAll(async () => endpoint?.close());
  const triggler = (...args: string[]) => runCli(['fleet', ...args], { env: { PATH: process.env.PATH, ...endpoint!.environment() } });
  return { fleet, triggler };
}

/** A host's release of `commit`, read from its deploy path. */
async function releaseOf(fleet: LocalFleet, instanceId: string, commit: string): Promise<ReleaseListing | undefined> {
  const releases = await new ReleaseLayout(fleet.hosts().host(instanceId).deployPath).list();
  return releases.filter((release) => release.commit === commit).at(-1);
}

describe('triggler fleet rollback with no version', () => {
  const { fleet, triggler } = fleetBehindAws(3);
  let a: string;
  let b: string;

  it('after the first-ever rollout: refuses plainly, starting nothing', async () => {
    const engine = fleet.engine();
    a = fleet.hosts().repo.commit({ v: 'a' });
    expect((await engine.start(fleet.push(a)).done).summary).toMatchObject({ outcome: 'succeeded', commit: a });
    const rolledOut = engine.executions.size;
    const refused = await triggler('rollback', '--trigger', FLEET_TRIGGER, '--yes');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      `${FLEET_TRIGGER}: ${a.slice(0, 12)} is the only commit a rollout of this trigger deployed in the records read: there is no earlier one to roll back to`,
    );
    expect(refused.stdout).toBe('');
    expect(engine.executions.size).toBe(rolledOut);
  }, 120_000);

  it("shows the plan (target A, each host's current and target release) and starts nothing", async () => {
    const engine = fleet.engine();
    b = fleet.hosts().repo.commit({ v: 'b' });
    expect((await engine.start(fleet.push(b)).done).summary).toMatchObject({ outcome: 'succeeded', commit: b });
    const rolledOut = engine.executions.size;
    const plan = await triggler('rollback', '--trigger', FLEET_TRIGGER);
    expect(plan).toMatchObject({ code: 0, stderr: '' });
    expect(plan.stdout).toContain(`${FLEET_TRIGGER}: from ${b}`);
    expect(plan.stdout).toMatch(new RegExp(`^\\s+to\\s+${a} \\(rollout `, 'm'));
    for (const host of fleet.hosts().hosts) {
      const [current, target] = [await releaseOf(fleet, host.instanceId, b), await releaseOf(fleet, host.instanceId, a)];
      expect(current?.current).toBe(true);
      expect(target).toBeDefined();
      expect(plan.stdout).toMatch(new RegExp(`^${host.instanceId}\\s+${current!.id}\\s+${target!.id}$`, 'm'));
    }
    expect(plan.stdout).toContain('Nothing started');
    expect(engine.executions.size).toBe(rolledOut);
  }, 120_000);

  it('with --yes starts a rollout of A: every host back on A, the fleet commit A, status and show say so', async () => {
    const engine = fleet.engine();
    const started = await triggler('rollback', '--trigger', FLEET_TRIGGER, '--yes');
    expect(started).toMatchObject({ code: 0, stderr: '' });
    const name = /started rollout (\S+):/.exec(started.stdout)?.[1];
    const execution = engine.executions.get(name!);
    expect(execution?.input).toMatchObject({ trigger: FLEET_TRIGGER, commit: a });
    expect(await execution!.done).toMatchObject({ status: 'SUCCEEDED', summary: { outcome: 'succeeded', commit: a } });
    expect(await fleet.currents()).toEqual([a, a, a]);
    // The release each host runs is the one A's first rollout laid out, reused, not a rebuild.
    for (const host of fleet.hosts().hosts) {
      const releases = await new ReleaseLayout(host.deployPath).list();
      expect(releases.filter((release) => release.commit === a).map((release) => release.current)).toEqual([true]);
    }
    expect(engine.parameters.get(FLEET_COMMIT_PARAMETER)).toBe(a);

    const status = await triggler('status', '--trigger', FLEET_TRIGGER);
    expect(status).toMatchObject({ code: 0, stderr: '' });
    expect(status.stdout).toContain(`rollout  ${name}`);
    expect(status.stdout).toContain(`commit ${a}`);
    expect(status.stdout).toMatch(/^status\s+SUCCEEDED, succeeded/m);
    // Each host's newest step, from Run Command's invocations: its switch to A's release.
    for (const host of fleet.hosts().hosts) {
      const release = (await releaseOf(fleet, host.instanceId, a))!.id;
      expect(status.stdout).toMatch(new RegExp(`^${host.instanceId}\\s+switch\\s+Success\\s+\\S+\\s+${release}\\s*$`, 'm'));
    }
    expect(status.stdout).toContain('in CloudWatch Logs group /triggler/fleet/commands');
    for (const host of fleet.hosts().hosts) expect(status.stdout).toMatch(new RegExp(`/${host.instanceId}/runFleetStep/stdout$`, 'm'));
    const show = await triggler('show', name!);
    expect(show).toMatchObject({ code: 0, stderr: '' });
    expect(show.stdout).toContain(`commit ${a}`);
    expect(show.stdout).toMatch(/^status\s+SUCCEEDED, succeeded/m);
    const rollouts = await triggler('rollouts', '--trigger', FLEET_TRIGGER);
    expect(rollouts.stdout.split('\n').slice(1, 4)).toEqual([
      expect.stringMatching(new RegExp(`^${name}\\s+${FLEET_TRIGGER}\\s+${a.slice(0, 12)}\\s+succeeded`)),
      expect.stringMatching(new RegExp(`\\s${b.slice(0, 12)}\\s+succeeded`)),
      expect.stringMatching(new RegExp(`\\s${a.slice(0, 12)}\\s+succeeded`)),
    ]);
  }, 120_000);

  it('a host without the earlier releases: the plan names which host lacks which commit', async () => {
    const [hosts, engine] = [fleet.hosts(), fleet.engine()];
    // A fourth host joins and the next rollout takes it in: it has only that rollout's release.
    const [joined] = await hosts.add(1);
    const c = hosts.repo.commit({ v: 'c' });
    expect((await engine.start(fleet.push(c)).done).summary).toMatchObject({ outcome: 'succeeded', commit: c });
    expect(await fleet.currents()).toEqual([c, c, c, c]);
    const rolledOut = engine.executions.size;
    const refused = await triggler('rollback', '--trigger', FLEET_TRIGGER, '--yes');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      `no earlier commit has a release on every host of the fleet (${hosts.hosts.map((host) => host.instanceId).join(', ')}): ` +
        `${a.slice(0, 12)} is missing on ${joined!.instanceId}; ${b.slice(0, 12)} is missing on ${joined!.instanceId}`,
    );
    // What the plan says is what the deploy paths hold.
    for (const host of hosts.hosts)
      for (const commit of [a, b])
        expect(await releaseOf(fleet, host.instanceId, commit)).toEqual(host === joined ? undefined : expect.anything());
    expect(engine.executions.size).toBe(rolledOut);
  }, 120_000);
});

describe('a failed rollout before the fleet has a commit: nothing to go back to', () => {
  const { fleet, triggler } = fleetBehindAws(1);

  it("the canary's health check fails: its own switch takes current away again, and no rollback is sent", async () => {
    const [hosts, engine] = [fleet.hosts(), fleet.engine()];
    const [host] = hosts.hosts;
    hosts.failHealthCheck(host!.instanceId, true);
    try {
      const unhealthy = hosts.repo.commit({ v: 'unhealthy' });
      const ended = await engine.start(fleet.push(unhealthy)).done;
      expect(ended).toMatchObject({ status: 'FAILED', summary: { outcome: 'rolled-back' } });
      const steps = ended.summary!.hosts;
      expect(steps.find((entry) => entry.switch)?.switch).toMatchObject({
        invocation: 'Failed',
        result: {
          status: 'rolled-back',
          error: expect.stringMatching(/^health check failed .*; current is removed \(no release before this one\)$/),
        },
      });
      expect(steps.some((entry) => entry.rollback)).toBe(false);
      expect(await fleet.currents()).toEqual([null]);
    } finally {
      hosts.failHealthCheck(host!.instanceId, false);
    }
  }, 120_000);

  it('an alarm after the canary switched to its first good release: its rollback step and the rollout say so, it stays', async () => {
    const [hosts, engine] = [fleet.hosts(), fleet.engine()];
    const [host] = hosts.hosts;
    const first = hosts.repo.commit({ v: 'first' });
    engine.onRunCommand((event) => {
      if (event.type === 'invocation' && event.step === 'switch' && event.status === 'Success') engine.alarms.set('app-errors', 'ALARM');
    });
    try {
      const execution = engine.start(fleet.push(first));
      const ended = await execution.done;
      expect(ended).toMatchObject({ status: 'FAILED', summary: { outcome: 'rolled-back', reason: 'alarm app-errors is in ALARM' } });
      const release = (await releaseOf(fleet, host!.instanceId, first))!;
      const said = `nothing to roll back to: no release older than current (${release.id}, commit ${first.slice(0, 12)}) ever went live here with another commit, so the host stays on it`;
      // The host's step: no run asked of its receiver, a status of its own, the invocation Failed.
      expect(ended.summary!.hosts.find((steps) => steps.rollback)?.rollback).toEqual({
        invocation: 'Failed',
        result: { status: 'nothing-to-roll-back', runId: null, release: release.id, commit: first, host: expect.any(String), error: said },
      });
      expect(release.current).toBe(true);
      expect(await fleet.currents()).toEqual([first]);
      // No fleet commit was recorded: a host joining would converge to nothing.
      expect(engine.parameters.has(FLEET_COMMIT_PARAMETER)).toBe(false);
      // The operator reads it beside the outcome.
      const status = await triggler('show', execution.name);
      expect(status).toMatchObject({ code: 0, stderr: '' });
      expect(status.stdout).toContain(`not back ${host!.instanceId}: ${said}`);
      expect(status.stdout).toMatch(
        new RegExp(`^${host!.instanceId}\\s+rollback\\s+Failed\\s+${release.id}\\s+nothing to roll back to`, 'm'),
      );
    } finally {
      engine.alarms.set('app-errors', 'OK');
    }
  }, 120_000);
});
