/**
 * The hook's spool: deliveries a post-receive hook could not send yet, one JSON file each, sent
 * again (oldest first) by the next push or `triggler hook flush`. Several users may push to one
 * repository: the spool is shared as the repository is (`core.sharedRepository`), so whichever of
 * them pushes next can read, send and remove what another one kept.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One delivery that could not be sent yet. Its id is kept, so a resend is the same delivery. */
export interface SpooledPush {
  id: string;
  repository: string;
  branch: string;
  ref: string;
  commit: string;
  previousCommit?: string;
  pusher?: string;
  pushedAt: string;
}

/** The modes the spool's directory and files get. */
export interface SpoolModes {
  directory: number;
  file: number;
}

/** Not shared: the pushing user's alone. */
const PRIVATE: SpoolModes = { directory: 0o700, file: 0o600 };

/**
 * The spool's modes for a repository's `core.sharedRepository` value, as git shares the
 * repository itself: `group` (or true, 1): the group reads, writes and removes; `all` (world,
 * everybody, 2): others may read too; `0xxx`: files get that mode (the owner can always read and
 * write), the directory gets x wherever a file gets r. A shared directory is setgid, so files
 * every pusher writes belong to the repository's group. Anything else (umask, false, unset): private.
 */
export function spoolModes(sharedRepository: string | undefined): SpoolModes {
  const value = (sharedRepository ?? '').trim().toLowerCase();
  if (['group', 'true', 'yes', 'on', '1'].includes(value)) return { directory: 0o2770, file: 0o660 };
  if (['all', 'world', 'everybody', '2'].includes(value)) return { directory: 0o2775, file: 0o664 };
  if (/^0[0-7]{3}$/.test(value)) {
    const file = Number.parseInt(value, 8) | 0o600;
    const readable = file & 0o444;
    return { directory: 0o2000 | 0o700 | file | (readable >> 2), file };
  }
  return PRIVATE;
}

/** `core.sharedRepository` of a repository, as git reads it; unset (or unreadable) is private. */
export function repositorySharing(gitDir: string): string | undefined {
  try {
    return execFileSync('git', ['--git-dir', gitDir, 'config', '--get', 'core.sharedRepository'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

export class Spool {
  constructor(
    readonly dir: string,
    private readonly modes: SpoolModes = PRIVATE,
  ) {}

  /** What the spool holds, oldest first; a file that cannot be read or parsed is passed over. */
  waiting(): { file: string; push: SpooledPush }[] {
    let names: string[];
    try {
      names = fs
        .readdirSync(this.dir)
        .filter((name) => name.endsWith('.json'))
        .sort();
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      const file = path.join(this.dir, name);
      try {
        return [{ file, push: JSON.parse(fs.readFileSync(file, 'utf8')) as SpooledPush }];
      } catch {
        return [];
      }
    });
  }

  /** Keeps a push: written beside its final name and renamed, so a reader never sees half of one. */
  keep(push: SpooledPush): void {
    this.prepare();
    const file = path.join(this.dir, `${Date.now().toString().padStart(15, '0')}-${push.id}.json`);
    const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(temporary, JSON.stringify(push), { mode: this.modes.file });
    // The pusher's umask may have taken bits the other pushers need.
    fs.chmodSync(temporary, this.modes.file);
    fs.renameSync(temporary, file);
  }

  remove(file: string): void {
    fs.rmSync(file, { force: true });
  }

  /**
   * Creates the spool with its modes (the umask left out). A spool this user owns whose modes
   * differ (made before the repository was shared) is given them; another user's is left as it is.
   */
  private prepare(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: this.modes.directory & 0o777 });
    const stat = fs.statSync(this.dir);
    if ((stat.mode & 0o7777) !== this.modes.directory && stat.uid === process.getuid?.()) fs.chmodSync(this.dir, this.modes.directory);
  }
}
