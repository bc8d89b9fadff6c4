/**
 * The seed-compatible scheme: exactly what the original Python sender sends. `GET` or `POST
 * /<repo>-<branch>` with `X-Signature-Timestamp` and `X-Signature`, the hash chain of
 * `<ts>:<repo>:<branch>:<token>`. It signs no body, so nothing in a body is used.
 */
import { checkTimestampWindow, parseSeedHeaders, type SeedHeaders } from '../../protocol';
import type { Trigger } from '../config/trigger-table';
import { badRequest, unauthorized } from '../errors';
import {
  acceptDelivery,
  dedupeKeyOf,
  type DeliveryContext,
  type DeliveryHandler,
  type Eventually,
  header,
  isPending,
  type Outcome,
  unauthorizedPerTrigger,
  verifyWithTokens,
  WINDOW_WORDS,
} from './handler';
import type { SeedChains } from './seed-chains';
import { SeedVerifier } from './seed-verifier';

interface SeedPrecheck {
  headers: SeedHeaders;
  trigger: Trigger;
  nowMs: number;
}

/** The target is the decoded path without its leading slash: `<repo>-<branch>`. */
export function seedHandler(context: DeliveryContext, chains: SeedChains): DeliveryHandler<string, SeedPrecheck> {
  const { expirationSeconds, futureSeconds } = context.config.signature;
  const verifier = new SeedVerifier({
    windowSeconds: expirationSeconds,
    roundsPerSecond: context.config.limits.seedRoundsPerSecond,
    chains,
  });

  return {
    precheck(req, route) {
      const headers = parseSeedHeaders(header(req, 'x-signature-timestamp'), header(req, 'x-signature'));
      if ('header' in headers) return badRequest(`${headers.header} ${headers.reason}`, { header: headers.header });
      const nowMs = context.now();
      const window = checkTimestampWindow(headers.timestamp, Math.floor(nowMs / 1000), expirationSeconds, futureSeconds);
      if (window !== 'ok') return badRequest(`X-Signature-Timestamp is ${WINDOW_WORDS[window]}`, WINDOW_FIELDS);
      const trigger = context.triggers.bySeedPath(route);
      if (!trigger) return unauthorized('no trigger for this seed route', () => ({ route: route.slice(0, 200) }));
      return { headers, trigger, nowMs };
    },

    handle(checked) {
      const { headers, trigger, nowMs } = checked;
      const ok = verifyWithTokens(context, trigger, (tokens) =>
        verifier.verify(trigger, headers.timestamp, headers.signature, tokens, nowMs),
      );
      return isPending(ok) ? ok.then((verified) => accept(checked, verified)) : accept(checked, ok);
    },
  };

  function accept({ headers, trigger, nowMs }: SeedPrecheck, verified: boolean): Eventually<Outcome> {
    if (!verified) return badSignature(trigger);
    const { repository, branch } = trigger.config;
    return acceptDelivery(context, {
      // The signature covers trigger and timestamp, so the pair names this delivery uniquely.
      dedupeKey: dedupeKeyOf('seed', trigger, `${headers.timestamp}:${headers.signature}`),
      dedupeUntil: (headers.timestamp + expirationSeconds + 1) * 1000,
      deliveryId: `seed-${headers.timestamp}-${headers.signature.slice(0, 12)}`,
      repository,
      branch,
      // The seed scheme signs no body, so nothing in a body is trusted: the commit is unknown.
      commit: '',
      scheme: 'seed',
      receivedAt: new Date(nowMs).toISOString(),
    });
  }
}

const WINDOW_FIELDS = { header: 'X-Signature-Timestamp' };
const badSignature = unauthorizedPerTrigger('bad seed signature');
