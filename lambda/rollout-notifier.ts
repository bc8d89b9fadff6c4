/**
 * The `rollout.finished` notifier: an EventBridge rule sends it each finished execution of the
 * rollout state machine (Step Functions' execution status change), and it tells each target once,
 * in the formats a receiver's run notifications use: a Standard Webhooks-signed JSON event, a
 * Slack-compatible text, an SNS message, a CloudWatch data point. The message names each host's
 * outcome from the RolloutSummary (the execution's output, or its failure's cause); an event too
 * large to carry it is completed with DescribeExecution.
 *
 * Settings: `TRIGGLER_ROLLOUT_NOTIFY`, JSON `{ "targets": [...], "timeoutMs": 10000, "retrySeconds": 120 }`, each target
 *   { "format": "standard", "url": "https://...", "tokenParameter": "<SSM SecureString: the signing token>" }
 *   { "format": "slack", "urlParameter": "<SSM SecureString: the incoming webhook URL>" } (or "url")
 *   { "format": "sns", "topicArn": "arn:aws:sns:..." }
 *   { "format": "cloudwatch", "namespace": "GitTriggler" }   (FailedRollouts: 1 for a failure, else 0)
 * and optionally `"on": [...]`, the outcomes sent (default: all but `superseded`, a rollout that
 * never began because a newer push took its place).
 *
 * Each target is retried on its own, as a receiver retries its run notifications: with backoff
 * for `retrySeconds` (within the invocation's time left), except after an answer that trying again
 * will not change (a 4xx other than 408 and 429). So a target that fails never makes the others
 * hear twice: Lambda does not retry the invocation (the construct sets no retry), and a target
 * still failing at the end makes the invocation fail, naming it (never a token, never a URL's
 * path), and the event lands in the on-failure queue. The Standard Webhooks id is the same on
 * every attempt, so a receiving end can tell a retry from a new rollout. Reading the execution,
 * before anything is sent, is retried the same way.
 */
import { createHash } from 'node:crypto';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Context, EventBridgeEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import {
  describeAwsError,
  escapeSlackText,
  isPermanentRefusal,
  nextRetryDelay,
  ROLLOUT_EVENTS,
  rolloutFinishedEvent,
  rolloutSummaryLine,
  rolloutSummaryOf,
  snsSubject,
  standardWebhookHeaders,
  type RolloutEvent,
  type RolloutInput,
  type RolloutSummary,
} from '../protocol';
import { builtFromEnvironment, type Logger } from './log';
import { jsonVariable } from './relay-settings';
import { receiverUrlProblem, tokenParameterSchema } from './sender-routes';
import { SsmTokenCache, type TokenReader } from './ssm-token-cache';

export const ROLLOUT_NOTIFY_VARIABLE = 'TRIGGLER_ROLLOUT_NOTIFY';
const DEFAULT_ON: RolloutEvent[] = ROLLOUT_EVENTS.filter((event) => event !== 'superseded');
const FAILURES: readonly RolloutEvent[] = ['failed', 'rolled-back', 'stopped', 'timed-out'];

const httpUrl = z.string().check(z.refine((text) => receiverUrlProblem(text) === undefined, 'must be an http:// or https:// URL'));
const targetSchema = z.strictObject({
  format: z.enum(['standard', 'slack', 'sns', 'cloudwatch']),
  url: z.optional(httpUrl),
  urlParameter: z.optional(tokenParameterSchema),
  tokenParameter: z.optional(tokenParameterSchema),
  topicArn: z.optional(z.string().check(z.regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$/, 'must be an SNS topic ARN'))),
  namespace: z.optional(z.string().check(z.minLength(1), z.maxLength(255))),
  on: z.optional(z.array(z.enum(ROLLOUT_EVENTS)).check(z.minLength(1))),
});
const settingsSchema = z.strictObject({
  targets: z.array(targetSchema).check(z.minLength(1, 'must hold at least one target'), z.maxLength(20)),
  timeoutMs: z.optional(z.int().check(z.minimum(100), z.maximum(60_000))),
  retrySeconds: z.optional(z.int().check(z.minimum(0), z.maximum(840))),
});

export type RolloutNotifyTarget = z.output<typeof targetSchema>;
export interface RolloutNotifySettings {
  targets: RolloutNotifyTarget[];
  /** One attempt's limit. */
  timeoutMs: number;
  /** How long a failing target is tried again, at most (and never past the invocation's time). */
  retrySeconds: number;
}

export class RolloutNotifyConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`${ROLLOUT_NOTIFY_VARIABLE} is not valid:\n  ${problems.join('\n  ')}`);
    this.name = 'RolloutNotifyConfigError';
  }
}

const NEEDS: Record<RolloutNotifyTarget['format'], (target: RolloutNotifyTarget) => string | undefined> = {
  standard: (t) => (t.url && t.tokenParameter ? undefined : 'format standard needs url and tokenParameter'),
  slack: (t) => ((t.url === undefined) !== (t.urlParameter === undefined) ? undefined : 'format slack needs one of url and urlParameter'),
  sns: (t) => (t.topicArn ? undefined : 'format sns needs topicArn'),
  cloudwatch: (t) => (t.namespace ? undefined : 'format cloudwatch needs namespace'),
};

export function rolloutNotifySettingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): RolloutNotifySettings {
  const parsed = jsonVariable(env, ROLLOUT_NOTIFY_VARIABLE, settingsSchema, (problems) => new RolloutNotifyConfigError(problems));
  const problems = parsed.targets.flatMap((target, index) => {
    const problem = NEEDS[target.format](target);
    return problem === undefined ? [] : [`${ROLLOUT_NOTIFY_VARIABLE}.targets[${index}]: ${problem}`];
  });
  if (problems.length > 0) throw new RolloutNotifyConfigError(problems);
  return { targets: parsed.targets, timeoutMs: parsed.timeoutMs ?? 10_000, retrySeconds: parsed.retrySeconds ?? 120 };
}

/** The detail of Step Functions' "Step Functions Execution Status Change" event. */
export interface ExecutionStatusChange {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: string;
  startDate?: number | null;
  stopDate?: number | null;
  input?: string | null;
  output?: string | null;
  error?: string | null;
  cause?: string | null;
}

export interface RolloutNotifierDependencies {
  settings: RolloutNotifySettings;
  logger: Logger;
  /** Signing tokens and secret URLs from SSM. */
  secrets: TokenReader;
  sfn: SFNClient;
  sns: SNSClient;
  cloudWatch: CloudWatchClient;
  /** @default Date.now */
  now?: () => number;
  /** The wait before a failed target's second attempt; each next one doubles, up to a minute. @default 1000 */
  firstRetryMs?: number;
}

/** What the notifier reads of its invocation: the time it has left (Lambda's context). */
export interface InvocationClock {
  getRemainingTimeInMillis(): number;
}

export interface NotifyOutcome {
  target: number;
  format: RolloutNotifyTarget['format'];
  ok: boolean;
  error?: string;
}

const FINISHED = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

function parsed(text: string | null | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Why a target failed, for the log and the invocation's error: its origin only (a chat webhook's path is its secret). */
class TargetFailure extends Error {
  constructor(
    message: string,
    /** Trying again will not change the answer. */
    readonly permanent = false,
  ) {
    super(message);
  }
}

export function createRolloutNotifier(dependencies: RolloutNotifierDependencies) {
  const { settings, logger, secrets } = dependencies;
  const now = dependencies.now ?? Date.now;

  /** The summary the execution left, reading the execution when the event could not carry it. */
  async function summaryOf(detail: ExecutionStatusChange): Promise<{ summary: RolloutSummary; outcome: RolloutEvent }> {
    let { output, cause, input, error } = detail;
    let summary = rolloutSummaryOf(detail.status === 'SUCCEEDED' ? output : cause);
    if (!summary || !input) {
      const described = await dependencies.sfn
        .send(new DescribeExecutionCommand({ executionArn: detail.executionArn }))
        .catch((failure: unknown) => {
          throw new Error(`cannot read execution ${detail.executionArn}: ${describeAwsError(failure)}`, { cause: failure });
        });
      ({ output, cause, input, error } = described);
      summary = rolloutSummaryOf(detail.status === 'SUCCEEDED' ? output : cause);
    }
    if (summary) return { summary, outcome: summary.outcome };
    // Stopped by hand, timed out, or failed before it could write a summary: what the input says, and why.
    const rolloutInput = (parsed(input) ?? {}) as Partial<RolloutInput>;
    const outcome: RolloutEvent = detail.status === 'ABORTED' ? 'stopped' : detail.status === 'TIMED_OUT' ? 'timed-out' : 'failed';
    return {
      outcome,
      summary: {
        trigger: rolloutInput.trigger ?? '?',
        repository: rolloutInput.repository ?? '?',
        branch: rolloutInput.branch ?? '?',
        commit: rolloutInput.commit ?? '?',
        deliveryId: rolloutInput.deliveryId ?? '?',
        outcome: 'failed',
        reason: [error, cause].filter(Boolean).join(': ').slice(0, 500) || `the execution ended ${detail.status}`,
        instances: [],
        hosts: [],
      },
    };
  }

  async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<void> {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'git-triggler', ...headers },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
      await response.text();
    } catch (failure) {
      const reason =
        (failure as Error).name === 'TimeoutError'
          ? `no answer within ${settings.timeoutMs} ms`
          : ((failure as { cause?: { code?: string } }).cause?.code ?? 'request failed');
      throw new TargetFailure(`${new URL(url).origin}: ${reason}`);
    }
    if (response.status < 200 || response.status >= 300)
      throw new TargetFailure(`${new URL(url).origin} answered ${response.status}`, isPermanentRefusal(response.status));
  }

  return async (
    event: Pick<EventBridgeEvent<string, ExecutionStatusChange>, 'detail'>,
    clock?: InvocationClock,
  ): Promise<NotifyOutcome[]> => {
    const started = Date.now();
    const detail = event.detail;
    if (!FINISHED.has(detail.status)) {
      logger.info({ execution: detail.name, status: detail.status }, 'execution not finished; nothing sent');
      return [];
    }
    // Lambda retries no invocation: what fails here is tried again here, each thing on its own.
    const retryUntil = started + settings.retrySeconds * 1000;
    // The next attempt starts within retrySeconds and can take its whole timeout before Lambda stops the invocation.
    const noTimeFor = (delay: number): boolean =>
      Date.now() + delay > retryUntil || (clock !== undefined && clock.getRemainingTimeInMillis() < delay + settings.timeoutMs + 1000);
    /** `work` until it is done, fails for good, or there is no time for another try, with backoff; logged as `what`. */
    const retried = async <T>(
      what: string,
      fields: Record<string, unknown>,
      work: () => Promise<T>,
    ): Promise<{ value: T; attempt: number } | { failure: string; attempt: number }> => {
      for (let attempt = 1, delay = dependencies.firstRetryMs ?? 1000; ; attempt++, delay = nextRetryDelay(delay)) {
        try {
          return { value: await work(), attempt };
        } catch (failure) {
          const reason = failure instanceof TargetFailure ? failure.message : describeAwsError(failure);
          if ((failure instanceof TargetFailure && failure.permanent) || noTimeFor(delay)) {
            logger.error({ ...fields, attempt, error: reason }, `${what} failed; given up`);
            return { failure: reason, attempt };
          }
          logger.warn({ ...fields, attempt, error: reason, retryMs: delay }, `${what} failed; retrying`);
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    };

    // Nothing is sent yet: a summary that cannot be read fails the invocation, and the event goes to the failure queue.
    const read = await retried('reading the execution', { execution: detail.name }, () => summaryOf(detail));
    if ('failure' in read) throw new Error(read.failure);
    const { summary, outcome } = read.value;
    const finished = rolloutFinishedEvent(
      summary,
      {
        name: detail.name,
        executionArn: detail.executionArn,
        ...(detail.startDate ? { startedAt: new Date(detail.startDate) } : {}),
        ...(detail.stopDate ? { finishedAt: new Date(detail.stopDate) } : {}),
      },
      outcome,
      new Date(now()),
    );
    const line = rolloutSummaryLine(finished);
    const body = JSON.stringify(finished);
    // The same id for Lambda's retry of this event: the receiving end can tell a retry from a new rollout.
    const id = `msg_${createHash('sha256').update(detail.executionArn).digest('base64url').slice(0, 24)}`;

    const send = async (target: RolloutNotifyTarget, index: number): Promise<void> => {
      switch (target.format) {
        case 'standard': {
          const token = await secrets.token(target.tokenParameter!);
          return post(target.url!, body, standardWebhookHeaders(token, `${id}_${index}`, Math.floor(now() / 1000), body));
        }
        case 'slack': {
          const url = target.url ?? (await secrets.token(target.urlParameter!));
          return post(url, JSON.stringify({ text: escapeSlackText(line) }));
        }
        case 'sns': {
          const hosts = finished.data.hosts.map(
            (h) =>
              `${h.instanceId}: ${h.outcome}${h.release ? `, release ${h.release}` : ''}${h.runId ? `, run ${h.runId}` : ''}${h.error ? ` (${h.error})` : ''}`,
          );
          await dependencies.sns.send(
            new PublishCommand({
              TopicArn: target.topicArn,
              Subject: snsSubject(line, 'triggler rollout'),
              Message: [line, '', ...hosts].join('\n'),
            }),
          );
          return;
        }
        case 'cloudwatch':
          await dependencies.cloudWatch.send(
            new PutMetricDataCommand({
              Namespace: target.namespace,
              MetricData: [
                { MetricName: 'FailedRollouts', Value: FAILURES.includes(outcome) ? 1 : 0, Unit: 'Count', Timestamp: new Date(now()) },
              ],
            }),
          );
      }
    };

    // Each target on its own, until it is through, refused for good, or out of time: the others never hear twice.
    const deliver = async (target: RolloutNotifyTarget, index: number): Promise<NotifyOutcome> => {
      const fields = { execution: detail.name, target: index, format: target.format, outcome };
      const sent = await retried('rollout notification', fields, () => send(target, index));
      if ('failure' in sent) return { target: index, format: target.format, ok: false, error: sent.failure };
      logger.info({ ...fields, attempt: sent.attempt }, 'rollout notification sent');
      return { target: index, format: target.format, ok: true };
    };
    const outcomes = await Promise.all(
      settings.targets.map((target, index) => ((target.on ?? DEFAULT_ON).includes(outcome) ? deliver(target, index) : undefined)),
    );
    const sent = outcomes.filter((o): o is NotifyOutcome => o !== undefined);
    const failed = sent.filter((o) => !o.ok);
    if (failed.length > 0) {
      throw new Error(
        `${failed.length} of ${sent.length} rollout notifications failed: ${failed.map((f) => `targets[${f.target}] (${f.format}: ${f.error})`).join('; ')}`,
      );
    }
    return sent;
  };
}

const notifierFromEnvironment = builtFromEnvironment(
  'rollout notifier',
  [ROLLOUT_NOTIFY_VARIABLE],
  rolloutNotifySettingsFromEnvironment,
  (settings, logger) =>
    createRolloutNotifier({
      settings,
      logger,
      secrets: new SsmTokenCache({ client: new SSMClient({}), ttlSeconds: 300 }),
      sfn: new SFNClient({}),
      sns: new SNSClient({}),
      cloudWatch: new CloudWatchClient({}),
    }),
);

/** The Lambda entry point for the rule on the rollout state machine's status changes. */
export const handler = async (
  event: EventBridgeEvent<'Step Functions Execution Status Change', ExecutionStatusChange>,
  context: Context,
): Promise<NotifyOutcome[]> => notifierFromEnvironment()(event, context);
