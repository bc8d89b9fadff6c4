/**
 * The contract every delivery scheme implements — the seed scheme, Standard Webhooks and each
 * provider's webhook — and what they share: the context they check against, how they refuse, and
 * how a verified delivery is handed over.
 *
 * A handler works in two steps so that nothing costly happens for a request that cheap checks can
 * refuse: `precheck` sees only the request line and headers (shape, time window, known trigger),
 * before a byte of the body is read; `handle` gets the whole body, read within the limits, and
 * verifies, parses and accepts.
 *
 * Both answer synchronously whenever they can: a refusal is a Rejection returned (not thrown: under
 * a flood refusals are the common case, and a throw, a promise or a stack each is waste), and a
 * trigger whose tokens are at hand (inline, file, SSM's cache) is verified with no promise. Only
 * asking a token source, a seed hash chain not yet computed, or accepting a delivery (the journal)
 * is a promise.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { triggerLabel, type TokenKeys } from '../../protocol';
import type { ReceiverConfig } from '../config/schema';
import type { Trigger, TriggerTable } from '../config/trigger-table';
import type { AcceptedDelivery, DeliverySink } from '../delivery';
import { ReceiverError, type Rejection, type Reply, unauthorized } from '../errors';
import { keysOfTokens } from '../tokens/token-keyring';
import type { TokenSource } from '../tokens/token-source';

/** What a handler answers: a reply, or a refusal. */
export type Outcome = Reply | Rejection;

/** A value now, or a promise of it where something must be waited for. */
export type Eventually<T> = T | Promise<T>;

export interface DeliveryHandler<Target, Checked> {
  /** Checks what can be checked from the headers, for the target the path named; a Rejection refuses the request. */
  precheck(req: IncomingMessage, target: Target): Eventually<Checked | Rejection>;
  /** The whole body is read: verify, parse and accept; a Rejection refuses, a thrown ReceiverError too. */
  handle(checked: Checked, body: Buffer): Eventually<Outcome>;
}

/** Whether a value is still to come (a promise), rather than here. */
export function isPending<T>(value: Eventually<T>): value is Promise<T> {
  // Not `instanceof Promise`: a promise made in another realm (a test's sandbox) is one too.
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

export interface DeliveryContext {
  config: ReceiverConfig;
  triggers: TriggerTable;
  tokens: TokenSource;
  sink: DeliverySink;
  logger: Logger;
  /** Epoch milliseconds. */
  now(): number;
}

/** A token source cannot answer (and has nothing cached): the sender should retry. */
export class TokensUnavailable extends ReceiverError {
  constructor(message: string, options?: ErrorOptions) {
    super('tokens', message, options);
    this.name = 'TokensUnavailable';
  }
}

/**
 * The key a delivery is remembered by: per trigger, so that the holder of one trigger's token can
 * never use up the ids another trigger's sender will send (nor learn that trigger's runs from a
 * duplicate's answer). Repository and branch cannot hold NUL, so the trigger part is unambiguous.
 */
export function dedupeKeyOf(scheme: string, trigger: Trigger, id: string): string {
  return `${scheme}:${trigger.key}:${id}`;
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A refusal that reads the same for every request to one trigger (a bad signature), made once per
 * trigger: under a flood of forged deliveries it is the common answer.
 */
export function unauthorizedPerTrigger(reason: string): (trigger: Trigger) => Rejection {
  const made = new WeakMap<Trigger, Rejection>();
  return (trigger) => {
    let rejection = made.get(trigger);
    if (rejection === undefined) {
      rejection = unauthorized(reason, { repository: trigger.config.repository, branch: trigger.config.branch });
      made.set(trigger, rejection);
    }
    return rejection;
  };
}

/** How the time-window verdicts read in an answer. */
export const WINDOW_WORDS = { 'too-old': 'too old', 'too-new': 'too far in the future' } as const;

/** Checks a signature against each of a trigger's tokens (their keys kept by the token side). */
export type TokenCheck = (tokens: readonly TokenKeys[]) => Eventually<boolean>;

/**
 * Checks a signature against the trigger's tokens; when none matches, asks the source to look
 * again once (the token may just have been rotated) and checks the new tokens. With the tokens at
 * hand and a source that will not look again now, the verdict comes with no promise.
 */
export function verifyWithTokens(context: DeliveryContext, trigger: Trigger, check: TokenCheck): Eventually<boolean> {
  const atHand = context.tokens.tokensAtHand?.(trigger.token);
  if (atHand === undefined) return verifyWithAskedTokens(context, trigger, check);
  const verdict = atHand.length > 0 && check(keysOfTokens(atHand));
  if (verdict === true) return true;
  if (verdict === false) return checkRefreshed(context, trigger, check);
  return verdict.then((ok) => ok || checkRefreshed(context, trigger, check));
}

async function tokensAsked(context: DeliveryContext, trigger: Trigger): Promise<readonly TokenKeys[]> {
  try {
    return keysOfTokens(await context.tokens.tokens(trigger.token));
  } catch (error) {
    throw new TokensUnavailable((error as Error).message, { cause: error });
  }
}

async function verifyWithAskedTokens(context: DeliveryContext, trigger: Trigger, check: TokenCheck): Promise<boolean> {
  const tokens = await tokensAsked(context, trigger);
  if (tokens.length > 0 && (await check(tokens))) return true;
  return checkRefreshed(context, trigger, check);
}

/** After a failed check: the tokens looked up again, when the source will look now, and checked once more. */
function checkRefreshed(context: DeliveryContext, trigger: Trigger, check: TokenCheck): Eventually<boolean> {
  let changed: Eventually<boolean>;
  try {
    changed = context.tokens.refresh(trigger.token);
  } catch (error) {
    return refreshFailed(context, trigger, error);
  }
  if (changed === false) return false;
  const checkAgain = async () => check(keysOfTokens(await context.tokens.tokens(trigger.token)));
  if (changed === true) return checkAgain();
  return changed.then(
    (yes) => (yes ? checkAgain() : false),
    (error: unknown) => refreshFailed(context, trigger, error),
  );
}

function refreshFailed(context: DeliveryContext, trigger: Trigger, error: unknown): false {
  context.logger.warn({ trigger: trigger.token.tokenName, err: error }, 'token refresh failed');
  return false;
}

/** Hands a verified delivery to the sink and answers: 202 naming the run, or 200 for a repeat. */
export async function acceptDelivery(context: DeliveryContext, delivery: AcceptedDelivery): Promise<Reply> {
  const result = await context.sink.accept(delivery);
  const run = { id: result.runId, repository: delivery.repository, branch: delivery.branch };
  if (result.status === 'duplicate') {
    context.logger.info(
      { run: result.runId, delivery: delivery.deliveryId, scheme: delivery.scheme },
      'repeated delivery: nothing new runs',
    );
    return { status: 200, body: { status: 'duplicate', delivery: delivery.deliveryId, run } };
  }
  context.logger.info(
    {
      run: result.runId,
      trigger: triggerLabel(delivery),
      repository: delivery.repository,
      branch: delivery.branch,
      commit: delivery.commit,
      delivery: delivery.deliveryId,
      scheme: delivery.scheme,
      coalesced: result.coalesced,
    },
    'delivery accepted',
  );
  return { status: 202, body: { status: 'accepted', delivery: delivery.deliveryId, coalesced: result.coalesced, run } };
}
