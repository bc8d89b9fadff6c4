/**
 * Loads driven by wrk, in the same shape for every server they are compared on: a static request
 * (wrk builds it once and runs no Lua per request) for the rejection floods, and pre-built unique
 * requests (a delivery id is never sent twice) for the accept floods, each wrk thread reading its
 * own share from its own file.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface LoadResult {
  perSecond: number;
  /** Requests answered in the whole run. */
  requests: number;
  /** Answers that were not 2xx/3xx. */
  errors: number;
  /** Answers by status (unique loads count them in Lua; static loads do not). */
  statuses?: Record<string, number>;
  /** Requests a thread wanted after its share of unique requests ran out (the thread then stopped). */
  exhausted?: number;
  p50Ms: number;
  p99Ms: number;
}

export interface WrkSettings {
  /** Where the Lua scripts and request files go. */
  scratch: string;
  threads: number;
  connections: number;
  seconds: number;
}

let files = 0;
const scratchFile = (settings: WrkSettings, name: string) => join(settings.scratch, `${name}-${process.pid}-${files++}`);

function runWrk(settings: WrkSettings, url: string, script: string): Promise<LoadResult> {
  const args = [`-t${settings.threads}`, `-c${settings.connections}`, `-d${settings.seconds}s`, '--latency', '-s', script, url];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk failed: ${out}`));
      const ms = (label: string) => {
        const match = new RegExp(`\\s${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
        if (!match) return NaN;
        return Number(match[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[match[2]!]!;
      };
      const counted = /WRK_COUNTS (\{.*\})/.exec(out);
      const counts = counted ? (JSON.parse(counted[1]!) as { statuses: Record<string, number>; exhausted: number }) : undefined;
      resolve({
        perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
        requests: Number(/(\d+) requests in /.exec(out)?.[1] ?? NaN),
        errors: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
        p50Ms: ms('50'),
        p99Ms: ms('99'),
        ...(counts ? { statuses: counts.statuses, exhausted: counts.exhausted } : {}),
      });
    });
  });
}

const lua = (s: string) => JSON.stringify(s);

/** One request, the same every time: wrk builds it once and runs no Lua per request. */
export function staticLoad(
  settings: WrkSettings,
  url: string,
  request: { method: string; path: string; headers: Record<string, string>; body?: string },
): Promise<LoadResult> {
  const script = scratchFile(settings, 'static.lua');
  const headers = Object.entries(request.headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`);
  const source = [
    `wrk.method = ${lua(request.method)}`,
    `wrk.path = ${lua(request.path)}`,
    `wrk.body = ${lua(request.body ?? '')}`,
    ...headers,
  ];
  const file = openSync(script, 'w');
  writeSync(file, `${source.join('\n')}\n`);
  closeSync(file);
  return runWrk(settings, url, script);
}

/** A raw HTTP/1.1 request, as a unique load's file holds it. */
export function rawHttp(method: string, path: string, headers: Record<string, string>, body = ''): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines.join('\r\n')}${lines.length ? '\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * Requests that must differ (unique delivery ids): `make(i)` builds the i-th, `count` of them are
 * written, dealt out to wrk's threads (thread t gets every t-th), and each thread sends its own in
 * turn with a Lua `request` function while a `response` function counts statuses: the same script
 * for every server. Past its share, a thread either starts again (`wrap`: for servers that remember
 * no id, where a repeat costs what the first did) or stops, sending one GET of `stopPath` instead,
 * and the figure says how many it ran out of.
 */
export function uniqueLoad(
  settings: WrkSettings,
  url: string,
  count: number,
  make: (index: number) => string,
  options: { wrap: boolean; stopPath: string },
): Promise<LoadResult> {
  const prefix = scratchFile(settings, 'requests');
  const handles = Array.from({ length: settings.threads }, (_, t) => openSync(`${prefix}-${t + 1}.txt`, 'w'));
  // Written a chunk at a time: a flood's requests are hundreds of MB.
  const pending: string[][] = handles.map(() => []);
  const flush = (t: number) => {
    writeSync(handles[t]!, pending[t]!.join(''));
    pending[t] = [];
  };
  for (let i = 0; i < count; i++) {
    const t = i % settings.threads;
    // One request a line, its CRLFs written as \x01 (which no request holds).
    pending[t]!.push(`${make(i).replaceAll('\r\n', '\x01')}\n`);
    if (pending[t]!.length >= 2000) flush(t);
  }
  handles.forEach((handle, t) => {
    flush(t);
    closeSync(handle);
  });
  const script = scratchFile(settings, 'unique.lua');
  const file = openSync(script, 'w');
  writeSync(
    file,
    `
local counter = 0
local threads = {}
setup = function(thread)
  counter = counter + 1
  thread:set("index", counter)
  threads[#threads + 1] = thread
end
local requests, n, i = {}, 0, 0
statuses = {}
exhausted = 0
init = function(args)
  for line in io.lines(${lua(prefix)} .. "-" .. index .. ".txt") do n = n + 1; requests[n] = line:gsub('\\1', '\\r\\n') end
end
request = function()
  i = i + 1
  if i > n then
    if ${options.wrap ? 'true' : 'false'} then
      i = 1
    else
      exhausted = exhausted + 1
      wrk.thread:stop()
      return wrk.format("GET", ${lua(options.stopPath)})
    end
  end
  return requests[i]
end
response = function(status) statuses[status] = (statuses[status] or 0) + 1 end
done = function(summary, latency)
  local counts, ran_out = {}, 0
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("statuses")) do counts[k] = (counts[k] or 0) + v end
    ran_out = ran_out + thread:get("exhausted")
  end
  local parts = {}
  for k, v in pairs(counts) do parts[#parts + 1] = string.format('"%d": %d', k, v) end
  io.write('WRK_COUNTS {"statuses": {' .. table.concat(parts, ', ') .. '}, "exhausted": ' .. ran_out .. '}\\n')
end
`,
  );
  closeSync(file);
  return runWrk(settings, url, script);
}
