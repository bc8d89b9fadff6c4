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
import pino from 'pino';
import { createAdminServer } from './admin-server';
import type { ReceiverConfig } from './config';
import { loadReceiverConfigFile } from './config-file';
import type { AcceptedDelivery, AcceptResult } from './delivery';
import type { DeliverySink } from './delivery-context';
import { drainDeliveryServer, listen, openDeliveryFront, openRunner } from './receiver';
import { JournalWriteError } from './run-store';
import { RunnerClosedError } from './runner';
import { ReceiverTokens } from './tokens';
import { TriggerTable } from './trigger-table';

type ToPrimary = { t: 'accept'; id: number; delivery: AcceptedDelivery };
type ToWorker =
  | { t: 'accepted'; id: number; result: AcceptResult }
  | { t: 'refused'; id: number; kind: 'closed' | 'journal' | 'error'; message: string }
  | { t: 'stop' }
  | { t: 'reload' };

/** What `serve` hands back in either mode. */
export interface ServingReceiver {
  url: string;
  adminUrl?: string;
  logger: Logger;
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** How long a worker has to start listening before the receiver gives up. */
const WORKER_START_MS = 30_000;
/** How long stopping workers may take (they drain in-flight requests in at most 5 s). */
const WORKER_STOP_MS = 15_000;

export async function startClusteredReceiver(config: ReceiverConfig, logger: Logger): Promise<ServingReceiver> {
  // Token problems (a missing variable, an unreadable file) stop the receiver here, once, rather
  // than in every worker.
  (await ReceiverTokens.open(config, new TriggerTable(config.triggers, config.signature.iterations), { logger })).close();
  const runner = await openRunner(config, logger);
  const admin = config.admin === false ? undefined : createAdminServer(runner);
  let adminUrl: string | undefined;
  if (admin && config.admin !== false) adminUrl = await listen(admin, config.admin.host, config.admin.port);

  let stopping = false;
  const listening = new Map<number, string>();

  function serveWorker(worker: Worker): void {
    worker.on('message', (message: ToPrimary) => {
      if (message?.t !== 'accept') return;
      runner.accept(message.delivery).then(
        (result) => send(worker, { t: 'accepted', id: message.id, result }),
        (error: unknown) => {
          const kind = error instanceof RunnerClosedError ? 'closed' : error instanceof JournalWriteError ? 'journal' : 'error';
          if (kind === 'error') logger.error({ err: error }, 'accept failed');
          // A journal error crosses as its cause, so the worker's copy reads as the original does.
          const cause = error instanceof JournalWriteError && error.cause instanceof Error ? error.cause : (error as Error);
          send(worker, { t: 'refused', id: message.id, kind, message: cause.message });
        },
      );
    });
  }

  function fork(): Worker {
    const worker = cluster.fork();
    serveWorker(worker);
    return worker;
  }

  const started = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`workers did not start listening within ${WORKER_START_MS / 1000} s`)), WORKER_START_MS);
    cluster.on('listening', (worker, address) => {
      const host = address.address && address.address !== '0.0.0.0' && address.address !== '::' ? address.address : config.listen.host;
      listening.set(worker.id, `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`);
      if (listening.size === config.workers) {
        clearTimeout(timer);
        resolve(listening.get(worker.id)!);
      }
    });
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) return;
      if (!listening.has(worker.id)) {
        // A worker that dies before it listens will die again: stop rather than loop.
        clearTimeout(timer);
        reject(new Error(`a worker exited (${signal ?? code}) before it could listen`));
        return;
      }
      listening.delete(worker.id);
      logger.error({ worker: worker.id, code, signal }, 'worker died; starting another');
      setTimeout(() => !stopping && fork(), 1000).unref();
    });
  });

  for (let i = 0; i < config.workers; i++) fork();
  let url: string;
  try {
    url = await started;
  } catch (error) {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    admin?.close();
    await runner.close();
    throw error;
  }
  logger.info({ url, adminUrl, triggers: config.triggers.length, workers: config.workers }, 'receiver listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    ...(adminUrl ? { adminUrl } : {}),
    logger,
    async reload() {
      for (const worker of Object.values(cluster.workers ?? {})) if (worker) send(worker, { t: 'reload' });
    },
    close() {
      closing ??= (async () => {
        logger.info('receiver stopping');
        stopping = true;
        const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
        await Promise.all(
          workers.map(async (worker) => {
            const exited = once(worker, 'exit');
            send(worker, { t: 'stop' });
            const timer = setTimeout(() => worker.kill('SIGKILL'), WORKER_STOP_MS);
            await exited;
            clearTimeout(timer);
          }),
        );
        if (admin) {
          admin.closeAllConnections();
          admin.close();
        }
        await runner.close();
        logger.info('receiver stopped');
      })();
      return closing;
    },
  };
}

/** Sends over the IPC channel; a closed channel means the other side is gone, which its 'exit' or 'disconnect' handling covers. */
function send(worker: Worker, message: ToWorker): void {
  try {
    worker.send(message);
  } catch {
    // Handled by cluster's 'exit'.
  }
}

function sendToPrimary(message: ToPrimary): void {
  try {
    process.send?.(message);
  } catch {
    // Handled by process 'disconnect'.
  }
}

/** Hands deliveries to the primary and waits for its journal to hold them. */
class PrimarySink implements DeliverySink {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (r: AcceptResult) => void; reject: (e: Error) => void }>();

  constructor() {
    process.on('message', (message: ToWorker) => {
      if (message?.t !== 'accepted' && message?.t !== 'refused') return;
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if (message.t === 'accepted') waiter.resolve(message.result);
      else if (message.kind === 'journal') waiter.reject(new JournalWriteError(new Error(message.message)));
      else waiter.reject(message.kind === 'closed' ? new RunnerClosedError() : new Error(message.message));
    });
    process.on('disconnect', () => {
      for (const waiter of this.waiting.values()) waiter.reject(new RunnerClosedError());
      this.waiting.clear();
    });
  }

  accept(delivery: AcceptedDelivery): Promise<AcceptResult> {
    if (!process.connected) return Promise.reject(new RunnerClosedError());
    return new Promise((resolve, reject) => {
      const id = ++this.next;
      this.waiting.set(id, { resolve, reject });
      sendToPrimary({ t: 'accept', id, delivery });
    });
  }
}

/** A worker: the delivery listener on the shared port, its own token sources, the primary as sink. */
export async function runDeliveryWorker(configPath: string): Promise<void> {
  const { config } = loadReceiverConfigFile(configPath);
  const logger = pino({ level: config.log.level, base: { service: 'triggler-receiver', worker: cluster.worker?.id } });
  // The primary decides when to stop: signals sent to the whole group (Ctrl-C, systemd's stop)
  // reach it too, and it tells each worker in turn, after which in-flight requests still finish.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
  const { deliveries, tokens } = await openDeliveryFront(config, new PrimarySink(), logger);
  process.on('message', (message: ToWorker) => {
    if (message?.t === 'reload') {
      tokens.reload().then(
        () => logger.info('tokens reloaded'),
        (error: unknown) => logger.error({ err: (error as Error).message }, 'token reload failed; the previous tokens stay in use'),
      );
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
