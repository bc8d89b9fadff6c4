/** The provider webhooks the delivery listener serves at `POST /hooks/<name>`. */
import type { ProviderHandler } from '../delivery-context';
import { bitbucketHandler } from './bitbucket';
import { giteaHandler } from './gitea';
import { githubHandler } from './github';
import { gitlabHandler } from './gitlab';

export const providerHandlers: Record<string, ProviderHandler> = {
  github: githubHandler,
  gitlab: gitlabHandler,
  gitea: giteaHandler,
  // Forgejo is a fork of Gitea and sends the same webhook (with X-Forgejo-* headers beside or instead of X-Gitea-*).
  forgejo: giteaHandler,
  bitbucket: bitbucketHandler,
};
