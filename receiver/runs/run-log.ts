/**
 * A run's output, bounded: the first half goes to disk as it comes, the last half is held in memory
 * until the run ends, and what fell between is replaced by one marker line. Errors are usually at
 * the end of a deploy's output, so the end is what must survive.
 */
import * as fs from 'node:fs';
import type { Logger } from 'pino';

export interface RunLogSummary {
  /** The size of the stored log (head, marker, tail). */
  storedBytes: number;
  /** Every byte the command wrote to stdout and stderr, kept or not. */
  outputBytes: number;
  /** True when bytes in the middle were left out. */
  truncated: boolean;
}

/** The line that stands for the bytes left out between the head and the tail. */
export function omissionMarker(omittedBytes: number): string {
  return `\n[triggler: ${omittedBytes} bytes of output left out here]\n`;
}

/** A run's log while its output is still coming: what it holds now, and each new chunk as it comes. */
export interface LiveRunLog {
  snapshot(): Buffer;
  /** Calls `append` with every chunk written from now on (kept in the log or not); the result stops it. */
  follow(append: (chunk: Buffer) => void): () => void;
}

export class BoundedRunLog implements LiveRunLog {
  private readonly headLimit: number;
  private readonly tailLimit: number;
  private readonly stream: fs.WriteStream;
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  /** The newest output past the head, at most tailLimit bytes once trimmed. */
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private outputBytes = 0;
  private finished: Promise<RunLogSummary> | undefined;
  private writeFailed = false;
  private readonly followers = new Set<(chunk: Buffer) => void>();

  constructor(
    readonly path: string,
    readonly limitBytes: number,
    private readonly logger: Logger,
  ) {
    this.headLimit = Math.floor(limitBytes / 2);
    this.tailLimit = limitBytes - this.headLimit;
    this.stream = fs.createWriteStream(path, { flags: 'w', mode: 0o600 });
    this.stream.on('error', (error) => {
      // A full disk must not stop the command: its output is lost, the run goes on.
      if (!this.writeFailed) this.logger.error({ path, err: error.message }, 'cannot write run log');
      this.writeFailed = true;
    });
  }

  write(chunk: Buffer): void {
    if (this.finished) return;
    this.outputBytes += chunk.length;
    for (const append of this.followers) append(chunk);
    let rest = chunk;
    if (this.headBytes < this.headLimit) {
      const take = Math.min(this.headLimit - this.headBytes, rest.length);
      const part = rest.subarray(0, take);
      this.head.push(part);
      this.headBytes += take;
      this.stream.write(part);
      rest = rest.subarray(take);
    }
    if (rest.length === 0) return;
    this.tail.push(rest);
    this.tailBytes += rest.length;
    this.trimTail(this.tailLimit);
  }

  follow(append: (chunk: Buffer) => void): () => void {
    // A function object of its own, so that one follower following twice stops each apart.
    const follower = (chunk: Buffer): void => append(chunk);
    this.followers.add(follower);
    return () => this.followers.delete(follower);
  }

  /** What the log holds so far, as the finished file would read if the run ended now. */
  snapshot(): Buffer {
    const { marker, tail } = this.closingParts();
    return Buffer.concat([...this.head, Buffer.from(marker), ...tail]);
  }

  /** Writes the tail (and the marker when bytes were left out) and closes the file. */
  finish(): Promise<RunLogSummary> {
    if (!this.finished) {
      const { marker, tail } = this.closingParts();
      this.tail = tail;
      const storedBytes = this.headBytes + Buffer.byteLength(marker) + tail.reduce((sum, part) => sum + part.length, 0);
      const summary = { storedBytes, outputBytes: this.outputBytes, truncated: marker !== '' };
      this.finished = new Promise((resolve) => {
        if (this.stream.destroyed) {
          resolve(summary);
          return;
        }
        if (marker) this.stream.write(marker);
        for (const part of tail) this.stream.write(part);
        this.stream.end(() => resolve(summary));
        // After a write error 'finish' never comes; 'close' always does.
        this.stream.once('close', () => resolve(summary));
      });
    }
    return this.finished;
  }

  /**
   * The marker and the part of the tail that fit beside it within the limit. The marker's length
   * depends on the count it reports, so trim until both agree.
   */
  private closingParts(): { marker: string; tail: Buffer[] } {
    const kept = this.headBytes + this.tailBytes;
    if (this.outputBytes === kept) return { marker: '', tail: [...this.tail] };
    let tailRoom = this.tailBytes;
    let marker = omissionMarker(this.outputBytes - this.headBytes - tailRoom);
    while (tailRoom > 0 && this.headBytes + Buffer.byteLength(marker) + tailRoom > this.limitBytes) {
      tailRoom = Math.max(0, this.limitBytes - this.headBytes - Buffer.byteLength(marker));
      marker = omissionMarker(this.outputBytes - this.headBytes - tailRoom);
    }
    return { marker, tail: lastBytes(this.tail, tailRoom) };
  }

  private trimTail(limit: number): void {
    while (this.tailBytes > limit) {
      const first = this.tail[0] as Buffer;
      const excess = this.tailBytes - limit;
      if (first.length <= excess) {
        this.tail.shift();
        this.tailBytes -= first.length;
      } else {
        this.tail[0] = first.subarray(excess);
        this.tailBytes -= excess;
      }
    }
  }
}

function lastBytes(parts: readonly Buffer[], count: number): Buffer[] {
  const out: Buffer[] = [];
  let need = count;
  for (let i = parts.length - 1; i >= 0 && need > 0; i--) {
    const part = parts[i] as Buffer;
    if (part.length <= need) {
      out.unshift(part);
      need -= part.length;
    } else {
      out.unshift(part.subarray(part.length - need));
      need = 0;
    }
  }
  return out;
}
