/** Putting one signed delivery on the wire, for `triggler send` and the post-receive hook. */
import { request } from 'undici';
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
  const text = await response.body.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: response.statusCode, body, target };
}

/** The run an accepted (or repeated) delivery names. */
export function runOf(answer: DeliveryAnswer): string | undefined {
  const run = answer.body.run as { id?: unknown } | undefined;
  return typeof run?.id === 'string' ? run.id : undefined;
}
