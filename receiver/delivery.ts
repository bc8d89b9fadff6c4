/**
 * The one contract between the two halves of the receiver: the delivery side (HTTP, schemes,
 * tokens) hands a verified delivery to a sink (the runner, or the primary process across IPC) and
 * gets back the run that carries it, or a ReceiverError (../errors) whose code says why not.
 */
import type { Scheme } from '../protocol';

export type { Scheme };

export interface AcceptedDelivery {
  /**
   * A repeat of an accepted key, while it is remembered, runs nothing. The schemes compose it, per
   * trigger: `standard:<trigger>:<webhook-id>`, `seed:<trigger>:<ts>:<signature>`,
   * `github:<trigger>:<X-GitHub-Delivery>`, ...
   */
  dedupeKey: string;
  /** Until when (epoch ms) the key is remembered; past it the key may be forgotten. */
  dedupeUntil: number;
  /** The sender's own id for the delivery (webhook-id, X-GitHub-Delivery, ...), for people and logs. */
  deliveryId: string;
  repository: string;
  branch: string;
  /** The pushed commit; '' when the sender did not say. */
  commit: string;
  previousCommit?: string;
  scheme: Scheme;
  /** For provider webhooks: who pushed, and the provider's event name. */
  pusher?: string;
  event?: string;
  /** ISO-8601. */
  receivedAt: string;
}

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
