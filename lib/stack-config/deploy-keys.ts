/**
 * Which triggers fetch with a deploy key the stack generates, and what the keys are named. A
 * `source: "webhook"` trigger whose deploy fetches an SSH URL gets one, unless it names its own
 * `deploy.sshKey`; CodeCommit triggers fetch over HTTPS with the host's role and get none, and an
 * https:// URL of a webhook trigger is a public repository, fetched without a key.
 *
 * A key belongs to a repository, not to a trigger: GitHub refuses one deploy key on two
 * repositories, and two branches of one repository deploy with the same key. It is stored like a
 * token, under `tokens.prefix`: the private half as the SecureString `deploy-keys/<repository>`
 * (the name the receiver config's `deploy.sshKey` gets), the public half beside it as the plain
 * String `deploy-keys/<repository>.pub`.
 */
import { sshTarget } from '../../protocol';
import { nameHash } from './name-ids';

/** The folder under `tokens.prefix` that holds the generated keys. */
export const DEPLOY_KEYS_FOLDER = 'deploy-keys';

/** SSM takes these in a parameter name (besides `/`). */
const PARAMETER_LEVEL = /^[A-Za-z0-9_.-]+$/;

interface DeployingTrigger {
  repository: string;
  source: 'codecommit' | 'webhook';
  deploy?: { repositoryUrl?: string | undefined; sshKey?: string | undefined } | undefined;
}

/**
 * The name of the key generated for a repository: `deploy-keys/<repository>`. A name a provider
 * may send but SSM cannot hold (GitLab and Bitbucket send display names: `My Project`) has each
 * run of other characters replaced by `-` and the hash of the exact name appended, so names that
 * read alike stay apart: `deploy-keys/My-Project-1a2b3c4d`.
 */
export function deployKeyNameOf(repository: string): string {
  const levels = repository.split('/');
  if (levels.every((level) => PARAMETER_LEVEL.test(level))) return `${DEPLOY_KEYS_FOLDER}/${repository}`;
  const readable = repository
    .split('/')
    .map((level) => level.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, ''))
    .filter((level) => level !== '')
    .join('/');
  return `${DEPLOY_KEYS_FOLDER}/${readable === '' ? nameHash(repository) : `${readable}-${nameHash(repository)}`}`;
}

/** Where the public half of a generated key is kept, beside its private half: `<name>.pub`. */
export function publicKeyNameOf(keyName: string): string {
  return `${keyName}.pub`;
}

/** Whether the stack generates this trigger's deploy key. */
export function generatesDeployKey(trigger: DeployingTrigger): boolean {
  const url = trigger.deploy?.repositoryUrl;
  return trigger.source === 'webhook' && trigger.deploy?.sshKey === undefined && url !== undefined && sshTarget(url) !== undefined;
}

/** The key a trigger's fetch uses, as the receiver config names it: its own, the generated one, or none. */
export function sshKeyOf(trigger: DeployingTrigger): string | undefined {
  return trigger.deploy?.sshKey ?? (generatesDeployKey(trigger) ? deployKeyNameOf(trigger.repository) : undefined);
}

export interface GeneratedDeployKey {
  /** The repository whose deploy keys take its public half. */
  repository: string;
  /** The private half's name under `tokens.prefix`. */
  keyName: string;
  /** The URL its triggers fetch (the first trigger's). */
  repositoryUrl: string;
}

/** The keys the stack generates: one per repository, in the order the triggers first name them. */
export function generatedDeployKeysOf(triggers: readonly DeployingTrigger[]): GeneratedDeployKey[] {
  const keys = new Map<string, GeneratedDeployKey>();
  for (const trigger of triggers) {
    if (!generatesDeployKey(trigger) || keys.has(trigger.repository)) continue;
    keys.set(trigger.repository, {
      repository: trigger.repository,
      keyName: deployKeyNameOf(trigger.repository),
      repositoryUrl: trigger.deploy!.repositoryUrl!,
    });
  }
  return [...keys.values()];
}

/** The keys users name in `deploy.sshKey` (stored by them; the stack only grants reading them), each once. */
export function ownDeployKeyNamesOf(triggers: readonly DeployingTrigger[]): string[] {
  return [...new Set(triggers.flatMap((trigger) => (trigger.deploy?.sshKey === undefined ? [] : [trigger.deploy.sshKey])))];
}
