/** Putting one signed delivery on the wire, for `triggler send` and the post-receive hook. */
import { request } from './http-request';
import { deliveryUrl, type DeliveryRequest } from '../protocol';

export interface DeliveryAnswer {
  status: number;
  /** The receiver's JSON answer (`{"status":"accepted","run":{"id":…}}`), or `{ text }` when it is not JSON. */
  body: Record<string, unknown>;
  target: string;
}

/** Sends it; a connection that fails or times out rejects (the caller decides whether to keep it for later). */
export async function postDelivery(baseUrl: string, delivery: DeliveryRequest, timeoutMs: number): Promise<DeliveryAnswer> {
  const target = deliveryUrl(baseUrl, delivery.path);
  const response = await request(target, {
    method: delivery.method,
    headers: delivery.headers,
    ...(delivery.body !== undefined ? { body: delivery.body } : {}),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return { status: response.statusCode, body: jsonOrText(await response.body.text()), target };
}

/** A receiver's answer: its JSON, or `{ text }` when it is not JSON. */
export function jsonOrText(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { text };
  }
}

/** The run an accepted (or repeated) delivery names. */
export function runOf(answer: DeliveryAnswer): string | undefined {
  const run = answer.body.run as { id?: unknown } | undefined;
  return typeof run?.id === 'string' ? run.id : undefined;
}
