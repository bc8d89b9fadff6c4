/**
 * Seed-scheme verification at bounded cost. n rounds of SHA-256 per check is work an
 * unauthenticated caller could make us do, so:
 * - the expected signature for a (trigger, timestamp, token) is computed once and remembered while
 *   the timestamp is inside the window: a flood of forged signatures costs one hash chain per
 *   timestamp, not one per request;
 * - chains are computed off the event loop (SeedChains), so one never holds other requests;
 * - each trigger may have at most `roundsPerSecond` rounds computed for it per second (a window
 *   holds ~390 timestamps, each a chain to compute): past it a check is answered 429 with
 *   Retry-After, and its sender tries again. A timestamp within FRESH_SECONDS of now, as a sender
 *   signs, is always checked: only about one such timestamp is new each second, so a flood cannot
 *   spend them, and a valid delivery gets through while a flood spends the rest.
 */
import { seedSigningString, seedSignaturesEqual, type TokenKeys } from '../../protocol';
import type { Trigger } from '../config/trigger-table';
import { ReceiverError } from '../errors';
import type { SeedChains } from './seed-chains';

/** How close to now a timestamp is checked whatever the budget. */
export const FRESH_SECONDS = 5;

interface Expected {
  tokens: readonly string[];
  signatures: Promise<string[]>;
  /** The signatures once computed: a check then needs no promise. */
  computed?: string[];
}

/** Rounds a trigger may still have computed, refilled at `roundsPerSecond`. */
interface RoundBudget {
  rounds: number;
  at: number;
}

export interface SeedVerifierOptions {
  windowSeconds: number;
  /** Hash rounds computed per trigger per second, at most. */
  roundsPerSecond: number;
  chains: SeedChains;
}

/** A trigger's share of hash work is spent: the sender should try again once it refills. */
export class SeedWorkExhausted extends ReceiverError {
  constructor(trigger: Trigger, retryAfterSeconds: number) {
    super(
      'seed-work',
      `seed signatures for ${trigger.config.repository}@${trigger.config.branch} are being checked as fast as they may be`,
      { retryAfterSeconds },
    );
    this.name = 'SeedWorkExhausted';
  }
}

export class SeedVerifier {
  private readonly expected = new Map<string, Expected>();
  private readonly budgets = new Map<string, RoundBudget>();
  private lastSweep = 0;

  constructor(private readonly options: SeedVerifierOptions) {}

  /**
   * True when `signature` is the seed signature of (trigger, timestamp) under any of `tokens`: at
   * once when the chains for that timestamp are computed, a promise while they are. Throws
   * SeedWorkExhausted when the trigger's share of hash work is spent.
   */
  verify(
    trigger: Trigger,
    timestamp: number,
    signature: string,
    tokens: readonly (string | TokenKeys)[],
    nowMs: number,
  ): boolean | Promise<boolean> {
    const nowSeconds = Math.floor(nowMs / 1000);
    this.sweep(nowSeconds);
    const cacheKey = `${trigger.key}\u0000${timestamp}`;
    let entry = this.expected.get(cacheKey);
    if (entry?.computed !== undefined && sameTokens(entry.tokens, tokens)) return matchesAny(entry.computed, signature);
    if (!entry || !sameTokens(entry.tokens, tokens)) {
      const values = tokens.map(tokenValue);
      if (Math.abs(nowSeconds - timestamp) > FRESH_SECONDS) this.spend(trigger, trigger.iterations * tokens.length, nowMs);
      const { repository, branch } = trigger.config;
      const signatures = Promise.all(
        values.map((token) => this.options.chains.compute(seedSigningString(timestamp, repository, branch, token), trigger.iterations)),
      );
      const created: Expected = { tokens: values, signatures };
      entry = created;
      this.expected.set(cacheKey, created);
      signatures.then(
        (computed) => {
          created.computed = computed;
        },
        () => {
          if (this.expected.get(cacheKey) === created) this.expected.delete(cacheKey);
        },
      );
    }
    return entry.signatures.then((computed) => matchesAny(computed, signature));
  }

  private spend(trigger: Trigger, rounds: number, nowMs: number): void {
    const rate = this.options.roundsPerSecond;
    // At least one check's worth fits, whatever the trigger's rounds.
    const capacity = Math.max(rate, rounds);
    const budget = this.budgets.get(trigger.key) ?? { rounds: capacity, at: nowMs };
    budget.rounds = Math.min(capacity, budget.rounds + ((nowMs - budget.at) / 1000) * rate);
    budget.at = nowMs;
    this.budgets.set(trigger.key, budget);
    if (budget.rounds < rounds) throw new SeedWorkExhausted(trigger, Math.max(1, Math.ceil((rounds - budget.rounds) / rate)));
    budget.rounds -= rounds;
  }

  /** Entries whose timestamp has left the window can never be asked for again. */
  private sweep(nowSeconds: number): void {
    if (nowSeconds - this.lastSweep < 10) return;
    this.lastSweep = nowSeconds;
    for (const key of this.expected.keys()) {
      const timestamp = Number(key.slice(key.lastIndexOf('\u0000') + 1));
      if (nowSeconds - timestamp > this.options.windowSeconds) this.expected.delete(key);
    }
  }

  get size(): number {
    return this.expected.size;
  }
}

function tokenValue(token: string | TokenKeys): string {
  return typeof token === 'string' ? token : token.token;
}

function sameTokens(a: readonly string[], b: readonly (string | TokenKeys)[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== tokenValue(b[i]!)) return false;
  return true;
}

/** Every expected signature is compared, so the time taken does not say which token matched. */
function matchesAny(expected: readonly string[], signature: string): boolean {
  let ok = false;
  for (const candidate of expected) if (seedSignaturesEqual(candidate, signature)) ok = true;
  return ok;
}
