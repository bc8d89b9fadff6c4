/**
 * New trigger tokens, in the Standard Webhooks secret form (`whsec_` + base64 of the key), so any
 * Standard Webhooks library takes them as they are. The seed scheme hashes the same text.
 */
import { randomBytes } from 'node:crypto';

/** 32 bytes: the HMAC-SHA256 block's worth of key, beyond any guessing. */
export const TOKEN_KEY_BYTES = 32;

export function newToken(): string {
  return `whsec_${randomBytes(TOKEN_KEY_BYTES).toString('base64')}`;
}
