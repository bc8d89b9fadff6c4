/**
 * The CodeCommit sender when the receiver is a fleet: each routed branch push starts one rollout
 * (a Step Functions execution) instead of an HTTP delivery to one host. The delivery id is the
 * push's webhook id, the same for Lambda's retry of the same event, so a retry finds the rollout
 * it started and starts no second one. As with deliveries, every push is tried, then the handler
 * throws naming each one that failed, so Lambda's retry and on-failure destination take over.
 */
import type { CodeCommitTriggerEvent, Context } from 'aws-lambda';
import type { Logger } from './log';
import type { RolloutStarter } from './rollout-starter';
import type { RolloutTriggerTable } from './sender-routes';
import { branchPushesOf, DeliveryFailedError, mapWithConcurrency, webhookIdFor, type SenderReport } from './sender';

/** StartExecution calls of one event in flight at once. */
const MAX_PARALLEL_STARTS = 8;

export interface RolloutStartOutcome {
  repository: string;
  branch: string;
  commit: string;
  deliveryId: string;
  executionName: string;
  executionArn: string;
  ok: boolean;
  /** The rollout of this delivery had been started already: a retry, answered as a success. */
  alreadyStarted: boolean;
  /** Why it was not started, in words. */
  error?: string;
  ms: number;
}

/** The sender's report with no HTTP deliveries (a fleet's pushes go to Step Functions) and the rollouts started. */
export type RolloutSenderReport = SenderReport & { rollouts: RolloutStartOutcome[] };

export interface RolloutSenderDependencies {
  triggers: RolloutTriggerTable;
  starter: RolloutStarter;
  logger: Logger;
}

export type RolloutSender = (event: CodeCommitTriggerEvent, context?: Pick<Context, 'awsRequestId'>) => Promise<RolloutSenderReport>;

export function createRolloutSender({ triggers, starter, logger: baseLogger }: RolloutSenderDependencies): RolloutSender {
  return async (event, context) => {
    const logger = context?.awsRequestId ? baseLogger.child({ requestId: context.awsRequestId }) : baseLogger;
    const { pushes, skipped, unreadable } = branchPushesOf(event);
    for (const skip of skipped) logger.info(skip, `reference skipped (${skip.reason}); no rollout`);
    for (const problem of unreadable) logger.error(problem, 'record cannot be read; it is reported as failed');
    const unrouted: RolloutSenderReport['unrouted'] = [];
    const routed = pushes.filter((push) => {
      if (triggers.has(push.repository, push.branch)) return true;
      unrouted.push({ repository: push.repository, branch: push.branch });
      logger.info({ repository: push.repository, branch: push.branch, commit: push.commit }, 'no route for this branch; no rollout');
      return false;
    });

    const rollouts = await mapWithConcurrency(routed, MAX_PARALLEL_STARTS, async (push): Promise<RolloutStartOutcome> => {
      const started = performance.now();
      const deliveryId = webhookIdFor(push);
      const outcome: RolloutStartOutcome = {
        repository: push.repository,
        branch: push.branch,
        commit: push.commit,
        deliveryId,
        executionName: '',
        executionArn: '',
        ok: false,
        alreadyStarted: false,
        ms: 0,
      };
      try {
        Object.assign(outcome, await starter.start(push.repository, push.branch, push.commit, deliveryId), { ok: true });
      } catch (error) {
        outcome.error = (error as Error).message;
      }
      outcome.ms = Math.round((performance.now() - started) * 100) / 100;
      const { ok: _ok, ...line } = outcome;
      if (!outcome.ok) logger.error(line, 'rollout not started');
      else logger.info(line, outcome.alreadyStarted ? 'rollout was started already (a retry); not started again' : 'rollout started');
      return outcome;
    });

    const failures = rollouts.filter((rollout) => !rollout.ok);
    if (failures.length > 0 || unreadable.length > 0) {
      const failed = failures.map((f) => ({ repository: f.repository, branch: f.branch, url: starter.stateMachineArn, error: f.error }));
      const error = new DeliveryFailedError(failed, unreadable, rollouts.length);
      logger.error({ failed: failures.length + unreadable.length, attempted: rollouts.length }, error.message);
      throw error;
    }
    return { deliveries: [], rollouts, skipped, unrouted };
  };
}
