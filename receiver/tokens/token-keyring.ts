/**
 * The keys of the tokens the receiver verifies with, imported once per token (protocol's
 * TokenKeys) rather than once per request. Bounded: a source whose tokens change (a rotation, a
 * reload) leaves retired ones behind, and past the bound the ring starts again.
 */
import { TokenKeys } from '../../protocol';

const KEYRING_MAX = 256;
const byToken = new Map<string, TokenKeys>();
/** A source that hands out the same array for the same tokens (fixed tokens) gets the same keys back, with no look-up. */
const byTokenList = new WeakMap<readonly string[], readonly TokenKeys[]>();

export function keysOf(token: string): TokenKeys {
  let keys = byToken.get(token);
  if (keys === undefined) {
    if (byToken.size >= KEYRING_MAX) byToken.clear();
    keys = new TokenKeys(token);
    byToken.set(token, keys);
  }
  return keys;
}

export function keysOfTokens(tokens: readonly string[]): readonly TokenKeys[] {
  let keys = byTokenList.get(tokens);
  if (keys === undefined) {
    keys = tokens.map(keysOf);
    byTokenList.set(tokens, keys);
  }
  return keys;
}
