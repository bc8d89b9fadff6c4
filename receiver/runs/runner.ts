/**
 * Takes accepted deliveries and the receiver's own runs, and runs them: every accepted delivery is
 * recorded in the run store before accept() resolves; which run starts when is the scheduler's
 * (./scheduler); what a run does is run-execution's; what a start puts right after a crash is
 * recovery's; what has run is RunReader's (./run-reader); what the receiver's own runs may be asked
 * of and are recorded with is own-runs'.
 */
import type { Logger } from 'pino';
import { triggerKey, triggerLabel } from '../../protocol';
import type { TriggerConfig } from '../config/schema';
import type { AcceptedDelivery, AcceptResult, DeliverySink, SinkHealth } from '../delivery';
import { spawnThroughRunner } from './command-runner-client';
import { spawnDirect } from './command-spawn';
import { removeLeftoverSshFiles, type SecretLookup } from './deploy/ssh-access';
import { RunnerClosedError, RunRequestRefused } from './run-errors';
import { type ExecutionOptions, executeRun, type RunUnderWay, stopRunning } from './run-execution';
import { DELIVERY_FIELD_KEYS, pickFields, type RecordedDelivery, type RunAction, type StoredRun } from './run-record';
import { RunReader } from './run-reader';
import { RunStore } from './run-store';
import { recover } from './recovery';
import { Scheduler, type StartRun } from './scheduler';
import {
  ownRunDelivery,
  redeliveryDelivery,
  redeliveryRefusal,
  rerunDelivery,
  rerunRefusal,
  runRequestRefusal,
  type Trigger,
} from './own-runs';

export { RunnerClosedError, RunRequestRefused };

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
  /**
   * The command runner's socket: commands are started through it (command-runner-client.ts), each
   * in a unit of its own. @default none: commands are the receiver's own children
   */
  commandRunner?: string;
  /** Secrets by the name they are stored under (deploy keys). @default none: a deploy with sshKey fails */
  secretNamed?: SecretLookup;
  /**
   * Sync each group write of the journal to the disk (O_DSYNC). Off, a power loss can lose deliveries already
   * answered 202 (a crash of the receiver alone cannot). @default true
   */
  fsync?: boolean;
}

export class Runner implements DeliverySink {
  /** Configured triggers by line (triggerKey). */
  private readonly triggers = new Map<string, Trigger>();
  private readonly scheduler: Scheduler;
  private readonly active = new Map<string, RunUnderWay>();
  /** Accepts in flight by dedupe key: a concurrent repeat waits for the first and is its duplicate. */
  private readonly acceptsInFlight = new Map<string, Promise<AcceptResult>>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly execution: ExecutionOptions;
  private closing: Promise<void> | undefined;
  private readonly finishListeners: ((run: StoredRun) => void)[] = [];
  /** What has run and what is running: records and logs, read from the store. */
  readonly history: RunReader;

  private constructor(
    private readonly options: RunnerOptions,
    private readonly store: RunStore,
  ) {
    this.scheduler = new Scheduler(options.maxConcurrentRuns);
    this.history = new RunReader(
      store,
      (id) => this.active.get(id)?.log,
      () => this.execution.triggers(),
    );
    this.execution = {
      store,
      logger: options.logger,
      stateDir: options.stateDir,
      runLogBytes: options.runLogBytes,
      killGraceMs: (options.killGraceSeconds ?? 10) * 1000,
      withheldEnv: new Set(options.withheldEnv ?? []),
      spawn: options.commandRunner === undefined ? spawnDirect : spawnThroughRunner(options.commandRunner),
      secretNamed: options.secretNamed ?? (async () => undefined),
      triggers: () => [...this.triggers.values()].map((trigger) => trigger.config),
      finished: (run) => {
        for (const listener of this.finishListeners) listener(run);
      },
    };
    for (const config of options.triggers) this.addTrigger(config);
  }

  private addTrigger(config: TriggerConfig): void {
    const label = triggerLabel(config);
    const line = triggerKey(config.repository, config.branch);
    this.triggers.set(line, { config, label });
    this.scheduler.addLine(line);
    if (config.user !== undefined && process.getuid?.() !== 0) {
      this.options.logger.warn(
        { trigger: label, user: config.user },
        'the receiver is not root: this trigger runs as the receiver user, not as its user',
      );
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
    for (const [line, trigger] of [...this.triggers]) {
      const config = next.get(line);
      if (config) {
        if (JSON.stringify(config) !== JSON.stringify(trigger.config)) changed.push(trigger.label);
        trigger.config = config;
        continue;
      }
      removed.push(trigger.label);
      this.triggers.delete(line);
      for (const runId of this.scheduler.removeLine(line)) {
        this.options.logger.warn(
          { run: runId, trigger: trigger.label },
          'the trigger was removed from the config: its waiting run does not start',
        );
        await this.store.record({
          type: 'finish',
          at: new Date().toISOString(),
          runId,
          status: 'failed',
          error: `the trigger ${trigger.label} was removed from the config before this run started`,
        });
      }
    }
    for (const [line, config] of next) {
      if (this.triggers.has(line)) continue;
      this.addTrigger(config);
      added.push(triggerLabel(config));
    }
    this.checkIdle();
    return { added, changed, removed };
  }

  /**
   * Replays the run store and puts right what a crash left (./recovery): runs that were running are
   * recorded as interrupted, runs that were waiting are scheduled again.
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
    await recover(
      {
        store,
        scheduler: runner.scheduler,
        logger: options.logger,
        stateDir: options.stateDir,
        killGraceMs: runner.execution.killGraceMs,
        trigger: (line) => runner.triggers.get(line),
        lines: () => [...runner.triggers.keys()],
        queueRecover: (line) => runner.queueOwnRun(line, { type: 'recover' }, true),
      },
      interrupted,
    );
    runner.start(runner.scheduler.startReady());
    return runner;
  }

  /** Durable before it resolves: once it resolves, a crash cannot lose the delivery. */
  accept(delivery: AcceptedDelivery): Promise<AcceptResult> {
    if (this.closing) return Promise.reject(new RunnerClosedError());
    const remembered = this.store.dedupeEntry(delivery.dedupeKey);
    if (remembered) return Promise.resolve(duplicateOf(remembered.runId));
    const inFlight = this.acceptsInFlight.get(delivery.dedupeKey);
    if (inFlight) return inFlight.then((first) => duplicateOf(first.runId));
    const line = triggerKey(delivery.repository, delivery.branch);
    if (!this.triggers.has(line)) {
      return Promise.reject(new Error(`no trigger is configured for repository "${delivery.repository}" branch "${delivery.branch}"`));
    }
    const { runId, coalesced } = this.scheduler.join(line, () => this.store.ids.next());
    return this.recordAccept(line, runId, delivery, coalesced);
  }

  /**
   * A run the admin side asks for (a rollback, a prepare, a switch) on a deploy trigger: recorded
   * like a delivery, so it survives a restart, and waiting its turn behind the trigger's run;
   * deliveries never join it.
   */
  async requestRun(repository: string, branch: string, action: RunAction): Promise<AcceptResult> {
    if (this.closing) throw new RunnerClosedError();
    const line = triggerKey(repository, branch);
    const refused = runRequestRefusal(this.triggers.get(line), repository, branch, action);
    if (refused) throw refused;
    return await this.queueOwnRun(line, action, false);
  }

  /** Journals a run of the receiver's own; `first` puts it ahead of the trigger's waiting runs. */
  private queueOwnRun(line: string, action: RunAction, first: boolean): Promise<AcceptResult> {
    const { config } = this.triggers.get(line) as Trigger;
    const runId = this.store.ids.next();
    this.scheduler.add(line, runId, { own: true, first });
    const delivery = ownRunDelivery(config, runId, action);
    return this.recordAccept(line, runId, delivery, false);
  }

  /**
   * Queues a new run of a finished (or any) run's trigger with that run's newest delivery (commit,
   * pusher), recorded with `rerunOf`. It waits its turn like a delivery; a push that arrives while
   * it waits joins it (the run carries the newest push). Resolves once the journal holds it.
   * A deploy trigger's re-run switches to the good release its commit has already, unless
   * `rebuild` asks for a new release of it.
   */
  rerun(runId: string, options: { rebuild?: boolean } = {}): Promise<AcceptResult> {
    if (this.closing) return Promise.reject(new RunnerClosedError());
    const original = this.store.run(runId);
    if (!original) return Promise.reject(new RunRequestRefused(`no run ${runId}`, 'not-found'));
    const line = triggerKey(original.repository, original.branch);
    const refused = rerunRefusal(runId, original, this.triggers.get(line), options.rebuild);
    if (refused) return Promise.reject(refused);
    const newId = this.store.ids.next();
    const delivery = rerunDelivery(original, newId, options.rebuild);
    this.scheduler.add(line, newId, { own: false, first: false });
    return this.recordAccept(line, newId, delivery, false, { rerunOf: runId });
  }

  /**
   * Queues a new run of a delivery's trigger with that delivery's own push (a recorded delivery
   * the admin side asks to deliver again), recorded with `redeliveryOf`. It waits its turn like a
   * re-run; a push that arrives while it waits joins it.
   */
  redeliver(delivery: AcceptedDelivery, recordedId: string): Promise<AcceptResult> {
    if (this.closing) return Promise.reject(new RunnerClosedError());
    const line = triggerKey(delivery.repository, delivery.branch);
    const refused = redeliveryRefusal(delivery, this.triggers.get(line));
    if (refused) return Promise.reject(refused);
    const newId = this.store.ids.next();
    const again = redeliveryDelivery(delivery, newId);
    this.scheduler.add(line, newId, { own: false, first: false });
    return this.recordAccept(line, newId, again, false, { redeliveryOf: recordedId });
  }

  /** Called with each run's record once its finish is in the journal. A listener must not throw. */
  onRunFinished(listener: (run: StoredRun) => void): void {
    this.finishListeners.push(listener);
  }

  /** Runs running and waiting now, and the journal's size: what the metrics show. */
  stats(): { running: number; waiting: number; journalBytes: number } {
    return { running: this.active.size, waiting: this.scheduler.waitingCount, journalBytes: this.store.journalSize };
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
    if (!this.closing) {
      this.scheduler.close();
      this.closing = this.shutDown();
    }
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    // Stopping must not wait for a full disk: runs' records it cannot write are refused (the next start finds them interrupted or pending).
    this.store.refuseWhileUnwritable();
    await stopRunning(() => [...this.active.values()], this.options.shutdownGraceSeconds, this.options.logger);
    await Promise.allSettled([...this.acceptsInFlight.values()]);
    await this.store.close();
    this.checkIdle();
  }

  /**
   * Journals an accept. While it is being written a concurrent repeat of its key waits for it, and
   * idle() waits for it; once written (or refused), the run it joined may start. One continuation
   * per accept: under a flood this runs thousands of times a second.
   */
  private recordAccept(
    line: string,
    runId: string,
    delivery: RecordedDelivery,
    coalesced: boolean,
    /** What the new run does again: a run (`rerunOf`) or a recorded delivery (`redeliveryOf`). */
    again: { rerunOf: string } | { redeliveryOf: string } | Record<string, never> = {},
  ): Promise<AcceptResult> {
    const { dedupeKey } = delivery;
    const written = this.store.record({
      type: 'accept',
      at: new Date().toISOString(),
      runId,
      dedupeKey,
      dedupeUntil: delivery.dedupeUntil,
      delivery: pickFields(delivery, DELIVERY_FIELD_KEYS),
      ...again,
    });
    const settled = (recorded: boolean): void => {
      this.start(this.scheduler.journalled(line, runId, recorded));
      this.acceptsInFlight.delete(dedupeKey);
      this.checkIdle();
    };
    const accepted = written.then(
      (): AcceptResult => {
        settled(true);
        return { status: 'accepted', runId, coalesced };
      },
      (error: unknown) => {
        settled(false);
        throw error;
      },
    );
    this.acceptsInFlight.set(dedupeKey, accepted);
    return accepted;
  }

  private start(starts: StartRun[]): void {
    for (const { line, runId } of starts) {
      const { config, label } = this.triggers.get(line) as Trigger;
      const active: RunUnderWay = {
        runId,
        config,
        label,
        log: undefined,
        command: undefined,
        stopRequested: false,
        done: Promise.resolve(),
      };
      this.active.set(runId, active);
      active.done = executeRun(active, this.execution)
        .catch((error: Error) => {
          this.options.logger.error({ run: runId, trigger: label, err: error.message }, 'run could not be recorded');
        })
        .finally(() => {
          this.active.delete(runId);
          this.start(this.scheduler.ended(runId));
          this.checkIdle();
        });
    }
  }

  private isIdle(): boolean {
    if (this.active.size > 0 || this.acceptsInFlight.size > 0) return false;
    if (this.closing) return true;
    return this.scheduler.waitingCount === 0;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

function duplicateOf(runId: string): AcceptResult {
  return { status: 'duplicate', runId, coalesced: false };
}
