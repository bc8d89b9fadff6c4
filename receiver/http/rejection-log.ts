/**
 * Rejections, counted by reason and logged within a budget. A line per rejection would make a
 * flood of forged requests a flood of log lines (journald drops a service's lines past 10,000 per
 * 30 s by default, and with them the lines that matter): the first few per reason per second are
 * logged in full, the rest are counted and summarised once a second
 * (`"rejected": {"bad webhook-signature": 4512}`). The totals since start stay readable through
 * counts(), for a metrics endpoint.
 */
import type { Logger } from 'pino';
import type { LogFields } from '../errors';

export interface RejectionLogOptions {
  /** Rejections logged in full per reason per second. @default 5 */
  perReasonPerSecond?: number;
  /** Reasons counted apart; past it, new ones are counted under OTHER_REASONS. @default 256 */
  maxReasons?: number;
  /** Epoch ms; tests move the clock. */
  now?: () => number;
}

/** Where reasons past maxReasons are counted (a reason may carry a name the client chose). */
export const OTHER_REASONS = '(other reasons)';

export class RejectionLog {
  private readonly totals = new Map<string, number>();
  /** This second's rejections by reason; those past the budget are in `suppressed`. */
  private thisSecond = new Map<string, number>();
  private suppressed = new Map<string, number>();
  private secondStart: number;
  private readonly perReason: number;
  private readonly maxReasons: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    options: RejectionLogOptions = {},
  ) {
    this.perReason = options.perReasonPerSecond ?? 5;
    this.maxReasons = options.maxReasons ?? 256;
    this.now = options.now ?? Date.now;
    this.secondStart = this.now();
  }

  /**
   * Counts a rejection; logs it in full (with `fields`) while its reason is within this
   * second's budget. Fields given as a function are built only then. Returns whether it was logged.
   */
  reject(reason: string, fields: LogFields, message = 'delivery rejected', level: 'warn' | 'error' = 'warn'): boolean {
    const key = this.totals.has(reason) || this.totals.size < this.maxReasons ? reason : OTHER_REASONS;
    this.totals.set(key, (this.totals.get(key) ?? 0) + 1);
    if (this.now() - this.secondStart >= 1000) this.flush();
    const seen = (this.thisSecond.get(key) ?? 0) + 1;
    this.thisSecond.set(key, seen);
    if (seen <= this.perReason) {
      this.logger[level]({ ...(typeof fields === 'function' ? fields() : fields), reason }, message);
      return true;
    }
    this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
    // The summary comes within a second even if no rejection follows; the timer keeps no process alive.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, 1000).unref();
    return false;
  }

  /** Rejections since start, by reason. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.totals);
  }

  /** Logs the summary of what was not logged one by one, and starts a new second. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.suppressed.size > 0) {
      this.logger.warn(
        { rejected: Object.fromEntries(this.suppressed), seconds: Math.max(1, Math.round((this.now() - this.secondStart) / 1000)) },
        'rejections not logged one by one',
      );
    }
    this.thisSecond = new Map();
    this.suppressed = new Map();
    this.secondStart = this.now();
  }

  /** Writes the last summary and stops the timer. */
  close(): void {
    this.flush();
  }
}
