/**
 * A fleet in the stack config: `receiver.hosts` above 1 and the `rollout` section, their defaults,
 * and what the stack derives from them (the fleet tag, the commit parameters' prefix, how long one
 * host step may take).
 */
import { z } from 'zod';
import { defaultTokenPrefix } from '../../protocol';
import type { StackConfig } from './schema';

/** The most hosts a fleet may have: past a few hundred, Run Command's own rate limits set the pace (docs/fleet.md). */
export const MAX_FLEET_HOSTS = 1000;

/** A CloudWatch alarm name: 1 to 255 characters, no control characters. */
const alarmName = z
  .string()
  .min(1)
  .max(255)
  .refine(
    (name) => ![...name].some((character) => character.charCodeAt(0) < 0x20 || character.charCodeAt(0) === 0x7f),
    'must be an alarm name without control characters',
  );

export const rolloutSchema = z.strictObject({
  canary: z
    .number()
    .int()
    .min(1)
    .default(1)
    .describe('Hosts switched first, alone; then bakeSeconds watching the alarms (and, with hold, a wait for `triggler fleet promote`).'),
  batchSize: z
    .union([
      z.number().int().min(1),
      z.string().regex(/^(?:100|[1-9][0-9]?)%$/, 'must be a count of hosts, or a percentage of the fleet from 1% to 100% such as "25%"'),
    ])
    .default('25%')
    .describe(
      'Hosts switched at once after the canary: a count, or a percentage of the fleet such as "25%" (rounded up, at least one host).',
    ),
  maxFailedHosts: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      'Hosts that may fail their switch (summed over the batches) before the rollout stops and rolls back every switched host. 0: the first failure does.',
    ),
  bakeSeconds: z
    .number()
    .int()
    .min(0)
    .max(86400)
    .default(300)
    .describe('How long the canary serves, watched by the alarms, before the batches begin. 0: no bake.'),
  alarms: z
    .array(alarmName)
    .default([])
    .describe(
      "CloudWatch alarm names (in the stack's region): any in ALARM during the bake or after a batch stops the rollout and rolls it back.",
    ),
  hold: z
    .boolean()
    .default(false)
    .describe("Pause after the canary's bake until `triggler fleet promote` (or `triggler fleet rollback`): an approval gate."),
});

export type RolloutConfig = z.output<typeof rolloutSchema>;

/** Whether the receiver runs on a fleet of hosts, rolled out to by the state machine. */
export function isFleet(config: Pick<StackConfig, 'receiver'>): boolean {
  return config.receiver.hosts > 1;
}

/** The rollout settings of a fleet, with every default filled in (a fleet without a rollout section takes them all). */
export function rolloutSettingsOf(config: Pick<StackConfig, 'rollout'>): RolloutConfig {
  return config.rollout ?? rolloutSchema.parse({});
}

/** The tag key every fleet host carries; its value is the stack name, so two stacks' fleets stay apart. */
export const FLEET_TAG_KEY = 'TrigglerFleet';

export function fleetTagOf(config: Pick<StackConfig, 'stackName'>): { key: string; value: string } {
  return { key: FLEET_TAG_KEY, value: config.stackName };
}

/**
 * Where the fleet's commit parameters live: `/<stackName in kebab case>/fleet`, beside the default
 * token prefix (/git-triggler/fleet for the default stack name). From the stack name, which is
 * unique in an account and region, so two stacks' fleets never share a parameter.
 */
export function fleetCommitPrefixOf(config: Pick<StackConfig, 'stackName'>): string {
  return defaultTokenPrefix(config.stackName).replace(/\/tokens$/, '/fleet');
}

/** Run Command's longest step (aws:runShellScript's timeoutSeconds). */
export const MAX_STEP_TIMEOUT_SECONDS = 172800;
/** What a step does besides the command and the health check: fetch, lay out, activate, and a joining host's wait for its receiver. */
const STEP_MARGIN_SECONDS = 900;

/** How long one host step may take: the slowest trigger's command and health check, and the margin. */
export function fleetStepTimeoutSecondsOf(config: Pick<StackConfig, 'triggers'>): number {
  const longest = Math.max(
    ...config.triggers.map((trigger) => trigger.timeoutSeconds + (trigger.deploy?.healthCheck?.timeoutSeconds ?? 0)),
  );
  return Math.min(MAX_STEP_TIMEOUT_SECONDS, longest + STEP_MARGIN_SECONDS);
}
