/**
 * The scheduler on its own: events in, runs to start out, no I/O, no timers. Each case is a script
 * of events, each with the run ids it must start then.
 */
import { Scheduler } from '../../../receiver/runs/scheduler';

type Step =
  /** A delivery on the line; `run` is the id it must join or make, `coalesced` whether it joined. */
  | { join: string; run: string; coalesced: boolean; starts?: string[] }
  /** A run added as Runner.queueOwnRun / rerun add one. */
  | { add: string; run: string; own: boolean; first?: boolean; starts?: string[] }
  | { restore: string; run: string; own?: boolean }
  /** The accept of `run` on its line was written (or refused, `written: false`). */
  | { journalled: string; run: string; written?: boolean; starts: string[] }
  | { ended: string; starts: string[] }
  | { startReady: true; starts: string[] }
  | { removeLine: string; waiting: string[] }
  | { close: true }
  | { expect: { running: number; waiting: number; waitingOn?: [string, string[]] } };

interface Case {
  name: string;
  limit: number;
  lines: string[];
  steps: Step[];
}

const cases: Case[] = [
  {
    name: 'a delivery on an idle line starts only once its accept is journalled',
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false, starts: [] },
      { expect: { running: 0, waiting: 1 } },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { expect: { running: 1, waiting: 0 } },
    ],
  },
  {
    name: 'deliveries accepted together (before the run starts) make one run',
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { join: 'a', run: 'r1', coalesced: true },
      { join: 'a', run: 'r1', coalesced: true },
      { journalled: 'a', run: 'r1', starts: [] },
      { journalled: 'a', run: 'r1', starts: [] },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
    ],
  },
  {
    name: 'deliveries during a run join one waiting run, which starts when the running one ends',
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { join: 'a', run: 'r2', coalesced: false },
      { journalled: 'a', run: 'r2', starts: [] },
      { join: 'a', run: 'r2', coalesced: true },
      { journalled: 'a', run: 'r2', starts: [] },
      { join: 'a', run: 'r2', coalesced: true },
      { journalled: 'a', run: 'r2', starts: [] },
      { expect: { running: 1, waiting: 1, waitingOn: ['a', ['r2']] } },
      { ended: 'r1', starts: ['r2'] },
      { ended: 'r2', starts: [] },
      { expect: { running: 0, waiting: 0 } },
    ],
  },
  {
    name: 'a run does not start while an accept joining it is still being journalled',
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { join: 'a', run: 'r2', coalesced: false },
      { journalled: 'a', run: 'r2', starts: [] },
      { join: 'a', run: 'r2', coalesced: true },
      { ended: 'r1', starts: [] },
      { journalled: 'a', run: 'r2', starts: ['r2'] },
    ],
  },
  {
    name: 'a run none of whose accepts was journalled never existed: the next delivery makes a new run',
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { join: 'a', run: 'r1', coalesced: true },
      { journalled: 'a', run: 'r1', written: false, starts: [] },
      { journalled: 'a', run: 'r1', written: false, starts: [] },
      { expect: { running: 0, waiting: 0 } },
      { join: 'a', run: 'r2', coalesced: false },
      { journalled: 'a', run: 'r2', starts: ['r2'] },
    ],
  },
  {
    name: 'a refused accept that joined a journalled run does not stop it',
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { join: 'a', run: 'r1', coalesced: true },
      { journalled: 'a', run: 'r1', starts: [] },
      { journalled: 'a', run: 'r1', written: false, starts: ['r1'] },
    ],
  },
  {
    name: 'keeps to the global limit and gives free slots to lines first come, first served',
    limit: 1,
    lines: ['a', 'b', 'c'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { join: 'b', run: 'r2', coalesced: false },
      { journalled: 'b', run: 'r2', starts: [] },
      { join: 'c', run: 'r3', coalesced: false },
      { journalled: 'c', run: 'r3', starts: [] },
      { join: 'a', run: 'r4', coalesced: false },
      { journalled: 'a', run: 'r4', starts: [] },
      { ended: 'r1', starts: ['r2'] },
      { ended: 'r2', starts: ['r3'] },
      { ended: 'r3', starts: ['r4'] },
      { ended: 'r4', starts: [] },
    ],
  },
  {
    name: 'runs different lines at the same time up to the limit',
    limit: 2,
    lines: ['a', 'b', 'c'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { join: 'b', run: 'r2', coalesced: false },
      { join: 'c', run: 'r3', coalesced: false },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { journalled: 'b', run: 'r2', starts: ['r2'] },
      { journalled: 'c', run: 'r3', starts: [] },
      { expect: { running: 2, waiting: 1 } },
      { ended: 'r2', starts: ['r3'] },
    ],
  },
  {
    name: 'a line whose next run is held keeps its place in the queue and does not block the next line',
    limit: 1,
    lines: ['a', 'b', 'c'],
    steps: [
      { join: 'c', run: 'r1', coalesced: false },
      { journalled: 'c', run: 'r1', starts: ['r1'] },
      { join: 'a', run: 'r2', coalesced: false },
      { journalled: 'a', run: 'r2', starts: [] },
      { join: 'a', run: 'r2', coalesced: true },
      { join: 'b', run: 'r3', coalesced: false },
      { journalled: 'b', run: 'r3', starts: [] },
      { ended: 'r1', starts: ['r3'] },
      { journalled: 'a', run: 'r2', starts: [] },
      { ended: 'r3', starts: ['r2'] },
    ],
  },
  {
    name: "deliveries never join a run of the receiver's own",
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { add: 'a', run: 'own', own: true },
      { journalled: 'a', run: 'own', starts: [] },
      { join: 'a', run: 'r2', coalesced: false },
      { join: 'a', run: 'r2', coalesced: true },
      { journalled: 'a', run: 'r2', starts: [] },
      { journalled: 'a', run: 'r2', starts: [] },
      { ended: 'r1', starts: ['own'] },
      { ended: 'own', starts: ['r2'] },
    ],
  },
  {
    name: 'a re-run is a run deliveries may join',
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { add: 'a', run: 'again', own: false },
      { join: 'a', run: 'again', coalesced: true },
      { journalled: 'a', run: 'again', starts: [] },
      { journalled: 'a', run: 'again', starts: [] },
      { ended: 'r1', starts: ['again'] },
    ],
  },
  {
    name: 'restored runs wait their turn and start on startReady; a recover run added first goes ahead of them',
    limit: 4,
    lines: ['a', 'b'],
    steps: [
      { restore: 'a', run: 'p1' },
      { restore: 'a', run: 'p2' },
      { restore: 'b', run: 'p3' },
      { add: 'a', run: 'recover', own: true, first: true, starts: [] },
      { journalled: 'a', run: 'recover', starts: ['recover'] },
      { startReady: true, starts: ['p3'] },
      { ended: 'recover', starts: ['p1'] },
      { ended: 'p1', starts: ['p2'] },
    ],
  },
  {
    name: "a restored run of the receiver's own is not joined",
    limit: 4,
    lines: ['a'],
    steps: [
      { restore: 'a', run: 'own', own: true },
      { join: 'a', run: 'r1', coalesced: false },
      // The line is ready once its delivery is journalled: the restored run at its head starts.
      { journalled: 'a', run: 'r1', starts: ['own'] },
      { startReady: true, starts: [] },
      { ended: 'own', starts: ['r1'] },
    ],
  },
  {
    name: "a removed line's waiting runs never start; its running run still frees its slot when it ends",
    limit: 1,
    lines: ['a', 'b'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { join: 'a', run: 'r2', coalesced: false },
      { journalled: 'a', run: 'r2', starts: [] },
      { join: 'b', run: 'r3', coalesced: false },
      { journalled: 'b', run: 'r3', starts: [] },
      { removeLine: 'a', waiting: ['r2'] },
      { expect: { running: 1, waiting: 1 } },
      { ended: 'r1', starts: ['r3'] },
      { ended: 'r3', starts: [] },
      { expect: { running: 0, waiting: 0 } },
    ],
  },
  {
    name: 'once closed, nothing starts',
    limit: 4,
    lines: ['a'],
    steps: [
      { join: 'a', run: 'r1', coalesced: false },
      { journalled: 'a', run: 'r1', starts: ['r1'] },
      { join: 'a', run: 'r2', coalesced: false },
      { journalled: 'a', run: 'r2', starts: [] },
      { close: true },
      { ended: 'r1', starts: [] },
      { expect: { running: 0, waiting: 1 } },
    ],
  },
];

/** Plays the steps; ids a join makes are r1, r2, ... in the order made. */
function play(testCase: Case): void {
  const scheduler = new Scheduler(testCase.limit);
  for (const line of testCase.lines) scheduler.addLine(line);
  let made = 0;
  const newRunId = (): string => {
    made += 1;
    return `r${made}`;
  };
  const ids = (starts: { runId: string }[]): string[] => starts.map((start) => start.runId);
  testCase.steps.forEach((step, index) => {
    const where = `step ${index + 1}: ${JSON.stringify(step)}`;
    if ('join' in step) {
      // A join that makes a run takes the next id; the script names it so a mismatch shows.
      expect({ where, ...scheduler.join(step.join, newRunId) }).toEqual({ where, runId: step.run, coalesced: step.coalesced });
    } else if ('add' in step) {
      scheduler.add(step.add, step.run, { own: step.own, first: step.first ?? false });
    } else if ('restore' in step) {
      scheduler.restore(step.restore, step.run, step.own ?? false);
    } else if ('journalled' in step) {
      expect({ where, starts: ids(scheduler.journalled(step.journalled, step.run, step.written ?? true)) }).toEqual({
        where,
        starts: step.starts,
      });
    } else if ('ended' in step) {
      expect({ where, starts: ids(scheduler.ended(step.ended)) }).toEqual({ where, starts: step.starts });
    } else if ('startReady' in step) {
      expect({ where, starts: ids(scheduler.startReady()) }).toEqual({ where, starts: step.starts });
    } else if ('removeLine' in step) {
      expect({ where, waiting: scheduler.removeLine(step.removeLine) }).toEqual({ where, waiting: step.waiting });
    } else if ('close' in step) {
      scheduler.close();
    } else {
      const seen = { where, running: scheduler.runningCount, waiting: scheduler.waitingCount };
      expect(seen).toEqual({ where, running: step.expect.running, waiting: step.expect.waiting });
      if (step.expect.waitingOn) expect([...scheduler.waiting(step.expect.waitingOn[0])]).toEqual(step.expect.waitingOn[1]);
    }
  });
}

describe('Scheduler', () => {
  it.each(cases.map((testCase) => [testCase.name, testCase] as const))('%s', (_name, testCase) => play(testCase));

  it('starts each line in the order its runs became ready, however many lines wait (1,000 lines, limit 3)', () => {
    const scheduler = new Scheduler(3);
    const lines = Array.from({ length: 1000 }, (_, i) => `line-${i}`);
    for (const line of lines) scheduler.addLine(line);
    const started: string[] = [];
    for (const line of lines) {
      const { runId } = scheduler.join(line, () => `run-${line}`);
      started.push(...scheduler.journalled(line, runId, true).map((start) => start.runId));
    }
    expect(scheduler.runningCount).toBe(3);
    for (let i = 0; started.length < lines.length; i += 1)
      started.push(...scheduler.ended(started[i] as string).map((start) => start.runId));
    expect(started).toEqual(lines.map((line) => `run-${line}`));
  });

  it('a line that is not configured has no run to join', () => {
    const scheduler = new Scheduler(1);
    expect(() => scheduler.join('a', () => 'r1')).toThrow('no line a');
  });
});
