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
import type { IncomingMessage } from 'node:http';
import {
  claimedRepository,
  providerHeaders,
  providerSignature,
  parseJsonObject,
  payloadDeliveryId,
  readProviderPush,
  UNCLAIMED_BODY_LIMIT,
  type ClaimedRepository,
  type ProviderName,
  type RefUpdate,
  type TokenOrKeys,
} from '../../../protocol';
import type { Trigger } from '../../config/trigger-table';
import type { AcceptedDelivery } from '../../delivery';
import { badRequest, Rejection, type Reply, unauthorized } from '../../errors';
import {
  acceptDelivery,
  dedupeKeyOf,
  type DeliveryContext,
  type DeliveryHandler,
  type Eventually,
  header,
  isPending,
  type Outcome,
} from '../handler';
import { checkStandardHeaders, standardRememberUntil } from '../standard';
import { deliveryIdHeader, jsonPayload, requiredEvent } from './provider-headers';
import { triggersOf, verifiedTriggers } from './provider-triggers';

/**
 * One provider's webhook: which events it sends, and how its headers are checked. `precheck`
 * reads only headers (the event, the signature's shape, the delivery id) and returns how to read
 * and verify the body once it has been read.
 */
export interface ProviderScheme {
  events: ProviderEvents;
  precheck(req: IncomingMessage, context: DeliveryContext): Eventually<ProviderBodyReader | Rejection>;
}

/** What a provider's precheck hands on: how to read and verify the body once it has been read. */
export type ProviderBodyReader = (body: Buffer) => ProviderRequest;

/** What differs between providers beyond their headers (which protocol/provider-requests knows). */
export interface ProviderOptions {
  /** The event that carries pushes. */
  push: string;
  /**
   * GitLab's signing token is Standard Webhooks: when `webhook-signature` is sent, the Standard
   * scheme's timestamp window and replay rules apply too.
   */
  standardSigning?: boolean;
}

/**
 * A provider's webhook. Its precheck reads the event, the delivery id and the signature's shape
 * from the headers (protocol/provider-requests: the same reading the webhook relay does); once
 * the body is read, the payload and the token check follow from what the headers said.
 */
export function providerScheme(provider: ProviderName, options: ProviderOptions): ProviderScheme {
  const names = providerHeaders(provider);
  return {
    events: { provider, push: options.push, ...(names.ping !== undefined ? { ping: names.ping } : {}) },
    precheck(req, context) {
      const event = requiredEvent(req, names.event, names.eventShown);
      if (event instanceof Rejection) return event;
      let rememberUntil: number | undefined;
      let signedId: string | undefined;
      if (options.standardSigning && header(req, 'webhook-signature') !== undefined) {
        const nowMs = context.now();
        const standard = checkStandardHeaders(req, context, nowMs);
        if (standard instanceof Rejection) return standard;
        rememberUntil = standardRememberUntil(context, standard, nowMs);
        signedId = standard.id;
      }
      const signature = providerSignature(provider, (name) => header(req, name));
      if ('unsigned' in signature)
        return unauthorized(signature.unsigned.startsWith('no ') ? `unsigned: ${signature.unsigned}` : signature.unsigned, { provider });
      const deliveryId = signedId ?? deliveryIdHeader(req, names.delivery);
      if (deliveryId instanceof Rejection) return deliveryId;
      const contentType = header(req, 'content-type');
      const reader: ProviderBodyReader = (body) => {
        // A form-encoded body without its payload field is the sender's mistake, said before any hash.
        const { payload, verify } = signature.read(body, jsonPayload(contentType, body));
        return {
          event,
          ...(deliveryId !== undefined ? { deliveryId } : {}),
          payload,
          verify,
          signatureName: signature.signatureName,
          ...(rememberUntil !== undefined ? { rememberUntil } : {}),
        };
      };
      // A secret sent as it is (GitLab's X-Gitlab-Token) that is no configured trigger's is refused
      // before anything is buffered; which triggers it may run is decided from the verified body.
      const { verifyWithoutBody } = signature;
      if (!verifyWithoutBody) return reader;
      const refused = () =>
        unauthorized(`bad ${signature.signatureName}`, { provider, ...(deliveryId !== undefined ? { delivery: deliveryId } : {}) });
      const verified = verifiedTriggers(context, context.triggers.all(), verifyWithoutBody, true);
      if (isPending(verified)) return verified.then((triggers) => (triggers.length === 0 ? refused() : reader));
      return verified.length === 0 ? refused() : reader;
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
  verify(token: TokenOrKeys): boolean;
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

function ignored(
  context: DeliveryContext,
  events: ProviderEvents,
  request: ProviderRequest,
  reason: string,
  fields: Record<string, unknown> = {},
): Reply {
  context.logger.info(
    { provider: events.provider, event: request.event, delivery: request.deliveryId, reason, ...fields },
    'provider delivery ignored: nothing runs',
  );
  return {
    status: 200,
    body: { status: 'ignored', reason: `ignored: ${reason}`, ...(request.deliveryId ? { delivery: request.deliveryId } : {}) },
  };
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
      runs: replies.map((reply) => ({
        ...(reply.body.run as Record<string, unknown>),
        status: reply.body.status,
        coalesced: reply.body.coalesced ?? false,
      })),
      ...extra,
    },
  };
}

function handleProviderDelivery(events: ProviderEvents, request: ProviderRequest, context: DeliveryContext): Eventually<Outcome> {
  const { provider } = events;
  const payload = parseJsonObject(request.payload);
  const claimed = payload ? claimedRepository(provider, payload) : undefined;
  let candidates: Trigger[];
  if (claimed) {
    candidates = triggersOf(context, claimed);
    if (candidates.length === 0) {
      return unauthorized('no trigger for this repository', () => ({
        provider,
        repository: (claimed.fullName ?? claimed.name).slice(0, 200),
        delivery: request.deliveryId,
      }));
    }
  } else {
    // The body names no repository we can read (not JSON, or an organisation-wide ping): try
    // every configured token, so a sender holding one learns its body is wrong (400) or is
    // answered (a ping), while anyone else still gets 401. Nothing runs from such a body. Only
    // for small bodies: one HMAC per token over megabytes is work an unsigned caller could demand.
    if (request.payload.length > UNCLAIMED_BODY_LIMIT) {
      return unauthorized('body names no repository and is too large to try every token', { provider, delivery: request.deliveryId });
    }
    candidates = context.triggers.all();
  }
  const verified = verifiedTriggers(context, candidates, request.verify, claimed === undefined);
  if (isPending(verified)) return verified.then((triggers) => actOnVerified(events, request, context, payload, claimed, triggers));
  return actOnVerified(events, request, context, payload, claimed, verified);
}

/** Once the triggers whose token verified are known: refused when none did, else answered or accepted. */
function actOnVerified(
  events: ProviderEvents,
  request: ProviderRequest,
  context: DeliveryContext,
  payload: Record<string, unknown> | undefined,
  claimed: ClaimedRepository | undefined,
  verified: Trigger[],
): Eventually<Outcome> {
  const { provider } = events;
  if (verified.length === 0) {
    return unauthorized(`bad ${request.signatureName}`, () => ({
      provider,
      repository: claimed ? (claimed.fullName ?? claimed.name).slice(0, 200) : undefined,
      delivery: request.deliveryId,
    }));
  }

  if (!payload) return badRequest('body is not a JSON object', { field: 'body' });
  if (events.ping !== undefined && request.event === events.ping) {
    context.logger.info(
      { provider, delivery: request.deliveryId, repository: claimed?.fullName ?? claimed?.name },
      'provider ping verified',
    );
    return { status: 200, body: { status: 'ok', event: request.event } };
  }
  if (request.event !== events.push) return ignored(context, events, request, `event ${request.event.slice(0, 64)} is not ${events.push}`);
  const push = readProviderPush(provider, payload);
  if ('field' in push) return badRequest(`${push.field} ${push.reason}`, { field: push.field });

  const nowMs = context.now();
  // A provider without a signed timestamp can only be kept from replaying by its delivery id.
  const rememberUntil = request.rememberUntil ?? nowMs + context.config.signature.replaySeconds * 1000;
  const deliveryId = request.deliveryId ?? payloadDeliveryId(request.payload);
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
    return ignored(context, events, request, notRun.join('; ') || 'the push updated no ref', {
      repository: push.repository.fullName ?? push.repository.name,
    });
  }
  return acceptAll(context, deliveries, deliveryId, notRun);
}

async function acceptAll(context: DeliveryContext, deliveries: AcceptedDelivery[], deliveryId: string, notRun: string[]): Promise<Reply> {
  const replies: Reply[] = [];
  for (const delivery of deliveries) replies.push(await acceptDelivery(context, delivery));
  return combinedReply(replies, deliveryId, notRun);
}
