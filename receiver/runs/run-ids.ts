/** Run ids: made by the store that records them, so that two stores (or two tests) share no counter. */
import { randomBytes } from 'node:crypto';

/** Run ids become file names: only what RunIds makes (or something as tame) is accepted. */
const runIdPattern = /^r_[a-z0-9]+$/;

export function isRunId(id: string): boolean {
  return runIdPattern.test(id);
}

/**
 * `r_` + milliseconds (base36, fixed width) + a per-millisecond sequence + random: ids sort in the
 * order they were made by one RunIds, and two processes cannot make the same one.
 */
export class RunIds {
  private lastTime = 0;
  private sequence = 0;

  next(now = Date.now()): string {
    if (now > this.lastTime) {
      this.lastTime = now;
      this.sequence = 0;
    } else {
      this.sequence += 1;
    }
    const time = this.lastTime.toString(36).padStart(9, '0');
    const sequence = this.sequence.toString(36).padStart(3, '0');
    return `r_${time}${sequence}${randomBytes(4).toString('hex')}`;
  }
}
