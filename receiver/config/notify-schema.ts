/**
 * Where the receiver tells someone that a run ended: `notify` at the receiver level, replaced by a
 * trigger's own `notify` when it has one.
 */
import { z } from 'zod';
import { tokenNameSchema } from './token-name';

/** A run's final status, or `recovered`: the first success after a failure. */
export const NOTIFY_EVENTS = ['succeeded', 'failed', 'timed-out', 'interrupted', 'rolled-back', 'recovered'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
/** The statuses that count as a failure, for `recovered`. */
export const FAILURE_STATUSES: readonly string[] = ['failed', 'timed-out', 'rolled-back'];

export const NOTIFY_FORMATS = ['standard', 'slack', 'sns', 'cloudwatch'] as const;
export type NotifyFormat = (typeof NOTIFY_FORMATS)[number];

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

export const notifyTargetSchema = z
  .strictObject({
    format: z
      .enum(NOTIFY_FORMATS)
      .default('standard')
      .describe(
        '`standard`: a Standard Webhooks-signed `run.finished` JSON event to `url`, signed with the token stored as `tokenName`; `slack`: `{"text": ...}` to a Slack, Mattermost or Discord (`.../slack`) incoming webhook `url`; `sns`: published to `topicArn`; `cloudwatch`: one `FailedRuns` data point in `namespace` (for an alarm).',
      ),
    url: httpUrl
      .optional()
      .describe(
        "Where `standard` and `slack` post (http or https). Logs show its origin only: a chat webhook's path is its secret. Default: none (required for those formats).",
      ),
    tokenName: tokenNameSchema
      .optional()
      .describe('`standard`: the name of the signing token in the token file or SSM. Default: none (required for `standard`).'),
    topicArn: z.string().min(1).optional().describe('`sns`: the topic to publish to. Default: none (required for `sns`).'),
    namespace: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .describe('`cloudwatch`: the metric namespace of the `FailedRuns` data point. Default: none (required for `cloudwatch`).'),
    on: z
      .array(z.enum(NOTIFY_EVENTS))
      .min(1)
      .default(['failed', 'timed-out', 'rolled-back', 'recovered'])
      .describe(
        "The run endings that are sent: a run's final status, or `recovered`, the first success after a failure (interrupted runs are passed over).",
      ),
    retrySeconds: z
      .number()
      .int()
      .min(0)
      .max(24 * 3600)
      .default(600)
      .describe(
        'How long a failed attempt is retried, with backoff from 1 s doubling to a minute, except after a 4xx other than 408 and 429.',
      ),
  })
  .superRefine((target, ctx) => {
    const need = (field: 'url' | 'tokenName' | 'topicArn' | 'namespace') => {
      if (target[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `format ${target.format} needs ${field}` });
    };
    const needs = { standard: ['url', 'tokenName'], slack: ['url'], sns: ['topicArn'], cloudwatch: ['namespace'] } as const;
    for (const field of needs[target.format]) need(field);
  });

export const notifySchema = z.array(notifyTargetSchema).max(20).describe('Up to 20 notification targets.');
export type NotifyTarget = z.output<typeof notifyTargetSchema>;
