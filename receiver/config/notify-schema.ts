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
    /**
     * `standard`: a Standard Webhooks-signed `run.finished` JSON event to `url`, signed with the
     * token stored as `tokenName`; `slack`: `{"text": ...}` to a Slack, Mattermost or Discord
     * (`.../slack`) incoming webhook `url`; `sns`: published to `topicArn`; `cloudwatch`: one
     * `FailedRuns` data point in `namespace` (for an alarm).
     * @default "standard"
     */
    format: z.enum(NOTIFY_FORMATS).default('standard'),
    url: httpUrl.optional(),
    tokenName: tokenNameSchema.optional(),
    topicArn: z.string().min(1).optional(),
    namespace: z.string().min(1).max(255).optional(),
    /** @default ["failed", "timed-out", "rolled-back", "recovered"] */
    on: z.array(z.enum(NOTIFY_EVENTS)).min(1).default(['failed', 'timed-out', 'rolled-back', 'recovered']),
    /** How long a notification is retried (with backoff) before it is given up. @default 600 */
    retrySeconds: z.number().int().min(0).max(24 * 3600).default(600),
  })
  .superRefine((target, ctx) => {
    const need = (field: 'url' | 'tokenName' | 'topicArn' | 'namespace') => {
      if (target[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `format ${target.format} needs ${field}` });
    };
    const needs = { standard: ['url', 'tokenName'], slack: ['url'], sns: ['topicArn'], cloudwatch: ['namespace'] } as const;
    for (const field of needs[target.format]) need(field);
  });

export const notifySchema = z.array(notifyTargetSchema).max(20);
export type NotifyTarget = z.output<typeof notifyTargetSchema>;
