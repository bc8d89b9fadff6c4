/**
 * The admin listener, on loopback by default. Reads need nothing more than reaching it:
 *   GET /healthz        JSON: whether the journal takes writes and the token source answers; 503 when not
 *   GET /metrics        Prometheus text format
 *   GET /               the runs page (HTML, ./runs-page)
 *   GET /runs?limit=N   newest first
 *   GET /runs/<id>      JSON, or the run's page for `Accept: text/html`
 *   GET /runs/<id>/log  text/plain
 *   GET /runs/<id>/log/events  the log as server-sent events, following a running run
 *   GET /deliveries, /deliveries/<id>   recent deliveries, JSON or a page (./deliveries-page)
 * Writes (POST, the actions the composition root registers: a rollback, a re-run, a redelivery)
 * need the admin credential as well (./admin-credential): `Authorization: Bearer <token>`, 401
 * without it.
 *
 * Its reads need no credential because only this host reaches it. A web page the operator opens
 * could still reach it by pointing a name of its own at 127.0.0.1 (DNS rebinding), so a request
 * whose `Host` is not one of the listener's own names is refused (421) before anything is read.
 * Its connections are capped apart from the delivery listener's, so that held-open pages and
 * live logs cannot use up the file descriptors that deliveries and runs need.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { answerFor, ERROR_CATALOGUE, ReceiverError, type Reply, replyFor } from '../errors';
import type { LiveRunLog } from '../runs/run-log';
import type { RunRecord } from '../runs/run-record';
import type { TriggerReleases } from '../runs/run-reader';
import { isAuthorized } from './admin-credential';
import { answerDeliveries, isDeliveriesPath } from './deliveries-page';
import type { DeliveryHistory } from './delivery-recorder';
import { answerClientError, rawAnswer, readBody, sendJson } from './http-io';
import { DEFAULT_VIEWER_BUFFER_BYTES, type LiveLogLimits, LiveLogs } from './live-log';
import { sendRunPage, sendRunsPage, wantsHtml } from './runs-page';

/** What the admin listener reads: the run records and their logs. */
export interface RunHistory {
  runs(limit?: number): RunRecord[];
  run(id: string): RunRecord | undefined;
  runLog(id: string): Promise<Buffer | undefined>;
  /** The log of a run whose output is still coming, to follow. @default none: a live run's log is sent once it has ended */
  liveLog?(id: string): LiveRunLog | undefined;
  /** Each deploy trigger's current and previous release, for the runs page's summary. @default none: the summary takes the current release from the runs */
  releases?(): Promise<TriggerReleases[]>;
}

/** A write through the admin listener: `POST <path>`, with the admin credential. */
export interface AdminAction {
  /** The path it answers; its capture groups are handed to `run`. */
  path: RegExp;
  run(params: string[], body: Buffer): Promise<Reply>;
}

export interface AdminServerOptions {
  /** The token a write must carry. */
  credential: string;
  /** @default none: the listener is read-only */
  actions?: readonly AdminAction[];
  /** What /healthz reports. @default always ok */
  health?: () => Promise<AdminHealth>;
  /** `GET /metrics`. @default 404 */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** Where a request that fails on our side is logged, with its stack. @default not logged */
  logger?: Logger;
  /** Connections open at once; past it a connection is answered 503 and closed. @default 256 */
  maxConnections?: number;
  /**
   * Names besides the listener's own (`localhost`, `127.0.0.1`, `[::1]`, the address it listens
   * on) that a request's `Host` may carry, with or without the port. @default none
   */
  allowedHosts?: readonly string[];
  /** Live-log viewers. @default 128 in all, 64 per run, 256 KiB unsent each beyond the log so far */
  liveLog?: Partial<LiveLogLimits>;
  /** The recent deliveries `GET /deliveries` shows. @default none: 404 */
  deliveries?: DeliveryHistory;
}

/** /healthz: overall `ok` only when every part is; each part says its own. */
export interface AdminHealth {
  status: 'ok' | 'degraded';
  [part: string]: unknown;
}

const RUN_LOG_PATH = /^\/runs\/([A-Za-z0-9_-]{1,64})\/log$/;
const RUN_PATH = /^\/runs\/([A-Za-z0-9_-]{1,64})$/;
const RUN_EVENTS_PATH = /^\/runs\/([A-Za-z0-9_-]{1,64})\/log\/events$/;
/** An action's body is a few fields of JSON. */
const ACTION_BODY_BYTES = 64 * 1024;

export const DEFAULT_ADMIN_LIMITS = {
  maxConnections: 256,
  maxViewers: 128,
  maxViewersPerRun: 64,
  viewerBufferBytes: DEFAULT_VIEWER_BUFFER_BYTES,
};

/** The names every admin listener answers to, whatever its address. */
const OWN_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** `Host: name[:port]` or `Host: [v6][:port]`, split; undefined when it is neither. */
export function splitHost(host: string): { name: string; port: string | undefined } | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host);
  return match ? { name: match[1]!.toLowerCase(), port: match[2] } : undefined;
}

/** Whether `Host` names this listener: one of its own names or addresses, or one configured, on its own port when a port is given. */
function hostIsOurs(req: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const host = splitHost(req.headers.host ?? '');
  if (!host) return false;
  const { localAddress, localPort } = req.socket;
  if (host.port !== undefined && Number(host.port) !== localPort) return false;
  if (allowed.has(host.name)) return true;
  if (!localAddress) return false;
  const local = (localAddress.startsWith('::ffff:') ? localAddress.slice(7) : localAddress).toLowerCase();
  return host.name === (local.includes(':') ? `[${local}]` : local);
}

/** The admin listener, and its live-log viewers (which the tests and the bench look at). */
export interface AdminServer extends Server {
  liveLogs: LiveLogs;
}

export function createAdminServer(history: RunHistory, options: AdminServerOptions): AdminServer {
  const actions = options.actions ?? [];
  const allowedHosts = new Set(
    [...OWN_HOSTS, ...(options.allowedHosts ?? [])].map((name) =>
      (name.includes(':') && !name.startsWith('[') ? `[${name}]` : name).toLowerCase(),
    ),
  );
  const liveLogs = new LiveLogs(history, {
    maxViewers: options.liveLog?.maxViewers ?? DEFAULT_ADMIN_LIMITS.maxViewers,
    maxViewersPerRun: options.liveLog?.maxViewersPerRun ?? DEFAULT_ADMIN_LIMITS.maxViewersPerRun,
    viewerBufferBytes: options.liveLog?.viewerBufferBytes ?? DEFAULT_ADMIN_LIMITS.viewerBufferBytes,
  });

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<Reply | undefined> {
    const target = req.url ?? '/';
    // A request target that is no path (`//[`, `*`) must not reach the URL parser, which throws.
    if (target[0] !== '/' || target.startsWith('//')) return { status: 400, body: { error: 'the request target must be a path' } };
    let url: URL;
    try {
      url = new URL(target, 'http://admin');
    } catch {
      return { status: 400, body: { error: 'the request target is not a valid path' } };
    }
    // After the target's shape (which tells a caller nothing), before anything is read or done.
    if (!hostIsOurs(req, allowedHosts))
      throw new ReceiverError(
        'misdirected',
        `Host ${JSON.stringify((req.headers.host ?? '').slice(0, 100))} is not one of this listener's names`,
      );
    if (req.method === 'POST') {
      for (const action of actions) {
        const match = action.path.exec(url.pathname);
        if (!match) continue;
        if (!isAuthorized(req, options.credential)) {
          return {
            status: 401,
            body: {
              error: "unauthorized: a write needs the admin credential (Authorization: Bearer <the token in the stateDir's admin-token>)",
            },
          };
        }
        return action.run(match.slice(1), await readBody(req, ACTION_BODY_BYTES));
      }
      return { status: 404, body: { error: 'not found' } };
    }
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return { status: 405, body: { error: 'method not allowed: use GET, or POST for an action' }, headers: { allow: 'GET, POST' } };
    if (url.pathname === '/healthz') {
      const health = (await options.health?.()) ?? { status: 'ok' };
      return { status: health.status === 'ok' ? 200 : 503, body: health };
    }
    if (url.pathname === '/metrics' && options.metrics) {
      const { contentType, body } = await options.metrics();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return undefined;
    }
    if (url.pathname === '/') {
      await sendRunsPage(res, history, url.searchParams);
      return undefined;
    }
    if (options.deliveries && isDeliveriesPath(url.pathname)) return answerDeliveries(req, res, url, options.deliveries);
    const eventsMatch = RUN_EVENTS_PATH.exec(url.pathname);
    if (eventsMatch) {
      if (!history.run(eventsMatch[1]!)) return { status: 404, body: { error: 'no such run' } };
      await liveLogs.stream(req, res, eventsMatch[1]!);
      return undefined;
    }
    if (url.pathname === '/runs') {
      const limit = Number(url.searchParams.get('limit') ?? '50');
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        return { status: 400, body: { error: 'limit must be a whole number from 1 to 10000' } };
      return { status: 200, body: { runs: history.runs(limit) } };
    }
    const logMatch = RUN_LOG_PATH.exec(url.pathname);
    if (logMatch) {
      const log = await history.runLog(logMatch[1]!);
      if (!log) return { status: 404, body: { error: 'no log for that run' } };
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': log.length });
      res.end(log);
      return undefined;
    }
    const runMatch = RUN_PATH.exec(url.pathname);
    if (runMatch && wantsHtml(req)) {
      await sendRunPage(res, history, runMatch[1]!);
      return undefined;
    }
    if (runMatch) {
      const run = history.run(runMatch[1]!);
      return run ? { status: 200, body: { run } } : { status: 404, body: { error: 'no such run' } };
    }
    return { status: 404, body: { error: 'not found' } };
  }

  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    // Nothing this listener sends is to be read as another type than it says (a log as a page).
    res.setHeader('x-content-type-options', 'nosniff');
    answer(req, res).then(
      (reply) => reply && sendJson(res, reply),
      (error: unknown) => {
        const { code, reply } = answerFor(error);
        if (code === 'internal') options.logger?.error({ err: error, path: (req.url ?? '').slice(0, 200) }, 'admin request failed');
        if (res.headersSent) return res.destroy();
        sendJson(res, reply);
      },
    );
  });
  // Past the cap a connection is answered at once, without being read, and closed.
  const maxConnections = options.maxConnections ?? DEFAULT_ADMIN_LIMITS.maxConnections;
  const overCap = new WeakSet<Socket>();
  let connections = 0;
  let lastRefusalLogged = 0;
  server.on('connection', (socket: Socket) => {
    connections += 1;
    socket.once('close', () => (connections -= 1));
    if (connections <= maxConnections) return;
    overCap.add(socket);
    // One line a second at most: a flood of connections must not become a flood of log lines.
    if (Date.now() - lastRefusalLogged >= 1000) {
      lastRefusalLogged = Date.now();
      options.logger?.[ERROR_CATALOGUE['too-many-connections'].level](
        { connections, maxConnections },
        'admin connection refused: too many connections',
      );
    }
    socket.once('finish', () => socket.destroy());
    socket.end(OVER_CAPACITY);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (overCap.has(socket)) return void socket.destroy();
    answerClientError(error, socket);
  });
  server.on('close', () => liveLogs.closeAll());
  return Object.assign(server, { liveLogs });
}

const OVER_CAPACITY = rawAnswer(replyFor('too-many-connections'), 'Service Unavailable');
