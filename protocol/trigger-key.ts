/** A trigger is one (repository, branch) pair. */
export interface TriggerRef {
  repository: string;
  branch: string;
}

/** A map key for a trigger; NUL cannot occur in a repository or branch name. */
export function triggerKey(repository: string, branch: string): string {
  return `${repository}\u0000${branch}`;
}

/** How a trigger is written for people: `repo@branch` (`repo/branch` would be ambiguous: both may hold `/`). */
export function triggerLabel(trigger: TriggerRef): string {
  return `${trigger.repository}@${trigger.branch}`;
}

/** The Standard Webhooks path of a trigger: `/hooks/<repo>/<branch>`, each part URL-encoded. */
export function standardPath(repository: string, branch: string): string {
  return `/hooks/${encodeURIComponent(repository)}/${encodeURIComponent(branch)}`;
}
