/**
 * triggler: the command line.
 *   serve    run the receiver in the foreground
 *   send     send one signed test delivery and print the answer
 *   runs     list recent runs: from the receiver's admin listener, else from its state directory
 *   rerun    queue a run's trigger again with the same newest delivery
 *   releases, rollback   a deploy trigger's releases, and switching back to one (./deploy-commands)
 *   tokens   rotate, list and show trigger tokens
 */
import { randomUUID } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { request } from 'undici';
import { buildDeliveryRequest, deliveryUrl, SENDER_SCHEMES, type SenderScheme, tokenNameOf } from '../protocol';
import { loadReceiverConfigFile } from '../receiver/config/config-file';
import type { RunRecord } from '../receiver/runs/run-record';
import { reportStartupError, serve } from '../receiver/main';
import { isUnreachable, locateReceiver, postAdminAction, stateDirHistory } from './runs-source';
import { readTokenFile, tokensOfEntry } from '../receiver/tokens/file-token-source';
import { deployCommands } from './deploy-commands';
import { table } from './table';
import { tokensCommand } from './tokens-command';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number above 0');
  return n;
}

const program = new Command()
  .name('triggler')
  .description('Run a command on your server when a Git branch is pushed.')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the receiver in the foreground (JSON logs on stdout; SIGHUP re-reads the token file)')
  .requiredOption('-c, --config <file>', 'receiver config (JSON)')
  .action(async (options: { config: string }) => {
    await serve(options.config).catch(reportStartupError);
  });

interface SendOptions {
  url?: string;
  config?: string;
  scheme: SenderScheme;
  commit: string;
  tokenEnv: string;
  tokenFile?: string;
  id?: string;
  iterations?: number;
  timeout: number;
}

/** The token for a test delivery: from an environment variable, a token file, or the receiver config. */
async function resolveSendToken(repository: string, branch: string, options: SendOptions): Promise<string> {
  if (options.tokenFile) {
    const tokens = tokensOfEntry((await readTokenFile(options.tokenFile))[`${repository}/${branch}`], 0, Date.now());
    if (tokens[0]) return tokens[0];
    throw new Error(`no token named ${repository}/${branch} in ${options.tokenFile}`);
  }
  if (options.config) {
    const { config } = loadReceiverConfigFile(options.config);
    const trigger = config.triggers.find((t) => t.repository === repository && t.branch === branch);
    if (!trigger) throw new Error(`${options.config} has no trigger for ${repository} ${branch}`);
    if (trigger.token) return trigger.token;
    const fromEnv = trigger.tokenEnv ? process.env[trigger.tokenEnv] : undefined;
    if (fromEnv) return fromEnv;
    if (config.tokens.file) {
      const [token] = tokensOfEntry((await readTokenFile(config.tokens.file))[tokenNameOf(trigger)], 0, Date.now());
      if (token) return token;
    }
    throw new Error(`cannot read the token of ${repository} ${branch} from ${options.config} (SSM tokens: use --token-env)`);
  }
  const token = process.env[options.tokenEnv];
  if (!token) throw new Error(`set ${options.tokenEnv} to the trigger's token, or pass --token-file or --config`);
  return token;
}

program
  .command('send')
  .description('send one signed test delivery for <repository> <branch> and print the answer')
  .argument('<repository>')
  .argument('<branch>')
  .option('-u, --url <url>', 'receiver base URL (default: the config\'s listen address, else http://127.0.0.1:5000)')
  .option('-c, --config <file>', 'take the URL and the token from this receiver config')
  .addOption(new Option('-s, --scheme <scheme>', 'signature scheme').choices(SENDER_SCHEMES).default('standard'))
  .option('--commit <sha>', 'commit to report (standard scheme)', '0000000000000000000000000000000000000000')
  .option('--token-env <name>', 'environment variable holding the token', 'TRIGGLER_TOKEN')
  .option('--token-file <file>', 'token file to read the token from')
  .option('--id <id>', 'webhook-id to send (default: a new one; repeat one to test replay protection)')
  .option('--iterations <n>', 'seed-scheme hash rounds (default 1000, or the config\'s)', positiveInt)
  .option('--timeout <ms>', 'give up after this many milliseconds', positiveInt, 10_000)
  .addHelpText('after', '\nThe token is never taken on the command line (other users could read it in the process list).\n\nExamples:\n  TRIGGLER_TOKEN=... triggler send my-repo main --url http://127.0.0.1:5000\n  triggler send my-repo main --config receiver.json --scheme seed')
  .action(async (repository: string, branch: string, options: SendOptions) => {
    const token = await resolveSendToken(repository, branch, options);
    let url = options.url;
    let iterations = options.iterations;
    if (options.config) {
      const { config } = loadReceiverConfigFile(options.config);
      const host = config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host;
      url ??= `http://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`;
      iterations ??= config.triggers.find((t) => t.repository === repository && t.branch === branch)?.iterations ?? config.signature.iterations;
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
            data: { repository, branch, ref: `refs/heads/${branch}`, commit: options.commit, source: 'cli' },
          });
    const target = deliveryUrl(url, delivery.path);
    const response = await request(target, {
      method: delivery.method,
      headers: delivery.headers,
      ...(delivery.body !== undefined ? { body: delivery.body } : {}),
      headersTimeout: options.timeout,
      bodyTimeout: options.timeout,
    });
    const text = await response.body.text();
    process.stdout.write(`${delivery.method} ${target} -> ${response.statusCode}\n${text}\n`);
    if (response.statusCode < 200 || response.statusCode > 299) process.exitCode = 1;
  });

function runsTable(runs: RunRecord[]): string {
  const rows = runs.map((r) => [
    r.id,
    `${r.repository} ${r.branch}`,
    r.status,
    r.exitCode === undefined || r.exitCode === null ? '' : String(r.exitCode),
    r.commit ? r.commit.slice(0, 12) : '',
    String(r.deliveries),
    r.startedAt ?? r.createdAt,
    r.startedAt && r.finishedAt ? `${((Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000).toFixed(1)}s` : '',
  ]);
  return table(['RUN', 'TRIGGER', 'STATUS', 'EXIT', 'COMMIT', 'DELIVERIES', 'STARTED', 'TOOK'], rows);
}

interface RunsOptions {
  admin?: string;
  config?: string;
  stateDir?: string;
  limit: number;
  json?: boolean;
  log?: string;
}

/** From the admin listener; undefined when it does not answer. */
async function runsFromAdmin(admin: string, options: RunsOptions): Promise<{ runs: RunRecord[] } | { log: string } | undefined> {
  try {
    if (options.log) {
      const response = await request(`${admin}/runs/${encodeURIComponent(options.log)}/log`);
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new Error(`no log for run ${options.log} (${response.statusCode})`);
      }
      return { log: await response.body.text() };
    }
    const response = await request(`${admin}/runs?limit=${options.limit}`);
    if (response.statusCode !== 200) throw new Error(`admin listener answered ${response.statusCode}: ${await response.body.text()}`);
    return (await response.body.json()) as { runs: RunRecord[] };
  } catch (error) {
    if (isUnreachable(error)) return undefined;
    throw error;
  }
}

program
  .command('runs')
  .description('list recent runs: from the receiver\'s admin listener, or from its state directory when the listener does not answer')
  .option('-a, --admin <url>', 'admin listener URL (default: the config\'s admin address, else http://127.0.0.1:5001)')
  .option('-c, --config <file>', 'take the admin address and the state directory from this receiver config')
  .option('-d, --state-dir <dir>', 'read this state directory\'s journal directly, not the admin listener (default when the listener does not answer: the config\'s, else /var/lib/triggler)')
  .option('-n, --limit <n>', 'how many runs', positiveInt, 20)
  .option('--json', 'print JSON instead of a table')
  .option('--log <run-id>', 'print the output of one run instead')
  .addHelpText('after', '\nWhich source answered is said on stderr. The state directory is read without its lock and without writing to it, so it can be read beside a running receiver (as the receiver\'s user or root).')
  .action(async (options: RunsOptions) => {
    const where = locateReceiver(options);
    let answer = options.stateDir || !where.admin ? undefined : await runsFromAdmin(where.admin, options);
    if (answer) {
      process.stderr.write(`from the admin listener ${where.admin}\n`);
    } else {
      process.stderr.write(`from the state directory ${where.stateDir}${options.stateDir ? '' : where.admin ? ` (the admin listener ${where.admin} does not answer)` : ' (the admin listener is off)'}\n`);
      const history = await stateDirHistory(where.stateDir);
      if (options.log) {
        const log = history.run(options.log) ? await history.runLog(options.log) : undefined;
        if (!log) throw new Error(`no log for run ${options.log} in ${where.stateDir}`);
        answer = { log: log.toString('utf8') };
      } else {
        answer = { runs: history.runs(options.limit) };
      }
    }
    if ('log' in answer) {
      process.stdout.write(answer.log);
      return;
    }
    const { runs } = answer;
    process.stdout.write(options.json ? `${JSON.stringify(runs, null, 2)}\n` : runs.length ? `${runsTable(runs)}\n` : 'no runs yet\n');
  });

program
  .command('rerun')
  .description('queue a new run of a run\'s trigger with the same newest delivery (commit, pusher), through the admin listener')
  .argument('<run-id>')
  .option('-a, --admin <url>', 'admin listener URL (default: the config\'s admin address, else http://127.0.0.1:5001)')
  .option('-c, --config <file>', 'take the admin address and the state directory from this receiver config')
  .option('-d, --state-dir <dir>', 'where the admin credential is (default: the config\'s, else /var/lib/triggler)')
  .addHelpText('after', '\nA re-run is a write: it needs the admin credential in <stateDir>/admin-token, which only the receiver\'s user (or root) can read.\n\nExample:\n  sudo -u triggler triggler rerun r_0mj3k2x1c000a1b2c3d4 --config /etc/triggler/receiver.json')
  .action(async (runId: string, options: { admin?: string; config?: string; stateDir?: string }) => {
    const queued = await postAdminAction(locateReceiver(options), `/runs/${encodeURIComponent(runId)}/rerun`);
    process.stdout.write(`queued run ${queued}, a re-run of ${runId}\n`);
  });

program.addCommand(tokensCommand());
for (const command of deployCommands()) program.addCommand(command);

program.parseAsync().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException).code;
  process.stderr.write(`triggler: ${code === 'ECONNREFUSED' ? `cannot connect (${message})` : message}\n`);
  process.exitCode = 1;
});
