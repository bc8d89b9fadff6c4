/**
 * The contract every delivery scheme implements — the seed scheme, Standard Webhooks and each
 * provider's webhook — and what they share: the context they check against, how they refuse, and
 * how a verified delivery is handed over.
 *
 * A handler works in two steps so that nothing costly happens for a request that cheap checks can
 * refuse: `precheck` sees only the request line and headers (shape, time window, known trigger),
 * before a byte of the body is read; `handle` gets the whole body, read within the limits, and
 * verifies, parses and accepts.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { triggerLabel } from '../../protocol';
import type { ReceiverConfig } from '../config/schema';
import type { Trigger, TriggerTable } from '../config/trigger-table';
import type { AcceptedDelivery, DeliverySink } from '../delivery';
import { ReceiverError, type Reply } from '../errors';
import type { TokenSource } from '../tokens/token-source';

export interface DeliveryHandler<Target, Checked> {
  /** Checks what can be checked from the headers, for the target the path named; throws a Rejection. */
  precheck(req: IncomingMessage, target: Target): Checked | Promise<Checked>;
  /** The whole body is read: verify, parse and accept, or throw a Rejection or a ReceiverError. */
  handle(checked: Checked, body: Buffer): Promise<Reply>;
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

/** How the time-window verdicts read in an answer. */
export const WINDOW_WORDS = { 'too-old': 'too old', 'too-new': 'too far in the future' } as const;

/**
 * Checks a signature against the trigger's tokens; when none matches, asks the source to look
 * again once (the token may just have been rotated) and checks the new tokens.
 */
export async function verifyWithTokens(
  context: DeliveryContext,
  trigger: Trigger,
  check: (tokens: readonly string[]) => boolean | Promise<boolean>,
): Promise<boolean> {
  let tokens: readonly string[];
  try {
    tokens = await context.tokens.tokens(trigger.token);
  } catch (error) {
    throw new TokensUnavailable((error as Error).message, { cause: error });
  }
  if (tokens.length > 0 && (await check(tokens))) return true;
  let changed: boolean;
  try {
    changed = await context.tokens.refresh(trigger.token);
  } catch (error) {
    context.logger.warn({ trigger: trigger.token.tokenName, err: error }, 'token refresh failed');
    return false;
  }
  if (!changed) return false;
  return check(await context.tokens.tokens(trigger.token));
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
