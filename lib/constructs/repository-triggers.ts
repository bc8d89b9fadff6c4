import * as path from 'node:path';
import { Aws, CustomResource, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as codecommit from 'aws-cdk-lib/aws-codecommit';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  branchNameProblem,
  repositoryNameProblem,
  triggerNameProblem,
  type RepositoryTriggerPlan,
} from '../codecommit-rules';
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
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default lambda/repository-triggers-provider.ts */
  readonly handlerEntry?: string;
}

/**
 * CodeCommit triggers that invoke the sender on a push. A repository the stack creates gets its
 * trigger on the repository resource; an existing repository gets it through a custom resource
 * that merges it into the repository's own triggers and removes only ours on delete
 * (PutRepositoryTriggers replaces the whole list: dropping a user's trigger would be data loss).
 */
export class RepositoryTriggers extends Construct {
  /** Repositories this stack created, by name. They are kept when the stack is deleted. */
  public readonly createdRepositories: Record<string, codecommit.Repository> = {};
  /** The merge resources for existing repositories, by name. */
  public readonly mergedTriggers: Record<string, CustomResource> = {};
  public readonly triggerName: string;

  constructor(scope: Construct, id: string, props: RepositoryTriggersProps) {
    super(scope, id);
    const events = props.events ?? [codecommit.RepositoryEventTrigger.CREATE_REF, codecommit.RepositoryEventTrigger.UPDATE_REF];
    this.validate(props, events);
    this.triggerName = props.triggerName;
    const stack = Stack.of(this);
    // ARNs are built from names, never taken from a repository resource: a created repository
    // refers to the function (its trigger), and the function depends on its role's policy, so a
    // policy naming the repository resource would close a cycle (Repository -> Function -> Policy).
    // The sender's GetCommit grant builds its ARNs the same way.
    const repositoryArn = (name: string) => stack.formatArn({ service: 'codecommit', resource: name });

    const existing = props.repositories.filter((plan) => !plan.createRepository);
    // Made on first use: a stack that creates all its repositories needs no merge handler.
    let mergeProvider: BundledProvider | undefined;
    const mergeServiceToken = () =>
      (mergeProvider ??= new BundledProvider(this, 'MergeProvider', {
        entry: props.handlerEntry ?? path.join(REPOSITORY_ROOT, 'lambda', 'repository-triggers-provider.ts'),
        description: 'git-triggler CodeCommit trigger merge (keeps the repository owner\'s triggers)',
        logRetention: props.logRetention,
        handlerPolicy: [
          new iam.PolicyStatement({
            actions: ['codecommit:GetRepositoryTriggers', 'codecommit:PutRepositoryTriggers'],
            resources: existing.map((plan) => repositoryArn(plan.repository)),
          }),
        ],
      })).serviceToken;

    props.repositories.forEach((plan, index) => {
      // The permission lives on the destination; the id keeps two of these constructs apart there.
      const permission = `${this.node.id}InvokeFrom${index}`;
      props.destination.addPermission(permission, {
        principal: new iam.ServicePrincipal('codecommit.amazonaws.com'),
        sourceArn: repositoryArn(plan.repository),
        sourceAccount: Aws.ACCOUNT_ID,
      });
      const trigger = {
        name: props.triggerName,
        destinationArn: props.destination.functionArn,
        branches: plan.branches,
        events,
      };
      if (plan.createRepository) {
        const repository = new codecommit.Repository(this, `Repository${index}`, {
          repositoryName: plan.repository,
          description: 'Created by git-triggler; pushes to configured branches run commands on the receiver host.',
        });
        // Deleting the stack must never delete someone's code.
        repository.applyRemovalPolicy(RemovalPolicy.RETAIN);
        repository.notify(trigger.destinationArn, { name: trigger.name, branches: trigger.branches, events: trigger.events });
        this.createdRepositories[plan.repository] = repository;
      } else {
        const merge = new CustomResource(this, `Merge${index}`, {
          serviceToken: mergeServiceToken(),
          resourceType: 'Custom::TrigglerRepositoryTriggers',
          properties: {
            RepositoryName: plan.repository,
            Triggers: [{ ...trigger, events: trigger.events.map(String) }],
          },
        });
        // CodeCommit checks nothing when the trigger is written, but the first push must find
        // the permission in place.
        const permissionResource = props.destination.permissionsNode.tryFindChild(permission);
        if (permissionResource) merge.node.addDependency(permissionResource);
        this.mergedTriggers[plan.repository] = merge;
      }
    });
  }

  private validate(props: RepositoryTriggersProps, events: codecommit.RepositoryEventTrigger[]): void {
    const fail = (prop: string, problem: string) => {
      throw new Error(`${this.node.path}: ${prop}: ${problem}`);
    };
    const nameProblem = triggerNameProblem(props.triggerName);
    if (nameProblem) fail('triggerName', nameProblem);
    if (props.repositories.length === 0) fail('repositories', 'must list at least one repository');
    if (events.length === 0) fail('events', 'must list at least one event');
    if (events.includes(codecommit.RepositoryEventTrigger.ALL) && events.length > 1) fail('events', '"all" cannot be combined with other events');
    const seen = new Set<string>();
    props.repositories.forEach((plan, i) => {
      const repositoryProblem = repositoryNameProblem(plan.repository);
      if (repositoryProblem) fail(`repositories[${i}].repository`, repositoryProblem);
      if (seen.has(plan.repository)) fail(`repositories[${i}].repository`, `${plan.repository} is listed twice; list all its branches in one entry`);
      seen.add(plan.repository);
      if (plan.branches.length === 0) fail(`repositories[${i}].branches`, 'must list at least one branch (an empty list would mean every branch)');
      plan.branches.forEach((branch, j) => {
        const branchProblem = branchNameProblem(branch);
        if (branchProblem) fail(`repositories[${i}].branches[${j}]`, branchProblem);
      });
    });
  }
}
