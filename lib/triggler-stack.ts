import { Aws, CfnOutput, CfnResource, Duration, Stack, Tags, Token, Validations, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { codeCommitTriggerName } from './stack-config/codecommit-rules';
import { regionProblems } from './stack-config/regions';
import { repositoryTriggerPlans, tokenNameOf, tokenNamesOf, type StackConfig } from './stack-config/schema';
import { throwPropProblems, type PropProblem } from './construct-props';
import { generatedDeployKeysOf, ownDeployKeyNamesOf } from './stack-config/deploy-keys';
import { FleetCommand } from './constructs/fleet-command';
import { FleetRollout } from './constructs/fleet-rollout';
import { ReceiverFleet } from './constructs/receiver-host/receiver-fleet';
import { ReceiverHost } from './constructs/receiver-host/receiver-host';
import { ReceiverNetwork } from './constructs/receiver-network';
import { RepositoryTriggers } from './constructs/repository-triggers';
import { RolloutNotifications } from './constructs/rollout-notifications';
import { RunNotifications } from './constructs/run-notifications';
import { SenderFunction } from './constructs/sender-function';
import { TriggerTokens } from './constructs/trigger-tokens';
import { WebhookRelay } from './constructs/webhook-relay';
import { fleetCommitPrefixOf, fleetStepTimeoutSecondsOf, fleetTagOf, isFleet, rolloutSettingsOf } from './stack-config/fleet-settings';
import { idFromName } from './stack-config/name-ids';
import { receiverConfigFor } from './stack-config/receiver-config';
import { sshTarget, tokenParameterName } from '../protocol';

/**
 * What the senders' routes name as the receiver on a fleet, which has no one address: they start
 * a rollout instead (TRIGGLER_ROLLOUT_STATE_MACHINE_ARN), and a POST to this reserved name
 * (RFC 2606) could never reach a host.
 */
export const FLEET_ROUTE_URL = 'http://receiver-fleet.invalid';

/** Provider names as output ids and descriptions spell them. */
const PROVIDER_DISPLAY_NAMES = { github: 'GitHub', gitlab: 'GitLab', gitea: 'Gitea', forgejo: 'Forgejo', bitbucket: 'Bitbucket' } as const;

/** CloudFormation refuses an output value longer than this. */
const MAX_OUTPUT_VALUE_LENGTH = 4096;
/** ... and an output description longer than this. */
const MAX_OUTPUT_DESCRIPTION_LENGTH = 1024;
/** CloudFormation's limits per stack (fixed quotas, not raised on request). */
const MAX_RESOURCES = 500;
const MAX_OUTPUTS = 200;

/**
 * The stack's resources and outputs against CloudFormation's limits: past them a deploy fails
 * after the upload, so synth says so first. Counted at synth, after CDK's own additions.
 */
export function stackSizeProblems(stack: Stack): string[] {
  const constructs = stack.node.findAll();
  const resources = constructs.filter(CfnResource.isCfnResource).length;
  const outputs = constructs.filter((construct) => construct instanceof CfnOutput).length;
  const split = 'split the triggers over two stacks (each with its own stackName and tokens.prefix)';
  return [
    ...(resources > MAX_RESOURCES ? [`the stack would have ${resources} resources; CloudFormation allows ${MAX_RESOURCES}: ${split}`] : []),
    ...(outputs > MAX_OUTPUTS
      ? [
          `the stack would have ${outputs} outputs (one DeployKey<repository> per repository with a generated deploy key); CloudFormation allows ${MAX_OUTPUTS}: ${split}`,
        ]
      : []),
  ];
}

export interface TrigglerStackProps extends StackProps {
  /** The validated stack config (see lib/stack-config/schema.ts). */
  readonly config: StackConfig;
}

/**
 * A stack whose region is known at synth (an `env` with a region, or the CDK CLI's region that
 * bin/app.ts passes in) fails there when the region lacks something the config uses, naming the
 * field; an environment-agnostic stack with no region known finds out at deploy (see
 * docs/deploy.md for the regions).
 */
export function stackRegionProblems(region: string, config: StackConfig): PropProblem[] {
  if (Token.isUnresolved(region)) return [];
  return regionProblems(config, region).map(({ path, message }) => ({ prop: fieldName(path), problem: message }));
}

/** A config field as the config's own errors name it: `triggers[0].createRepository`. */
function fieldName(path: (string | number)[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${part}`)).join('');
}

/**
 * The whole pipeline in one stack: tokens in SSM, CodeCommit triggers, the sender Lambda, and the
 * receiver host, from one config file.
 */
export class TrigglerStack extends Stack {
  public readonly tokens: TriggerTokens;
  public readonly network: ReceiverNetwork;
  /** The receiver: one host, or with receiver.hosts above 1 a fleet. */
  public readonly receiver: ReceiverHost | ReceiverFleet;
  /** On a fleet: the Command document, its log group, the commit parameters and the converge associations. */
  public readonly fleetCommand?: FleetCommand;
  /** On a fleet: the rollout state machine and its coalescing table. */
  public readonly rollout?: FleetRollout;
  public readonly sender?: SenderFunction;
  public readonly repositoryTriggers?: RepositoryTriggers;
  public readonly webhookRelay?: WebhookRelay;
  public readonly notifications?: RunNotifications;

  constructor(scope: Construct, id: string, props: TrigglerStackProps) {
    super(scope, id, {
      description: 'git-triggler: CodeCommit pushes become signed deliveries that run commands on a receiver host',
      ...props,
    });
    const { config } = props;
    throwPropProblems(this, stackRegionProblems(this.region, config));
    const logRetention = config.logRetentionDays as logs.RetentionDays;
    // Not on the fleet's commit parameters (the only AWS::SSM::Parameter resources): a tag edit
    // updates the resource, and CloudFormation would write its starting value over the commit a
    // rollout wrote. Not on State Manager associations: their CloudFormation type has no Tags.
    for (const [key, value] of Object.entries(config.tags))
      Tags.of(this).add(key, value, { excludeResourceTypes: ['AWS::SSM::Parameter', 'AWS::SSM::Association'] });

    this.tokens = new TriggerTokens(this, 'Tokens', {
      prefix: config.tokens.prefix,
      tokenNames: tokenNamesOf(config),
      retainOnDelete: config.tokens.retainOnDelete,
      logRetention,
      deployKeys: generatedDeployKeysOf(config.triggers).map(({ repository, keyName }) => ({ repository, keyName })),
      ownDeployKeyNames: ownDeployKeyNamesOf(config.triggers),
    });

    const codeCommitTriggers = config.triggers.filter((trigger) => trigger.source === 'codecommit');
    const relayed = config.webhooks.ingress === 'function-url';
    const fleet = isFleet(config);
    this.network = new ReceiverNetwork(this, 'Network', {
      cidr: config.network.cidr,
      maxAzs: config.network.maxAzs,
      flowLogs: config.network.flowLogs,
      logRetention,
      ssmEndpoint: codeCommitTriggers.length > 0 || relayed,
      codeCommitEndpoint: codeCommitTriggers.length > 0 && config.sender.commitDetails,
      stepFunctionsEndpoint: fleet && (codeCommitTriggers.length > 0 || relayed),
    });

    if (config.notifications) {
      this.notifications = new RunNotifications(this, 'Notifications', {
        emails: config.notifications.email,
        topicArn: config.notifications.topicArn,
        on: config.notifications.on,
        metricNamespace: `GitTriggler/${config.stackName}`,
      });
    }
    const hostProps = {
      vpc: this.network.vpc,
      vpcSubnets: this.network.hostSubnets,
      receiverConfig: receiverConfigFor(config, {
        region: Aws.REGION,
        ...(this.notifications ? { notify: this.notifications.receiverNotify } : {}),
      }),
      tokens: this.tokens,
      instanceType: new ec2.InstanceType(config.receiver.instanceType),
      machineImage: config.receiver.imageIds ? ec2.MachineImage.genericLinux(config.receiver.imageIds) : undefined,
      allowCidrs: config.receiver.allowCidrs,
      writablePaths: config.receiver.writablePaths,
      manageUnits: config.receiver.manageUnits,
      rootVolumeGiB: config.receiver.rootVolumeGiB,
    };
    const receiver = fleet
      ? new ReceiverFleet(this, 'ReceiverFleet', { ...hostProps, hosts: config.receiver.hosts, fleetTag: fleetTagOf(config) })
      : new ReceiverHost(this, 'Receiver', hostProps);
    this.receiver = receiver;
    // What the host's rights are granted to (for a fleet, every host's role) and what waits for a check.
    const hostGrantee: iam.IGrantable & Construct = receiver instanceof ReceiverFleet ? receiver : receiver.instance;
    const hostResource: Construct = receiver instanceof ReceiverFleet ? receiver.autoScalingGroup : receiver.instance;
    // The receiver looks its tokens up on the first delivery; they exist before it starts.
    this.receiver.node.addDependency(this.tokens);
    this.notifications?.grantPublish(hostGrantee);
    this.network.allowEndpointsFrom(this.receiver);
    if (receiver instanceof ReceiverFleet) {
      const built = this.addRollout(config, receiver, logRetention);
      this.fleetCommand = built.fleetCommand;
      this.rollout = built.rollout;
    }
    // Each push to a fleet is a rollout: the senders name no host, and no host's port opens to them.
    const receiverUrl = receiver instanceof ReceiverHost ? receiver.privateUrl : FLEET_ROUTE_URL;
    const rolloutStateMachine = this.rollout?.stateMachine;

    if (codeCommitTriggers.length > 0) {
      this.sender = new SenderFunction(this, 'Sender', {
        vpc: this.network.vpc,
        vpcSubnets: this.network.functionSubnets,
        tokens: this.tokens,
        routes: codeCommitTriggers.map((trigger) => ({
          repository: trigger.repository,
          branch: trigger.branch,
          url: receiverUrl,
          tokenParameter: tokenParameterName(config.tokens.prefix, tokenNameOf(trigger)),
          scheme: trigger.scheme,
          ...(trigger.iterations === undefined ? {} : { iterations: trigger.iterations }),
        })),
        memorySize: config.sender.memoryMiB,
        timeout: Duration.seconds(config.sender.timeoutSeconds),
        deliveryTimeout: Duration.seconds(config.sender.deliveryTimeoutSeconds),
        tokenCacheTtl: Duration.seconds(config.tokens.cacheSeconds),
        retryAttempts: config.sender.retryAttempts,
        maxEventAge: Duration.seconds(config.sender.maxEventAgeSeconds),
        commitDetails: config.sender.commitDetails,
        rolloutStateMachine,
        alarmTopic: config.sender.alarmTopicArn ? sns.Topic.fromTopicArn(this, 'AlarmTopic', config.sender.alarmTopicArn) : undefined,
        logRetention,
      });
      if (receiver instanceof ReceiverHost) this.sender.connections.allowTo(receiver, ec2.Port.tcp(receiver.port), 'sender to receiver');
      this.network.allowEndpointsFrom(this.sender);

      this.repositoryTriggers = new RepositoryTriggers(this, 'CodeCommit', {
        destination: this.sender.function,
        repositories: repositoryTriggerPlans(config),
        triggerName: codeCommitTriggerName(config.stackName),
        logRetention,
      });
      // No push may reach the sender before its tokens exist.
      for (const merge of Object.values(this.repositoryTriggers.mergedTriggers)) merge.node.addDependency(this.tokens);
      // A missing repository or a full one fails the deploy before the host is built.
      if (this.repositoryTriggers.check) hostResource.node.addDependency(this.repositoryTriggers.check);
    }

    if (relayed) {
      this.webhookRelay = new WebhookRelay(this, 'WebhookRelay', {
        vpc: this.network.vpc,
        vpcSubnets: this.network.functionSubnets,
        tokens: this.tokens,
        routes: config.triggers.flatMap((trigger) =>
          trigger.source === 'webhook' && trigger.provider !== undefined
            ? [
                {
                  provider: trigger.provider,
                  repository: trigger.repository,
                  tokenParameter: tokenParameterName(config.tokens.prefix, tokenNameOf(trigger)),
                  ...(fleet ? { branches: [trigger.branch] } : {}),
                },
              ]
            : [],
        ),
        receiverUrl,
        bodyLimitBytes: this.receiver.receiverConfig.limits.bodyBytes,
        answerWithin: Duration.seconds(config.webhooks.timeoutSeconds),
        reservedConcurrency: config.webhooks.reservedConcurrency,
        tokenCacheTtl: Duration.seconds(config.tokens.cacheSeconds),
        tokenGrace: Duration.seconds(config.tokens.graceSeconds),
        logRetention,
        rolloutStateMachine,
      });
      if (receiver instanceof ReceiverHost)
        this.webhookRelay.connections.allowTo(receiver, ec2.Port.tcp(receiver.port), 'webhook relay to receiver');
      this.network.allowEndpointsFrom(this.webhookRelay);
    }

    this.addOutputs(config);
    this.node.addValidation({ validate: () => stackSizeProblems(this) });
  }

  /**
   * A fleet's rollout: the Command document and what goes with it, the state machine that sends
   * it, and the grants between them. The state machine may send the document only to hosts with
   * the fleet tag, and write only the fleet's commit parameters.
   */
  private addRollout(
    config: StackConfig,
    fleet: ReceiverFleet,
    logRetention: logs.RetentionDays,
  ): { fleetCommand: FleetCommand; rollout: FleetRollout } {
    const commitParameterPrefix = fleetCommitPrefixOf(config);
    const fleetCommand = new FleetCommand(this, 'FleetCommand', {
      triggers: config.triggers.map(({ repository, branch }) => ({ repository, branch })),
      fleetTag: fleet.fleetTag,
      commitParameterPrefix,
      stepTimeout: Duration.seconds(fleetStepTimeoutSecondsOf(config)),
      logRetention,
    });
    fleetCommand.grantHostSide(fleet);
    const rollout = new FleetRollout(this, 'Rollout', {
      documentName: fleetCommand.documentName,
      fleetTag: fleet.fleetTag,
      rollout: rolloutSettingsOf(config),
      commandLogGroupName: fleetCommand.logGroup.logGroupName,
      commitParameterPrefix,
      stepTimeoutSeconds: fleetCommand.stepTimeoutSeconds,
    });
    fleetCommand.grantCommitWrite(rollout.stateMachine);
    // Each finished rollout is told where runs are: its metric beside the runs' own, and the
    // notifications topic when there is one.
    const rolloutNotifications = new RolloutNotifications(this, 'RolloutNotifications', {
      stateMachine: rollout.stateMachine,
      targets: [
        { format: 'cloudwatch', namespace: `GitTriggler/${config.stackName}` },
        ...(this.notifications ? [{ format: 'sns' as const, topicArn: this.notifications.topic.topicArn }] : []),
      ],
      logRetention,
    });
    this.notifications?.grantPublish(rolloutNotifications.notifier.role);
    // The rollout's own record is its execution history (kept 90 days by Step Functions, read by
    // `triggler fleet show`) and its summary; its steps call SSM, CloudWatch and DynamoDB, no Lambda.
    Validations.of(rollout.stateMachine).acknowledge(
      {
        id: 'AwsSolutions-SF1',
        reason:
          "Each rollout's execution history (every state, input and output, kept 90 days) and its summary are its record; logging ALL events to CloudWatch Logs as well would bill every state transition twice.",
      },
      {
        id: 'AwsSolutions-SF2',
        reason:
          "The rollout's steps are SDK calls to SSM, CloudWatch and DynamoDB, no Lambda: a trace would show what the execution history already does.",
      },
    );
    return { fleetCommand, rollout };
  }

  private addOutputs(config: StackConfig): void {
    const receiver = this.receiver;
    if (receiver instanceof ReceiverHost) {
      new CfnOutput(this, 'ReceiverInstanceId', { value: receiver.instanceId, description: 'The receiver host' });
      new CfnOutput(this, 'ReceiverPrivateAddress', {
        value: receiver.privateIp,
        description: "The receiver host's address in the VPC",
      });
      new CfnOutput(this, 'ReceiverPrivateUrl', { value: receiver.privateUrl, description: 'The URL the sender delivers to' });
      if (config.receiver.allowCidrs.length > 0) {
        new CfnOutput(this, 'ReceiverPublicUrl', {
          value: `http://${receiver.publicIp}:${receiver.port}`,
          description: 'For provider webhooks (receiver.allowCidrs); it changes when the host is replaced',
        });
      }
      new CfnOutput(this, 'SessionManagerCommand', {
        value: `aws ssm start-session --target ${receiver.instanceId} --region ${Aws.REGION}`,
        description: 'A shell on the receiver host (needs the Session Manager plugin for the AWS CLI)',
      });
    } else {
      this.addFleetOutputs(receiver);
    }
    new CfnOutput(this, 'TokenPrefix', { value: this.tokens.prefix, description: 'SSM path of the tokens (for npx triggler tokens ...)' });
    const names = this.tokens.parameterNames.join(',');
    new CfnOutput(this, 'TokenParameterNames', {
      value:
        names.length <= MAX_OUTPUT_VALUE_LENGTH
          ? names
          : `${this.tokens.parameterNames.length} parameters under ${this.tokens.prefix}/ (too many to list here: npx triggler tokens list)`,
      description: 'SSM SecureString parameters holding the tokens (names only; values stay in SSM)',
    });
    for (const provider of this.webhookRelay?.providers ?? []) {
      const name = PROVIDER_DISPLAY_NAMES[provider];
      new CfnOutput(this, `${name}WebhookUrl`, {
        value: this.webhookRelay!.urlOf(provider),
        description: `Paste into ${name}'s webhook settings (HTTPS, through the webhook relay)`,
      });
      new CfnOutput(this, `${name}WebhookSecrets`, {
        value: this.webhookRelay!.secretParametersOf(provider).join(','),
        description: `The SSM parameters holding the secret of each ${name} webhook (npx triggler tokens show --stack ${config.stackName} ... --reveal)`,
      });
    }
    const hosts = new Map(generatedDeployKeysOf(config.triggers).map((key) => [key.repository, sshTarget(key.repositoryUrl)!.host]));
    for (const key of this.tokens.deployKeys) {
      const description = `Deploy key of ${key.repository}: add it to the repository's deploy keys at ${hosts.get(key.repository)}, read-only (no write access)`;
      const withParameter = `${description}. Its private half stays in SSM: ${key.parameterName}`;
      new CfnOutput(this, `DeployKey${idFromName(key.repository)}`, {
        value: key.publicKey,
        description: withParameter.length <= MAX_OUTPUT_DESCRIPTION_LENGTH ? withParameter : description,
      });
    }
    if (this.sender) {
      new CfnOutput(this, 'SenderLogGroup', {
        value: this.sender.logGroup.logGroupName,
        description: "The sender's logs (aws logs tail <group> --follow)",
      });
      new CfnOutput(this, 'FailedDeliveriesQueueUrl', {
        value: this.sender.failureQueue.queueUrl,
        description: 'Push events the sender could not deliver after every retry',
      });
    }
  }

  private addFleetOutputs(fleet: ReceiverFleet): void {
    const { key, value } = fleet.fleetTag;
    new CfnOutput(this, 'FleetAutoScalingGroup', {
      value: fleet.autoScalingGroup.autoScalingGroupName,
      description: `The receiver fleet: ${fleet.hosts} hosts, each tagged ${key}=${value}`,
    });
    new CfnOutput(this, 'FleetInstancesCommand', {
      value: `aws ec2 describe-instances --region ${Aws.REGION} --filters Name=tag:${key},Values=${value} Name=instance-state-name,Values=running --query Reservations[].Instances[].InstanceId --output text`,
      description: "The fleet's hosts (then: aws ssm start-session --target <id>, with the Session Manager plugin)",
    });
    new CfnOutput(this, 'RolloutStateMachineArn', {
      value: this.rollout!.stateMachine.stateMachineArn,
      description: 'The state machine each push starts (npx triggler fleet ...)',
    });
    new CfnOutput(this, 'FleetCommandDocument', {
      value: this.fleetCommand!.documentName,
      description: 'The SSM Command document that runs one rollout step on a host (triggler fleet-step)',
    });
    new CfnOutput(this, 'FleetCommandLogGroup', {
      value: this.fleetCommand!.logGroup.logGroupName,
      description: "Every host step's whole output (aws logs tail <group> --follow)",
    });
    new CfnOutput(this, 'FleetCommitParameterPrefix', {
      value: this.fleetCommand!.commitParameterPrefix,
      description: "SSM path of each trigger's fleet commit (<prefix>/<repository>/<branch>/commit), which joining hosts deploy",
    });
  }
}
