/**
 * The delivery listener. Its routes are a table (delivery-routes.ts): /healthz, provider webhooks,
 * Standard Webhooks and the seed scheme. For every route the handler's precheck (method, headers,
 * window, known trigger) comes before the body is read, and nothing is accepted before the whole
 * body has been read within the limits.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { ReceiverConfig } from '../config/schema';
import type { TriggerTable } from '../config/trigger-table';
import type { PreparedChange } from '../lifecycle';
import {
  answerFor,
  ERROR_CATALOGUE,
  type ErrorAnswer,
  type PreparedAnswer,
  prepareAnswer,
  preparedAnswerFor,
  preparedAnswerOf,
  preparedAnswerOfCode,
  Rejection,
  type Reply,
  replyFor,
} from '../errors';
import { type DeliveryContext, isPending, type Outcome } from '../schemes/handler';
import { SeedChains } from '../schemes/seed-chains';
import { ConnectionAdmission } from './connection-admission';
import { type DeliveryRecorder, NO_RECORDING } from './delivery-recorder';
import { type Route, routingTable } from './delivery-routes';
import { answerClientError, BodyBudget, BodyRead, declaresNoBody, rawAnswer, sendJson, sendPrepared } from './http-io';
import { RejectionLog } from './rejection-log';

export interface DeliveryServer {
  server: Server;
  /**
   * A reloaded config's triggers (their tokens are reconfigured in place) and certificate. The
   * certificate and key are read and checked now, so that one that cannot be read or used throws before
   * anything changes; committed, the triggers and the certificate are in use.
   */
  prepareReconfigure(triggers: TriggerTable, tls: ReceiverConfig['listen']['tls']): PreparedChange;
  /** Reads the certificate and key in use again, from their current paths (a renewal): new connections get them. */
  reloadCertificate(): void;
  /** Answer 503 to every new request from now on (the receiver is stopping). */
  refuseNewRequests(): void;
  /** Resolves once no request is in flight. */
  drained(): Promise<void>;
  /** Every rejection, counted by reason. */
  rejections: RejectionLog;
}

/** The answer past the connection cap, written on the socket before a byte of the request is read. */
const OVER_CAPACITY = rawAnswer(replyFor('too-many-connections'), 'Service Unavailable');

const NO_BODY = Buffer.alloc(0);

const NOT_FOUND: Reply = { status: 404, body: { error: 'not found' } };
const NOT_A_PATH: Reply = { status: 400, body: { error: 'the request target must be a path' } };

/** One request on its way: what it holds until it is answered. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  body: BodyRead | undefined;
}

export function createDeliveryServer(context: DeliveryContext, recorder: DeliveryRecorder = NO_RECORDING): DeliveryServer {
  const { limits } = context.config;
  const chains = new SeedChains();
  const routes = routingTable(context, chains);
  const budget = new BodyBudget(limits.inFlightBodyBytes);
  let stopping = false;
  let inFlight = 0;
  const drainWaiters: (() => void)[] = [];

  const rejections = new RejectionLog(context.logger);
  const notFound = prepareAnswer(NOT_FOUND);
  const notAPath = prepareAnswer(NOT_A_PATH);
  const methodNotAllowed = new Map(routes.map((candidate) => [candidate, prepareAnswer(candidate.methodNotAllowed)]));
  /**
   * The refusal the deliveries page records for a rejection, made once per rejection: a scheme
   * refuses a flood of forged deliveries to one trigger with one Rejection (unauthorizedPerTrigger),
   * and each record then shares its answer rather than holding a copy.
   */
  const refusals = new WeakMap<Rejection, ErrorAnswer>();
  const recordedRefusal = (rejection: Rejection): ErrorAnswer => {
    let refusal = refusals.get(rejection);
    if (refusal === undefined) {
      refusal = answerFor(rejection);
      refusals.set(rejection, refusal);
    }
    return refusal;
  };

  /**
   * Routes a request, prechecks its headers, reads its body and answers, with no promise unless a
   * step must wait (a token source asked, a seed chain computed, a delivery journalled).
   */
  function serve(exchange: Exchange): void {
    const { req } = exchange;
    const target = req.url ?? '';
    if (target[0] !== '/') return answerReply(exchange, NOT_A_PATH, notAPath);
    const query = target.indexOf('?');
    const path = query < 0 ? target : target.slice(0, query);
    for (const candidate of routes) {
      const resolved = candidate.match(path);
      if (resolved === undefined) continue;
      if (!candidate.methods.includes(req.method ?? '')) {
        return answerReply(exchange, candidate.methodNotAllowed, methodNotAllowed.get(candidate));
      }
      let checked: unknown;
      try {
        checked = candidate.handler.precheck(req, resolved());
      } catch (error) {
        return fail(exchange, error);
      }
      if (!isPending(checked)) return readThenHandle(exchange, candidate, checked);
      checked.then(
        (ready) => readThenHandle(exchange, candidate, ready),
        (error: unknown) => fail(exchange, error),
      );
      return;
    }
    answerReply(exchange, NOT_FOUND, notFound);
  }

  function readThenHandle(exchange: Exchange, candidate: Route, checked: unknown): void {
    if (checked instanceof Rejection) return refuse(exchange, checked);
    if (declaresNoBody(exchange.req)) return handleBody(exchange, candidate, checked, undefined, NO_BODY);
    exchange.body = BodyRead.start(exchange.req, limits.bodyBytes, budget, candidate.keepsBody, (error, body) =>
      handleBody(exchange, candidate, checked, error, body),
    );
  }

  /** The body is read (or there is none): the handler verifies and answers; what the body held is given back once it has. */
  function handleBody(exchange: Exchange, candidate: Route, checked: unknown, error: Error | undefined, body: Buffer): void {
    if (error) return fail(exchange, error);
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = candidate.handler.handle(checked, body);
    } catch (thrown) {
      budget.give(body.length);
      return fail(exchange, thrown);
    }
    if (!isPending(outcome)) {
      budget.give(body.length);
      return answerOutcome(exchange, outcome);
    }
    outcome.then(
      (ready) => {
        budget.give(body.length);
        answerOutcome(exchange, ready);
      },
      (thrown: unknown) => {
        budget.give(body.length);
        fail(exchange, thrown);
      },
    );
  }

  function answerOutcome(exchange: Exchange, outcome: Outcome): void {
    if (outcome instanceof Rejection) refuse(exchange, outcome);
    else answerReply(exchange, outcome);
  }

  /** A reply a handler returned; one of 400 or more is counted as a rejection. */
  function answerReply(exchange: Exchange, reply: Reply, prepared?: PreparedAnswer): void {
    const { req, res } = exchange;
    if (reply.status >= 400) {
      rejections.reject(
        String(reply.body.error ?? `status ${reply.status}`),
        () => ({ status: reply.status, path: (req.url ?? '').slice(0, 200), remote: req.socket.remoteAddress }),
        'request rejected',
      );
    }
    recorder.record(req, context.triggers, reply);
    if (prepared) sendPrepared(res, prepared, false);
    else sendJson(res, reply);
  }

  /** A refusal a handler returned: counted, logged within the budget, answered from the catalogue. */
  function refuse(exchange: Exchange, rejection: Rejection): void {
    const { req } = exchange;
    const answer = preparedAnswerFor(rejection);
    if (recorder !== NO_RECORDING) {
      const refusal = recordedRefusal(rejection);
      recorder.record(req, context.triggers, refusal.reply, refusal);
    }
    rejections.reject(
      rejection.reason,
      () => ({ status: answer.status, ...rejection.logFields(), path: (req.url ?? '').slice(0, 200), remote: req.socket.remoteAddress }),
      'delivery rejected',
      answer.level,
    );
    answerRefusal(exchange, answer);
  }

  /** Anything else thrown on the way: a code from the catalogue (or an internal error), answered by answerFor. */
  function fail(exchange: Exchange, error: unknown): void {
    if (error instanceof Rejection) return refuse(exchange, error);
    const { req } = exchange;
    const path = (req.url ?? '').slice(0, 200);
    const answer = answerFor(error);
    const { code, reply, reason, fields, level } = answer;
    recorder.record(req, context.triggers, answer.reply, answer);
    if (code === 'internal') {
      context.logger.error({ err: error, path }, 'request failed');
    } else if (reply.headers?.['retry-after'] !== undefined) {
      // Not accepted, so not ours to lose: the sender should try again (after a restart, once the
      // disk takes writes again, once the token source answers, once a budget refills).
      rejections.reject(reason, () => ({ status: reply.status, code, ...fields, path }), 'delivery not accepted', level);
    } else {
      rejections.reject(
        reason,
        () => ({ status: reply.status, ...fields, path, remote: req.socket.remoteAddress }),
        'delivery rejected',
        level,
      );
    }
    answerRefusal(exchange, preparedAnswerOf(answer));
  }

  /**
   * A request refused before its body was read: the rest of it is not worth reading (Node would
   * read and drop it until the connection closes), so the connection goes once the answer is out.
   */
  function answerRefusal({ req, res }: Exchange, answer: PreparedAnswer): void {
    if (res.headersSent) return void res.destroy();
    const unread = !req.complete && !declaresNoBody(req);
    if (unread) res.once('finish', () => req.socket.destroy());
    sendPrepared(res, answer, unread);
  }

  const settle = () => {
    inFlight -= 1;
    if (inFlight === 0) for (const resolve of drainWaiters.splice(0)) resolve();
  };

  const serverOptions: ServerOptions = {
    headersTimeout: limits.headersTimeoutSeconds * 1000,
    requestTimeout: limits.requestTimeoutSeconds * 1000,
    // How often Node checks those timeouts: a slow client is cut off within a second of them.
    connectionsCheckingInterval: 1000,
    maxHeaderSize: 16 * 1024,
    keepAliveTimeout: 5000,
  };
  const tls = context.config.listen.tls;
  /** The paths of the certificate in use: start-up's, then those of the last reload that set one. */
  let currentTls = tls;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (overCap.has(req.socket)) {
      // Reached only over TLS: over plain HTTP the answer was written before a byte was read.
      res.once('finish', () => req.socket.destroy());
      return sendPrepared(res, preparedAnswerOfCode('too-many-connections'), false);
    }
    if (stopping) {
      const answer = preparedAnswerOfCode('shutting-down');
      rejections.reject(
        'the receiver is stopping',
        () => ({ status: answer.status, path: (req.url ?? '').slice(0, 200) }),
        'request refused',
        answer.level,
      );
      sendPrepared(res, answer, false);
      return;
    }
    inFlight += 1;
    const exchange: Exchange = { req, res, body: undefined };
    // A response closes once: `on` spares the once-wrapper a request.
    res.on('close', () => {
      // A client gone mid-body: what its body held is let go at once.
      exchange.body?.abandon();
      settle();
    });
    serve(exchange);
  };
  // HTTP/1.1 over TLS 1.2 or newer with Node's default (modern) ciphers, when listen.tls is set.
  // headersTimeout and requestTimeout start only once the handshake is done: a connection that
  // never sends a ClientHello (or sends it slowly) is held to the handshake timeout instead.
  const server: Server = tls
    ? createTlsServer(
        { ...serverOptions, ...tlsFiles(tls), minVersion: 'TLSv1.2', handshakeTimeout: limits.handshakeTimeoutSeconds * 1000 },
        onRequest,
      )
    : createServer(serverOptions, onRequest);
  const overCap = new WeakSet<Socket>();
  const admission = new ConnectionAdmission(limits.maxConnections, limits.maxConnectionsPerClient);
  server.on('connection', (socket: Socket) => {
    const refused = admission.admit(socket);
    if (!refused) return;
    overCap.add(socket);
    rejections.reject(
      refused.reason,
      { status: 503, connections: refused.connections, remote: socket.remoteAddress },
      'connection refused',
      ERROR_CATALOGUE['too-many-connections'].level,
    );
    if (!tls) {
      // Answered 503 at once and closed, without being read: each open connection is a file
      // descriptor and a parser, and they must not run out.
      socket.once('finish', () => socket.destroy());
      socket.end(OVER_CAPACITY);
    } else if (refused.scope === 'client') {
      // One host past its share is not worth a handshake: closed at once.
      socket.destroy();
    }
    // Past the global cap over TLS the answer needs the handshake (bounded by its timeout): the
    // request is then answered 503, as over plain HTTP, rather than the connection reset.
  });
  if (tls) {
    server.on('secureConnection', (socket: Socket & { _parent?: Socket }) => {
      if (socket._parent && overCap.has(socket._parent)) overCap.add(socket);
    });
  }
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (overCap.has(socket)) return void socket.destroy();
    const status = answerClientError(error, socket);
    if (status !== undefined) rejections.reject(error.code ?? error.message, { status, remote: socket.remoteAddress }, 'malformed request');
  });
  server.on('close', () => {
    rejections.close();
    void chains.close();
  });
  return {
    server,
    rejections,
    prepareReconfigure(triggers, nextTls) {
      // A renewed certificate is used for new connections; turning TLS on or off needs a restart.
      const files = tls && nextTls ? checkedTlsFiles(nextTls) : undefined;
      return {
        commit() {
          context.triggers = triggers;
          if (files) {
            (server as TlsServer).setSecureContext(files);
            currentTls = nextTls;
          }
        },
      };
    },
    reloadCertificate() {
      if (tls && currentTls) (server as TlsServer).setSecureContext(tlsFiles(currentTls));
    },
    refuseNewRequests() {
      stopping = true;
    },
    drained() {
      if (inFlight === 0) return Promise.resolve();
      return new Promise((resolve) => drainWaiters.push(resolve));
    },
  };
}

/** The certificate and key of listen.tls, read now (a reload reads them again). */
function tlsFiles(tls: NonNullable<ReceiverConfig['listen']['tls']>): { cert: Buffer; key: Buffer } {
  const read = (field: 'cert' | 'key'): Buffer => {
    try {
      return readFileSync(tls[field]);
    } catch (error) {
      throw new Error(
        `listen.tls.${field}: cannot read ${tls[field]}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        { cause: error },
      );
    }
  };
  return { cert: read('cert'), key: read('key') };
}

/** The certificate and key of listen.tls, read now and checked to make a TLS context (a key that is not the certificate's throws). */
function checkedTlsFiles(tls: NonNullable<ReceiverConfig['listen']['tls']>): { cert: Buffer; key: Buffer } {
  const files = tlsFiles(tls);
  createSecureContext(files);
  return files;
}
