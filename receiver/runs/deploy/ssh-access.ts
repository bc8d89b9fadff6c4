/**
 * How a deploy fetches over SSH with a deploy key: the key (from the token file or SSM, by its
 * `deploy.sshKey` name) and the host keys ssh may accept are written to files of their own in the
 * receiver's state directory, readable by the receiver alone, for the fetch and no longer. ssh then
 * runs with those and nothing else: no ~/.ssh/config, no agent, no other identity, no host it has
 * not been told the key of, nobody to ask.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { knownHostsName, pinnedKnownHosts, privateKeyProblem, shellWord, sshOptionPathProblem, sshTarget } from '../../../protocol';
import type { DeployConfig } from '../../config/deploy-schema';

/** Looks up a secret by the name it is stored under (the token file, then SSM). */
export type SecretLookup = (name: string) => Promise<string | undefined>;

export interface SshAccess {
  /** GIT_SSH_COMMAND, for the fetch steps only. */
  env: Record<string, string>;
  /** What the log may say about it: the host and whose keys pin it, never a key. */
  description: string;
  /** What the log says after a fetch that did not reach the host: how to read ssh's reasons. */
  unreachable: string;
  /** Removes the key and known_hosts files. */
  dispose(): Promise<void>;
}

/** The folder of the state directory the fetches' key files are written in (mode 0700). */
export function sshFilesDir(stateDir: string): string {
  return path.join(stateDir, 'ssh');
}

/**
 * A path as an ssh option's value. ssh splits an option's value into words (quotes and
 * backslashes are its own), then expands `%` tokens and `${NAME}` in IdentityFile and
 * UserKnownHostsFile: the path is double-quoted with `\` and `"` escaped, and `%` doubled. `${`
 * has no way through (see sshOptionPathProblem).
 */
function sshPath(file: string): string {
  return `"${file.replace(/%/g, '%%').replace(/[\\"]/g, (char) => `\\${char}`)}"`;
}

/** Writes a file only its owner can read, replacing one a crashed run may have left. */
async function writePrivate(file: string, text: string): Promise<void> {
  await fsp.rm(file, { force: true });
  const handle = await fsp.open(file, 'wx', 0o600);
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}

/**
 * The files and GIT_SSH_COMMAND of one run's fetch, or undefined when the deploy names neither a
 * key nor host keys (ssh then runs as the service user's own ssh would). Resolves `{ error }` when
 * the key cannot be had or is not a key a fetch can use: the run fails naming why, never the key.
 */
export async function prepareSshAccess(
  deploy: DeployConfig,
  options: { stateDir: string; runId: string; secretNamed: SecretLookup },
): Promise<SshAccess | { error: string } | undefined> {
  if (deploy.sshKey === undefined && deploy.knownHosts === undefined) return undefined;
  const target = sshTarget(deploy.repositoryUrl);
  if (!target) return undefined;
  const hostName = knownHostsName(target);
  const knownHosts = deploy.knownHosts ?? pinnedKnownHosts(target);
  if (knownHosts.length === 0) return { error: `no host keys are known for ${hostName}: give them in deploy.knownHosts` };

  let key: string | undefined;
  if (deploy.sshKey !== undefined) {
    try {
      key = await options.secretNamed(deploy.sshKey);
    } catch (error) {
      return { error: `cannot read the deploy key ${deploy.sshKey} (deploy.sshKey): ${(error as Error).message}` };
    }
    if (key === undefined || key === '')
      return { error: `there is no deploy key named ${deploy.sshKey} (deploy.sshKey) in the token file or SSM` };
    const problem = privateKeyProblem(key);
    if (problem) return { error: `the deploy key ${deploy.sshKey} (deploy.sshKey) cannot be used: ${problem}` };
  }

  const dir = sshFilesDir(options.stateDir);
  const unwritable = sshOptionPathProblem(dir);
  if (unwritable) return { error: `the state directory's path ${options.stateDir} holds ${unwritable}, which ssh's options cannot carry` };
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const base = path.join(dir, `run-${options.runId.replace(/[^A-Za-z0-9_-]/g, '_')}`);
  const knownHostsFile = `${base}.known_hosts`;
  const keyFile = `${base}.key`;
  const dispose = async (): Promise<void> => {
    await Promise.all([fsp.rm(keyFile, { force: true }), fsp.rm(knownHostsFile, { force: true })]);
  };
  try {
    await writePrivate(knownHostsFile, `${knownHosts.join('\n')}\n`);
    // ssh refuses a key file without its final newline ("invalid format").
    if (key !== undefined) await writePrivate(keyFile, key.endsWith('\n') ? key : `${key}\n`);
  } catch (error) {
    await dispose();
    throw error;
  }

  const sshOptions = [
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${sshPath(knownHostsFile)}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'UpdateHostKeys=no',
    '-o',
    'ConnectTimeout=30',
  ];
  // With a key of its own the fetch uses that key alone: no ~/.ssh/config, agent or other identity.
  // IdentityFile as an option, not -i: ssh looks for an -i file by its name before expanding it.
  const identity =
    key === undefined
      ? []
      : ['-F', 'none', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', `IdentityFile=${sshPath(keyFile)}`];
  // git runs GIT_SSH_COMMAND through a POSIX shell.
  const command = ['ssh', ...identity, ...sshOptions].map(shellWord).join(' ');
  const pinnedBy = deploy.knownHosts === undefined ? 'the keys pinned for it' : 'deploy.knownHosts';
  return {
    env: { GIT_SSH_COMMAND: command },
    description: `ssh to ${hostName}${deploy.sshKey === undefined ? '' : ` with the deploy key ${deploy.sshKey}`}, its host checked against ${pinnedBy}`,
    // ssh's own advice names this fetch's known_hosts file, which is gone by the time anyone reads it.
    unreachable: `over ssh: "Host key verification failed" means the host's key is not among ${pinnedBy} (the run-*.known_hosts file ssh names is this fetch's copy, removed after it); "Permission denied (publickey)" that the host does not know the deploy key`,
    dispose,
  };
}

/** Removes key files a receiver that died mid-fetch left behind (no run is fetching at start). */
export async function removeLeftoverSshFiles(stateDir: string): Promise<void> {
  await fsp.rm(sshFilesDir(stateDir), { recursive: true, force: true });
}
