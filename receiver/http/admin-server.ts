/**
 * The admin listener, on loopback by default. Reads need nothing more than reaching it:
 *   GET /healthz        JSON: whether the journal takes writes and the token source answers; 503 when not
 *   GET /metrics        Prometheus text format
 *   GET /               the runs page (HTML, ./runs-page)
 *   GET /runs?limit=N   newest first
 *   GET /runs/<id>      JSON, or the run's page for `Accept: text/html`
 *   GET /runs/<id>/log  text/plain
 *   GET /runs/<id>/log/events  the log as server-sent events, following a running run
 * Writes (POST, the actions the composition root registers: a rollback, a re-run) need the admin
 * credential as well (./admin-credential): `Authorization: Bearer <token>`, 401 without it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { answerFor, type Reply } from '../errors';
import type { RunRecord } from '../runs/run-record';
import { isAuthorized } from './admin-credential';
import { readBody, sendJson } from './http-io';
import { sendRunPage, sendRunsPage, streamRunLog, wantsHtml } from './runs-page';

/** What the admin listener reads: the run records and their logs. */
export interface RunHistory {
  runs(limit?: number): RunRecord[];
  run(id: string): RunRecord | undefined;
  runLog(id: string): Promise<Buffer | undefined>;
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

export function createAdminServer(history: RunHistory, options: AdminServerOptions): Server {
  const actions = options.actions ?? [];

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
    if (req.method === 'POST') {
      for (const action of actions) {
        const match = action.path.exec(url.pathname);
        if (!match) continue;
        if (!isAuthorized(req, options.credential)) {
          return { status: 401, body: { error: 'unauthorized: a write needs the admin credential (Authorization: Bearer <the token in the stateDir\'s admin-token>)' } };
        }
        return action.run(match.slice(1), await readBody(req, ACTION_BODY_BYTES));
      }
      return { status: 404, body: { error: 'not found' } };
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, body: { error: 'method not allowed: use GET, or POST for an action' }, headers: { allow: 'GET, POST' } };
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
      sendRunsPage(res, history, url.searchParams);
      return undefined;
    }
    const eventsMatch = RUN_EVENTS_PATH.exec(url.pathname);
    if (eventsMatch) {
      if (!history.run(eventsMatch[1]!)) return { status: 404, body: { error: 'no such run' } };
      streamRunLog(req, res, history, eventsMatch[1]!);
      return undefined;
    }
    if (url.pathname === '/runs') {
      const limit = Number(url.searchParams.get('limit') ?? '50');
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) return { status: 400, body: { error: 'limit must be a whole number from 1 to 10000' } };
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

  return createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
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
}
