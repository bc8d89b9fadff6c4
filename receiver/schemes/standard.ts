/**
 * Standard Webhooks between our own ends: `POST /hooks/<repo>/<branch>` with `webhook-id`,
 * `webhook-timestamp` and `webhook-signature` (HMAC-SHA256 of `<id>.<timestamp>.<body>`), and a
 * `git.push` body. GitLab's signing token is the same scheme, so its handler checks the headers
 * here too.
 */
import type { IncomingMessage } from 'node:http';
import { checkTimestampWindow, parseStandardHeaders, readPushBody, type StandardHeaders, verifyStandardWebhook } from '../../protocol';
import type { Trigger } from '../config/trigger-table';
import { badRequest, Rejection, unauthorized } from '../errors';
import {
  acceptDelivery,
  dedupeKeyOf,
  type DeliveryContext,
  type DeliveryHandler,
  type Eventually,
  header,
  isPending,
  type Outcome,
  unauthorizedPerTrigger,
  verifyWithTokens,
  WINDOW_WORDS,
} from './handler';

/** The Standard Webhooks headers, well-formed and inside the tolerance; a 400 naming the header otherwise. */
export function checkStandardHeaders(req: IncomingMessage, context: DeliveryContext, nowMs: number): StandardHeaders | Rejection {
  const headers = parseStandardHeaders(header(req, 'webhook-id'), header(req, 'webhook-timestamp'), header(req, 'webhook-signature'));
  if ('header' in headers) return badRequest(`${headers.header} ${headers.reason}`, { header: headers.header });
  const { toleranceSeconds } = context.config.signature;
  const window = checkTimestampWindow(headers.timestamp, Math.floor(nowMs / 1000), toleranceSeconds, toleranceSeconds);
  if (window !== 'ok') return badRequest(`webhook-timestamp is ${WINDOW_WORDS[window]}`, WINDOW_FIELDS);
  return headers;
}

const WINDOW_FIELDS = { header: 'webhook-timestamp' };
const badSignature = unauthorizedPerTrigger('bad webhook-signature');

/** Until when a Standard webhook-id is remembered: a sender's retry comes long after, re-signed with a new timestamp. */
export function standardRememberUntil(context: DeliveryContext, headers: StandardHeaders, nowMs: number): number {
  const { toleranceSeconds, replaySeconds } = context.config.signature;
  return Math.max((headers.timestamp + toleranceSeconds) * 1000, nowMs + replaySeconds * 1000);
}

interface StandardPrecheck {
  headers: StandardHeaders;
  trigger: Trigger;
}

export function standardHandler(context: DeliveryContext): DeliveryHandler<{ repository: string; branch: string }, StandardPrecheck> {
  return {
    precheck(req, { repository, branch }) {
      const headers = checkStandardHeaders(req, context, context.now());
      if (headers instanceof Rejection) return headers;
      const trigger = context.triggers.get(repository, branch);
      if (!trigger)
        return unauthorized('no trigger for this repository and branch', () => ({
          repository: repository.slice(0, 200),
          branch: branch.slice(0, 200),
        }));
      return { headers, trigger };
    },

    handle({ headers, trigger }, body) {
      const ok = verifyWithTokens(context, trigger, (tokens) => tokens.some((token) => verifyStandardWebhook(token, headers, body)));
      return isPending(ok) ? ok.then((verified) => accept(headers, trigger, body, verified)) : accept(headers, trigger, body, ok);
    },
  };

  function accept(headers: StandardHeaders, trigger: Trigger, body: Buffer, verified: boolean): Eventually<Outcome> {
    const { repository, branch } = trigger.config;
    if (!verified) return badSignature(trigger);
    const facts = readPushBody(body, repository, branch);
    if ('field' in facts) return badRequest(`${facts.field} ${facts.reason}`, { field: facts.field });
    const nowMs = context.now();
    return acceptDelivery(context, {
      dedupeKey: dedupeKeyOf('standard', trigger, headers.id),
      dedupeUntil: standardRememberUntil(context, headers, nowMs),
      deliveryId: headers.id,
      repository,
      branch,
      commit: facts.commit,
      ...(facts.previousCommit !== undefined ? { previousCommit: facts.previousCommit } : {}),
      ...(facts.pusher !== undefined ? { pusher: facts.pusher } : {}),
      scheme: 'standard',
      receivedAt: new Date(nowMs).toISOString(),
    });
  }
}
