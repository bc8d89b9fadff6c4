/**
 * Bitbucket Cloud repository webhooks: `POST /hooks/bitbucket`.
 *
 *   X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>
 *   X-Event-Key: repo:push | ...             X-Request-UUID: <uuid, repeated by a retry>
 *
 * One push may carry several `push.changes` (several branches): each branch with a trigger runs.
 */
import { BITBUCKET_SIGNATURE_HEADER, parseHubSignature, verifyBodyHmac } from '../../../protocol';
import { header, unauthorized } from '../handler';
import { deliveryIdHeader, requiredEvent, type ProviderScheme } from './provider-delivery';

export const bitbucket: ProviderScheme = {
  events: { provider: 'bitbucket', push: 'repo:push' },
  precheck(req) {
    const event = requiredEvent(req, ['x-event-key'], 'X-Event-Key');
    const sent = header(req, BITBUCKET_SIGNATURE_HEADER);
    const signature = parseHubSignature(sent);
    if (!signature) {
      throw unauthorized(sent === undefined ? 'unsigned: no X-Hub-Signature' : 'X-Hub-Signature is not sha256=<64 hex digits>', { provider: 'bitbucket' });
    }
    const deliveryId = deliveryIdHeader(req, ['x-request-uuid']);
    return (body) => ({
      event,
      ...(deliveryId !== undefined ? { deliveryId } : {}),
      payload: body,
      verify: (token) => verifyBodyHmac(token, body, signature),
      signatureName: 'X-Hub-Signature',
    });
  },
};
