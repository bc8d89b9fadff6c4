/**
 * The sender Lambda: a CodeCommit repository trigger becomes one signed HTTP delivery per pushed
 * branch and route. Every record and every reference is handled. When any delivery fails the
 * others still go out, then the handler throws an error naming the failed pairs, so Lambda's
 * asynchronous retry and on-failure destination take over: a push is never lost silently.
 * When the receiver is a fleet (`TRIGGLER_ROLLOUT_STATE_MACHINE_ARN`), each push starts a rollout
 * instead (./rollout-sender).
 */
import { createHash } from 'node:crypto';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { CodeCommitTrigger, CodeCommitTriggerEvent, Context } from 'aws-lambda';
import {
  buildDeliveryRequest,
  deliveryUrl,
  ROLLOUT_STATE_MACHINE_ENV,
  triggerLabel,
  type DeliveryRequest,
  type PushData,
  type SenderScheme,
} from '../protocol';
import { builtFromEnvironment, type Logger } from './log';
import { CodeCommitDetailsReader, type CommitDetails, type CommitDetailsReader } from './sender-commit-details';
import { createRolloutSender } from './rollout-sender';
import { RolloutStarter } from './rollout-starter';
import {
  rolloutSenderSettingsFromEnvironment,
  senderSettingsFromEnvironment,
  type SenderRoute,
  type SenderRouteTable,
} from './sender-routes';
import { SsmTokenCache, type TokenReader } from './ssm-token-cache';

const BRANCH_REF_PREFIX = 'refs/heads/';
const TAG_REF_PREFIX = 'refs/tags/';
const USER_AGENT = 'git-triggler-sender';
/** Deliveries of one event in flight at once: a `push --all` must not open hundreds of sockets. */
const MAX_PARALLEL_DELIVERIES = 8;
/** Stop starting requests this long before Lambda's own timeout, so the failure is ours and named. */
const DEADLINE_MARGIN_MS = 1000;
const MAX_ERROR_BODY_CHARS = 120;

/** One branch tip from a CodeCommit trigger record. */
export interface BranchPush {
  repository: string;
  branch: string;
  ref: string;
  commit: string;
  region: string;
  account: string;
  /** The IAM identity that pushed (`userIdentityARN`). */
  pusher: string;
  eventId: string;
  /** ISO-8601 time of the push. */
  eventTime: string;
}

export type SkipReason = 'deleted' | 'tag' | 'not a branch';

export interface SkippedReference {
  repository: string;
  ref: string;
  reason: SkipReason;
}

/** A record the sender could not read; reported as a failure after the rest is delivered. */
export interface UnreadableRecord {
  record: string;
  reason: string;
}

export interface DeliveryOutcome {
  repository: string;
  branch: string;
  commit: string;
  scheme: SenderScheme;
  url: string;
  /** The webhook-id (Standard scheme) or the signature timestamp (seed scheme). */
  deliveryId: string;
  ok: boolean;
  /** The receiver's HTTP status; null when no answer came. */
  status: number | null;
  /** Why the delivery failed, in words; never holds a token. */
  error?: string;
  ms: number;
}

export interface SenderReport {
  deliveries: DeliveryOutcome[];
  skipped: SkippedReference[];
  unrouted: { repository: string; branch: string }[];
}

/** What a failure names: the pair, where it went (a receiver URL, or the rollout state machine) and why. */
export type FailedSend = Pick<DeliveryOutcome, 'repository' | 'branch' | 'url' | 'error'>;

/** Some deliveries (or rollout starts) of an event failed; the message names each failed repository@branch. */
export class DeliveryFailedError extends Error {
  constructor(
    readonly failures: readonly FailedSend[],
    readonly unreadable: readonly UnreadableRecord[],
    readonly attempted: number,
  ) {
    const parts = [
      ...failures.map((f) => `${triggerLabel(f)} (${f.url}: ${f.error ?? 'failed'})`),
      ...unreadable.map((u) => `${u.record} (${u.reason})`),
    ];
    super(`${failures.length + unreadable.length} of ${attempted + unreadable.length} deliveries failed: ${parts.join('; ')}`);
    this.name = 'DeliveryFailedError';
  }
}

export interface SenderDependencies {
  routes: SenderRouteTable;
  tokens: TokenReader;
  logger: Logger;
  timeoutMs: number;
  /** Adds commit message and author to Standard deliveries when given. */
  commitDetails?: CommitDetailsReader;
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number;
}

export type Sender = (
  event: CodeCommitTriggerEvent,
  context?: Pick<Context, 'awsRequestId' | 'getRemainingTimeInMillis'>,
) => Promise<SenderReport>;

/** `arn:<partition>:codecommit:<region>:<account>:<repository>` */
const CODECOMMIT_ARN = /^arn:[a-z0-9-]+:codecommit:([a-z0-9-]*):([0-9]*):(.+)$/;

/**
 * The branch pushes in an event. Deleted branches, tags and other refs are skipped (a deletion
 * has nothing to run); a record that cannot be read is reported, not thrown, so the rest still go.
 */
export function branchPushesOf(event: CodeCommitTriggerEvent): {
  pushes: BranchPush[];
  skipped: SkippedReference[];
  unreadable: UnreadableRecord[];
} {
  const pushes: BranchPush[] = [];
  const skipped: SkippedReference[] = [];
  const unreadable: UnreadableRecord[] = [];
  const records: unknown = (event as Partial<CodeCommitTriggerEvent> | null)?.Records;
  if (!Array.isArray(records)) {
    unreadable.push({ record: 'Records', reason: 'must be an array of CodeCommit trigger records' });
    return { pushes, skipped, unreadable };
  }
  records.forEach((candidate: Partial<CodeCommitTrigger> | null, index) => {
    const where = `Records[${index}]`;
    const arn = CODECOMMIT_ARN.exec(typeof candidate?.eventSourceARN === 'string' ? candidate.eventSourceARN : '');
    if (!candidate || !arn) {
      unreadable.push({ record: `${where}.eventSourceARN`, reason: 'must be a CodeCommit repository ARN' });
      return;
    }
    const references: unknown = candidate.codecommit?.references;
    if (!Array.isArray(references)) {
      unreadable.push({ record: `${where}.codecommit.references`, reason: 'must be an array' });
      return;
    }
    const [, arnRegion, account, repository] = arn as unknown as [string, string, string, string];
    const eventId = typeof candidate.eventId === 'string' ? candidate.eventId : '';
    const eventTime = isoTime(candidate.eventTime);
    references.forEach((reference: Partial<CodeCommitTrigger['codecommit']['references'][number]> | null, refIndex) => {
      const ref = reference?.ref;
      if (typeof ref !== 'string' || typeof reference?.commit !== 'string') {
        unreadable.push({ record: `${where}.codecommit.references[${refIndex}]`, reason: 'must have string ref and commit' });
        return;
      }
      if (reference.deleted === true) skipped.push({ repository, ref, reason: 'deleted' });
      else if (ref.startsWith(TAG_REF_PREFIX)) skipped.push({ repository, ref, reason: 'tag' });
      else if (!ref.startsWith(BRANCH_REF_PREFIX) || ref.length === BRANCH_REF_PREFIX.length) {
        skipped.push({ repository, ref, reason: 'not a branch' });
      } else {
        pushes.push({
          repository,
          // Everything after refs/heads/ is the branch: "feature/login" stays whole.
          branch: ref.slice(BRANCH_REF_PREFIX.length),
          ref,
          commit: reference.commit,
          region: typeof candidate.awsRegion === 'string' ? candidate.awsRegion : arnRegion,
          account,
          pusher: typeof candidate.userIdentityARN === 'string' ? candidate.userIdentityARN : '',
          eventId,
          eventTime,
        });
      }
    });
  });
  return { pushes, skipped, unreadable };
}

/** CodeCommit writes "2019-03-12T20:58:25.400+0000"; the body carries ISO-8601 UTC. */
function isoTime(eventTime: unknown): string {
  const parsed = typeof eventTime === 'string' ? Date.parse(eventTime) : Number.NaN;
  return new Date(Number.isNaN(parsed) ? Date.now() : parsed).toISOString();
}

/**
 * The Standard Webhooks `webhook-id` of a push: the same for Lambda's retry of the same event (the
 * receiver then runs nothing twice), different for every reference of it.
 */
export function webhookIdFor(push: Pick<BranchPush, 'eventId' | 'repository' | 'ref'>): string {
  const digest = createHash('sha256').update(`codecommit\u0000${push.eventId}\u0000${push.repository}\u0000${push.ref}`);
  return `msg_${digest.digest('base64url').slice(0, 32)}`;
}

/** The protocol's request for one push on one route, signed with the route's token. */
function signedRequest(push: BranchPush, route: SenderRoute, token: string, nowMs: number, details?: CommitDetails): SignedRequest {
  const timestamp = Math.floor(nowMs / 1000);
  if (route.scheme === 'seed') {
    const request = buildDeliveryRequest({
      scheme: 'seed',
      token,
      repository: push.repository,
      branch: push.branch,
      timestamp,
      ...(route.iterations !== undefined ? { iterations: route.iterations } : {}),
    });
    return { ...request, url: deliveryUrl(route.url, request.path), deliveryId: String(timestamp) };
  }
  const id = webhookIdFor(push);
  const data: PushData = {
    repository: push.repository,
    branch: push.branch,
    ref: push.ref,
    commit: push.commit,
    source: 'codecommit',
    region: push.region,
    account: push.account,
    pusher: push.pusher,
    eventId: push.eventId,
    pushedAt: push.eventTime,
    ...details,
  };
  const request = buildDeliveryRequest({ scheme: 'standard', token, id, data, timestamp });
  return { ...request, url: deliveryUrl(route.url, request.path), deliveryId: id };
}

interface SignedRequest extends DeliveryRequest {
  url: string;
  /** The webhook-id (Standard) or the signature timestamp (seed). */
  deliveryId: string;
}

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  cause?: unknown;
}

/** Errors are read by shape, not `instanceof`: fetch's errors may come from another realm. */
function asErrorLike(value: unknown): ErrorLike | undefined {
  return typeof value === 'object' && value !== null ? (value as ErrorLike) : undefined;
}

/** Why a request got no answer: "timed out after 10000 ms", "connect ECONNREFUSED 127.0.0.1:443". */
function describeRequestError(error: unknown, timeoutMs: number): string {
  const failure = asErrorLike(error);
  if (!failure) return 'request failed';
  if (failure.name === 'TimeoutError' || failure.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  // fetch says only "fetch failed"; what happened is in the cause.
  const cause = asErrorLike(failure.cause);
  const source = cause && typeof cause.message === 'string' ? cause : failure;
  const message = typeof source.message === 'string' && source.message !== '' ? source.message : 'request failed';
  const code = typeof source.code === 'string' ? source.code : undefined;
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/** A short, single-line excerpt of a receiver's error answer, for the failure reason. */
function answerExcerpt(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  if (line === '') return '';
  return `: ${line.length > MAX_ERROR_BODY_CHARS ? `${line.slice(0, MAX_ERROR_BODY_CHARS)}...` : line}`;
}

export async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function createSender(dependencies: SenderDependencies): Sender {
  const { routes, tokens, timeoutMs, commitDetails } = dependencies;
  const now = dependencies.now ?? Date.now;

  return async (event, context) => {
    const logger = context?.awsRequestId ? dependencies.logger.child({ requestId: context.awsRequestId }) : dependencies.logger;
    const remainingMs = context?.getRemainingTimeInMillis?.();
    const deadline = remainingMs === undefined ? Number.POSITIVE_INFINITY : now() + remainingMs - DEADLINE_MARGIN_MS;

    const { pushes, skipped, unreadable } = branchPushesOf(event);
    for (const skip of skipped) logger.info(skip, `reference skipped (${skip.reason}); nothing sent`);
    for (const problem of unreadable) logger.error(problem, 'record cannot be read; it is reported as failed');

    const planned: { push: BranchPush; route: SenderRoute }[] = [];
    const unrouted: SenderReport['unrouted'] = [];
    const detailsByPush = new Map<BranchPush, Promise<CommitDetails | undefined>>();
    for (const push of pushes) {
      const pushRoutes = routes.routesFor(push.repository, push.branch);
      if (pushRoutes.length === 0) {
        unrouted.push({ repository: push.repository, branch: push.branch });
        logger.info({ repository: push.repository, branch: push.branch, commit: push.commit }, 'no route for this branch; nothing sent');
        continue;
      }
      for (const route of pushRoutes) planned.push({ push, route });
      // Looked up once per push, alongside the token reads; only Standard bodies carry it.
      if (commitDetails && pushRoutes.some((r) => r.scheme === 'standard')) {
        detailsByPush.set(push, commitDetails.details(push.repository, push.commit));
      }
    }

    const deliver = async ({ push, route }: { push: BranchPush; route: SenderRoute }): Promise<DeliveryOutcome> => {
      const started = performance.now();
      const outcome: DeliveryOutcome = {
        repository: push.repository,
        branch: push.branch,
        commit: push.commit,
        scheme: route.scheme,
        url: route.url,
        deliveryId: '',
        ok: false,
        status: null,
        ms: 0,
      };
      try {
        const token = await tokens.token(route.tokenParameter);
        const requestTimeoutMs = Math.min(timeoutMs, Math.floor(deadline - now()));
        if (requestTimeoutMs <= 0) throw new Error('no time left in this invocation');
        const details = route.scheme === 'standard' ? await detailsByPush.get(push) : undefined;
        const request = signedRequest(push, route, token, now(), details);
        outcome.deliveryId = request.deliveryId;
        try {
          const response = await fetch(request.url, {
            method: request.method,
            headers: { 'user-agent': USER_AGENT, ...request.headers },
            ...(request.body !== undefined ? { body: request.body } : {}),
            // A 3xx is an answer from the wrong place, not a delivery: never followed.
            redirect: 'manual',
            signal: AbortSignal.timeout(requestTimeoutMs),
          });
          outcome.status = response.status;
          // Read to the end so the connection goes back to the pool for the next delivery.
          const answer = await response.text();
          if (response.status >= 200 && response.status < 300) outcome.ok = true;
          else if (response.status >= 300 && response.status < 400) {
            outcome.error = `HTTP ${response.status} redirect (redirects are not followed)`;
          } else outcome.error = `HTTP ${response.status}${answerExcerpt(answer)}`;
        } catch (error) {
          outcome.error = describeRequestError(error, requestTimeoutMs);
        }
      } catch (error) {
        // Token read or time budget: messages name the parameter, never a value.
        outcome.error = (error as Error).message;
      }
      outcome.ms = Math.round((performance.now() - started) * 100) / 100;
      const line = {
        repository: outcome.repository,
        branch: outcome.branch,
        commit: outcome.commit,
        scheme: outcome.scheme,
        url: outcome.url,
        deliveryId: outcome.deliveryId,
        status: outcome.status,
        ms: outcome.ms,
        ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      };
      if (outcome.ok) logger.info(line, 'delivered');
      else logger.error(line, 'delivery failed');
      return outcome;
    };

    const deliveries = await mapWithConcurrency(planned, MAX_PARALLEL_DELIVERIES, deliver);
    const failures = deliveries.filter((d) => !d.ok);
    if (failures.length > 0 || unreadable.length > 0) {
      const error = new DeliveryFailedError(failures, unreadable, deliveries.length);
      logger.error({ failed: failures.length + unreadable.length, attempted: deliveries.length }, error.message);
      throw error;
    }
    return { deliveries, skipped, unrouted };
  };
}

/** The sender built from the environment, once per execution environment. */
const senderFromEnvironment = builtFromEnvironment(
  'sender',
  ['TRIGGLER_ROUTES', 'TRIGGLER_TIMEOUT_MS', 'TRIGGLER_TOKEN_TTL_SECONDS', 'TRIGGLER_COMMIT_DETAILS', ROLLOUT_STATE_MACHINE_ENV],
  (env) => rolloutSenderSettingsFromEnvironment(env) ?? senderSettingsFromEnvironment(env),
  (settings, logger) =>
    'stateMachineArn' in settings
      ? // A fleet: each push starts a rollout; no token is read, nothing is sent to a host.
        createRolloutSender({
          triggers: settings.triggers,
          starter: new RolloutStarter(new SFNClient({}), settings.stateMachineArn),
          logger,
        })
      : createSender({
          routes: settings.routes,
          // Default credential, region and endpoint resolution: AWS_ENDPOINT_URL_SSM points it elsewhere.
          tokens: new SsmTokenCache({ client: new SSMClient({}), ttlSeconds: settings.tokenTtlSeconds }),
          logger,
          timeoutMs: settings.timeoutMs,
          ...(settings.commitDetails ? { commitDetails: new CodeCommitDetailsReader(logger) } : {}),
        }),
);

/** The Lambda entry point for CodeCommit repository triggers. */
export const handler = async (event: CodeCommitTriggerEvent, context: Context): Promise<SenderReport> =>
  senderFromEnvironment()(event, context);
