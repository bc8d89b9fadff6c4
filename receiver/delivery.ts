/**
 * The one contract between the two halves of the receiver: the delivery side (HTTP, schemes,
 * tokens) hands a verified delivery to a sink (the runner, or the primary process across IPC) and
 * gets back the run that carries it, or a ReceiverError (../errors) whose code says why not.
 */
import { z } from 'zod';
import { SCHEMES, type Scheme } from '../protocol';

export type { Scheme };

/**
 * A verified delivery, as the delivery side hands it to a sink. The one list of a delivery's
 * fields: the journal's accept record, the run it joins and every copy of it derive from this
 * schema's keys, so a field added here reaches all of them.
 */
export const acceptedDelivery = z.object({
  /**
   * A repeat of an accepted key, while it is remembered, runs nothing. The schemes compose it, per
   * trigger: `standard:<trigger>:<webhook-id>`, `seed:<trigger>:<ts>:<signature>`,
   * `github:<trigger>:<X-GitHub-Delivery>`, ...
   */
  dedupeKey: z.string(),
  /** Until when (epoch ms) the key is remembered; past it the key may be forgotten. */
  dedupeUntil: z.number(),
  /** The sender's own id for the delivery (webhook-id, X-GitHub-Delivery, ...), for people and logs. */
  deliveryId: z.string(),
  repository: z.string(),
  branch: z.string(),
  /** The pushed commit; '' when the sender did not say. */
  commit: z.string(),
  previousCommit: z.string().optional(),
  scheme: z.enum(SCHEMES),
  /** For provider webhooks: who pushed, and the provider's event name. */
  pusher: z.string().optional(),
  event: z.string().optional(),
  /** ISO-8601. */
  receivedAt: z.string(),
});

export type AcceptedDelivery = z.infer<typeof acceptedDelivery>;

/** What a sink remembers a delivery by, rather than keeps of it: the journal holds these beside the delivery, not in it. */
export const DEDUPE_FIELDS = { dedupeKey: true, dedupeUntil: true } as const;

/** What names the delivery itself rather than the push it carries: a run keeps these per delivery, or not at all. */
export const DELIVERY_ONLY_FIELDS = { ...DEDUPE_FIELDS, deliveryId: true, receivedAt: true } as const;

export interface AcceptResult {
  /** `duplicate`: the key was accepted before; nothing new will run. */
  status: 'accepted' | 'duplicate';
  /** The run that carries (or carried) this delivery. */
  runId: string;
  /** True when the delivery joined a run that was already waiting. */
  coalesced: boolean;
}

/** Where verified deliveries go: the runner, or (in a worker process) the primary's runner over IPC. */
export interface DeliverySink {
  /** Durable before it resolves: once it resolves, a crash cannot lose the delivery. */
  accept(delivery: AcceptedDelivery): Promise<AcceptResult>;
  /** Whether deliveries can be accepted now (the journal takes writes); what /healthz reports. */
  health?(): SinkHealth;
}

export type SinkHealth = { status: 'ok' } | { status: 'degraded'; reason: string; since: string };
