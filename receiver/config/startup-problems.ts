/**
 * Start-up failures in the words `triggler check` uses: the config field and its path or address,
 * instead of a bare `ENOENT ... stat` or `EADDRINUSE`. Also the port check that `check` runs, so
 * a taken port is found before `serve` trips over it.
 */
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { unreadable } from './config-errors';
import type { ReceiverConfig } from './schema';

/** The listeners a config opens, by field: `listen.port` always, `admin.port` unless the admin listener is off. */
function listenersOf(config: ReceiverConfig): { field: string; host: string; port: number }[] {
  return [
    { field: 'listen.port', host: config.listen.host, port: config.listen.port },
    ...(config.admin === false ? [] : [{ field: 'admin.port', host: config.admin.host, port: config.admin.port }]),
  ];
}

function portProblem(field: string, host: string, port: number, code: string | undefined): string {
  if (code === 'EADDRINUSE')
    return `${field}: ${host}:${port} is taken by another program (a receiver already running? ss -ltnp 'sport = :${port}' says which)`;
  if (code === 'EACCES') return `${field}: ${host}:${port} needs privileges this user lacks (ports below 1024); choose a port from 1024`;
  if (code === 'EADDRNOTAVAIL') return `${field}: ${host} is not an address of this machine`;
  return `${field}: cannot listen on ${host}:${port} (${code ?? 'unknown error'})`;
}

/** `check`: each listener's port that cannot be had right now, as `serve` would find it. */
export async function portProblems(config: ReceiverConfig): Promise<string[]> {
  const problems: string[] = [];
  for (const { field, host, port } of listenersOf(config)) {
    const code = await new Promise<string | undefined>((done) => {
      const server = createServer();
      server.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
      server.listen({ host, port, exclusive: true }, () => server.close(() => done(undefined)));
    });
    if (code !== undefined) problems.push(portProblem(field, host, port, code));
  }
  return problems;
}

/** The config fields that name a file or directory the receiver or its commands use, with the path (resolved). */
export function configPaths(config: ReceiverConfig): { field: string; path: string }[] {
  return [
    { field: 'stateDir', path: config.stateDir },
    ...(config.tokens.file ? [{ field: 'tokens.file', path: config.tokens.file }] : []),
    ...(config.listen.tls
      ? [
          { field: 'listen.tls.cert', path: config.listen.tls.cert },
          { field: 'listen.tls.key', path: config.listen.tls.key },
        ]
      : []),
    ...config.triggers.flatMap((trigger, i) => [
      ...(trigger.cwd ? [{ field: `triggers[${i}].cwd`, path: trigger.cwd }] : []),
      ...(trigger.deploy ? [{ field: `triggers[${i}].deploy.path`, path: trigger.deploy.path }] : []),
    ]),
  ];
}

/** What a unit with PrivateTmp=yes (the command runner's on the AWS host) has of its own, empty. */
const PRIVATE_TMP_DIRS = ['/tmp', '/var/tmp'];

/** `/tmp` or `/var/tmp` when `path` is inside it, where the command runner sees another directory than the receiver. */
export function privateTmpOf(path: string): string | undefined {
  return PRIVATE_TMP_DIRS.find((dir) => path === dir || path.startsWith(`${dir}/`));
}

/**
 * Why the command runner cannot start a command in `path`, which is in `tmp`: the run's error and
 * the config's warning say it in the same words.
 */
export function privateTmpProblem(path: string, tmp: string): string {
  return `${path} is under ${tmp}, which the command runner sees as its own private ${tmp} (its unit has PrivateTmp=yes), so no command can start there; choose a directory outside /tmp and /var/tmp`;
}

/**
 * With `commandRunner`, each trigger's `cwd` or `deploy.path` under /tmp or /var/tmp: known before
 * the first push that its commands cannot start, though not refused, since a runner without
 * PrivateTmp (a test's, a hand-made unit's) sees the receiver's /tmp.
 */
export function commandRunnerPathWarnings(config: ReceiverConfig): string[] {
  if (!config.commandRunner) return [];
  return configPaths(config).flatMap(({ field, path }) => {
    const tmp = field.startsWith('triggers[') ? privateTmpOf(path) : undefined;
    return tmp ? [`${field}: ${privateTmpProblem(path, tmp)}`] : [];
  });
}

/**
 * A start-up error (or one of its causes) said as the config field it comes from, or undefined
 * when it is not one of a path or a port of the config.
 */
export function describeStartupError(error: unknown, config: ReceiverConfig): string | undefined {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    const { code, path, syscall, port } = cause as NodeJS.ErrnoException & { port?: number };
    if (syscall === 'listen' || code === 'EADDRINUSE') {
      const listener = listenersOf(config).find((l) => l.port === port);
      if (listener) return portProblem(listener.field, listener.host, listener.port, code);
    }
    if (path !== undefined && code !== undefined) {
      const full = resolve(path);
      const paths = configPaths(config);
      const named = paths.find((p) => p.path === full) ?? paths.find((p) => p.field === 'stateDir' && full.startsWith(`${p.path}/`));
      if (named)
        return `${named.field}: cannot ${syscall === 'mkdir' || syscall === 'open' ? syscall : 'read'} ${full}: ${unreadable(cause)}`;
    }
  }
  return undefined;
}
