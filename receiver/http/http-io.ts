/** The small pieces of HTTP the listeners share: JSON answers and a bounded body reader. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type PreparedAnswer, prepareAnswer, ReceiverError, type Reply } from '../errors';

export function sendJson(res: ServerResponse, reply: Reply): void {
  sendPrepared(res, prepareAnswer(reply), false);
}

/** An answer serialized beforehand; `closing` adds `connection: close` (the request's body was not read). */
export function sendPrepared(res: ServerResponse, answer: PreparedAnswer, closing: boolean): void {
  res.writeHead(answer.status, closing ? (answer.closingHeaders as string[]) : (answer.headers as string[]));
  res.end(answer.body);
}

/** An answer written straight on a socket, for a connection refused before its request is read. */
export function rawAnswer(reply: Reply, statusText: string): string {
  const body = JSON.stringify(reply.body);
  const headers = Object.entries({
    ...reply.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  });
  return `HTTP/1.1 ${reply.status} ${statusText}\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${body}`;
}

export class BodyTooLarge extends ReceiverError {
  constructor(readonly limit: number) {
    super('body-too-large', `body is larger than ${limit} bytes`);
    this.name = 'BodyTooLarge';
  }
}

/**
 * The body bytes every request in flight holds together, bounded: an unauthenticated caller can
 * make the receiver buffer a body before anything in it can be checked, and many callers at once
 * could otherwise hold the host's memory. Bodies larger than LARGE_BODY_BYTES may use only three
 * quarters of it, so that a flood of large bodies leaves room for deliveries as our senders and
 * providers send them, which are small.
 */
export class BodyBudget {
  private heldBytes = 0;

  constructor(readonly limitBytes: number) {}

  /** Takes `bytes` more for a body that holds `bodyBytes` so far; false when they do not fit. */
  take(bytes: number, bodyBytes: number): boolean {
    if (this.heldBytes + bytes > this.room(bodyBytes + bytes)) return false;
    this.heldBytes += bytes;
    return true;
  }

  /** Whether a whole body of `bytes` would fit now. */
  fits(bytes: number): boolean {
    return this.heldBytes + bytes <= this.room(bytes);
  }

  private room(bodyBytes: number): number {
    return bodyBytes > LARGE_BODY_BYTES ? Math.floor((this.limitBytes * 3) / 4) : this.limitBytes;
  }

  give(bytes: number): void {
    this.heldBytes -= bytes;
  }

  get held(): number {
    return this.heldBytes;
  }
}

/** Past this size a body is "large": what a real delivery seldom is. */
export const LARGE_BODY_BYTES = 64 * 1024;

/** The bodies in flight hold the whole budget: the sender should try again shortly. */
export class BodyBudgetExhausted extends ReceiverError {
  constructor(budget: BodyBudget) {
    // One wording whatever is held: rejections are counted (and their log lines budgeted) by it.
    super('body-budget', `the bodies in flight hold what limits.inFlightBodyBytes (${budget.limitBytes}) allows`);
    this.name = 'BodyBudgetExhausted';
  }
}

/**
 * A request that declares no body (neither Content-Length nor Transfer-Encoding, or a length of
 * 0) has none: it can be answered as soon as its headers are read, with nothing to wait for.
 */
export function declaresNoBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/** How a body read ends: the body, or why it was refused (BodyTooLarge, BodyBudgetExhausted, a client gone). */
export type BodyDone = (error: Error | undefined, body: Buffer) => void;

const EMPTY_BODY = Buffer.alloc(0);

/**
 * One request's body, read up to `limit` bytes. A declared Content-Length over the limit is
 * refused before a byte is read; a chunked body is cut off as soon as it passes the limit, so an
 * oversized body is never buffered whole. With a budget, the bytes kept are taken from it as they
 * arrive, and past it the body is refused (BodyBudgetExhausted) and reading stops; the caller
 * gives the body's length back once the request is answered. With `keep: false` the body is held
 * to the limit but dropped as it comes (for a scheme that uses no body), and an empty one given.
 *
 * One `data` and one `end` listener: a body that comes in one chunk (what a delivery is) is that
 * chunk, with no list; a small declared body in several chunks is copied into one buffer of its
 * declared size. A client that goes away mid-body is seen by the caller (its response closes),
 * which calls abandon(): what was held is given back.
 */
export class BodyRead {
  private size = 0;
  private first: Buffer | undefined;
  /** A small declared body's one buffer, once a second chunk comes. */
  private whole: Buffer | undefined;
  /** A large or undeclared body's chunks, once a second one comes. */
  private chunks: Buffer[] | undefined;
  private settled = false;
  /** Whether its listeners are on the request (not for a body refused by its declared length). */
  private reading = false;
  private readonly declared: number | undefined;

  private constructor(
    private readonly req: IncomingMessage,
    private readonly limit: number,
    private readonly budget: BodyBudget | undefined,
    private readonly keep: boolean,
    private readonly done: BodyDone,
  ) {
    const declared = req.headers['content-length'];
    this.declared = declared === undefined ? undefined : Number(declared);
  }

  /** Starts reading; `done` is called once, possibly before this returns (a body refused by its declared length). */
  static start(req: IncomingMessage, limit: number, budget: BodyBudget | undefined, keep: boolean, done: BodyDone): BodyRead {
    const read = new BodyRead(req, limit, budget, keep, done);
    const declared = read.declared;
    if (declared !== undefined && declared > limit) read.fail(new BodyTooLarge(limit));
    else if (budget && keep && declared !== undefined && !budget.fits(declared)) read.fail(new BodyBudgetExhausted(budget));
    else {
      read.reading = true;
      req.on('data', read.onData);
      // 'end' comes once, and onEnd settles only once: `on` spares the once-wrapper a request.
      req.on('end', read.onEnd);
    }
    return read;
  }

  /** The request went away before its body was read: what it held is let go at once. */
  abandon(): void {
    if (!this.settled) this.fail(new Error('the client closed the connection before its body was read'));
  }

  private readonly onData = (chunk: Buffer): void => {
    const size = this.size;
    if (size + chunk.length > this.limit) return this.fail(new BodyTooLarge(this.limit));
    if (this.keep) {
      if (this.budget && !this.budget.take(chunk.length, size)) return this.fail(new BodyBudgetExhausted(this.budget));
      if (size === 0) this.first = chunk;
      else if (this.whole !== undefined || (this.chunks === undefined && this.fitsOneBuffer(size + chunk.length))) {
        if (this.whole === undefined) {
          this.whole = Buffer.allocUnsafe(this.declared!);
          this.first!.copy(this.whole, 0);
        }
        chunk.copy(this.whole, size);
      } else (this.chunks ??= [this.first!]).push(chunk);
    }
    this.size = size + chunk.length;
  };

  /** A declared body small enough to be one buffer of its declared size, which this much of it still fits. */
  private fitsOneBuffer(bytes: number): boolean {
    return this.declared !== undefined && this.declared <= LARGE_BODY_BYTES && bytes <= this.declared;
  }

  private readonly onEnd = (): void => {
    if (this.settled) return;
    this.settled = true;
    this.req.off('data', this.onData);
    let body: Buffer;
    if (!this.keep || this.size === 0) body = EMPTY_BODY;
    else if (this.whole !== undefined) body = this.size === this.whole.length ? this.whole : this.whole.subarray(0, this.size);
    else if (this.chunks !== undefined) body = Buffer.concat(this.chunks, this.size);
    else body = this.first!;
    this.first = undefined;
    this.done(undefined, body);
  };

  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    if (this.reading) {
      this.req.off('data', this.onData);
      this.req.off('end', this.onEnd);
      this.req.pause();
    }
    if (this.budget && this.keep) this.budget.give(this.size);
    this.first = this.whole = this.chunks = undefined;
    this.done(error, EMPTY_BODY);
  }
}

/**
 * A request body as BodyRead reads it, as a promise (for the admin listener's small bodies): a
 * client that goes away mid-body rejects it.
 */
export function readBody(req: IncomingMessage, limit: number, budget?: BodyBudget, keep = true): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const read = BodyRead.start(req, limit, budget, keep, (error, body) => (error ? reject(error) : resolve(body)));
    const abandon = () => read.abandon();
    req.once('error', abandon);
    // Every request closes: the error (a stack trace) only for one that ended before its body.
    req.once('close', abandon);
  });
}

/**
 * Errors on a TLS connection before its handshake is done (a timeout, a failed handshake): there is
 * no channel to answer on, and an answer written anyway would wait for a handshake that never comes,
 * holding the connection open.
 */
function beforeTlsHandshake(error: NodeJS.ErrnoException): boolean {
  return error.code?.startsWith('ERR_TLS_') === true || error.code?.startsWith('ERR_SSL_') === true;
}

/** Node's own answers to requests it could not parse, kept when we listen for those errors to log them. */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): number | undefined {
  if (error.code === 'ECONNRESET' || beforeTlsHandshake(error) || !socket.writable) {
    socket.destroy();
    return undefined;
  }
  const status =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 431
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 408
        : error.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? 413
          : 400;
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large' }[status];
  const body = JSON.stringify({ error: reason });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  return status;
}
