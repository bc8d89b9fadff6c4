/**
 * Serving the receiver: `triggler serve --config FILE`, or the host's bundle of ./daemon.ts
 * (`node receiver.js --config /etc/triggler/receiver.json`). Logs are JSON lines on stdout.
 */
import cluster from 'node:cluster';
import { runDeliveryWorker, startClusteredReceiver } from './cluster';
import { loadReceiverConfigFile } from './config/config-file';
import { ConfigError, type ReceiverConfig } from './config/schema';
import { describeStartupError } from './config/startup-problems';
import { logWritten } from './log-destination';
import { receiverLogger, startReceiver, type Receiver, type ReceiverOptions } from './receiver';
import { boundYoungGeneration } from './young-generation';

export async function serve(configPath: string, options: ReceiverOptions = {}): Promise<Receiver | undefined> {
  // A flood of accepts must not leave the process holding what V8 grew for it (./young-generation).
  boundYoungGeneration();
  if (cluster.isWorker) {
    await runDeliveryWorker();
    return undefined;
  }
  // SIGHUP (systemctl reload, cfn-hup) is heard from the first moment: Node's default for it ends
  // the process, and a unit restarted only on failure would then stay down. A reload asked for
  // during start-up (journal replay can take a while) is done once start-up ends: it says the file
  // changed, and the receiver should not keep serving a config its operator replaced.
  const hangup: { serving?: Receiver; askedDuringStartup: boolean } = { askedDuringStartup: false };
  process.on('SIGHUP', () => {
    if (hangup.serving) reloadFromFile(hangup.serving, configPath);
    else hangup.askedDuringStartup = true;
  });
  const { config, warnings } = loadReceiverConfigFile(configPath);
  const logger = options.logger ?? receiverLogger(config);
  for (const warning of warnings) logger.warn(warning);
  const started = config.workers > 1 ? await startClusteredReceiver(config, logger) : await startReceiver(config, { ...options, logger });
  hangup.serving = started;
  if (hangup.askedDuringStartup) {
    logger.info('a reload was asked for during start-up: reloading now');
    reloadFromFile(started, configPath);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'signal received');
    started.close().then(
      () => exitWhenLogWritten(0),
      (error: unknown) => {
        logger.error({ err: error }, 'receiver did not stop cleanly');
        exitWhenLogWritten(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return started;
}

/** The log's last lines reach stdout before the process ends (its destination writes once a turn of the event loop is done). */
function exitWhenLogWritten(code: number): void {
  void logWritten().then(() => process.exit(code));
}

/**
 * SIGHUP's reload: the config file again, whole. A config that does not parse, or whose tokens
 * cannot be had, is refused as a whole and the running one stays.
 */
function reloadFromFile(receiver: Receiver, configPath: string): void {
  let next: ReceiverConfig;
  try {
    next = loadReceiverConfigFile(configPath).config;
  } catch (error) {
    receiver.logger.error({ err: error }, 'config reload refused: the running config stays in use');
    return;
  }
  receiver
    .reload(next)
    .catch((error: unknown) => receiver.logger.error({ err: error }, 'config reload refused: the running config stays in use'));
}

/**
 * Exits non-zero with the config's problems (each naming its field), not a stack trace: a path or
 * a port of the config that failed (`configPath`'s) is named by its field, as `check` names it.
 */
export function reportStartupError(error: unknown, configPath?: string): never {
  const message =
    error instanceof ConfigError
      ? error.message
      : `could not start: ${startupProblem(error, configPath) ?? (error instanceof Error ? error.message : String(error))}`;
  process.stderr.write(`triggler: ${message}\n`);
  process.exit(2);
}

function startupProblem(error: unknown, configPath: string | undefined): string | undefined {
  if (configPath === undefined) return undefined;
  try {
    return describeStartupError(error, loadReceiverConfigFile(configPath).config);
  } catch {
    // The config changed since it was read: the error as it is.
    return undefined;
  }
}
