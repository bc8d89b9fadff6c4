/**
 * How the receiver's parts start, stop and take a new config, without a framework (avvio's
 * ordered close, in small):
 * - a DisposerStack: each part, once started, pushes what stops it; stopping runs them newest
 *   first, every one of them even when one throws. A start that fails part-way stops what it had
 *   started the same way, so start and stop cannot disagree about what there is to stop.
 * - a reload plan: every part prepares its share of a new config (reads, checks, opens) without
 *   touching what is in use; only when all have prepared do all commit. A part that cannot
 *   prepare leaves everything as it was, and what the others prepared is let go.
 */

/** Where a receiver is in its life; `stopping` and `stopped` are for good. */
export type LifecycleState = 'created' | 'starting' | 'serving' | 'stopping' | 'stopped';

type Disposer = () => void | Promise<void>;

export class DisposerStack {
  private readonly disposers: { name: string; dispose: Disposer }[] = [];

  /** `dispose` stops a part that has started; it runs before everything pushed earlier. */
  push(name: string, dispose: Disposer): void {
    this.disposers.push({ name, dispose });
  }

  /**
   * Runs `start` and then, unless it threw, pushes `dispose` for what it started: a part that
   * failed to start has nothing to stop.
   */
  async start<Part>(name: string, start: () => Part | Promise<Part>, dispose: (part: Part) => void | Promise<void>): Promise<Part> {
    const part = await start();
    this.push(name, () => dispose(part));
    return part;
  }

  /**
   * Stops every part, newest first. Each one runs even when an earlier one threw; then the first
   * failure is thrown (with the names of all that failed), so nothing is left running unseen.
   */
  async disposeAll(): Promise<void> {
    const failures: { name: string; error: unknown }[] = [];
    for (let next = this.disposers.pop(); next; next = this.disposers.pop()) {
      try {
        await next.dispose();
      } catch (error) {
        failures.push({ name: next.name, error });
      }
    }
    if (failures.length === 0) return;
    const names = failures.map((failure) => failure.name).join(', ');
    const cause = failures.length === 1 ? failures[0]!.error : new AggregateError(failures.map((failure) => failure.error));
    throw new Error(`could not stop: ${names}`, { cause });
  }
}

/**
 * Starts parts on a fresh stack. When `startParts` throws, everything it had started is stopped
 * (newest first) and its error is thrown; a failure while stopping them is logged by `onDisposeError`,
 * never hiding why the start failed.
 */
export async function startInOrder<Result>(
  parts: DisposerStack,
  startParts: (parts: DisposerStack) => Promise<Result>,
  onDisposeError: (error: unknown) => void,
): Promise<Result> {
  try {
    return await startParts(parts);
  } catch (error) {
    await parts.disposeAll().catch(onDisposeError);
    throw error;
  }
}

/** One part's share of a new config, prepared: nothing in use has changed yet. */
export interface PreparedChange {
  /** Puts the prepared share in use. Cannot fail: whatever could fail was done while preparing. */
  commit(): void;
  /** Lets go of what preparing opened (a token source), when another part could not prepare. */
  abandon?(): void;
}

export type ReloadStep = () => PreparedChange | Promise<PreparedChange>;

/**
 * The reload plan: prepares every step in turn, then commits them all. If a step cannot prepare,
 * the ones prepared before it are abandoned, nothing is committed, and its error is thrown.
 */
export async function prepareThenCommit(steps: readonly ReloadStep[]): Promise<void> {
  const prepared: PreparedChange[] = [];
  try {
    for (const step of steps) prepared.push(await step());
  } catch (error) {
    for (const change of prepared.reverse()) change.abandon?.();
    throw error;
  }
  for (const change of prepared) change.commit();
}
