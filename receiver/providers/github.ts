/**
 * GitHub (and GitHub Enterprise Server) repository webhooks: `POST /hooks/github`.
 *
 *   X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>
 *   X-GitHub-Event: push | ping | ...        X-GitHub-Delivery: <uuid, repeated by a redelivery>
 *
 * The body is JSON, or form-encoded with the JSON in `payload` (GitHub signs the raw body either way).
 */
import { GITHUB_SIGNATURE_HEADER, parseHubSignature, verifyBodyHmac } from '../../protocol';
import { unauthorized, type ProviderHandler } from '../delivery-context';
import { deliveryIdHeader, handleProviderDelivery, header, jsonPayload, requiredEvent, type ProviderEvents } from './provider-delivery';

const GITHUB_EVENTS: ProviderEvents = { provider: 'github', push: 'push', ping: 'ping' };

export const githubHandler: ProviderHandler = async (req, body, context) => {
  const event = requiredEvent(req, ['x-github-event'], 'X-GitHub-Event');
  const sent = header(req, GITHUB_SIGNATURE_HEADER);
  const signature = parseHubSignature(sent);
  if (!signature) {
    throw unauthorized(sent === undefined ? 'unsigned: no X-Hub-Signature-256' : 'X-Hub-Signature-256 is not sha256=<64 hex digits>', { provider: 'github' });
  }
  const deliveryId = deliveryIdHeader(req, ['x-github-delivery']);
  return handleProviderDelivery(
    GITHUB_EVENTS,
    {
      event,
      ...(deliveryId !== undefined ? { deliveryId } : {}),
      payload: jsonPayload(req, body),
      verify: (token) => verifyBodyHmac(token, body, signature),
      signatureName: 'X-Hub-Signature-256',
    },
    context,
  );
};
