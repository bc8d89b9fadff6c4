/**
 * The sender's settings, all from its environment (the CDK stack sets them):
 *
 * - `TRIGGLER_ROUTES`: JSON array of `{ repository, branch, url, tokenParameter, scheme, iterations? }`,
 *   one entry per (repository, branch) and receiver.
 * - `TRIGGLER_TIMEOUT_MS`: per-delivery HTTP timeout (default 10000).
 * - `TRIGGLER_TOKEN_TTL_SECONDS`: how long a token read from SSM is reused (default 60).
 * - `TRIGGLER_COMMIT_DETAILS`: `true` to add the commit message and author (CodeCommit GetCommit).
 * - `TRIGGLER_ROLLOUT_STATE_MACHINE_ARN`: when the receiver is a fleet, the rollout state machine:
 *   each routed push starts one execution of it instead of an HTTP delivery. Then a route needs
 *   only `repository` and `branch` (it says which pushes start a rollout); its other fields are
 *   not used.
 */
import * as z from 'zod/mini';
import { en as englishMessages } from 'zod/locales';
import { ROLLOUT_STATE_MACHINE_ENV, SENDER_SCHEMES, SEED_MAX_ITERATIONS, triggerKey } from '../protocol';
import { stateMachineArnProblem } from './rollout-starter';

export interface SenderSettings {
  routes: SenderRouteTable;
  timeoutMs: number;
  tokenTtlSeconds: number;
  commitDetails: boolean;
}

/** The sender's settings when the receiver is a fleet: which pushes start a rollout, of which state machine. */
export interface RolloutSenderSettings {
  stateMachineArn: string;
  triggers: RolloutTriggerTable;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_TOKEN_TTL_SECONDS = 60;

/** Why a receiver URL is refused, or undefined when it is usable. */
export function receiverUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `must use http or https, not ${url.protocol.replace(':', '')}`;
  // Credentials in the URL would end up in logs and error messages; tokens live in SSM.
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password';
  if (url.search !== '' || url.hash !== '') return 'must not have a query or fragment (the trigger path is appended to it)';
  return undefined;
}

/** The base a trigger path is appended to: no trailing slash. */
function receiverBase(text: string): string {
  const url = new URL(text);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** An SSM parameter (SecureString) name or ARN, as a route names its token. */
export const tokenParameterSchema = z
  .string()
  .check(
    z.minLength(1, 'must not be empty'),
    z.maxLength(2048, 'must be at most 2048 characters'),
    z.regex(/^\S+$/, 'must be an SSM parameter name or ARN, without spaces'),
  );

const nameWithoutNul = (max: number) =>
  z.string().check(
    z.minLength(1, 'must not be empty'),
    z.maxLength(max, `must be at most ${max} characters`),
    z.refine((s) => !s.includes('\u0000'), 'must not contain NUL'),
  );

// zod/mini, not zod: the same checks at a fraction of the bundle size and cold-start cost.
const routeSchema = z.strictObject({
  repository: nameWithoutNul(256),
  branch: nameWithoutNul(256),
  /** The receiver's base URL without a trailing slash; the scheme's path is appended to it. */
  url: z.string().check(
    z.superRefine((text, ctx) => {
      const problem = receiverUrlProblem(text);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: text });
    }),
  ),
  /** SSM parameter (SecureString) holding the token shared with the receiver. */
  tokenParameter: tokenParameterSchema,
  /** @default "standard" */
  scheme: z._default(z.enum(SENDER_SCHEMES), 'standard'),
  /** Seed-scheme hash rounds; absent means the seed default (1000). */
  iterations: z.optional(z.int().check(z.minimum(1), z.maximum(SEED_MAX_ITERATIONS))),
});

/** One entry of `TRIGGLER_ROUTES`: the contract between the stack, which writes the routes, and the sender. */
export type SenderRoute = z.output<typeof routeSchema>;

const routesSchema = z.array(routeSchema).check(
  z.superRefine((routes, ctx) => {
    const seen = new Map<string, number>();
    routes.forEach((route, index) => {
      const key = `${triggerKey(route.repository, route.branch)}\u0000${receiverBase(route.url)}`;
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        ctx.addIssue({ code: 'custom', path: [index], message: `repeats [${earlier}]: same repository, branch and url`, input: route });
      }
      seen.set(key, index);
    });
  }),
);

export class SenderConfigError extends Error {
  constructor(
    message: string,
    readonly problems: string[],
  ) {
    super(message);
    this.name = 'SenderConfigError';
  }
}

/** Routes by (repository, branch). One branch may go to several receivers. */
export class SenderRouteTable {
  private readonly byTrigger = new Map<string, SenderRoute[]>();

  constructor(readonly routes: readonly SenderRoute[]) {
    for (const route of routes) {
      const key = triggerKey(route.repository, route.branch);
      const list = this.byTrigger.get(key);
      if (list) list.push(route);
      else this.byTrigger.set(key, [route]);
    }
  }

  routesFor(repository: string, branch: string): readonly SenderRoute[] {
    return this.byTrigger.get(triggerKey(repository, branch)) ?? [];
  }
}

/** The triggers whose pushes start a rollout (a fleet's routes: repository and branch). */
export class RolloutTriggerTable {
  private readonly keys: Set<string>;

  constructor(readonly triggers: readonly { repository: string; branch: string }[]) {
    this.keys = new Set(triggers.map((trigger) => triggerKey(trigger.repository, trigger.branch)));
  }

  has(repository: string, branch: string): boolean {
    return this.keys.has(triggerKey(repository, branch));
  }
}

/** "TRIGGLER_ROUTES[1].url: must not carry a user name or password" for each problem. */
export function describeIssues(variable: string, error: z.core.$ZodError): string[] {
  return error.issues.map((issue) => {
    const where = issue.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('');
    return `${variable}${where}: ${issue.message}`;
  });
}

/** Parses the `TRIGGLER_ROUTES` JSON; throws SenderConfigError naming every bad field. */
export function parseSenderRoutes(json: string | undefined, variable = 'TRIGGLER_ROUTES'): SenderRouteTable {
  const routes = parseJsonSetting(json, variable, routesSchema);
  return new SenderRouteTable(routes.map((route) => ({ ...route, url: receiverBase(route.url) })));
}

// Not strict: a fleet's routes may still carry the fields of a host's; only these two are read.
const rolloutTriggersSchema = z.array(z.object({ repository: nameWithoutNul(256), branch: nameWithoutNul(256) }));

/** Parses `TRIGGLER_ROUTES` as a fleet reads it: repository and branch of each route. */
export function parseRolloutTriggers(json: string | undefined, variable = 'TRIGGLER_ROUTES'): RolloutTriggerTable {
  return new RolloutTriggerTable(parseJsonSetting(json, variable, rolloutTriggersSchema));
}

/** A JSON setting checked against its schema; throws SenderConfigError naming every bad field, never quoting the text. */
function parseJsonSetting<Schema extends z.ZodMiniType>(json: string | undefined, variable: string, schema: Schema): z.output<Schema> {
  if (json === undefined || json.trim() === '') {
    throw new SenderConfigError(`${variable} is not set: it must be a JSON array of routes`, [`${variable}: is not set`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    // Only the position: the parser's message quotes the text, which is not for logs.
    const position = /position ([0-9]+)/.exec((error as Error).message)?.[1];
    const problem = `${variable}: is not valid JSON${position !== undefined ? ` (at position ${position})` : ''}`;
    throw new SenderConfigError(problem, [problem]);
  }
  // zod/mini carries no messages of its own; English ones for this parse only, not process-wide.
  const result = schema.safeParse(raw, { error: englishMessages().localeError });
  if (!result.success) {
    const problems = describeIssues(variable, result.error);
    throw new SenderConfigError(`${variable} is not valid:\n  ${problems.join('\n  ')}`, problems);
  }
  return result.data;
}

function integerSetting(env: NodeJS.ProcessEnv, variable: string, fallback: number, min: number, max: number): number {
  const text = env[variable];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!/^\s*[0-9]+\s*$/.test(text) || value < min || value > max) {
    const problem = `${variable}: must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`;
    throw new SenderConfigError(problem, [problem]);
  }
  return value;
}

function booleanSetting(env: NodeJS.ProcessEnv, variable: string): boolean {
  const text = env[variable]?.trim().toLowerCase();
  if (text === undefined || text === '' || text === 'false' || text === '0') return false;
  if (text === 'true' || text === '1') return true;
  const problem = `${variable}: must be true or false, got ${JSON.stringify(env[variable])}`;
  throw new SenderConfigError(problem, [problem]);
}

/** Every sender setting from the environment; throws SenderConfigError naming the variable. */
export function senderSettingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): SenderSettings {
  return {
    routes: parseSenderRoutes(env.TRIGGLER_ROUTES),
    // Lambda's own limit is 15 minutes; a delivery never needs longer.
    timeoutMs: integerSetting(env, 'TRIGGLER_TIMEOUT_MS', DEFAULT_TIMEOUT_MS, 1, 900_000),
    // 0 turns the cache off (every delivery reads SSM).
    tokenTtlSeconds: integerSetting(env, 'TRIGGLER_TOKEN_TTL_SECONDS', DEFAULT_TOKEN_TTL_SECONDS, 0, 86_400),
    commitDetails: booleanSetting(env, 'TRIGGLER_COMMIT_DETAILS'),
  };
}

/**
 * The fleet settings when `TRIGGLER_ROLLOUT_STATE_MACHINE_ARN` is set, else undefined (the sender
 * delivers over HTTP); throws SenderConfigError naming the variable.
 */
export function rolloutSenderSettingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): RolloutSenderSettings | undefined {
  const arn = env[ROLLOUT_STATE_MACHINE_ENV]?.trim();
  if (arn === undefined || arn === '') return undefined;
  const problem = stateMachineArnProblem(arn);
  if (problem !== undefined)
    throw new SenderConfigError(`${ROLLOUT_STATE_MACHINE_ENV}: ${problem}`, [`${ROLLOUT_STATE_MACHINE_ENV}: ${problem}`]);
  return { stateMachineArn: arn, triggers: parseRolloutTriggers(env.TRIGGLER_ROUTES) };
}
