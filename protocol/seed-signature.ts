/**
 * The seed-compatible scheme: exactly what the original Python sender and server
 * compute, so senders still running the original code keep working.
 *
 *   X-Signature-Timestamp: <unix seconds>
 *   X-Signature: H^n("<ts>:<repo>:<branch>:<token>")   where H(s) = lowercase hex SHA-256 of s
 */
import { hash, timingSafeEqual } from 'node:crypto';

export const SEED_DEFAULT_ITERATIONS = 1000;
/**
 * The most rounds a trigger may ask for. The original sender computed the chain in Python on a
 * Lambda function (Python 2.7, 128 MB by default: a small share of one core) and the original
 * server in its request handler, at roughly a microsecond per round on a whole core: 100,000
 * rounds already cost its sender over a second and its server a tenth of one per request, a
 * hundred times its own default. Its users had no reason to go past it; a receiver that accepts
 * more lets anyone with a fresh timestamp demand that much work per request.
 */
export const SEED_MAX_ITERATIONS = 100_000;
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
  return hashChain(seedSigningString(timestamp, repository, branch, token), iterations);
}

/** What the first round hashes: `<ts>:<repo>:<branch>:<token>`. */
export function seedSigningString(timestamp: number | string, repository: string, branch: string, token: string): string {
  return `${timestamp}:${repository}:${branch}:${token}`;
}

/** n rounds of lowercase hex SHA-256 over `input`, each round hashing the previous round's hex. */
export function hashChain(input: string, iterations: number): string {
  let value = input;
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
