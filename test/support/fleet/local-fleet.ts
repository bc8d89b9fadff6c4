/**
 * A describe block's fleet: `count` real receivers and a local engine running the rollout
 * synthesized with `settings`, started before the block's tests and stopped after them.
 */
import type { RolloutSettings } from '../../../lib/constructs/fleet-rollout';
import { rolloutInput, type RolloutInput } from '../../../protocol/rollout';
import { FLEET_BRANCH, FLEET_REPOSITORY, FleetHosts } from './fleet-hosts';
import { LocalRolloutEngine } from './local-engine';
import { LOCAL_FLEET_PROPS } from './synthesized-rollout';

export const FLEET_TRIGGER = `${FLEET_REPOSITORY}@${FLEET_BRANCH}`;
export const FLEET_COMMIT_PARAMETER = `${LOCAL_FLEET_PROPS.commitParameterPrefix}/${FLEET_REPOSITORY}/${FLEET_BRANCH}/commit`;

export interface LocalFleet {
  hosts(): FleetHosts;
  engine(): LocalRolloutEngine;
  /** A push of `commit` as a sender gives it, each with a delivery id of its own. */
  push(commit: string): RolloutInput;
  /** Each host's current commit, in the order the hosts were added. */
  currents(): Promise<Array<string | null>>;
}

export function localFleet(
  settings: RolloutSettings,
  count: number,
  ready: (fleet: LocalFleet) => Promise<void> = async () => {},
): LocalFleet {
  let hosts: FleetHosts | undefined;
  let engine: LocalRolloutEngine | undefined;
  let delivery = 0;
  const fleet: LocalFleet = {
    hosts: () => hosts!,
    engine: () => engine!,
    push: (commit) => rolloutInput(FLEET_REPOSITORY, FLEET_BRANCH, commit, `delivery-${(delivery += 1)}`),
    currents: () => Promise.all(hosts!.hosts.map((host) => hosts!.current(host.instanceId))),
  };
  beforeAll(async () => {
    hosts = new FleetHosts(LOCAL_FLEET_PROPS.fleetTag);
    await hosts.add(count);
    engine = await LocalRolloutEngine.start({ hosts, rollout: settings });
    await ready(fleet);
  }, 120_000);
  afterAll(async () => {
    await engine?.dispose();
    await hosts?.dispose();
  });
  return fleet;
}
