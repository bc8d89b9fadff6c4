/**
 * The provider webhooks the delivery listener serves at `POST /hooks/<name>`. Which headers each
 * sends, and what its signature covers, is protocol/provider-requests' (shared with the webhook
 * relay):
 *
 *   GitHub     X-Hub-Signature-256: sha256=<hex HMAC of the raw body>; X-GitHub-Event (push, ping);
 *              X-GitHub-Delivery, repeated by a redelivery. JSON, or form-encoded with `payload`.
 *   GitLab     the signing token (webhook-id, webhook-timestamp, webhook-signature: Standard
 *              Webhooks, its window and replay rules), or the secret token in X-Gitlab-Token;
 *              X-Gitlab-Event (Push Hook, ...).
 *   Gitea      X-Gitea-Signature / X-Forgejo-Signature: <hex HMAC of the JSON payload>, also when
 *              form-encoded; X-Gitea-Event / X-Forgejo-Event. Forgejo is a fork of Gitea.
 *   Bitbucket  X-Hub-Signature: sha256=<hex HMAC of the raw body>; X-Event-Key (repo:push);
 *              X-Request-UUID. One push may carry several branches: each with a trigger runs.
 */
import { providerHeaders } from '../../../protocol';
import { providerScheme, type ProviderScheme } from './provider-delivery';

const gitea = providerScheme('gitea', { push: providerHeaders('gitea').push });

export const providerSchemes: Record<import('../../../protocol').ProviderName | 'forgejo', ProviderScheme> = {
  github: providerScheme('github', { push: providerHeaders('github').push }),
  gitlab: providerScheme('gitlab', { push: providerHeaders('gitlab').push, standardSigning: true }),
  gitea,
  forgejo: gitea,
  bitbucket: providerScheme('bitbucket', { push: providerHeaders('bitbucket').push }),
};
