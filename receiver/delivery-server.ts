/**
 * The delivery listener. Routes:
 *   GET  /healthz                   200 once listening
 *   POST /hooks/<repo>/<branch>     Standard Webhooks (parts URL-encoded; the branch may hold `/`)
 *   POST /hooks/<provider>          a provider's native webhook (github, gitlab, gitea, forgejo, bitbucket)
 *   GET|POST /<repo>-<branch>       the seed-compatible scheme
 * Cheap checks (method, headers, window, known trigger) come before the body is read or any hash.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Rejection, TokensUnavailable, type DeliveryContext, type ProviderHandler } from './delivery-context';
import { answerClientError, BodyTooLarge, readBody, sendJson, type Reply } from './http-io';
import { seedHandler, standardHandler } from './our-schemes';
import { JournalWriteError } from './run-store';
import { RunnerClosedError } from './runner';

export interface DeliveryServer {
  server: Server;
  /** Answer 503 to every new request from now on (the receiver is stopping). */
  refuseNewRequests(): void;
}

function methodNotAllowed(allow: string): Reply {
  return { status: 405, body: { error: `method not allowed: use ${allow}` }, headers: { allow } };
}

function decodePart(part: string, name: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Rejection(400, `path: the ${name} is not valid percent-encoding`);
  }
}

export function createDeliveryServer(context: DeliveryContext, providers: Record<string, ProviderHandler> = {}): DeliveryServer {
  const { limits } = context.config;
  const handleSeed = seedHandler(context);
  const standard = standardHandler(context);
  let stopping = false;

  async function route(req: IncomingMessage): Promise<Reply> {
    const target = req.url ?? '';
    if (target[0] !== '/') return { status: 400, body: { error: 'the request target must be a path' } };
    const query = target.indexOf('?');
    const path = query < 0 ? target : target.slice(0, query);
    const method = req.method ?? '';

    if (path === '/healthz') {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed('GET');
      return { status: 200, body: { status: 'ok' } };
    }

    if (path.startsWith('/hooks/')) {
      if (method !== 'POST') return methodNotAllowed('POST');
      const rest = path.slice('/hooks/'.length);
      const slash = rest.indexOf('/');
      if (slash < 0) {
        const provider = Object.prototype.hasOwnProperty.call(providers, rest) ? providers[rest] : undefined;
        if (!provider) return { status: 404, body: { error: `no such webhook: /hooks/${rest.slice(0, 64)}` } };
        return provider(req, await readBody(req, limits.bodyBytes), context);
      }
      const repository = decodePart(rest.slice(0, slash), 'repository');
      const branch = decodePart(rest.slice(slash + 1), 'branch');
      if (repository === '' || branch === '') throw new Rejection(400, 'path: use /hooks/<repository>/<branch>');
      const checked = standard.precheck(req, repository, branch);
      return standard.handle(checked, await readBody(req, limits.bodyBytes));
    }

    if (method !== 'GET' && method !== 'POST') return methodNotAllowed('GET, POST');
    const route = decodePart(path.slice(1), 'route');
    const reply = await handleSeed(req, route);
    // The seed scheme signs no body; a POST's body is read (within the limit) only to be dropped.
    if (method === 'POST') await readBody(req, limits.bodyBytes);
    return reply;
  }

  function reject(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    let reply: Reply;
    if (error instanceof Rejection) {
      reply = { status: error.status, body: { error: error.clientMessage } };
      context.logger.warn({ status: error.status, reason: error.reason, ...error.fields, path: (req.url ?? '').slice(0, 200), remote: req.socket.remoteAddress }, 'delivery rejected');
    } else if (error instanceof BodyTooLarge) {
      reply = { status: 413, body: { error: error.message }, headers: { connection: 'close' } };
      context.logger.warn({ status: 413, reason: error.message, path: (req.url ?? '').slice(0, 200), remote: req.socket.remoteAddress }, 'delivery rejected');
    } else if (error instanceof RunnerClosedError || error instanceof JournalWriteError) {
      // Not accepted, so not ours to lose: the sender should try again (after a restart, or once
      // the disk takes writes again).
      reply = { status: 503, body: { error: 'the receiver cannot take deliveries right now; try again' }, headers: { 'retry-after': '5' } };
      context.logger.error({ reason: error.message, path: (req.url ?? '').slice(0, 200) }, 'delivery not accepted');
    } else if (error instanceof TokensUnavailable) {
      reply = { status: 503, body: { error: 'tokens are unavailable; try again' }, headers: { 'retry-after': '5' } };
      context.logger.error({ reason: error.message, path: (req.url ?? '').slice(0, 200) }, 'token source unavailable');
    } else {
      reply = { status: 500, body: { error: 'internal error' } };
      context.logger.error({ err: error, path: (req.url ?? '').slice(0, 200) }, 'request failed');
    }
    if (!res.headersSent) sendJson(res, reply);
    else res.destroy();
  }

  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutSeconds * 1000,
      requestTimeout: limits.requestTimeoutSeconds * 1000,
      // How often Node checks those timeouts: a slow client is cut off within a second of them.
      connectionsCheckingInterval: 1000,
      maxHeaderSize: 16 * 1024,
      keepAliveTimeout: 5000,
    },
    (req, res) => {
      if (stopping) {
        sendJson(res, { status: 503, body: { error: 'the receiver is stopping; try again' }, headers: { connection: 'close', 'retry-after': '5' } });
        return;
      }
      route(req).then(
        (reply) => {
          if (reply.status >= 400) {
            context.logger.warn({ status: reply.status, reason: reply.body.error, path: (req.url ?? '').slice(0, 200), remote: req.socket.remoteAddress }, 'request rejected');
          }
          sendJson(res, reply);
        },
        (error: unknown) => reject(req, res, error),
      );
    },
  );
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const status = answerClientError(error, socket);
    if (status !== undefined) context.logger.warn({ status, reason: error.code ?? error.message, remote: socket.remoteAddress }, 'malformed request');
  });
  return {
    server,
    refuseNewRequests() {
      stopping = true;
    },
  };
}
