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
import { GITLAB_TOKEN_HEADER, gitlabTokenMatches, verifyStandardWebhook } from '../../../protocol';
import { type DeliveryContext, header, unauthorized } from '../handler';
import { checkStandardHeaders, standardRememberUntil } from '../standard';
import { deliveryIdHeader, type ProviderBodyReader, type ProviderScheme, requiredEvent, verifiedTriggers } from './provider-delivery';

export const gitlab: ProviderScheme = {
  events: { provider: 'gitlab', push: 'Push Hook' },
  precheck(req, context) {
    const event = requiredEvent(req, ['x-gitlab-event'], 'X-Gitlab-Event');
    if (header(req, 'webhook-signature') !== undefined) {
      // The signing token: the Standard scheme's check, window and replay rules.
      const nowMs = context.now();
      const headers = checkStandardHeaders(req, context, nowMs);
      return (body) => ({
        event,
        deliveryId: headers.id,
        payload: body,
        verify: (token) => verifyStandardWebhook(token, headers, body),
        signatureName: 'webhook-signature',
        rememberUntil: standardRememberUntil(context, headers, nowMs),
      });
    }
    const secret = header(req, GITLAB_TOKEN_HEADER);
    if (secret === undefined) throw unauthorized('unsigned: no X-Gitlab-Token or webhook-signature', { provider: 'gitlab' });
    const deliveryId = deliveryIdHeader(req, ['webhook-id', 'idempotency-key', 'x-gitlab-event-uuid']);
    return secretTokenReader(context, event, secret, deliveryId);
  },
};

/**
 * The secret token is the secret itself, so it can be checked before a byte of the body is read:
 * a token that is no configured trigger's is refused without buffering anything. Which of the
 * triggers it may run is decided, as for every provider, from the verified body.
 */
async function secretTokenReader(context: DeliveryContext, event: string, secret: string, deliveryId: string | undefined): Promise<ProviderBodyReader> {
  const verify = (token: string) => gitlabTokenMatches(token, secret);
  if ((await verifiedTriggers(context, context.triggers.all(), verify, true)).length === 0) {
    throw unauthorized('bad X-Gitlab-Token', { provider: 'gitlab', ...(deliveryId !== undefined ? { delivery: deliveryId } : {}) });
  }
  return (body) => ({
    event,
    ...(deliveryId !== undefined ? { deliveryId } : {}),
    payload: body,
    verify,
    signatureName: 'X-Gitlab-Token',
  });
}
