/**
 * Bitbucket Cloud repository webhooks: `POST /hooks/bitbucket`.
 *
 *   X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>
 *   X-Event-Key: repo:push | ...             X-Request-UUID: <uuid, repeated by a retry>
 *
 * One push may carry several `push.changes` (several branches): each branch with a trigger runs.
 */
import { BITBUCKET_SIGNATURE_HEADER } from '../../../protocol';
import { hubSignedScheme } from './provider-delivery';

export const bitbucket = hubSignedScheme(
  { provider: 'bitbucket', push: 'repo:push' },
  { event: ['x-event-key', 'X-Event-Key'], signature: [BITBUCKET_SIGNATURE_HEADER, 'X-Hub-Signature'], deliveryId: 'x-request-uuid', formEncoded: false },
);
