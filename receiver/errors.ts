/**
 * Every way the receiver refuses a request, in one table: what a client is answered (status,
 * message, Retry-After) and how loud the log is, by code. Inner layers (schemes, tokens, runs)
 * throw a code and a message for the log, never a status; `answerFor` turns whatever was thrown
 * into the answer, for both listeners. A status or a client's wording changes here, once.
 */

/** What a listener answers: a JSON body with its status. */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

export type LogLevel = 'warn' | 'error';

interface ErrorKind {
  status: number;
  /**
   * What the client is told. Absent: the error's own message, which the thrower wrote for the
   * client (a malformed header, an unknown run) and which holds nothing the client did not send.
   */
  clientMessage?: string;
  /** Seconds the client is told to wait before it tries again; absent, no Retry-After. */
  retryAfterSeconds?: number;
  /** The connection closes once the answer is out (the rest of the request is not worth reading). */
  closeConnection?: boolean;
  level: LogLevel;
}

const CANNOT_TAKE_DELIVERIES = 'the receiver cannot take deliveries right now; try again';

export const ERROR_CATALOGUE = {
  /** The request is malformed: a header, the path, the body. */
  'bad-request': { status: 400, level: 'warn' },
  /** A bad signature and an unknown trigger answer alike, so a caller cannot probe which triggers exist. */
  unauthorized: { status: 401, clientMessage: 'unauthorized: unknown trigger or bad signature', level: 'warn' },
  'no-such-webhook': { status: 404, level: 'warn' },
  /** An admin action names a run or a trigger that is not there. */
  'not-found': { status: 404, level: 'warn' },
  /** An admin action cannot be done to what it names (a trigger without a deploy, an admin run). */
  conflict: { status: 409, level: 'warn' },
  'body-too-large': { status: 413, closeConnection: true, level: 'warn' },
  /** A trigger's share of seed hash work is spent; the thrower says how long until it refills. */
  'seed-work': {
    status: 429,
    clientMessage: 'too many seed signatures to check for this trigger; try again',
    retryAfterSeconds: 1,
    level: 'warn',
  },
  /** The bodies in flight hold all of limits.inFlightBodyBytes. */
  'body-budget': { status: 503, clientMessage: 'the receiver is busy; try again', retryAfterSeconds: 1, level: 'warn' },
  /** Past limits.maxConnections: answered on the raw socket, before the request is read. */
  'too-many-connections': {
    status: 503,
    clientMessage: 'the receiver has too many connections open; try again',
    retryAfterSeconds: 1,
    closeConnection: true,
    level: 'warn',
  },
  /** The admin listener was asked under a name not its own (a web page rebinding its name to this host). */
  misdirected: { status: 421, clientMessage: 'this listener does not answer to that host name', level: 'warn' },
  /** Live-log viewers at admin.maxLogViewers or admin.maxLogViewersPerRun. */
  'too-many-viewers': { status: 503, clientMessage: 'too many viewers follow live logs; try again', retryAfterSeconds: 5, level: 'warn' },
  /** A request that arrives once the listener refuses new ones. */
  'shutting-down': {
    status: 503,
    clientMessage: 'the receiver is stopping; try again',
    retryAfterSeconds: 5,
    closeConnection: true,
    level: 'warn',
  },
  /** The runner (or, for a worker, the primary process) takes no more deliveries. */
  stopping: { status: 503, clientMessage: CANNOT_TAKE_DELIVERIES, retryAfterSeconds: 5, level: 'error' },
  /** The journal cannot be written, so nothing accepted would be durable. */
  journal: { status: 503, clientMessage: CANNOT_TAKE_DELIVERIES, retryAfterSeconds: 5, level: 'error' },
  /** A token source cannot answer and has nothing cached. */
  tokens: { status: 503, clientMessage: 'tokens are unavailable; try again', retryAfterSeconds: 5, level: 'error' },
  /** Anything not in this table: a fault of ours, logged with its stack. */
  internal: { status: 500, clientMessage: 'internal error', level: 'error' },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface ReceiverErrorOptions extends ErrorOptions {
  /** Overrides the catalogue's Retry-After for this one (a budget that refills at a known time). */
  retryAfterSeconds?: number;
}

/**
 * An error a client is answered for. `message` is for the log; the client gets the catalogue's
 * wording for the code (or, where the catalogue has none, this message).
 */
export class ReceiverError extends Error {
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: ReceiverErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReceiverError';
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** What crosses the IPC channel between a worker and the primary: the worker answers as one process would. */
  toJSON(): ReceiverErrorData {
    return {
      code: this.code,
      message: this.message,
      ...(this.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: this.retryAfterSeconds }),
    };
  }

  static fromJSON(data: ReceiverErrorData): ReceiverError {
    return new ReceiverError(
      data.code,
      data.message,
      data.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: data.retryAfterSeconds },
    );
  }
}

export interface ReceiverErrorData {
  code: ErrorCode;
  message: string;
  retryAfterSeconds?: number;
}

/**
 * A refusal of a request the client got wrong, with the reason for the log (never a token) apart
 * from what the client is told. Not an Error: refusals are the common case under a flood, and a
 * stack trace each is waste.
 */
export class Rejection {
  constructor(
    readonly code: RejectionCode,
    /** What the client is told when the catalogue has no wording for the code. */
    readonly detail: string,
    /** What the log counts it by: one wording per kind of refusal. */
    readonly reason: string = detail,
    /** Said in the log beside the reason; a function is called only when a line is written. */
    readonly fields: LogFields = NO_FIELDS,
  ) {}

  /** The fields, built now. */
  logFields(): Record<string, unknown> {
    return typeof this.fields === 'function' ? this.fields() : this.fields;
  }
}

export type RejectionCode = 'bad-request' | 'unauthorized' | 'no-such-webhook';
/** Fields for a log line, or how to build them once a line is written (most rejections of a flood are only counted). */
export type LogFields = Record<string, unknown> | (() => Record<string, unknown>);
const NO_FIELDS: Record<string, unknown> = Object.freeze({});

/** Bad signature and unknown trigger answer alike; the log (`reason`) says which. */
export function unauthorized(reason: string, fields: LogFields = NO_FIELDS): Rejection {
  return new Rejection('unauthorized', reason, reason, fields);
}

export function badRequest(message: string, fields: LogFields = NO_FIELDS): Rejection {
  return new Rejection('bad-request', message, message, fields);
}

/** How an error is answered and logged. */
export interface ErrorAnswer {
  code: ErrorCode;
  reply: Reply;
  level: LogLevel;
  /** What the log counts the refusal by (never a token). */
  reason: string;
  /** Said in the log beside the reason. */
  fields: Record<string, unknown>;
}

/** The one mapping from anything thrown to what the client is answered. */
export function answerFor(error: unknown): ErrorAnswer {
  if (error instanceof Rejection) return answer(error.code, error.detail, undefined, error.reason, error.logFields());
  if (error instanceof ReceiverError) return answer(error.code, error.message, error.retryAfterSeconds, error.message, {});
  return answer('internal', 'internal error', undefined, 'internal error', {});
}

function answer(
  code: ErrorCode,
  detail: string,
  retryAfterSeconds: number | undefined,
  reason: string,
  fields: Record<string, unknown>,
): ErrorAnswer {
  const kind: ErrorKind = ERROR_CATALOGUE[code];
  return { code, reply: replyOf(kind, detail, retryAfterSeconds), level: kind.level, reason, fields };
}

/** The answer for a code that is not thrown but answered at once (a request refused on arrival). */
export function replyFor(code: ErrorCode): Reply {
  return replyOf(ERROR_CATALOGUE[code], code, undefined);
}

function replyOf(kind: ErrorKind, detail: string, retryAfterSeconds: number | undefined): Reply {
  const headers: Record<string, string> = {};
  if (kind.closeConnection) headers.connection = 'close';
  const retryAfter = retryAfterSeconds ?? kind.retryAfterSeconds;
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  return { status: kind.status, body: { error: kind.clientMessage ?? detail }, ...(Object.keys(headers).length > 0 ? { headers } : {}) };
}

/**
 * An answer serialized once, written with `writeHead(status, headers)` and `end(body)`: the
 * headers as one flat list of names and values, as Node takes them without building an object.
 */
export interface PreparedAnswer {
  status: number;
  headers: readonly string[];
  /** The same headers with `connection: close`, for a request whose body is not read. */
  closingHeaders: readonly string[];
  body: Buffer;
  level: LogLevel;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export function prepareAnswer(reply: Reply, level: LogLevel = 'warn'): PreparedAnswer {
  const body = Buffer.from(JSON.stringify(reply.body));
  const extra = Object.entries(reply.headers ?? {}).flat();
  const headers = ['content-type', JSON_TYPE, 'content-length', String(body.length), ...extra];
  const closes = reply.headers?.connection === 'close';
  return { status: reply.status, headers, closingHeaders: closes ? headers : [...headers, 'connection', 'close'], body, level };
}

/** The answers of refusals whose client wording is the detail, by code and detail (one per kind of refusal). */
const preparedByDetail = new Map<string, PreparedAnswer>();
/** Past this, details (some name what the client chose) are answered without being kept. */
const PREPARED_DETAILS_MAX = 512;
const preparedByCode = new Map<ErrorCode, PreparedAnswer>();

/** The answer to a refusal, serialized once per code (once per wording where the catalogue has none). */
export function preparedAnswerFor(rejection: Rejection): PreparedAnswer {
  const kind: ErrorKind = ERROR_CATALOGUE[rejection.code];
  if (kind.clientMessage !== undefined) return preparedAnswerOfCode(rejection.code);
  const key = `${rejection.code}\u0000${rejection.detail}`;
  let prepared = preparedByDetail.get(key);
  if (prepared === undefined) {
    prepared = prepareAnswer(replyOf(kind, rejection.detail, undefined), kind.level);
    if (preparedByDetail.size < PREPARED_DETAILS_MAX) preparedByDetail.set(key, prepared);
  }
  return prepared;
}

/**
 * The answer to anything thrown, as answerFor maps it: serialized once per code where it says what
 * the catalogue says (a full body budget, a stopping receiver), else now.
 */
export function preparedAnswerOf({ code, reply, level }: ErrorAnswer): PreparedAnswer {
  const kind: ErrorKind = ERROR_CATALOGUE[code];
  const catalogueRetry = kind.retryAfterSeconds === undefined ? undefined : String(kind.retryAfterSeconds);
  if (kind.clientMessage !== undefined && reply.headers?.['retry-after'] === catalogueRetry) return preparedAnswerOfCode(code);
  return prepareAnswer(reply, level);
}

/** The answer for a code answered at once with the catalogue's wording (replyFor), serialized once. */
export function preparedAnswerOfCode(code: ErrorCode): PreparedAnswer {
  let prepared = preparedByCode.get(code);
  if (prepared === undefined) {
    prepared = prepareAnswer(replyFor(code), ERROR_CATALOGUE[code].level);
    preparedByCode.set(code, prepared);
  }
  return prepared;
}
