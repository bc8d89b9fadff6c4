/** What the runner and run-store tests share: state folders, triggers, deliveries, a log that can be read back. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { type ReceiverConfigInput, type TriggerConfig, triggerSchema } from '../../receiver/config/schema';
import type { AcceptedDelivery } from '../../receiver/delivery';
import { RunIds } from '../../receiver/runs/run-ids';
import type { RunRecord } from '../../receiver/runs/run-record';
import { RunStore, type RunStoreOptions } from '../../receiver/runs/run-store';
import { Runner, type RunnerOptions } from '../../receiver/runs/runner';

export function makeStateDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-runner-'));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

type TriggerInput = ReceiverConfigInput['triggers'][number];

/** A trigger as the config schema would hand it over (defaults applied). */
export function makeTrigger(fields: Partial<TriggerInput> & Pick<TriggerInput, 'command'>): TriggerConfig {
  return triggerSchema.parse({ repository: 'app', branch: 'main', token: 'a-token-of-16-chars-or-more', ...fields });
}

const testRunIds = new RunIds();

/** A run id for records a test writes itself, made as a store makes them (they sort in the order made). */
export function newRunId(): string {
  return testRunIds.next();
}

let deliverySequence = 0;

export function makeDelivery(fields: Partial<AcceptedDelivery> = {}): AcceptedDelivery {
  deliverySequence += 1;
  const id = `delivery-${deliverySequence}`;
  return {
    dedupeKey: `standard:${id}`,
    dedupeUntil: Date.now() + 300_000,
    deliveryId: id,
    repository: 'app',
    branch: 'main',
    commit: `c${String(deliverySequence).padStart(39, '0')}`,
    scheme: 'standard',
    receivedAt: new Date().toISOString(),
    ...fields,
  };
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger whose JSON lines the test can read. */
export function recordingLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

export type TestRunnerOptions = Partial<RunnerOptions> & Pick<RunnerOptions, 'stateDir' | 'triggers'>;

export async function openRunner(options: TestRunnerOptions): Promise<{ runner: Runner; lines: LogLine[] }> {
  const { logger, lines } = recordingLogger();
  const runner = await Runner.open({
    maxConcurrentRuns: 4,
    runLogBytes: 64 * 1024,
    keepRuns: 100,
    killGraceSeconds: 1,
    shutdownGraceSeconds: 0,
    logger,
    ...options,
  });
  return { runner, lines };
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function logText(runner: Runner, run: RunRecord | string): Promise<string> {
  const id = typeof run === 'string' ? run : run.id;
  const log = await runner.history.runLog(id);
  if (!log) throw new Error(`run ${id} has no log`);
  return log.toString('utf8');
}

/** True while the process exists and is not a zombie waiting to be reaped. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export interface StateFolder {
  /** This test's folder (removed after it). */
  readonly dir: string;
  /** The state directory in it (not made: the first runner or store makes it). */
  readonly stateDir: string;
  /** A directory in it for the commands to run in. */
  readonly workDir: string;
  /** A runner on the state directory, closed after the test. */
  openRunner(options: Omit<TestRunnerOptions, 'stateDir'>): Promise<{ runner: Runner; lines: LogLine[] }>;
  /** A run store on the state directory, its log recorded, closed after the test. */
  openStore(
    options?: Partial<Omit<RunStoreOptions, 'stateDir' | 'logger'>>,
  ): Promise<Awaited<ReturnType<typeof RunStore.open>> & { lines: LogLine[] }>;
}

/**
 * Call in a describe (or at the top of a file): each test gets a folder of its own with a state
 * directory and a work directory, and every runner and store it opened through it is closed
 * before the folder is removed.
 */
export function stateFolderEach(): StateFolder {
  let dir: string | undefined;
  const runners: Runner[] = [];
  const stores: RunStore[] = [];
  beforeEach(() => {
    dir = makeStateDir();
    fs.mkdirSync(path.join(dir, 'work'));
  });
  afterEach(async () => {
    for (const runner of runners.splice(0)) await runner.close();
    for (const store of stores.splice(0)) await store.close();
    if (dir) removeDir(dir);
  });
  const folder = (): string => {
    if (dir === undefined) throw new Error('no state folder outside a test');
    return dir;
  };
  return {
    get dir() {
      return folder();
    },
    get stateDir() {
      return path.join(folder(), 'state');
    },
    get workDir() {
      return path.join(folder(), 'work');
    },
    async openRunner(options) {
      const opened = await openRunner({ stateDir: path.join(folder(), 'state'), ...options });
      runners.push(opened.runner);
      return opened;
    },
    async openStore(options = {}) {
      const { logger, lines } = recordingLogger();
      const opened = await RunStore.open({ stateDir: path.join(folder(), 'state'), keepRuns: options.keepRuns ?? 100, logger, ...options });
      stores.push(opened.store);
      return { ...opened, lines };
    },
  };
}
