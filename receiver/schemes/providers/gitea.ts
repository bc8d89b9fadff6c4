/**
 * Gitea and Forgejo webhooks (type "Gitea"/"Forgejo"): `POST /hooks/gitea` or `/hooks/forgejo`.
 *
 *   X-Gitea-Signature or X-Forgejo-Signature: <hex HMAC-SHA256(secret, JSON payload)>
 *   X-Gitea-Event / X-Forgejo-Event: push | ...   X-Gitea-Delivery / X-Forgejo-Delivery: <uuid>
 *
 * With the "application/x-www-form-urlencoded" content type the JSON is the body's `payload`
 * field, and the signature covers that JSON, not the form-encoded body.
 */
import { FORGEJO_SIGNATURE_HEADER, GITEA_SIGNATURE_HEADER, parseHexSignature, verifyBodyHmac } from '../../../protocol';
import { header, unauthorized } from '../handler';
import { deliveryIdHeader, firstHeader, jsonPayload, requiredEvent, type ProviderScheme } from './provider-delivery';

export const gitea: ProviderScheme = {
  events: { provider: 'gitea', push: 'push' },
  precheck(req) {
    const event = requiredEvent(req, ['x-forgejo-event', 'x-gitea-event'], 'X-Gitea-Event');
    const sent = firstHeader(req, [FORGEJO_SIGNATURE_HEADER, GITEA_SIGNATURE_HEADER]);
    if (sent === undefined) throw unauthorized('unsigned: no X-Gitea-Signature or X-Forgejo-Signature', { provider: 'gitea' });
    const signature = parseHexSignature(sent.value);
    if (!signature) throw unauthorized(`${sent.name} is not 64 hex digits`, { provider: 'gitea' });
    const signatureName = sent.name === FORGEJO_SIGNATURE_HEADER ? 'X-Forgejo-Signature' : 'X-Gitea-Signature';
    const deliveryId = deliveryIdHeader(req, ['x-forgejo-delivery', 'x-gitea-delivery']);
    const contentType = header(req, 'content-type');
    return (body) => {
      // Gitea signs the JSON payload, also when it arrives form-encoded.
      const payload = jsonPayload(contentType, body);
      return {
        event,
        ...(deliveryId !== undefined ? { deliveryId } : {}),
        payload,
        verify: (token) => verifyBodyHmac(token, payload, signature),
        signatureName,
      };
    };
  },
};
