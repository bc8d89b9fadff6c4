/**
 * How the receiver runs git on what it fetches: nothing from the fetched repository runs or
 * configures anything here. Git never transfers a repository's config or hooks; on top of that,
 * hooks are off (core.hooksPath=/dev/null, so not even a hook planted in the mirror runs on
 * checkout), submodules are never fetched or checked out, and only the file, git, ssh, http and
 * https transports are allowed (not ext::, whose URL is a command line).
 */
export const SAFE_GIT_CONFIG = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'submodule.recurse=false',
  'fetch.recurseSubmodules=false',
  'protocol.allow=never',
  'protocol.file.allow=always',
  'protocol.git.allow=always',
  'protocol.ssh.allow=always',
  'protocol.http.allow=always',
  'protocol.https.allow=always',
].flatMap((setting) => ['-c', setting]);

/** `git <safe config> --git-dir=<mirror> <args>` as an argv (no shell). */
export function gitIn(mirror: string, ...args: string[]): string[] {
  return ['git', ...SAFE_GIT_CONFIG, `--git-dir=${mirror}`, ...args];
}

/** A commit id a run can ask for: hex, and not git's all-zero "no commit". */
export function requestedCommit(commit: string): string | undefined {
  return /^[0-9a-f]{7,64}$/i.test(commit) && !/^0+$/.test(commit) ? commit.toLowerCase() : undefined;
}

/** The commit a fetch of one branch wrote first into FETCH_HEAD (`<sha>\t\tbranch 'main' of <url>`). */
export function fetchHeadCommit(text: string): string | undefined {
  return /^([0-9a-f]{40,64})\t/.exec(text)?.[1];
}

/**
 * Host keys of the hosted providers, from their own documentation (GitHub's "SSH key
 * fingerprints", bitbucket.org/site/ssh, GitLab's "SSH host keys"). A self-hosted Gitea, Forgejo
 * or GitLab needs its own lines in deploy.knownHosts.
 */
export const PROVIDER_KNOWN_HOSTS = [
  'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
  'github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=',
  'gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf',
  'gitlab.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4kWitGjeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY=',
  'bitbucket.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO',
  'bitbucket.org ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE=',
];

/** GIT_SSH_COMMAND for a deploy key: that key only, host keys pinned, never a prompt. */
export function sshCommand(keyFile: string, knownHostsFile: string): string {
  const quote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;
  return [
    'ssh',
    '-i', quote(keyFile),
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${quote(knownHostsFile)}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
  ].join(' ');
}
