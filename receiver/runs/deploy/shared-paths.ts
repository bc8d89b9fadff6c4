/**
 * A deploy's shared paths (`deploy.shared`, as Capistrano's linked_files and linked_dirs): files
 * and directories kept in `<path>/shared/` across releases (an `.env`, uploads, a dependency
 * cache), each linked into a new release before its command runs. The config refused any entry
 * that is absolute or climbs out with `..`; here nothing the commit holds may lead a link, or the
 * shared copy, anywhere else: a directory on the way that is a symlink in the release is refused.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

export const SHARED_DIR = 'shared';

interface LinkOptions {
  /** The trigger's `user` under a root receiver: what is created belongs to it, as its release does. */
  owner?: { uid: number; gid: number } | undefined;
  /** A line in the run's log. */
  note(text: string): void;
}

/**
 * Creates each shared path under `<root>/shared/` when absent (empty: a trailing `/` names a
 * directory, anything else a file) and puts a relative symlink to it at the same place in the
 * release, replacing what the commit has there (the log says so).
 */
export async function linkSharedPaths(root: string, releaseDir: string, shared: readonly string[], options: LinkOptions): Promise<void> {
  const sharedRoot = path.join(root, SHARED_DIR);
  await makeDir(root, SHARED_DIR, options.owner);
  for (const entry of shared) {
    const isDir = entry.endsWith('/');
    const relative = path.posix.normalize(entry).replace(/\/+$/, '');
    const parent = path.posix.dirname(relative);
    // The shared copy: created once, kept by every release after.
    if (parent !== '.') await makeDir(sharedRoot, parent, options.owner);
    const target = path.join(sharedRoot, relative);
    const existing = await fsp.lstat(target).catch(() => undefined);
    if (existing?.isSymbolicLink())
      throw new Error(`${path.join(SHARED_DIR, relative)} is a symlink: a shared path must be the file or directory itself`);
    if (!existing) {
      if (isDir) await fsp.mkdir(target);
      else await fsp.writeFile(target, '', { flag: 'wx' });
      if (options.owner) await fsp.chown(target, options.owner.uid, options.owner.gid);
      options.note(`shared ${entry}: created empty in ${path.join(SHARED_DIR, relative)}`);
    } else if (existing.isDirectory() !== isDir) {
      throw new Error(
        `${path.join(SHARED_DIR, relative)} is a ${existing.isDirectory() ? 'directory' : 'file'}, but deploy.shared names "${entry}" as a ${isDir ? 'directory' : 'file'}`,
      );
    }
    // The link in the release: its directories are the commit's, so none of them may be a symlink.
    if (parent !== '.') await makeDir(releaseDir, parent, options.owner);
    const link = path.join(releaseDir, relative);
    const inCommit = await fsp.lstat(link).catch(() => undefined);
    if (inCommit) {
      await fsp.rm(link, { recursive: true, force: true });
      options.note(`shared ${entry}: the commit's own ${relative} is replaced by the link to the shared one`);
    }
    await fsp.symlink(path.relative(path.dirname(link), target), link);
  }
}

/**
 * Creates `relative` under `base` one directory at a time, refusing a step that exists as anything
 * but a directory (a symlink a commit holds would lead outside the release).
 */
async function makeDir(base: string, relative: string, owner: LinkOptions['owner']): Promise<void> {
  let dir = base;
  for (const part of relative.split('/')) {
    dir = path.join(dir, part);
    const stat = await fsp.lstat(dir).catch(() => undefined);
    if (stat?.isDirectory()) continue;
    if (stat)
      throw new Error(`${dir} is ${stat.isSymbolicLink() ? 'a symlink' : 'not a directory'}: a shared path may not lead through it`);
    await fsp.mkdir(dir);
    if (owner) await fsp.chown(dir, owner.uid, owner.gid);
  }
}
