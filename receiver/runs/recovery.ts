/**
 * What a start after a crash (or a stop) puts right before anything new runs: commands the
 * previous receiver left running are stopped, a run it interrupted is run again once, runs it had
 * accepted but not started wait their turn again (a prepare it interrupted, too), and a deploy
 * switch it never saw through its checks is switched back.
 */
import type { Logger } from 'pino';
import { triggerKey, triggerLabel } from '../../protocol';
import type { TriggerConfig } from '../config/schema';
import { stopOrphanedGroup } from './process-group';
import { ReleaseLayout } from './deploy/release-layout';
import type { RunAction, StoredRun } from './run-record';
import type { RunStore } from './run-store';
import type { Scheduler } from './scheduler';

export interface RecoveryContext {
  store: RunStore;
  scheduler: Scheduler;
  logger: Logger;
  stateDir: string;
  killGraceMs: number;
  /** The configured trigger of a line (triggerKey), if any. */
  trigger(line: string): { config: TriggerConfig; label: string } | undefined;
  /** Every configured line. */
  lines(): Iterable<string>;
  /** Queues a recover run first in the line, journalled before this resolves. */
  queueRecover(line: string): Promise<unknown>;
}

/** Runs after RunStore.open(): `interrupted` are the runs it found running and recorded as interrupted. */
export async function recover(context: RecoveryContext, interrupted: StoredRun[]): Promise<void> {
  const { store, logger } = context;
  for (const run of interrupted) {
    logger.warn(
      { run: run.id, trigger: triggerLabel(run), commit: run.commit },
      'run was running when the receiver stopped: recorded as interrupted',
    );
    await stopOrphan(context, run);
  }
  for (const run of interrupted) await rerunInterrupted(context, run);
  let pending = 0;
  for (const run of store.unfinishedRuns()) {
    const line = triggerKey(run.repository, run.branch);
    if (context.trigger(line)) {
      context.scheduler.restore(line, run.id, run.scheme === 'admin');
      pending += 1;
      continue;
    }
    const error = `no trigger is configured for ${triggerLabel(run)} any more`;
    logger.error({ run: run.id, trigger: triggerLabel(run), deliveries: run.deliveryIds }, `pending run not started: ${error}`);
    await store.record({ type: 'finish', at: new Date().toISOString(), runId: run.id, status: 'failed', error });
  }
  logger.info({ stateDir: context.stateDir, pending, interrupted: interrupted.length }, 'run store opened');
  await recoverSwitches(context);
}

/**
 * A command the previous receiver left running when it died (its own process group outlives the
 * receiver) is stopped before anything new runs, so that two runs of one trigger never overlap;
 * the run's record says what was found and done.
 */
async function stopOrphan(context: RecoveryContext, run: StoredRun): Promise<void> {
  if (!run.processGroup) return;
  const outcome = await stopOrphanedGroup(run.processGroup, context.killGraceMs);
  const label = triggerLabel(run);
  if (!outcome.stopped) {
    context.logger.info(
      { run: run.id, trigger: label, pgid: run.processGroup.pgid, why: outcome.why },
      'interrupted run: nothing of its command to stop',
    );
    return;
  }
  const processes = `${outcome.members} process${outcome.members === 1 ? '' : 'es'}`;
  const signals = outcome.signal === 'SIGTERM' ? 'SIGTERM' : 'SIGTERM, then SIGKILL';
  const error = `${run.error ?? 'receiver stopped while it ran'}; at the next start its process group ${run.processGroup.pgid} (${processes}) was still running and was stopped with ${signals}`;
  context.logger.warn(
    { run: run.id, trigger: label, pgid: run.processGroup.pgid, processes: outcome.members, signal: outcome.signal },
    'stopped the command of an interrupted run, left running by the previous receiver',
  );
  await context.store.record({
    type: 'finish',
    at: run.finishedAt ?? new Date().toISOString(),
    runId: run.id,
    status: 'interrupted',
    error,
    ...(run.logBytes !== undefined ? { logBytes: run.logBytes } : {}),
  });
}

const RUN_AGAIN_ACTIONS: ReadonlySet<RunAction['type']> = new Set(['prepare', 'rebuild']);

/**
 * A run interrupted by a crash is run again, once: its push was accepted and its command never
 * finished. Not when the trigger opts out, when it was itself a rerun, or when a newer delivery
 * of the trigger already waits (that run carries a newer push).
 */
async function rerunInterrupted(context: RecoveryContext, run: StoredRun): Promise<void> {
  const trigger = context.trigger(triggerKey(run.repository, run.branch));
  if (!trigger) return;
  const skip = (why: string) => context.logger.info({ run: run.id, trigger: trigger.label, why }, 'interrupted run not run again');
  if (!trigger.config.rerunInterrupted) return skip('the trigger sets rerunInterrupted: false');
  // A prepare or a rebuild is a push's first half: safe to run again (a release its command finished is reused).
  // Which release a rollback or a switch returns to is decided again by whoever asked for it.
  if (run.action && !RUN_AGAIN_ACTIONS.has(run.action.type)) return skip(`it was the receiver's own ${run.action.type} run`);
  if (run.rerunOf !== undefined) return skip(`it was already the rerun of ${run.rerunOf}`);
  if (context.store.unfinishedRuns().some((other) => other.repository === run.repository && other.branch === run.branch))
    return skip('a newer delivery of the trigger waits to run');
  const runId = context.store.ids.next();
  await context.store.record({ type: 'rerun', at: new Date().toISOString(), runId, of: run.id });
  context.logger.warn({ run: runId, of: run.id, trigger: trigger.label, commit: run.commit }, 'interrupted run will run again');
}

/**
 * A receiver that died between switching a deploy's `current` and its health check passing left
 * an unchecked release current: a recover run, first in the trigger's line, switches back.
 */
async function recoverSwitches(context: RecoveryContext): Promise<void> {
  for (const line of context.lines()) {
    const trigger = context.trigger(line);
    if (!trigger?.config.deploy || !(await new ReleaseLayout(trigger.config.deploy.path).unfinishedSwitch())) continue;
    if (context.scheduler.waiting(line).some((id) => context.store.run(id)?.action?.type === 'recover')) continue;
    context.logger.warn(
      { trigger: trigger.label, path: trigger.config.deploy.path },
      'a deploy was stopped before its health check passed: a recover run switches back',
    );
    await context.queueRecover(line);
  }
}
