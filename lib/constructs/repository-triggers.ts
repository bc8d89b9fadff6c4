import * as path from 'node:path';
import { Aws, CustomResource, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as codecommit from 'aws-cdk-lib/aws-codecommit';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { branchNameProblem, repositoryNameProblem, triggerNameProblem, type RepositoryTriggerPlan } from '../stack-config/codecommit-rules';
import { propProblem, throwPropProblems, type PropProblem } from '../construct-props';
import { idFromName } from '../stack-config/name-ids';
import { BundledProvider } from './bundled-provider';

const REPOSITORY_ROOT = path.join(__dirname, '..', '..');

export interface RepositoryTriggersProps {
  /** The function CodeCommit invokes on a push. */
  readonly destination: lambda.IFunction;
  /** One entry per repository with the branches whose pushes invoke the destination. */
  readonly repositories: RepositoryTriggerPlan[];
  /** Name of the trigger added to each repository; unique to this stack. */
  readonly triggerName: string;
  /**
   * Repository events that invoke the destination. Deleted branches are not deliveries.
   * @default [CREATE_REF, UPDATE_REF]
   */
  readonly events?: codecommit.RepositoryEventTrigger[];
  /**
   * Retention of the trigger handler's log groups.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The custom-resource handler's TypeScript entry (it merges triggers and checks repositories).
   * @default lambda/repository-triggers-provider.ts
   */
  readonly handlerEntry?: string;
}

/** Every bad prop of RepositoryTriggers. */
export function repositoryTriggersPropProblems(props: RepositoryTriggersProps, events: codecommit.RepositoryEventTrigger[]): PropProblem[] {
  const seen = new Set<string>();
  return [
    ...propProblem('triggerName', triggerNameProblem(props.triggerName)),
    ...propProblem('repositories', props.repositories.length === 0 ? 'must list at least one repository' : undefined),
    ...propProblem('events', events.length === 0 ? 'must list at least one event' : undefined),
    ...propProblem(
      'events',
      events.includes(codecommit.RepositoryEventTrigger.ALL) && events.length > 1
        ? '"all" cannot be combined with other events'
        : undefined,
    ),
    ...props.repositories.flatMap((plan, i) => {
      const twice = seen.has(plan.repository);
      seen.add(plan.repository);
      return [
        ...propProblem(`repositories[${i}].repository`, repositoryNameProblem(plan.repository)),
        ...propProblem(
          `repositories[${i}].repository`,
          twice ? `${plan.repository} is listed twice; list all its branches in one entry` : undefined,
        ),
        ...propProblem(
          `repositories[${i}].branches`,
          plan.branches.length === 0 ? 'must list at least one branch (an empty list would mean every branch)' : undefined,
        ),
        ...plan.branches.flatMap((branch, j) => propProblem(`repositories[${i}].branches[${j}]`, branchNameProblem(branch))),
      ];
    }),
  ];
}

/**
 * CodeCommit triggers that invoke the sender on a push, on repositories the stack creates and on
 * existing ones alike: a custom resource per repository merges our one trigger into the
 * repository's own and removes only ours when it is deleted (PutRepositoryTriggers replaces the
 * whole list: dropping someone's trigger would be data loss).
 *
 * Every resource of a repository has an id derived from the repository's name (see name-ids.ts),
 * so another repository entering, leaving or moving in the config never touches it. A created
 * repository is retained when it leaves the config or the stack is deleted, and its merge
 * resource's delete takes our trigger off it: the code stays, nothing points at a sender that may
 * be gone.
 *
 * Existing repositories are checked first by one resource (`check`) that needs nothing but the
 * handler: the stack makes the receiver host depend on it, so a missing repository or one already
 * holding 10 triggers fails the deploy in its first minute, naming every such repository, not
 * after the host is built.
 */
export class RepositoryTriggers extends Construct {
  /** Repositories this stack created, by name. They are kept when the stack is deleted. */
  public readonly createdRepositories: Record<string, codecommit.Repository> = {};
  /** The merge resource of every repository (created or existing), by name. */
  public readonly mergedTriggers: Record<string, CustomResource> = {};
  /** The check of the existing repositories (they exist, our trigger fits), when there are any. */
  public readonly check?: CustomResource;
  /** The name of the trigger added to each repository. */
  public readonly triggerName: string;

  constructor(scope: Construct, id: string, props: RepositoryTriggersProps) {
    super(scope, id);
    const events = props.events ?? [codecommit.RepositoryEventTrigger.CREATE_REF, codecommit.RepositoryEventTrigger.UPDATE_REF];
    throwPropProblems(this, repositoryTriggersPropProblems(props, events));
    this.triggerName = props.triggerName;
    const stack = Stack.of(this);
    // ARNs are built from names, never taken from a repository resource, so no policy or
    // permission waits on a repository and nothing closes a cycle through the sender.
    const repositoryArn = (name: string) => stack.formatArn({ service: 'codecommit', resource: name });

    const provider = new BundledProvider(this, 'MergeProvider', {
      entry: props.handlerEntry ?? path.join(REPOSITORY_ROOT, 'lambda', 'repository-triggers-provider.ts'),
      description: "git-triggler CodeCommit trigger merge (keeps the repository owner's triggers)",
      logRetention: props.logRetention,
    });

    const existing = props.repositories.filter((plan) => !plan.createRepository).map((plan) => plan.repository);
    if (existing.length > 0) {
      this.check = new CustomResource(this, 'ExistingRepositoriesCheck', {
        serviceToken: provider.serviceToken,
        resourceType: 'Custom::TrigglerRepositoryCheck',
        // Sorted: reordering the config is no change here.
        properties: { RepositoryNames: [...existing].sort(), TriggerName: props.triggerName },
      });
    }

    for (const plan of props.repositories) {
      const nameId = idFromName(plan.repository);
      // A policy per repository, which its merge resource depends on: when the repository leaves
      // the config, CloudFormation deletes the merge resource (removing our trigger) before the
      // policy that lets it. One shared statement would lose the repository's grant in the
      // update phase, before the delete that needs it.
      const access = new iam.Policy(this, `Access${nameId}`, {
        roles: [provider.handler.role],
        statements: [
          new iam.PolicyStatement({
            actions: ['codecommit:GetRepositoryTriggers', 'codecommit:PutRepositoryTriggers'],
            resources: [repositoryArn(plan.repository)],
          }),
        ],
      });
      if (!plan.createRepository) this.check!.node.addDependency(access);
      // The permission lives on the destination; the construct's id keeps two of these apart there.
      const permission = `${this.node.id}InvokeFrom${nameId}`;
      props.destination.addPermission(permission, {
        principal: new iam.ServicePrincipal('codecommit.amazonaws.com'),
        sourceArn: repositoryArn(plan.repository),
        sourceAccount: Aws.ACCOUNT_ID,
      });
      const merge = new CustomResource(this, `Merge${nameId}`, {
        serviceToken: provider.serviceToken,
        resourceType: 'Custom::TrigglerRepositoryTriggers',
        properties: {
          RepositoryName: plan.repository,
          Triggers: [
            { name: props.triggerName, destinationArn: props.destination.functionArn, branches: plan.branches, events: events.map(String) },
          ],
        },
      });
      // CodeCommit checks nothing when the trigger is written, but the first push must find the
      // permission in place.
      const permissionResource = props.destination.permissionsNode.tryFindChild(permission);
      if (permissionResource) merge.node.addDependency(permissionResource);
      merge.node.addDependency(access);
      if (plan.createRepository) {
        const repository = new codecommit.Repository(this, `Repository${nameId}`, {
          repositoryName: plan.repository,
          description: 'Created by git-triggler; pushes to configured branches run commands on the receiver host.',
        });
        // Deleting the stack, or the repository's last trigger leaving the config, must never
        // delete someone's code. A deploy that fails while creating it may: the repository is
        // new and empty then, and keeping it would make every retry fail on "already exists".
        repository.applyRemovalPolicy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE);
        merge.node.addDependency(repository);
        this.createdRepositories[plan.repository] = repository;
      }
      this.mergedTriggers[plan.repository] = merge;
    }
  }
}
