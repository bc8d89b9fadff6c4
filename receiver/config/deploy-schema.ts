/**
 * A trigger's `deploy` section: where its pushed commit is fetched from and laid out as a release
 * (`<path>/repo.git`, `<path>/releases/<id>`, `<path>/current`), and how a new release is started
 * and checked. The stack config takes the same section (its `repositoryUrl` may be derived).
 */
import * as path from 'node:path';
import { z } from 'zod';

/** A string runs through `/bin/sh -c`; an array runs without a shell. */
export const commandSchema = z.union([
  z.string().min(1, 'must not be empty'),
  z.array(z.string()).min(1, 'must name a program').refine((a) => a[0] !== '', 'must name a program'),
]);

/** Whitespace or a control character (C0, DEL). */
const hasSpaceOrControl = (value: string): boolean => [...value].some((char) => char.charCodeAt(0) <= 0x20 || char.charCodeAt(0) === 0x7f);

/** `scheme://user:password@host/...`: a password in a URL ends up in logs, process lists and the mirror's config. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i;

export const repositoryUrlSchema = z
  .string()
  .min(1)
  .max(2048)
  .refine((url) => !hasSpaceOrControl(url), 'must not contain spaces or control characters')
  .refine((url) => !url.startsWith('-'), 'must not start with "-"')
  .refine((url) => !URL_WITH_PASSWORD.test(url), 'must not hold a password: use the host\'s credential helper (CodeCommit) or deploy.sshKey');

export const deployPathSchema = z
  .string()
  .refine((p) => path.posix.isAbsolute(p), 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."')
  .refine((p) => path.posix.normalize(p) !== '/', 'must not be /')
  .refine((p) => !hasSpaceOrControl(p), 'must not contain spaces or control characters');

export const deploySchema = z.strictObject({
  /** Anything git can fetch: a path to a bare repository, https://, ssh://, user@host:path. */
  repositoryUrl: repositoryUrlSchema,
  /** Holds repo.git (the mirror), releases/ and current. */
  path: deployPathSchema,
  /** Releases kept; older ones are removed after a successful switch. @default 5 */
  keepReleases: z.number().int().min(1).max(100).default(5),
  /** Runs in the new release once current points at it (a service restart). */
  activate: commandSchema.optional(),
  /** Retried every intervalSeconds until it passes or timeoutSeconds runs out; failing it rolls back. */
  healthCheck: z
    .strictObject({
      command: commandSchema,
      timeoutSeconds: z.number().int().positive().max(3600).default(60),
      intervalSeconds: z.number().int().positive().max(600).default(2),
    })
    .optional(),
});

export type DeployConfig = z.output<typeof deploySchema>;

interface DeployingTrigger {
  repository: string;
  branch: string;
  deploy?: { path: string } | undefined;
}

/**
 * Two triggers may not deploy into one path (or one inside the other) unless they are the same
 * repository and branch: their releases and `current` would overwrite each other's.
 */
export function deployPathProblems(triggers: readonly DeployingTrigger[]): { index: number; message: string }[] {
  const problems: { index: number; message: string }[] = [];
  const seen: { index: number; path: string; trigger: DeployingTrigger }[] = [];
  triggers.forEach((trigger, index) => {
    if (!trigger.deploy) return;
    const own = path.posix.normalize(trigger.deploy.path).replace(/\/+$/, '');
    for (const other of seen) {
      const overlaps = own === other.path || own.startsWith(`${other.path}/`) || other.path.startsWith(`${own}/`);
      const sameTrigger = other.trigger.repository === trigger.repository && other.trigger.branch === trigger.branch;
      if (overlaps && !sameTrigger) {
        problems.push({ index, message: `${own === other.path ? 'is' : 'overlaps'} the deploy.path of triggers[${other.index}] (${other.trigger.repository} ${other.trigger.branch}); give each trigger its own` });
        break;
      }
    }
    seen.push({ index, path: own, trigger });
  });
  return problems;
}
