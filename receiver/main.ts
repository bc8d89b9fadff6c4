/**
 * Serving the receiver: `triggler serve --config FILE`, or the host's bundle of ./daemon.ts
 * (`node receiver.js --config /etc/triggler/receiver.json`). Logs are JSON lines on stdout.
 */
import cluster from 'node:cluster';
import { runDeliveryWorker, startClusteredReceiver } from './cluster';
import { loadReceiverConfigFile } from './config/config-file';
import { ConfigError, type ReceiverConfig } from './config/schema';
import { describeStartupError } from './config/startup-problems';
import { receiverLogger, startReceiver, type Receiver, type ReceiverOptions } from './receiver';

export async function serve(configPath: string, options: ReceiverOptions = {}): Promise<Receiver | undefined> {
  if (cluster.isWorker) {
    await runDeliveryWorker(configPath);
    return undefined;
  }
  const { config, warnings } = loadReceiverConfigFile(configPath);
  const logger = options.logger ?? receiverLogger(config);
  for (const warning of warnings) logger.warn(warning);
  const receiver = config.workers > 1 ? await startClusteredReceiver(config, logger) : await startReceiver(config, { ...options, logger });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'signal received');
    receiver.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'receiver did not stop cleanly');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP (systemctl reload): the config file again, whole. A config that does not parse, or
  // whose tokens cannot be had, is refused as a whole and the running one stays.
  process.on('SIGHUP', () => {
    let next: ReceiverConfig;
    try {
      next = loadReceiverConfigFile(configPath).config;
    } catch (error) {
      logger.error({ err: error }, 'config reload refused: the running config stays in use');
      return;
    }
    receiver.reload(next).catch((error: unknown) => logger.error({ err: error }, 'config reload refused: the running config stays in use'));
  });
  return receiver;
}

/**
 * Exits non-zero with the config's problems (each naming its field), not a stack trace: a path or
 * a port of the config that failed (`configPath`'s) is named by its field, as `check` names it.
 */
export function reportStartupError(error: unknown, configPath?: string): never {
  const message = error instanceof ConfigError ? error.message : `could not start: ${startupProblem(error, configPath) ?? (error instanceof Error ? error.message : String(error))}`;
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
