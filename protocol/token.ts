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

/** Tokens shorter than this draw a warning: the original server's users may have any, and keep them. */
export const RECOMMENDED_TOKEN_LENGTH = 16;

/**
 * The warning a short token draws (never the token itself). The original server took any token —
 * its README's example is 11 characters — so a short one is accepted, loudly, rather than refused.
 */
export function shortTokenWarning(where: string, token: string): string | undefined {
  if (token.length >= RECOMMENDED_TOKEN_LENGTH) return undefined;
  return `${where} is only ${token.length} characters long: a token this short can be guessed. It is accepted, as the original server accepted it; replace it with a generated one (triggler tokens rotate) on both ends`;
}
