/**
 * Fleet rollout figures, printed as a markdown section: the rollout state machine as
 * `cdk synth` writes it, run by the local engine the fleet tests use (aws-local-stepfunctions, a
 * local Run Command, dynalite) against three real receivers on 127.0.0.1 whose trigger's prepare
 * `command` is `sleep 1`. Each host step runs the CLI as `npm pack` ships it (the bundle, built
 * first), not the clone's TypeScript through tsx, whose start-up alone takes seconds.
 *
 * Two configurations, one canary each, no bake, no alarms, maxFailedHosts 0:
 *   batch size 1   prepare on all three, the canary, then two batches of one host
 *   all at once    batchSize 3: prepare on all three, the canary, then the two hosts left in one batch
 * each under two kinds of waits:
 *   synthesized    every Wait as long as the definition says: what Step Functions would wait
 *   shortened      every Wait of the definition SHORT_WAIT_MS: the local machinery's own cost
 * Every round runs the four once, the order reversed every other round; medians over the rounds.
 *
 * A rollout's phases are its Run Commands: the prepare, the canary's switch, each batch's switch.
 * Its own work, two ways, from what the hosts report:
 *   receivers' runs   per phase the longest of its hosts' run records (startedAt → finishedAt, the
 *                     receiver's journal), summed over the phases
 *   host steps        per phase the longest of its invocations as Run Command sees them (the
 *                     `triggler fleet-step` process: start-up, the admin call, the run, its wait for
 *                     the run's end), summed over the phases
 * and the overhead beyond it: (time from StartExecution to the end of the last host's switch −
 * own work) ÷ own work, where that end is the switch run's `finishedAt` (receivers' runs) or the
 * last switch invocation's end (host steps). Target ≤ 20 %.
 *
 *   npm run bench -- fleet
 *   BENCH_ROUNDS (3)   rounds
 */
import * as fs from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForRun } from '../bin/runs-source';
import { POLL_SECONDS, STEP_POLL_SCHEDULE, type RolloutSettings } from '../lib/constructs/fleet-rollout';
import { rolloutInput, type RolloutSummary } from '../protocol';
import { buildCli } from '../scripts/build-cli';
import { FLEET_BRANCH, FLEET_REPOSITORY, FleetHosts } from '../test/support/fleet/fleet-hosts';
import { LocalRolloutEngine } from '../test/support/fleet/local-engine';
import { LOCAL_FLEET_PROPS } from '../test/support/fleet/synthesized-rollout';
import { median, runBench } from './support';

// The local engine's DynamoDB client is AWS SDK v3 on Node.js 20: its notice about later SDK releases is not a figure.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const HOSTS = 3;
const COMMAND = 'sleep 1';
const SHORT_WAIT_MS = 100;
const TARGET = 0.2;

const CONFIGURATIONS = {
  'batch size 1': { canary: 1, batchSize: 1, maxFailedHosts: 0, bakeSeconds: 0, alarms: [], hold: false },
  'all at once': { canary: 1, batchSize: HOSTS, maxFailedHosts: 0, bakeSeconds: 0, alarms: [], hold: false },
} satisfies Record<string, RolloutSettings>;
type Configuration = keyof typeof CONFIGURATIONS;
const WAITS = ['synthesized', 'shortened'] as const;
type Waits = (typeof WAITS)[number];

/** One Run Command of the rollout: its step, and the longest of its hosts' work. */
interface Phase {
  step: string;
  hosts: number;
  /** Seconds: the longest invocation (the host step's process, as Run Command sees it). */
  invocation: number;
  /** Seconds: the longest run on a receiver (its journal's startedAt → finishedAt). */
  run: number;
}

interface RolloutFigures {
  /** Seconds from StartExecution to the last host's switch run finished: all hosts live. */
  live: number;
  /** Seconds from StartExecution to the last switch invocation's end. */
  stepsDone: number;
  /** Seconds from StartExecution to the execution's end. */
  ended: number;
  phases: Phase[];
  /** States entered: what Step Functions bills as transitions. */
  transitions: number;
  /** ListCommands calls: the looks at a running command. */
  looks: number;
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
const ownWork = (figures: RolloutFigures, basis: 'run' | 'invocation') => sum(figures.phases.map((phase) => phase[basis]));
const overheadOfRuns = (figures: RolloutFigures) => figures.live / ownWork(figures, 'run') - 1;
const overheadOfSteps = (figures: RolloutFigures) => figures.stepsDone / ownWork(figures, 'invocation') - 1;

/**
 * When each Run Command was sent and each of its invocations ended, as the local Run Command
 * reports them (synchronously: a command's invocations start as it is sent, MaxConcurrency 100 %).
 */
class CommandTimes {
  private sent = new Map<string, { step: string; at: number; ended: Map<string, number> }>();

  /** Forgets the commands heard so far: the next rollout's commands only. */
  restart(): ReadonlyMap<string, { step: string; at: number; ended: Map<string, number> }> {
    this.sent = new Map();
    return this.sent;
  }

  listen(engine: LocalRolloutEngine): void {
    engine.onRunCommand((event) => {
      if (event.type === 'sent') this.sent.set(event.commandId, { step: event.step, at: Date.now(), ended: new Map() });
      if (event.type === 'invocation') this.sent.get(event.commandId)?.ended.set(event.instanceId, Date.now());
    });
  }
}

/** One rollout of a new commit, timed from what the engine, Run Command and the receivers report. */
async function rollout(engine: LocalRolloutEngine, hosts: FleetHosts, times: CommandTimes, delivery: string): Promise<RolloutFigures> {
  const commit = hosts.repo.commit({ 'release.txt': `${delivery}\n` });
  const sent = times.restart();
  const started = Date.now();
  const execution = engine.start(rolloutInput(FLEET_REPOSITORY, FLEET_BRANCH, commit, delivery));
  const ended = await execution.done;
  const endedAt = Date.now();
  const summary = ended.summary as RolloutSummary | undefined;
  if (summary?.outcome !== 'succeeded')
    throw new Error(`rollout ${delivery} ended ${summary?.outcome ?? ended.status}: ${summary?.reason ?? ended.error}`);
  const currents = await Promise.all(hosts.hosts.map((host) => hosts.current(host.instanceId)));
  if (currents.some((current) => current !== commit)) throw new Error(`rollout ${delivery} left currents ${currents.join(', ')}`);
  // Each host's run of each step, from its receiver's journal.
  const runs = new Map<string, { startedAt: number; finishedAt: number }>();
  for (const host of summary.hosts)
    for (const step of ['prepare', 'switch'] as const) {
      const runId = host[step]?.result?.runId;
      if (!runId) continue;
      const run = await waitForRun(hosts.host(host.instanceId).adminUrl, runId);
      runs.set(`${step} ${host.instanceId}`, { startedAt: Date.parse(run.startedAt!), finishedAt: Date.parse(run.finishedAt!) });
    }
  const phases = [...sent.values()].map(({ step, at, ended: hostsEnded }): Phase => {
    const ids = [...hostsEnded.keys()];
    const hostRuns = ids.map((id) => runs.get(`${step} ${id}`)!);
    return {
      step,
      hosts: ids.length,
      invocation: Math.max(...ids.map((id) => hostsEnded.get(id)! - at)) / 1000,
      run: Math.max(...hostRuns.map((run) => run.finishedAt - run.startedAt)) / 1000,
    };
  });
  const switches = [...sent.values()].filter((command) => command.step === 'switch');
  const switchRuns = [...runs].filter(([key]) => key.startsWith('switch ')).map(([, run]) => run.finishedAt);
  return {
    live: (Math.max(...switchRuns) - started) / 1000,
    stepsDone: (Math.max(...switches.flatMap((command) => [...command.ended.values()])) - started) / 1000,
    ended: (endedAt - started) / 1000,
    phases,
    transitions: execution.states.length,
    looks: execution.states.filter((state) => state.startsWith('Look at the ')).length,
  };
}

const seconds = (value: number) => `${value.toFixed(2)} s`;
const percent = (value: number) => `${(value * 100).toFixed(0)} %`;
const range = (values: number[], format: (value: number) => string) =>
  values.length > 1 ? ` (${format(Math.min(...values))}–${format(Math.max(...values))})` : '';
const cell = (values: number[], format: (value: number) => string) => `${format(median(values))}${range(values, format)}`;
const met = (values: number[]) => (median(values) <= TARGET ? 'met' : '**not met**');

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(join(tmpdir(), 'triggler-fleet-bench-'));
  const hosts = new FleetHosts(LOCAL_FLEET_PROPS.fleetTag, COMMAND);
  const engines: LocalRolloutEngine[] = [];
  const times = new CommandTimes();
  try {
    const hostCli = await buildCli(join(dir, 'dist'));
    await hosts.add(HOSTS);
    const engine = new Map<string, LocalRolloutEngine>();
    for (const waits of WAITS)
      for (const [name, rollout] of Object.entries(CONFIGURATIONS)) {
        const started = await LocalRolloutEngine.start({
          hosts,
          rollout,
          hostCli,
          ...(waits === 'synthesized' ? { synthesizedWaits: true } : { pollMs: SHORT_WAIT_MS }),
        });
        times.listen(started);
        engines.push(started);
        engine.set(`${waits} ${name}`, started);
      }
    // The first rollout clones each host's mirror: not measured.
    await rollout(engine.get('shortened all at once')!, hosts, times, 'warm-up');
    const runsOf = new Map<string, RolloutFigures[]>();
    const order = WAITS.flatMap((waits) => (Object.keys(CONFIGURATIONS) as Configuration[]).map((name) => `${waits} ${name}`));
    for (let round = 0; round < ROUNDS; round++)
      for (const key of round % 2 === 0 ? order : [...order].reverse()) {
        const figures = await rollout(engine.get(key)!, hosts, times, `round-${round}-${key.replace(/ /g, '-')}`);
        runsOf.set(key, [...(runsOf.get(key) ?? []), figures]);
      }
    process.stdout.write(report(runsOf));
  } finally {
    for (const started of engines) await started.dispose();
    await hosts.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function report(runsOf: Map<string, RolloutFigures[]>): string {
  const of = (waits: Waits, name: Configuration) => runsOf.get(`${waits} ${name}`)!;
  const both = (waits: Waits, figure: (runs: RolloutFigures[]) => string) =>
    `${figure(of(waits, 'batch size 1'))} | ${figure(of(waits, 'all at once'))}`;
  // Ratios within a round: the batch-size-1 rollout ÷ the all-at-once rollout of the same round.
  const ratio = (waits: Waits) => {
    const [one, all] = [of(waits, 'batch size 1'), of(waits, 'all at once')];
    return one.map((run, i) => run.live / all[i]!.live);
  };
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node.js ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  const lines = [
    '',
    '## Fleet rollout',
    '',
    `${machine}. \`npm run bench -- fleet\` (BENCH_ROUNDS=${ROUNDS}). The synthesized rollout state machine in the local engine (aws-local-stepfunctions, a local Run Command running the bundled \`triggler fleet-step\`, dynalite) against ${HOSTS} real receivers on 127.0.0.1 whose prepare runs \`${COMMAND}\`. One canary, no bake, no alarms; *batch size 1*: prepare, canary, two batches of one; *all at once* (batchSize ${HOSTS}): prepare, canary, the two hosts left in one batch. *Synthesized waits*: every Wait as long as the definition says, as on AWS (a look at a running command after ${STEP_POLL_SCHEDULE.join(', ')} s, then every ${POLL_SECONDS} s); *shortened*: every Wait ${SHORT_WAIT_MS} ms (the local machinery's own cost). Medians of ${ROUNDS} rounds (range), each round running the four once, alternating; ratios taken within a round.`,
    '',
    "*Own work*: per phase (the prepare, the canary's switch, each batch's switch) its slowest host's, summed over the phases; as *receivers' runs*, the run record's startedAt → finishedAt (fetch, release, `sleep 1`; or the switch, activate and health check); as *host steps*, the `triggler fleet-step` process from its send to its exit (start-up, the admin call, the run, its wait for the run's end). *Overhead*: (push → the end of the last switch − own work) ÷ own work, that end being the last switch run's finishedAt (receivers' runs) or the last switch invocation's end (host steps). *Push*: StartExecution; *all hosts live*: the last switch run's finishedAt.",
    '',
    '| push → all hosts live | batch size 1 ÷ all at once | batch size 1 | all at once |',
    '| --- | --- | --- | --- |',
    ...WAITS.map(
      (waits) =>
        `| ${waits} waits | ${cell(ratio(waits), (v) => `${v.toFixed(2)}×`)} | ${both(waits, (runs) =>
          cell(
            runs.map((r) => r.live),
            seconds,
          ),
        )} |`,
    ),
    '',
    "| overhead beyond the phases' own work | batch size 1 | all at once | target ≤ 20 % |",
    '| --- | --- | --- | --- |',
    ...WAITS.flatMap((waits) => [
      `| ${waits} waits, own work = receivers' runs | ${both(waits, (runs) => cell(runs.map(overheadOfRuns), percent))} | ${met(of(waits, 'batch size 1').map(overheadOfRuns))} / ${met(of(waits, 'all at once').map(overheadOfRuns))} |`,
      `| ${waits} waits, own work = host steps | ${both(waits, (runs) => cell(runs.map(overheadOfSteps), percent))} | ${met(of(waits, 'batch size 1').map(overheadOfSteps))} / ${met(of(waits, 'all at once').map(overheadOfSteps))} |`,
    ]),
    '',
    "Per rollout (medians): own work as receivers' runs / as host steps, each phase's longest host (prepare, then each switch); the time beyond the host steps (push → last switch invocation ended, less their own work: waiting for looks, and the state machine); the execution's end; states entered (Standard bills each as a transition) and looks at a running command (ListCommands).",
    '',
    '| rollout | own work: runs | own work: host steps | phases (run / step, s) | push → all live | beyond the host steps | push → execution end | transitions | looks |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...WAITS.flatMap((waits) =>
      (Object.keys(CONFIGURATIONS) as Configuration[]).map((name) => {
        const runs = of(waits, name);
        const phases = runs[0]!.phases.map(
          (phase, i) =>
            `${phase.step}×${phase.hosts} ${median(runs.map((r) => r.phases[i]!.run)).toFixed(2)} / ${median(runs.map((r) => r.phases[i]!.invocation)).toFixed(2)}`,
        );
        return `| ${name}, ${waits} waits | ${seconds(median(runs.map((r) => ownWork(r, 'run'))))} | ${seconds(median(runs.map((r) => ownWork(r, 'invocation'))))} | ${phases.join('; ')} | ${seconds(median(runs.map((r) => r.live)))} | ${seconds(median(runs.map((r) => r.stepsDone - ownWork(r, 'invocation'))))} | ${seconds(median(runs.map((r) => r.ended)))} | ${median(runs.map((r) => r.transitions))} | ${median(runs.map((r) => r.looks))} |`;
      }),
    ),
    '',
  ];
  return lines.join('\n');
}

runBench('fleet', main);
