/** What every delivery handler (ours and the providers') needs to check and accept a delivery. */
import type { Logger } from 'pino';
import type { ReceiverConfig } from './config';
import type { AcceptedDelivery, AcceptResult } from './delivery';
import type { Reply } from './http-io';
import type { TokenSource } from './token-source';
import type { Trigger, TriggerTable } from './trigger-table';

/** Where verified deliveries go: the runner. */
export interface DeliverySink {
  accept(delivery: AcceptedDelivery): Promise<AcceptResult>;
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

/**
 * A refusal, with the reason for the log (never a token) apart from what the client is told.
 * Not an Error: refusals are the common case under a flood, and a stack trace each is waste.
 */
export class Rejection {
  constructor(
    readonly status: number,
    readonly clientMessage: string,
    readonly reason: string = clientMessage,
    readonly fields: Record<string, unknown> = {},
  ) {}
}

/** Bad signature and unknown trigger answer alike, so a caller cannot probe which triggers exist. */
export function unauthorized(reason: string, fields: Record<string, unknown> = {}): Rejection {
  return new Rejection(401, 'unauthorized: unknown trigger or bad signature', reason, fields);
}

export function badRequest(message: string, fields: Record<string, unknown> = {}): Rejection {
  return new Rejection(400, message, message, fields);
}

/** Raised when a token source cannot answer (and has nothing cached): the sender should retry. */
export class TokensUnavailable extends Error {}

/**
 * Checks a signature against the trigger's tokens; when none matches, asks the source to look
 * again once (the token may just have been rotated) and checks the new tokens.
 */
export async function verifyWithTokens(
  context: DeliveryContext,
  trigger: Trigger,
  check: (tokens: readonly string[]) => boolean,
): Promise<boolean> {
  let tokens: readonly string[];
  try {
    tokens = await context.tokens.tokens(trigger.token);
  } catch (error) {
    throw new TokensUnavailable((error as Error).message);
  }
  if (tokens.length > 0 && check(tokens)) return true;
  let changed: boolean;
  try {
    changed = await context.tokens.refresh(trigger.token);
  } catch (error) {
    context.logger.warn({ trigger: trigger.token.tokenName, err: (error as Error).message }, 'token refresh failed');
    return false;
  }
  if (!changed) return false;
  return check(await context.tokens.tokens(trigger.token));
}

/** Hands a verified delivery to the runner and answers: 202 naming the run, or 200 for a repeat. */
export async function acceptDelivery(context: DeliveryContext, delivery: AcceptedDelivery): Promise<Reply> {
  const result = await context.sink.accept(delivery);
  const run = { id: result.runId, repository: delivery.repository, branch: delivery.branch };
  if (result.status === 'duplicate') {
    context.logger.info({ run: result.runId, delivery: delivery.deliveryId, scheme: delivery.scheme }, 'repeated delivery: nothing new runs');
    return { status: 200, body: { status: 'duplicate', delivery: delivery.deliveryId, run } };
  }
  context.logger.info(
    {
      run: result.runId,
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

/** A provider's webhook (`POST /hooks/<provider>`): the body is read (within the limit) before it is called. */
export type ProviderHandler = (req: import('node:http').IncomingMessage, body: Buffer, context: DeliveryContext) => Promise<Reply>;
