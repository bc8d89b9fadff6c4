/**
 * The writes the admin listener takes (each needs the admin credential; see http/admin-credential):
 *   POST /rollback {"repository", "branch", "to"?}      a rollback run of a deploy trigger
 *   POST /prepare {"repository", "branch", "commit"}   a run that prepares a commit's release (no switch; the whole commit id)
 *   POST /switch {"repository", "branch", "commit"}    a run that makes the prepared release of a commit current
 *   POST /runs/<id>/rerun {"rebuild"?}                 a new run of a run's trigger with its newest delivery
 *   POST /deliveries/<id>/redeliver                     a new run of a recorded accepted delivery's push
 * All are runs like any other: journalled, and waiting their turn on the trigger.
 */
import type { AcceptResult } from './delivery';
import { ReceiverError, type Reply } from './errors';
import type { AdminAction } from './http/admin-server';
import type { DeliveryHistory } from './http/delivery-recorder';
import type { Runner } from './runs/runner';

/** `deliveries`: the recorded deliveries a redelivery is asked of. @default none: no redeliver */
export function adminActions(runner: Runner, deliveries?: DeliveryHistory): AdminAction[] {
  return [
    ...(deliveries ? [redeliver(runner, deliveries)] : []),
    {
      path: /^\/rollback$/,
      async run(_params, body) {
        const read = bodyFields(body, '{"repository", "branch", "to"?}');
        if ('refused' in read) return read.refused;
        const { repository, branch, to } = read.fields;
        if (typeof repository !== 'string' || typeof branch !== 'string' || (to !== undefined && (typeof to !== 'string' || to === ''))) {
          return {
            status: 400,
            body: { error: 'repository and branch must be strings, and to (a release id or a commit) a string if given' },
          };
        }
        return queued(runner.requestRun(repository, branch, { type: 'rollback', ...(to === undefined ? {} : { to }) }), {});
      },
    },
    deployStep(runner, 'prepare'),
    deployStep(runner, 'switch'),
    {
      path: /^\/runs\/([A-Za-z0-9_-]{1,64})\/rerun$/,
      async run([runId], body) {
        const read = body.length === 0 ? { fields: {} } : bodyFields(body, '{"rebuild"?: true}');
        if ('refused' in read) return read.refused;
        const { rebuild } = read.fields;
        if (rebuild !== undefined && typeof rebuild !== 'boolean') return { status: 400, body: { error: 'rebuild must be true or false' } };
        return queued(runner.rerun(runId!, { rebuild: rebuild === true }), { rerunOf: runId, ...(rebuild === true ? { rebuild } : {}) });
      },
    },
  ];
}

/** `POST /deliveries/<id>/redeliver`: the push of an accepted delivery, run again as a new run. */
function redeliver(runner: Runner, deliveries: DeliveryHistory): AdminAction {
  return {
    path: /^\/deliveries\/([A-Za-z0-9_-]{1,64})\/redeliver$/,
    async run([id]) {
      const recorded = await deliveries.get(id!);
      if (!recorded)
        throw new ReceiverError('not-found', `no recorded delivery ${id} (only the newest are kept, and none across a restart)`);
      if (!recorded.push)
        throw new ReceiverError(
          'conflict',
          `delivery ${id} was ${recorded.view.outcome === 'accepted' ? 'accepted, but its push was not kept' : recorded.view.outcome}: only an accepted delivery can be delivered again`,
        );
      return queued(runner.redeliver(recorded.push, id!), { redeliveryOf: id });
    },
  };
}

/**
 * A prepare names the whole commit, which its release records and every later step compares with;
 * a switch may name a prefix of it, as a rollback may.
 */
const COMMIT_OF = {
  prepare: { pattern: /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/, words: 'the whole commit id (40 or 64 lowercase hex digits)' },
  switch: { pattern: /^[0-9a-f]{7,64}$/, words: 'a commit id (7 to 64 lowercase hex digits)' },
} as const;

/** `POST /prepare` or `/switch`: one half of a deploy, of one exact commit (a fleet's rollout asks each host for them). */
function deployStep(runner: Runner, step: 'prepare' | 'switch'): AdminAction {
  return {
    path: new RegExp(`^/${step}$`),
    async run(_params, body) {
      const read = bodyFields(body, '{"repository", "branch", "commit"}');
      if ('refused' in read) return read.refused;
      const { repository, branch, commit } = read.fields;
      if (
        typeof repository !== 'string' ||
        typeof branch !== 'string' ||
        typeof commit !== 'string' ||
        !COMMIT_OF[step].pattern.test(commit) ||
        /^0+$/.test(commit)
      ) {
        return { status: 400, body: { error: `repository and branch must be strings, and commit ${COMMIT_OF[step].words}` } };
      }
      return queued(runner.requestRun(repository, branch, { type: step, to: commit }), {});
    },
  };
}

/** The JSON object a write's body holds, or the 400 that says what it should hold. */
function bodyFields(body: Buffer, shape: string): { fields: Record<string, unknown> } | { refused: Reply } {
  let fields: unknown;
  try {
    fields = JSON.parse(body.toString('utf8'));
  } catch {
    fields = undefined;
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields))
    return { refused: { status: 400, body: { error: `the body must be JSON: ${shape}` } } };
  return { fields: fields as Record<string, unknown> };
}

/** 202 naming the queued run; a refused request, or a receiver that cannot take it, is answered by the admin listener from its code. */
async function queued(request: Promise<AcceptResult>, extra: Record<string, unknown>): Promise<Reply> {
  const { runId } = await request;
  return { status: 202, body: { status: 'accepted', run: { id: runId }, ...extra } };
}
