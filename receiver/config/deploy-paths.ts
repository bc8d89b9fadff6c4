/**
 * Two triggers may not deploy into one directory (or one inside the other) unless they are the
 * same repository and branch: their releases and `current` would overwrite each other's, and each
 * would prune the other's releases. Paths are compared as the filesystem resolves them, so a
 * symlink (`/srv/site-alias -> /srv/site`) does not hide a shared directory. The config is checked
 * when it loads, and each deploy checks again, since a symlink can appear after that.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DeployingTrigger {
  repository: string;
  branch: string;
  deploy?: { path: string } | undefined;
}

/**
 * An absolute path with every symlink in it followed: its longest existing part through realpath,
 * the rest (not created yet) appended as written.
 */
export function resolvedDeployPath(configured: string): string {
  const normal = path.posix.normalize(configured).replace(/(.)\/+$/, '$1');
  const missing: string[] = [];
  for (let existing = normal; ; existing = path.dirname(existing)) {
    try {
      return path.join(fs.realpathSync(existing), ...missing.reverse());
    } catch {
      if (existing === path.dirname(existing)) return normal;
      missing.push(path.basename(existing));
    }
  }
}

interface PlacedTrigger {
  trigger: DeployingTrigger;
  configured: string;
  resolved: string;
}

function placed(trigger: DeployingTrigger & { deploy: { path: string } }): PlacedTrigger {
  return {
    trigger,
    configured: path.posix.normalize(trigger.deploy.path).replace(/(.)\/+$/, '$1'),
    resolved: resolvedDeployPath(trigger.deploy.path),
  };
}

/** `is` or `overlaps` when two triggers' directories are one or one holds the other; undefined when they may both deploy. */
function overlap(own: PlacedTrigger, other: PlacedTrigger): 'is' | 'overlaps' | undefined {
  if (own.trigger.repository === other.trigger.repository && own.trigger.branch === other.trigger.branch) return undefined;
  if (own.resolved === other.resolved) return 'is';
  return own.resolved.startsWith(`${other.resolved}/`) || other.resolved.startsWith(`${own.resolved}/`) ? 'overlaps' : undefined;
}

/** ` (/x/site-alias resolves to /x/site)` where a symlink made the difference. */
function resolution(...triggers: PlacedTrigger[]): string {
  const followed = triggers.filter((one) => one.resolved !== one.configured).map((one) => `${one.configured} resolves to ${one.resolved}`);
  return followed.length > 0 ? ` (${followed.join(', ')})` : '';
}

/** The config's problems: for each trigger whose deploy.path is, or overlaps, an earlier one's, which one. */
export function deployPathProblems(triggers: readonly DeployingTrigger[]): { index: number; message: string }[] {
  const problems: { index: number; message: string }[] = [];
  const seen: { index: number; placed: PlacedTrigger }[] = [];
  triggers.forEach((trigger, index) => {
    if (!trigger.deploy) return;
    const own = placed({ ...trigger, deploy: trigger.deploy });
    const clash = seen.map((other) => ({ other, how: overlap(own, other.placed) })).find(({ how }) => how !== undefined);
    if (clash) {
      const { other, how } = clash;
      problems.push({
        index,
        message: `${how} the deploy.path of triggers[${other.index}] (${other.placed.trigger.repository} ${other.placed.trigger.branch})${resolution(own, other.placed)}; give each trigger its own`,
      });
    }
    seen.push({ index, placed: own });
  });
  return problems;
}

/**
 * At a deploy: why `trigger` may not deploy now, if its path resolves to, into or around another
 * configured trigger's (a symlink made or changed since the config loaded).
 */
export function deployPathConflict(
  trigger: DeployingTrigger & { deploy: { path: string } },
  triggers: readonly DeployingTrigger[],
): string | undefined {
  const own = placed(trigger);
  for (const other of triggers) {
    if (!other.deploy) continue;
    const theirs = placed({ ...other, deploy: other.deploy });
    const how = overlap(own, theirs);
    if (how) {
      return `the deploy.path of ${trigger.repository} ${trigger.branch} (${own.configured}) ${how} the deploy.path of ${other.repository} ${other.branch} (${theirs.configured})${resolution(own, theirs)}: the two would overwrite each other's releases and current, so nothing was deployed; give each trigger its own directory`;
    }
  }
  return undefined;
}
