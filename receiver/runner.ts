/**
 * Runs the command of a trigger for accepted deliveries (DESIGN §3): one run at a time per
 * trigger, deliveries that arrive while a run waits join it, a global limit on concurrent runs,
 * and every accepted delivery recorded in the run store before accept() resolves.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { Logger } from 'pino';
import { triggerKey, triggerLabel } from '../protocol';
import type { TriggerConfig } from './config';
import type { AcceptedDelivery, AcceptResult, RunRecord } from './delivery';
import { type PasswdEntry, lookupPasswdUser } from './run-as-user';
import { BoundedRunLog } from './run-log';
import { type FinalStatus, type FinishRecord, RunStore, type StoredRun, newRunId } from './run-store';

export interface RunnerOptions {
  /** Created (mode 0700) if absent. */
  stateDir: string;
  triggers: TriggerConfig[];
  /** Global limit across triggers. */
  maxConcurrentRuns: number;
  /** Bounded log per run. */
  runLogBytes: number;
  /** Finished run records kept. */
  keepRuns: number;
  /** SIGTERM -> SIGKILL delay. @default 10 */
  killGraceSeconds?: number;
  /** How long close() waits for running commands before killing them. */
  shutdownGraceSeconds: number;
  logger: Logger;
  /** Receiver environment variables never passed to commands (token variables). */
  withheldEnv?: string[];
  /**
   * fdatasync the journal after each group write. Off, a power loss can lose deliveries already
   * answered 202 (a crash of the receiver alone cannot). @default true
   */
  fsync?: boolean;
}

/** accept() after close() began: the receiver is stopping (answer 503). */
export class RunnerClosedError extends Error {
  constructor() {
    super('the runner is shutting down');
    this.name = 'RunnerClosedError';
  }
}

/** After the command exits, how long to wait for its output pipes, which a background child may hold open. */
const OUTPUT_DRAIN_MS = 2000;
/** How often to look whether a signalled process group is gone. */
const GROUP_POLL_MS = 100;

/** Variables the runner sets; inherited values are removed so a command never sees a stale one. */
const RUN_VARIABLES = [
  'TRIGGLER_REPOSITORY',
  'TRIGGLER_BRANCH',
  'TRIGGLER_COMMIT',
  'TRIGGLER_PREVIOUS_COMMIT',
  'TRIGGLER_RUN_ID',
  'TRIGGLER_DELIVERY_ID',
  'TRIGGLER_SCHEME',
  'TRIGGLER_PUSHER',
  'TRIGGLER_EVENT',
  'TRIGGLER_PROVIDER',
];

const PROVIDER_SCHEMES = new Set(['github', 'gitlab', 'gitea', 'bitbucket']);

interface TriggerSlot {
  config: TriggerConfig;
  label: string;
  /** Runs not started yet, oldest first. Deliveries join the last one. */
  waiting: string[];
  running: ActiveRun | undefined;
  /** In the FIFO of triggers waiting for a free slot. */
  queued: boolean;
}

interface ActiveRun {
  runId: string;
  slot: TriggerSlot;
  log: BoundedRunLog | undefined;
  child: ChildProcess | undefined;
  /** Set by close(): the run ends as interrupted. */
  stopRequested: boolean;
  /** Set by close() to end the run now. */
  stop: (() => void) | undefined;
  done: Promise<void>;
}

interface Outcome {
  status: FinalStatus;
  exitCode?: number | null;
  signal?: string | null;
  error?: string;
}

type RunAs = { account: PasswdEntry } | { error: string } | undefined;

export class Runner {
  private readonly slots = new Map<string, TriggerSlot>();
  /** Triggers with a run ready to start, in the order they became ready (fairness between triggers). */
  private readonly readyQueue: TriggerSlot[] = [];
  private readonly active = new Map<string, ActiveRun>();
  /** Accepts whose journal record is not written yet, by the run they join. */
  private readonly joins = new Map<string, number>();
  /** Accepts in flight by dedupe key: a concurrent repeat waits for the first and is its duplicate. */
  private readonly acceptsInFlight = new Map<string, Promise<AcceptResult>>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly killGraceMs: number;
  private readonly withheldEnv: Set<string>;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly options: RunnerOptions,
    private readonly store: RunStore,
  ) {
    this.killGraceMs = (options.killGraceSeconds ?? 10) * 1000;
    this.withheldEnv = new Set(options.withheldEnv ?? []);
    const receiverIsRoot = process.getuid?.() === 0;
    for (const config of options.triggers) {
      const label = triggerLabel(config);
      this.slots.set(triggerKey(config.repository, config.branch), { config, label, waiting: [], running: undefined, queued: false });
      if (config.user !== undefined && !receiverIsRoot) {
        options.logger.warn({ trigger: label, user: config.user }, 'the receiver is not root: this trigger runs as the receiver user, not as its user');
      }
    }
  }

  /**
   * Replays the run store: runs that were running are recorded as interrupted, runs that were
   * waiting are scheduled again.
   */
  static async open(options: RunnerOptions): Promise<Runner> {
    const { store, interrupted } = await RunStore.open({
      stateDir: options.stateDir,
      keepRuns: options.keepRuns,
      logger: options.logger,
      fsync: options.fsync ?? true,
    });
    const runner = new Runner(options, store);
    for (const run of interrupted) {
      options.logger.warn({ runId: run.id, trigger: triggerLabel(run), commit: run.commit }, 'run was running when the receiver stopped: recorded as interrupted');
    }
    let pending = 0;
    for (const run of store.unfinishedRuns()) {
      const slot = runner.slots.get(triggerKey(run.repository, run.branch));
      if (slot) {
        slot.waiting.push(run.id);
        pending += 1;
        continue;
      }
      const error = `no trigger is configured for ${triggerLabel(run)} any more`;
      options.logger.error({ runId: run.id, trigger: triggerLabel(run), deliveries: run.deliveryIds }, `pending run not started: ${error}`);
      await store.record({ type: 'finish', at: new Date().toISOString(), runId: run.id, status: 'failed', error });
    }
    options.logger.info({ stateDir: options.stateDir, pending, interrupted: interrupted.length }, 'run store opened');
    for (const slot of runner.slots.values()) runner.enqueueIfReady(slot);
    runner.schedule();
    return runner;
  }

  /** Durable before it resolves: once it resolves, a crash cannot lose the delivery. */
  accept(delivery: AcceptedDelivery): Promise<AcceptResult> {
    if (this.closing) return Promise.reject(new RunnerClosedError());
    const remembered = this.store.dedupeEntry(delivery.dedupeKey);
    if (remembered) return Promise.resolve(duplicateOf(remembered.runId));
    const inFlight = this.acceptsInFlight.get(delivery.dedupeKey);
    if (inFlight) return inFlight.then((first) => duplicateOf(first.runId));
    const slot = this.slots.get(triggerKey(delivery.repository, delivery.branch));
    if (!slot) {
      return Promise.reject(new Error(`no trigger is configured for repository "${delivery.repository}" branch "${delivery.branch}"`));
    }
    let runId = slot.waiting.at(-1);
    const coalesced = runId !== undefined;
    if (runId === undefined) {
      runId = newRunId();
      slot.waiting.push(runId);
    }
    this.joins.set(runId, (this.joins.get(runId) ?? 0) + 1);
    const accepted = this.recordAccept(slot, runId, delivery, coalesced);
    this.acceptsInFlight.set(delivery.dedupeKey, accepted);
    const settle = (): void => {
      this.acceptsInFlight.delete(delivery.dedupeKey);
      this.checkIdle();
    };
    accepted.then(settle, settle);
    return accepted;
  }

  /** Sync look-up: was this dedupe key accepted (and is it still remembered)? */
  seen(dedupeKey: string): AcceptResult | undefined {
    const remembered = this.store.dedupeEntry(dedupeKey);
    return remembered ? duplicateOf(remembered.runId) : undefined;
  }

  /** Newest first. */
  runs(limit?: number): RunRecord[] {
    const all = this.store.allRuns();
    return (limit === undefined ? all : all.slice(0, Math.max(0, limit))).map(publicRecord);
  }

  run(id: string): RunRecord | undefined {
    const run = this.store.run(id);
    return run ? publicRecord(run) : undefined;
  }

  /** The run's output; for a running run, what it has written so far. */
  async runLog(id: string): Promise<Buffer | undefined> {
    const log = this.active.get(id)?.log;
    if (log) return log.snapshot();
    return this.store.readLog(id);
  }

  /** Resolves when no run is running or waiting and no accept is in flight (after close(): none running). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops starting runs, waits up to shutdownGraceSeconds for running commands, then kills their
   * process groups and records them as interrupted. Waiting runs stay in the store and start after
   * the next open().
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    // Stopping must not wait for a full disk: runs' records it cannot write are refused (the next start finds them interrupted or pending).
    this.store.refuseWhileUnwritable();
    const running = [...this.active.values()];
    if (running.length > 0) {
      this.options.logger.info({ running: running.map((run) => run.runId), graceSeconds: this.options.shutdownGraceSeconds }, 'waiting for running commands before stopping');
      const allDone = Promise.all(running.map((run) => run.done));
      let graceTimer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        graceTimer = setTimeout(resolve, this.options.shutdownGraceSeconds * 1000);
      });
      await Promise.race([allDone, graceOver]);
      clearTimeout(graceTimer);
      for (const run of this.active.values()) {
        run.stopRequested = true;
        run.stop?.();
      }
      await Promise.all([...this.active.values()].map((run) => run.done));
    }
    await Promise.allSettled([...this.acceptsInFlight.values()]);
    await this.store.close();
    this.checkIdle();
  }

  private async recordAccept(slot: TriggerSlot, runId: string, delivery: AcceptedDelivery, coalesced: boolean): Promise<AcceptResult> {
    try {
      await this.store.record({
        type: 'accept',
        at: new Date().toISOString(),
        runId,
        dedupeKey: delivery.dedupeKey,
        dedupeUntil: delivery.dedupeUntil,
        delivery: {
          deliveryId: delivery.deliveryId,
          repository: delivery.repository,
          branch: delivery.branch,
          commit: delivery.commit,
          previousCommit: delivery.previousCommit,
          scheme: delivery.scheme,
          pusher: delivery.pusher,
          event: delivery.event,
          receivedAt: delivery.receivedAt,
        },
      });
    } catch (error) {
      this.leave(slot, runId);
      throw error;
    }
    this.leave(slot, runId);
    return { status: 'accepted', runId, coalesced };
  }

  /** An accept's record is written (or failed): the run it joined may start once no other is in flight. */
  private leave(slot: TriggerSlot, runId: string): void {
    const left = (this.joins.get(runId) ?? 1) - 1;
    if (left > 0) {
      this.joins.set(runId, left);
      return;
    }
    this.joins.delete(runId);
    // Every delivery that would have created this run failed to be recorded: it never existed.
    if (!this.store.run(runId)) slot.waiting = slot.waiting.filter((id) => id !== runId);
    this.enqueueIfReady(slot);
    this.schedule();
  }

  private enqueueIfReady(slot: TriggerSlot): void {
    const next = slot.waiting[0];
    if (slot.running || slot.queued || next === undefined || !this.store.run(next)) return;
    slot.queued = true;
    this.readyQueue.push(slot);
  }

  private schedule(): void {
    if (this.closing) return;
    let index = 0;
    while (this.active.size < this.options.maxConcurrentRuns && index < this.readyQueue.length) {
      const slot = this.readyQueue[index] as TriggerSlot;
      const runId = slot.waiting[0];
      if (runId !== undefined && (this.joins.get(runId) ?? 0) > 0) {
        // Deliveries joining it are still being written; it keeps its place in the queue.
        index += 1;
        continue;
      }
      this.readyQueue.splice(index, 1);
      slot.queued = false;
      if (runId === undefined) continue;
      slot.waiting.shift();
      this.start(slot, runId);
    }
  }

  private start(slot: TriggerSlot, runId: string): void {
    const active: ActiveRun = { runId, slot, log: undefined, child: undefined, stopRequested: false, stop: undefined, done: Promise.resolve() };
    slot.running = active;
    this.active.set(runId, active);
    active.done = this.execute(active)
      .catch((error: Error) => {
        this.options.logger.error({ runId, trigger: slot.label, err: error.message }, 'run could not be recorded');
      })
      .finally(() => {
        this.active.delete(runId);
        slot.running = undefined;
        this.enqueueIfReady(slot);
        this.schedule();
        this.checkIdle();
      });
  }

  private async execute(active: ActiveRun): Promise<void> {
    const { runId, slot } = active;
    const startedAt = Date.now();
    await this.store.record({ type: 'start', at: new Date(startedAt).toISOString(), runId });
    const run = this.store.run(runId);
    if (!run) throw new Error(`run ${runId} is not in the store`);
    this.options.logger.info(
      { runId, trigger: slot.label, repository: run.repository, branch: run.branch, commit: run.commit, deliveries: run.deliveries },
      'run started',
    );
    const log = new BoundedRunLog(this.store.logPath(runId), this.options.runLogBytes, this.options.logger);
    active.log = log;
    let outcome: Outcome;
    try {
      outcome = await this.runCommand(active, run, log);
    } catch (error) {
      outcome = { status: 'failed', error: `runner error: ${(error as Error).message}` };
    }
    if (outcome.error !== undefined && outcome.status !== 'succeeded') log.write(Buffer.from(`\n[triggler] ${outcome.error}\n`));
    const summary = await log.finish();
    const finish: FinishRecord = {
      type: 'finish',
      at: new Date().toISOString(),
      runId,
      status: outcome.status,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      error: outcome.error,
      logBytes: summary.storedBytes,
      logTruncated: summary.truncated,
    };
    await this.store.record(finish);
    this.options.logger.info(
      { runId, trigger: slot.label, status: outcome.status, exitCode: outcome.exitCode ?? null, signal: outcome.signal ?? null, ms: Date.now() - startedAt, ...(outcome.error ? { error: outcome.error } : {}) },
      'run finished',
    );
  }

  private async runCommand(active: ActiveRun, run: StoredRun, log: BoundedRunLog): Promise<Outcome> {
    const config = active.slot.config;
    const cwd = config.cwd ?? process.cwd();
    const cwdProblem = await directoryProblem(cwd);
    if (cwdProblem) return { status: 'failed', error: `cwd ${cwd} ${cwdProblem}` };
    const runAs = await this.runAs(config);
    if (runAs && 'error' in runAs) return { status: 'failed', error: runAs.error };
    if (active.stopRequested) return { status: 'interrupted', error: 'receiver stopped before the command started' };
    const [program, args] = typeof config.command === 'string' ? ['/bin/sh', ['-c', config.command]] : [config.command[0] as string, config.command.slice(1)];
    let child: ChildProcess;
    try {
      child = spawn(program, args, {
        cwd,
        env: this.commandEnvironment(config, run, runAs?.account),
        // Its own process group, so a timeout or shutdown reaches everything the command started.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(runAs ? { uid: runAs.account.uid, gid: runAs.account.gid } : {}),
      });
    } catch (error) {
      return { status: 'failed', error: `could not start ${program}: ${(error as Error).message}` };
    }
    active.child = child;
    return this.supervise(active, child, program, log);
  }

  /** Waits for the command, enforcing its timeout and close()'s stop; resolves with how it ended. */
  private supervise(active: ActiveRun, child: ChildProcess, program: string, log: BoundedRunLog): Promise<Outcome> {
    const timeoutSeconds = active.slot.config.timeoutSeconds;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      let timedOut = false;
      let killSent = false;
      let killTimer: NodeJS.Timeout | undefined;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const pid = child.pid;

      const signalGroup = (signal: NodeJS.Signals): void => {
        if (pid === undefined) return;
        try {
          process.kill(-pid, signal);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') {
            this.options.logger.warn({ runId: active.runId, pid, signal, err: (error as Error).message }, 'cannot signal the command');
          }
        }
      };
      const terminate = (): void => {
        if (killTimer) return;
        signalGroup('SIGTERM');
        killTimer = setTimeout(() => {
          killSent = true;
          signalGroup('SIGKILL');
        }, this.killGraceMs);
      };
      const timeoutTimer = setTimeout(() => {
        timedOut = true;
        log.write(Buffer.from(`\n[triggler] timed out after ${timeoutSeconds}s: SIGTERM to the process group\n`));
        terminate();
      }, timeoutSeconds * 1000);
      active.stop = () => {
        log.write(Buffer.from('\n[triggler] receiver stopping: SIGTERM to the process group\n'));
        terminate();
      };

      const finish = (outcome: Outcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timeoutTimer);
        clearTimeout(killTimer);
        active.stop = undefined;
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve(outcome);
      };
      const outcomeOfExit = (): Outcome => {
        const code = exit?.code ?? null;
        const signal = exit?.signal ?? null;
        const signalled = killSent ? 'SIGTERM, then SIGKILL' : 'SIGTERM';
        if (active.stopRequested) return { status: 'interrupted', exitCode: code, signal, error: `receiver stopped while it ran (${signalled} to the process group)` };
        if (timedOut) return { status: 'timed-out', exitCode: code, signal, error: `timed out after ${timeoutSeconds}s (${signalled} to the process group)` };
        if (code === 0) return { status: 'succeeded', exitCode: 0, signal: null };
        if (code !== null) return { status: 'failed', exitCode: code, signal: null, error: `exited with code ${code}` };
        return { status: 'failed', exitCode: null, signal, error: `killed by signal ${signal ?? 'unknown'}` };
      };
      /**
       * After a signal, the run ends once the whole group is gone (or SIGKILL went out), so a
       * finished record never leaves part of the command behind.
       */
      const finishWhenGroupGone = (): void => {
        if (settled) return;
        if (!killTimer || killSent || pid === undefined || !groupHasLiveMember(pid)) {
          finish(outcomeOfExit());
          return;
        }
        setTimeout(finishWhenGroupGone, GROUP_POLL_MS);
      };

      for (const output of [child.stdout, child.stderr]) {
        output?.on('data', (chunk: Buffer) => log.write(chunk));
        output?.on('error', (error) => this.options.logger.warn({ runId: active.runId, err: error.message }, 'cannot read command output'));
      }
      child.on('error', (error) => {
        if (pid === undefined && child.pid === undefined) finish({ status: 'failed', error: `could not start ${program}: ${error.message}` });
        else this.options.logger.warn({ runId: active.runId, err: error.message }, 'command process error');
      });
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        // A background child may hold the output pipes open; the run ends without waiting for it.
        const drainTimer = setTimeout(finishWhenGroupGone, OUTPUT_DRAIN_MS);
        child.once('close', () => {
          clearTimeout(drainTimer);
          finishWhenGroupGone();
        });
      });
    });
  }

  private async runAs(config: TriggerConfig): Promise<RunAs> {
    if (config.user === undefined || process.getuid?.() !== 0) return undefined;
    let account: PasswdEntry | undefined;
    try {
      account = await lookupPasswdUser(config.user);
    } catch (error) {
      return { error: `cannot look up user "${config.user}": ${(error as Error).message}` };
    }
    return account ? { account } : { error: `user "${config.user}" is not in /etc/passwd` };
  }

  /** The receiver's environment minus withheld names, the trigger's env, then the run's variables. */
  private commandEnvironment(config: TriggerConfig, run: StoredRun, account: PasswdEntry | undefined): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (!this.withheldEnv.has(name) && !RUN_VARIABLES.includes(name)) env[name] = value;
    }
    if (account) {
      env.HOME = account.home;
      env.USER = account.name;
      env.LOGNAME = account.name;
    }
    Object.assign(env, config.env);
    env.TRIGGLER_REPOSITORY = run.repository;
    env.TRIGGLER_BRANCH = run.branch;
    env.TRIGGLER_COMMIT = run.commit;
    env.TRIGGLER_PREVIOUS_COMMIT = run.previousCommit ?? '';
    env.TRIGGLER_RUN_ID = run.id;
    env.TRIGGLER_DELIVERY_ID = run.deliveryIds.at(-1) ?? '';
    env.TRIGGLER_SCHEME = run.scheme;
    if (run.pusher !== undefined) env.TRIGGLER_PUSHER = run.pusher;
    if (run.event !== undefined) env.TRIGGLER_EVENT = run.event;
    if (PROVIDER_SCHEMES.has(run.scheme)) env.TRIGGLER_PROVIDER = run.scheme;
    return env;
  }

  private isIdle(): boolean {
    if (this.active.size > 0 || this.acceptsInFlight.size > 0) return false;
    if (this.closing) return true;
    for (const slot of this.slots.values()) if (slot.waiting.length > 0) return false;
    return true;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function duplicateOf(runId: string): AcceptResult {
  return { status: 'duplicate', runId, coalesced: false };
}

/** The public record: who pushed stays inside (the command gets it as TRIGGLER_PUSHER). */
function publicRecord(run: StoredRun): RunRecord {
  const { pusher: _pusher, event: _event, ...record } = run;
  return { ...record, deliveryIds: [...run.deliveryIds], commits: [...run.commits] };
}

async function directoryProblem(dir: string): Promise<string | undefined> {
  try {
    const stats = await fsp.stat(dir);
    return stats.isDirectory() ? undefined : 'is not a directory';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be used: ${(error as Error).message}`;
  }
}

/**
 * Whether a process group still has a member that is not a zombie. Zombies count as gone: where
 * nothing reaps orphans (a container without an init), they would otherwise look alive until SIGKILL.
 */
function groupHasLiveMember(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') return true;
  }
  return false;
}
