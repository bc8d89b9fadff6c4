/**
 * The receiver on several cores (`"workers": N`, N > 1). Checking signatures is the work a flood
 * makes, and one Node.js process does it on one core: here N worker processes share the delivery
 * port and verify, and the primary keeps what must stay single — the runner, its journal and the
 * admin listener. A verified delivery crosses to the primary over the cluster's IPC channel and is
 * answered 202 only once the primary's journal holds it, exactly as in one process.
 */
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import type { Logger } from 'pino';
import type { ReceiverConfig } from './config/schema';
import { listenerUrl } from './config/listener-url';
import type { AcceptedDelivery, AcceptResult, DeliverySink } from './delivery';
import { answerDeliveryQueries, workerRecentDeliveries, workersDeliveries } from './cluster-deliveries';
import { ReceiverError, type ReceiverErrorData } from './errors';
import { drainDeliveryServer, listen, openDeliverySide, refuseDeliveries, reloadDeliverySide } from './delivery-listener';
import { assembleReceiver, receiverLogger, type DeliveryFront, type Receiver } from './receiver';

type ToPrimary = { t: 'accept'; id: number; delivery: AcceptedDelivery } | { t: 'config?' };
type ToWorker =
  /** The config a worker starts from: the one the primary holds, never a fresh read of a file that may be half-edited. */
  | { t: 'config'; config: ReceiverConfig }
  | { t: 'accepted'; id: number; result: AcceptResult }
  | { t: 'refused'; id: number; error: ReceiverErrorData }
  | { t: 'failed'; id: number; message: string }
  | { t: 'refuse' }
  | { t: 'stop' }
  /** The config the primary has read and checked, or none: the token file and certificate are read again. */
  | { t: 'reload'; config?: ReceiverConfig };

/** How long a worker has to start listening before the receiver gives up. */
const WORKER_START_MS = 30_000;
/** How long stopping workers may take (they drain in-flight requests in at most 5 s). */
const WORKER_STOP_MS = 15_000;
/** The wait before replacing a worker that died before it listened, doubled for each such death in a row, up to the maximum. */
const REPLACE_BACKOFF_MS = 500;
const REPLACE_BACKOFF_MAX_MS = 30_000;

/** The wait before forking a replacement: none after a worker that served; growing while replacements die before they listen. */
export function replacementDelayMs(deathsBeforeListening: number): number {
  return deathsBeforeListening === 0 ? 0 : Math.min(REPLACE_BACKOFF_MS * 2 ** (deathsBeforeListening - 1), REPLACE_BACKOFF_MAX_MS);
}

/**
 * The config a replacement worker starts from once `next` was reloaded: its triggers, tokens and
 * certificate, as the running workers took them, with the fields that need a restart as they were.
 */
export function replacementConfig(running: ReceiverConfig, next: ReceiverConfig): ReceiverConfig {
  const tls = running.listen.tls && next.listen.tls ? next.listen.tls : running.listen.tls;
  return {
    ...next,
    listen: { ...running.listen, ...(tls ? { tls } : {}) },
    admin: running.admin,
    stateDir: running.stateDir,
    workers: running.workers,
    limits: running.limits,
    log: running.log,
  };
}

export async function startClusteredReceiver(config: ReceiverConfig, logger: Logger): Promise<Receiver> {
  // The primary opens its own token sources (for notifications, deploy keys and /healthz) before
  // any worker forks: token problems (a missing variable, an unreadable file) stop the receiver
  // there, once, rather than in every worker.
  const { receiver } = await assembleReceiver(config, logger, ({ sink }) => forkWorkers(config, logger, sink));
  return receiver;
}

/** The workers as the receiver's front: each takes deliveries on the shared port and hands them to `runner`. */
async function forkWorkers(config: ReceiverConfig, logger: Logger, runner: DeliverySink): Promise<DeliveryFront> {
  let stopping = false;
  /** What a worker forked now starts from: the start-up config, then each reloaded one. */
  let current = config;
  const listening = new Map<number, string>();
  /** The config each starting worker was given: one reloaded since then is sent to it once it listens. */
  const given = new Map<number, ReceiverConfig>();
  let deathsBeforeListening = 0;

  function serveWorker(worker: Worker): void {
    // A channel that closes while a message is on its way reports here, on a later tick; the
    // worker's 'exit' replaces it. Unheard, the error would end the primary.
    worker.on('error', (error) => logger.warn({ err: error, worker: worker.id }, 'worker channel error'));
    worker.on('message', (message: ToPrimary) => {
      if (message?.t === 'config?') {
        given.set(worker.id, current);
        return send(worker, { t: 'config', config: current });
      }
      if (message?.t !== 'accept') return;
      runner.accept(message.delivery).then(
        (result) => send(worker, { t: 'accepted', id: message.id, result }),
        (error: unknown) => {
          // A ReceiverError crosses as its code, so the worker answers exactly as one process would.
          if (error instanceof ReceiverError) return send(worker, { t: 'refused', id: message.id, error: error.toJSON() });
          logger.error({ err: error }, 'accept failed');
          send(worker, { t: 'failed', id: message.id, message: (error as Error).message });
        },
      );
    });
  }

  function fork(): Worker {
    const worker = cluster.fork();
    serveWorker(worker);
    return worker;
  }

  let startupSettled = false;
  const started = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`workers did not start listening within ${WORKER_START_MS / 1000} s`)),
      WORKER_START_MS,
    );
    cluster.on('listening', (worker, address) => {
      const host = address.address && address.address !== '0.0.0.0' && address.address !== '::' ? address.address : config.listen.host;
      listening.set(worker.id, listenerUrl(host, address.port, Boolean(config.listen.tls)));
      deathsBeforeListening = 0;
      // A reload committed while this worker started may have reached it before it could hear one.
      if (given.has(worker.id) && given.get(worker.id) !== current) send(worker, { t: 'reload', config: current });
      given.delete(worker.id);
      logger.info({ worker: worker.id, pid: worker.process.pid, serving: listening.size, configured: config.workers }, 'worker listening');
      if (listening.size === config.workers && !startupSettled) {
        startupSettled = true;
        clearTimeout(timer);
        resolve(listening.get(worker.id)!);
      }
    });
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) return;
      const served = listening.delete(worker.id);
      given.delete(worker.id);
      if (!startupSettled) {
        // At start-up a worker that dies before it listens will die again (a port in use, a bad
        // certificate): stop rather than loop.
        startupSettled = true;
        clearTimeout(timer);
        reject(new Error(`a worker exited (${signal ?? code}) before it could listen`));
        return;
      }
      if (!served) deathsBeforeListening += 1;
      const delayMs = replacementDelayMs(deathsBeforeListening);
      logger.error(
        { worker: worker.id, code, signal, serving: listening.size, configured: config.workers, retryInMs: delayMs },
        'worker died; starting another',
      );
      setTimeout(() => !stopping && fork(), delayMs).unref();
    });
  });

  const workers = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  for (let i = 0; i < config.workers; i++) fork();
  let url: string;
  try {
    url = await started;
  } catch (error) {
    stopping = true;
    for (const worker of workers()) worker.kill();
    throw error;
  }
  const deliveries = workersDeliveries(config);
  return {
    url,
    ...(deliveries ? { deliveries } : {}),
    health() {
      if (listening.size >= config.workers) return { status: 'ok', workers: { serving: listening.size, configured: config.workers } };
      return {
        status: 'degraded',
        reason: `${listening.size} of ${config.workers} workers serve; the others are being replaced`,
        workers: { serving: listening.size, configured: config.workers },
      };
    },
    async reread() {
      for (const worker of workers()) send(worker, { t: 'reload' });
    },
    // Each worker prepares and commits the config on its own; one that cannot keeps its previous config and says so.
    prepareReload: (next) => ({
      commit() {
        current = replacementConfig(config, next);
        for (const worker of workers()) send(worker, { t: 'reload', config: next });
      },
    }),
    // The workers' deliveries in flight reach the runner, which takes them until it closes.
    async refuse() {
      for (const worker of workers()) send(worker, { t: 'refuse' });
    },
    async close() {
      stopping = true;
      await Promise.all(
        workers().map(async (worker) => {
          // A worker already dead but not yet let go by the cluster says 'exit' no more.
          if (worker.isDead()) return;
          const exited = once(worker, 'exit');
          send(worker, { t: 'stop' });
          const timer = setTimeout(() => worker.kill('SIGKILL'), WORKER_STOP_MS);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}

/**
 * Sends over the IPC channel; a closed channel means the other side is gone, which its 'exit' or
 * 'disconnect' handling covers. A channel found closed is reported to the callback on a later
 * tick (never as an 'error' event, which would end the process when no one listens), or thrown now.
 */
export function send(worker: Pick<Worker, 'send'>, message: ToWorker): void {
  try {
    worker.send(message, undefined, () => undefined);
  } catch {
    // Handled by cluster's 'exit'.
  }
}

function sendToPrimary(message: ToPrimary): void {
  try {
    // As for the primary's send: a closed channel reaches the callback, not an 'error' event that would end the worker.
    process.send?.(message, undefined, {}, () => undefined);
  } catch {
    // Handled by process 'disconnect'.
  }
}

/** The primary is gone (stopping, or died): nothing can be accepted here any more. */
function primaryGone(): ReceiverError {
  return new ReceiverError('stopping', 'the primary process is gone');
}

/** Hands deliveries to the primary and waits for its journal to hold them. */
class PrimarySink implements DeliverySink {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (r: AcceptResult) => void; reject: (e: Error) => void }>();

  constructor() {
    process.on('message', (message: ToWorker) => {
      if (message?.t !== 'accepted' && message?.t !== 'refused' && message?.t !== 'failed') return;
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if (message.t === 'accepted') waiter.resolve(message.result);
      else if (message.t === 'refused') waiter.reject(ReceiverError.fromJSON(message.error));
      else waiter.reject(new Error(message.message));
    });
    process.on('disconnect', () => {
      for (const waiter of this.waiting.values()) waiter.reject(primaryGone());
      this.waiting.clear();
    });
  }

  accept(delivery: AcceptedDelivery): Promise<AcceptResult> {
    if (!process.connected) return Promise.reject(primaryGone());
    return new Promise((resolve, reject) => {
      const id = ++this.next;
      this.waiting.set(id, { resolve, reject });
      sendToPrimary({ t: 'accept', id, delivery });
    });
  }
}

/** The config the primary holds, asked for once this worker listens for the answer. */
function configFromPrimary(): Promise<ReceiverConfig> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ToWorker) => {
      if (message?.t !== 'config') return;
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      resolve(message.config);
    };
    const onDisconnect = () => reject(primaryGone());
    process.on('message', onMessage);
    process.once('disconnect', onDisconnect);
    sendToPrimary({ t: 'config?' });
  });
}

/**
 * A worker: the delivery listener on the shared port, its own token sources, the primary as sink.
 * Its config comes from the primary, as the primary read and checked it (at start or at the last
 * reload): a replacement never reads the config file, which may be mid-edit.
 */
export async function runDeliveryWorker(): Promise<void> {
  // The primary decides when to stop: signals sent to the whole group (Ctrl-C, systemd's stop)
  // reach it too, and it tells each worker in turn, after which in-flight requests still finish.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
  // Told to stop before it serves (a replacement still starting), a worker has nothing to drain.
  const stopBeforeServing = (message: ToWorker) => message?.t === 'stop' && process.exit(0);
  process.on('message', stopBeforeServing);
  const config = await configFromPrimary();
  const logger = receiverLogger(config, { worker: cluster.worker?.id });
  const tokenOptions = { logger, now: Date.now };
  const recent = workerRecentDeliveries(config);
  const { deliveries, tokens } = await openDeliverySide(config, new PrimarySink(), logger, tokenOptions, recent);
  if (recent) answerDeliveryQueries(recent);
  process.off('message', stopBeforeServing);
  process.on('message', (message: ToWorker) => {
    if (message?.t === 'reload') {
      // The config comes as the primary read and checked it (plain JSON data): no worker reads the file again.
      reloadDeliverySide(deliveries, tokens, message.config, tokenOptions).then(
        () => logger.info(message.config ? 'config reloaded' : 'tokens reloaded'),
        (error: unknown) => logger.error({ err: error }, 'reload failed in a worker; its previous config stays in use'),
      );
    } else if (message?.t === 'refuse') {
      void refuseDeliveries(deliveries);
    } else if (message?.t === 'stop') {
      void drainDeliveryServer(deliveries).then(() => {
        tokens.close();
        process.disconnect();
        process.exit(0);
      });
    }
  });
  // The primary is gone without a word: nothing can be accepted any more.
  process.on('disconnect', () => void drainDeliveryServer(deliveries).then(() => process.exit(0)));
  await listen(deliveries.server, config.listen.host, config.listen.port);
}
