/**
 * triggler: the command line.
 *   init      write a starter receiver config and token file here
 *   check     validate a config, its token file and its paths without starting anything
 *   serve     run the receiver in the foreground
 *   send      send one signed delivery (--wait: and follow its run to the end)
 *   runs      list recent runs: from the receiver's admin listener, else from its state directory
 *   rerun     queue a run's trigger again with the same newest delivery
 *   fleet-step  one step of a fleet's rollout on this host (prepare, switch, rollback, converge)
 *   fleet     a fleet's rollouts on AWS: status, rollouts, show, promote, rollback, rerun (./fleet-command)
 *   releases, rollback   a deploy trigger's releases, and switching back to one (./deploy-commands)
 *   hook      a post-receive hook for a bare repository on this server (./hook-command)
 *   service-unit   a hardened systemd unit for this install
 *   tokens    rotate, list and show trigger tokens
 */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { request } from 'undici';
import { triggerLabel } from '../protocol';
import { reportStartupError, type RunRecord, serve } from '../receiver';
import { watchConfig } from './config-watch';
import { checkCommand, initCommand } from './init-command';
import { deployCommands } from './deploy-commands';
import { fleetCommand } from './fleet-command';
import { fleetStepCommand } from './fleet-step';
import { hookCommand } from './hook-command';
import { DEFAULT_CONFIG, isUnreachable, locateReceiver, postAdminAction, type ReceiverLocation, stateDirHistory } from './runs-source';
import { positiveInt, sendCommand } from './send-command';
import { serviceUnitCommand } from './service-unit';
import { table } from './table';
import { tokensCommand } from './tokens-command';
import { VERSION } from './version';

const program = new Command()
  .name('triggler')
  .description('Run a command on your server when a Git branch is pushed.')
  .version(VERSION, '-V, --version', 'print the version')
  .showHelpAfterError();

program.addCommand(initCommand());
program.addCommand(checkCommand());

program
  .command('serve')
  .description('run the receiver in the foreground (SIGHUP reloads the config and the token file)')
  .option('-c, --config <file>', 'receiver config (JSON, comments allowed)', DEFAULT_CONFIG)
  .addOption(
    new Option('--log-format <format>', 'json lines, or pretty lines for people (auto: pretty on a terminal, json otherwise)')
      .choices(['auto', 'json', 'pretty'])
      .default('auto'),
  )
  .option(
    '-w, --watch',
    'reload when the config file (or its token file) changes, as SIGHUP does: a config that is not valid is refused whole and the running one stays',
  )
  .action(async (options: { config: string; logFormat: 'auto' | 'json' | 'pretty'; watch?: boolean }) => {
    process.env.TRIGGLER_LOG_FORMAT = options.logFormat === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : options.logFormat;
    const receiver = await serve(options.config).catch((error: unknown) => reportStartupError(error, options.config));
    // Only the process that owns the receiver reloads it (a delivery worker of a clustered one returns none).
    if (options.watch && receiver)
      watchConfig(options.config, (files) => process.stderr.write(`watching ${files.join(' and ')}: a change reloads the receiver\n`));
  });

program.addCommand(sendCommand());

function runsTable(runs: RunRecord[]): string {
  const rows = runs.map((r) => [
    r.id,
    triggerLabel(r),
    r.status,
    r.exitCode === undefined || r.exitCode === null ? '' : String(r.exitCode),
    // What was deployed (a rollback's, a seed push's tip), else what the push named; no all-zero "no commit".
    (r.deploy?.commit || (/^0+$/.test(r.commit) ? '' : r.commit)).slice(0, 12),
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

/** Why `runs` has nothing to read: no receiver found at all, or a state directory that is not there. */
function noStateDir(where: ReceiverLocation, options: RunsOptions): string {
  const unanswered = where.admin ? `the admin listener ${where.admin} does not answer` : 'the admin listener is off';
  if (!where.config && !options.stateDir) {
    return `found no receiver: no --config and no ./${DEFAULT_CONFIG} here, ${unanswered}, and ${where.stateDir} does not exist; pass --config <receiver config> (or --state-dir <dir>)`;
  }
  return `the state directory ${where.stateDir}${where.config && !options.stateDir ? ` (stateDir of ${where.config})` : ''} does not exist, and ${unanswered}: no receiver has run with it yet`;
}

program
  .command('runs')
  .description("list recent runs: from the receiver's admin listener, or from its state directory when the listener does not answer")
  .option('-a, --admin <url>', "admin listener URL (default: the config's admin address, else http://127.0.0.1:5001)")
  .option(
    '-c, --config <file>',
    'take the admin address and the state directory from this receiver config (default: ./receiver.json when it is here)',
  )
  .option(
    '-d, --state-dir <dir>',
    "read this state directory's journal directly, not the admin listener (default when the listener does not answer: the config's, else /var/lib/triggler)",
  )
  .option('-n, --limit <n>', 'how many runs', positiveInt, 20)
  .option('--json', 'print JSON instead of a table')
  .option('--log <run-id>', 'print the output of one run instead')
  .addHelpText(
    'after',
    "\nWhich source answered is said on stderr. The state directory is read without its lock and without writing to it, so it can be read beside a running receiver (as the receiver's user or root).",
  )
  .action(async (options: RunsOptions) => {
    const where = locateReceiver(options);
    let answer = options.stateDir || !where.admin ? undefined : await runsFromAdmin(where.admin, options);
    if (answer) {
      process.stderr.write(`from the admin listener ${where.admin}\n`);
    } else {
      if (!fs.existsSync(where.stateDir)) throw new Error(noStateDir(where, options));
      process.stderr.write(
        `from the state directory ${where.stateDir}${options.stateDir ? '' : where.admin ? ` (the admin listener ${where.admin} does not answer)` : ' (the admin listener is off)'}\n`,
      );
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
  .description("queue a new run of a run's trigger with the same newest delivery (commit, pusher), through the admin listener")
  .argument('<run-id>')
  .option('-a, --admin <url>', "admin listener URL (default: the config's admin address, else http://127.0.0.1:5001)")
  .option(
    '-c, --config <file>',
    'take the admin address and the state directory from this receiver config (default: ./receiver.json when it is here)',
  )
  .option('-d, --state-dir <dir>', "where the admin credential is (default: the config's, else /var/lib/triggler)")
  .option('--rebuild', 'for a deploy trigger: build a new release of the commit even when it has a good one (default: switch to that one)')
  .addHelpText(
    'after',
    "\nA re-run is a write: it needs the admin credential in <stateDir>/admin-token, which only the receiver's user (or root) can read.\n\nExample:\n  sudo -u triggler triggler rerun r_0mj3k2x1c000a1b2c3d4 --config /etc/triggler/receiver.json",
  )
  .action(async (runId: string, options: { admin?: string; config?: string; stateDir?: string; rebuild?: boolean }) => {
    const queued = await postAdminAction(
      locateReceiver(options),
      'a re-run',
      `/runs/${encodeURIComponent(runId)}/rerun`,
      options.rebuild ? { rebuild: true } : undefined,
    );
    process.stdout.write(`queued run ${queued}, a re-run of ${runId}\n`);
  });

program.addCommand(tokensCommand());
program.addCommand(hookCommand());
program.addCommand(serviceUnitCommand());
program.addCommand(fleetStepCommand());
program.addCommand(fleetCommand());
for (const command of deployCommands()) program.addCommand(command);

program.parseAsync().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException).code;
  process.stderr.write(`triggler: ${code === 'ECONNREFUSED' ? `cannot connect (${message})` : message}\n`);
  process.exitCode = 1;
});
