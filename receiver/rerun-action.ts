/** The admin listener's re-run: `POST /runs/<id>/rerun` (with the admin credential) queues the run's trigger again. */
import type { AdminAction } from './http/admin-server';
import { NotAccepted } from './delivery';
import { type Runner, RunNotFound } from './runs/runner';

export function rerunAction(runner: Runner): AdminAction {
  return {
    path: /^\/runs\/([A-Za-z0-9_-]{1,64})\/rerun$/,
    async run([runId]) {
      try {
        const queued = await runner.rerun(runId!);
        return { status: 202, body: { status: 'queued', run: { id: queued.runId }, rerunOf: runId } };
      } catch (error) {
        if (error instanceof RunNotFound) return { status: 404, body: { error: `no run ${runId}` } };
        if (error instanceof NotAccepted) return { status: error.status, body: { error: error.clientMessage }, headers: { 'retry-after': String(error.retryAfterSeconds) } };
        return { status: 409, body: { error: (error as Error).message } };
      }
    },
  };
}
