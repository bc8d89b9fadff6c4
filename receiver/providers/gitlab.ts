/**
 * GitLab project and group webhooks: `POST /hooks/gitlab`.
 *
 * Two ways to prove the sender, whichever the webhook is set up with:
 *   - signing token: webhook-id, webhook-timestamp, webhook-signature (Standard Webhooks: the same
 *     check, window and replay rules as our own scheme). GitLab sends webhook-id and
 *     webhook-timestamp on every delivery; webhook-signature only when a signing token is set,
 *     so that header alone chooses this check.
 *   - secret token: X-Gitlab-Token holds the secret itself, compared in constant time.
 *
 *   X-Gitlab-Event: Push Hook | Tag Push Hook | ...
 *   Delivery id: webhook-id (= Idempotency-Key, repeated by GitLab's retries), else X-Gitlab-Event-UUID.
 */
import {
  checkTimestampWindow,
  GITLAB_TOKEN_HEADER,
  gitlabTokenMatches,
  parseStandardHeaders,
  verifyStandardWebhook,
} from '../../protocol';
import { badRequest, unauthorized, type DeliveryContext, type ProviderHandler } from '../delivery-context';
import type { IncomingMessage } from 'node:http';
import { deliveryIdHeader, handleProviderDelivery, header, requiredEvent, type ProviderEvents, type ProviderRequest } from './provider-delivery';

const GITLAB_EVENTS: ProviderEvents = { provider: 'gitlab', push: 'Push Hook' };
const WINDOW_WORDS = { 'too-old': 'too old', 'too-new': 'too far in the future' } as const;

/** The signing-token check, with the Standard scheme's timestamp window. */
function signingTokenRequest(req: IncomingMessage, body: Buffer, event: string, context: DeliveryContext): ProviderRequest {
  const headers = parseStandardHeaders(header(req, 'webhook-id'), header(req, 'webhook-timestamp'), header(req, 'webhook-signature'));
  if ('header' in headers) throw badRequest(`${headers.header} ${headers.reason}`, { header: headers.header });
  const { toleranceSeconds, replaySeconds } = context.config.signature;
  const nowMs = context.now();
  const window = checkTimestampWindow(headers.timestamp, Math.floor(nowMs / 1000), toleranceSeconds, toleranceSeconds);
  if (window !== 'ok') throw badRequest(`webhook-timestamp is ${WINDOW_WORDS[window]}`, { header: 'webhook-timestamp' });
  return {
    event,
    deliveryId: headers.id,
    payload: body,
    verify: (token) => verifyStandardWebhook(token, headers, body),
    signatureName: 'webhook-signature',
    // A retry comes re-signed with a new timestamp but the same id: remember it past the window.
    rememberUntil: Math.max((headers.timestamp + toleranceSeconds) * 1000, nowMs + replaySeconds * 1000),
  };
}

export const gitlabHandler: ProviderHandler = async (req, body, context) => {
  const event = requiredEvent(req, ['x-gitlab-event'], 'X-Gitlab-Event');
  if (header(req, 'webhook-signature') !== undefined) {
    return handleProviderDelivery(GITLAB_EVENTS, signingTokenRequest(req, body, event, context), context);
  }
  const secret = header(req, GITLAB_TOKEN_HEADER);
  if (secret === undefined) throw unauthorized('unsigned: no X-Gitlab-Token or webhook-signature', { provider: 'gitlab' });
  const deliveryId = deliveryIdHeader(req, ['webhook-id', 'idempotency-key', 'x-gitlab-event-uuid']);
  return handleProviderDelivery(
    GITLAB_EVENTS,
    {
      event,
      ...(deliveryId !== undefined ? { deliveryId } : {}),
      payload: body,
      verify: (token) => gitlabTokenMatches(token, secret),
      signatureName: 'X-Gitlab-Token',
    },
    context,
  );
};
