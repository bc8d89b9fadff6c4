/**
 * `triggler deliveries` and `triggler redeliver`: the receiver's recent deliveries, as its admin
 * listener keeps them (in memory: there is nothing to read when the receiver is down), and a new
 * run of an accepted one's push.
 *
 *   deliveries  newest first: accepted, duplicate and rejected (with the reason), their answers and runs
 *   redeliver   asks the receiver (with the admin credential from its state directory) to run an
 *               accepted delivery's push again, as a new run
 */
import { Command } from 'commander';
import { request } from 'undici';
import { isUnreachable, locateReceiver, postAdminAction } from './runs-source';
import { positiveInt } from './send-command';
import { table } from './table';

/** What `GET /deliveries` answers, as far as the table shows it. */
interface DeliveryRow {
  id: string;
  trigger: string;
  receivedAt: string;
  outcome: string;
  request: { method: string; path: string };
  answer: { status: number };
  reason?: string;
  run?: string;
}

const ADMIN_OPTION = ['-a, --admin <url>', "admin listener URL (default: the config's admin address, else http://127.0.0.1:5001)"] as const;
const CONFIG_OPTION = [
  '-c, --config <file>',
  'take the admin address (and the state directory) from this receiver config (default: ./receiver.json when it is here)',
] as const;

function deliveriesTable(deliveries: DeliveryRow[]): string {
  const rows = deliveries.map((d) => [
    d.id,
    d.receivedAt,
    d.trigger,
    d.outcome,
    String(d.answer.status),
    `${d.request.method} ${d.request.path}`.slice(0, 60),
    d.run ?? '',
    d.reason ?? '',
  ]);
  return table(['DELIVERY', 'RECEIVED', 'TRIGGER', 'OUTCOME', 'STATUS', 'REQUEST', 'RUN', 'REASON'], rows);
}

export function deliveriesCommands(): Command[] {
  const deliveries = new Command('deliveries')
    .description(
      "the receiver's recent deliveries, newest first: accepted, duplicate and rejected (with the reason), each with its answer and run",
    )
    .option(...ADMIN_OPTION)
    .option(...CONFIG_OPTION)
    .option('-t, --trigger <repository@branch>', "only this trigger's (`unknown`: requests that named no configured trigger)")
    .option('-n, --limit <n>', 'how many', positiveInt, 50)
    .option('--json', "print JSON (with each request's headers, secrets redacted, and each answer's body) instead of a table")
    .addHelpText(
      'after',
      "\nThe receiver keeps the newest limits.recentDeliveries per trigger, in memory: a restart starts empty. Each delivery's page is GET /deliveries/<id> on the admin listener.",
    )
    .action(async (options: { admin?: string; config?: string; trigger?: string; limit: number; json?: boolean }) => {
      const { admin } = locateReceiver(options);
      if (!admin)
        throw new Error('the config turns the admin listener off: the recent deliveries are kept by a receiver with its admin listener');
      const query = options.trigger === undefined ? '' : `?trigger=${encodeURIComponent(options.trigger)}`;
      const response = await request(`${admin}/deliveries${query}`, { headers: { accept: 'application/json' } }).catch((error: unknown) => {
        if (!isUnreachable(error)) throw error;
        throw new Error(
          `the receiver's admin listener at ${admin} did not answer (${(error as Error).message}): recent deliveries are kept in the receiver's memory, so they need it running`,
          { cause: error },
        );
      });
      const answer = (await response.body.json().catch(() => ({}))) as { deliveries?: DeliveryRow[]; unanswered?: number; error?: string };
      if (response.statusCode !== 200 || !answer.deliveries)
        throw new Error(
          response.statusCode === 404
            ? `the receiver at ${admin} keeps no deliveries (limits.recentDeliveries is 0, or it is older than this command)`
            : `the admin listener answered ${response.statusCode}: ${answer.error ?? 'no reason given'}`,
        );
      const shown = answer.deliveries.slice(0, options.limit);
      if (answer.unanswered) process.stderr.write(`${answer.unanswered} worker process(es) did not answer: their deliveries are missing\n`);
      process.stdout.write(
        options.json
          ? `${JSON.stringify(shown, null, 2)}\n`
          : shown.length
            ? `${deliveriesTable(shown)}\n`
            : `no deliveries${options.trigger === undefined ? ' yet' : ` for ${options.trigger}`}\n`,
      );
    });

  const redeliver = new Command('redeliver')
    .description("queue a new run of an accepted delivery's push (its commit, pusher and event), through the admin listener")
    .argument('<delivery-id>', 'from triggler deliveries or the deliveries page')
    .option(...ADMIN_OPTION)
    .option(...CONFIG_OPTION)
    .option('-d, --state-dir <dir>', "where the admin credential is (default: the config's, else /var/lib/triggler)")
    .addHelpText(
      'after',
      "\nA redelivery is a write: it needs the admin credential in <stateDir>/admin-token, which only the receiver's user (or root) can read.\n\nExample:\n  sudo -u triggler triggler redeliver d0mj3k2x1-17 --config /etc/triggler/receiver.json",
    )
    .action(async (id: string, options: { admin?: string; config?: string; stateDir?: string }) => {
      const queued = await postAdminAction(locateReceiver(options), 'a redelivery', `/deliveries/${encodeURIComponent(id)}/redeliver`);
      process.stdout.write(`queued run ${queued}, a redelivery of ${id}\n`);
    });
  return [deliveries, redeliver];
}
