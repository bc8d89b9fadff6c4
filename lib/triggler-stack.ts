import { Aws, CfnOutput, CfnResource, Duration, Stack, Tags, Token, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { codeCommitTriggerName } from './stack-config/codecommit-rules';
import { regionProblems } from './stack-config/regions';
import { repositoryTriggerPlans, tokenNameOf, tokenNamesOf, type StackConfig } from './stack-config/schema';
import { throwPropProblems, type PropProblem } from './construct-props';
import { generatedDeployKeysOf, ownDeployKeyNamesOf } from './stack-config/deploy-keys';
import { ReceiverHost } from './constructs/receiver-host/receiver-host';
import { ReceiverNetwork } from './constructs/receiver-network';
import { RepositoryTriggers } from './constructs/repository-triggers';
import { RunNotifications } from './constructs/run-notifications';
import { SenderFunction } from './constructs/sender-function';
import { TriggerTokens } from './constructs/trigger-tokens';
import { WebhookRelay } from './constructs/webhook-relay';
import { idFromName } from './stack-config/name-ids';
import { receiverConfigFor } from './stack-config/receiver-config';
import { sshTarget, tokenParameterName } from '../protocol';

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
  public readonly receiver: ReceiverHost;
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
    for (const [key, value] of Object.entries(config.tags)) Tags.of(this).add(key, value);

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
    this.network = new ReceiverNetwork(this, 'Network', {
      cidr: config.network.cidr,
      maxAzs: config.network.maxAzs,
      flowLogs: config.network.flowLogs,
      logRetention,
      ssmEndpoint: codeCommitTriggers.length > 0 || relayed,
      codeCommitEndpoint: codeCommitTriggers.length > 0 && config.sender.commitDetails,
    });

    if (config.notifications) {
      this.notifications = new RunNotifications(this, 'Notifications', {
        emails: config.notifications.email,
        topicArn: config.notifications.topicArn,
        on: config.notifications.on,
        metricNamespace: `GitTriggler/${config.stackName}`,
      });
    }
    this.receiver = new ReceiverHost(this, 'Receiver', {
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
    });
    // The receiver looks its tokens up on the first delivery; they exist before it starts.
    this.receiver.node.addDependency(this.tokens);
    this.notifications?.grantPublish(this.receiver.instance);
    this.network.allowEndpointsFrom(this.receiver);

    if (codeCommitTriggers.length > 0) {
      this.sender = new SenderFunction(this, 'Sender', {
        vpc: this.network.vpc,
        vpcSubnets: this.network.functionSubnets,
        tokens: this.tokens,
        routes: codeCommitTriggers.map((trigger) => ({
          repository: trigger.repository,
          branch: trigger.branch,
          url: this.receiver.privateUrl,
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
        alarmTopic: config.sender.alarmTopicArn ? sns.Topic.fromTopicArn(this, 'AlarmTopic', config.sender.alarmTopicArn) : undefined,
        logRetention,
      });
      this.sender.connections.allowTo(this.receiver, ec2.Port.tcp(this.receiver.port), 'sender to receiver');
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
      if (this.repositoryTriggers.check) this.receiver.instance.node.addDependency(this.repositoryTriggers.check);
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
                },
              ]
            : [],
        ),
        receiverUrl: this.receiver.privateUrl,
        bodyLimitBytes: this.receiver.receiverConfig.limits.bodyBytes,
        answerWithin: Duration.seconds(config.webhooks.timeoutSeconds),
        reservedConcurrency: config.webhooks.reservedConcurrency,
        tokenCacheTtl: Duration.seconds(config.tokens.cacheSeconds),
        tokenGrace: Duration.seconds(config.tokens.graceSeconds),
        logRetention,
      });
      this.webhookRelay.connections.allowTo(this.receiver, ec2.Port.tcp(this.receiver.port), 'webhook relay to receiver');
      this.network.allowEndpointsFrom(this.webhookRelay);
    }

    this.addOutputs(config);
    this.node.addValidation({ validate: () => stackSizeProblems(this) });
  }

  private addOutputs(config: StackConfig): void {
    new CfnOutput(this, 'ReceiverInstanceId', { value: this.receiver.instanceId, description: 'The receiver host' });
    new CfnOutput(this, 'ReceiverPrivateAddress', {
      value: this.receiver.privateIp,
      description: "The receiver host's address in the VPC",
    });
    new CfnOutput(this, 'ReceiverPrivateUrl', { value: this.receiver.privateUrl, description: 'The URL the sender delivers to' });
    if (config.receiver.allowCidrs.length > 0) {
      new CfnOutput(this, 'ReceiverPublicUrl', {
        value: `http://${this.receiver.publicIp}:${this.receiver.port}`,
        description: 'For provider webhooks (receiver.allowCidrs); it changes when the host is replaced',
      });
    }
    new CfnOutput(this, 'SessionManagerCommand', {
      value: `aws ssm start-session --target ${this.receiver.instanceId} --region ${Aws.REGION}`,
      description: 'A shell on the receiver host (needs the Session Manager plugin for the AWS CLI)',
    });
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
}
