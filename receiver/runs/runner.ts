/**
 * Schedules the runs of accepted deliveries: one run at a time per trigger, deliveries that arrive
 * while a run waits join it (the run carries the newest push), a global limit on concurrent runs,
 * and every accepted delivery recorded in the run store before accept() resolves. What a run does
 * is runCommand's (./command); what has run is RunHistory's (./run-history).
 */
import type { Logger } from 'pino';
import { triggerKey, triggerLabel } from '../../protocol';
import type { TriggerConfig } from '../config/schema';
import { type AcceptedDelivery, type AcceptResult, type DeliverySink, NotAccepted, type SinkHealth } from '../delivery';
import { type RunningCommand, runCommand, stopOrphanedGroup } from './command';
import { type DeployOutcome, runDeploy } from './deploy/deployment';
import { ReleaseLayout } from './deploy/release-layout';
import { type SecretLookup, removeLeftoverSshFiles } from './deploy/ssh-access';
import type { ProcessGroup, RunAction } from './run-record';
import { RunHistory } from './run-history';
import { BoundedRunLog } from './run-log';
import { type FinishRecord, RunStore, newRunId, type StoredRun } from './run-store';

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
  /** Delivery ids remembered at most (RunStoreOptions.maxRememberedIds). @default 100,000 */
  maxRememberedIds?: number;
  /** SIGTERM -> SIGKILL delay. @default 10 */
  killGraceSeconds?: number;
  /** How long close() waits for running commands before killing them. */
  shutdownGraceSeconds: number;
  logger: Logger;
  /** Receiver environment variables never passed to commands (token variables). */
  withheldEnv?: string[];
  /** Secrets by the name they are stored under (deploy keys). @default none: a deploy with sshKey fails */
  secretNamed?: SecretLookup;
  /**
   * fdatasync the journal after each group write. Off, a power loss can lose deliveries already
   * answered 202 (a crash of the receiver alone cannot). @default true
   */
  fsync?: boolean;
}

/** accept() after close() began: the receiver is stopping (answer 503). */
export class RunnerClosedError extends NotAccepted {
  constructor() {
    super('the runner is shutting down', 'stopping', 'the receiver cannot take deliveries right now; try again');
    this.name = 'RunnerClosedError';
  }
}

/** requestRun() for a trigger that has none, or cannot do what was asked: carries the status to answer. */
export class RunRequestRefused extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404 | 409,
  ) {
    super(message);
    this.name = 'RunRequestRefused';
  }
}

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
  command: RunningCommand | undefined;
  /** Set by close(): the run ends as interrupted. */
  stopRequested: boolean;
  done: Promise<void>;
}

/** What an accept record is written from: a delivery, or a run of the receiver's own (scheme `admin`, its action). */
type RecordedDelivery = Omit<AcceptedDelivery, 'scheme'> & { scheme: StoredRun['scheme']; action?: RunAction };

export class Runner implements DeliverySink {
  private readonly slots = new Map<string, TriggerSlot>();
  /** Triggers with a run ready to start, in the order they became ready (fairness between triggers). */
  private readonly readyQueue: TriggerSlot[] = [];
  private readonly active = new Map<string, ActiveRun>();
  /** Accepts whose journal record is not written yet, by the run they join. */
  private readonly joins = new Map<string, number>();
  /** Accepts in flight by dedupe key: a concurrent repeat waits for the first and is its duplicate. */
  private readonly acceptsInFlight = new Map<string, Promise<AcceptResult>>();
  private readonly idleWaiters: (() => void)[] = [];
  /** Runs asked for through the admin listener (a rollback): deliveries never join them. */
  private readonly ownRuns = new Set<string>();
  private readonly killGraceMs: number;
  private readonly withheldEnv: Set<string>;
  private closing: Promise<void> | undefined;
  private readonly finishListeners: ((run: StoredRun) => void)[] = [];
  /** What has run and what is running: records and logs, read from the store. */
  readonly history: RunHistory;

  private constructor(
    private readonly options: RunnerOptions,
    private readonly store: RunStore,
  ) {
    this.killGraceMs = (options.killGraceSeconds ?? 10) * 1000;
    this.withheldEnv = new Set(options.withheldEnv ?? []);
    this.history = new RunHistory(store, (id) => this.active.get(id)?.log);
    for (const config of options.triggers) this.addSlot(config);
  }

  private addSlot(config: TriggerConfig): void {
    const label = triggerLabel(config);
    this.slots.set(triggerKey(config.repository, config.branch), { config, label, waiting: [], running: undefined, queued: false });
    if (config.user !== undefined && process.getuid?.() !== 0) {
      this.options.logger.warn({ trigger: label, user: config.user }, 'the receiver is not root: this trigger runs as the receiver user, not as its user');
    }
  }

  /**
   * A reloaded config's triggers take effect: a changed trigger's next run uses its new settings
   * (a run in progress finishes under the settings it started with), a new trigger can run, and a
   * removed one takes no more deliveries; its runs not started yet end `failed`, saying why, and a
   * run in progress finishes.
   */
  async reconfigure(triggers: readonly TriggerConfig[]): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const next = new Map(triggers.map((config) => [triggerKey(config.repository, config.branch), config]));
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    for (const [key, slot] of [...this.slots]) {
      const config = next.get(key);
      if (config) {
        if (JSON.stringify(config) !== JSON.stringify(slot.config)) changed.push(slot.label);
        slot.config = config;
        continue;
      }
      removed.push(slot.label);
      this.slots.delete(key);
      const index = this.readyQueue.indexOf(slot);
      if (index >= 0) this.readyQueue.splice(index, 1);
      for (const runId of slot.waiting.splice(0)) {
        this.options.logger.warn({ run: runId, trigger: slot.label }, 'the trigger was removed from the config: its waiting run does not start');
        await this.store.record({ type: 'finish', at: new Date().toISOString(), runId, status: 'failed', error: `the trigger ${slot.label} was removed from the config before this run started` });
      }
    }
    for (const [key, config] of next) {
      if (this.slots.has(key)) continue;
      this.addSlot(config);
      added.push(triggerLabel(config));
    }
    this.checkIdle();
    return { added, changed, removed };
  }

  /**
   * Replays the run store: runs that were running are recorded as interrupted, runs that were
   * waiting are scheduled again.
   */
  static async open(options: RunnerOptions): Promise<Runner> {
    const { store, interrupted } = await RunStore.open({
      stateDir: options.stateDir,
      keepRuns: options.keepRuns,
      ...(options.maxRememberedIds !== undefined ? { maxRememberedIds: options.maxRememberedIds } : {}),
      logger: options.logger,
      fsync: options.fsync ?? true,
    });
    const runner = new Runner(options, store);
    await removeLeftoverSshFiles(options.stateDir);
    for (const run of interrupted) {
      options.logger.warn({ run: run.id, trigger: triggerLabel(run), commit: run.commit }, 'run was running when the receiver stopped: recorded as interrupted');
      await runner.stopOrphan(run);
    }
    for (const run of interrupted) await runner.rerunInterrupted(run);
    let pending = 0;
    for (const run of store.unfinishedRuns()) {
      if (run.action) runner.ownRuns.add(run.id);
      const slot = runner.slots.get(triggerKey(run.repository, run.branch));
      if (slot) {
        slot.waiting.push(run.id);
        pending += 1;
        continue;
      }
      const error = `no trigger is configured for ${triggerLabel(run)} any more`;
      options.logger.error({ run: run.id, trigger: triggerLabel(run), deliveries: run.deliveryIds }, `pending run not started: ${error}`);
      await store.record({ type: 'finish', at: new Date().toISOString(), runId: run.id, status: 'failed', error });
    }
    options.logger.info({ stateDir: options.stateDir, pending, interrupted: interrupted.length }, 'run store opened');
    await runner.recoverSwitches();
    for (const slot of runner.slots.values()) runner.enqueueIfReady(slot);
    runner.schedule();
    return runner;
  }

  /**
   * A receiver that died between switching a deploy's `current` and its health check passing left
   * an unchecked release current: a recover run, first in the trigger's line, switches back.
   */
  private async recoverSwitches(): Promise<void> {
    for (const slot of this.slots.values()) {
      if (!slot.config.deploy || !(await new ReleaseLayout(slot.config.deploy.path).unfinishedSwitch())) continue;
      if (slot.waiting.some((id) => this.store.run(id)?.action?.type === 'recover')) continue;
      this.options.logger.warn({ trigger: slot.label, path: slot.config.deploy.path }, 'a deploy was stopped before its health check passed: a recover run switches back');
      await this.queueOwnRun(slot, { type: 'recover' }, true);
    }
  }

  /**
   * A command the previous receiver left running when it died (its own process group outlives the
   * receiver) is stopped before anything new runs, so that two runs of one trigger never overlap;
   * the run's record says what was found and done.
   */
  private async stopOrphan(run: StoredRun): Promise<void> {
    if (!run.processGroup) return;
    const outcome = await stopOrphanedGroup(run.processGroup, this.killGraceMs);
    const label = triggerLabel(run);
    if (!outcome.stopped) {
      this.options.logger.info({ run: run.id, trigger: label, pgid: run.processGroup.pgid, why: outcome.why }, 'interrupted run: nothing of its command to stop');
      return;
    }
    const error = `${run.error ?? 'receiver stopped while it ran'}; at the next start its process group ${run.processGroup.pgid} (${outcome.members} process${outcome.members === 1 ? '' : 'es'}) was still running and was stopped with ${outcome.signal === 'SIGTERM' ? 'SIGTERM' : 'SIGTERM, then SIGKILL'}`;
    this.options.logger.warn({ run: run.id, trigger: label, pgid: run.processGroup.pgid, processes: outcome.members, signal: outcome.signal }, 'stopped the command of an interrupted run, left running by the previous receiver');
    await this.store.record({
      type: 'finish',
      at: run.finishedAt ?? new Date().toISOString(),
      runId: run.id,
      status: 'interrupted',
      error,
      ...(run.logBytes !== undefined ? { logBytes: run.logBytes } : {}),
    });
  }

  /**
   * A run interrupted by a crash is run again, once: its push was accepted and its command never
   * finished. Not when the trigger opts out, when it was itself a rerun, or when a newer delivery
   * of the trigger already waits (that run carries a newer push).
   */
  private async rerunInterrupted(run: StoredRun): Promise<void> {
    const slot = this.slots.get(triggerKey(run.repository, run.branch));
    if (!slot) return;
    const skip = (why: string) => this.options.logger.info({ run: run.id, trigger: slot.label, why }, 'interrupted run not run again');
    if (!slot.config.rerunInterrupted) return skip('the trigger sets rerunInterrupted: false');
    if (run.action) return skip(`it was the receiver's own ${run.action.type} run`);
    if (run.rerunOf !== undefined) return skip(`it was already the rerun of ${run.rerunOf}`);
    if (this.store.unfinishedRuns().some((other) => other.repository === run.repository && other.branch === run.branch)) return skip('a newer delivery of the trigger waits to run');
    const runId = newRunId();
    await this.store.record({ type: 'rerun', at: new Date().toISOString(), runId, of: run.id });
    this.options.logger.warn({ run: runId, of: run.id, trigger: slot.label, commit: run.commit }, 'interrupted run will run again');
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
    if (runId !== undefined && this.ownRuns.has(runId)) runId = undefined;
    const coalesced = runId !== undefined;
    if (runId === undefined) {
      runId = newRunId();
      slot.waiting.push(runId);
    }
    this.joins.set(runId, (this.joins.get(runId) ?? 0) + 1);
    return this.inFlight(delivery.dedupeKey, this.recordAccept(slot, runId, delivery, coalesced));
  }

  /** An accept being written: a concurrent repeat of its key waits for it, and idle() waits for it. */
  private inFlight(dedupeKey: string, accepted: Promise<AcceptResult>): Promise<AcceptResult> {
    this.acceptsInFlight.set(dedupeKey, accepted);
    const settle = (): void => {
      this.acceptsInFlight.delete(dedupeKey);
      this.checkIdle();
    };
    accepted.then(settle, settle);
    return accepted;
  }

  /**
   * A run the admin side asks for (a rollback) on a trigger: recorded like a delivery, so it
   * survives a restart, and waiting its turn behind the trigger's run; deliveries never join it.
   */
  async requestRun(repository: string, branch: string, action: RunAction): Promise<AcceptResult> {
    if (this.closing) throw new RunnerClosedError();
    const slot = this.slots.get(triggerKey(repository, branch));
    if (!slot) throw new RunRequestRefused(`no trigger is configured for repository "${repository}" branch "${branch}"`, 404);
    if (!slot.config.deploy) throw new RunRequestRefused(`${slot.label} has no deploy section: there is nothing to roll back`, 409);
    return await this.queueOwnRun(slot, action, false);
  }

  /** Journals a run of the receiver's own; `first` puts it ahead of the trigger's waiting runs. */
  private queueOwnRun(slot: TriggerSlot, action: RunAction, first: boolean): Promise<AcceptResult> {
    const runId = newRunId();
    const id = `admin-${runId}`;
    this.ownRuns.add(runId);
    const receivedAt = new Date().toISOString();
    const delivery = { dedupeKey: `admin:${id}`, dedupeUntil: Date.now(), deliveryId: id, repository: slot.config.repository, branch: slot.config.branch, commit: '', scheme: 'admin' as const, receivedAt, action };
    return this.queueNewRun(slot, runId, delivery, first);
  }

  /**
   * Queues a new run of a finished (or any) run's trigger with that run's newest delivery (commit,
   * pusher), recorded with `rerunOf`. It waits its turn like a delivery; a push that arrives while
   * it waits joins it (the run carries the newest push). Resolves once the journal holds it.
   */
  rerun(runId: string): Promise<AcceptResult> {
    if (this.closing) return Promise.reject(new RunnerClosedError());
    const original = this.store.run(runId);
    if (!original) return Promise.reject(new RunRequestRefused(`no run ${runId}`, 404));
    // A rollback is asked for again with its own command: which release it returns to depends on now.
    if (original.scheme === 'admin') return Promise.reject(new RunRequestRefused(`run ${runId} is a ${original.action?.type ?? 'receiver'} run: use triggler rollback again`, 409));
    const slot = this.slots.get(triggerKey(original.repository, original.branch));
    if (!slot) return Promise.reject(new RunRequestRefused(`no trigger is configured for ${triggerLabel(original)} any more`, 409));
    const newId = newRunId();
    const now = new Date().toISOString();
    const delivery: AcceptedDelivery = {
      dedupeKey: `rerun:${newId}`,
      // Nothing repeats a re-run's key: it need not be remembered.
      dedupeUntil: 0,
      deliveryId: original.deliveryIds.at(-1) ?? '',
      repository: original.repository,
      branch: original.branch,
      commit: original.commit,
      previousCommit: original.previousCommit,
      scheme: original.scheme,
      pusher: original.pusher,
      event: original.event,
      receivedAt: now,
    };
    return this.queueNewRun(slot, newId, delivery, false, runId);
  }

  /** Puts a new run in its trigger's line (last; `first`: next) and writes its accept record. */
  private queueNewRun(slot: TriggerSlot, runId: string, delivery: RecordedDelivery, first: boolean, rerunOf?: string): Promise<AcceptResult> {
    if (first) slot.waiting.unshift(runId);
    else slot.waiting.push(runId);
    this.joins.set(runId, 1);
    return this.inFlight(delivery.dedupeKey, this.recordAccept(slot, runId, delivery, false, rerunOf));
  }

  /** Called with each run's record once its finish is in the journal. A listener must not throw. */
  onRunFinished(listener: (run: StoredRun) => void): void {
    this.finishListeners.push(listener);
  }

  /** Runs running and waiting now, and the journal's size: what the metrics show. */
  stats(): { running: number; waiting: number; journalBytes: number } {
    let waiting = 0;
    for (const slot of this.slots.values()) waiting += slot.waiting.length;
    return { running: this.active.size, waiting, journalBytes: this.store.journalSize };
  }

  /** Whether the journal takes writes: a receiver that cannot journal is degraded. */
  health(): SinkHealth {
    return this.store.health();
  }

  /** Sync look-up: was this dedupe key accepted (and is it still remembered)? */
  seen(dedupeKey: string): AcceptResult | undefined {
    const remembered = this.store.dedupeEntry(dedupeKey);
    return remembered ? duplicateOf(remembered.runId) : undefined;
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
        run.command?.stop();
      }
      await Promise.all([...this.active.values()].map((run) => run.done));
    }
    await Promise.allSettled([...this.acceptsInFlight.values()]);
    await this.store.close();
    this.checkIdle();
  }

  private async recordAccept(slot: TriggerSlot, runId: string, delivery: RecordedDelivery, coalesced: boolean, rerunOf?: string): Promise<AcceptResult> {
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
          ...(delivery.action ? { action: delivery.action } : {}),
        },
        ...(rerunOf === undefined ? {} : { rerunOf }),
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
    const active: ActiveRun = { runId, slot, log: undefined, command: undefined, stopRequested: false, done: Promise.resolve() };
    slot.running = active;
    this.active.set(runId, active);
    active.done = this.execute(active)
      .catch((error: Error) => {
        this.options.logger.error({ run: runId, trigger: slot.label, err: error.message }, 'run could not be recorded');
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
      { run: runId, trigger: slot.label, repository: run.repository, branch: run.branch, commit: run.commit, deliveries: run.deliveries },
      'run started',
    );
    const log = new BoundedRunLog(this.store.logPath(runId), this.options.runLogBytes, this.options.logger);
    active.log = log;
    const request = {
      config: slot.config,
      run,
      log,
      logger: this.options.logger,
      killGraceMs: this.killGraceMs,
      withheldEnv: this.withheldEnv,
      // So that the next start can stop it if this receiver dies while it runs.
      onSpawn: (processGroup: ProcessGroup) => {
        this.store.record({ type: 'spawned', at: new Date().toISOString(), runId, processGroup }).catch((error: Error) => {
          this.options.logger.error({ run: runId, pgid: processGroup.pgid, err: error.message }, "cannot record the command's process group");
        });
      },
    };
    const deploy = slot.config.deploy;
    const secretNamed = this.options.secretNamed ?? (async () => undefined);
    const command: RunningCommand = deploy ? runDeploy({ ...request, deploy, stateDir: this.options.stateDir, secretNamed, triggers: [...this.slots.values()].map((other) => other.config) }) : runCommand(request);
    active.command = command;
    if (active.stopRequested) command.stop();
    const outcome: DeployOutcome = await command.outcome;
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
      ...(outcome.deploy ? { deploy: outcome.deploy } : {}),
    };
    await this.store.record(finish);
    const finished = this.store.run(runId);
    if (finished) for (const listener of this.finishListeners) listener(finished);
    this.options.logger.info(
      { run: runId, trigger: slot.label, status: outcome.status, exitCode: outcome.exitCode ?? null, signal: outcome.signal ?? null, ms: Date.now() - startedAt, ...(outcome.error ? { error: outcome.error } : {}) },
      'run finished',
    );
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
