/**
 * The receiver put together — the composition root, and the only module that imports across the
 * layers: config, the delivery side (http/, schemes/, tokens/) and the runs (runs/). The two meet
 * only through the DeliverySink contract (./delivery).
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import { Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { privateKeyProblem } from '../protocol';
import { adminActions } from './admin-actions';
import type { ReceiverConfig } from './config/schema';
import { TriggerTable } from './config/trigger-table';
import type { DeliverySink } from './delivery';
import { ensureAdminCredential } from './http/admin-credential';
import { createAdminServer } from './http/admin-server';
import { createDeliveryServer, type DeliveryServer } from './http/delivery-server';
import { ReceiverMetrics } from './metrics';
import { Notifier } from './notify/notifier';
import type { RejectionLog } from './http/rejection-log';
import type { RunReader } from './runs/run-reader';
import { publicRecord } from './runs/run-record';
import type { SecretLookup } from './runs/deploy/ssh-access';
import { Runner } from './runs/runner';
import { ReceiverTokens, type TokenSourceOptions } from './tokens/receiver-tokens';

export interface ReceiverOptions {
  logger?: Logger;
  tokenSources?: TokenSourceOptions;
  /** Epoch milliseconds; tests move the clock. */
  now?: () => number;
}

/** A started receiver, in one process or with worker processes. */
export interface Receiver {
  /** `http://host:port` of the delivery listener. */
  url: string;
  /** `http://host:port` of the admin listener, when it is on. */
  adminUrl?: string;
  logger: Logger;
  /** What /metrics shows. */
  metrics: ReceiverMetrics;
  /**
   * The receiver's answer to SIGHUP. With a config: its triggers, tokens, notifications and
   * certificate take effect (runs in progress finish under the settings they started with; fields
   * that need a restart are named in the log); tokens that cannot be had refuse the whole reload,
   * leaving the old config in use. Without one: the token file and certificate are re-read.
   */
  reload(next?: ReceiverConfig): Promise<void>;
  /** Stop taking deliveries, let running commands finish (up to the grace), then stop. */
  close(): Promise<void>;
}

/** The receiver in this one process, with its parts in reach (for tests and the demo). */
export interface InProcessReceiver extends Receiver {
  runner: Runner;
  history: RunReader;
  tokens: ReceiverTokens;
  /** The delivery listener's rejections, counted by reason. */
  rejections: RejectionLog;
}

/** What takes deliveries and hands them to the runner: the delivery listener here, or the worker processes. */
export interface DeliveryFront {
  url: string;
  /** The front's token source, when it has one in this process (notifications and /healthz use it). */
  tokens?: ReceiverTokens;
  /** Takes a reloaded config's triggers, tokens and certificate (or, without one, re-reads the tokens). */
  reload(next?: ReceiverConfig): Promise<void>;
  /**
   * Answer 503 to every new request from now on, still listening, so that a sender learns to
   * retry rather than finding the port closed; resolves once the requests in flight are answered.
   */
  refuse(): Promise<void>;
  /** Stop listening. */
  close(): Promise<void>;
}

export async function listen(server: Server, host: string, port: number): Promise<string> {
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${server instanceof TlsServer ? 'https' : 'http'}://${shownHost}:${address.port}`;
}

/**
 * The receiver's log: JSON lines (for journald and log shippers), or, with TRIGGLER_LOG_FORMAT=pretty
 * (what `triggler serve` sets on a terminal), readable lines with local times and level names.
 * Worker processes inherit the variable, so every process logs alike.
 */
export function receiverLogger(config: ReceiverConfig, fields: Record<string, unknown> = {}): Logger {
  const options = { level: config.log.level, base: { service: 'triggler-receiver', ...fields } };
  if (process.env.TRIGGLER_LOG_FORMAT !== 'pretty') return pino(options);
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pino(options, pretty({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname,service', sync: true }));
}

export function openRunner(config: ReceiverConfig, logger: Logger, secretNamed?: SecretLookup): Promise<Runner> {
  return Runner.open({
    ...(secretNamed ? { secretNamed } : {}),
    stateDir: config.stateDir,
    triggers: config.triggers,
    maxConcurrentRuns: config.limits.maxConcurrentRuns,
    runLogBytes: config.limits.runLogBytes,
    keepRuns: config.limits.keepRuns,
    maxRememberedIds: config.limits.rememberedIds,
    shutdownGraceSeconds: config.limits.shutdownGraceSeconds,
    logger,
    // Tokens that come from the environment never reach the commands' environment.
    withheldEnv: config.triggers.flatMap((t) => (t.tokenEnv ? [t.tokenEnv] : [])),
  });
}

function tokenSourceOptions(logger: Logger, options: ReceiverOptions): TokenSourceOptions {
  return { logger, ...options.tokenSources, now: options.tokenSources?.now ?? options.now ?? Date.now };
}

export function openTokens(config: ReceiverConfig, logger: Logger, options: ReceiverOptions = {}): Promise<ReceiverTokens> {
  return ReceiverTokens.open(config, new TriggerTable(config.triggers, config.signature.iterations), tokenSourceOptions(logger, options));
}

/**
 * The fields of a reloaded config that cannot change under a running receiver: its listeners,
 * state directory, processes, limits, signature settings and log level. They keep their values
 * until a restart.
 */
export function fieldsNeedingRestart(running: ReceiverConfig, next: ReceiverConfig): string[] {
  const fields: [string, unknown, unknown][] = [
    ['listen.host', running.listen.host, next.listen.host],
    ['listen.port', running.listen.port, next.listen.port],
    ['listen.tls (on or off)', running.listen.tls === undefined, next.listen.tls === undefined],
    ['admin', running.admin, next.admin],
    ['stateDir', running.stateDir, next.stateDir],
    ['workers', running.workers, next.workers],
    ['signature', running.signature, next.signature],
    ['limits', running.limits, next.limits],
    ['log', running.log, next.log],
  ];
  return fields.filter(([, before, after]) => JSON.stringify(before) !== JSON.stringify(after)).map(([name]) => name);
}

/** The delivery side: triggers, tokens and the listener, handing verified deliveries to `sink`. */
export async function openDeliveryServer(config: ReceiverConfig, sink: DeliverySink, logger: Logger, options: ReceiverOptions = {}): Promise<{ deliveries: DeliveryServer; tokens: ReceiverTokens; reload(next?: ReceiverConfig): Promise<void> }> {
  const now = options.now ?? Date.now;
  const tokens = await openTokens(config, logger, options);
  const triggers = new TriggerTable(config.triggers, config.signature.iterations);
  const deliveries = createDeliveryServer({ config, triggers, tokens, sink, logger, now });
  return { deliveries, tokens, reload: (next) => reloadDeliveryServer(deliveries, tokens, next, tokenSourceOptions(logger, options)) };
}

/**
 * The delivery side's part of a reload. With a config: its triggers, tokens and certificate, none
 * of them in use unless all can be had (the certificate is read and the new token sources opened
 * first). Without one: the token sources and the certificate in use are read again.
 */
async function reloadDeliveryServer(deliveries: DeliveryServer, tokens: ReceiverTokens, next: ReceiverConfig | undefined, tokenOptions: TokenSourceOptions): Promise<void> {
  if (!next) {
    await tokens.reload();
    deliveries.reloadCertificate();
    return;
  }
  const triggers = new TriggerTable(next.triggers, next.signature.iterations);
  const putInUse = deliveries.prepareReconfigure(triggers, next.listen.tls);
  await tokens.reconfigure(next, triggers, tokenOptions);
  putInUse();
}

/** How long requests in flight may take to be answered once the receiver stops. */
const DRAIN_MS = 5000;

/** Answers 503 to new requests and waits (up to 5 s) for those in flight; still listening. */
export async function refuseDeliveries(deliveries: DeliveryServer): Promise<void> {
  deliveries.refuseNewRequests();
  deliveries.server.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([deliveries.drained(), new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
  clearTimeout(timer);
}

/** Answers 503 to new requests, lets in-flight ones finish (up to 5 s), then closes the listener. */
export async function drainDeliveryServer(deliveries: DeliveryServer): Promise<void> {
  await refuseDeliveries(deliveries);
  const closed = once(deliveries.server, 'close');
  deliveries.server.close();
  deliveries.server.closeAllConnections();
  await closed;
}

/**
 * The one start and stop sequence, whichever front takes the deliveries. Start: the runner (its
 * journal replayed), the front, the admin listener. Stop: the front refuses new deliveries (503)
 * and answers the ones in flight, the admin listener closes, the runner stops (running commands
 * get their grace), and only then does the front stop listening.
 */
export async function assembleReceiver<Front extends DeliveryFront>(
  config: ReceiverConfig,
  logger: Logger,
  openFront: (sink: DeliverySink, metrics: ReceiverMetrics) => Promise<Front>,
): Promise<{ receiver: Receiver; runner: Runner; front: Front }> {
  // Deploy keys come from the token sources, which open after the runner: a run that starts
  // first (one queued before a restart) waits for them.
  let tokensOpened: (tokens: ReceiverTokens | undefined) => void = () => {};
  const secrets = new Promise<ReceiverTokens | undefined>((resolve) => (tokensOpened = resolve));
  const runner = await openRunner(config, logger, async (name) => {
    const tokens = await secrets;
    if (!tokens) throw new Error('the receiver is stopping');
    return tokens.tokenNamed(name);
  });
  const metrics = new ReceiverMetrics(() => runner.stats());
  let front: Front;
  try {
    front = await openFront(metrics.countingSink(runner), metrics);
  } catch (error) {
    tokensOpened(undefined);
    await runner.close();
    throw error;
  }
  // With worker processes the tokens live in the workers: the primary opens its own for notifications and /healthz.
  const ownTokens = front.tokens ? undefined : await openTokens(config, logger).catch(async (error: unknown) => {
    tokensOpened(undefined);
    await front.close();
    await runner.close();
    throw error;
  });
  const tokens = front.tokens ?? ownTokens!;
  tokensOpened(tokens);
  void checkDeployKeys(config, tokens, logger);
  const notifier = openNotifier(config, logger, runner, tokens, metrics);
  // The runner created the state directory (0700); the credential goes beside the journal.
  const admin =
    config.admin === false
      ? undefined
      : createAdminServer(runner.history, {
          credential: ensureAdminCredential(config.stateDir),
          actions: adminActions(runner),
          metrics: () => metrics.text(),
          async health() {
            const journal = runner.health();
            const tokenSource = await tokens.health();
            return { status: journal.status === 'ok' && tokenSource.status === 'ok' ? 'ok' : 'degraded', journal, tokens: tokenSource };
          },
        });
  let adminUrl: string | undefined;
  try {
    if (admin && config.admin !== false) adminUrl = await listen(admin, config.admin.host, config.admin.port);
  } catch (error) {
    await front.close();
    await runner.close();
    ownTokens?.close();
    throw error;
  }
  logger.info({ url: front.url, adminUrl, triggers: config.triggers.length, ...(config.workers > 1 ? { workers: config.workers } : {}) }, 'receiver listening');

  let closing: Promise<void> | undefined;
  const receiver: Receiver = {
    url: front.url,
    ...(adminUrl ? { adminUrl } : {}),
    logger,
    metrics,
    async reload(next) {
      if (!next) return front.reload();
      // The primary's own tokens (with workers) are opened first: tokens that cannot be had refuse the reload.
      await ownTokens?.reconfigure(next, new TriggerTable(next.triggers, next.signature.iterations), { logger });
      await front.reload(next);
      const triggers = await runner.reconfigure(next.triggers);
      void checkDeployKeys(next, tokens, logger);
      notifier.reconfigure(next.notify, next.triggers);
      const needRestart = fieldsNeedingRestart(config, next);
      logger.info({ ...triggers, ...(needRestart.length > 0 ? { needRestart } : {}) }, 'config reloaded');
      if (needRestart.length > 0) logger.warn({ fields: needRestart }, `config reloaded, but ${needRestart.join(', ')} ${needRestart.length === 1 ? 'takes' : 'take'} effect only after a restart`);
    },
    close() {
      closing ??= (async () => {
        logger.info('receiver stopping');
        // New deliveries are answered 503 until the runner has stopped: the sender retries.
        await front.refuse();
        if (admin) {
          admin.closeAllConnections();
          admin.close();
        }
        await runner.close();
        await front.close();
        notifier.close();
        ownTokens?.close();
        logger.info('receiver stopped');
      })();
      return closing;
    },
  };
  return { receiver, runner, front };
}

/**
 * Says at start (and on reload) which deploy keys cannot be had or used, so a missing key shows
 * before the first push fails on it. Only a warning: a source that cannot be reached now may be
 * reachable by then. Never names more of a key than its name.
 */
async function checkDeployKeys(config: ReceiverConfig, tokens: ReceiverTokens, logger: Logger): Promise<void> {
  const names = [...new Set(config.triggers.flatMap((trigger) => (trigger.deploy?.sshKey === undefined ? [] : [trigger.deploy.sshKey])))];
  for (const name of names) {
    let problem: string | undefined;
    try {
      const key = await tokens.tokenNamed(name);
      problem = key === undefined ? 'it is not in the token file or SSM' : privateKeyProblem(key);
    } catch (error) {
      problem = `it cannot be read now: ${(error as Error).message}`;
    }
    if (problem) logger.warn({ sshKey: name }, `deploy key ${name} (deploy.sshKey): ${problem}; fetches with it will fail`);
  }
}

/** Each finished run is counted, and told to whoever its trigger's notify names. */
function openNotifier(config: ReceiverConfig, logger: Logger, runner: Runner, tokens: ReceiverTokens, metrics: ReceiverMetrics): Notifier {
  const notifier = new Notifier({
    targets: config.notify,
    triggers: config.triggers,
    logger,
    tokenNamed: (name) => tokens.tokenNamed(name),
    runLog: (id) => runner.history.runLog(id),
    earlierRuns: (run) => runner.history.runs().filter((other) => other.repository === run.repository && other.branch === run.branch && other.id < run.id),
    onAttempt: (format, outcome) => metrics.notification(format, outcome),
  });
  runner.onRunFinished((run) => {
    metrics.runFinished(run);
    if (notifier.enabled) notifier.runFinished(publicRecord(run));
  });
  return notifier;
}

/** The receiver in one process: the delivery listener hands deliveries straight to the runner. */
export async function startReceiver(config: ReceiverConfig, options: ReceiverOptions = {}): Promise<InProcessReceiver> {
  const logger = options.logger ?? receiverLogger(config);
  const { receiver, runner, front } = await assembleReceiver(config, logger, async (sink, metrics) => {
    const { deliveries, tokens, reload } = await openDeliveryServer(config, sink, logger, options);
    metrics.registerRejectionCounts(() => deliveries.rejections.counts());
    let url: string;
    try {
      url = await listen(deliveries.server, config.listen.host, config.listen.port);
    } catch (error) {
      tokens.close();
      throw error;
    }
    return {
      url,
      tokens,
      rejections: deliveries.rejections,
      reload,
      refuse: () => refuseDeliveries(deliveries),
      async close() {
        await drainDeliveryServer(deliveries);
        tokens.close();
      },
    };
  });
  return { ...receiver, runner, history: runner.history, tokens: front.tokens, rejections: front.rejections };
}
