/**
 * One TokenSource for the whole receiver, routing each trigger to where its token lives: inline in
 * the config, an environment variable, the token file, or SSM Parameter Store, in that order.
 */
import type { Logger } from 'pino';
import { shortTokenWarning, triggerKey, triggerLabel } from '../../protocol';
import type { ReceiverConfig } from '../config/schema';
import type { PreparedChange } from '../lifecycle';
import type { SsmTokenSource } from './ssm-token-source';
import type { TriggerTable } from '../config/trigger-table';
import { FileTokenSource } from './file-token-source';
import type { TokenRef, TokenSource } from './token-source';

/**
 * The SSM source, loaded only when a config names it: the AWS SDK it brings costs a receiver
 * ~20 MiB and a slower start, which a receiver on local tokens has no use for.
 */
function loadSsmTokenSource(): typeof SsmTokenSource {
  return (require('./ssm-token-source') as typeof import('./ssm-token-source')).SsmTokenSource;
}

/** Tokens that are fixed for the receiver's life (inline or from the environment). */
class FixedTokens implements TokenSource {
  constructor(private readonly byTokenName: Map<string, readonly string[]>) {}
  async tokens(ref: TokenRef): Promise<readonly string[]> {
    return this.tokensAtHand(ref);
  }
  tokensAtHand(ref: TokenRef): readonly string[] {
    return this.byTokenName.get(ref.tokenName) ?? NO_TOKENS;
  }
  refresh(): boolean {
    return false;
  }
}

const NO_TOKENS: readonly string[] = [];

export interface TokenSourceOptions {
  env?: NodeJS.ProcessEnv;
  /** Builds the SSM source when the config names one. @default an SsmTokenSource with the SDK's default resolution */
  ssm?: (settings: NonNullable<ReceiverConfig['tokens']['ssm']>) => TokenSource;
  now?: () => number;
  /** Where token sources log look-up failures (never a value). */
  logger?: Logger;
}

export class ReceiverTokens implements TokenSource {
  private constructor(
    private route: Map<string, TokenSource>,
    private sources: TokenSource[],
    /** Where a token named by something other than a trigger (a notification's `tokenName`) lives. */
    private named: (tokenName: string) => Promise<TokenSource | undefined>,
    private refs: readonly TokenRef[],
  ) {}

  /**
   * A reloaded config's tokens, prepared: the new sources are opened now, so tokens that cannot be
   * had throw here and leave the old ones in use. Committed, they take effect in place (whoever
   * holds this object keeps it) and the old sources close; abandoned, the new ones close.
   */
  async prepareReconfigure(config: ReceiverConfig, table: TriggerTable, options: TokenSourceOptions = {}): Promise<PreparedChange> {
    const next = await ReceiverTokens.open(config, table, options);
    return {
      commit: () => {
        const old = this.sources;
        ({ route: this.route, sources: this.sources, named: this.named, refs: this.refs } = next);
        this.sourceByRef = new WeakMap();
        for (const source of old) source.close?.();
      },
      abandon: () => next.close(),
    };
  }

  /** The current secret stored under `tokenName` in the token file or SSM (a signing token, a deploy key; never for verifying). */
  async tokenNamed(tokenName: string): Promise<string | undefined> {
    const [current] = (await (await this.named(tokenName))?.tokens({ repository: '', branch: '', tokenName })) ?? [];
    return current;
  }

  /**
   * Whether every trigger's token can be had now (an SSM source that cannot be reached and has
   * nothing cached cannot verify anything). Never names a token, only where it failed.
   */
  async health(timeoutMs = 3000): Promise<{ status: 'ok' } | { status: 'degraded'; reason: string }> {
    const problems: string[] = [];
    await Promise.all(
      this.refs.map(async (ref) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        });
        try {
          const tokens = await Promise.race([this.tokens(ref), late]);
          if (tokens.length === 0) problems.push(`${ref.tokenName}: no token`);
        } catch (error) {
          problems.push(`${ref.tokenName}: ${(error as Error).message}`);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return problems.length === 0 ? { status: 'ok' } : { status: 'degraded', reason: [...new Set(problems)].sort().join('; ') };
  }

  static async open(config: ReceiverConfig, table: TriggerTable, options: TokenSourceOptions = {}): Promise<ReceiverTokens> {
    const env = options.env ?? process.env;
    const fixed = new Map<string, readonly string[]>();
    const fixedSource = new FixedTokens(fixed);
    const file = config.tokens.file ? await FileTokenSource.open(config.tokens.file, config.tokens.graceSeconds, options.now) : undefined;
    let ssm: TokenSource | undefined;
    const openSsm = (settings: NonNullable<ReceiverConfig['tokens']['ssm']>): TokenSource =>
      (options.ssm ?? ((s) => new (loadSsmTokenSource())({ ...s, now: options.now, logger: options.logger })))(settings);
    const route = new Map<string, TokenSource>();
    const problems: string[] = [];
    const warnings = new Set<string>();
    const warnIfShort = (where: string, value: string) => {
      const warning = shortTokenWarning(where, value);
      if (warning) warnings.add(warning);
    };

    for (const [index, trigger] of table.all().entries()) {
      const { config: t, token } = trigger;
      if (t.token !== undefined) {
        warnIfShort(`triggers[${index}].token (${triggerLabel(t)})`, t.token);
        fixed.set(token.tokenName, [t.token]);
        route.set(trigger.key, fixedSource);
      } else if (t.tokenEnv !== undefined) {
        const value = env[t.tokenEnv];
        if (value === undefined || value === '') {
          problems.push(`triggers[${index}].tokenEnv: environment variable ${t.tokenEnv} is ${value === undefined ? 'not set' : 'empty'}`);
        } else {
          warnIfShort(`the token in ${t.tokenEnv} (triggers[${index}], ${triggerLabel(t)})`, value);
          fixed.set(token.tokenName, [value]);
          route.set(trigger.key, fixedSource);
        }
      } else if (file?.has(token.tokenName)) {
        for (const value of await file.tokens(token)) warnIfShort(`token ${token.tokenName} in ${config.tokens.file}`, value);
        route.set(trigger.key, file);
      } else if (config.tokens.ssm) {
        ssm ??= openSsm(config.tokens.ssm);
        route.set(trigger.key, ssm);
      } else {
        problems.push(`triggers[${index}]: no token named ${token.tokenName} in ${config.tokens.file ?? 'the config'}`);
      }
    }
    if (problems.length > 0) throw new Error(`tokens are missing:\n  ${[...new Set(problems)].join('\n  ')}`);
    for (const warning of warnings) options.logger?.warn(warning);
    const sources = [fixedSource, ...(file ? [file] : []), ...(ssm ? [ssm] : [])];
    const named = async (tokenName: string): Promise<TokenSource | undefined> => {
      // A secret added to or replaced in the token file after the start (a new deploy key, one
      // `tokens deploy-key --replace` wrote) is used without a SIGHUP: the file is re-read when it
      // changed, at most every two seconds.
      await file?.refresh();
      if (file?.has(tokenName)) return file;
      if (!config.tokens.ssm) return undefined;
      if (!ssm) {
        ssm = openSsm(config.tokens.ssm);
        sources.push(ssm);
      }
      return ssm;
    };
    return new ReceiverTokens(
      route,
      sources,
      named,
      table.all().map((trigger) => trigger.token),
    );
  }

  /** A trigger's source by its TokenRef (one object per trigger in a trigger table), so a delivery builds no key to find it. */
  private sourceByRef = new WeakMap<TokenRef, TokenSource | null>();

  private sourceFor(ref: TokenRef): TokenSource | undefined {
    let source = this.sourceByRef.get(ref);
    if (source === undefined) {
      source = this.route.get(triggerKey(ref.repository, ref.branch)) ?? null;
      this.sourceByRef.set(ref, source);
    }
    return source ?? undefined;
  }

  tokens(ref: TokenRef): Promise<readonly string[]> {
    return this.sourceFor(ref)?.tokens(ref) ?? Promise.resolve(NO_TOKENS);
  }

  tokensAtHand(ref: TokenRef): readonly string[] | undefined {
    const source = this.sourceFor(ref);
    return source === undefined ? NO_TOKENS : source.tokensAtHand?.(ref);
  }

  refresh(ref: TokenRef): boolean | Promise<boolean> {
    return this.sourceFor(ref)?.refresh(ref) ?? false;
  }

  async reload(): Promise<void> {
    for (const source of this.sources) await source.reload?.();
  }

  close(): void {
    for (const source of this.sources) source.close?.();
  }
}
