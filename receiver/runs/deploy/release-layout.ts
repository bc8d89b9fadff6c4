/**
 * A deploy path on disk, laid out as Capistrano and Deployer users know it:
 *   <path>/repo.git          bare mirror of deploy.repositoryUrl
 *   <path>/releases/<id>/    one directory per deployed commit (ids sort by time and end in the commit)
 *   <path>/current           symlink to releases/<id>, switched by renaming a new symlink over it
 *   <path>/releases.json     what each release is: its commit, the run that made it, its state
 * Only the runner writes here (one run at a time per trigger, one trigger per path); `triggler
 * releases` reads it.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { syncDirectory } from '../durable-files';

/**
 * `building`: laid out, its command running. `interrupted`: was `building` when the receiver
 * stopped, or is on disk but not in the manifest. `failed`: its command failed. `built`: its
 * command succeeded, not switched to yet. `live`: was switched to and passed activate and the
 * health check. `rolled-back`: switched to, failed activate or the health check, switched away from.
 */
export const RELEASE_STATES = ['building', 'built', 'failed', 'live', 'rolled-back', 'interrupted'] as const;
export type ReleaseState = (typeof RELEASE_STATES)[number];

/**
 * The one rule for what may become current: a release whose command succeeded. A release whose
 * command failed or never finished (a killed build, a directory the manifest does not know) holds
 * a tree nobody built.
 */
const COMMAND_SUCCEEDED: ReadonlySet<ReleaseState> = new Set(['built', 'live', 'rolled-back']);

export function mayBecomeCurrent(release: { state: ReleaseState }): boolean {
  return COMMAND_SUCCEEDED.has(release.state);
}

/** Why a release may not become current, for the run's error. */
export function cannotBecomeCurrent(release: { id: string; commit: string; state: ReleaseState }): string {
  return `release ${release.id}${release.commit ? ` (commit ${release.commit.slice(0, 12)})` : ' (not in releases.json)'} is ${release.state}: its command did not succeed there, so it cannot be made current (see triggler releases)`;
}

export interface ReleaseEntry {
  id: string;
  commit: string;
  /** The run that laid it out. */
  runId: string;
  createdAt: string;
  state: ReleaseState;
}

/** A release as `triggler releases` shows it. */
export interface ReleaseListing extends ReleaseEntry {
  current: boolean;
}

interface Manifest {
  releases: ReleaseEntry[];
  /** Set while current points at a release not yet through activate and its health check. */
  switching?: { to: string; from?: string };
}

export const MIRROR_DIR = 'repo.git';
export const RELEASES_DIR = 'releases';
export const CURRENT_LINK = 'current';
const MANIFEST_FILE = 'releases.json';

/** `20261201-094846-123-<12 hex of the commit>`: sorts by time (UTC), shows the commit. */
export function releaseId(at: Date, commit: string): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${iso.slice(20, 23)}-${commit.slice(0, 12)}`;
}

const RELEASE_ID = /^\d{8}-\d{6}-\d{3}-[0-9a-f]{4,40}$/;

export class ReleaseLayout {
  readonly mirror: string;
  readonly releasesDir: string;
  readonly currentLink: string;
  private readonly manifestFile: string;

  constructor(readonly root: string) {
    this.mirror = path.join(root, MIRROR_DIR);
    this.releasesDir = path.join(root, RELEASES_DIR);
    this.currentLink = path.join(root, CURRENT_LINK);
    this.manifestFile = path.join(root, MANIFEST_FILE);
  }

  releaseDir(id: string): string {
    if (!RELEASE_ID.test(id)) throw new Error(`"${id}" is not a release id`);
    return path.join(this.releasesDir, id);
  }

  /**
   * Creates the path and releases/. With `owner` (a trigger's `user`, under a root receiver) both
   * belong to that user, who runs git in them; `current` and the manifest stay the receiver's.
   */
  async prepare(owner?: { uid: number; gid: number }): Promise<void> {
    await fsp.mkdir(this.releasesDir, { recursive: true });
    if (!owner) return;
    for (const dir of [this.root, this.releasesDir]) {
      const stat = await fsp.stat(dir);
      if (stat.uid !== owner.uid || stat.gid !== owner.gid) await fsp.chown(dir, owner.uid, owner.gid);
    }
  }

  async mirrorExists(): Promise<boolean> {
    return exists(path.join(this.mirror, 'HEAD'));
  }

  /** The release `current` points at, if it points at one. */
  async current(): Promise<string | undefined> {
    let target: string;
    try {
      target = await fsp.readlink(this.currentLink);
    } catch {
      return undefined;
    }
    const id = path.basename(target);
    return path.dirname(target) === RELEASES_DIR && RELEASE_ID.test(id) ? id : undefined;
  }

  /**
   * Points `current` at a release (or removes it: `undefined`) atomically: a new symlink is made
   * beside it and renamed over it, so there is never a moment without one.
   */
  async switchCurrent(id: string | undefined): Promise<void> {
    if (id === undefined) {
      await fsp.rm(this.currentLink, { force: true });
    } else {
      this.releaseDir(id);
      const temp = `${this.currentLink}.${process.pid}-${randomBytes(4).toString('hex')}`;
      await fsp.symlink(path.join(RELEASES_DIR, id), temp);
      try {
        await fsp.rename(temp, this.currentLink);
      } catch (error) {
        await fsp.rm(temp, { force: true });
        throw error;
      }
    }
    await syncDirectory(this.root);
  }

  async manifest(): Promise<Manifest> {
    try {
      const parsed = JSON.parse(await fsp.readFile(this.manifestFile, 'utf8')) as Manifest;
      return {
        releases: Array.isArray(parsed.releases) ? parsed.releases : [],
        ...(parsed.switching ? { switching: parsed.switching } : {}),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { releases: [] };
      throw new Error(`cannot read ${this.manifestFile}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Changes the manifest: temp file, fsync, rename, so a crash leaves the old one or the new one. */
  async update(change: (manifest: Manifest) => void): Promise<void> {
    const manifest = await this.manifest();
    change(manifest);
    const temp = `${this.manifestFile}.tmp`;
    const file = await fsp.open(temp, 'w', 0o644);
    try {
      await file.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await fsp.rename(temp, this.manifestFile);
    await syncDirectory(this.root);
  }

  /** Whether current points at a release that was switched to and never saw its checks through. */
  async unfinishedSwitch(): Promise<boolean> {
    const { switching } = await this.manifest().catch(() => ({ switching: undefined }));
    return switching !== undefined && switching.to === (await this.current());
  }

  async setState(id: string, state: ReleaseState): Promise<void> {
    await this.update((manifest) => {
      const entry = manifest.releases.find((release) => release.id === id);
      if (entry) entry.state = state;
    });
  }

  /** The releases on disk, oldest first, as the manifest describes them. */
  async list(): Promise<ReleaseListing[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.releasesDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const [manifest, current] = await Promise.all([this.manifest(), this.current()]);
    const known = new Map(manifest.releases.map((release) => [release.id, release]));
    return names
      .filter((name) => RELEASE_ID.test(name))
      .sort()
      .map((id) => ({
        ...(known.get(id) ?? { id, commit: '', runId: '', createdAt: '', state: 'interrupted' as const }),
        current: id === current,
      }));
  }

  /**
   * Removes what no deploy or rollback needs any more: good releases (see mayBecomeCurrent) past
   * the newest `keep` of them, and releases that never can become current (a failed or interrupted
   * build) older than the oldest good one kept: they count for nothing, and leave with the window
   * they fell in. Never one in `protect` (current, and the release a plain rollback would return
   * to). Returns the ids removed.
   */
  async prune(keep: number, protect: readonly (string | undefined)[]): Promise<string[]> {
    const releases = await this.list();
    const good = releases.filter(mayBecomeCurrent);
    const kept = good.slice(Math.max(0, good.length - keep));
    const oldestKept = kept[0]?.id;
    const removable = releases
      .filter(
        (release) =>
          !kept.includes(release) &&
          (mayBecomeCurrent(release) || (release.state !== 'building' && oldestKept !== undefined && release.id < oldestKept)),
      )
      .map((release) => release.id)
      .filter((id) => !protect.includes(id));
    for (const id of removable) await fsp.rm(this.releaseDir(id), { recursive: true, force: true });
    if (removable.length > 0)
      await this.update((manifest) => (manifest.releases = manifest.releases.filter((release) => !removable.includes(release.id))));
    return removable;
  }
}

/** The newest good release of a commit (its command succeeded there), which a deploy of that commit reuses. */
export function goodReleaseOf(releases: readonly ReleaseListing[], commit: string): ReleaseListing | undefined {
  return releases.filter((release) => release.commit === commit && mayBecomeCurrent(release)).at(-1);
}

/**
 * What `triggler releases` calls a release: `current`; `previous`, where a plain rollback goes;
 * `good`, one that passed its checks when it was current; otherwise its state (`built`: its command
 * succeeded, never switched to; `failed`, `rolled-back`, `interrupted`, `building`).
 */
export type ReleaseStatus = 'current' | 'previous' | 'good' | Exclude<ReleaseState, 'live'>;

export interface DescribedRelease extends ReleaseListing {
  status: ReleaseStatus;
}

/** The releases newest first (as `triggler runs` lists runs), each with what it is now. */
export function describeReleases(releases: readonly ReleaseListing[]): DescribedRelease[] {
  const target = rollbackTarget(releases, undefined);
  const previous = 'id' in target ? target.id : undefined;
  return [...releases].reverse().map((release) => ({
    ...release,
    status: release.current ? 'current' : release.id === previous ? 'previous' : release.state === 'live' ? 'good' : release.state,
  }));
}

/**
 * The release a rollback switches to: `to` names a release id or a commit (a prefix of at least 7
 * hex digits; the newest release of it); without `to`, the newest live release older than current
 * whose commit is not current's.
 */
export function rollbackTarget(releases: readonly ReleaseListing[], to: string | undefined): { id: string } | { error: string } {
  const current = releases.find((release) => release.current);
  if (to === undefined) {
    // Another release of the commit already current is no step back: the same code, built again.
    const older = releases.filter(
      (release) => release.state === 'live' && (!current || (release.id < current.id && release.commit !== current.commit)),
    );
    const target = older.at(-1);
    return target
      ? { id: target.id }
      : {
          error: current
            ? `no live release older than current (${current.id}) with another commit to roll back to`
            : 'no release to roll back to',
        };
  }
  const byId = releases.find((release) => release.id === to);
  if (byId) return mayBecomeCurrent(byId) ? { id: byId.id } : { error: cannotBecomeCurrent(byId) };
  if (/^[0-9a-f]{7,40}$/.test(to)) {
    const ofCommit = releases.filter((release) => release.commit.startsWith(to));
    const byCommit = ofCommit.filter(mayBecomeCurrent).at(-1);
    if (byCommit) return { id: byCommit.id };
    if (ofCommit.length > 0) return { error: cannotBecomeCurrent(ofCommit.at(-1)!) };
  }
  return { error: `no release ${/^[0-9a-f]{7,40}$/.test(to) ? 'of commit' : 'named'} ${to} (see triggler releases)` };
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.access(file);
    return true;
  } catch {
    return false;
  }
}
