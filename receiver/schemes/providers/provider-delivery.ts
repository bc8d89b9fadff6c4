/**
 * What every provider webhook does once its headers are checked and its body is read:
 *
 * 1. Find the triggers of the repository the body *claims*, only to know which secret(s) to try:
 *    the body is untrusted until a signature verifies.
 * 2. Verify against each distinct token of those triggers. A provider has one webhook, with one
 *    secret, per repository: the triggers of its branches share that secret by naming the same
 *    `tokenName` (or holding the same inline token). Only triggers whose token verified may run.
 * 3. Only then parse and act: a ping is answered, other events, tag pushes and branch deletions
 *    are ignored (2xx, nothing runs), and each pushed branch with a trigger is one delivery.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  claimedRepository,
  parseHubSignature,
  verifyBodyHmac,
  parseJsonObject,
  readProviderPush,
  type ClaimedRepository,
  type ProviderName,
  type RefUpdate,
} from '../../../protocol';
import type { Trigger } from '../../config/trigger-table';
import type { AcceptedDelivery } from '../../delivery';
import { acceptDelivery, badRequest, dedupeKeyOf, type DeliveryContext, type DeliveryHandler, header, type Reply, unauthorized, verifyWithTokens } from '../handler';

/**
 * One provider's webhook: which events it sends, and how its headers are checked. `precheck`
 * reads only headers (the event, the signature's shape, the delivery id) and returns how to read
 * and verify the body once it has been read.
 */
export interface ProviderScheme {
  events: ProviderEvents;
  precheck(req: IncomingMessage, context: DeliveryContext): ProviderBodyReader | Promise<ProviderBodyReader>;
}

/** What a provider's precheck hands on: how to read and verify the body once it has been read. */
export type ProviderBodyReader = (body: Buffer) => ProviderRequest;

/** How a provider that signs like GitHub names its headers. */
export interface HubSignedHeaders {
  /** The event header, lowercase, and as shown in an answer. */
  event: [name: string, shown: string];
  /** The `sha256=<hex HMAC-SHA256 of the raw body>` header, lowercase, and as shown. */
  signature: [name: string, shown: string];
  /** The delivery-id header, lowercase. */
  deliveryId: string;
  /** Whether a form-encoded body carries the JSON in its `payload` field. */
  formEncoded: boolean;
}

/** A provider whose one header signs the raw body as `sha256=<hex>` (GitHub, Bitbucket Cloud). */
export function hubSignedScheme(events: ProviderEvents, names: HubSignedHeaders): ProviderScheme {
  const [signatureHeader, signatureName] = names.signature;
  return {
    events,
    precheck(req) {
      const event = requiredEvent(req, [names.event[0]], names.event[1]);
      const sent = header(req, signatureHeader);
      const signature = parseHubSignature(sent);
      if (!signature) {
        throw unauthorized(sent === undefined ? `unsigned: no ${signatureName}` : `${signatureName} is not sha256=<64 hex digits>`, { provider: events.provider });
      }
      const deliveryId = deliveryIdHeader(req, [names.deliveryId]);
      const contentType = names.formEncoded ? header(req, 'content-type') : undefined;
      return (body) => ({
        event,
        ...(deliveryId !== undefined ? { deliveryId } : {}),
        payload: jsonPayload(contentType, body),
        verify: (token) => verifyBodyHmac(token, body, signature),
        signatureName,
      });
    },
  };
}

/** The delivery handler of a provider's webhook. */
export function providerHandler(scheme: ProviderScheme, context: DeliveryContext): DeliveryHandler<unknown, ProviderBodyReader> {
  return {
    precheck: (req) => scheme.precheck(req, context),
    handle: (read, body) => handleProviderDelivery(scheme.events, read(body), context),
  };
}

/** What a provider's handler read from the request before any hash is computed. */
export interface ProviderRequest {
  /** The provider's event name as sent (`push`, `Push Hook`, `repo:push`): TRIGGLER_EVENT. */
  event: string;
  /** The provider's id for this delivery; a redelivery repeats it. */
  deliveryId?: string;
  /** The JSON payload's bytes (for a form-encoded body, its `payload` field). */
  payload: Buffer;
  /** True when the request's signature (or token) is right for this token. */
  verify(token: string): boolean;
  /** The header that signs, for the log: `X-Hub-Signature-256`. */
  signatureName: string;
  /** Until when (epoch ms) the delivery id is remembered, when the provider's own window decides it. */
  rememberUntil?: number;
}

export interface ProviderEvents {
  provider: ProviderName;
  /** The event that carries pushes. */
  push: string;
  /** The event a provider sends to test a new webhook, answered 200 once verified. */
  ping?: string;
}

/** The first of these headers that is present, with the name it was found under. */
export function firstHeader(req: IncomingMessage, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = header(req, name);
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

/** An event header the handler cannot go on without: a 400 naming it when it is missing. */
export function requiredEvent(req: IncomingMessage, names: readonly string[], shownName: string): string {
  const found = firstHeader(req, names);
  if (found === undefined || found.value.trim() === '') throw badRequest(`${shownName} is missing`, { header: shownName });
  return found.value.trim();
}

const DELIVERY_ID_SHAPE = /^[\x21-\x7e]{1,256}$/;

/** A delivery-id header, when sent; a malformed one is a 400 naming it. */
export function deliveryIdHeader(req: IncomingMessage, names: readonly string[]): string | undefined {
  const found = firstHeader(req, names);
  if (found === undefined) return undefined;
  if (!DELIVERY_ID_SHAPE.test(found.value)) throw badRequest(`${found.name} must be 1 to 256 printable ASCII characters`, { header: found.name });
  return found.value;
}

/**
 * The JSON payload of the body: the body itself, or the `payload` field of a form-encoded body
 * (GitHub's and Gitea's "application/x-www-form-urlencoded" content type).
 */
export function jsonPayload(contentType: string | undefined, body: Buffer): Buffer {
  if (!(contentType ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) return body;
  const payload = new URLSearchParams(body.toString('utf8')).get('payload');
  if (payload === null) throw badRequest('payload: the form-encoded body has no payload field', { field: 'payload' });
  return Buffer.from(payload, 'utf8');
}

/**
 * Triggers of the claimed repository. A trigger names the repository the way its owner writes it:
 * the provider's name (`Hello-World`), its full name (`Codertocat/Hello-World`), or the path's last
 * segment where the display name differs from it (GitLab's `Diaspora` is `mike/diaspora`).
 */
function triggersOf(context: DeliveryContext, repository: ClaimedRepository): Trigger[] {
  const found = new Map<string, Trigger>();
  const add = (triggers: Trigger[]) => triggers.forEach((trigger) => found.set(trigger.key, trigger));
  add(context.triggers.forRepository(repository.name, repository.fullName));
  const slug = repository.fullName?.split('/').at(-1);
  if (slug !== undefined && slug !== '' && slug !== repository.name) add(context.triggers.forRepository(slug, repository.fullName));
  return [...found.values()];
}

/**
 * Triggers whose token verifies the request: each distinct token name is tried once (with one
 * refresh from its source when it fails, in case the token was just rotated).
 */
export async function verifiedTriggers(context: DeliveryContext, candidates: Trigger[], verify: (token: string) => boolean, stopAtFirst: boolean): Promise<Trigger[]> {
  const byTokenName = new Map<string, Trigger[]>();
  for (const trigger of candidates) {
    const group = byTokenName.get(trigger.token.tokenName);
    if (group) group.push(trigger);
    else byTokenName.set(trigger.token.tokenName, [trigger]);
  }
  const verified: Trigger[] = [];
  for (const group of byTokenName.values()) {
    if (await verifyWithTokens(context, group[0]!, (tokens) => tokens.some(verify))) {
      verified.push(...group);
      if (stopAtFirst) break;
    }
  }
  return verified;
}

function ignored(context: DeliveryContext, events: ProviderEvents, request: ProviderRequest, reason: string, fields: Record<string, unknown> = {}): Reply {
  context.logger.info({ provider: events.provider, event: request.event, delivery: request.deliveryId, reason, ...fields }, 'provider delivery ignored: nothing runs');
  return { status: 200, body: { status: 'ignored', reason: `ignored: ${reason}`, ...(request.deliveryId ? { delivery: request.deliveryId } : {}) } };
}

function describeUnrouted(update: Exclude<RefUpdate, { kind: 'branch' }>): string {
  switch (update.kind) {
    case 'branch-deleted':
      return `branch ${update.branch} was deleted`;
    case 'tag':
      return `tag push (${update.tag})`;
    case 'other':
      return `ref ${update.ref} is not a branch`;
  }
}

/** Combines the answers of the deliveries of one push (Bitbucket may push several branches at once). */
function combinedReply(replies: Reply[], deliveryId: string, notRun: string[]): Reply {
  const extra = notRun.length > 0 ? { ignored: notRun } : {};
  if (replies.length === 1) return { status: replies[0]!.status, body: { ...replies[0]!.body, ...extra } };
  const anyAccepted = replies.some((reply) => reply.status === 202);
  return {
    status: anyAccepted ? 202 : 200,
    body: {
      status: anyAccepted ? 'accepted' : 'duplicate',
      delivery: deliveryId,
      runs: replies.map((reply) => ({ ...(reply.body.run as Record<string, unknown>), status: reply.body.status, coalesced: reply.body.coalesced ?? false })),
      ...extra,
    },
  };
}

/** Pings and malformed bodies from a real provider are small; push payloads name their repository. */
const UNCLAIMED_BODY_LIMIT = 64 * 1024;

async function handleProviderDelivery(events: ProviderEvents, request: ProviderRequest, context: DeliveryContext): Promise<Reply> {
  const { provider } = events;
  const payload = parseJsonObject(request.payload);
  const claimed = payload ? claimedRepository(provider, payload) : undefined;
  let candidates: Trigger[];
  if (claimed) {
    candidates = triggersOf(context, claimed);
    if (candidates.length === 0) {
      throw unauthorized('no trigger for this repository', { provider, repository: (claimed.fullName ?? claimed.name).slice(0, 200), delivery: request.deliveryId });
    }
  } else {
    // The body names no repository we can read (not JSON, or an organisation-wide ping): try
    // every configured token, so a sender holding one learns its body is wrong (400) or is
    // answered (a ping), while anyone else still gets 401. Nothing runs from such a body. Only
    // for small bodies: one HMAC per token over megabytes is work an unsigned caller could demand.
    if (request.payload.length > UNCLAIMED_BODY_LIMIT) {
      throw unauthorized('body names no repository and is too large to try every token', { provider, delivery: request.deliveryId });
    }
    candidates = context.triggers.all();
  }
  const verified = await verifiedTriggers(context, candidates, request.verify, claimed === undefined);
  if (verified.length === 0) {
    throw unauthorized(`bad ${request.signatureName}`, { provider, repository: claimed ? (claimed.fullName ?? claimed.name).slice(0, 200) : undefined, delivery: request.deliveryId });
  }

  if (!payload) throw badRequest('body is not a JSON object', { field: 'body' });
  if (events.ping !== undefined && request.event === events.ping) {
    context.logger.info({ provider, delivery: request.deliveryId, repository: claimed?.fullName ?? claimed?.name }, 'provider ping verified');
    return { status: 200, body: { status: 'ok', event: request.event } };
  }
  if (request.event !== events.push) return ignored(context, events, request, `event ${request.event.slice(0, 64)} is not ${events.push}`);
  const push = readProviderPush(provider, payload);
  if ('field' in push) throw badRequest(`${push.field} ${push.reason}`, { field: push.field });

  const nowMs = context.now();
  // A provider without a signed timestamp can only be kept from replaying by its delivery id.
  const rememberUntil = request.rememberUntil ?? nowMs + context.config.signature.replaySeconds * 1000;
  const deliveryId = request.deliveryId ?? `sha256:${createHash('sha256').update(request.payload).digest('hex').slice(0, 32)}`;
  const deliveries: AcceptedDelivery[] = [];
  const notRun: string[] = [];
  for (const update of push.updates) {
    if (update.kind !== 'branch') {
      notRun.push(describeUnrouted(update));
      continue;
    }
    const triggers = verified.filter((trigger) => trigger.config.branch === update.branch);
    if (triggers.length === 0) {
      notRun.push(`no trigger for branch ${update.branch.slice(0, 200)}`);
      continue;
    }
    for (const trigger of triggers) {
      const { repository, branch } = trigger.config;
      deliveries.push({
        dedupeKey: dedupeKeyOf(provider, trigger, deliveryId),
        dedupeUntil: rememberUntil,
        deliveryId,
        repository,
        branch,
        commit: update.commit,
        ...(update.previousCommit !== undefined ? { previousCommit: update.previousCommit } : {}),
        ...(push.pusher !== undefined ? { pusher: push.pusher } : {}),
        event: request.event,
        scheme: provider,
        receivedAt: new Date(nowMs).toISOString(),
      });
    }
  }
  if (deliveries.length === 0) {
    return ignored(context, events, request, notRun.join('; ') || 'the push updated no ref', { repository: push.repository.fullName ?? push.repository.name });
  }
  const replies: Reply[] = [];
  for (const delivery of deliveries) replies.push(await acceptDelivery(context, delivery));
  return combinedReply(replies, deliveryId, notRun);
}
