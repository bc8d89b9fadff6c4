/**
 * A trigger's `deploy` section: where its pushed commit is fetched from and laid out as a release
 * (`<path>/repo.git`, `<path>/releases/<id>`, `<path>/current`), and how a new release is started
 * and checked. The stack config takes the same section (its `repositoryUrl` may be derived).
 */
import * as path from 'node:path';
import { z } from 'zod';
import { knownHostsLineNames, knownHostsLineProblem, knownHostsName, pinnedKnownHosts, sshTarget } from '../../protocol';
import { tokenNameSchema } from './token-name';

/** A string runs through `/bin/sh -c`; an array runs without a shell. */
export const commandSchema = z.union([
  z.string().min(1, 'must not be empty'),
  z
    .array(z.string())
    .min(1, 'must name a program')
    .refine((a) => a[0] !== '', 'must name a program'),
]);

/** Whitespace or a control character (C0, DEL). */
const hasSpaceOrControl = (value: string): boolean => [...value].some((char) => char.charCodeAt(0) <= 0x20 || char.charCodeAt(0) === 0x7f);

/** `scheme://user:password@host/...`: a password in a URL ends up in logs, process lists and the mirror's config. */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i;
/**
 * `https://<token>@host/...`, which GitHub, GitLab and Gitea take as a token in place of a user:
 * their token prefixes (ghp_, github_pat_, glpat-, ...) or 40 hex digits (Gitea's, and GitHub's
 * older ones), as the user name.
 */
const URL_WITH_TOKEN_USER = /^[a-z][a-z0-9+.-]*:\/\/(?:(?:gh[pousr]_|github_pat_|glpat-|gldt-|gloas-|glptt-)[^/@]*|[0-9a-f]{40})@/i;
const NO_SECRET_IN_URL = "use deploy.sshKey with an SSH URL, or the host's credential helper (CodeCommit)";

export const repositoryUrlSchema = z
  .string()
  .min(1)
  .max(2048)
  .refine((url) => !hasSpaceOrControl(url), 'must not contain spaces or control characters')
  .refine((url) => !url.startsWith('-'), 'must not start with "-"')
  .refine((url) => !URL_WITH_PASSWORD.test(url), `must not hold a password: ${NO_SECRET_IN_URL}`)
  .refine((url) => !URL_WITH_TOKEN_USER.test(url), `must not hold an access token as its user name: ${NO_SECRET_IN_URL}`);

export const deployPathSchema = z
  .string()
  .refine((p) => path.posix.isAbsolute(p), 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."')
  .refine((p) => path.posix.normalize(p) !== '/', 'must not be /')
  .refine((p) => !hasSpaceOrControl(p), 'must not contain spaces or control characters');

/** A shared path as its place in the release: without a trailing `/` or `./`. */
const sharedPathKey = (p: string): string => path.posix.normalize(p).replace(/\/+$/, '');

/** Relative, inside the release: never absolute, never `..`, never the release itself or the mirror's `.git` file. */
export const sharedPathSchema = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !path.posix.isAbsolute(p), 'must be relative to the release, not absolute')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".." (it would leave the release)')
  .refine((p) => !hasSpaceOrControl(p) && !p.includes('\\'), 'must not contain spaces, control characters or backslashes')
  .refine((p) => sharedPathKey(p) !== '.' && sharedPathKey(p) !== '', 'must name a path inside the release, not the release itself')
  .refine((p) => sharedPathKey(p).split('/')[0] !== '.git', "must not be in .git (git keeps the release's checkout there)");

export const deploySchema = z.strictObject({
  repositoryUrl: repositoryUrlSchema.describe(
    'What git fetches: a path to a repository, `https://`, `ssh://` or `user@host:path`. Never a password or an access token in it (refused: use `sshKey`).',
  ),
  path: deployPathSchema.describe(
    'Holds `repo.git` (the mirror), `releases/<id>` and `current`: absolute, not `/` itself, without spaces or `..`. Two triggers may not share one, nor one inside the other.',
  ),
  keepReleases: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(5)
    .describe(
      'Good releases (their command succeeded) kept after a successful switch; older ones are removed, and failed builds once older than the oldest good one kept (never `current` or the one a plain rollback returns to). A commit deployed again reuses its good release.',
    ),
  shared: z
    .array(sharedPathSchema)
    .max(100)
    .refine((paths) => new Set(paths.map(sharedPathKey)).size === paths.length, 'must not name a path twice')
    .refine(
      (paths) => !paths.some((p) => paths.some((other) => other !== p && sharedPathKey(p).startsWith(`${sharedPathKey(other)}/`))),
      'must not name a path inside another one',
    )
    .optional()
    .describe(
      'Files and directories kept in `<path>/shared/` across releases (an `.env`, uploads, a cache), each linked into every new release before `command` runs; created empty when absent. A trailing `/` names a directory. Relative to the release, without `..`; what the commit has at such a path is replaced by the link (the run log says so). Default: none.',
    ),
  activate: commandSchema
    .optional()
    .describe(
      'Runs in the new release once `current` points at it. To restart a service use `systemctl restart my-app` (the hardened unit rules out sudo): on AWS name the unit in `receiver.manageUnits`, self-hosted see docs/self-hosting.md. Failing it switches back (`rolled-back`). Default: none.',
    ),
  sshKey: tokenNameSchema
    .optional()
    .describe(
      "For an SSH `repositoryUrl`: the name of a deploy key (an OpenSSH private key) in the token file or SSM, like a token's name. The receiver writes it to a 0600 file in its state directory for the fetch only, and ssh checks the host against pinned keys (docs/releases.md). Default: none (with neither `sshKey` nor `knownHosts`, ssh runs as the service user's own ssh would).",
    ),
  knownHosts: z
    .array(
      z.string().superRefine((line, ctx) => {
        const problem = knownHostsLineProblem(line);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    )
    .min(1, 'must hold at least one line (leave it out for the pinned providers)')
    .optional()
    .describe(
      "known_hosts lines (`host key-type key`, as ssh-keyscan prints them) for the `repositoryUrl`'s host: the only host keys ssh accepts from it. Default: the keys pinned for github.com, gitlab.com, bitbucket.org and codeberg.org; any other host needs its own.",
    ),
  healthCheck: z
    .strictObject({
      command: commandSchema.describe('The check; it passes when it exits 0.'),
      timeoutSeconds: z
        .number()
        .int()
        .positive()
        .max(3600)
        .default(60)
        .describe('How long the check may keep failing before the release is switched back.'),
      intervalSeconds: z.number().int().positive().max(600).default(2).describe('Time between two tries.'),
    })
    .optional()
    .describe(
      'Runs after `activate`, retried every `intervalSeconds` until it passes or `timeoutSeconds` runs out; failing it switches back and activates the release before (`rolled-back`). Default: none (the switch stands once `activate` passes).',
    ),
});

export type DeployConfig = z.output<typeof deploySchema>;

/** Fields of a deploy section the SSH checks read (the stack's may leave repositoryUrl out). */
interface SshDeploy {
  repositoryUrl?: string | undefined;
  sshKey?: string | undefined;
  knownHosts?: string[] | undefined;
}

/**
 * What is wrong with a deploy section's SSH settings, by field: a key for a URL that is not SSH,
 * a host whose keys nobody pinned, known_hosts lines for some other host.
 */
export function deploySshProblems(deploy: SshDeploy): { field: 'sshKey' | 'knownHosts'; message: string }[] {
  if (deploy.sshKey === undefined && deploy.knownHosts === undefined) return [];
  if (deploy.repositoryUrl === undefined) return [];
  const target = sshTarget(deploy.repositoryUrl);
  const field = deploy.sshKey !== undefined ? 'sshKey' : 'knownHosts';
  if (!target)
    return [
      {
        field,
        message: `applies only to an SSH repositoryUrl (ssh://git@host/owner/repo.git or git@host:owner/repo.git), not ${deploy.repositoryUrl}`,
      },
    ];
  const name = knownHostsName(target);
  if (deploy.knownHosts === undefined) {
    if (pinnedKnownHosts(target).length > 0) return [];
    return [
      {
        field: 'knownHosts',
        message: `is needed for ${name}: host keys ship only for github.com, gitlab.com, bitbucket.org and codeberg.org. Add the host's lines (ssh-keyscan${target.port === 22 ? '' : ` -p ${target.port}`} ${target.host}, checked against the keys its administrator publishes)`,
      },
    ];
  }
  if (!deploy.knownHosts.some((line) => knownHostsLineNames(line).includes(name))) {
    return [
      {
        field: 'knownHosts',
        message: `has no line for ${name}, the host of repositoryUrl (a line for another port names its host [host]:port)`,
      },
    ];
  }
  return [];
}
