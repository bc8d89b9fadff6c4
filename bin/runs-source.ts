/**
 * Where `triggler runs` and `triggler rerun` find the receiver: its admin listener (from --admin,
 * the config, or the default), and its state directory (from --state-dir, the config, or the
 * default) for reading runs when the listener does not answer and for the admin credential.
 */
import pino from 'pino';
import { loadReceiverConfigFile } from '../receiver/config/config-file';
import { RunHistory } from '../receiver/runs/run-history';
import { RunStore } from '../receiver/runs/run-store';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:5001';
export const DEFAULT_STATE_DIR = '/var/lib/triggler';

export interface ReceiverLocation {
  /** undefined when the config turns the admin listener off. */
  admin: string | undefined;
  stateDir: string;
}

export function locateReceiver(options: { admin?: string; config?: string; stateDir?: string }): ReceiverLocation {
  let admin = options.admin;
  let stateDir = options.stateDir;
  let adminOff = false;
  if (options.config) {
    const { config } = loadReceiverConfigFile(options.config);
    stateDir ??= config.stateDir;
    if (config.admin === false) adminOff = true;
    else admin ??= `http://${config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host}:${config.admin.port}`;
  }
  return { admin: adminOff && !options.admin ? undefined : (admin ?? DEFAULT_ADMIN_URL).replace(/\/+$/, ''), stateDir: stateDir ?? DEFAULT_STATE_DIR };
}

/** The runs in a state directory, read from its journal without the lock and without writing anything. */
export async function stateDirHistory(stateDir: string): Promise<RunHistory> {
  const store = await RunStore.readOnly(stateDir, pino({ level: 'silent' }));
  return new RunHistory(store, () => undefined);
}

/** The listener did not answer at all (nothing listens, or it is not reachable): read the state directory instead. */
export function isUnreachable(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET'].includes(code);
}
