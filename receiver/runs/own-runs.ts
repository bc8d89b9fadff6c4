/**
 * The runs the receiver is asked for rather than pushed: a rollback, prepare or switch from the
 * admin side, a re-run of an earlier run, and a redelivery of a recorded delivery. What each may be
 * asked of, and the delivery each is recorded with, so that it survives a restart and waits its
 * turn like a push.
 */
import { triggerLabel } from '../../protocol';
import type { TriggerConfig } from '../config/schema';
import type { AcceptedDelivery } from '../delivery';
import { RunRequestRefused } from './run-errors';
import { type RecordedDelivery, RUN_PUSH_KEYS, type RunAction, type RunPush, type StoredRun, pickFields } from './run-record';

/** A configured trigger, as the runner holds it. */
export interface Trigger {
  config: TriggerConfig;
  label: string;
}

/** Why an admin run of this trigger cannot be queued, if it cannot. */
export function runRequestRefusal(
  trigger: Trigger | undefined,
  repository: string,
  branch: string,
  action: RunAction,
): RunRequestRefused | undefined {
  if (!trigger) return new RunRequestRefused(`no trigger is configured for repository "${repository}" branch "${branch}"`, 'not-found');
  if (!trigger.config.deploy)
    return new RunRequestRefused(
      `${trigger.label} has no deploy section: there is nothing to ${action.type === 'rollback' ? 'roll back' : action.type}`,
      'conflict',
    );
  return undefined;
}

/** The delivery an admin run is recorded with. */
export function ownRunDelivery(config: TriggerConfig, runId: string, action: RunAction): RecordedDelivery {
  const id = `admin-${runId}`;
  return {
    dedupeKey: `admin:${id}`,
    dedupeUntil: Date.now(),
    deliveryId: id,
    repository: config.repository,
    branch: config.branch,
    // A prepare or switch names its commit: the run is of that commit, as a push of it would be.
    commit: action.type === 'prepare' || action.type === 'switch' ? (action.to ?? '') : '',
    scheme: 'admin',
    receivedAt: new Date().toISOString(),
    action,
  };
}

/** Why run `runId` cannot be run again, if it cannot; `trigger` is its trigger in the config in use. */
export function rerunRefusal(
  runId: string,
  original: StoredRun,
  trigger: Trigger | undefined,
  rebuild: boolean | undefined,
): RunRequestRefused | undefined {
  // A run of the receiver's own is asked for again with its own command: what it does depends on now.
  if (original.scheme === 'admin') {
    const again =
      original.action?.type === 'prepare' || original.action?.type === 'switch'
        ? `triggler fleet-step ${original.action.type}`
        : 'triggler rollback';
    return new RunRequestRefused(`run ${runId} is a ${original.action?.type ?? 'receiver'} run: use ${again} again`, 'conflict');
  }
  if (!trigger) return new RunRequestRefused(`no trigger is configured for ${triggerLabel(original)} any more`, 'conflict');
  if (rebuild && !trigger.config.deploy)
    return new RunRequestRefused(`${trigger.label} has no deploy section: there is no release to rebuild`, 'conflict');
  return undefined;
}

/** The delivery a re-run is recorded with: the run's newest push (commit, pusher), and `rebuild` when asked. */
export function rerunDelivery(original: StoredRun, newId: string, rebuild: boolean | undefined): RecordedDelivery {
  return againDelivery(original, original.deliveryIds.at(-1) ?? '', `rerun:${newId}`, rebuild);
}

/** The delivery a redelivery is recorded with: the recorded delivery's own push, under its delivery id. */
export function redeliveryDelivery(delivery: AcceptedDelivery, newId: string): RecordedDelivery {
  return againDelivery(delivery, delivery.deliveryId, `redelivery:${newId}`, undefined);
}

/** A push made again, copied by the run push's keys, under a key nothing repeats. */
function againDelivery(from: RunPush, deliveryId: string, dedupeKey: string, rebuild: boolean | undefined): RecordedDelivery {
  const { action: _action, ...push } = pickFields(from, RUN_PUSH_KEYS);
  return {
    ...push,
    ...(rebuild ? { action: { type: 'rebuild' as const } } : {}),
    dedupeKey,
    // Nothing repeats this key: it need not be remembered.
    dedupeUntil: 0,
    deliveryId,
    receivedAt: new Date().toISOString(),
  };
}

/** Why a recorded delivery's push cannot be run again, if it cannot; `trigger` is its trigger in the config in use. */
export function redeliveryRefusal(delivery: AcceptedDelivery, trigger: Trigger | undefined): RunRequestRefused | undefined {
  if (!trigger) return new RunRequestRefused(`no trigger is configured for ${triggerLabel(delivery)} any more`, 'conflict');
  return undefined;
}
