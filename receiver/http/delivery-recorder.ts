/**
 * The recent deliveries the admin listener shows (`GET /deliveries`, `triggler deliveries`):
 * accepted, duplicate and rejected, each with its request's headers, its answer, the run it joined
 * and, for a refusal, the reason the log counts it by.
 *
 * Recording is on the delivery listener's hot path, which a flood of forged requests runs
 * thousands of times a second, so it is one call that keeps references in a ring slot and returns:
 * the raw headers array as Node parsed it, the answer as it is sent. Nothing is copied, redacted
 * or formatted until the page or the API reads it. Each trigger has its own ring, bounded in count
 * and in bytes, so a flood against one trigger (or against paths that name none, kept apart)
 * never pushes another trigger's deliveries out.
 */
import type { IncomingMessage } from 'node:http';
import { triggerKey, triggerLabel } from '../../protocol';
import type { ReceiverConfig } from '../config/schema';
import type { TriggerTable } from '../config/trigger-table';
import { type AcceptedDelivery, type AcceptResult, acceptedDelivery, type DeliverySink } from '../delivery';
import type { ErrorAnswer, Reply } from '../errors';

/** What the delivery listener tells of each delivery it answered. */
export interface DeliveryRecorder {
  /**
   * Called once per answered request, with the trigger table in use, what was answered and, for a
   * refusal, how it was refused. Keeps references and returns; never throws.
   */
  record(req: IncomingMessage, triggers: TriggerTable, reply: Reply, refusal?: ErrorAnswer): void;
}

/** A recorder that keeps nothing (`limits.recentDeliveries` 0). */
export const NO_RECORDING: DeliveryRecorder = { record: () => undefined };

/** How a delivery was answered, in one word. */
export type DeliveryOutcome = 'accepted' | 'duplicate' | 'ignored' | 'answered' | 'rejected';

/** The bucket of requests that named no configured trigger (an unknown path, a provider webhook for no trigger). */
export const UNKNOWN_TRIGGER = 'unknown';

/** One recorded delivery as the admin listener shows it: redacted, formatted, plain data. */
export interface DeliveryView {
  id: string;
  /** `<repository>@<branch>`, or `unknown`. */
  trigger: string;
  receivedAt: string;
  outcome: DeliveryOutcome;
  request: {
    method: string;
    /** The path, with the values of query parameters whose names look secret redacted. */
    path: string;
    remote?: string;
    /** In the order sent; signatures, credentials, cookies and anything named like a token are redacted. */
    headers: [name: string, value: string][];
  };
  answer: { status: number; body: Record<string, unknown>; headers?: Record<string, string> };
  /** For a refusal: why, as the log counts it (never a token), and what the log says beside it. */
  reason?: string;
  details?: Record<string, unknown>;
  /** The run the delivery joined (accepted) or had joined before (duplicate). */
  run?: string;
  /** The commit an accepted delivery pushed. */
  commit?: string;
  /** Accepted: `triggler redeliver <id>` makes a new run of its push. */
  redeliverable: boolean;
}

/** A recorded delivery with the push a redelivery runs again (accepted ones only). */
export interface DeliveryDetail {
  view: DeliveryView;
  push?: AcceptedDelivery;
}

/** Where the admin listener reads recorded deliveries: one process's rings, or every worker's merged. */
export interface DeliveryHistory {
  /** Newest first; `trigger`: only that trigger's (`<repository>@<branch>`, or `unknown`). */
  list(trigger?: string): Promise<DeliveryList>;
  get(id: string): Promise<DeliveryDetail | undefined>;
}

export interface DeliveryList {
  deliveries: DeliveryView[];
  /** Worker processes that did not answer in time: their deliveries are missing from the list. */
  unanswered?: number;
}

export interface RecentDeliveriesOptions {
  /** Deliveries kept per trigger (and for requests naming none). */
  count: number;
  /** Bytes those may hold per trigger, as estimated from their headers, paths and answers. */
  bytes: number;
  /** Makes ids unique across processes (a worker's number) and restarts (the start time is in every id). */
  idPrefix?: string;
  /** Epoch ms; tests move the clock. */
  now?: () => number;
}

/** What a ring slot holds: references to what the request and its answer already were. */
interface Recorded {
  seq: number;
  at: number;
  trigger: string;
  method: string | undefined;
  url: string | undefined;
  rawHeaders: string[];
  remote: string | undefined;
  reply: Reply;
  refusal: ErrorAnswer | undefined;
  /** The run entry of the answer this slot is about (a provider push may start several). */
  run: RunEntry | undefined;
  push: AcceptedDelivery | undefined;
  bytes: number;
}

interface RunEntry {
  id?: unknown;
  repository?: unknown;
  branch?: unknown;
  status?: unknown;
}

/** Bytes a slot costs beyond its strings: the slot, the answer and its body (small, bounded JSON). */
const SLOT_OVERHEAD_BYTES = 512;

/**
 * Accepted pushes waiting for their answer to be recorded, per trigger. They wait a moment each
 * (a burst accepted in one group commit waits together), so this is as many as the default
 * `limits.maxConnections` can have in flight; past it the oldest, whose answer never came, goes.
 */
const AWAITING_ANSWER = 1024;

/** One trigger's deliveries, oldest overwritten first, within a count and a byte budget. */
class DeliveryRing {
  private readonly slots: (Recorded | undefined)[];
  private oldest = 0;
  private size = 0;
  private bytes = 0;
  /** Accepted deliveries by delivery id, from the sink, until the listener records their answer. */
  readonly awaitingAnswer = new Map<string, AcceptedDelivery>();

  constructor(
    readonly label: string,
    private readonly maxBytes: number,
    count: number,
  ) {
    this.slots = new Array<Recorded | undefined>(count);
  }

  add(slot: Recorded): void {
    const capacity = this.slots.length;
    while (this.size > 0 && (this.size === capacity || this.bytes + slot.bytes > this.maxBytes)) this.dropOldest();
    this.slots[(this.oldest + this.size) % capacity] = slot;
    this.size += 1;
    this.bytes += slot.bytes;
  }

  private dropOldest(): void {
    const slot = this.slots[this.oldest]!;
    this.slots[this.oldest] = undefined;
    this.oldest = (this.oldest + 1) % this.slots.length;
    this.size -= 1;
    this.bytes -= slot.bytes;
  }

  newestFirst(): Recorded[] {
    const kept: Recorded[] = [];
    for (let i = this.size - 1; i >= 0; i--) kept.push(this.slots[(this.oldest + i) % this.slots.length]!);
    return kept;
  }

  /** The pushes the sink accepted, until their answers are recorded: bounded, oldest dropped. */
  awaitAnswer(delivery: AcceptedDelivery): void {
    this.awaitingAnswer.set(delivery.deliveryId, delivery);
    if (this.awaitingAnswer.size > AWAITING_ANSWER) this.awaitingAnswer.delete(this.awaitingAnswer.keys().next().value!);
  }
}

/** The rings a trigger table's requests land in, found without building a string per request. */
interface RingIndex {
  /** By repository, then branch. */
  byTrigger: Map<string, Map<string, DeliveryRing>>;
  /** By the exact request target that names a trigger: its seed route and its Standard Webhooks path. */
  byPath: Map<string, DeliveryRing>;
}

/** A process's recorder within `limits.recentDeliveries` and `limits.recentDeliveryBytes`; none when the count is 0. */
export function recentDeliveriesFor(
  limits: ReceiverConfig['limits'],
  options: Omit<RecentDeliveriesOptions, 'count' | 'bytes'> = {},
): RecentDeliveries | undefined {
  if (limits.recentDeliveries === 0) return undefined;
  return new RecentDeliveries({ count: limits.recentDeliveries, bytes: limits.recentDeliveryBytes, ...options });
}

/** One process's recent deliveries: what its delivery listener records, and the reading of them. */
export class RecentDeliveries implements DeliveryRecorder, DeliveryHistory {
  /** Rings by trigger key; a trigger's survive a reload that keeps it. */
  private readonly rings = new Map<string, DeliveryRing>();
  private readonly unknown: DeliveryRing;
  private indexed: TriggerTable | undefined;
  private index: RingIndex = { byTrigger: new Map(), byPath: new Map() };
  private seq = 0;
  private readonly idPrefix: string;
  private readonly now: () => number;

  constructor(private readonly options: RecentDeliveriesOptions) {
    this.now = options.now ?? Date.now;
    this.idPrefix = options.idPrefix ?? `d${Date.now().toString(36)}`;
    this.unknown = new DeliveryRing(UNKNOWN_TRIGGER, options.bytes, options.count);
  }

  record(req: IncomingMessage, triggers: TriggerTable, reply: Reply, refusal?: ErrorAnswer): void {
    const url = req.url;
    // The listener's health check is no delivery.
    if (url === '/healthz' || url?.startsWith('/healthz?')) return;
    const index = this.indexOf(triggers);
    const body = reply.body;
    const run = body.run as RunEntry | undefined;
    if (run !== undefined) return this.keep(this.ringOf(index, run.repository, run.branch), req, reply, refusal, run);
    if (Array.isArray(body.runs)) {
      for (const entry of body.runs as RunEntry[])
        this.keep(this.ringOf(index, entry.repository, entry.branch), req, reply, refusal, entry);
      return;
    }
    const fields = refusal?.fields;
    const named = fields === undefined ? this.unknown : this.ringOf(index, fields.repository, fields.branch);
    this.keep(named !== this.unknown ? named : (index.byPath.get(url ?? '') ?? this.unknown), req, reply, refusal, undefined);
  }

  /** The sink deliveries go through, so that an accepted one's push is kept for a redelivery. */
  watching(sink: DeliverySink): DeliverySink {
    return {
      accept: (delivery) =>
        sink.accept(delivery).then((result: AcceptResult) => {
          if (result.status === 'accepted') this.ringFor(delivery.repository, delivery.branch).awaitAnswer(delivery);
          return result;
        }),
      ...(sink.health ? { health: () => sink.health!() } : {}),
    };
  }

  async list(trigger?: string): Promise<DeliveryList> {
    return { deliveries: this.listNow(trigger) };
  }

  async get(id: string): Promise<DeliveryDetail | undefined> {
    return this.detail(id);
  }

  /** Newest first, formatted and redacted now. */
  listNow(trigger?: string): DeliveryView[] {
    const rings = trigger === undefined ? [...this.rings.values(), this.unknown] : this.ringsLabelled(trigger);
    return rings
      .flatMap((ring) => ring.newestFirst())
      .sort(newestFirst)
      .map((slot) => this.view(slot));
  }

  detail(id: string): DeliveryDetail | undefined {
    for (const ring of [...this.rings.values(), this.unknown]) {
      for (const slot of ring.newestFirst()) {
        if (this.idOf(slot) !== id) continue;
        return { view: this.view(slot), ...(slot.push ? { push: slot.push } : {}) };
      }
    }
    return undefined;
  }

  private ringsLabelled(trigger: string): DeliveryRing[] {
    if (trigger === UNKNOWN_TRIGGER) return [this.unknown];
    return [...this.rings.values()].filter((ring) => ring.label === trigger);
  }

  private keep(ring: DeliveryRing, req: IncomingMessage, reply: Reply, refusal: ErrorAnswer | undefined, run: RunEntry | undefined): void {
    const url = req.url;
    const rawHeaders = req.rawHeaders;
    let bytes = SLOT_OVERHEAD_BYTES + (url?.length ?? 0) + (refusal?.reason.length ?? 0);
    for (let i = 0; i < rawHeaders.length; i++) bytes += rawHeaders[i]!.length;
    let push: AcceptedDelivery | undefined;
    if (run !== undefined && (run.status ?? reply.body.status) === 'accepted' && typeof reply.body.delivery === 'string') {
      push = ring.awaitingAnswer.get(reply.body.delivery);
      if (push) ring.awaitingAnswer.delete(reply.body.delivery);
    }
    ring.add({
      seq: ++this.seq,
      at: this.now(),
      trigger: ring.label,
      method: req.method,
      url,
      rawHeaders,
      // A socket already let go of leaves no address; the record must not fail the answer.
      remote: (req.socket as IncomingMessage['socket'] | null)?.remoteAddress,
      reply,
      refusal,
      run,
      push,
      bytes,
    });
  }

  private ringOf(index: RingIndex, repository: unknown, branch: unknown): DeliveryRing {
    if (typeof repository !== 'string' || typeof branch !== 'string') return this.unknown;
    return index.byTrigger.get(repository)?.get(branch) ?? this.unknown;
  }

  private ringFor(repository: string, branch: string): DeliveryRing {
    const key = triggerKey(repository, branch);
    let ring = this.rings.get(key);
    if (!ring) {
      ring = new DeliveryRing(triggerLabel({ repository, branch }), this.options.bytes, this.options.count);
      this.rings.set(key, ring);
    }
    return ring;
  }

  /** Built once per trigger table (start-up, each reload); a request only looks things up in it. */
  private indexOf(triggers: TriggerTable): RingIndex {
    if (triggers === this.indexed) return this.index;
    const index: RingIndex = { byTrigger: new Map(), byPath: new Map() };
    for (const { config } of triggers.all()) {
      const { repository, branch } = config;
      const ring = this.ringFor(repository, branch);
      let branches = index.byTrigger.get(repository);
      if (!branches) index.byTrigger.set(repository, (branches = new Map()));
      branches.set(branch, ring);
      index.byPath.set(`/${repository}-${branch}`, ring);
      index.byPath.set(`/${encodeURIComponent(repository)}-${encodeURIComponent(branch)}`, ring);
      index.byPath.set(`/hooks/${encodeURIComponent(repository)}/${encodeURIComponent(branch)}`, ring);
    }
    this.indexed = triggers;
    this.index = index;
    return index;
  }

  private idOf(slot: Recorded): string {
    return `${this.idPrefix}-${slot.seq}`;
  }

  private view(slot: Recorded): DeliveryView {
    const { reply, refusal, run, push } = slot;
    const outcome = outcomeOf(reply, run);
    return {
      id: this.idOf(slot),
      trigger: slot.trigger,
      receivedAt: new Date(slot.at).toISOString(),
      outcome,
      request: {
        method: slot.method ?? '',
        path: redactedPath(slot.url ?? ''),
        ...(slot.remote ? { remote: slot.remote } : {}),
        headers: redactedHeaders(slot.rawHeaders),
      },
      answer: { status: reply.status, body: reply.body, ...(reply.headers ? { headers: reply.headers } : {}) },
      ...(refusal ? { reason: refusal.reason, ...(Object.keys(refusal.fields).length > 0 ? { details: refusal.fields } : {}) } : {}),
      ...(typeof run?.id === 'string' ? { run: run.id } : {}),
      ...(push?.commit ? { commit: push.commit } : {}),
      redeliverable: push !== undefined,
    };
  }
}

const newestFirst = (a: Recorded, b: Recorded): number => b.at - a.at || b.seq - a.seq;

function outcomeOf(reply: Reply, run: RunEntry | undefined): DeliveryOutcome {
  if (reply.status >= 400) return 'rejected';
  const status = run?.status ?? reply.body.status;
  return status === 'accepted' || status === 'duplicate' || status === 'ignored' ? status : 'answered';
}

/**
 * Header and query names whose values are secrets or could stand for one: signatures (a seed
 * signature is valid for its whole window), credentials, cookies, tokens, keys. A timestamp is not.
 */
const SECRET_NAME = /signature|token|secret|passw|auth|cookie|session|credential|api[-_]?key|private/i;
const NOT_SECRET_NAME = /timestamp$/i;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !NOT_SECRET_NAME.test(name);
}

export const REDACTED = '(redacted)';

/** Name and value pairs, in the order sent, with secret values replaced. */
export function redactedHeaders(rawHeaders: readonly string[]): [string, string][] {
  const headers: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    headers.push([name, isSecretName(name) ? REDACTED : rawHeaders[i + 1]!]);
  }
  return headers;
}

/** The request target with the values of secret-looking query parameters replaced (a token in a URL is still a token). */
export function redactedPath(target: string): string {
  const query = target.indexOf('?');
  if (query < 0) return target;
  const params = target
    .slice(query + 1)
    .split('&')
    .map((param) => {
      const equals = param.indexOf('=');
      const name = equals < 0 ? param : param.slice(0, equals);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // A name that is not valid percent-encoding is judged as it is.
      }
      return equals >= 0 && isSecretName(decoded) ? `${name}=${REDACTED}` : param;
    });
  return `${target.slice(0, query)}?${params.join('&')}`;
}

/** A push as it crossed a process boundary (a worker's answer), checked against the delivery schema. */
export function pushFromData(data: unknown): AcceptedDelivery | undefined {
  const parsed = acceptedDelivery.safeParse(data);
  return parsed.success ? parsed.data : undefined;
}
