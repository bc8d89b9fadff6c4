/**
 * Trigger tokens from SSM Parameter Store (SecureString, read with decryption), kept for a TTL per
 * execution environment so a burst of pushes is not a burst of GetParameter calls. After a rotation
 * the sender picks up the new token within the TTL; the receiver's grace period covers the gap.
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
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number;
}

interface CacheEntry {
  value: Promise<string>;
  expiresAt: number;
}

const MAX_REASON_LENGTH = 300;

export class SsmTokenCache implements TokenReader {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly now: () => number;

  constructor(private readonly options: SsmTokenCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  token(parameter: string): Promise<string> {
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

  private async read(parameter: string): Promise<string> {
    let value: string | undefined;
    try {
      const output = await this.options.client.send(new GetParameterCommand({ Name: parameter, WithDecryption: true }));
      value = output.Parameter?.Value;
    } catch (error) {
      throw new TokenUnavailableError(parameter, describeSsmError(error));
    }
    if (value === undefined || value === '') throw new TokenUnavailableError(parameter, 'the parameter has no value');
    return value;
  }
}

/** Why a token could not be read, without its value: AWS error messages name resources, never values. */
function describeSsmError(error: unknown): string {
  return describeAwsError(error, MAX_REASON_LENGTH);
}
