/**
 * A signed delivery, ready to send: what every sender of ours (the Lambda, `triggler send`, the
 * demo) puts on the wire for a push, in either scheme.
 */
import { pushEvent, type PushData } from './push-event';
import { seedPath, seedSignature, SEED_DEFAULT_ITERATIONS } from './seed-signature';
import { standardWebhookHeaders } from './standard-webhooks';
import { standardPath } from './trigger-key';

export interface DeliveryRequest {
  method: 'GET' | 'POST';
  /** Path on the receiver, to append to its base URL. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface StandardDeliveryInput {
  scheme: 'standard';
  token: string;
  /** `webhook-id`: the same for a retry of the same push, so the receiver runs it once. */
  id: string;
  data: PushData;
  /** Unix seconds. */
  timestamp: number;
}

export interface SeedDeliveryInput {
  scheme: 'seed';
  token: string;
  repository: string;
  branch: string;
  timestamp: number;
  iterations?: number;
}

export function buildDeliveryRequest(input: StandardDeliveryInput | SeedDeliveryInput): DeliveryRequest {
  if (input.scheme === 'seed') {
    // What the original sender sent: a GET with two headers and no body.
    const signature = seedSignature(
      input.timestamp,
      input.repository,
      input.branch,
      input.token,
      input.iterations ?? SEED_DEFAULT_ITERATIONS,
    );
    return {
      method: 'GET',
      path: seedPath(input.repository, input.branch),
      headers: { 'x-signature': signature, 'x-signature-timestamp': String(input.timestamp) },
    };
  }
  const body = JSON.stringify(pushEvent(input.data, new Date(input.timestamp * 1000)));
  return {
    method: 'POST',
    path: standardPath(input.data.repository, input.data.branch),
    headers: { 'content-type': 'application/json', ...standardWebhookHeaders(input.token, input.id, input.timestamp, body) },
    body,
  };
}

/** Joins a receiver's base URL (with or without a path or trailing slash) and a delivery path. */
export function deliveryUrl(baseUrl: string, path: string): string {
  return baseUrl.replace(/\/+$/, '') + path;
}
