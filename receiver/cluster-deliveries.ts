/**
 * Recent deliveries with `workers` above 1: each worker keeps its own rings, and the primary's
 * admin listener asks every worker when a page or the API is read, then merges their answers.
 *
 * Why merged on read rather than sent as they happen: recording is on the path a flood runs, and
 * a worker exists to take floods on another core. Sending each record (or batches of them) to
 * the primary would serialize every request's headers and cross the IPC channel for each, on the
 * very path the workers unload, and nearly all of them would be pushed out of a ring unread. Asked
 * on read, a worker formats only what is shown, only when someone looks. The cost: a worker that
 * dies takes its deliveries with it (its replacement starts empty), and a read waits for the
 * slowest worker, at most READ_TIMEOUT_MS, after which the page says how many did not answer.
 */
import cluster, { type Worker } from 'node:cluster';
import type { ReceiverConfig } from './config/schema';
import {
  type DeliveryDetail,
  type DeliveryHistory,
  type DeliveryList,
  type DeliveryView,
  pushFromData,
  type RecentDeliveries,
  recentDeliveriesFor,
} from './http/delivery-recorder';

type Asked = { t: 'deliveries?'; trigger?: string } | { t: 'delivery?'; id: string };
type Query = Asked & { q: number };
type Answer = { t: 'deliveries'; q: number; deliveries: DeliveryView[] } | { t: 'delivery'; q: number; detail?: DeliveryDetail };

/** How long a read waits for the workers' answers. */
const READ_TIMEOUT_MS = 5000;

/** A worker's recorder: its ids name the worker, so that they are unique across the workers. */
export function workerRecentDeliveries(config: ReceiverConfig): RecentDeliveries | undefined {
  return recentDeliveriesFor(config.limits, { idPrefix: `d${Date.now().toString(36)}w${cluster.worker?.id ?? 0}` });
}

/** In a worker: answers the primary's reads from this worker's rings. */
export function answerDeliveryQueries(recent: RecentDeliveries): void {
  process.on('message', (message: Query) => {
    let answer: Answer;
    if (message?.t === 'deliveries?') answer = { t: 'deliveries', q: message.q, deliveries: recent.listNow(message.trigger) };
    else if (message?.t === 'delivery?') {
      const detail = recent.detail(message.id);
      answer = { t: 'delivery', q: message.q, ...(detail ? { detail } : {}) };
    } else return;
    try {
      process.send?.(answer, undefined, {}, () => undefined);
    } catch {
      // The primary is gone: nobody is reading.
    }
  });
}

/** In the primary: the workers' deliveries, asked for and merged on each read; none when the config keeps none. */
export function workersDeliveries(config: ReceiverConfig): DeliveryHistory | undefined {
  const perTrigger = config.limits.recentDeliveries;
  if (perTrigger === 0) return undefined;
  let next = 0;
  const waiting = new Map<number, (worker: Worker, answer: Answer) => void>();
  cluster.on('message', (worker: Worker, message: Answer) => {
    if (message?.t === 'deliveries' || message?.t === 'delivery') waiting.get(message.q)?.(worker, message);
  });

  /** Every worker's answer to one query: those that answered, once every other has exited or READ_TIMEOUT_MS has passed. */
  async function ask(query: Asked): Promise<{ answers: Answer[]; unanswered: number }> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
    const q = ++next;
    const answers: Answer[] = [];
    const pending = new Set(workers.map((worker) => worker.id));
    let finish = (): void => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const timer = setTimeout(finish, READ_TIMEOUT_MS);
    const settle = (worker: Worker, answer?: Answer): void => {
      if (!pending.delete(worker.id)) return;
      if (answer) answers.push(answer);
      if (pending.size === 0) finish();
    };
    // A worker that exits while asked will not answer: the read need not wait for it.
    const onExit = (worker: Worker): void => settle(worker);
    cluster.on('exit', onExit);
    waiting.set(q, settle);
    for (const worker of workers) {
      try {
        worker.send({ ...query, q } satisfies Query, undefined, () => undefined);
      } catch {
        settle(worker);
      }
    }
    if (pending.size === 0) finish();
    await finished;
    clearTimeout(timer);
    cluster.off('exit', onExit);
    waiting.delete(q);
    return { answers, unanswered: workers.length - answers.length };
  }

  return {
    async list(trigger): Promise<DeliveryList> {
      const { answers, unanswered } = await ask({ t: 'deliveries?', ...(trigger === undefined ? {} : { trigger }) });
      const all = answers.flatMap((answer) => (answer.t === 'deliveries' ? answer.deliveries : []));
      all.sort((a, b) => (a.receivedAt < b.receivedAt ? 1 : a.receivedAt > b.receivedAt ? -1 : 0));
      // Each worker kept its newest per trigger; together they keep the newest of those.
      const shown = new Map<string, number>();
      const deliveries = all.filter((delivery) => {
        const count = (shown.get(delivery.trigger) ?? 0) + 1;
        shown.set(delivery.trigger, count);
        return count <= perTrigger;
      });
      return { deliveries, ...(unanswered > 0 ? { unanswered } : {}) };
    },
    async get(id): Promise<DeliveryDetail | undefined> {
      const { answers } = await ask({ t: 'delivery?', id });
      for (const answer of answers) {
        if (answer.t !== 'delivery' || !answer.detail) continue;
        // The push crossed a process boundary: it is checked against the delivery schema before a run is made of it.
        const push = answer.detail.push === undefined ? undefined : pushFromData(answer.detail.push);
        return { view: answer.detail.view, ...(push ? { push } : {}) };
      }
      return undefined;
    },
  };
}
