/**
 * What the kernel says about processes, read from /proc: a pid's state, process group and start
 * time, and the boot it belongs to. A pid alone does not name a process for long: pids are reused,
 * so whoever acts on one remembered across a restart compares its start time (and the boot) too.
 */
import * as fs from 'node:fs';

export interface ProcStat {
  pid: number;
  /** R, S, D, Z, ... (field 3). */
  state: string;
  /** Process group (field 5). */
  pgrp: number;
  /** Clock ticks after boot at which the process started (field 22), as the kernel writes it. */
  startTime: string;
}

export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields from the state on: the state is field 3.
  const [state, , pgrp] = fields;
  const startTime = fields[22 - 3];
  return state !== undefined && pgrp !== undefined && startTime !== undefined ? { pid, state, pgrp: Number(pgrp), startTime } : undefined;
}

/** Processes of a process group that have not exited (zombies have: they only wait to be reaped); undefined without /proc. */
export function groupMembers(pgid: number): ProcStat[] | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  const members: ProcStat[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z') members.push(stat);
  }
  return members;
}

export function bootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}
