/**
 * Tokens from a local JSON file, keyed by token name (`<repository>/<branch>` unless a trigger
 * names a shared token):
 *
 *   { "my-repo/main": "whsec_…",
 *     "my-repo/dev": { "current": "whsec_…", "previous": "whsec_…", "rotatedAt": "2026-…Z" } }
 *
 * After a rotation the previous token still verifies for the grace period, so deliveries signed
 * just before the rotation are not refused. The file is refused when group or others may read it.
 */
import { promises as fs, statSync } from 'node:fs';
import { z } from 'zod';
import { describeZodIssues } from '../config/schema';
import type { TokenRef, TokenSource } from './token-source';
import { parseJsonWithComments, PARSED_ONCE } from '../config/config-errors';

const entrySchema = z.union([
  z.string().min(1, 'must not be empty'),
  z.strictObject({
    current: z.string().min(1, 'must not be empty'),
    previous: z.string().min(1).optional(),
    rotatedAt: z.iso.datetime({ offset: true }).optional(),
  }),
]);
export const tokenFileSchema = z.record(z.string().min(1), entrySchema);
export type TokenFile = z.infer<typeof tokenFileSchema>;

/** Refuses a token file that group or others can read or write. */
export function assertPrivateFile(path: string, mode: number): void {
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `token file ${path} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}: it must not be readable or writable by group or others (chmod 600 ${path})`,
    );
  }
}

export async function readTokenFile(path: string): Promise<TokenFile> {
  const handle = await fs.open(path, 'r');
  try {
    assertPrivateFile(path, (await handle.stat()).mode);
    const text = await handle.readFile('utf8');
    // Every line of a token file may be a token: a syntax error says where, never what.
    const raw = parseJsonWithComments(text, `token file ${path}`, false);
    const parsed = tokenFileSchema.safeParse(raw, PARSED_ONCE);
    // The problems name fields, never values: a token must not reach an error message.
    if (!parsed.success) throw new Error(`token file ${path} is not valid:\n  ${describeZodIssues(parsed.error).join('\n  ')}`);
    return parsed.data;
  } finally {
    await handle.close();
  }
}

/** An entry's token lists, made once per read of the file: the same array while the tokens stay the same. */
interface HeldTokens {
  current: readonly string[];
  /** Current and previous, while the previous one is inside its grace. */
  withPrevious?: readonly string[];
  /** Epoch ms of the rotation the grace runs from. */
  rotatedAt: number;
}

function heldTokensOf(entry: TokenFile[string] | undefined): HeldTokens {
  if (entry === undefined) return { current: [], rotatedAt: Number.NEGATIVE_INFINITY };
  if (typeof entry === 'string') return { current: [entry], rotatedAt: Number.NEGATIVE_INFINITY };
  return {
    current: [entry.current],
    ...(entry.previous !== undefined ? { withPrevious: [entry.current, entry.previous] } : {}),
    rotatedAt: entry.rotatedAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(entry.rotatedAt),
  };
}

function tokensAt(held: HeldTokens, graceSeconds: number, nowMs: number): readonly string[] {
  return held.withPrevious !== undefined && nowMs - held.rotatedAt <= graceSeconds * 1000 ? held.withPrevious : held.current;
}

/** The tokens an entry stands for at `nowMs`: current first, then previous inside its grace. */
export function tokensOfEntry(entry: TokenFile[string] | undefined, graceSeconds: number, nowMs: number): string[] {
  return [...tokensAt(heldTokensOf(entry), graceSeconds, nowMs)];
}

export class FileTokenSource implements TokenSource {
  private file: TokenFile = {};
  private held = new Map<string, HeldTokens>();
  private mtimeMs = 0;
  private lastCheck = 0;

  private constructor(
    readonly path: string,
    private readonly graceSeconds: number,
    private readonly now: () => number,
    private readonly minRefreshIntervalMs: number,
  ) {}

  static async open(
    path: string,
    graceSeconds: number,
    now: () => number = Date.now,
    minRefreshIntervalMs = 2000,
  ): Promise<FileTokenSource> {
    const source = new FileTokenSource(path, graceSeconds, now, minRefreshIntervalMs);
    await source.reload();
    return source;
  }

  has(tokenName: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.file, tokenName);
  }

  async tokens(ref: TokenRef): Promise<readonly string[]> {
    return this.tokensAtHand(ref);
  }

  tokensAtHand(ref: TokenRef): readonly string[] {
    let held = this.held.get(ref.tokenName);
    if (held === undefined) {
      held = heldTokensOf(this.file[ref.tokenName]);
      this.held.set(ref.tokenName, held);
    }
    return tokensAt(held, this.graceSeconds, this.now());
  }

  /** Re-reads the file when it changed, at most once per interval whatever the caller does. */
  refresh(): boolean | Promise<boolean> {
    const now = this.now();
    if (now - this.lastCheck < this.minRefreshIntervalMs) return false;
    this.lastCheck = now;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.path).mtimeMs;
    } catch {
      return false;
    }
    if (mtimeMs === this.mtimeMs) return false;
    return this.reload().then(() => true);
  }

  async reload(): Promise<void> {
    const mtimeMs = (await fs.stat(this.path)).mtimeMs;
    this.file = await readTokenFile(this.path);
    this.held = new Map();
    this.mtimeMs = mtimeMs;
  }
}
