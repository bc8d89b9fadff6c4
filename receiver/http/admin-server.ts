/**
 * The admin listener, on loopback by default: the runs and their logs, read-only.
 *   GET /runs?limit=N   newest first
 *   GET /runs/<id>
 *   GET /runs/<id>/log  text/plain
 */
import { createServer, type Server } from 'node:http';
import type { RunRecord } from '../runs/run-record';
import { sendJson } from './http-io';

/** What the admin listener reads: the run records and their logs. */
export interface RunHistory {
  runs(limit?: number): RunRecord[];
  run(id: string): RunRecord | undefined;
  runLog(id: string): Promise<Buffer | undefined>;
}

const RUN_LOG_PATH = /^\/runs\/([A-Za-z0-9_-]{1,64})\/log$/;
const RUN_PATH = /^\/runs\/([A-Za-z0-9_-]{1,64})$/;

export function createAdminServer(history: RunHistory): Server {
  return createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET') return sendJson(res, { status: 405, body: { error: 'method not allowed: use GET' }, headers: { allow: 'GET' } });
    if (url.pathname === '/healthz') return sendJson(res, { status: 200, body: { status: 'ok' } });
    if (url.pathname === '/runs') {
      const limit = Number(url.searchParams.get('limit') ?? '50');
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        return sendJson(res, { status: 400, body: { error: 'limit must be a whole number from 1 to 10000' } });
      }
      return sendJson(res, { status: 200, body: { runs: history.runs(limit) } });
    }
    const logMatch = RUN_LOG_PATH.exec(url.pathname);
    if (logMatch) {
      history.runLog(logMatch[1]!).then(
        (log) => {
          if (!log) return sendJson(res, { status: 404, body: { error: 'no log for that run' } });
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': log.length });
          res.end(log);
        },
        () => sendJson(res, { status: 500, body: { error: 'could not read the log' } }),
      );
      return;
    }
    const runMatch = RUN_PATH.exec(url.pathname);
    if (runMatch) {
      const run = history.run(runMatch[1]!);
      return run ? sendJson(res, { status: 200, body: { run } }) : sendJson(res, { status: 404, body: { error: 'no such run' } });
    }
    sendJson(res, { status: 404, body: { error: 'not found' } });
  });
}
