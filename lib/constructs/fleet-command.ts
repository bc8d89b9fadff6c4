/**
 * What Run Command and State Manager need to reach a fleet's hosts: the one Command document that
 * runs `triggler fleet-step` on a host, the log group its whole output goes to, each trigger's
 * fleet commit parameter, and the association that deploys that commit to every host that joins.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, type IConstruct } from 'constructs';
import { FLEET_STEP_PATTERNS, FLEET_STEPS } from '../../bin/fleet-step';
import { fleetCommitParameterName } from '../../protocol/rollout';
import { parameterNameProblem } from '../../protocol';
import { propProblem, throwPropProblems, type PropProblem } from '../construct-props';
import { MAX_STEP_TIMEOUT_SECONDS } from '../stack-config/fleet-settings';
import { idFromName, nameHash } from '../stack-config/name-ids';
import { HOST_PATHS } from '../host-files/host-files';
import type { FleetTag } from './receiver-host/receiver-fleet';

/**
 * The value of a commit parameter before any rollout of its trigger finished: git's "no commit".
 * It matches the parameter's pattern, and the document's `converge` takes it as nothing to deploy.
 */
export const NO_FLEET_COMMIT = '0'.repeat(40);

export interface FleetCommandTrigger {
  readonly repository: string;
  readonly branch: string;
}

export interface FleetCommandProps {
  /** The triggers rolled out to the fleet: one commit parameter and one converge association each; at least one. */
  readonly triggers: readonly FleetCommandTrigger[];
  /** The tag every fleet host carries: the association targets it, and Run Command may reach only hosts with it. */
  readonly fleetTag: FleetTag;
  /** Prefix of the fleet's commit parameters (protocol/rollout: fleetCommitParameterName). */
  readonly commitParameterPrefix: string;
  /**
   * Longest one host step may take: a step is a run of the host's receiver (fetch, command,
   * activate, health check).
   * @default Duration.hours(1)
   */
  readonly stepTimeout?: Duration;
  /**
   * How long a joining host's converge waits for cfn-init to bring its receiver up (the host's
   * cfn-init timeout).
   * @default Duration.minutes(15)
   */
  readonly joinWait?: Duration;
  /**
   * Retention of the log group the steps' whole output goes to.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/** Every bad prop of a FleetCommand. */
export function fleetCommandPropProblems(props: FleetCommandProps): PropProblem[] {
  const seconds = (props.stepTimeout ?? Duration.hours(1)).toSeconds();
  return [
    ...propProblem(
      'triggers',
      props.triggers.length === 0 ? 'must hold at least one trigger (a fleet with nothing to roll out is a mistake)' : undefined,
    ),
    ...props.triggers.flatMap((trigger, i) => [
      ...propProblem(
        `triggers[${i}].repository`,
        FLEET_STEP_PATTERNS.repository.test(trigger.repository)
          ? undefined
          : `must match the document's pattern ${FLEET_STEP_PATTERNS.repository.source}`,
      ),
      ...propProblem(
        `triggers[${i}].branch`,
        FLEET_STEP_PATTERNS.branch.test(trigger.branch)
          ? undefined
          : `must match the document's pattern ${FLEET_STEP_PATTERNS.branch.source}`,
      ),
      ...propProblem(
        `triggers[${i}]`,
        parameterNameProblem(fleetCommitParameterName(props.commitParameterPrefix, trigger.repository, trigger.branch)),
      ),
    ]),
    ...propProblem(
      'stepTimeout',
      seconds >= 60 && seconds <= MAX_STEP_TIMEOUT_SECONDS
        ? undefined
        : `must be 1 minute to 48 hours (Run Command's limit), got ${seconds} s`,
    ),
  ];
}

/** State Manager's limit on an association name (letters, digits, `_.-`). */
const MAX_ASSOCIATION_NAME_LENGTH = 128;

/** A readable association name for a trigger's converge, unique by the hash of the exact trigger. */
export function associationNameOf(stackName: string, repository: string, branch: string): string {
  const hash = nameHash(`${repository}\n${branch}`);
  const readable = `${stackName}-converge-${repository}-${branch}`.replace(/[^A-Za-z0-9_.-]+/g, '-');
  return `${readable.slice(0, MAX_ASSOCIATION_NAME_LENGTH - hash.length - 1)}-${hash}`;
}

/** The document's `commit` parameter may be empty (a rollback to the release before current); otherwise it is a commit id. */
const COMMIT_OR_NONE = `^$|${FLEET_STEP_PATTERNS.commit.source}`;

/**
 * The script the document runs. The agent (3.3.2746.0 and later) hands each parameter over as an
 * environment variable `SSM_<name>` (interpolationType ENV_VAR), so no value becomes script text;
 * an older agent does not, and the script falls back to the values written into it, which the
 * parameters' allowedPatterns keep to letters, digits and `._/-`. Either way the values reach
 * `triggler fleet-step` as separate arguments, and it checks them against the same patterns.
 * `triggler` is found on the agent's PATH (/usr/local/bin on the host).
 *
 * A host that has just joined the fleet runs the converge association as soon as its agent
 * starts, while cfn-init may still be installing the CLI and starting the receiver: converge
 * tries again (for up to `joinWaitSeconds`) while the CLI is missing or could not ask the
 * receiver (its line says `"status":"error"`); a run that failed is not tried again.
 */
export function fleetStepScript(joinWaitSeconds: number): string[] {
  return [
    'set -u',
    `if [ -z "\${SSM_step+x}" ]; then SSM_step='{{step}}' SSM_repository='{{repository}}' SSM_branch='{{branch}}' SSM_commit='{{commit}}' SSM_config='{{config}}'; fi`,
    `if [ "$SSM_step" = converge ] && [ "$SSM_commit" = ${NO_FLEET_COMMIT} ]; then`,
    "  echo 'no rollout of this trigger has finished yet: nothing to converge'",
    '  exit 0',
    'fi',
    'set -- "$SSM_step" --repository "$SSM_repository" --branch "$SSM_branch" --config "$SSM_config"',
    'if [ -n "$SSM_commit" ]; then set -- "$@" --commit "$SSM_commit"; fi',
    'if [ "$SSM_step" != converge ]; then exec triggler fleet-step "$@"; fi',
    `deadline=$(( $(date +%s) + ${joinWaitSeconds} ))`,
    'while :; do',
    '  if command -v triggler >/dev/null; then',
    '    line=$(triggler fleet-step "$@"); status=$?',
    `  case "$line" in *'"status":"error"'*) ;; *) echo "$line"; exit "$status" ;; esac`,
    '  else',
    "    line='triggler is not installed yet'; status=1",
    '  fi',
    '  if [ "$(date +%s)" -ge "$deadline" ]; then echo "$line"; exit "$status"; fi',
    '  sleep 5',
    'done',
  ];
}

/** The Command document's content (schemaVersion 2.2), its patterns those of `triggler fleet-step`. */
export function fleetStepDocumentContent(stepTimeoutSeconds: number, joinWaitSeconds: number): Record<string, unknown> {
  const text = (description: string, allowedPattern: string, extra: Record<string, unknown> = {}) => ({
    type: 'String',
    description,
    allowedPattern,
    interpolationType: 'ENV_VAR',
    ...extra,
  });
  return {
    schemaVersion: '2.2',
    description: "git-triggler: one step of a fleet rollout on this host (triggler fleet-step), as a journaled run of the host's receiver",
    parameters: {
      step: {
        type: 'String',
        description: 'prepare | switch | rollback | converge',
        allowedValues: [...FLEET_STEPS],
        interpolationType: 'ENV_VAR',
      },
      repository: text("The trigger's repository", FLEET_STEP_PATTERNS.repository.source),
      branch: text("The trigger's branch", FLEET_STEP_PATTERNS.branch.source),
      commit: text('The commit (empty for a rollback to the release before current)', COMMIT_OR_NONE, { default: '' }),
      config: text("The host's receiver config", FLEET_STEP_PATTERNS.config.source, { default: HOST_PATHS.configFile }),
    },
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: 'fleetStep',
        precondition: { StringEquals: ['platformType', 'Linux'] },
        inputs: { timeoutSeconds: stepTimeoutSeconds, runCommand: fleetStepScript(joinWaitSeconds) },
      },
    ],
  };
}

/**
 * The fleet's Command document, its output log group, the commit parameters and the converge
 * associations. The document's parameters take only what `triggler fleet-step` takes (its
 * FLEET_STEP_PATTERNS, one source), so no delivery data reaches a host's shell unchecked.
 */
export class FleetCommand extends Construct {
  public readonly document: ssm.CfnDocument;
  /** The document's name (what SendCommand and the association name). */
  public readonly documentName: string;
  public readonly documentArn: string;
  /** Where Run Command writes each invocation's whole output (CloudWatchOutputConfig). */
  public readonly logGroup: logs.LogGroup;
  public readonly commitParameterPrefix: string;
  public readonly commitParameters: ssm.StringParameter[];
  public readonly associations: ssm.CfnAssociation[];
  public readonly stepTimeoutSeconds: number;
  public readonly fleetTag: FleetTag;

  constructor(scope: Construct, id: string, props: FleetCommandProps) {
    super(scope, id);
    throwPropProblems(this, fleetCommandPropProblems(props));
    this.stepTimeoutSeconds = (props.stepTimeout ?? Duration.hours(1)).toSeconds();
    const joinWait = props.joinWait ?? Duration.minutes(15);
    this.commitParameterPrefix = props.commitParameterPrefix;
    this.fleetTag = props.fleetTag;
    const stack = Stack.of(this);

    this.document = new ssm.CfnDocument(this, 'Document', {
      documentType: 'Command',
      documentFormat: 'JSON',
      content: fleetStepDocumentContent(this.stepTimeoutSeconds, Math.min(joinWait.toSeconds(), this.stepTimeoutSeconds)),
      // A new version under the same name: a rollout in flight keeps naming a document that exists.
      updateMethod: 'NewVersion',
    });
    this.documentName = this.document.ref;
    this.documentArn = stack.formatArn({ service: 'ssm', resource: 'document', resourceName: this.documentName });

    this.logGroup = new logs.LogGroup(this, 'Output', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const triggers = props.triggers.filter(
      (trigger, i) => props.triggers.findIndex((t) => t.repository === trigger.repository && t.branch === trigger.branch) === i,
    );
    this.commitParameters = [];
    this.associations = [];
    for (const { repository, branch } of triggers) {
      const nameId = `${idFromName(repository)}${idFromName(branch)}`;
      const parameterName = fleetCommitParameterName(props.commitParameterPrefix, repository, branch);
      // The rollout writes the commit (PutParameter, Overwrite) once every host switched to it.
      // The value here only starts it: CloudFormation writes it again only when this resource's
      // own properties change, so they never do after the first deploy (the stack's tags leave
      // it out).
      const parameter = new ssm.StringParameter(this, `Commit${nameId}`, {
        parameterName,
        stringValue: NO_FLEET_COMMIT,
        allowedPattern: FLEET_STEP_PATTERNS.commit.source,
        description: `git-triggler: the commit the fleet runs for ${repository} ${branch}; written by each rollout that succeeds`,
        tier: ssm.ParameterTier.STANDARD,
      });
      this.commitParameters.push(parameter);
      // No schedule: State Manager applies it when it is created and to every host that joins
      // the tag, which then deploys the fleet's commit before a rollout ever names it.
      const association = new ssm.CfnAssociation(this, `Converge${nameId}`, {
        name: this.documentName,
        associationName: associationNameOf(stack.stackName, repository, branch),
        targets: [{ key: `tag:${props.fleetTag.key}`, values: [props.fleetTag.value] }],
        parameters: {
          step: ['converge'],
          repository: [repository],
          branch: [branch],
          commit: [`{{ssm:${parameterName}}}`],
        },
        maxConcurrency: '100%',
        maxErrors: '100%',
        complianceSeverity: 'HIGH',
      });
      association.node.addDependency(parameter);
      this.associations.push(association);
    }
  }

  /** ARNs of every EC2 instance in the stack's account and region; only with the fleet tag condition. */
  private instanceArns(): string {
    return Stack.of(this).formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
  }

  /** Writing the fleet's commit parameters (once a rollout has switched every host). */
  grantCommitWrite(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ssm:PutParameter', 'ssm:GetParameter'],
        resources: this.commitParameters.map((parameter) => parameter.parameterArn),
      }),
    );
  }

  /**
   * What each fleet host's SSM agent needs to run the document: write its output to the log group,
   * read the document and the commit parameters the association names (the agent's own State
   * Manager actions are the host's: receiver-fleet.ts).
   */
  grantHostSide(grantee: iam.IGrantable & IConstruct): void {
    const principal = grantee.grantPrincipal;
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FleetStepOutput',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [this.logGroup.logGroupArn, `${this.logGroup.logGroupArn}:log-stream:*`],
      }),
    );
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FleetStepOutputGroup',
        // The agent checks that the group exists before it writes; the action lists names, never events.
        actions: ['logs:DescribeLogGroups'],
        resources: [
          Stack.of(this).formatArn({ service: 'logs', resource: 'log-group', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
        ],
      }),
    );
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FleetCommitRead',
        actions: ['ssm:GetParameter', 'ssm:GetParameters'],
        resources: this.commitParameters.map((parameter) => parameter.parameterArn),
      }),
    );
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FleetStepDocumentRead',
        actions: ['ssm:GetDocument', 'ssm:DescribeDocument'],
        resources: [this.documentArn],
      }),
    );
    Validations.of(grantee).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*]',
        reason:
          "Run Command's agent checks that the output log group exists (DescribeLogGroups takes no narrower resource); it lists group names, never log events.",
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.logGroup.node.defaultChild as logs.CfnLogGroup)}.Arn>:log-stream:*]`,
        reason: 'One log stream per command invocation, named by Run Command: the grant is on the fleet output group only.',
      },
    );
  }
}
