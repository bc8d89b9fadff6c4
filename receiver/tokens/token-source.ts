/**
 * Where the receiver finds the tokens that verify a trigger's deliveries. Every source (inline,
 * environment, token file, SSM) stands behind this one interface.
 */
import type { TokenRef } from '../config/trigger-table';

export type { TokenRef };

export interface TokenSource {
  /**
   * Tokens that verify this trigger's deliveries now: the current one first, then any previous one
   * still inside its grace period. Empty when the source has none for it.
   */
  tokens(ref: TokenRef): Promise<readonly string[]>;
  /**
   * What tokens() would resolve to, when the source has it at hand without asking anyone (inline,
   * environment and file tokens; SSM's while its cache serves): verified then with no promise.
   * Undefined when only tokens() can say. A source should hand out the same array while its
   * tokens stay the same (their keys are kept by it).
   */
  tokensAtHand?(ref: TokenRef): readonly string[] | undefined;
  /**
   * A signature failed against every token from tokens(): look again, in case the token was
   * rotated. Rate-limited by the source (a flood of bad signatures is not a flood of look-ups):
   * false at once when it will not look now. True (or a promise of true) when the tokens changed.
   */
  refresh(ref: TokenRef): boolean | Promise<boolean>;
  /** Called on SIGHUP: re-read what can be re-read. */
  reload?(): Promise<void>;
  close?(): void;
}
