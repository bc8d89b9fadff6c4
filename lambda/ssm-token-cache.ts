/**
 * Trigger tokens from SSM Parameter Store (SecureString, read with decryption), kept for a TTL per
 * execution environment so a burst of pushes is not a burst of GetParameter calls. After a rotation
 * the sender picks up the new token within the TTL; the receiver's grace period covers the gap.
 * A verifier (the webhook relay) asks for `acceptedTokens`: with `graceSeconds`, the version before
 * the current one too, for that long after the rotation, as the receiver accepts it.
 */
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { describeAwsError } from '../protocol';

/** Where the sender gets a token by parameter name. */
export interface TokenReader {
  token(parameter: string): Promise<string>;
}

/** A token that could not be read. Names the parameter and the reason; never holds a value. */
export class TokenUnavailableError extends Error {
  constructor(
    readonly parameter: string,
    readonly reason: string,
  ) {
    super(`token parameter ${parameter} could not be read: ${reason}`);
    this.name = 'TokenUnavailableError';
  }
}

export interface SsmTokenCacheOptions {
  client: SSMClient;
  /** 0 reads SSM on every call. */
  ttlSeconds: number;
  /**
   * How long after a rotation `acceptedTokens` still holds the previous version (read with a
   * `<name>:<version>` selector, so only GetParameter is needed). 0: never.
   * @default 0
   */
  graceSeconds?: number;
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number;
}

/** What SSM holds for one token, as far as signing and verifying need it. */
interface TokenVersions {
  current: string;
  previous?: { value: string; until: number };
}

interface CacheEntry {
  value: Promise<TokenVersions>;
  expiresAt: number;
}

const MAX_REASON_LENGTH = 300;

export class SsmTokenCache implements TokenReader {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly now: () => number;

  constructor(private readonly options: SsmTokenCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  async token(parameter: string): Promise<string> {
    return (await this.versions(parameter)).current;
  }

  /** The current token, and the previous one while its grace period lasts. */
  async acceptedTokens(parameter: string): Promise<string[]> {
    const { current, previous } = await this.versions(parameter);
    return previous && previous.until > this.now() ? [current, previous.value] : [current];
  }

  private versions(parameter: string): Promise<TokenVersions> {
    const now = this.now();
    const cached = this.entries.get(parameter);
    if (cached && cached.expiresAt > now) return cached.value;
    // The promise itself is cached, so deliveries that need the same token at once share one call.
    const value = this.read(parameter);
    const entry = { value, expiresAt: now + this.options.ttlSeconds * 1000 };
    this.entries.set(parameter, entry);
    value.catch(() => {
      // A failed read is not remembered: the next delivery (or Lambda's retry) asks again.
      if (this.entries.get(parameter) === entry) this.entries.delete(parameter);
    });
    return value;
  }

  /** Forget every cached token (e.g. after a rotation that must take effect at once). */
  clear(): void {
    this.entries.clear();
  }

  /** Forget one cached token: the next call reads it again. */
  forget(parameter: string): void {
    this.entries.delete(parameter);
  }

  private async read(parameter: string): Promise<TokenVersions> {
    const current = await this.readVersion(parameter);
    const graceMs = (this.options.graceSeconds ?? 0) * 1000;
    const until = (current.modifiedAt ?? 0) + graceMs;
    if (graceMs === 0 || current.version === undefined || current.version < 2 || until <= this.now()) return { current: current.value };
    try {
      const previous = await this.readVersion(`${parameter}:${current.version - 1}`);
      return { current: current.value, previous: { value: previous.value, until } };
    } catch {
      // SSM keeps 100 versions; one that is gone (or unreadable) only ends the grace early.
      return { current: current.value };
    }
  }

  private async readVersion(name: string): Promise<{ value: string; version?: number; modifiedAt?: number }> {
    let parameter;
    try {
      parameter = (await this.options.client.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter;
    } catch (error) {
      throw new TokenUnavailableError(name, describeSsmError(error));
    }
    const value = parameter?.Value;
    if (value === undefined || value === '') throw new TokenUnavailableError(name, 'the parameter has no value');
    return { value, version: parameter?.Version, modifiedAt: parameter?.LastModifiedDate?.getTime() };
  }
}

/** Why a token could not be read, without its value: AWS error messages name resources, never values. */
function describeSsmError(error: unknown): string {
  return describeAwsError(error, MAX_REASON_LENGTH);
}
