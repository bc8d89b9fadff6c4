/**
 * A token with the keys it stands for, imported once. Importing an HMAC key costs about as much as
 * the HMAC of a small body, and a verifier checks the same few tokens over and over: whoever holds
 * a token for a while (the receiver's token side) keeps one of these per token and passes it where
 * the verifiers take a token. Each key is made on first use; nothing here is cached across tokens.
 *
 * Measured on Node 20 (HMAC-SHA256 of a 300-byte body): createHmac with an imported key 2.3 µs,
 * with the raw bytes 2.6 µs, importing the key each time 3.8 µs; copying precomputed inner and
 * outer SHA-256 states (Hash.copy) 3.2–4.5 µs, slower than OpenSSL's own HMAC with a ready key.
 */
import { createHash, createSecretKey, type KeyObject } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';

/** The Standard Webhooks HMAC key bytes a token stands for: a `whsec_` token is the spec's base64 key, any other its UTF-8 bytes. */
export function standardWebhookKey(token: string): Buffer {
  if (token.startsWith(SECRET_PREFIX)) return Buffer.from(token.slice(SECRET_PREFIX.length), 'base64');
  return Buffer.from(token, 'utf8');
}

export class TokenKeys {
  private standard: KeyObject | undefined;
  private raw: KeyObject | undefined;
  private sha256: Buffer | undefined;

  constructor(readonly token: string) {}

  /** The Standard Webhooks key (standardWebhookKey). */
  get standardKey(): KeyObject {
    return (this.standard ??= createSecretKey(standardWebhookKey(this.token)));
  }

  /** The token's UTF-8 bytes as the key, exactly as pasted into a provider (a `whsec_` prefix included). */
  get rawKey(): KeyObject {
    return (this.raw ??= createSecretKey(Buffer.from(this.token, 'utf8')));
  }

  /** SHA-256 of the token: what a secret sent as it is (GitLab's X-Gitlab-Token) is compared against. */
  get digest(): Buffer {
    return (this.sha256 ??= createHash('sha256').update(this.token, 'utf8').digest());
  }
}

/** What the verifiers take: a token, or its keys when the caller keeps them. */
export type TokenOrKeys = string | TokenKeys;
