/**
 * Where the receiver's JSON log lines go: stdout, gathered for a turn of the event loop and
 * written together. A synchronous write(2) per line was once the largest single cost of an
 * accepted delivery; handing each burst of lines to the thread pool (pino's asynchronous
 * destination) cost a thread wake-up and a callback per write instead. Lines logged in one turn
 * (a batch of deliveries answered together) now go out in one write(2) once the turn is done, on
 * the event loop's own thread, with no thread and no callback.
 *
 * Nothing is lost and nothing waits without bound:
 * - a write is cut at line boundaries to at most PIPE_BUF bytes, so that lines of the receiver's
 *   worker processes, which share its stdout, never interleave mid-line in a pipe;
 * - stdout that takes nothing now (a non-blocking pipe whose reader is behind) keeps the lines
 *   and tries again shortly, in order; past MAX_HELD_BYTES held, new lines are counted and dropped,
 *   and a line says how many once stdout takes writes again;
 * - what is held is written before the process exits (an exit call, an uncaught error), and a
 *   stop waits (logWritten) until it is.
 */
import { writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';

/** What a write may hold and still not interleave with another process's writes to the same pipe. */
const PIPE_BUF = 4096;
/** Lines held while stdout takes nothing, at most; past it new lines are dropped (and counted). */
const MAX_HELD_BYTES = 16 * 1024 * 1024;
/** How soon stdout that took nothing is tried again. */
const RETRY_MS = 10;
/** Past this, a stop exits anyway: the exit's own last try takes what it can. */
const LOG_WRITTEN_WAIT_MS = 5000;

/** Writes `data` to `fd` synchronously; the bytes written (fewer when the fd would block). */
export type FdWrite = (fd: number, data: Buffer, offset: number, length: number) => number;

const writeToFd: FdWrite = (fd, data, offset, length) => writeSync(fd, data, offset, length);

export class TurnBatchedDestination implements DestinationStream {
  /** Lines taken and not yet encoded for a write. */
  private pending = '';
  /** Bytes encoded but not yet taken by the fd (it would block, or took part of a write). */
  private held: Buffer | undefined;
  private heldFrom = 0;
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private dropped = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly fd: number,
    private readonly write_: FdWrite = writeToFd,
  ) {}

  write(line: string): void {
    if (this.pending.length + this.heldBytes() > MAX_HELD_BYTES) {
      this.dropped += 1;
      return;
    }
    this.pending += line;
    if (!this.scheduled && this.retry === undefined) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.writeOut();
      });
    }
  }

  /** Whether every line taken so far has been written. */
  get written(): boolean {
    return this.pending === '' && this.held === undefined;
  }

  /** Writes what is taken now rather than at the end of the turn (pino's logger.flush()); `done` once it is all written. */
  flush(done?: (error?: Error) => void): void {
    this.writeOut();
    if (done) void this.whenWritten().then(() => done());
  }

  /** Resolves once every line taken so far is written (at once when it is). */
  whenWritten(): Promise<void> {
    if (this.written) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Writes what it can now; what the fd would not take waits for a retry. */
  private writeOut(): void {
    if (!this.writeHeld()) return this.retryLater();
    if (this.dropped > 0) {
      const line = `${JSON.stringify({ level: 40, time: Date.now(), msg: `${this.dropped} log lines dropped: stdout took nothing for too long` })}\n`;
      this.dropped = 0;
      this.pending = line + this.pending;
    }
    if (this.pending !== '') {
      this.held = Buffer.from(this.pending);
      this.heldFrom = 0;
      this.pending = '';
      if (!this.writeHeld()) return this.retryLater();
    }
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** Writes the held bytes in pieces cut at line ends; false when the fd took nothing more. */
  private writeHeld(): boolean {
    const held = this.held;
    while (held !== undefined && this.heldFrom < held.length) {
      const end = pieceEnd(held, this.heldFrom);
      let wrote: number;
      try {
        wrote = this.write_(this.fd, held, this.heldFrom, end - this.heldFrom);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return false;
        // Stdout is gone (a closed pipe, a reader that went away): nothing can be written, ever.
        this.held = undefined;
        this.pending = '';
        return true;
      }
      this.heldFrom += wrote;
    }
    this.held = undefined;
    return true;
  }

  private retryLater(): void {
    this.retry ??= setTimeout(() => {
      this.retry = undefined;
      this.writeOut();
    }, RETRY_MS);
  }

  private heldBytes(): number {
    return this.held === undefined ? 0 : this.held.length - this.heldFrom;
  }

  /** The process is exiting: what is held is written now, waiting (up to a second) for a reader that is behind; what it would not take is lost. */
  flushBeforeExit(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    for (let attempt = 0; attempt < 100 && !this.written; attempt++) {
      this.writeOut();
      clearTimeout(this.retry);
      this.retry = undefined;
      if (!this.written) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, RETRY_MS);
    }
  }
}

/** The end of the next piece to write from `from`: at most PIPE_BUF bytes, cut after a newline (a longer line goes whole). */
function pieceEnd(data: Buffer, from: number): number {
  if (data.length - from <= PIPE_BUF) return data.length;
  const lastNewline = data.lastIndexOf(0x0a, from + PIPE_BUF - 1);
  if (lastNewline >= from) return lastNewline + 1;
  const next = data.indexOf(0x0a, from + PIPE_BUF);
  return next < 0 ? data.length : next + 1;
}

let stdout: TurnBatchedDestination | undefined;

/** Stdout's one destination in this process (every logger writing JSON lines shares it), written before the process exits. */
export function batchedStdout(): TurnBatchedDestination {
  if (stdout === undefined) {
    const destination = new TurnBatchedDestination(1);
    process.on('exit', () => destination.flushBeforeExit());
    stdout = destination;
  }
  return stdout;
}

/**
 * Resolves once every JSON line logged so far (by any logger: they share stdout's one
 * destination) is written, at most LOG_WRITTEN_WAIT_MS: call it just before the process exits. A
 * line logged after it is still taken (and written by the exit). Pretty lines are written as they
 * come.
 */
export function logWritten(): Promise<void> {
  const stream = stdout;
  if (stream === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, LOG_WRITTEN_WAIT_MS);
    void stream.whenWritten().then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
