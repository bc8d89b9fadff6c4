/**
 * One receiver per state directory. A second one would rewrite the journal under the first, which
 * then goes on appending to a file no longer there.
 *
 * Node cannot flock, so the lock is a file created atomically (link(2) of a complete temp file:
 * it appears whole or not at all) naming its holder: pid, the kernel's start time of that pid and
 * the boot id. A process that dies without releasing it leaves the file behind; the next start
 * sees that the holder is gone and takes the lock over. The kernel does not release it, so the
 * file is only as good as the liveness check:
 * - pid reuse: a dead holder's pid given to another process would look alive. The start time
 *   (in clock ticks since boot, from /proc) and the boot id tell that process apart, so only the
 *   holder itself keeps the lock. Without /proc, only the pid is compared, and a reused pid keeps
 *   the directory locked until the lock file is removed by hand: the safe direction.
 * - two starts taking over the same stale lock at the same instant can both believe they won (one
 *   removes the other's fresh file): the window is a few system calls, and a service manager
 *   starts one instance at a time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bootId, procStat } from './process-info';

export const LOCK_FILE = 'receiver.lock';

export interface LockHolder {
  pid: number;
  /** Field 22 of /proc/<pid>/stat. */
  startTime?: string;
  bootId?: string;
  since: string;
}

/** Another live process holds the state directory. */
export class StateDirLockedError extends Error {
  constructor(
    readonly stateDir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `state directory ${stateDir} is in use by another receiver (pid ${holder.pid}, since ${holder.since}); stop it first, one receiver per state directory`,
    );
    this.name = 'StateDirLockedError';
  }
}

export class StateLock {
  private released = false;

  private constructor(readonly file: string) {}

  /** Takes the lock or throws StateDirLockedError naming the live holder's pid. */
  static acquire(stateDir: string): StateLock {
    const file = path.join(stateDir, LOCK_FILE);
    const mine: LockHolder = {
      pid: process.pid,
      startTime: processStartTime(process.pid),
      bootId: bootId(),
      since: new Date().toISOString(),
    };
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, `${JSON.stringify(mine)}\n`, { mode: 0o600 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          fs.linkSync(temp, file);
          return new StateLock(file);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const holder = readHolder(file);
        if (holder && holderAlive(holder)) throw new StateDirLockedError(stateDir, holder);
        // The holder is gone (or the file is unreadable, which link(2) never leaves): take over.
        removeIfPresent(file);
      }
      throw new Error(`cannot lock state directory ${stateDir}: ${file} keeps reappearing`);
    } finally {
      removeIfPresent(temp);
    }
  }

  /** The live process holding the state directory, if any; reads only, takes nothing. */
  static holder(stateDir: string): LockHolder | undefined {
    const holder = readHolder(path.join(stateDir, LOCK_FILE));
    return holder && holderAlive(holder) ? holder : undefined;
  }

  /** Removes the lock file if it is still this process's. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (readHolder(this.file)?.pid === process.pid) removeIfPresent(this.file);
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>;
    return typeof value.pid === 'number' && typeof value.since === 'string' ? (value as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}

function holderAlive(holder: LockHolder): boolean {
  const currentBoot = bootId();
  if (holder.bootId !== undefined && currentBoot !== undefined && holder.bootId !== currentBoot) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: the pid exists but belongs to another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(holder.pid);
  if (stat === undefined) return true;
  // A zombie has exited: it only waits for its parent to read its status.
  if (stat.state === 'Z') return false;
  return holder.startTime === undefined || holder.startTime === stat.startTime;
}

function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

function removeIfPresent(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
