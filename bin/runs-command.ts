/**
 * `triggler runs`: recent runs as a table (the release each deploy run made, a rollback marked
 * with the release it returned to, the commit deployed), one run in full (`runs <run-id>`), or a
 * run's output (`--log`). From the receiver's admin listener, else from its state directory.
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { request } from './http-request';
import { triggerLabel } from '../protocol';
import { commitWords, releaseWords, runCommit, type RunRecord, runTime, timeAgo } from '../receiver';
import { DEFAULT_CONFIG, isUnreachable, locateReceiver, type ReceiverLocation, stateDirHistory } from './runs-source';
import { positiveInt } from './send-command';
import { table } from './table';

/** How much of a commit's subject the table shows; `runs <run-id>` shows it all. */
const SUBJECT_COLUMN = 50;

const took = (run: RunRecord): string =>
  run.startedAt && run.finishedAt ? `${((Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000).toFixed(1)}s` : '';

const exitText = (run: RunRecord): string => (run.exitCode === undefined || run.exitCode === null ? '' : String(run.exitCode));

/** The RELEASE and SUBJECT columns appear when a run listed has one, as the runs page's Release column does. */
function runsTable(runs: RunRecord[]): string {
  const withRelease = runs.some((run) => releaseWords(run) !== undefined);
  const withSubject = runs.some((run) => commitWords(run) !== undefined);
  const rows = runs.map((r) => {
    const words = commitWords(r) ?? '';
    return [
      r.id,
      triggerLabel(r),
      r.status,
      exitText(r),
      (runCommit(r) ?? '').slice(0, 12),
      ...(withRelease ? [releaseWords(r) ?? ''] : []),
      String(r.deliveries),
      runTime(r),
      took(r),
      ...(withSubject ? [words.length > SUBJECT_COLUMN ? `${words.slice(0, SUBJECT_COLUMN - 1)}…` : words] : []),
    ];
  });
  const header = [
    'RUN',
    'TRIGGER',
    'STATUS',
    'EXIT',
    'COMMIT',
    ...(withRelease ? ['RELEASE'] : []),
    'DELIVERIES',
    'STARTED',
    'TOOK',
    ...(withSubject ? ['SUBJECT'] : []),
  ];
  return table(header, rows);
}

/** `runs <run-id>`: the run's record as the run page shows it, a field a line. */
export function runDetails(run: RunRecord, now = Date.now()): string {
  const when = (iso: string | undefined): string => (iso ? `${iso} (${timeAgo(iso, now)})` : '');
  const commit = runCommit(run);
  const fields: [string, string | undefined][] = [
    ['run', run.id],
    ['trigger', triggerLabel(run)],
    ['status', `${run.status}${exitText(run) ? ` (exit ${exitText(run)})` : ''}${run.signal ? ` ${run.signal}` : ''}`],
    ['commit', commit ?? (run.action ? 'none' : 'not given by the sender')],
    ['subject', run.deploy?.subject],
    ['author', run.deploy?.author],
    ['release', releaseWords(run)],
    ['release before', run.deploy?.previousRelease],
    ['scheme', run.scheme],
    ['created', when(run.createdAt)],
    ['started', when(run.startedAt)],
    ['finished', when(run.finishedAt)],
    ['took', took(run)],
    ['deliveries', `${run.deliveries}${run.deliveryIds.length ? ` (newest: ${run.deliveryIds.at(-1)})` : ''}`],
    ['re-run of', run.rerunOf],
    ['error', run.error],
  ];
  const shown = fields.filter((field): field is [string, string] => field[1] !== undefined && field[1] !== '');
  const width = Math.max(...shown.map(([name]) => name.length));
  return shown.map(([name, value]) => `${`${name}:`.padEnd(width + 2)}${value}`).join('\n');
}

interface RunsOptions {
  admin?: string;
  config?: string;
  stateDir?: string;
  limit: number;
  json?: boolean;
  log?: string;
}

type RunsAnswer = { runs: RunRecord[] } | { run: RunRecord } | { log: string };

/** What is asked of the admin listener, as a path: one run's log, one run, or recent runs. */
function adminPath(runId: string | undefined, options: RunsOptions): string {
  if (options.log) return `/runs/${encodeURIComponent(options.log)}/log`;
  return runId ? `/runs/${encodeURIComponent(runId)}` : `/runs?limit=${options.limit}`;
}

/** From the admin listener; undefined when it does not answer. */
async function runsFromAdmin(admin: string, runId: string | undefined, options: RunsOptions): Promise<RunsAnswer | undefined> {
  try {
    const response = await request(`${admin}${adminPath(runId, options)}`, { headers: { accept: 'application/json' } });
    if (response.statusCode !== 200) {
      const text = await response.body.text();
      if (options.log) throw new Error(`no log for run ${options.log} (${response.statusCode})`);
      if (runId && response.statusCode === 404) throw new Error(`no run ${runId} at the admin listener ${admin}`);
      throw new Error(`admin listener answered ${response.statusCode}: ${text}`);
    }
    if (options.log) return { log: await response.body.text() };
    return (await response.body.json()) as RunsAnswer;
  } catch (error) {
    if (isUnreachable(error)) return undefined;
    throw error;
  }
}

/** From the journal in the state directory, read without its lock. */
async function runsFromStateDir(stateDir: string, runId: string | undefined, options: RunsOptions): Promise<RunsAnswer> {
  const history = await stateDirHistory(stateDir);
  if (options.log) {
    const log = history.run(options.log) ? await history.runLog(options.log) : undefined;
    if (!log) throw new Error(`no log for run ${options.log} in ${stateDir}`);
    return { log: log.toString('utf8') };
  }
  if (runId) {
    const run = history.run(runId);
    if (!run) throw new Error(`no run ${runId} in ${stateDir}`);
    return { run };
  }
  return { runs: history.runs(options.limit) };
}

/** Why `runs` has nothing to read: no receiver found at all, or a state directory that is not there. */
function noStateDir(where: ReceiverLocation, options: RunsOptions): string {
  const unanswered = where.admin ? `the admin listener ${where.admin} does not answer` : 'the admin listener is off';
  if (!where.config && !options.stateDir) {
    return `found no receiver: no --config and no ./${DEFAULT_CONFIG} here, ${unanswered}, and ${where.stateDir} does not exist; pass --config <receiver config> (or --state-dir <dir>)`;
  }
  return `the state directory ${where.stateDir}${where.config && !options.stateDir ? ` (stateDir of ${where.config})` : ''} does not exist, and ${unanswered}: no receiver has run with it yet`;
}

function printAnswer(answer: RunsAnswer, options: RunsOptions): void {
  if ('log' in answer) {
    process.stdout.write(answer.log);
  } else if ('run' in answer) {
    process.stdout.write(options.json ? `${JSON.stringify(answer.run, null, 2)}\n` : `${runDetails(answer.run)}\n`);
  } else {
    const { runs } = answer;
    process.stdout.write(options.json ? `${JSON.stringify(runs, null, 2)}\n` : runs.length ? `${runsTable(runs)}\n` : 'no runs yet\n');
  }
}

export function runsCommand(): Command {
  return new Command('runs')
    .description(
      "list recent runs, or show one run: from the receiver's admin listener, or from its state directory when the listener does not answer",
    )
    .argument('[run-id]', 'show this run in full (its commit, subject and author, release, times) instead of the list')
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
    .action(async (runId: string | undefined, options: RunsOptions) => {
      const where = locateReceiver(options);
      const answer = options.stateDir || !where.admin ? undefined : await runsFromAdmin(where.admin, runId, options);
      if (answer) {
        process.stderr.write(`from the admin listener ${where.admin}\n`);
        return printAnswer(answer, options);
      }
      if (!fs.existsSync(where.stateDir)) throw new Error(noStateDir(where, options));
      process.stderr.write(
        `from the state directory ${where.stateDir}${options.stateDir ? '' : where.admin ? ` (the admin listener ${where.admin} does not answer)` : ' (the admin listener is off)'}\n`,
      );
      printAnswer(await runsFromStateDir(where.stateDir, runId, options), options);
    });
}
