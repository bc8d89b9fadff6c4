/**
 * Trigger tokens from SSM Parameter Store: the SecureString `<prefix>/<tokenName>`, read with
 * decryption. This is what lets a token be rotated under live traffic without refusing anything:
 *
 * - Each token is cached for `ttlSeconds`; after that the next delivery looks it up again.
 * - A signature that fails against the cached tokens may mean the sender already has a newer token:
 *   `refresh` looks again, but at most once per `refreshIntervalMs` per token, and concurrent
 *   callers share one look-up, so a flood of bad signatures is not a flood of SSM calls.
 * - After a rotation the previous version (from `GetParameterHistory`) still verifies for
 *   `graceSeconds` after the current version's modification time: senders that cached the old
 *   token keep getting through until their cache expires.
 * - When SSM fails or throttles, what is cached keeps serving (stale is better than refusing valid
 *   deliveries); only with nothing cached does `tokens` throw, which the server answers with a
 *   retryable 503. Errors are logged with the parameter name and the error code, never a value.
 */
import { GetParameterCommand, GetParameterHistoryCommand, SSMClient } from '@aws-sdk/client-ssm';
import pino, { type Logger } from 'pino';
import { describeAwsError, tokenParameterName } from '../../protocol';
import type { TokenRef, TokenSource } from './token-source';

export interface SsmTokenSourceOptions {
  /** Parameter path prefix, starting with `/`, without a trailing `/`. */
  prefix: string;
  ttlSeconds: number;
  graceSeconds: number;
  /** @default an SSMClient with the SDK's default credential, region and endpoint resolution */
  client?: SSMClient;
  /** @default a pino logger on stdout */
  logger?: Logger;
  /** Epoch milliseconds. @default Date.now */
  now?: () => number;
  /** Least time between two look-ups that failed signatures cause, per token. @default 5000 */
  refreshIntervalMs?: number;
  /** After a failed look-up, how long cached tokens serve before SSM is asked again. @default 5000 */
  retryIntervalMs?: number;
}

/** What SSM holds for one token, as far as verification needs it. */
interface TokenVersions {
  current: string;
  version: number;
  /** Epoch ms of the current version's LastModifiedDate: the grace period runs from here. */
  modifiedAt: number;
  previous?: { value: string; version: number };
}

interface CachedToken {
  /** undefined: never read; null: SSM says there is no such parameter. */
  versions: TokenVersions | null | undefined;
  /** When the look-up that produced `versions` began (epoch ms). */
  fetchedAt: number;
  /** Bumped whenever `versions` changes, so a caller can tell whether a look-up found news. */
  generation: number;
  /** When `versions` last changed after the first read (epoch ms). */
  changedAt: number;
  /** When the last look-up caused by a failed signature began (epoch ms). */
  lastRefreshAt: number;
  /** After a failed look-up: no new attempt before this (epoch ms). */
  retryAfter: number;
  /** The last look-up's error code, for the message when nothing is cached. */
  lastError?: string;
  inFlight?: Promise<void>;
  /** The token lists `versions` stands for, made when it changes: the same array while the tokens stay the same. */
  lists?: { current: readonly string[]; withPrevious?: readonly string[] } | undefined;
}

/** A look-up failed for a reason worth naming; carries the AWS error code, never a value. */
class SsmLookUpError extends Error {}

const NO_TOKENS: readonly string[] = [];
const HISTORY_PAGE_SIZE = 50;
/** SSM keeps 100 versions; a few more pages than that would need are a bound, not a limit. */
const MAX_HISTORY_PAGES = 4;
const MAX_REASON_LENGTH = 200;

const describeSsmError = (error: unknown): string => describeAwsError(error, MAX_REASON_LENGTH);

function errorName(error: unknown): string | undefined {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return typeof name === 'string' ? name : undefined;
}

function sameVersions(a: TokenVersions | null | undefined, b: TokenVersions | null): boolean {
  if (a === undefined) return false;
  if (a === null || b === null) return a === b;
  return a.version === b.version && a.current === b.current && a.previous?.version === b.previous?.version;
}

export class SsmTokenSource implements TokenSource {
  private readonly cache = new Map<string, CachedToken>();
  private readonly client: SSMClient;
  private readonly ownsClient: boolean;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly graceMs: number;
  private readonly refreshIntervalMs: number;
  private readonly retryIntervalMs: number;

  constructor(private readonly options: SsmTokenSourceOptions) {
    this.ownsClient = options.client === undefined;
    // A delivery waits on a look-up only when its token's cache has expired; bounded timeouts and
    // one retry keep that wait short when SSM is unreachable (the SDK's default is no timeout).
    this.client = options.client ?? new SSMClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 2000, requestTimeout: 4000 } });
    this.logger = (options.logger ?? pino({ base: { service: 'triggler-receiver' } })).child({ tokens: 'ssm' });
    this.now = options.now ?? Date.now;
    this.ttlMs = options.ttlSeconds * 1000;
    this.graceMs = options.graceSeconds * 1000;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 5000;
    this.retryIntervalMs = options.retryIntervalMs ?? 5000;
  }

  /** `<prefix>/<tokenName>`: the same name the stack writes and `triggler tokens` rotates. */
  parameterName(tokenName: string): string {
    return tokenParameterName(this.options.prefix, tokenName);
  }

  async tokens(ref: TokenRef): Promise<readonly string[]> {
    const parameter = this.parameterName(ref.tokenName);
    const cached = this.cached(parameter);
    const fresh = cached.versions !== undefined && this.now() - cached.fetchedAt < this.ttlMs;
    if (!fresh) {
      if (cached.inFlight) await cached.inFlight;
      else if (this.now() >= cached.retryAfter) await this.lookUp(parameter, cached);
    }
    if (cached.versions === undefined) {
      throw new Error(
        `token parameter ${parameter} could not be read from SSM (${cached.lastError ?? 'no answer yet'}) and none is cached`,
      );
    }
    return this.tokensOf(cached);
  }

  /** What tokens() would serve without a look-up: a fresh cache, or a stale one while SSM is not to be asked again yet. */
  tokensAtHand(ref: TokenRef): readonly string[] | undefined {
    const cached = this.cache.get(this.parameterName(ref.tokenName));
    if (cached === undefined || cached.versions === undefined) return undefined;
    const now = this.now();
    const fresh = now - cached.fetchedAt < this.ttlMs;
    if (!fresh && (cached.inFlight !== undefined || now >= cached.retryAfter)) return undefined;
    return this.tokensOf(cached);
  }

  refresh(ref: TokenRef): boolean | Promise<boolean> {
    const parameter = this.parameterName(ref.tokenName);
    const cached = this.cached(parameter);
    const generation = cached.generation;
    // A look-up already under way may bring the news; if it does not, this caller may still ask.
    if (cached.inFlight) return cached.inFlight.then(() => this.refreshSince(parameter, cached, generation));
    return this.refreshSince(parameter, cached, generation);
  }

  private refreshSince(parameter: string, cached: CachedToken, generation: number): boolean | Promise<boolean> {
    const now = this.now();
    // The caller checked tokens it got a moment ago; if they changed since (even just before this
    // call), one more check is cheap, while a refusal would cost a valid delivery.
    if (cached.generation !== generation || now - cached.changedAt < this.refreshIntervalMs) return true;
    if (now - cached.lastRefreshAt < this.refreshIntervalMs || now < cached.retryAfter) return false;
    cached.lastRefreshAt = now;
    return this.lookUp(parameter, cached).then(() => cached.generation !== generation);
  }

  /** SIGHUP: forget what is cached, so the next delivery of each trigger reads SSM again. */
  async reload(): Promise<void> {
    for (const cached of this.cache.values()) cached.fetchedAt = Number.NEGATIVE_INFINITY;
  }

  close(): void {
    if (this.ownsClient) this.client.destroy();
  }

  private cached(parameter: string): CachedToken {
    let cached = this.cache.get(parameter);
    if (!cached) {
      cached = {
        versions: undefined,
        fetchedAt: 0,
        generation: 0,
        changedAt: Number.NEGATIVE_INFINITY,
        lastRefreshAt: Number.NEGATIVE_INFINITY,
        retryAfter: 0,
      };
      this.cache.set(parameter, cached);
    }
    return cached;
  }

  private tokensOf(cached: CachedToken): readonly string[] {
    const versions = cached.versions;
    if (!versions) return NO_TOKENS;
    cached.lists ??= {
      current: [versions.current],
      ...(versions.previous ? { withPrevious: [versions.current, versions.previous.value] } : {}),
    };
    return cached.lists.withPrevious && this.now() - versions.modifiedAt <= this.graceMs ? cached.lists.withPrevious : cached.lists.current;
  }

  /** One look-up per parameter at a time; never rejects (failures are kept on the entry and logged). */
  private lookUp(parameter: string, cached: CachedToken): Promise<void> {
    if (cached.inFlight) return cached.inFlight;
    const startedAt = this.now();
    const lookUp = (async () => {
      try {
        const versions = await this.read(parameter, cached.versions);
        if (!sameVersions(cached.versions, versions)) {
          if (cached.versions !== undefined) {
            cached.changedAt = this.now();
            this.logger.info(
              { parameter, version: versions?.version ?? null, previousVersion: versions?.previous?.version ?? null },
              'token version changed',
            );
          }
          cached.versions = versions;
          cached.lists = undefined;
          cached.generation++;
        }
        if (cached.lastError !== undefined) this.logger.info({ parameter }, 'SSM token look-up works again');
        cached.fetchedAt = startedAt;
        cached.retryAfter = 0;
        delete cached.lastError;
      } catch (error) {
        const reason = error instanceof SsmLookUpError ? error.message : describeSsmError(error);
        cached.lastError = reason;
        cached.retryAfter = this.now() + this.retryIntervalMs;
        const servingCached = cached.versions !== undefined;
        this.logger[servingCached ? 'warn' : 'error'](
          { parameter, reason, servingCached, retryInSeconds: this.retryIntervalMs / 1000 },
          servingCached ? 'SSM token look-up failed; cached tokens keep serving' : 'SSM token look-up failed and no token is cached',
        );
      } finally {
        cached.inFlight = undefined;
      }
    })();
    cached.inFlight = lookUp;
    return lookUp;
  }

  /** The current version and, inside its grace period, the previous one; null when there is no parameter. */
  private async read(parameter: string, known: TokenVersions | null | undefined): Promise<TokenVersions | null> {
    let output;
    try {
      output = await this.client.send(new GetParameterCommand({ Name: parameter, WithDecryption: true }));
    } catch (error) {
      if (errorName(error) === 'ParameterNotFound') {
        if (known !== null) this.logger.warn({ parameter }, 'no such token parameter in SSM: its trigger refuses every delivery');
        return null;
      }
      throw error;
    }
    const value = output?.Parameter?.Value;
    if (value === undefined || value === '') throw new SsmLookUpError('the parameter has no value');
    const version = output?.Parameter?.Version ?? 0;
    // Without a modification time no grace can be measured; the previous version is not accepted.
    const modifiedAt = output?.Parameter?.LastModifiedDate?.getTime() ?? Number.NEGATIVE_INFINITY;
    const versions: TokenVersions = { current: value, version, modifiedAt };
    if (version > 1 && this.now() - modifiedAt <= this.graceMs) {
      const previous = this.previousFromCache(known, version) ?? (await this.previousFromHistory(parameter, version));
      if (previous) versions.previous = previous;
    }
    return versions;
  }

  /** A receiver that held version n-1 when version n appeared already knows the previous token. */
  private previousFromCache(known: TokenVersions | null | undefined, version: number): TokenVersions['previous'] {
    if (!known) return undefined;
    if (known.version === version) return known.previous;
    if (known.version === version - 1) return { value: known.current, version: known.version };
    return undefined;
  }

  private async previousFromHistory(parameter: string, version: number): Promise<TokenVersions['previous']> {
    let best: TokenVersions['previous'];
    let nextToken: string | undefined;
    // History comes oldest first: the versions before the current one are on the last page.
    for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
      const output = await this.client.send(
        new GetParameterHistoryCommand({
          Name: parameter,
          WithDecryption: true,
          MaxResults: HISTORY_PAGE_SIZE,
          ...(nextToken ? { NextToken: nextToken } : {}),
        }),
      );
      for (const entry of output?.Parameters ?? []) {
        if (entry.Version === undefined || entry.Value === undefined || entry.Value === '') continue;
        if (entry.Version < version && (best === undefined || entry.Version > best.version))
          best = { value: entry.Value, version: entry.Version };
      }
      nextToken = output?.NextToken;
      if (!nextToken) break;
    }
    return best;
  }
}
