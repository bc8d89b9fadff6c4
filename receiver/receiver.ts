/** The receiver put together: delivery listener, admin listener, tokens and runner. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import pino, { type Logger } from 'pino';
import type { ReceiverConfig } from './config';
import { createAdminServer } from './admin-server';
import type { DeliverySink, ProviderHandler } from './delivery-context';
import { createDeliveryServer, type DeliveryServer } from './delivery-server';
import { providerHandlers } from './providers';
import { Runner } from './runner';
import { ReceiverTokens, type TokenSourceOptions } from './tokens';
import { TriggerTable } from './trigger-table';

export interface ReceiverOptions {
  logger?: Logger;
  tokenSources?: TokenSourceOptions;
  providers?: Record<string, ProviderHandler>;
  /** Epoch milliseconds; tests move the clock. */
  now?: () => number;
}

export interface RunningReceiver {
  /** `http://host:port` of the delivery listener. */
  url: string;
  /** `http://host:port` of the admin listener, when it is on. */
  adminUrl?: string;
  runner: Runner;
  tokens: ReceiverTokens;
  logger: Logger;
  /** Re-read what can be re-read (the token file): the receiver's answer to SIGHUP. */
  reload(): Promise<void>;
  /** Stop taking deliveries, let running commands finish (up to the grace), then stop. */
  close(): Promise<void>;
}

export async function listen(server: Server, host: string, port: number): Promise<string> {
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shownHost}:${address.port}`;
}

export function openRunner(config: ReceiverConfig, logger: Logger): Promise<Runner> {
  return Runner.open({
    stateDir: config.stateDir,
    triggers: config.triggers,
    maxConcurrentRuns: config.limits.maxConcurrentRuns,
    runLogBytes: config.limits.runLogBytes,
    keepRuns: config.limits.keepRuns,
    shutdownGraceSeconds: config.limits.shutdownGraceSeconds,
    logger,
    // Tokens that come from the environment never reach the commands' environment.
    withheldEnv: config.triggers.flatMap((t) => (t.tokenEnv ? [t.tokenEnv] : [])),
  });
}

export interface DeliveryFront {
  deliveries: DeliveryServer;
  tokens: ReceiverTokens;
}

/** The delivery side: triggers, tokens and the listener, handing verified deliveries to `sink`. */
export async function openDeliveryFront(config: ReceiverConfig, sink: DeliverySink, logger: Logger, options: ReceiverOptions = {}): Promise<DeliveryFront> {
  const now = options.now ?? Date.now;
  const triggers = new TriggerTable(config.triggers, config.signature.iterations);
  const tokens = await ReceiverTokens.open(config, triggers, { logger, ...options.tokenSources, now: options.tokenSources?.now ?? now });
  const deliveries = createDeliveryServer({ config, triggers, tokens, sink, logger, now }, options.providers ?? providerHandlers);
  return { deliveries, tokens };
}

/** Answers 503 to new requests, lets in-flight ones finish (up to 5 s), then closes the listener. */
export async function drainDeliveryServer(deliveries: DeliveryServer): Promise<void> {
  deliveries.refuseNewRequests();
  const closed = once(deliveries.server, 'close');
  deliveries.server.close();
  deliveries.server.closeIdleConnections();
  const cutoff = setTimeout(() => deliveries.server.closeAllConnections(), 5000);
  await closed;
  clearTimeout(cutoff);
}

export async function startReceiver(config: ReceiverConfig, options: ReceiverOptions = {}): Promise<RunningReceiver> {
  const logger = options.logger ?? pino({ level: config.log.level, base: { service: 'triggler-receiver' } });
  const runner = await openRunner(config, logger);
  let front: DeliveryFront;
  try {
    front = await openDeliveryFront(config, runner, logger, options);
  } catch (error) {
    await runner.close();
    throw error;
  }
  const { deliveries, tokens } = front;
  const admin = config.admin === false ? undefined : createAdminServer(runner);

  let url: string;
  let adminUrl: string | undefined;
  try {
    url = await listen(deliveries.server, config.listen.host, config.listen.port);
    if (admin && config.admin !== false) adminUrl = await listen(admin, config.admin.host, config.admin.port);
  } catch (error) {
    deliveries.server.close();
    admin?.close();
    await runner.close();
    throw error;
  }
  logger.info({ url, adminUrl, triggers: config.triggers.length }, 'receiver listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    ...(adminUrl ? { adminUrl } : {}),
    runner,
    tokens,
    logger,
    reload: () => tokens.reload(),
    close() {
      closing ??= (async () => {
        logger.info('receiver stopping');
        await drainDeliveryServer(deliveries);
        if (admin) {
          admin.closeAllConnections();
          admin.close();
        }
        await runner.close();
        tokens.close();
        logger.info('receiver stopped');
      })();
      return closing;
    },
  };
}
