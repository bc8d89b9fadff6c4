/** The two schemes between our own ends: seed-compatible (DESIGN §2.1) and Standard Webhooks (§2.2). */
import type { IncomingMessage } from 'node:http';
import {
  checkTimestampWindow,
  parseSeedHeaders,
  parseStandardHeaders,
  readPushBody,
  type StandardHeaders,
  verifyStandardWebhook,
} from '../protocol';
import {
  acceptDelivery,
  badRequest,
  unauthorized,
  verifyWithTokens,
  type DeliveryContext,
} from './delivery-context';
import type { Reply } from './http-io';
import { SeedVerifier } from './seed-verifier';
import type { Trigger } from './trigger-table';

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const WINDOW_WORDS = { 'too-old': 'too old', 'too-new': 'too far in the future' } as const;

export function seedHandler(context: DeliveryContext) {
  const { expirationSeconds, futureSeconds } = context.config.signature;
  const verifier = new SeedVerifier(expirationSeconds);

  /** `route` is the decoded path without its leading slash: `<repo>-<branch>`. */
  return async function handleSeed(req: IncomingMessage, route: string): Promise<Reply> {
    const headers = parseSeedHeaders(header(req, 'x-signature-timestamp'), header(req, 'x-signature'));
    if ('header' in headers) throw badRequest(`${headers.header} ${headers.reason}`, { header: headers.header });
    const nowMs = context.now();
    const nowSeconds = Math.floor(nowMs / 1000);
    const window = checkTimestampWindow(headers.timestamp, nowSeconds, expirationSeconds, futureSeconds);
    if (window !== 'ok') throw badRequest(`X-Signature-Timestamp is ${WINDOW_WORDS[window]}`, { header: 'X-Signature-Timestamp' });
    const trigger = context.triggers.bySeedPath(route);
    if (!trigger) throw unauthorized('no trigger for this seed route', { route: route.slice(0, 200) });
    const ok = await verifyWithTokens(context, trigger, (tokens) =>
      verifier.verify(trigger, headers.timestamp, headers.signature, tokens, nowSeconds),
    );
    if (!ok) throw unauthorized('bad seed signature', { repository: trigger.config.repository, branch: trigger.config.branch });
    const { repository, branch } = trigger.config;
    return acceptDelivery(context, {
      // The signature covers trigger and timestamp, so the pair names this delivery uniquely.
      dedupeKey: `seed:${headers.timestamp}:${headers.signature}`,
      dedupeUntil: (headers.timestamp + expirationSeconds + 1) * 1000,
      deliveryId: `seed-${headers.timestamp}-${headers.signature.slice(0, 12)}`,
      repository,
      branch,
      // The seed scheme signs no body, so nothing in a body is trusted: the commit is unknown.
      commit: '',
      scheme: 'seed',
      receivedAt: new Date(nowMs).toISOString(),
    });
  };
}

export interface StandardPrecheck {
  headers: StandardHeaders;
  trigger: Trigger;
}

export function standardHandler(context: DeliveryContext) {
  const { toleranceSeconds, replaySeconds } = context.config.signature;

  /** Checks the headers and the trigger before the body is read; returns what verify() needs. */
  return {
    precheck(req: IncomingMessage, repository: string, branch: string): StandardPrecheck {
      const headers = parseStandardHeaders(header(req, 'webhook-id'), header(req, 'webhook-timestamp'), header(req, 'webhook-signature'));
      if ('header' in headers) throw badRequest(`${headers.header} ${headers.reason}`, { header: headers.header });
      const window = checkTimestampWindow(headers.timestamp, Math.floor(context.now() / 1000), toleranceSeconds, toleranceSeconds);
      if (window !== 'ok') throw badRequest(`webhook-timestamp is ${WINDOW_WORDS[window]}`, { header: 'webhook-timestamp' });
      const trigger = context.triggers.get(repository, branch);
      if (!trigger) throw unauthorized('no trigger for this repository and branch', { repository: repository.slice(0, 200), branch: branch.slice(0, 200) });
      return { headers, trigger };
    },

    async handle(checked: StandardPrecheck, body: Buffer): Promise<Reply> {
      const { headers, trigger } = checked;
      const { repository, branch } = trigger.config;
      const ok = await verifyWithTokens(context, trigger, (tokens) => tokens.some((token) => verifyStandardWebhook(token, headers, body)));
      if (!ok) throw unauthorized('bad webhook-signature', { repository, branch });
      const facts = readPushBody(body, repository, branch);
      if ('field' in facts) throw badRequest(`${facts.field} ${facts.reason}`, { field: facts.field });
      const nowMs = context.now();
      return acceptDelivery(context, {
        dedupeKey: `standard:${headers.id}`,
        // A sender's retry can come long after the first try, re-signed with a new timestamp.
        dedupeUntil: Math.max((headers.timestamp + toleranceSeconds) * 1000, nowMs + replaySeconds * 1000),
        deliveryId: headers.id,
        repository,
        branch,
        commit: facts.commit,
        ...(facts.previousCommit !== undefined ? { previousCommit: facts.previousCommit } : {}),
        ...(facts.pusher !== undefined ? { pusher: facts.pusher } : {}),
        scheme: 'standard',
        receivedAt: new Date(nowMs).toISOString(),
      });
    },
  };
}
