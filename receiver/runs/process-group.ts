/**
 * A command's process group: what identifies it in the run's record (its start time and the boot,
 * since pids are reused), whether anything of it is still alive, and stopping what is left of one
 * after the receiver that ran it died.
 */
import { bootId, groupMembers, procStat } from './process-info';
import type { ProcessGroup } from './run-record';

/** How often to look whether a signalled process group is gone. */
export const GROUP_POLL_MS = 100;

/**
 * Whether a process group still has a member that is not a zombie. Zombies count as gone: where
 * nothing reaps orphans (a container without an init), they would otherwise look alive until SIGKILL.
 */
export function groupHasLiveMember(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return (groupMembers(pgid)?.length ?? 1) > 0;
}

export function describeProcessGroup(pgid: number): ProcessGroup {
  const startTime = procStat(pgid)?.startTime;
  const boot = bootId();
  return { pgid, ...(startTime !== undefined ? { startTime } : {}), ...(boot !== undefined ? { bootId: boot } : {}) };
}

/** What stopOrphanedGroup found and did, in words for the run's record. */
export type OrphanOutcome = { stopped: false; why: string } | { stopped: true; signal: 'SIGTERM' | 'SIGKILL'; members: number };

/**
 * Stops what is left of a command's process group after the receiver that ran it died: SIGTERM,
 * then SIGKILL after the grace, and waits until it is gone. Pids are reused, so the group is only
 * signalled while it is still that command's: same boot, and its leader (when still there) the
 * process that started then, its members none older than the leader was.
 */
export async function stopOrphanedGroup(group: ProcessGroup, killGraceMs: number): Promise<OrphanOutcome> {
  const currentBoot = bootId();
  if (group.bootId !== undefined && currentBoot !== undefined && group.bootId !== currentBoot)
    return { stopped: false, why: 'the machine has restarted since' };
  const members = groupMembers(group.pgid);
  if (members === undefined) return { stopped: false, why: 'without /proc its processes cannot be told from later ones' };
  if (members.length === 0) return { stopped: false, why: 'nothing of it was left' };
  if (group.startTime !== undefined) {
    const leader = members.find((member) => member.pid === group.pgid);
    const started = BigInt(group.startTime);
    if ((leader && leader.startTime !== group.startTime) || members.some((member) => BigInt(member.startTime) < started)) {
      return { stopped: false, why: `process group ${group.pgid} now belongs to other processes (its id was reused)` };
    }
  }
  const signalled = (signal: NodeJS.Signals): boolean => {
    try {
      process.kill(-group.pgid, signal);
      return true;
    } catch {
      return false;
    }
  };
  const goneWithin = async (ms: number): Promise<boolean> => {
    for (const deadline = Date.now() + ms; Date.now() < deadline;) {
      if (!groupHasLiveMember(group.pgid)) return true;
      await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
    }
    return !groupHasLiveMember(group.pgid);
  };
  if (!signalled('SIGTERM')) return { stopped: false, why: `process group ${group.pgid} cannot be signalled` };
  if (await goneWithin(killGraceMs)) return { stopped: true, signal: 'SIGTERM', members: members.length };
  signalled('SIGKILL');
  await goneWithin(killGraceMs);
  return { stopped: true, signal: 'SIGKILL', members: members.length };
}
