/**
 * Self-hosted Git (a bare repository on this server, Gitolite, cgit): `triggler hook install`
 * writes a post-receive hook that sends one signed delivery per pushed branch (tags and deletions
 * send nothing) with the ref's new commit. A delivery that cannot be sent (the receiver is down,
 * or answers 5xx/408/429) is kept in a spool directory and sent again before the next push's, or
 * by `triggler hook flush` (a timer can run it), so a push while the receiver is down is not lost.
 * The pusher sees one line saying what happened. Settings live beside the hooks, in
 * `<git-dir>/triggler-hook.json`; the token is read at push time from a token file or a variable.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { buildDeliveryRequest, type PushData, tokenNameOf } from '../protocol';
import { readTokenFile, tokensOfEntry } from '../receiver';
import { postDelivery, runOf } from './deliver';
import { cliInvocation } from './cli-invocation';
import { repositorySharing, Spool, type SpooledPush, spoolModes } from './hook-spool';
import { positiveInt } from './send-command';

export const HOOK_SETTINGS_FILE = 'triggler-hook.json';
const MARKER = '# Written by `triggler hook install`';
const ZERO = /^0+$/;

interface HookSettings {
  url: string;
  repository: string;
  tokenFile?: string;
  tokenEnv?: string;
  tokenName?: string;
  spool: string;
  timeoutMs: number;
}

/** The repository's spool, shared as the repository is. */
function spoolOf(gitDir: string, settings: HookSettings): Spool {
  return new Spool(settings.spool, spoolModes(repositorySharing(gitDir)));
}

function settingsPath(gitDir: string): string {
  return path.join(gitDir, HOOK_SETTINGS_FILE);
}

function readSettings(gitDir: string): HookSettings {
  const file = settingsPath(gitDir);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as HookSettings;
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message} (triggler hook install --git-dir ${gitDir} ... writes it)`, { cause: error });
  }
}

/** A shell word: single-quoted; a path holding a single quote is refused rather than escaped. */
function shellWord(text: string, what: string): string {
  if (text.includes("'")) throw new Error(`${what} ${text} holds a single quote; use a path without one`);
  return `'${text}'`;
}

/** `old new ref` lines on the hook's standard input, as branch pushes; tags, deletions and other refs are left out. */
export function branchPushes(input: string, repository: string, pushedAt: string, pusher: string | undefined): SpooledPush[] {
  const pushes: SpooledPush[] = [];
  for (const line of input.split('\n')) {
    const [previous, commit, ref] = line.trim().split(/\s+/);
    if (!previous || !commit || !ref || !ref.startsWith('refs/heads/') || ZERO.test(commit)) continue;
    const branch = ref.slice('refs/heads/'.length);
    // Each push is a new event, even one repeating an earlier transition (x -> y, y -> x, x -> y):
    // its id is its own. A resend of it (from the spool, which keeps the id) is the same delivery
    // and runs nothing a second time.
    const id = `push_${randomBytes(16).toString('hex')}`;
    pushes.push({ id, repository, branch, ref, commit, ...(ZERO.test(previous) ? {} : { previousCommit: previous }), ...(pusher ? { pusher } : {}), pushedAt });
  }
  return pushes;
}

async function tokenFor(settings: HookSettings, branch: string): Promise<string> {
  if (settings.tokenEnv) {
    const token = process.env[settings.tokenEnv];
    if (!token) throw new Error(`${settings.tokenEnv} is not set in the hook's environment`);
    return token;
  }
  if (!settings.tokenFile) throw new Error(`${HOOK_SETTINGS_FILE} names neither tokenFile nor tokenEnv`);
  const name = tokenNameOf({ repository: settings.repository, branch, tokenName: settings.tokenName });
  const [token] = tokensOfEntry((await readTokenFile(settings.tokenFile))[name], 0, Date.now());
  if (!token) throw new Error(`no token named ${name} in ${settings.tokenFile}`);
  return token;
}

type Outcome = { sent: true; what: string } | { sent: false; keep: boolean; what: string };

async function deliver(settings: HookSettings, push: SpooledPush): Promise<Outcome> {
  let token: string;
  try {
    token = await tokenFor(settings, push.branch);
  } catch (error) {
    return { sent: false, keep: true, what: `not sent: ${(error as Error).message}` };
  }
  const data: PushData = {
    repository: push.repository,
    branch: push.branch,
    ref: push.ref,
    commit: push.commit,
    ...(push.previousCommit ? { previousCommit: push.previousCommit } : {}),
    ...(push.pusher ? { pusher: push.pusher } : {}),
    source: 'git-hook',
  };
  const delivery = buildDeliveryRequest({ scheme: 'standard', token, id: push.id, timestamp: Math.floor(Date.now() / 1000), data });
  try {
    const answer = await postDelivery(settings.url, delivery, settings.timeoutMs);
    if (answer.status === 202 || answer.status === 200) return { sent: true, what: `${answer.status === 202 ? 'accepted' : 'already accepted'}, run ${runOf(answer) ?? '?'}` };
    const retryable = answer.status >= 500 || answer.status === 408 || answer.status === 429;
    return { sent: false, keep: retryable, what: `receiver answered ${answer.status}${typeof answer.body.error === 'string' ? ` (${answer.body.error})` : ''}` };
  } catch (error) {
    return { sent: false, keep: true, what: `receiver unreachable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
}

/** Sends what the spool holds (oldest first), then `pushes`; returns one line for the pusher, and how many deliveries the spool still holds. */
export async function sendPushes(settings: HookSettings, spool: Spool, pushes: SpooledPush[]): Promise<{ line: string; left: number }> {
  const parts: string[] = [];
  const waiting = spool.waiting();
  let resent = 0;
  for (const { file, push } of waiting) {
    const outcome = await deliver(settings, push);
    if (outcome.sent || !outcome.keep) {
      spool.remove(file);
      if (outcome.sent) resent += 1;
      else parts.push(`${push.branch} (kept since ${push.pushedAt}) dropped: ${outcome.what}`);
    }
  }
  if (resent > 0) parts.push(`${resent} kept ${resent === 1 ? 'delivery' : 'deliveries'} sent`);
  for (const push of pushes) {
    const outcome = await deliver(settings, push);
    if (outcome.sent) parts.push(`${push.branch} ${push.commit.slice(0, 12)}: ${outcome.what}`);
    else if (outcome.keep) {
      spool.keep(push);
      parts.push(`${push.branch} ${push.commit.slice(0, 12)}: ${outcome.what}; kept in ${settings.spool}, sent again on the next push or by triggler hook flush`);
    } else parts.push(`${push.branch} ${push.commit.slice(0, 12)}: not delivered: ${outcome.what}`);
  }
  const left = spool.waiting().length;
  if (left > 0 && pushes.length === 0) parts.push(`${left} still kept in ${settings.spool}`);
  return { line: `triggler: ${parts.length > 0 ? parts.join('; ') : 'nothing to send (no branch was updated)'}`, left };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function hookCommand(): Command {
  const hook = new Command('hook').description('a post-receive hook for a bare repository on this server, and its spool of deliveries not sent yet');

  hook
    .command('install')
    .description('write <git-dir>/hooks/post-receive: one signed delivery per pushed branch')
    .requiredOption('-g, --git-dir <dir>', 'the bare repository (e.g. /srv/git/my-app.git)')
    .requiredOption('-u, --url <url>', 'the receiver\'s base URL (e.g. http://127.0.0.1:5000)')
    .option('-r, --repository <name>', 'the repository name the trigger uses (default: the git dir\'s name without .git)')
    .option('--token-file <file>', 'a token file the pushing user can read (mode 600), holding <repository>/<branch> or --token-name')
    .option('--token-env <name>', 'an environment variable of the hook holding the token, instead of a file')
    .option('--token-name <name>', 'the token\'s name in the file, when branches share one')
    .option('--spool <dir>', 'where deliveries that could not be sent wait (default: <git-dir>/triggler-spool)')
    .option('--timeout <ms>', 'how long one delivery may take', positiveInt, 10_000)
    .option('--force', 'replace a post-receive hook that triggler did not write')
    .addHelpText('after', '\nExample:\n  triggler hook install --git-dir /srv/git/my-app.git --url http://127.0.0.1:5000 --token-file /srv/git/.triggler-tokens.json\n\nA push while the receiver is down is kept and sent on the next push; to send it sooner, run\n  triggler hook flush --git-dir /srv/git/my-app.git      (by hand, or from a timer)')
    .action((options: { gitDir: string; url: string; repository?: string; tokenFile?: string; tokenEnv?: string; tokenName?: string; spool?: string; timeout: number; force?: boolean }) => {
      const gitDir = path.resolve(options.gitDir);
      if (!fs.existsSync(path.join(gitDir, 'HEAD')) || !fs.existsSync(path.join(gitDir, 'objects'))) throw new Error(`--git-dir: ${gitDir} is not a bare git repository (no HEAD and objects/)`);
      if ((options.tokenFile === undefined) === (options.tokenEnv === undefined)) throw new Error('give one of --token-file and --token-env');
      try {
        new URL(options.url);
      } catch {
        throw new Error(`--url: ${options.url} is not an absolute URL`);
      }
      const hookFile = path.join(gitDir, 'hooks', 'post-receive');
      if (fs.existsSync(hookFile) && !fs.readFileSync(hookFile, 'utf8').includes(MARKER) && !options.force) {
        throw new Error(`${hookFile} exists and was not written by triggler: pass --force to replace it (or call triggler hook post-receive from it)`);
      }
      const settings: HookSettings = {
        url: options.url,
        repository: options.repository ?? path.basename(gitDir).replace(/\.git$/, ''),
        ...(options.tokenFile ? { tokenFile: path.resolve(options.tokenFile) } : {}),
        ...(options.tokenEnv ? { tokenEnv: options.tokenEnv } : {}),
        ...(options.tokenName ? { tokenName: options.tokenName } : {}),
        spool: path.resolve(options.spool ?? path.join(gitDir, 'triggler-spool')),
        timeoutMs: options.timeout,
      };
      fs.writeFileSync(settingsPath(gitDir), `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o644 });
      const { program, script } = cliInvocation();
      const triggler = script === undefined ? shellWord(program, 'the triggler executable') : `${shellWord(program, 'node')} ${shellWord(script, 'the triggler CLI')}`;
      fs.mkdirSync(path.dirname(hookFile), { recursive: true });
      fs.writeFileSync(
        hookFile,
        `#!/bin/sh\n${MARKER}: one signed delivery per pushed branch (settings: ${settingsPath(gitDir)}).\nexec ${triggler} hook post-receive --git-dir ${shellWord(gitDir, '--git-dir')}\n`,
        { mode: 0o755 },
      );
      process.stdout.write(`wrote ${hookFile} and ${settingsPath(gitDir)}: pushes of ${settings.repository} now go to ${settings.url}\n`);
    });

  hook
    .command('post-receive')
    .description('what the installed hook runs: reads "<old> <new> <ref>" lines on standard input')
    .requiredOption('-g, --git-dir <dir>', 'the bare repository')
    .action(async (options: { gitDir: string }) => {
      const gitDir = path.resolve(options.gitDir);
      const settings = readSettings(gitDir);
      const pushes = branchPushes(await readStdin(), settings.repository, new Date().toISOString(), process.env.GL_USER ?? process.env.USER);
      process.stdout.write(`${(await sendPushes(settings, spoolOf(gitDir, settings), pushes)).line}\n`);
    });

  hook
    .command('flush')
    .description('send the deliveries a hook kept while the receiver could not take them')
    .requiredOption('-g, --git-dir <dir>', 'the bare repository')
    .action(async (options: { gitDir: string }) => {
      const gitDir = path.resolve(options.gitDir);
      const settings = readSettings(gitDir);
      const { line, left } = await sendPushes(settings, spoolOf(gitDir, settings), []);
      process.stdout.write(`${line}\n`);
      if (left > 0) process.exitCode = 1;
    });

  return hook;
}
