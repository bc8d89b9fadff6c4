/**
 * `triggler send`: one signed delivery for a repository and branch, in either scheme. With
 * `--wait` it follows the run that carries it to its end and exits 0 only if that run succeeded,
 * so a CI pipeline can deploy and know.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { request } from './http-request';
import { buildDeliveryRequest, type PushData, SENDER_SCHEMES, type SenderScheme, tokenNameOf } from '../protocol';
import {
  isFinal,
  listenerUrl,
  loadReceiverConfigFile,
  readTokenFile,
  type ReceiverConfig,
  type RunRecord,
  tokensOfEntry,
  type TriggerConfig,
} from '../receiver';
import { configTriggerToken } from './config-token';
import { postDelivery, runOf } from './deliver';
import { configOrDefault, isUnreachable, locateReceiver, stateDirHistory, waitForRun } from './runs-source';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number above 0');
  return n;
}

interface SendOptions {
  url?: string;
  config?: string;
  admin?: string;
  scheme: SenderScheme;
  commit?: string;
  tokenEnv: string;
  tokenFile?: string;
  tokenName?: string;
  id?: string;
  iterations?: number;
  timeout: number;
  wait?: boolean;
  tailLines: number;
}

const COMMIT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

/** A commit id as given, or a ref (`main`, `HEAD~1`, a tag) resolved in the repository of the current directory. */
export function resolveCommit(commit: string, cwd = process.cwd()): string {
  if (COMMIT_ID.test(commit)) return commit.toLowerCase();
  try {
    return execFileSync('git', ['rev-parse', '--verify', '--end-of-options', `${commit}^{commit}`], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch (error) {
    const reason = ((error as { stderr?: string }).stderr ?? '').trim().split('\n').at(-1) || (error as Error).message;
    throw new Error(`--commit: "${commit}" is not a commit id, and git cannot resolve it here (${cwd}): ${reason}`, { cause: error });
  }
}

/**
 * The commit a delivery names: --commit resolved; without it, HEAD of the git repository around the
 * current directory; outside one, none (the receiver then runs the branch as it stands, as for a
 * seed delivery). Says on stderr which it took.
 */
function commitToSend(given: string | undefined): string | undefined {
  if (given !== undefined) return resolveCommit(given);
  try {
    const head = execFileSync('git', ['rev-parse', '--verify', 'HEAD^{commit}'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    process.stderr.write(`commit ${head}: HEAD of the repository here (--commit names another)\n`);
    return head;
  } catch {
    process.stderr.write('no --commit and no git repository here: the delivery names no commit\n');
    return undefined;
  }
}

/** The --config file as read once for the whole command, and its trigger for the repository and branch. */
interface SendConfig {
  config: ReceiverConfig | undefined;
  trigger: TriggerConfig | undefined;
}

/** The token for a delivery: from an environment variable, a token file, or the receiver config. */
async function resolveSendToken(
  repository: string,
  branch: string,
  options: SendOptions,
  { config, trigger }: SendConfig,
): Promise<string> {
  if (options.tokenFile) {
    // A shared token's name: --token-name, else the one the --config trigger names.
    const name = tokenNameOf({ repository, branch, tokenName: options.tokenName ?? trigger?.tokenName });
    const tokens = tokensOfEntry((await readTokenFile(options.tokenFile))[name], 0, Date.now());
    if (tokens[0]) return tokens[0];
    throw new Error(
      `no token named ${name} in ${options.tokenFile}${options.tokenName === undefined && trigger?.tokenName === undefined ? ' (a shared token: pass --token-name)' : ''}`,
    );
  }
  if (config) {
    if (!trigger) throw new Error(`${options.config} has no trigger for ${repository} ${branch}`);
    return configTriggerToken(config, trigger, options.config ?? '');
  }
  const token = process.env[options.tokenEnv];
  if (!token) throw new Error(`set ${options.tokenEnv} to the trigger's token, or pass --token-file or --config`);
  return token;
}

/** The run's end: through the admin listener, else by reading the state directory. */
async function waitForEnd(
  runId: string,
  options: SendOptions,
  config: ReceiverConfig | undefined,
): Promise<{ run: RunRecord; log: string }> {
  const where = locateReceiver(options, config);
  if (where.admin) {
    try {
      const run = await waitForRun(where.admin, runId);
      const response = await request(`${where.admin}/runs/${encodeURIComponent(runId)}/log`);
      return { run, log: response.statusCode === 200 ? await response.body.text() : (await response.body.dump(), '') };
    } catch (error) {
      if (!isUnreachable(error)) throw error;
    }
  }
  process.stderr.write(`waiting by reading the state directory ${where.stateDir}\n`);
  for (;;) {
    const history = await stateDirHistory(where.stateDir);
    const run = history.run(runId);
    if (run && isFinal(run.status)) return { run, log: ((await history.runLog(runId)) ?? Buffer.alloc(0)).toString('utf8') };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export function sendCommand(): Command {
  return new Command('send')
    .description('send one signed delivery for <repository> <branch> and print the answer (--wait: and follow its run to the end)')
    .argument('<repository>')
    .argument('<branch>')
    .option('-u, --url <url>', "receiver base URL (default: the config's listen address, else http://127.0.0.1:5000)")
    .option(
      '-c, --config <file>',
      'take the URL, the token and (with --wait) the admin address from this receiver config (default without --url and --token-file: ./receiver.json when it is here)',
    )
    .addOption(new Option('-s, --scheme <scheme>', 'signature scheme').choices(SENDER_SCHEMES).default('standard'))
    .option(
      '--commit <commit>',
      "the pushed commit: an id, or a ref (main, HEAD, a tag) resolved in the current directory's repository (standard scheme; default: HEAD there, none outside a repository)",
    )
    .option('--token-env <name>', 'environment variable holding the token', 'TRIGGLER_TOKEN')
    .option('--token-file <file>', 'token file to read the token from (the entry <repository>/<branch>, or --token-name)')
    .option(
      '--token-name <name>',
      "with --token-file: a shared token's name (default: the --config trigger's tokenName, else <repository>/<branch>)",
    )
    .option('--id <id>', 'webhook-id to send (default: a new one; repeat one to test replay protection)')
    .option('--iterations <n>', "seed-scheme hash rounds (default 1000, or the config's)", positiveInt)
    .option('--timeout <ms>', 'give up on the delivery after this many milliseconds', positiveInt, 10_000)
    .option(
      '-w, --wait',
      'wait for the run that carries the delivery; exit 0 only if it succeeded, printing its status and the end of its log',
    )
    .option('-a, --admin <url>', "with --wait: the admin listener to ask (default: the config's admin address, else http://127.0.0.1:5001)")
    .option('--tail-lines <n>', "with --wait: how many of the run's last log lines to print", positiveInt, 20)
    .addHelpText(
      'after',
      '\nThe token is never taken on the command line (other users could read it in the process list).\n\nExamples:\n  TRIGGLER_TOKEN=... triggler send my-repo main --url http://127.0.0.1:5000\n  triggler send my-repo main --config receiver.json --scheme seed\n  triggler send my-app main --config receiver.json --commit HEAD --wait      (from a CI job, in the checkout)',
    )
    .action(async (repository: string, branch: string, options: SendOptions) => {
      if (options.url === undefined && options.tokenFile === undefined) options.config = configOrDefault(options.config);
      const config = options.config ? loadReceiverConfigFile(options.config).config : undefined;
      const trigger = config?.triggers.find((t) => t.repository === repository && t.branch === branch);
      const token = await resolveSendToken(repository, branch, options, { config, trigger });
      const commit = options.scheme === 'standard' ? commitToSend(options.commit) : undefined;
      let url = options.url;
      let iterations = options.iterations;
      if (config) {
        const host = config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host;
        url ??= listenerUrl(host, config.listen.port, Boolean(config.listen.tls));
        iterations ??= trigger?.iterations ?? config.signature.iterations;
      }
      url ??= 'http://127.0.0.1:5000';
      const timestamp = Math.floor(Date.now() / 1000);
      const delivery =
        options.scheme === 'seed'
          ? buildDeliveryRequest({ scheme: 'seed', token, repository, branch, timestamp, ...(iterations ? { iterations } : {}) })
          : buildDeliveryRequest({
              scheme: 'standard',
              token,
              id: options.id ?? `msg_${randomUUID()}`,
              timestamp,
              // A push without a commit is one the wire allows (the receiver runs the branch as it stands).
              data: { repository, branch, ref: `refs/heads/${branch}`, ...(commit ? { commit } : {}), source: 'cli' } as PushData,
            });
      const answer = await postDelivery(url, delivery, options.timeout);
      process.stdout.write(`${delivery.method} ${answer.target} -> ${answer.status}\n${JSON.stringify(answer.body)}\n`);
      if (answer.status < 200 || answer.status > 299) {
        process.exitCode = 1;
        return;
      }
      if (!options.wait) return;
      const runId = runOf(answer);
      if (!runId) throw new Error('the receiver named no run to wait for');
      const { run, log } = await waitForEnd(runId, options, config);
      const tail = log
        .split('\n')
        .slice(-options.tailLines - 1)
        .join('\n');
      process.stdout.write(
        `run ${run.id} ${run.status}${run.exitCode !== undefined && run.exitCode !== null ? ` (exit ${run.exitCode})` : ''}${run.error ? `: ${run.error}` : ''}\n${tail}${tail.endsWith('\n') || tail === '' ? '' : '\n'}`,
      );
      if (run.status !== 'succeeded') process.exitCode = 1;
    });
}
