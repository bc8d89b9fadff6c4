/**
 * Self-hosted Git (a bare repository on this server, Gitolite, cgit): `triggler hook install`
 * writes a post-receive hook that sends one signed delivery per pushed branch (tags and deletions
 * send nothing) with the ref's new commit. A delivery that cannot be sent (the receiver is down,
 * or answers 5xx/408/429) is kept in a spool directory and sent again before the next push's, or
 * by `triggler hook flush` (a timer can run it), so a push while the receiver is down is not lost.
 * The pusher sees one line saying what happened (./hook-delivery), and with `--wait` the run's log
 * and outcome (./hook-follow). Settings live beside the hooks, in `<git-dir>/triggler-hook.json`;
 * the token is read at push time from a token file, a variable, or the receiver's config.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { listenerUrl, loadReceiverConfigFile } from '../receiver';
import { cliInvocation } from './cli-invocation';
import { type HookSettings, readSettings, sendPushes, settingsPath } from './hook-delivery';
import { followRun } from './hook-follow';
import { repositorySharing, Spool, type SpooledPush, spoolModes } from './hook-spool';
import { locateReceiver } from './runs-source';
import { positiveInt } from './send-command';
import { table } from './table';

const MARKER = '# Written by `triggler hook install`';
const ZERO = /^0+$/;

/** The repository's spool, shared as the repository is. */
function spoolOf(gitDir: string, settings: HookSettings): Spool {
  return new Spool(settings.spool, spoolModes(repositorySharing(gitDir)));
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
    pushes.push({
      id,
      repository,
      branch,
      ref,
      commit,
      ...(ZERO.test(previous) ? {} : { previousCommit: previous }),
      ...(pusher ? { pusher } : {}),
      pushedAt,
    });
  }
  return pushes;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface InstallOptions {
  gitDir: string;
  url?: string;
  config?: string;
  repository?: string;
  tokenFile?: string;
  tokenEnv?: string;
  tokenName?: string;
  spool?: string;
  timeout: number;
  wait?: boolean;
  waitTimeout: number;
  admin?: string;
  force?: boolean;
}

/** The hook's settings from `hook install`'s options; a `--config` gives the URL and the admin address unless they are given. */
function installSettings(gitDir: string, options: InstallOptions): HookSettings {
  const sources = [options.tokenFile, options.tokenEnv, options.config].filter((source) => source !== undefined).length;
  if (sources !== 1) throw new Error("give one of --config (the receiver's config on this box), --token-file and --token-env");
  const configFile = options.config === undefined ? undefined : path.resolve(options.config);
  const config = configFile === undefined ? undefined : loadReceiverConfigFile(configFile).config;
  const url =
    options.url ??
    (config
      ? listenerUrl(config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host, config.listen.port, Boolean(config.listen.tls))
      : undefined);
  if (url === undefined) throw new Error("give --url (the receiver's base URL), or --config to take it from the receiver's config");
  try {
    new URL(url);
  } catch {
    throw new Error(`--url: ${url} is not an absolute URL`);
  }
  let follow: HookSettings['follow'];
  if (options.wait) {
    const { admin } = locateReceiver({ admin: options.admin }, config);
    if (!admin)
      throw new Error(
        `--wait follows the run through the admin listener, which ${configFile} turns off: give --admin, or leave out --wait`,
      );
    follow = { admin, waitMs: options.waitTimeout * 1000 };
  }
  return {
    url,
    repository: options.repository ?? path.basename(gitDir).replace(/\.git$/, ''),
    ...(options.tokenFile ? { tokenFile: path.resolve(options.tokenFile) } : {}),
    ...(options.tokenEnv ? { tokenEnv: options.tokenEnv } : {}),
    ...(options.tokenName ? { tokenName: options.tokenName } : {}),
    ...(configFile ? { config: configFile } : {}),
    spool: path.resolve(options.spool ?? path.join(gitDir, 'triggler-spool')),
    timeoutMs: options.timeout,
    ...(follow ? { follow } : {}),
  };
}

/** The bare repository of `--git-dir`, and its settings. */
function installed(gitDirOption: string): { gitDir: string; settings: HookSettings } {
  const gitDir = path.resolve(gitDirOption);
  return { gitDir, settings: readSettings(gitDir) };
}

export function hookCommand(): Command {
  const hook = new Command('hook').description(
    'a post-receive hook for a bare repository on this server, and its spool of deliveries not sent yet',
  );

  hook
    .command('install')
    .description('write <git-dir>/hooks/post-receive: one signed delivery per pushed branch that has a trigger')
    .requiredOption('-g, --git-dir <dir>', 'the bare repository (e.g. /srv/git/my-app.git)')
    .option('-u, --url <url>', "the receiver's base URL (e.g. http://127.0.0.1:5000; default with --config: its listen address)")
    .option(
      '-c, --config <file>',
      "the receiver's config on this box: its triggers and token file are the hook's too (the pushing user must be able to read them)",
    )
    .option('-r, --repository <name>', "the repository name the trigger uses (default: the git dir's name without .git)")
    .option('--token-file <file>', 'a token file the pushing user can read (mode 600), holding <repository>/<branch> or --token-name')
    .option('--token-env <name>', 'an environment variable of the hook holding the token, instead of a file')
    .option('--token-name <name>', "the token's name in the file, when branches share one")
    .option('--spool <dir>', 'where deliveries that could not be sent wait (default: <git-dir>/triggler-spool)')
    .option('--timeout <ms>', 'how long one delivery may take', positiveInt, 10_000)
    .option('-w, --wait', 'follow the run each push starts and show its log and outcome to the pusher (through the admin listener)')
    .option('--wait-timeout <seconds>', 'with --wait: how long a push waits for its runs before it says where to look', positiveInt, 600)
    .option('-a, --admin <url>', "with --wait: the admin listener (default: the config's admin address, else http://127.0.0.1:5001)")
    .option('--force', 'replace a post-receive hook that triggler did not write')
    .addHelpText(
      'after',
      '\nExamples:\n  triggler hook install --git-dir /srv/git/my-app.git --config /etc/triggler/receiver.json --wait\n  triggler hook install --git-dir /srv/git/my-app.git --url http://127.0.0.1:5000 --token-file /srv/git/.triggler-tokens.json\n\nA branch with no trigger (none in the config, no token named for it in the token file) sends nothing and keeps nothing.\nA push while the receiver is down is kept and sent on the next push; to send it sooner, run\n  triggler hook flush --git-dir /srv/git/my-app.git      (by hand, or from a timer)',
    )
    .action((options: InstallOptions) => {
      const gitDir = path.resolve(options.gitDir);
      if (!fs.existsSync(path.join(gitDir, 'HEAD')) || !fs.existsSync(path.join(gitDir, 'objects')))
        throw new Error(`--git-dir: ${gitDir} is not a bare git repository (no HEAD and objects/)`);
      const hookFile = path.join(gitDir, 'hooks', 'post-receive');
      if (fs.existsSync(hookFile) && !fs.readFileSync(hookFile, 'utf8').includes(MARKER) && !options.force) {
        throw new Error(
          `${hookFile} exists and was not written by triggler: pass --force to replace it (or call triggler hook post-receive from it)`,
        );
      }
      const settings = installSettings(gitDir, options);
      fs.writeFileSync(settingsPath(gitDir), `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o644 });
      const { program, script } = cliInvocation();
      const triggler =
        script === undefined
          ? shellWord(program, 'the triggler executable')
          : `${shellWord(program, 'node')} ${shellWord(script, 'the triggler CLI')}`;
      fs.mkdirSync(path.dirname(hookFile), { recursive: true });
      fs.writeFileSync(
        hookFile,
        `#!/bin/sh\n${MARKER}: one signed delivery per pushed branch (settings: ${settingsPath(gitDir)}).\nexec ${triggler} hook post-receive --git-dir ${shellWord(gitDir, '--git-dir')}\n`,
        { mode: 0o755 },
      );
      const following = settings.follow
        ? `; each push shows its run (through ${settings.follow.admin}, for at most ${options.waitTimeout} s)`
        : '';
      process.stdout.write(
        `wrote ${hookFile} and ${settingsPath(gitDir)}: pushes of ${settings.repository} now go to ${settings.url}${following}\n`,
      );
    });

  hook
    .command('post-receive')
    .description('what the installed hook runs: reads "<old> <new> <ref>" lines on standard input')
    .requiredOption('-g, --git-dir <dir>', 'the bare repository')
    .action(async (options: { gitDir: string }) => {
      const { gitDir, settings } = installed(options.gitDir);
      const pushes = branchPushes(
        await readStdin(),
        settings.repository,
        new Date().toISOString(),
        process.env.GL_USER ?? process.env.USER,
      );
      const sent = await sendPushes(settings, spoolOf(gitDir, settings), pushes);
      process.stdout.write(`${sent.line}\n`);
      if (!settings.follow) return;
      const { admin, waitMs } = settings.follow;
      const deadline = Date.now() + waitMs;
      for (const { push, run } of sent.runs) {
        await followRun({ admin, run, label: `${push.branch} ${push.commit.slice(0, 12)}` }, { deadline, waitMs }, (text) =>
          process.stdout.write(text),
        );
      }
    });

  hook
    .command('flush')
    .description('send the deliveries a hook kept while the receiver could not take them; exits 1 while any is still kept, naming why')
    .requiredOption('-g, --git-dir <dir>', 'the bare repository')
    .action(async (options: { gitDir: string }) => {
      const { gitDir, settings } = installed(options.gitDir);
      const { line, left } = await sendPushes(settings, spoolOf(gitDir, settings), []);
      process.stdout.write(`${line}\n`);
      if (left > 0) process.exitCode = 1;
    });

  hook
    .command('list')
    .description('the deliveries the spool keeps, oldest first')
    .requiredOption('-g, --git-dir <dir>', 'the bare repository')
    .option('--json', 'print JSON instead of a table')
    .action((options: { gitDir: string; json?: boolean }) => {
      const { gitDir, settings } = installed(options.gitDir);
      const kept = spoolOf(gitDir, settings)
        .waiting()
        .map(({ push }) => push);
      if (options.json) process.stdout.write(`${JSON.stringify(kept, null, 2)}\n`);
      else if (kept.length === 0) process.stdout.write(`nothing kept in ${settings.spool}\n`);
      else
        process.stdout.write(
          `${table(
            ['ID', 'BRANCH', 'COMMIT', 'KEPT SINCE', 'PUSHER'],
            kept.map((push) => [push.id, push.branch, push.commit.slice(0, 12), push.pushedAt, push.pusher ?? '']),
          )}\n`,
        );
    });

  hook
    .command('drop')
    .description('remove kept deliveries from the spool without sending them')
    .requiredOption('-g, --git-dir <dir>', 'the bare repository')
    .argument('[ids...]', 'the ids `hook list` shows')
    .option('--all', 'every kept delivery')
    .action((ids: string[], options: { gitDir: string; all?: boolean }) => {
      const { gitDir, settings } = installed(options.gitDir);
      if (ids.length === 0 && !options.all)
        throw new Error('name the deliveries to drop (their ids, from triggler hook list), or pass --all');
      const spool = spoolOf(gitDir, settings);
      const waiting = spool.waiting();
      const unknown = ids.filter((id) => !waiting.some(({ push }) => push.id === id));
      if (unknown.length > 0) throw new Error(`not kept in ${settings.spool}: ${unknown.join(', ')} (triggler hook list shows what is)`);
      const dropped = waiting.filter(({ push }) => options.all || ids.includes(push.id));
      for (const { file } of dropped) spool.remove(file);
      process.stdout.write(
        `dropped ${dropped.length} kept ${dropped.length === 1 ? 'delivery' : 'deliveries'}: ${dropped.map(({ push }) => `${push.branch} ${push.commit.slice(0, 12)}`).join(', ') || 'none'}\n`,
      );
    });

  return hook;
}
