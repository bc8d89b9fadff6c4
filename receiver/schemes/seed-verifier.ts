/**
 * Seed-scheme verification at bounded cost. n rounds of SHA-256 per check is work an
 * unauthenticated caller could make us do, so the expected signature for a (trigger, timestamp,
 * token) is computed once and remembered while the timestamp is inside the window: a flood of
 * forged signatures costs one hash chain per timestamp, not one per request.
 */
import { seedSignature, seedSignaturesEqual } from '../../protocol';
import type { Trigger } from '../config/trigger-table';

interface Expected {
  tokens: readonly string[];
  signatures: string[];
}

export class SeedVerifier {
  private readonly expected = new Map<string, Expected>();
  private lastSweep = 0;

  constructor(private readonly windowSeconds: number) {}

  /** True when `signature` is the seed signature of (trigger, timestamp) under any of `tokens`. */
  verify(trigger: Trigger, timestamp: number, signature: string, tokens: readonly string[], nowSeconds: number): boolean {
    this.sweep(nowSeconds);
    const cacheKey = `${trigger.key}\u0000${timestamp}`;
    let entry = this.expected.get(cacheKey);
    if (!entry || !sameTokens(entry.tokens, tokens)) {
      const { repository, branch } = trigger.config;
      entry = {
        tokens: [...tokens],
        signatures: tokens.map((token) => seedSignature(timestamp, repository, branch, token, trigger.iterations)),
      };
      this.expected.set(cacheKey, entry);
    }
    let ok = false;
    for (const expected of entry.signatures) if (seedSignaturesEqual(expected, signature)) ok = true;
    return ok;
  }

  /** Entries whose timestamp has left the window can never be asked for again. */
  private sweep(nowSeconds: number): void {
    if (nowSeconds - this.lastSweep < 10) return;
    this.lastSweep = nowSeconds;
    for (const key of this.expected.keys()) {
      const timestamp = Number(key.slice(key.lastIndexOf('\u0000') + 1));
      if (nowSeconds - timestamp > this.windowSeconds) this.expected.delete(key);
    }
  }

  get size(): number {
    return this.expected.size;
  }
}

function sameTokens(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
