/**
 * The webhook relay's settings: one JSON object in `TRIGGLER_RELAY` (the CDK stack sets it):
 *
 *   { "receiverUrl": "http://10.0.0.10:5000", "timeoutMs": 8000, "bodyLimitBytes": 5242880,
 *     "tokenTtlSeconds": 60, "tokenGraceSeconds": 900,
 *     "routes": [{ "provider": "github", "repository": "Codertocat/Hello-World",
 *                  "tokenParameter": "/git-triggler/tokens/github/Codertocat/Hello-World" }] }
 *
 * One route per (provider, repository, token): the relay tries the tokens of the routes whose
 * repository the payload claims, as the receiver does with its triggers.
 *
 * When the receiver is a fleet, `TRIGGLER_ROLLOUT_STATE_MACHINE_ARN` names the rollout state
 * machine: a verified push starts a rollout instead of going to a host, there is no `receiverUrl`,
 * and each route lists the `branches` that have a trigger (a push to another branch runs nothing,
 * as on one host).
 */
import * as z from 'zod/mini';
import { en as englishMessages } from 'zod/locales';
import {
  PROVIDER_WEBHOOK_PATHS,
  providerOfPath,
  ROLLOUT_STATE_MACHINE_ENV,
  type ProviderName,
  type ProviderWebhookPath,
} from '../protocol';
import { stateMachineArnProblem } from './rollout-starter';
import { describeIssues, receiverUrlProblem, tokenParameterSchema } from './sender-routes';

export const RELAY_VARIABLE = 'TRIGGLER_RELAY';

export interface RelayRoute {
  /** The `/hooks/<provider>` path the provider posts to. */
  provider: ProviderWebhookPath;
  /** The repository as the receiver's trigger names it. */
  repository: string;
  /** SSM parameter (SecureString) of the webhook's secret. */
  tokenParameter: string;
  /** A fleet's: the branches of this repository that have a trigger. */
  branches?: string[];
}

export interface RelaySettings {
  /** The receiver's base URL, without a trailing slash; empty when the receiver is a fleet. */
  receiverUrl: string;
  /** The fleet's rollout state machine: verified pushes start a rollout instead of being forwarded. */
  rolloutStateMachineArn?: string;
  /** The relay answers within this long of its start, 503 when the receiver has not by then. */
  timeoutMs: number;
  /** The receiver's `limits.bodyBytes`: a larger body is a 413 here. */
  bodyLimitBytes: number;
  tokenTtlSeconds: number;
  tokenGraceSeconds: number;
  routes: RelayRoute[];
}

const settingsSchema = z.strictObject({
  // The sender's rule (receiverUrlProblem), reported as one message.
  receiverUrl: z.optional(
    z
      .string()
      .check(
        z.refine(
          (text) => receiverUrlProblem(text) === undefined,
          'must be an http:// or https:// URL without credentials, query or fragment',
        ),
      ),
  ),
  timeoutMs: z.int().check(z.minimum(100), z.maximum(900_000)),
  bodyLimitBytes: z.int().check(z.minimum(1), z.maximum(6 * 1024 * 1024)),
  tokenTtlSeconds: z.int().check(z.minimum(0), z.maximum(86_400)),
  tokenGraceSeconds: z.int().check(z.minimum(0), z.maximum(30 * 86_400)),
  routes: z
    .array(
      z.strictObject({
        provider: z.enum(PROVIDER_WEBHOOK_PATHS),
        repository: z.string().check(z.minLength(1), z.maxLength(256)),
        tokenParameter: tokenParameterSchema,
        branches: z.optional(
          z.array(z.string().check(z.minLength(1), z.maxLength(256))).check(z.minLength(1, 'must name at least one branch')),
        ),
      }),
    )
    .check(z.minLength(1, 'must hold at least one route')),
});

export class RelayConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`${RELAY_VARIABLE} is not valid:\n  ${problems.join('\n  ')}`);
    this.name = 'RelayConfigError';
  }
}

/**
 * One JSON object in an environment variable, checked against its schema; `fail` makes the error
 * that names every problem (never quoting the text, which may hold anything).
 */
export function jsonVariable<Schema extends z.ZodMiniType>(
  env: NodeJS.ProcessEnv,
  variable: string,
  schema: Schema,
  fail: (problems: string[]) => Error,
): z.output<Schema> {
  const text = env[variable];
  if (text === undefined || text.trim() === '') throw fail([`${variable}: is not set`]);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw fail([`${variable}: is not valid JSON`]);
  }
  const result = schema.safeParse(raw, { error: englishMessages().localeError });
  if (!result.success) throw fail(describeIssues(variable, result.error));
  return result.data;
}

/** Parses `TRIGGLER_RELAY`; throws RelayConfigError naming every bad field (never quoting the text). */
export function relaySettingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): RelaySettings {
  const parsed = jsonVariable(env, RELAY_VARIABLE, settingsSchema, (problems) => new RelayConfigError(problems));
  const { receiverUrl, ...settings } = parsed;
  const stateMachineArn = env[ROLLOUT_STATE_MACHINE_ENV]?.trim() || undefined;
  if (stateMachineArn === undefined) {
    if (receiverUrl === undefined)
      throw new RelayConfigError([`${RELAY_VARIABLE}.receiverUrl: is required (unless ${ROLLOUT_STATE_MACHINE_ENV} is set)`]);
    return { ...settings, receiverUrl: receiverUrl.replace(/\/+$/, '') };
  }
  const problems = [
    ...[stateMachineArnProblem(stateMachineArn)].filter((p) => p !== undefined).map((p) => `${ROLLOUT_STATE_MACHINE_ENV}: ${p}`),
    ...settings.routes.flatMap((route, index) =>
      route.branches === undefined
        ? [`${RELAY_VARIABLE}.routes[${index}].branches: is required when ${ROLLOUT_STATE_MACHINE_ENV} is set`]
        : [],
    ),
  ];
  if (problems.length > 0) throw new RelayConfigError(problems);
  return { ...settings, receiverUrl: '', rolloutStateMachineArn: stateMachineArn };
}

/** The routes a provider's webhook may be verified by: Gitea's and Forgejo's paths take both. */
export function routesOfProvider(routes: readonly RelayRoute[], provider: ProviderName): RelayRoute[] {
  return routes.filter((route) => providerOfPath(route.provider) === provider);
}
