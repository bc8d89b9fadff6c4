/**
 * `GET /runs/<id>/log/events`: a running run's log as server-sent events, for as many viewers as
 * the caps allow, at a cost that does not grow with what a viewer fails to read.
 *
 * Each run followed has one tail, shared by all its viewers: it follows the run log's own append
 * events, formats each new chunk once and writes that same text to every viewer. A viewer gets the
 * log so far on arrival (`append`), then only what the command prints after (`append`), and `end`
 * once the run has finished. A viewer that does not read holds what is written to it in the
 * receiver's memory, so past `viewerBufferBytes` unsent (beyond the log so far it was sent on
 * arrival) it is dropped with a last `dropped` event.
 * Which runs are live is looked up once per run every FOLLOW_POLL_MS (a map lookup, not the log).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ReceiverError } from '../errors';
import type { RunHistory } from './admin-server';

export interface LiveLogLimits {
  /** Viewers of all runs at once. */
  maxViewers: number;
  /** Viewers of one run at once. */
  maxViewersPerRun: number;
  /** Bytes written to a viewer and not yet sent, beyond the log so far it was sent on arrival: past it the viewer is dropped. */
  viewerBufferBytes: number;
}

export const DEFAULT_VIEWER_BUFFER_BYTES = 256 * 1024;

/** How often a followed run is looked at for whether it has started or ended. */
const FOLLOW_POLL_MS = 250;
const HEARTBEAT_MS = 15_000;
/** A dropped viewer's socket is closed once its last event is out, or after this long. */
const DROP_GRACE_MS = 10_000;
const HEARTBEAT = Buffer.from(': still running\n\n');

/** One viewer, as the tail sees it. */
export interface LogViewer {
  readonly res: ServerResponse;
  /** Bytes written to it and not yet sent, the most ever seen. */
  peakBufferedBytes: number;
  /** What it may hold unsent: the bound, and the log so far that it was sent on arrival (which a reader takes a moment to read). */
  allowedBytes: number;
}

const isLive = (status: string | undefined): boolean => status === 'running' || status === 'pending';

const sseEvent = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

/** An event as bytes, made once and written to every viewer: each socket queues the same buffer, not a copy. */
const sseBytes = (name: string, data: unknown): Buffer => Buffer.from(sseEvent(name, data));

/** How many bytes at the end of `bytes` begin a UTF-8 character that the next chunk completes. */
export function unfinishedUtf8Bytes(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!;
    if ((byte & 0xc0) === 0x80) continue;
    const needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needs > back ? back : 0;
  }
  return 0;
}

/** The log so far as one `append` event, without the bytes of a character the next chunk finishes. */
function soFarEvent(soFar: Buffer): Buffer {
  const text = new TextDecoder('utf-8').decode(soFar.subarray(0, soFar.length - unfinishedUtf8Bytes(soFar)));
  return text ? sseBytes('append', text) : Buffer.alloc(0);
}

class RunTail {
  readonly viewers = new Set<LogViewer>();
  private readonly decoder = new TextDecoder('utf-8');
  private unfollow: (() => void) | undefined;
  private timer: NodeJS.Timeout;
  private lastWrite = Date.now();
  /** The `append` event of the log so far, until the next chunk; empty when the log is. */
  private soFarEvent: Buffer | undefined;

  constructor(
    private readonly id: string,
    private readonly history: RunHistory,
    private readonly limits: LiveLogLimits,
    private readonly onDrop: (viewer: LogViewer) => void,
    private readonly onEmpty: () => void,
  ) {
    this.timer = setInterval(() => this.look(), FOLLOW_POLL_MS);
    this.timer.unref();
    this.attach();
  }

  add(res: ServerResponse): LogViewer {
    const viewer: LogViewer = { res, peakBufferedBytes: 0, allowedBytes: this.limits.viewerBufferBytes };
    this.viewers.add(viewer);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.socket?.once('close', () => this.remove(viewer));
    const log = this.unfollow ? this.history.liveLog?.(this.id) : undefined;
    if (log) {
      // Viewers arriving together share one copy of the log so far, formatted once.
      this.soFarEvent ??= soFarEvent(log.snapshot());
      viewer.allowedBytes += this.soFarEvent.length;
      if (this.soFarEvent.length > 0) this.send(viewer, this.soFarEvent);
    }
    return viewer;
  }

  /** Once the run's log exists, follows it; every viewer so far gets what it holds. */
  private attach(): void {
    if (this.unfollow) return;
    const log = this.history.liveLog?.(this.id);
    if (!log) return;
    const soFar = log.snapshot();
    // The bytes of a character not yet finished are the shared decoder's to send with the next chunk.
    this.decoder.decode(soFar.subarray(soFar.length - unfinishedUtf8Bytes(soFar)), { stream: true });
    this.unfollow = log.follow((chunk) => {
      this.soFarEvent = undefined;
      this.broadcast(this.decoder.decode(chunk, { stream: true }));
    });
    this.soFarEvent = soFarEvent(soFar);
    for (const viewer of this.viewers) {
      viewer.allowedBytes += this.soFarEvent.length;
      if (this.soFarEvent.length > 0) this.send(viewer, this.soFarEvent);
    }
  }

  private look(): void {
    const run = this.history.run(this.id);
    if (!run || !isLive(run.status)) {
      // Everything the command wrote was handed to the viewers as it was written, before its run ended.
      this.close(sseEvent('end', { status: run?.status ?? 'unknown' }));
      return;
    }
    this.attach();
    if (Date.now() - this.lastWrite > HEARTBEAT_MS) this.broadcastBytes(HEARTBEAT);
  }

  private broadcast(text: string): void {
    if (text) this.broadcastBytes(sseBytes('append', text));
  }

  private broadcastBytes(bytes: Buffer): void {
    this.lastWrite = Date.now();
    for (const viewer of this.viewers) this.send(viewer, bytes);
  }

  private send(viewer: LogViewer, bytes: Buffer): void {
    viewer.res.write(bytes);
    // Past what the socket takes, every write is held in memory until the viewer reads.
    const buffered = viewer.res.writableLength;
    viewer.peakBufferedBytes = Math.max(viewer.peakBufferedBytes, buffered);
    if (buffered > viewer.allowedBytes) this.drop(viewer);
  }

  private drop(viewer: LogViewer): void {
    this.remove(viewer);
    this.onDrop(viewer);
    const { res } = viewer;
    res.end(
      sseEvent('dropped', {
        reason: `this viewer fell more than ${this.limits.viewerBufferBytes} bytes behind the log; reload to follow it again`,
      }),
    );
    const socket = res.socket;
    if (!socket) return;
    const timer = setTimeout(() => socket.destroy(), DROP_GRACE_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  private remove(viewer: LogViewer): void {
    if (!this.viewers.delete(viewer)) return;
    if (this.viewers.size === 0) this.close('');
  }

  close(last: string): void {
    clearInterval(this.timer);
    this.unfollow?.();
    this.unfollow = undefined;
    for (const viewer of this.viewers) viewer.res.end(last);
    this.viewers.clear();
    this.onEmpty();
  }
}

/** Every run's tail, and the caps on viewers. */
export class LiveLogs {
  private readonly tails = new Map<string, RunTail>();
  private dropped = 0;

  constructor(
    private readonly history: RunHistory,
    readonly limits: LiveLogLimits,
  ) {}

  /** Viewers now, with what each holds unsent at most (for the tests and the bench). */
  viewers(): LogViewer[] {
    return [...this.tails.values()].flatMap((tail) => [...tail.viewers]);
  }

  /** Viewers dropped for falling behind, since the listener started. */
  get droppedViewers(): number {
    return this.dropped;
  }

  /**
   * Answers `GET /runs/<id>/log/events`. A finished run's log is sent whole with `end`; a live one
   * is followed. Past a cap: a `too-many-viewers` error, before anything is written.
   */
  async stream(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const run = this.history.run(id);
    if (run && !isLive(run.status)) {
      const log = (await this.history.runLog(id).catch(() => undefined)) ?? Buffer.alloc(0);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      res.end(`${log.length > 0 ? sseEvent('append', log.toString('utf8')) : ''}${sseEvent('end', { status: run.status })}`);
      return;
    }
    const total = this.viewers().length;
    const tail = this.tails.get(id);
    if (total >= this.limits.maxViewers || (tail?.viewers.size ?? 0) >= this.limits.maxViewersPerRun) {
      throw new ReceiverError(
        'too-many-viewers',
        `live-log viewers at the cap (${total} of ${this.limits.maxViewers}; ${tail?.viewers.size ?? 0} of ${this.limits.maxViewersPerRun} for run ${id})`,
      );
    }
    if (req.socket.destroyed) return;
    (tail ?? this.open(id)).add(res);
  }

  /** Ends every stream (the listener is closing). */
  closeAll(): void {
    for (const tail of [...this.tails.values()]) tail.close('');
  }

  private open(id: string): RunTail {
    const tail = new RunTail(
      id,
      this.history,
      this.limits,
      () => (this.dropped += 1),
      () => {
        if (this.tails.get(id) === tail) this.tails.delete(id);
      },
    );
    this.tails.set(id, tail);
    return tail;
  }
}
