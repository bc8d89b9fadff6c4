/** The small pieces of HTTP the listeners share: JSON answers and a bounded body reader. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ReceiverError, type Reply } from '../errors';

export function sendJson(res: ServerResponse, reply: Reply): void {
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...reply.headers,
  });
  res.end(text);
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
 * Reads a request body up to `limit` bytes. A declared Content-Length over the limit is refused
 * before a byte is read; a chunked body is cut off as soon as it passes the limit, so an
 * oversized body is never buffered whole. With a budget, the bytes kept are taken from it as they
 * arrive, and past it the body is refused (BodyBudgetExhausted) and reading stops; the caller
 * gives the body's length back once the request is answered. With `keep: false` the body is held
 * to the limit but dropped as it comes (for a scheme that uses no body), and an empty one returned.
 */
export function readBody(req: IncomingMessage, limit: number, budget?: BodyBudget, keep = true): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(new BodyTooLarge(limit));
  if (budget && keep && declared !== undefined && !budget.fits(Number(declared))) return Promise.reject(new BodyBudgetExhausted(budget));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.pause();
      if (budget && keep) budget.give(size);
      chunks.length = 0;
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit) return fail(new BodyTooLarge(limit));
      if (keep) {
        if (budget && !budget.take(chunk.length, size)) return fail(new BodyBudgetExhausted(budget));
        chunks.push(chunk);
      }
      size += chunk.length;
    };
    req.on('data', onData);
    req.once('end', () => {
      if (settled) return;
      settled = true;
      resolve(!keep ? Buffer.alloc(0) : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.once('error', fail);
    // A client that goes away mid-body: what it sent is let go at once.
    req.once('close', () => {
      // Every request closes: the error (a stack trace) only for one that ended before its body.
      if (!settled) fail(new Error('the client closed the connection before its body was read'));
    });
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
