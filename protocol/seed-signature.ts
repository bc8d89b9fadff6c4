/**
 * The seed-compatible scheme: exactly what the original Python sender and server
 * compute, so senders still running the original code keep working.
 *
 *   X-Signature-Timestamp: <unix seconds>
 *   X-Signature: H^n("<ts>:<repo>:<branch>:<token>")   where H(s) = lowercase hex SHA-256 of s
 */
import { hash, timingSafeEqual } from 'node:crypto';

export const SEED_DEFAULT_ITERATIONS = 1000;
export const SEED_TIMESTAMP_HEADER = 'x-signature-timestamp';
export const SEED_SIGNATURE_HEADER = 'x-signature';

const TIMESTAMP_SHAPE = /^[0-9]{1,12}$/;
const SIGNATURE_SHAPE = /^[0-9a-fA-F]{64}$/;

/** n rounds of hex SHA-256, each round hashing the previous round's hex string. */
export function seedSignature(
  timestamp: number | string,
  repository: string,
  branch: string,
  token: string,
  iterations: number = SEED_DEFAULT_ITERATIONS,
): string {
  let value = `${timestamp}:${repository}:${branch}:${token}`;
  for (let round = 0; round < iterations; round++) value = hash('sha256', value, 'hex');
  return value;
}

export type SeedHeaderProblem = { header: string; reason: string };

/** The two seed headers, well-formed: whole unix seconds and a lowercase hex signature. */
export interface SeedHeaders {
  timestamp: number;
  signature: string;
}

/** Checks the two headers' shape, cheaply, before any hashing. */
export function parseSeedHeaders(
  timestampHeader: string | undefined,
  signatureHeader: string | undefined,
): SeedHeaders | SeedHeaderProblem {
  if (timestampHeader === undefined) return { header: 'X-Signature-Timestamp', reason: 'is missing' };
  if (!TIMESTAMP_SHAPE.test(timestampHeader)) {
    return { header: 'X-Signature-Timestamp', reason: 'must be whole unix seconds' };
  }
  if (signatureHeader === undefined) return { header: 'X-Signature', reason: 'is missing' };
  if (!SIGNATURE_SHAPE.test(signatureHeader)) {
    return { header: 'X-Signature', reason: 'must be 64 hex characters' };
  }
  return { timestamp: Number(timestampHeader), signature: signatureHeader.toLowerCase() };
}

/** Constant-time comparison of two lowercase hex signatures of equal length. */
export function seedSignaturesEqual(expected: string, received: string): boolean {
  if (expected.length !== received.length) return false;
  return timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(received, 'latin1'));
}

/** The path the original sender posts to: `/<repo>-<branch>`. */
export function seedPath(repository: string, branch: string): string {
  return `/${encodeURIComponent(`${repository}-${branch}`)}`;
}
