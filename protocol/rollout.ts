/**
 * What the parts of a fleet rollout agree on: the senders that start a rollout, the state machine
 * that runs it, the Command document it sends to the hosts and the `triggler fleet` commands that
 * read it. Pure data and functions; the state machine's definition lives in the CDK app, the host
 * step in `triggler fleet-step`.
 */
import { createHash } from 'node:crypto';

/** The execution input a sender gives the rollout state machine: exactly these fields. */
export interface RolloutInput {
  /** `<repository>@<branch>`, the coalescing key. */
  trigger: string;
  repository: string;
  branch: string;
  /** The pushed commit, the whole id (40 or 64 lowercase hex digits). */
  commit: string;
  deliveryId: string;
  /**
   * Never set by a sender: `triggler fleet rerun --failed-only` names the hosts that failed, and
   * the rollout uses these instance ids (those of them that still carry the fleet tag) instead of
   * snapshotting every instance by the tag.
   */
  instances?: string[];
}

/** The input of a rollout of only these instances (`triggler fleet rerun --failed-only`). */
export function rolloutInputOfInstances(input: RolloutInput, instances: readonly string[]): RolloutInput {
  return { ...input, instances: [...instances] };
}

export function rolloutInput(repository: string, branch: string, commit: string, deliveryId: string): RolloutInput {
  return { trigger: `${repository}@${branch}`, repository, branch, commit, deliveryId };
}

/** Step Functions allows 80 characters in an execution name; these stay safe in CloudWatch too. */
const EXECUTION_NAME_LENGTH = 80;
const DIGEST_LENGTH = 32;

/**
 * The execution's name: the same trigger and delivery id always give the same name, so a sender's
 * retry of StartExecution finds the execution it already started instead of starting a second
 * rollout. A readable prefix (the trigger, letters, digits, `-` and `_` only) and a digest of the
 * exact trigger and delivery id, which keeps names of different deliveries apart.
 */
export function rolloutExecutionName(trigger: string, deliveryId: string): string {
  const digest = createHash('sha256').update(`${trigger}\n${deliveryId}`).digest('hex').slice(0, DIGEST_LENGTH);
  const prefix = trigger
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, EXECUTION_NAME_LENGTH - DIGEST_LENGTH - 1);
  return prefix === '' ? digest : `${prefix}-${digest}`;
}

/** The steps the Command document runs on a host (`triggler fleet-step <step>`). */
export const FLEET_STEP_NAMES = ['prepare', 'switch', 'rollback', 'converge'] as const;
export type FleetStepName = (typeof FLEET_STEP_NAMES)[number];

/** The one JSON line `triggler fleet-step` prints: what the invocation's output keeps. */
export interface HostStepResult {
  status: string;
  runId: string | null;
  release: string | null;
  commit: string | null;
  host: string;
  error?: string;
}

/** How a rollout ended. `superseded`: a newer push to the same trigger took its place before it began. */
export const ROLLOUT_OUTCOMES = ['succeeded', 'failed', 'rolled-back', 'superseded'] as const;
export type RolloutOutcome = (typeof ROLLOUT_OUTCOMES)[number];

/** One host's part in a rollout: the SSM invocation status and the step's line, per step it ran. */
export interface HostRolloutSteps {
  instanceId: string;
  prepare?: HostStepOutcome;
  switch?: HostStepOutcome;
  rollback?: HostStepOutcome;
}

export interface HostStepOutcome {
  /** The SSM invocation status: Success, Failed, TimedOut, Cancelled, Undeliverable, ... */
  invocation: string;
  /** The step's JSON line, when the host printed one. */
  result?: HostStepResult;
}

/**
 * What a finished rollout execution says of itself: its output when it succeeds, the `cause` (this
 * object as JSON) when it fails. `triggler fleet show` and the rollout notification read it.
 */
export interface RolloutSummary extends RolloutInput {
  outcome: RolloutOutcome;
  /** Why it failed or rolled back, in words; absent on success. */
  reason?: string;
  /** The fleet's instances as snapshot at the start; every step used these. */
  instances: string[];
  hosts: HostRolloutSteps[];
}

/** The SSM parameter that holds the fleet's current commit of a trigger; `converge` reads it. */
export function fleetCommitParameterName(prefix: string, repository: string, branch: string): string {
  return `${prefix}/${repository}/${branch}/commit`;
}

/**
 * Environment of the senders (CodeCommit sender, webhook relay) when the receiver is a fleet:
 * the state machine to start instead of POSTing to one host.
 */
export const ROLLOUT_STATE_MACHINE_ENV = 'TRIGGLER_ROLLOUT_STATE_MACHINE_ARN';

/** The state that waits for `triggler fleet promote` when `rollout.hold` is on. */
export const ROLLOUT_HOLD_STATE = 'Hold for promotion';

/**
 * A rollout summary from an execution's output or cause (JSON text), or undefined when the text is
 * none. The state machine lists one entry per host and step it ran; here each host's steps are
 * one entry again, in the order the hosts first appear.
 */
export function rolloutSummaryOf(text: string | null | undefined): RolloutSummary | undefined {
  if (!text) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const summary = value as Partial<RolloutSummary> | null;
  if (typeof summary !== 'object' || summary === null || typeof summary.outcome !== 'string' || !Array.isArray(summary.hosts))
    return undefined;
  const hosts = new Map<string, HostRolloutSteps>();
  for (const entry of summary.hosts) {
    const seen = hosts.get(entry.instanceId);
    hosts.set(entry.instanceId, seen ? { ...seen, ...entry } : { ...entry });
  }
  return { ...(summary as RolloutSummary), hosts: [...hosts.values()] };
}
