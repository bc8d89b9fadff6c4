/**
 * How the providers' native webhooks prove who sent them. Every check is a
 * constant-time comparison; nothing here does I/O.
 *
 *   GitHub             X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>
 *   Bitbucket Cloud    X-Hub-Signature:     sha256=<hex HMAC-SHA256(secret, raw body)>
 *   Gitea / Forgejo    X-Gitea-Signature / X-Forgejo-Signature: <hex HMAC-SHA256(secret, JSON payload)>
 *   GitLab             X-Gitlab-Token: <the secret itself>, or its signing token, which is
 *                      Standard Webhooks (see standard-webhooks.ts: parseStandardHeaders,
 *                      verifyStandardWebhook)
 *
 * The HMAC key is the secret's UTF-8 bytes exactly as pasted into the provider (a `whsec_` prefix
 * included): the providers do not decode it.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { TokenOrKeys } from './token-keys';

export const GITHUB_SIGNATURE_HEADER = 'x-hub-signature-256';
export const BITBUCKET_SIGNATURE_HEADER = 'x-hub-signature';
export const GITEA_SIGNATURE_HEADER = 'x-gitea-signature';
export const FORGEJO_SIGNATURE_HEADER = 'x-forgejo-signature';
export const GITLAB_TOKEN_HEADER = 'x-gitlab-token';

const PREFIXED_HEX_SHA256 = /^sha256=([0-9a-fA-F]{64})$/;
const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

/** A signature header's HMAC bytes, or undefined when the value is not `sha256=<64 hex>`. */
export function parseHubSignature(value: string | undefined): Buffer | undefined {
  const match = value === undefined ? null : PREFIXED_HEX_SHA256.exec(value.trim());
  return match ? Buffer.from(match[1]!, 'hex') : undefined;
}

/** A bare hex signature's HMAC bytes (Gitea, Forgejo), or undefined when it is not 64 hex digits. */
export function parseHexSignature(value: string | undefined): Buffer | undefined {
  const trimmed = value?.trim();
  return trimmed !== undefined && HEX_SHA256.test(trimmed) ? Buffer.from(trimmed, 'hex') : undefined;
}

/** An HMAC-SHA256's length: a signature of any other length is refused before anything is hashed. */
const SIGNATURE_BYTES = 32;

function hmacSha256(secret: TokenOrKeys, body: Buffer | string): Buffer {
  return createHmac('sha256', typeof secret === 'string' ? secret : secret.rawKey)
    .update(body)
    .digest();
}

/** True when `signature` (parsed by parseHubSignature or parseHexSignature) is the HMAC-SHA256 of `body` under `secret`. */
export function verifyBodyHmac(secret: TokenOrKeys, body: Buffer | string, signature: Buffer): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false;
  return timingSafeEqual(signature, hmacSha256(secret, body));
}

/** The `X-Hub-Signature-256` (GitHub) or `X-Hub-Signature` (Bitbucket) value a provider sends for this body. */
export function signHubBody(secret: string, body: Buffer | string): string {
  return `sha256=${hmacSha256(secret, body).toString('hex')}`;
}

/**
 * GitLab's plain secret token. Both sides are hashed first so the comparison takes the same time
 * whatever the lengths, and says nothing about how much of a guess was right.
 */
export function gitlabTokenMatches(secret: TokenOrKeys, received: string): boolean {
  const expected = typeof secret === 'string' ? createHash('sha256').update(secret, 'utf8').digest() : secret.digest;
  const actual = createHash('sha256').update(received, 'utf8').digest();
  return timingSafeEqual(expected, actual);
}
