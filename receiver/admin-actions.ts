/**
 * The writes the admin listener takes (each needs the admin credential; see http/admin-credential):
 *   POST /rollback {"repository", "branch", "to"?}   a rollback run of a deploy trigger
 *   POST /runs/<id>/rerun                           a new run of a run's trigger with its newest delivery
 * Both are runs like any other: journalled, and waiting their turn on the trigger.
 */
import type { AcceptResult } from './delivery';
import type { Reply } from './errors';
import type { AdminAction } from './http/admin-server';
import type { Runner } from './runs/runner';

export function adminActions(runner: Runner): AdminAction[] {
  return [
    {
      path: /^\/rollback$/,
      async run(_params, body) {
        let fields: { repository?: unknown; branch?: unknown; to?: unknown };
        try {
          fields = JSON.parse(body.toString('utf8')) as typeof fields;
        } catch {
          return { status: 400, body: { error: 'the body must be JSON: {"repository", "branch", "to"?}' } };
        }
        const { repository, branch, to } = fields ?? {};
        if (typeof repository !== 'string' || typeof branch !== 'string' || (to !== undefined && (typeof to !== 'string' || to === ''))) {
          return { status: 400, body: { error: 'repository and branch must be strings, and to (a release id or a commit) a string if given' } };
        }
        return queued(runner.requestRun(repository, branch, { type: 'rollback', ...(to === undefined ? {} : { to }) }), {});
      },
    },
    {
      path: /^\/runs\/([A-Za-z0-9_-]{1,64})\/rerun$/,
      run: ([runId]) => queued(runner.rerun(runId!), { rerunOf: runId }),
    },
  ];
}

/** 202 naming the queued run; a refused request, or a receiver that cannot take it, is answered by the admin listener from its code. */
async function queued(request: Promise<AcceptResult>, extra: Record<string, unknown>): Promise<Reply> {
  const { runId } = await request;
  return { status: 202, body: { status: 'accepted', run: { id: runId }, ...extra } };
}
