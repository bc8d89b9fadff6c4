/**
 * Where the receiver bench's processes run. Unpinned, wrk and the server under test share every
 * core, and how the scheduler splits them differs by server: a Go server with a thread per core
 * takes both cores of two where Node's one event loop takes one, and run-to-run ranges are wide.
 * Pinned (the default where util-linux's `taskset` exists and there are two cores or more), the
 * load (wrk, the bench's own process with its valid deliveries and samplers, the body and viewer
 * probes) runs on one core and every server under test, with its threads (libuv's pool, Go's
 * runtime) and its children, on another: the same shape for every server. `BENCH_PIN=0` keeps the
 * old unpinned shape.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuPinning {
  /** The core of the load: wrk and this process. */
  loadCpu: number;
  /** The core of the server under test. */
  serverCpu: number;
}

/** The cores this process may run on (`Cpus_allowed_list`, e.g. `0-1` or `0,2-3`). */
function allowedCpus(): number[] {
  const list = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  return list.split(',').flatMap((part) => {
    const [from, to = from] = part.split('-').map(Number);
    return Number.isInteger(from) && Number.isInteger(to) ? Array.from({ length: to! - from! + 1 }, (_, i) => from! + i) : [];
  });
}

function choosePinning(): CpuPinning | undefined {
  if (process.env.BENCH_PIN === '0') return undefined;
  if (spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status !== 0) return undefined;
  const cpus = allowedCpus();
  if (cpus.length < 2) return undefined;
  return { loadCpu: cpus[0]!, serverCpu: cpus[1]! };
}

export const PINNING = choosePinning();

/** Puts this process (every thread of it) and so whatever it starts from now on on the load's core. */
export function pinLoadHere(): void {
  if (!PINNING) return;
  const result = spawnSync('taskset', ['--all-tasks', '--cpu-list', '--pid', String(PINNING.loadCpu), String(process.pid)], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`taskset could not pin the bench to core ${PINNING.loadCpu}: ${result.stderr.trim()}`);
}

/** `command args` as spawned for a server under test: on the server's core when pinned. */
export function onServerCore(command: string, args: string[]): [string, string[]] {
  return PINNING ? ['taskset', ['--cpu-list', String(PINNING.serverCpu), command, ...args]] : [command, args];
}

/** What the bench's header says about the shape that ran. */
export function pinningDescription(): string {
  return PINNING
    ? `Pinned (\`taskset\`): wrk and the bench's own process on core ${PINNING.loadCpu}, every server under test (its threads and children) on core ${PINNING.serverCpu}`
    : `Unpinned (${process.env.BENCH_PIN === '0' ? '`BENCH_PIN=0`' : 'no `taskset`, or fewer than two cores'}): wrk and every server share all cores`;
}
