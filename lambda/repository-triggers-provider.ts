/**
 * Custom-resource handler (CDK Provider framework `onEvent`) that adds the stack's trigger to a
 * CodeCommit repository, one the stack created or one that existed before it (the same way for
 * both, so a created repository that leaves the config loses our trigger and keeps any other).
 * PutRepositoryTriggers replaces the repository's whole trigger list, so every change is read,
 * merge by name, write: a trigger the repository's owner made is never lost.
 *
 * - Create/Update: our triggers replace any trigger of the same name; on Update, our triggers that
 *   left the config are removed too. Everything else is kept as it was read.
 * - Delete: only our triggers are removed, and only those this resource wrote. Each trigger we
 *   write carries the writing resource's logical id in its customData: when a new version of the
 *   stack gives the merge of a repository another logical id, CloudFormation creates the new
 *   resource, then deletes the old one, and that delete must not take away the trigger the new one
 *   just wrote (pushes would stop triggering, silently). A trigger of ours without the mark (an
 *   older version wrote it) is removed by name, as that version did.
 * - A repository holds at most 10 triggers; a merge that would pass that fails with the names of
 *   the repository's own triggers, before anything is written.
 *
 * - `Custom::TrigglerRepositoryCheck` (Create/Update): every named repository exists and has room
 *   for our trigger; otherwise the deploy fails with one message naming every such repository.
 *   It writes nothing; the stack makes the receiver host wait for it, so these problems surface in
 *   the deploy's first minute.
 *
 * Read-merge-write is not atomic: two stacks changing one repository's triggers at the same moment
 * could lose one change. One stack owns one trigger per repository, so this needs two deploys of
 * different stacks racing on the same repository.
 */
import {
  CodeCommitClient,
  GetRepositoryTriggersCommand,
  PutRepositoryTriggersCommand,
  type RepositoryTrigger,
} from '@aws-sdk/client-codecommit';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { z } from 'zod';
import { errorName, readResourceProperties, type ProviderResponse } from './custom-resource';
import { createLambdaLogger, type Logger } from './log';

/**
 * CodeCommit's limit (https://docs.aws.amazon.com/codecommit/latest/userguide/limits.html), the
 * same as lib/stack-config/codecommit-rules.ts: only here is the owner's own count known.
 */
export const MAX_TRIGGERS_PER_REPOSITORY = 10;

const triggerSchema = z.object({
  name: z.string().min(1, 'must not be empty'),
  destinationArn: z.string().min(1, 'must not be empty'),
  branches: z.array(z.string()).default([]),
  events: z.array(z.enum(['all', 'updateReference', 'createReference', 'deleteReference'])).min(1, 'must list at least one event'),
  customData: z.string().optional(),
});

const repositoryNameSchema = z.string().regex(/^[\w.-]{1,100}$/, 'must be a CodeCommit repository name');

const propertiesSchema = z.object({
  RepositoryName: repositoryNameSchema,
  Triggers: z.array(triggerSchema),
});

type TriggerProperties = z.output<typeof propertiesSchema>;

const checkPropertiesSchema = z.object({
  RepositoryNames: z.array(repositoryNameSchema).min(1, 'must name at least one repository'),
  TriggerName: z.string().min(1, 'must not be empty'),
});

/** The resource type of the existing repositories' check. */
export const CHECK_RESOURCE_TYPE = 'Custom::TrigglerRepositoryCheck';

function readProperties(raw: unknown, which: string): TriggerProperties {
  return readResourceProperties(propertiesSchema, raw, which, 'repository trigger');
}

/** The repository's triggers as they are now, or undefined when the repository is gone. */
async function currentTriggers(codecommit: CodeCommitClient, repositoryName: string): Promise<RepositoryTrigger[] | undefined> {
  try {
    const { triggers } = await codecommit.send(new GetRepositoryTriggersCommand({ repositoryName }));
    return triggers ?? [];
  } catch (error) {
    if (errorName(error) === 'RepositoryDoesNotExistException') return undefined;
    throw error;
  }
}

/** The customData of a trigger this stack's merge resource `logicalId` wrote. */
export function ownerMark(logicalId: string): string {
  return `git-triggler merge ${logicalId}`;
}

/** Whether a trigger of ours by name was written by the resource `logicalId` (or by a version that marked none). */
function writtenBy(trigger: RepositoryTrigger, logicalId: string): boolean {
  return !trigger.customData?.startsWith(ownerMark('')) || trigger.customData === ownerMark(logicalId);
}

/**
 * How long a Create keeps retrying CodeCommit's AccessDenied. The stack creates the handler's IAM
 * policy just before the first merge resource calls CodeCommit, and IAM takes a while (seconds,
 * rarely a minute or two) to apply it everywhere; the SDK does not retry AccessDenied itself. An
 * Update or Delete runs with a policy that has long applied, so its AccessDenied is real.
 */
export interface AccessDeniedRetry {
  readonly forMs: number;
  readonly everyMs: number;
  /** Waits between attempts (tests pass one that does not). */
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

/** Within the handler's 5-minute timeout, with room for the merge itself. */
export const ACCESS_DENIED_RETRY: AccessDeniedRetry = {
  forMs: 180_000,
  everyMs: 5_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: () => Date.now(),
};

const ACCESS_DENIED = new Set(['AccessDeniedException', 'AccessDenied']);

export function createRepositoryTriggersProvider(
  codecommit: CodeCommitClient,
  log: Logger,
  accessDeniedRetry: AccessDeniedRetry = ACCESS_DENIED_RETRY,
) {
  /** Runs a Create's CodeCommit work, again after AccessDenied while the policy may still be propagating. */
  async function whileIamPropagates(action: () => Promise<void>): Promise<void> {
    const deadline = accessDeniedRetry.now() + accessDeniedRetry.forMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await action();
      } catch (error) {
        if (!ACCESS_DENIED.has(errorName(error) ?? '') || accessDeniedRetry.now() >= deadline) throw error;
        log.info(
          { attempt, retryInMs: accessDeniedRetry.everyMs },
          "CodeCommit denied access; the handler's new IAM policy may still be propagating",
        );
        await accessDeniedRetry.sleep(accessDeniedRetry.everyMs);
      }
    }
  }

  /** What stops our trigger from being added to the repository, or undefined when nothing does. */
  async function repositoryProblem(repositoryName: string, triggerName: string): Promise<string | undefined> {
    const current = await currentTriggers(codecommit, repositoryName);
    if (current === undefined)
      return `repository ${repositoryName} does not exist (create it, or set createRepository: true to have the stack create it)`;
    const theirs = current.filter((trigger) => trigger.name !== triggerName);
    if (theirs.length + 1 <= MAX_TRIGGERS_PER_REPOSITORY) return undefined;
    return `repository ${repositoryName} already has ${theirs.length} triggers of its own (${theirs.map((t) => t.name).join(', ')}) and CodeCommit allows ${MAX_TRIGGERS_PER_REPOSITORY}: remove one, then deploy again`;
  }

  async function check(raw: unknown): Promise<void> {
    const properties = readResourceProperties(checkPropertiesSchema, raw, 'ResourceProperties', 'repository check');
    const problems: string[] = [];
    for (const name of properties.RepositoryNames) {
      const problem = await repositoryProblem(name, properties.TriggerName);
      if (problem) problems.push(problem);
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
    log.info({ repositories: properties.RepositoryNames }, 'existing repositories checked: each exists and has room for our trigger');
  }

  async function merge(properties: TriggerProperties, alsoOurs: ReadonlySet<string>, logicalId: string): Promise<void> {
    const repositoryName = properties.RepositoryName;
    const current = await currentTriggers(codecommit, repositoryName);
    if (current === undefined)
      throw new Error(`repository ${repositoryName} does not exist (set createRepository: true to have the stack create it)`);
    const ours = new Set([...properties.Triggers.map((t) => t.name), ...alsoOurs]);
    const theirs = current.filter((trigger) => !ours.has(trigger.name ?? ''));
    const total = theirs.length + properties.Triggers.length;
    if (total > MAX_TRIGGERS_PER_REPOSITORY) {
      throw new Error(
        `repository ${repositoryName} would have ${total} triggers and CodeCommit allows ${MAX_TRIGGERS_PER_REPOSITORY}: ` +
          `it has ${theirs.length} of its own (${theirs.map((t) => t.name).join(', ')}); remove some, then deploy again`,
      );
    }
    const marked = properties.Triggers.map((trigger) => ({ ...trigger, customData: ownerMark(logicalId) }));
    await codecommit.send(new PutRepositoryTriggersCommand({ repositoryName, triggers: [...theirs, ...marked] }));
    log.info(
      {
        repository: repositoryName,
        ours: properties.Triggers.map((t) => t.name),
        kept: theirs.map((t) => t.name),
        removed: current.length - theirs.length,
      },
      'repository triggers merged',
    );
  }

  async function removeOurs(properties: TriggerProperties, logicalId: string): Promise<void> {
    const repositoryName = properties.RepositoryName;
    const current = await currentTriggers(codecommit, repositoryName);
    if (current === undefined) {
      log.info({ repository: repositoryName }, 'repository is gone; no trigger to remove');
      return;
    }
    const ours = new Set(properties.Triggers.map((t) => t.name));
    const ourName = current.filter((trigger) => ours.has(trigger.name ?? ''));
    const theirs = current.filter((trigger) => !ours.has(trigger.name ?? '') || !writtenBy(trigger, logicalId));
    if (theirs.length === current.length) {
      log.info(
        { repository: repositoryName, keptForOthers: ourName.map((t) => t.customData) },
        ourName.length > 0
          ? 'our trigger on the repository was written by another resource of the stack (a new logical id): kept'
          : 'none of our triggers left on the repository',
      );
      return;
    }
    await codecommit.send(new PutRepositoryTriggersCommand({ repositoryName, triggers: theirs }));
    log.info(
      { repository: repositoryName, removed: current.length - theirs.length, kept: theirs.map((t) => t.name) },
      'our repository triggers removed',
    );
  }

  return async function onEvent(event: CloudFormationCustomResourceEvent): Promise<ProviderResponse> {
    if (event.ResourceType === CHECK_RESOURCE_TYPE) {
      // A check writes nothing, so its delete has nothing to undo.
      if (event.RequestType === 'Create') await whileIamPropagates(() => check(event.ResourceProperties));
      else if (event.RequestType === 'Update') await check(event.ResourceProperties);
      return {
        PhysicalResourceId:
          event.RequestType === 'Create' ? `git-triggler-repository-check:${event.LogicalResourceId}` : event.PhysicalResourceId,
      };
    }
    if (event.RequestType === 'Delete' && !propertiesSchema.safeParse(event.ResourceProperties).success) {
      // Properties this handler refuses made the Create fail before anything was written; failing
      // the rollback's Delete too would leave the stack stuck in ROLLBACK_FAILED.
      log.warn({ requestType: event.RequestType }, 'delete of a resource whose properties were never valid: nothing to remove');
      return { PhysicalResourceId: event.PhysicalResourceId };
    }
    const properties = readProperties(event.ResourceProperties, 'ResourceProperties');
    switch (event.RequestType) {
      case 'Create':
        await whileIamPropagates(() => merge(properties, new Set(), event.LogicalResourceId));
        break;
      case 'Update': {
        const old = readProperties(event.OldResourceProperties, 'OldResourceProperties');
        // Moving to another repository is a new physical resource: CloudFormation then deletes the
        // old one, which removes our trigger from the old repository.
        const leftTheConfig =
          old.RepositoryName === properties.RepositoryName ? new Set(old.Triggers.map((t) => t.name)) : new Set<string>();
        await merge(properties, leftTheConfig, event.LogicalResourceId);
        break;
      }
      case 'Delete':
        await removeOurs(properties, event.LogicalResourceId);
        return { PhysicalResourceId: event.PhysicalResourceId };
    }
    return { PhysicalResourceId: properties.RepositoryName };
  };
}

export const handler = createRepositoryTriggersProvider(new CodeCommitClient({ maxAttempts: 8 }), createLambdaLogger());
