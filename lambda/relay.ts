/**
 * The webhook relay: a Lambda Function URL (public HTTPS, AWS's certificate) in front of a receiver
 * that has no internet ingress. Providers post their native webhooks to `/hooks/<provider>`; the
 * relay verifies the signature with the webhook's token from SSM *before* anything reaches the
 * host, so a flood of unsigned or forged requests costs Lambda invocations (bounded by the
 * function's reserved concurrency), not the receiver's memory. A verified request goes on
 * verbatim (method, path, the headers the receiver reads, the raw body) to the receiver's private
 * address, which verifies it again; the receiver's answer goes back to the provider.
 *
 * Answers of its own: 401 for a missing or bad signature (never forwarded), 413 for a body over
 * the receiver's limit, 200 for a verified ping (the host is not woken), and 503 with Retry-After
 * when the receiver cannot be reached or has not answered within the relay's time bound, which is
 * kept under the providers' own timeouts (GitHub waits 10 s), so the provider records a failed
 * delivery that can be redelivered.
 *
 * When the receiver is a fleet (`TRIGGLER_ROLLOUT_STATE_MACHINE_ARN`), a verified push is not
 * forwarded: each pushed branch with a trigger starts one rollout, named from the trigger and the
 * provider's delivery id, so a redelivery starts no second rollout. 202 names the rollouts; 200
 * says why nothing started (another event, a branch without a trigger); 503 when Step Functions
 * did not start one (the provider redelivers; the rollouts already started are found by name).
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import {
  PROVIDER_WEBHOOK_PATHS,
  claimedRepository,
  parseJsonObject,
  payloadDeliveryId,
  providerDeliveryId,
  providerHeaders,
  providerOfPath,
  providerRequestHeaders,
  readProviderPush,
  readProviderSignature,
  ROLLOUT_STATE_MACHINE_ENV,
  triggerKey,
  triggerNamesRepository,
  UNCLAIMED_BODY_LIMIT,
  type HeaderReader,
  type ProviderName,
  type SignedProviderRequest,
} from '../protocol';
import { builtFromEnvironment, type Logger } from './log';
import { RolloutStarter, type RolloutStarted } from './rollout-starter';
import { relaySettingsFromEnvironment, routesOfProvider, type RelayRoute, type RelaySettings } from './relay-settings';
import { SsmTokenCache, TokenUnavailableError } from './ssm-token-cache';

export type RelayResult = APIGatewayProxyStructuredResultV2 & { statusCode: number; headers: Record<string, string>; body: string };
export type Relay = (
  event: APIGatewayProxyEventV2,
  context?: Pick<Context, 'awsRequestId' | 'getRemainingTimeInMillis'>,
) => Promise<RelayResult>;

/** Where the relay gets a webhook's accepted tokens (current, and previous within its grace). */
export interface AcceptedTokenReader {
  acceptedTokens(parameter: string): Promise<string[]>;
  forget(parameter: string): void;
}

export interface RelayDependencies {
  settings: RelaySettings;
  tokens: AcceptedTokenReader;
  logger: Logger;
  /** Starts a fleet's rollouts; given exactly when the settings name a rollout state machine. */
  rollouts?: RolloutStarter;
  /** Epoch milliseconds. @default Date.now */
  now?: () => number;
}

/** What a provider may try again later: the receiver was down, slow, or a token could not be read. */
const RETRY_AFTER_SECONDS = '60';
/** Stop waiting this long before Lambda's own timeout, so the answer is ours (a 503), not Lambda's. */
const DEADLINE_MARGIN_MS = 500;
/** A failed signature reads its tokens again at most this often per token (the secret may just have been rotated). */
const REFRESH_INTERVAL_MS = 5000;
/** Refusals logged one by one per reason per second in one execution environment; the rest are counted. */
const REFUSALS_LOGGED_PER_SECOND = 5;
const UNAUTHORIZED = 'unauthorized: unknown trigger or bad signature';

function answer(statusCode: number, body: Record<string, unknown>, headers: Record<string, string> = {}): RelayResult {
  return { statusCode, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(body) };
}

const retryLater = (error: string) => answer(503, { error }, { 'retry-after': RETRY_AFTER_SECONDS });

/** A refusal answered here, with its reason for the log (never a token). */
class Refusal {
  constructor(
    readonly result: RelayResult,
    readonly reason: string,
  ) {}
}

/**
 * Logs the first few refusals per reason each second and counts the rest, so a flood of forged
 * requests does not become a flood of log lines (each of which CloudWatch bills).
 */
class RefusalLog {
  private second = 0;
  private counts = new Map<string, number>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  refused(fields: Record<string, unknown>, reason: string): void {
    const second = Math.floor(this.now() / 1000);
    if (second !== this.second) {
      const unlogged = Object.fromEntries(
        [...this.counts].filter(([, n]) => n > REFUSALS_LOGGED_PER_SECOND).map(([r, n]) => [r, n - REFUSALS_LOGGED_PER_SECOND]),
      );
      if (Object.keys(unlogged).length > 0)
        this.logger.warn({ unlogged, second: this.second }, 'webhook refusals not logged one by one, by reason');
      this.second = second;
      this.counts = new Map();
    }
    const count = (this.counts.get(reason) ?? 0) + 1;
    this.counts.set(reason, count);
    if (count <= REFUSALS_LOGGED_PER_SECOND) this.logger.warn({ ...fields, reason }, 'webhook refused');
  }
}

function headerReader(event: APIGatewayProxyEventV2): HeaderReader {
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(event.headers ?? {})) if (value !== undefined) headers.set(name.toLowerCase(), value);
  return (name) => headers.get(name);
}

/** The request body as the provider sent it: Function URLs base64-encode bodies they do not take for text. */
function rawBody(event: APIGatewayProxyEventV2): Buffer {
  if (event.body === undefined || event.body === null) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

export function createRelay(dependencies: RelayDependencies): Relay {
  const { settings, tokens } = dependencies;
  const now = dependencies.now ?? Date.now;
  const refusals = new RefusalLog(dependencies.logger, now);
  const lastRefresh = new Map<string, number>();
  const served = new Set(PROVIDER_WEBHOOK_PATHS.filter((path) => routesOfProvider(settings.routes, providerOfPath(path)).length > 0));

  /** The routes whose tokens may verify this request: those of the repository the body claims. */
  function candidates(signed: SignedProviderRequest): RelayRoute[] {
    const routes = routesOfProvider(settings.routes, signed.provider);
    const payload = parseJsonObject(signed.payload);
    const claimed = payload ? claimedRepository(signed.provider, payload) : undefined;
    if (claimed) return routes.filter((route) => triggerNamesRepository(route.repository, claimed));
    // Names no repository (an organisation's ping, a body that is not JSON): every token of the
    // provider, but only over a small body, as the receiver does.
    if (signed.payload.length > UNCLAIMED_BODY_LIMIT)
      throw new Refusal(answer(401, { error: UNAUTHORIZED }), 'body names no repository and is too large to try every token');
    return routes;
  }

  async function verifiedBy(parameter: string, signed: SignedProviderRequest): Promise<boolean> {
    if ((await tokens.acceptedTokens(parameter)).some((token) => signed.verify(token))) return true;
    const at = now();
    if (at - (lastRefresh.get(parameter) ?? Number.NEGATIVE_INFINITY) < REFRESH_INTERVAL_MS) return false;
    lastRefresh.set(parameter, at);
    tokens.forget(parameter);
    return (await tokens.acceptedTokens(parameter)).some((token) => signed.verify(token));
  }

  /** The routes whose token verifies the request; throws a Refusal when none does. */
  async function verify(signed: SignedProviderRequest): Promise<RelayRoute[]> {
    const routes = candidates(signed);
    const parameters = [...new Set(routes.map((route) => route.tokenParameter))];
    if (parameters.length === 0) throw new Refusal(answer(401, { error: UNAUTHORIZED }), 'no trigger for this repository');
    let unavailable: TokenUnavailableError | undefined;
    for (const parameter of parameters) {
      try {
        if (await verifiedBy(parameter, signed)) return routes.filter((route) => route.tokenParameter === parameter);
      } catch (error) {
        if (!(error instanceof TokenUnavailableError)) throw error;
        unavailable ??= error;
      }
    }
    if (unavailable) throw new Refusal(retryLater('tokens are unavailable; try again'), unavailable.message);
    throw new Refusal(answer(401, { error: UNAUTHORIZED }), `bad ${signed.signatureName}`);
  }

  async function forward(provider: ProviderName, path: string, header: HeaderReader, body: Buffer, deadline: number): Promise<RelayResult> {
    const headers: Record<string, string> = {};
    for (const name of providerRequestHeaders(provider)) {
      const value = header(name);
      if (value !== undefined) headers[name] = value;
    }
    const budgetMs = Math.floor(deadline - now());
    if (budgetMs <= 0) throw new Refusal(retryLater('the receiver did not answer in time; redeliver later'), 'no time left to forward');
    try {
      const response = await fetch(settings.receiverUrl + path, {
        method: 'POST',
        headers,
        body,
        // A 3xx is an answer from the wrong place: passed back, never followed.
        redirect: 'manual',
        signal: AbortSignal.timeout(budgetMs),
      });
      const text = await response.text();
      const passed: Record<string, string> = { 'content-type': response.headers.get('content-type') ?? 'text/plain' };
      const retryAfter = response.headers.get('retry-after');
      if (retryAfter !== null) passed['retry-after'] = retryAfter;
      return { statusCode: response.status, headers: passed, body: text };
    } catch (error) {
      const failure = error as { name?: string; cause?: { code?: string; message?: string }; message?: string };
      const timedOut = failure.name === 'TimeoutError' || failure.name === 'AbortError';
      const reason = timedOut
        ? `the receiver did not answer within ${budgetMs} ms`
        : `the receiver is unreachable: ${failure.cause?.code ?? failure.cause?.message ?? failure.message ?? 'request failed'}`;
      throw new Refusal(
        retryLater(timedOut ? 'the receiver did not answer in time; redeliver later' : 'the receiver is unreachable; redeliver later'),
        reason,
      );
    }
  }

  /** A fleet's answer to a verified request: one rollout per pushed branch with a trigger. */
  async function startRollouts(
    starter: RolloutStarter,
    signed: SignedProviderRequest,
    routes: RelayRoute[],
    header: HeaderReader,
  ): Promise<RelayResult> {
    const pushEvent = providerHeaders(signed.provider).push;
    if (signed.event !== pushEvent)
      return answer(200, { status: 'ignored', reason: `event ${(signed.event ?? '(none)').slice(0, 64)} is not ${pushEvent}` });
    const payload = parseJsonObject(signed.payload);
    if (!payload) throw new Refusal(answer(400, { error: 'body is not a JSON object' }), 'body is not a JSON object');
    const push = readProviderPush(signed.provider, payload);
    if ('field' in push) throw new Refusal(answer(400, { error: `${push.field} ${push.reason}` }), `${push.field} ${push.reason}`);
    const deliveryId = providerDeliveryId(signed.provider, header) ?? payloadDeliveryId(signed.payload);
    const starts = new Map<string, { repository: string; branch: string; commit: string }>();
    const ignored: string[] = [];
    for (const update of push.updates) {
      if (update.kind !== 'branch') {
        ignored.push(
          update.kind === 'branch-deleted'
            ? `branch ${update.branch} was deleted`
            : `${update.kind === 'tag' ? `tag ${update.tag}` : update.ref} is not a branch`,
        );
        continue;
      }
      const triggered = routes.filter((route) => route.branches?.includes(update.branch));
      if (triggered.length === 0) ignored.push(`no trigger for branch ${update.branch.slice(0, 200)}`);
      for (const route of triggered) {
        starts.set(triggerKey(route.repository, update.branch), {
          repository: route.repository,
          branch: update.branch,
          commit: update.commit,
        });
      }
    }
    const extra = ignored.length > 0 ? { ignored } : {};
    if (starts.size === 0) return answer(200, { status: 'ignored', delivery: deliveryId, ...extra });
    const rollouts: (RolloutStarted & { trigger: string })[] = [];
    for (const { repository, branch, commit } of starts.values()) {
      try {
        rollouts.push({ trigger: `${repository}@${branch}`, ...(await starter.start(repository, branch, commit, deliveryId)) });
      } catch (error) {
        throw new Refusal(retryLater('the rollout did not start; redeliver later'), (error as Error).message);
      }
    }
    return answer(202, {
      status: 'accepted',
      delivery: deliveryId,
      rollouts: rollouts.map((r) => ({ trigger: r.trigger, execution: r.executionName, alreadyStarted: r.alreadyStarted })),
      ...extra,
    });
  }

  return async (event, context) => {
    const started = now();
    const remainingMs = context?.getRemainingTimeInMillis?.();
    const deadline = Math.min(
      started + settings.timeoutMs,
      remainingMs === undefined ? Number.POSITIVE_INFINITY : started + remainingMs - DEADLINE_MARGIN_MS,
    );
    const path = event.rawPath ?? '';
    const webhook = PROVIDER_WEBHOOK_PATHS.find((name) => path === `/hooks/${name}` && served.has(name));
    const header = headerReader(event);
    const provider = webhook === undefined ? undefined : providerOfPath(webhook);
    const fields = {
      requestId: context?.awsRequestId,
      path: path.slice(0, 100),
      provider,
      delivery: provider === undefined ? undefined : providerDeliveryId(provider, header)?.slice(0, 100),
      source: event.requestContext?.http?.sourceIp,
    };
    try {
      if (webhook === undefined || provider === undefined)
        throw new Refusal(answer(404, { error: `no such webhook: ${path.slice(0, 64)}` }), 'unknown path');
      const method = event.requestContext?.http?.method ?? '';
      if (method !== 'POST')
        throw new Refusal(answer(405, { error: 'method not allowed: use POST' }, { allow: 'POST' }), `method ${method.slice(0, 10)}`);
      const body = rawBody(event);
      if (body.length > settings.bodyLimitBytes) {
        throw new Refusal(answer(413, { error: `body is larger than ${settings.bodyLimitBytes} bytes` }), 'body too large');
      }
      const signed = readProviderSignature(provider, header, body);
      if ('unsigned' in signed) throw new Refusal(answer(401, { error: UNAUTHORIZED }), `unsigned: ${signed.unsigned}`);
      const verified = await verify(signed);
      if (signed.ping) {
        dependencies.logger.info({ ...fields, ms: now() - started }, 'provider ping verified; answered without the receiver');
        return answer(200, { status: 'ok', event: signed.event });
      }
      if (dependencies.rollouts) {
        const result = await startRollouts(dependencies.rollouts, signed, verified, header);
        dependencies.logger.info(
          { ...fields, status: result.statusCode, answer: JSON.parse(result.body) as unknown, ms: now() - started },
          'verified push answered by starting rollouts',
        );
        return result;
      }
      const result = await forward(provider, path, header, body, deadline);
      dependencies.logger.info({ ...fields, status: result.statusCode, ms: now() - started }, 'forwarded to the receiver');
      return result;
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      refusals.refused({ ...fields, status: error.result.statusCode }, error.reason);
      return error.result;
    }
  };
}

/** The relay built from the environment, once per execution environment. */
const relayFromEnvironment = builtFromEnvironment(
  'relay',
  ['TRIGGLER_RELAY', ROLLOUT_STATE_MACHINE_ENV],
  relaySettingsFromEnvironment,
  (settings, logger) => {
    // Bounded waits: a token read is on the provider's clock. AWS_ENDPOINT_URL_SSM points it elsewhere.
    const client = new SSMClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 } });
    const tokens = new SsmTokenCache({ client, ttlSeconds: settings.tokenTtlSeconds, graceSeconds: settings.tokenGraceSeconds });
    const rollouts =
      settings.rolloutStateMachineArn === undefined
        ? undefined
        : new RolloutStarter(
            new SFNClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 } }),
            settings.rolloutStateMachineArn,
          );
    return createRelay({ settings, tokens, logger, ...(rollouts ? { rollouts } : {}) });
  },
);

/** The Lambda entry point for the Function URL. */
export const handler = async (event: APIGatewayProxyEventV2, context: Context): Promise<RelayResult> =>
  relayFromEnvironment()(event, context);
