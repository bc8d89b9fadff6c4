/**
 * Where `triggler runs` and `triggler rerun` find the receiver: its admin listener (from --admin,
 * the config, or the default), and its state directory (from --state-dir, the config, or the
 * default) for reading runs when the listener does not answer and for the admin credential.
 */
import * as fs from 'node:fs';
import pino from 'pino';
import { DEFAULT_CONFIG } from './serve-command';
import { request } from './http-request';
import {
  adminAuthorization,
  isFinal,
  listenerUrl,
  loadReceiverConfigFile,
  readAdminCredential,
  type ReceiverConfig,
  RunReader,
  type RunRecord,
  RunStore,
} from '../receiver';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:5001';
export const DEFAULT_STATE_DIR = '/var/lib/triggler';

export { DEFAULT_CONFIG };

/** `--config` as given, else ./receiver.json when there is one here. */
export function configOrDefault(config: string | undefined): string | undefined {
  return config ?? (fs.existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
}

export interface ReceiverLocation {
  /** undefined when the config turns the admin listener off. */
  admin: string | undefined;
  stateDir: string;
  /** The config the addresses came from (--config, or ./receiver.json), if any. */
  config?: string;
}

/** `loaded`: the config of `options.config` when the caller has read it already (it is not read again). */
export function locateReceiver(options: { admin?: string; config?: string; stateDir?: string }, loaded?: ReceiverConfig): ReceiverLocation {
  let admin = options.admin;
  let stateDir = options.stateDir;
  let adminOff = false;
  // --admin and --state-dir together need no config; otherwise ./receiver.json stands in for a --config not given.
  const configPath = options.admin !== undefined && options.stateDir !== undefined ? options.config : configOrDefault(options.config);
  const config = loaded ?? (configPath ? loadReceiverConfigFile(configPath).config : undefined);
  if (config) {
    stateDir ??= config.stateDir;
    if (config.admin === false) adminOff = true;
    else admin ??= listenerUrl(config.admin.host, config.admin.port, false);
  }
  return {
    admin: adminOff && !options.admin ? undefined : (admin ?? DEFAULT_ADMIN_URL).replace(/\/+$/, ''),
    stateDir: stateDir ?? DEFAULT_STATE_DIR,
    ...(config && configPath ? { config: configPath } : {}),
  };
}

/** The runs in a state directory, read from its journal without the lock and without writing anything. */
export async function stateDirHistory(stateDir: string): Promise<RunReader> {
  const store = await RunStore.readOnly(stateDir, pino({ level: 'silent' }));
  return new RunReader(store, () => undefined);
}

/** The listener did not answer at all (nothing listens, or it is not reachable): read the state directory instead. */
export function isUnreachable(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET'].includes(code);
}

/**
 * What it means that the admin listener did not answer a write: where it was asked, how to see
 * whether the receiver runs, and that the action (a run of the receiver) cannot happen without it.
 */
function adminUnreachable(admin: string, what: string, error: Error): Error {
  return new Error(
    [
      `the receiver's admin listener at ${admin} did not answer (${error.message}).`,
      `  Is the receiver running? systemctl status triggler-receiver says (and journalctl -u triggler-receiver why it stopped); is ${admin} its admin address (--admin, or the config's admin)?`,
      `  ${what.charAt(0).toUpperCase()}${what.slice(1)} is a run of the receiver: it needs the receiver running.`,
    ].join('\n'),
    { cause: error },
  );
}

/**
 * A write through the admin listener (`what`: "a re-run", "a rollback"): with the admin credential
 * read from the state directory, which only the receiver's user (or root) can read. Resolves with
 * the run the receiver queued; anything but 202 is an error with the receiver's reason, and a
 * listener that does not answer is said to be one, with how to see whether the receiver runs.
 */
export async function postAdminAction(where: ReceiverLocation, what: string, path: string, body?: unknown): Promise<string> {
  const { admin } = where;
  if (!admin) throw new Error(`the config turns the admin listener off: ${what} needs a running receiver with its admin listener`);
  const credential = readAdminCredential(where.stateDir);
  const response = await request(`${admin}${path}`, {
    method: 'POST',
    headers: { authorization: adminAuthorization(credential), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  }).catch((error: unknown) => {
    throw isUnreachable(error) ? adminUnreachable(admin, what, error as Error) : error;
  });
  const answer = (await response.body.json().catch(() => ({}))) as { run?: { id: string }; error?: string };
  if (response.statusCode !== 202 || !answer.run)
    throw new Error(`the receiver refused (${response.statusCode}): ${answer.error ?? 'no reason given'}`);
  return answer.run.id;
}

/**
 * Polls the admin listener until the run has ended; resolves with its final record. The first looks
 * come soon (a fleet's switch is a run of a tenth of a second, and its host step waits on it), then
 * every `pollMs`.
 */
export async function waitForRun(admin: string, runId: string, pollMs = 250): Promise<RunRecord> {
  for (let wait = Math.min(25, pollMs); ; wait = Math.min(wait * 2, pollMs)) {
    const polled = await request(`${admin}/runs/${encodeURIComponent(runId)}`, { headers: { accept: 'application/json' } });
    if (polled.statusCode !== 200) {
      await polled.body.dump();
      throw new Error(`cannot read run ${runId} (${polled.statusCode})`);
    }
    const { run } = (await polled.body.json()) as { run: RunRecord };
    if (isFinal(run.status)) return run;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
