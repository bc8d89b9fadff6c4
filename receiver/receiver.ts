/**
 * The receiver put together — the composition root, and the only module that imports across the
 * layers: config, the delivery side (http/, schemes/, tokens/) and the runs (runs/). The two meet
 * only through the DeliverySink contract (./delivery).
 */
import type { Server } from 'node:http';
import pino, { type Logger } from 'pino';
import { privateKeyProblem } from '../protocol';
import { adminActions } from './admin-actions';
import type { ReceiverConfig } from './config/schema';
import type { TriggerTable } from './config/trigger-table';
import type { DeliverySink } from './delivery';
import { drainDeliveryServer, listen, refuseDeliveries, triggerTableOf } from './delivery-listener';
import { ensureAdminCredential } from './http/admin-credential';
import { createAdminServer } from './http/admin-server';
import { createDeliveryServer } from './http/delivery-server';
import { batchedStdout } from './log-destination';
import { type DeliveryHistory, recentDeliveriesFor } from './http/delivery-recorder';
import type { RejectionLog } from './http/rejection-log';
import { DisposerStack, type LifecycleState, type PreparedChange, prepareThenCommit, startInOrder } from './lifecycle';
import { ReceiverMetrics } from './metrics';
import { Notifier } from './notify/notifier';
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
/** Whether the front serves as configured: worker processes that died and are being replaced make it degraded. */
export interface FrontHealth {
  status: 'ok' | 'degraded';
  reason?: string;
  workers?: { serving: number; configured: number };
}

export interface DeliveryFront {
  url: string;
  /** What admin `/healthz` says of the front; a front without it is always ok. */
  health?(): FrontHealth;
  /** Reads the certificate in use again (a renewal); workers read their token sources again too. */
  reread(): Promise<void>;
  /** The front's share of a reloaded config, prepared (the certificate read and checked); committed, it is in use. */
  prepareReload(next: ReceiverConfig, triggers: TriggerTable): PreparedChange | Promise<PreparedChange>;
  /**
   * Answer 503 to every new request from now on, still listening, so that a sender learns to
   * retry rather than finding the port closed; resolves once the requests in flight are answered.
   */
  refuse(): Promise<void>;
  /** Stop listening. */
  close(): Promise<void>;
  /** The deliveries it answered lately, for the admin listener. @default none (`limits.recentDeliveries` 0) */
  deliveries?: DeliveryHistory;
}

/**
 * The receiver's log: JSON lines (for journald and log shippers), or, with TRIGGLER_LOG_FORMAT=pretty
 * (what `triggler serve` sets on a terminal), readable lines with local times and level names.
 * Worker processes inherit the variable, so every process logs alike. JSON lines are written a
 * turn of the event loop at a time (./log-destination); pretty lines, for a person at a terminal, as they come.
 */
export function receiverLogger(config: ReceiverConfig, fields: Record<string, unknown> = {}): Logger {
  const options = { level: config.log.level, base: { service: 'triggler-receiver', ...fields } };
  if (process.env.TRIGGLER_LOG_FORMAT !== 'pretty') return pino(options, batchedStdout());
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pino(
    options,
    pretty({
      colorize: process.stdout.isTTY === true,
      translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
      ignore: 'pid,hostname,service',
      sync: true,
    }),
  );
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
    ...(config.commandRunner ? { commandRunner: config.commandRunner.socket } : {}),
  });
}

function tokenSourceOptions(logger: Logger, options: ReceiverOptions): TokenSourceOptions {
  return { logger, ...options.tokenSources, now: options.tokenSources?.now ?? options.now ?? Date.now };
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
    ['commandRunner', running.commandRunner, next.commandRunner],
  ];
  return fields.filter(([, before, after]) => JSON.stringify(before) !== JSON.stringify(after)).map(([name]) => name);
}

/**
 * The one start and stop sequence, whichever front takes the deliveries. Start: the token sources
 * (the runner's deploys take their keys from them), the runner (its journal replayed), the front,
 * notifications, the admin listener. Stop, newest first: the front refuses new deliveries (503)
 * and answers the ones in flight, the admin listener closes, the runner stops (running commands
 * get their grace), then notifications, the front's listener and the token sources. A start that
 * fails part-way stops what it had started, the same way.
 */
export async function assembleReceiver<Front extends DeliveryFront>(
  config: ReceiverConfig,
  logger: Logger,
  openFront: (parts: { sink: DeliverySink; metrics: ReceiverMetrics; tokens: ReceiverTokens; triggers: TriggerTable }) => Promise<Front>,
  options: ReceiverOptions = {},
): Promise<{ receiver: Receiver; runner: Runner; front: Front; tokens: ReceiverTokens }> {
  let state: LifecycleState = 'created';
  const parts = new DisposerStack();
  const tokenOptions = tokenSourceOptions(logger, options);
  state = 'starting';
  const { tokens, runner, metrics, front, notifier, adminUrl } = await startInOrder(
    parts,
    async () => {
      const triggers = triggerTableOf(config);
      const tokens = await parts.start(
        'token sources',
        () => ReceiverTokens.open(config, triggers, tokenOptions),
        (opened) => opened.close(),
      );
      const runner = await parts.start(
        'runner',
        () => openRunner(config, logger, (name) => tokens.tokenNamed(name)),
        (opened) => opened.close(),
      );
      const metrics = new ReceiverMetrics(() => runner.stats());
      const front = await parts.start(
        'delivery front',
        () => openFront({ sink: metrics.countingSink(runner), metrics, tokens, triggers }),
        (opened) => opened.close(),
      );
      void checkDeployKeys(config, tokens, logger);
      const notifier = openNotifier(config, logger, runner, tokens, metrics);
      parts.push('notifications', () => notifier.close());
      // Running commands finish (up to their grace) while notifications, tokens and the listener are still there.
      parts.push('running commands', () => runner.close());
      const adminAddress = config.admin;
      const admin =
        adminAddress === false
          ? undefined
          : await parts.start(
              'admin listener',
              () => openAdminListener(adminAddress, config, logger, { runner, tokens, metrics, front }),
              ({ server }) => {
                server.closeAllConnections();
                server.close();
              },
            );
      // The first thing a stop does: new deliveries are answered 503 until the runner has stopped, so the sender retries.
      parts.push('new deliveries', () => front.refuse());
      return { tokens, runner, metrics, front, notifier, adminUrl: admin?.url };
    },
    (error) => logger.error({ err: error }, 'could not stop all that had started'),
  );
  state = 'serving';
  logger.info(
    { url: front.url, adminUrl, triggers: config.triggers.length, ...(config.workers > 1 ? { workers: config.workers } : {}) },
    'receiver listening',
  );

  let closing: Promise<void> | undefined;
  const receiver: Receiver = {
    url: front.url,
    ...(adminUrl ? { adminUrl } : {}),
    logger,
    metrics,
    async reload(next) {
      if (state !== 'serving') throw new Error(`the receiver is ${state}: there is nothing to reload`);
      if (!next) {
        await tokens.reload();
        return front.reread();
      }
      // Nothing changes unless every part can take the new config: tokens that cannot be had or a
      // certificate that cannot be used refuse the whole reload.
      const triggers = triggerTableOf(next);
      await prepareThenCommit([
        () => tokens.prepareReconfigure(next, triggers, tokenOptions),
        () => front.prepareReload(next, triggers),
        () => ({ commit: () => notifier.reconfigure(next.notify, next.triggers) }),
      ]);
      const changes = await runner.reconfigure(next.triggers);
      void checkDeployKeys(next, tokens, logger);
      const needRestart = fieldsNeedingRestart(config, next);
      logger.info({ ...changes, ...(needRestart.length > 0 ? { needRestart } : {}) }, 'config reloaded');
      if (needRestart.length > 0)
        logger.warn(
          { fields: needRestart },
          `config reloaded, but ${needRestart.join(', ')} ${needRestart.length === 1 ? 'takes' : 'take'} effect only after a restart`,
        );
    },
    close() {
      closing ??= (async () => {
        state = 'stopping';
        logger.info('receiver stopping');
        try {
          await parts.disposeAll();
        } finally {
          state = 'stopped';
        }
        logger.info('receiver stopped');
      })();
      return closing;
    },
  };
  return { receiver, runner, front, tokens };
}

/** The admin listener, listening; the runner created the state directory (0700), and the credential goes beside the journal. */
async function openAdminListener(
  address: Exclude<ReceiverConfig['admin'], false>,
  config: ReceiverConfig,
  logger: Logger,
  { runner, tokens, metrics, front }: { runner: Runner; tokens: ReceiverTokens; metrics: ReceiverMetrics; front: DeliveryFront },
): Promise<{ server: Server; url: string }> {
  const server = createAdminServer(runner.history, {
    credential: ensureAdminCredential(config.stateDir),
    actions: adminActions(runner, front.deliveries),
    ...(front.deliveries ? { deliveries: front.deliveries } : {}),
    metrics: () => metrics.text(),
    logger,
    // The CLI names the listener by its configured address, whatever that is.
    allowedHosts: [address.host, ...address.allowedHosts],
    maxConnections: address.maxConnections,
    liveLog: { maxViewers: address.maxLogViewers, maxViewersPerRun: address.maxLogViewersPerRun },
    async health() {
      const journal = runner.health();
      const tokenSource = await tokens.health();
      const delivery = front.health?.();
      const ok = journal.status === 'ok' && tokenSource.status === 'ok' && (delivery?.status ?? 'ok') === 'ok';
      return { status: ok ? 'ok' : 'degraded', journal, tokens: tokenSource, ...(delivery ? { delivery } : {}) };
    },
  });
  return { server, url: await listen(server, address.host, address.port) };
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
    earlierRuns: (run) =>
      runner.history.runs().filter((other) => other.repository === run.repository && other.branch === run.branch && other.id < run.id),
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
  const { receiver, runner, front, tokens } = await assembleReceiver(
    config,
    logger,
    async ({ sink, metrics, tokens, triggers }) => {
      const now = options.now ?? Date.now;
      const recent = recentDeliveriesFor(config.limits, { now });
      const deliveries = createDeliveryServer({ config, triggers, tokens, sink: recent?.watching(sink) ?? sink, logger, now }, recent);
      metrics.registerRejectionCounts(() => deliveries.rejections.counts());
      return {
        ...(recent ? { deliveries: recent } : {}),
        url: await listen(deliveries.server, config.listen.host, config.listen.port),
        rejections: deliveries.rejections,
        async reread() {
          deliveries.reloadCertificate();
        },
        prepareReload: (next, nextTriggers) => deliveries.prepareReconfigure(nextTriggers, next.listen.tls),
        refuse: () => refuseDeliveries(deliveries),
        close: () => drainDeliveryServer(deliveries),
      };
    },
    options,
  );
  return { ...receiver, runner, history: runner.history, tokens, rejections: front.rejections };
}
