/**
 * CodeCommit's documented limits that the stack can check before anything is deployed
 * (https://docs.aws.amazon.com/codecommit/latest/userguide/limits.html). Each check returns the
 * problem as a sentence, or undefined when the value is fine, so the config schema and the
 * constructs can both report it against their own field or prop.
 */

/**
 * A repository holds at most this many triggers, its owner's and ours together. The stack adds one
 * trigger per repository (listing all its configured branches), so at synth it can never pass the
 * limit by itself; how many the owner already has is only known at deploy: the existing
 * repositories' check and the merge (lambda/repository-triggers-provider.ts) count them before
 * anything is written.
 */
export const MAX_TRIGGERS_PER_REPOSITORY = 10;

/** The name of the trigger this stack adds to each CodeCommit repository. */
export function codeCommitTriggerName(stackName: string): string {
  return `git-triggler-${stackName}`;
}

const NAME_CHARACTERS = /^[A-Za-z0-9._-]+$/;

/** Repository names: letters, digits, `.`, `_`, `-`; 1 to 100 characters; not ending in `.git`. */
export function repositoryNameProblem(name: string): string | undefined {
  if (name.length < 1 || name.length > 100) return 'a CodeCommit repository name has 1 to 100 characters';
  if (!NAME_CHARACTERS.test(name)) return 'a CodeCommit repository name may hold only letters, digits, ".", "_" and "-"';
  if (name.toLowerCase().endsWith('.git')) return 'a CodeCommit repository name must not end in ".git"';
  return undefined;
}

/** Trigger names: letters, digits, `.`, `_`, `-`; 1 to 100 characters. */
export function triggerNameProblem(name: string): string | undefined {
  if (name.length < 1 || name.length > 100) return `the CodeCommit trigger name "${name}" must have 1 to 100 characters`;
  if (!NAME_CHARACTERS.test(name)) return `the CodeCommit trigger name "${name}" may hold only letters, digits, ".", "_" and "-"`;
  return undefined;
}

/**
 * Branch names follow git's ref rules plus CodeCommit's own: 1 to 256 characters, not exactly 40
 * hex digits, no leading or trailing `/` or `.`, not `@` alone, no `..`, `//` or `@{`, no spaces
 * or `? ^ * [ \ ~ :`.
 */
export function branchNameProblem(branch: string): string | undefined {
  if (branch.length < 1 || branch.length > 256) return 'a CodeCommit branch name has 1 to 256 characters';
  if (/^[0-9a-fA-F]{40}$/.test(branch)) return 'a CodeCommit branch name must not be 40 hexadecimal digits (it reads as a commit id)';
  if (/^[/.]|[/.]$/.test(branch)) return 'a CodeCommit branch name must not begin or end with "/" or "."';
  if (branch === '@') return 'a CodeCommit branch name must not be "@" alone';
  if (/\.\.|\/\/|@\{/.test(branch)) return 'a CodeCommit branch name must not contain "..", "//" or "@{"';
  // Control characters are refused by git itself (git-check-ref-format).
  // eslint-disable-next-line no-control-regex
  if (/[\s?^*[\\~:\u0000-\u001f\u007f]/.test(branch)) {
    return 'a CodeCommit branch name must not contain spaces, control characters or any of ? ^ * [ \\ ~ :';
  }
  return undefined;
}

/** The trigger the stack adds to a repository, one per repository (it lists every configured branch). */
export interface RepositoryTriggerPlan {
  repository: string;
  /** The stack creates the repository (and keeps it when it leaves the config) rather than expecting it to exist. */
  createRepository: boolean;
  branches: string[];
}
