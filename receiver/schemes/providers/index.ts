/** The provider webhooks the delivery listener serves at `POST /hooks/<name>`. */
import type { ProviderScheme } from './provider-delivery';
import { bitbucket } from './bitbucket';
import { gitea } from './gitea';
import { github } from './github';
import { gitlab } from './gitlab';

export const providerSchemes: Record<string, ProviderScheme> = {
  github,
  gitlab,
  gitea,
  // Forgejo is a fork of Gitea and sends the same webhook (with X-Forgejo-* headers beside or instead of X-Gitea-*).
  forgejo: gitea,
  bitbucket,
} satisfies Record<import('../../../protocol').ProviderName | 'forgejo', ProviderScheme>;
