/**
 * How the receiver runs git on what it fetches: nothing from the fetched repository runs or
 * configures anything here. Git never transfers a repository's config or hooks; on top of that,
 * hooks are off (core.hooksPath=/dev/null, so not even a hook planted in the mirror runs on
 * checkout), submodules are never fetched or checked out, and only the file, git, ssh, http and
 * https transports are allowed (not ext::, whose URL is a command line).
 */
import { execFile } from 'node:child_process';
import { COMMIT_TEXT_LIMIT } from '../run-record';
import type { PasswdEntry } from '../run-as-user';

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

/**
 * How a step's command line reads in the run log: git's safe config, the same ten settings on
 * every git step, shortened to `<safe config>` (SAFE_GIT_CONFIG above says what it is).
 */
export function commandForLog(command: string | readonly string[]): string {
  if (typeof command === 'string') return command;
  const safe = command[0] === 'git' && SAFE_GIT_CONFIG.every((word, i) => command[i + 1] === word);
  return (safe ? ['git', '<safe config>', ...command.slice(1 + SAFE_GIT_CONFIG.length)] : command).join(' ');
}

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

/** A reading of the mirror gets this long: a commit's subject is one object away. */
const READ_COMMIT_MS = 10_000;

/**
 * A commit's subject and author's name, as `git log -1` reads them from the mirror, each cut to
 * what a run's record keeps; undefined when git cannot tell (nothing of it goes in the record).
 * Read as the account the deploy's steps run as, who owns the mirror (git refuses a repository of
 * another owner), with nothing of the receiver's environment but PATH.
 */
export function readCommitText(
  mirror: string,
  commit: string,
  account: PasswdEntry | undefined,
): Promise<{ subject: string; author: string } | undefined> {
  if (requestedCommit(commit) === undefined) return Promise.resolve(undefined);
  const [program, ...args] = gitIn(mirror, 'log', '-1', '--no-show-signature', '--format=%s%x00%an', commit, '--');
  return new Promise((resolve) => {
    execFile(
      program!,
      args,
      {
        timeout: READ_COMMIT_MS,
        maxBuffer: 64 * 1024,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          ...(account ? { HOME: account.home } : process.env.HOME ? { HOME: process.env.HOME } : {}),
        },
        ...(account ? { uid: account.uid, gid: account.gid } : {}),
      },
      (error, stdout) => {
        const [subject, author] = String(stdout).replace(/\n$/, '').split('\0');
        if (error || subject === undefined || author === undefined) return resolve(undefined);
        resolve({ subject: subject.slice(0, COMMIT_TEXT_LIMIT), author: author.slice(0, COMMIT_TEXT_LIMIT) });
      },
    );
  });
}
