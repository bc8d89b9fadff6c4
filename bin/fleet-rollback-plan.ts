/**
 * `triggler fleet rollback`'s plan, from the rollouts' own records: the fleet is the instances of
 * the trigger's newest successful rollout of the whole fleet (with those of any later successful
 * re-run of only some hosts), each host's releases are those its prepare steps laid out (the
 * step's JSON line names the release and commit), and with no version asked for, the target is
 * the newest earlier commit that has a release on every one of those hosts. Pure: the command
 * reads the records and acts on the plan.
 */
import type { RolloutSummary } from '../protocol';
import type { RolloutRecord } from './fleet-rollouts';

export interface RollbackPlan {
  trigger: string;
  repository: string;
  branch: string;
  current: { commit: string; rollout: string };
  target: { commit: string; rollout?: string };
  hosts: { instanceId: string; currentRelease: string | null; targetRelease: string | null }[];
}

/**
 * The hosts the fleet is: a rollout that named its instances (`fleet rerun --failed-only`) went
 * to only some of them, so the snapshots are gathered back to the newest one that went to all.
 */
function fleetOf(succeeded: readonly { record: RolloutRecord; summary: RolloutSummary }[]): string[] {
  const hosts = new Set<string>();
  for (const { record, summary } of succeeded) {
    for (const instanceId of summary.instances) hosts.add(instanceId);
    if (!record.input?.instances) break;
  }
  return [...hosts];
}

/** Per host, the release of each commit its prepare steps laid out; the newest rollout's word wins. */
function releasesByHost(summaries: readonly RolloutSummary[]): Map<string, Map<string, string>> {
  const byHost = new Map<string, Map<string, string>>();
  for (const summary of summaries) {
    for (const host of summary.hosts) {
      const prepared = host.prepare;
      const { commit, release } = prepared?.result ?? {};
      if (prepared?.invocation !== 'Success' || !commit || !release) continue;
      const releases = byHost.get(host.instanceId) ?? new Map<string, string>();
      if (!releases.has(commit)) releases.set(commit, release);
      byHost.set(host.instanceId, releases);
    }
  }
  return byHost;
}

const short = (commit: string) => commit.slice(0, 12);

/**
 * The plan, or the reason there is none. `rollouts` are one trigger's, newest first; `to` is a
 * commit id or a prefix of one (7 or more hex digits) that a rollout of the trigger deployed.
 */
export function rollbackPlan(rollouts: readonly RolloutRecord[], to?: string): RollbackPlan | { problem: string } {
  const summaries = rollouts.flatMap((record) => (record.summary ? [{ record, summary: record.summary }] : []));
  const succeeded = summaries.filter(({ summary }) => summary.outcome === 'succeeded');
  const newest = succeeded[0];
  if (!newest) return { problem: 'no rollout of this trigger succeeded in the records read: there is nothing to roll back from' };
  const { summary: current, record: currentRecord } = newest;
  const releases = releasesByHost(summaries.map(({ summary }) => summary));
  const hosts = fleetOf(succeeded);
  const missing = (commit: string) => hosts.filter((host) => !releases.get(host)?.has(commit));

  let target: { commit: string; rollout?: string } | undefined;
  if (to !== undefined) {
    const wanted = to.toLowerCase();
    if (!/^[0-9a-f]{7,64}$/.test(wanted)) return { problem: `--to: "${to}" is not a commit id (7 to 64 hex digits)` };
    const known = summaries.find(({ summary }) => summary.commit.startsWith(wanted));
    if (known) target = { commit: known.summary.commit, rollout: known.record.name };
    else if (/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(wanted)) target = { commit: wanted };
    else return { problem: `--to: no rollout of this trigger deployed a commit starting ${wanted}; give the whole commit id` };
    if (target.commit === current.commit) return { problem: `--to: ${short(target.commit)} is the fleet's current commit already` };
  } else {
    const tried: string[] = [];
    for (const { summary, record } of succeeded.slice(1)) {
      if (summary.commit === current.commit || tried.includes(summary.commit)) continue;
      tried.push(summary.commit);
      if (missing(summary.commit).length === 0) {
        target = { commit: summary.commit, rollout: record.name };
        break;
      }
    }
    if (!target && tried.length === 0) {
      return {
        problem: `${short(current.commit)} is the only commit a rollout of this trigger deployed in the records read: there is no earlier one to roll back to (read more of them with --history)`,
      };
    }
    if (!target) {
      const why = tried.map((commit) => `${short(commit)} is missing on ${missing(commit).join(', ')}`).join('; ');
      return {
        problem: `no earlier commit has a release on every host of the fleet (${hosts.join(', ')})${why ? `: ${why}` : ''}; name one with --to`,
      };
    }
  }
  return {
    trigger: current.trigger,
    repository: current.repository,
    branch: current.branch,
    current: { commit: current.commit, rollout: currentRecord.name },
    target,
    hosts: hosts.map((instanceId) => ({
      instanceId,
      currentRelease: releases.get(instanceId)?.get(current.commit) ?? null,
      targetRelease: releases.get(instanceId)?.get(target.commit) ?? null,
    })),
  };
}
