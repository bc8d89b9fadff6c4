/**
 * GitHub (and GitHub Enterprise Server) repository webhooks: `POST /hooks/github`.
 *
 *   X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>
 *   X-GitHub-Event: push | ping | ...        X-GitHub-Delivery: <uuid, repeated by a redelivery>
 *
 * The body is JSON, or form-encoded with the JSON in `payload` (GitHub signs the raw body either way).
 */
import { GITHUB_SIGNATURE_HEADER } from '../../../protocol';
import { hubSignedScheme } from './provider-delivery';

export const github = hubSignedScheme(
  { provider: 'github', push: 'push', ping: 'ping' },
  { event: ['x-github-event', 'X-GitHub-Event'], signature: [GITHUB_SIGNATURE_HEADER, 'X-Hub-Signature-256'], deliveryId: 'x-github-delivery', formEncoded: true },
);
