/**
 * Standard Webhooks (standardwebhooks.com), the scheme between our own ends:
 *
 *   webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<ts>.<body>")>
 *
 * A token that starts with `whsec_` is the spec's base64 key; any other token is the key's raw UTF-8
 * bytes. Several space-separated signatures may be sent (key rotation); one match is enough.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { standardWebhookKey, type TokenOrKeys } from './token-keys';

export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';
export const STANDARD_TOLERANCE_SECONDS = 300;

const ID_SHAPE = /^[\x21-\x7e]{1,256}$/;
const TIMESTAMP_SHAPE = /^[0-9]{1,12}$/;
const SIGNATURE_ENTRY = /^v1,([A-Za-z0-9+/]{43}=)$/;

/** The HMAC of one message; a token's keys when the caller keeps them, else the token's key bytes. */
function digest(token: TokenOrKeys, id: string, timestamp: number | string, body: Buffer | string): Buffer {
  const key = typeof token === 'string' ? standardWebhookKey(token) : token.standardKey;
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
}

/** The `webhook-signature` value for one message, `v1,<base64>`. */
export function signStandardWebhook(token: string, id: string, timestamp: number, body: Buffer | string): string {
  return `v1,${digest(token, id, timestamp, body).toString('base64')}`;
}

/** The three headers a sender puts on a message. */
export function standardWebhookHeaders(token: string, id: string, timestamp: number, body: Buffer | string): Record<string, string> {
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
    [WEBHOOK_SIGNATURE_HEADER]: signStandardWebhook(token, id, timestamp, body),
  };
}

export type StandardHeaders = { id: string; timestamp: number; signatures: Buffer[] };
export type HeaderProblem = { header: string; reason: string };

/** Checks the headers' shape, cheaply, before any HMAC is computed. */
export function parseStandardHeaders(
  id: string | undefined,
  timestamp: string | undefined,
  signature: string | undefined,
): StandardHeaders | HeaderProblem {
  if (id === undefined) return { header: 'webhook-id', reason: 'is missing' };
  if (!ID_SHAPE.test(id)) return { header: 'webhook-id', reason: 'must be 1 to 256 printable ASCII characters' };
  if (timestamp === undefined) return { header: 'webhook-timestamp', reason: 'is missing' };
  if (!TIMESTAMP_SHAPE.test(timestamp)) return { header: 'webhook-timestamp', reason: 'must be whole unix seconds' };
  if (signature === undefined) return { header: 'webhook-signature', reason: 'is missing' };
  const signatures: Buffer[] = [];
  for (const entry of signature.split(' ')) {
    if (entry === '') continue;
    const match = SIGNATURE_ENTRY.exec(entry);
    // Other versions (e.g. v1a, asymmetric) are allowed by the spec; we only check v1.
    if (match) signatures.push(Buffer.from(match[1]!, 'base64'));
    else if (!/^v[0-9a-z]+,\S+$/.test(entry)) {
      return { header: 'webhook-signature', reason: 'must be space-separated "v1,<base64>" entries' };
    }
  }
  if (signatures.length === 0) return { header: 'webhook-signature', reason: 'has no v1 signature' };
  if (signatures.length > 16) return { header: 'webhook-signature', reason: 'has more than 16 signatures' };
  return { id, timestamp: Number(timestamp), signatures };
}

/** An HMAC-SHA256's length: a signature of any other length is refused before anything is hashed. */
const SIGNATURE_BYTES = 32;

/** True when any of the received signatures is the HMAC of this message under this token. */
export function verifyStandardWebhook(token: TokenOrKeys, headers: StandardHeaders, body: Buffer): boolean {
  if (!headers.signatures.some((candidate) => candidate.length === SIGNATURE_BYTES)) return false;
  const expected = digest(token, headers.id, headers.timestamp, body);
  let ok = false;
  for (const candidate of headers.signatures) {
    // Every candidate is compared, so the time taken does not say which one matched.
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) ok = true;
  }
  return ok;
}
