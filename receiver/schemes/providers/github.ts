/**
 * GitHub (and GitHub Enterprise Server) repository webhooks: `POST /hooks/github`.
 *
 *   X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>
 *   X-GitHub-Event: push | ping | ...        X-GitHub-Delivery: <uuid, repeated by a redelivery>
 *
 * The body is JSON, or form-encoded with the JSON in `payload` (GitHub signs the raw body either way).
 */
import { GITHUB_SIGNATURE_HEADER, parseHubSignature, verifyBodyHmac } from '../../../protocol';
import { header, unauthorized } from '../handler';
import { deliveryIdHeader, jsonPayload, requiredEvent, type ProviderScheme } from './provider-delivery';

export const github: ProviderScheme = {
  events: { provider: 'github', push: 'push', ping: 'ping' },
  precheck(req) {
    const event = requiredEvent(req, ['x-github-event'], 'X-GitHub-Event');
    const sent = header(req, GITHUB_SIGNATURE_HEADER);
    const signature = parseHubSignature(sent);
    if (!signature) {
      throw unauthorized(sent === undefined ? 'unsigned: no X-Hub-Signature-256' : 'X-Hub-Signature-256 is not sha256=<64 hex digits>', { provider: 'github' });
    }
    const deliveryId = deliveryIdHeader(req, ['x-github-delivery']);
    const contentType = header(req, 'content-type');
    return (body) => ({
      event,
      ...(deliveryId !== undefined ? { deliveryId } : {}),
      payload: jsonPayload(contentType, body),
      verify: (token) => verifyBodyHmac(token, body, signature),
      signatureName: 'X-Hub-Signature-256',
    });
  },
};
