/**
 * Which run starts when: a pure, synchronous account of the runs waiting and running, per trigger
 * line. It is told what happened (a delivery joins, its accept is journalled, a run ends) and
 * answers with the runs to start now; it does no I/O, keeps no timers and knows nothing of what
 * a run does. The rules:
 *
 * - One run at a time per line; the runs not started yet wait in order.
 * - A delivery joins the last waiting run of its line (the run carries the newest push), unless
 *   that is a run of the receiver's own, which nothing joins; otherwise it makes a new run.
 * - A run does not start while an accept that joins it is being journalled (its record must be
 *   on disk first), and a run none of whose accepts was journalled never existed.
 * - At most `maxConcurrentRuns` runs at once; lines get a free slot in the order they became
 *   ready (first come, first served across triggers).
 * - Once closed, nothing starts.
 */

/** A run to start: its line, and its id. */
export interface StartRun {
  line: string;
  runId: string;
}

interface Line {
  name: string;
  /** Runs not started yet, oldest first. */
  waiting: string[];
  running: string | undefined;
  /** In the queue of lines waiting for a free slot. */
  queued: boolean;
}

export class Scheduler {
  private readonly lines = new Map<string, Line>();
  /** Lines with a run ready to start, in the order they became ready. */
  private readonly ready: Line[] = [];
  /** Running runs, by id, with their line. */
  private readonly running = new Map<string, Line>();
  /** Accepts whose journal record is not written yet, by the run they join. */
  private readonly holds = new Map<string, number>();
  /** Runs with at least one accept journalled (or read back from the journal). */
  private readonly recorded = new Set<string>();
  /** Runs of the receiver's own: deliveries never join them. */
  private readonly own = new Set<string>();
  private closed = false;

  constructor(private readonly maxConcurrentRuns: number) {}

  addLine(line: string): void {
    if (!this.lines.has(line)) this.lines.set(line, { name: line, waiting: [], running: undefined, queued: false });
  }

  /** The line takes no more runs; its waiting runs, returned, never start. A run in progress finishes. */
  removeLine(name: string): string[] {
    const line = this.lines.get(name);
    if (!line) return [];
    this.lines.delete(name);
    const index = this.ready.indexOf(line);
    if (index >= 0) this.ready.splice(index, 1);
    line.queued = false;
    return line.waiting.splice(0);
  }

  /** Runs not started yet on the line, oldest first. */
  waiting(line: string): readonly string[] {
    return this.lines.get(line)?.waiting ?? [];
  }

  /** A run the journal already holds (read back at start-up) waits its turn, last in its line. */
  restore(line: string, runId: string, own: boolean): void {
    const known = this.lineNamed(line);
    known.waiting.push(runId);
    this.recorded.add(runId);
    if (own) this.own.add(runId);
  }

  /**
   * A delivery for the line: it joins the last waiting run, or makes a run with the id `newRunId`
   * gives. The run is held until journalled() is called for this delivery.
   */
  join(line: string, newRunId: () => string): { runId: string; coalesced: boolean } {
    const known = this.lineNamed(line);
    const last = known.waiting.at(-1);
    if (last !== undefined && !this.own.has(last)) {
      this.hold(last);
      return { runId: last, coalesced: true };
    }
    const runId = newRunId();
    known.waiting.push(runId);
    this.hold(runId);
    return { runId, coalesced: false };
  }

  /**
   * A new run nothing joins with (`own`, a run of the receiver's own) or that deliveries may join,
   * last in its line or (`first`) next. Held until journalled() is called for it.
   */
  add(line: string, runId: string, options: { own: boolean; first: boolean }): void {
    const known = this.lineNamed(line);
    if (options.first) known.waiting.unshift(runId);
    else known.waiting.push(runId);
    if (options.own) this.own.add(runId);
    this.hold(runId);
  }

  /** An accept's record is on disk (`written`) or was refused: the run may start once nothing else holds it. */
  journalled(line: string, runId: string, written: boolean): StartRun[] {
    if (written) this.recorded.add(runId);
    const left = (this.holds.get(runId) ?? 1) - 1;
    if (left > 0) {
      this.holds.set(runId, left);
      return [];
    }
    this.holds.delete(runId);
    const known = this.lines.get(line);
    if (!known) return this.next();
    // Every delivery that would have made this run failed to be recorded: it never existed.
    if (!this.recorded.has(runId)) {
      known.waiting = known.waiting.filter((id) => id !== runId);
      this.own.delete(runId);
    }
    this.enqueueIfReady(known);
    return this.next();
  }

  /** A run ended: its line and its slot are free. */
  ended(runId: string): StartRun[] {
    const line = this.running.get(runId);
    if (!line) return [];
    this.running.delete(runId);
    line.running = undefined;
    this.enqueueIfReady(line);
    return this.next();
  }

  /** Every line that can start a run is queued for a slot, in the order given; what can start now is returned. */
  startReady(): StartRun[] {
    for (const line of this.lines.values()) this.enqueueIfReady(line);
    return this.next();
  }

  /** Nothing starts any more. */
  close(): void {
    this.closed = true;
  }

  get runningCount(): number {
    return this.running.size;
  }

  get waitingCount(): number {
    let waiting = 0;
    for (const line of this.lines.values()) waiting += line.waiting.length;
    return waiting;
  }

  private lineNamed(name: string): Line {
    const line = this.lines.get(name);
    if (!line) throw new Error(`no line ${name}`);
    return line;
  }

  private hold(runId: string): void {
    this.holds.set(runId, (this.holds.get(runId) ?? 0) + 1);
  }

  private enqueueIfReady(line: Line): void {
    const next = line.waiting[0];
    if (line.running !== undefined || line.queued || next === undefined || !this.recorded.has(next)) return;
    line.queued = true;
    this.ready.push(line);
  }

  private next(): StartRun[] {
    if (this.closed) return [];
    const starts: StartRun[] = [];
    let index = 0;
    while (this.running.size < this.maxConcurrentRuns && index < this.ready.length) {
      const line = this.ready[index] as Line;
      const runId = line.waiting[0];
      if (runId !== undefined && (this.holds.get(runId) ?? 0) > 0) {
        // Deliveries joining it are still being written; it keeps its place in the queue.
        index += 1;
        continue;
      }
      this.ready.splice(index, 1);
      line.queued = false;
      if (runId === undefined) continue;
      line.waiting.shift();
      line.running = runId;
      this.running.set(runId, line);
      this.recorded.delete(runId);
      this.own.delete(runId);
      starts.push({ line: line.name, runId });
    }
    return starts;
  }
}
