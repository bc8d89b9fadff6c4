import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Aws, CfnWaitCondition, CfnWaitConditionHandle, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { tokenNameOf, tokenParameterName } from '../../../protocol';
import { parseReceiverConfig, type ReceiverConfig, type ReceiverConfigInput } from '../../../receiver/config/schema';
import { propProblem, throwPropProblems, type PropProblem } from '../../construct-props';
import {
  CFN_HUP_UNIT_FILE_NAME,
  COMMAND_SERVICE_FILE_NAME,
  COMMAND_SOCKET_FILE_NAME,
  COMMAND_SOCKET_MAX_CONNECTIONS,
  COMMAND_SOCKET_NAME,
  HEALTHY_WAIT_SECONDS,
  HOST_PATHS,
  HOST_REVISION_FILE_NAME,
  hostFilePath,
  NODE_PACKAGE,
  RECEIVER_UNIT_FILE_NAME,
  SERVICE_NAME,
  SERVICE_USER,
  WAIT_HEALTHY_FILE_NAME,
} from '../../host-files/host-files';
import { UNIT_NAME } from '../../stack-config/host-commands';
import type { TriggerTokens } from '../trigger-tokens';
import { deployAccessOf, deploySystemSetup, GIT_CONFIG_FILE, gitConfigFor, grantGitPull } from './deploy-access';
import { commandIsolationSetup } from './command-isolation';
import { unitControlSetup } from './unit-control';
import { ReceiverBundle } from './receiver-bundle';

const REPOSITORY_ROOT = path.join(__dirname, '..', '..', '..');

export interface ReceiverHostProps {
  /** The VPC the host runs in. */
  readonly vpc: ec2.IVpc;
  /**
   * The subnets of `vpc` the host may go in (it needs a public address: there is no NAT gateway).
   * @default - the VPC's public subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * The receiver config to install; it is checked with the receiver's own schema here. Its
   * `listen.port` is the port the security group opens.
   */
  readonly receiverConfig: ReceiverConfigInput;
  /** The tokens and deploy keys the receiver reads (it may read exactly the ones the config's triggers name). */
  readonly tokens: TriggerTokens;
  /**
   * The EC2 instance type; Graviton types get the arm64 image.
   * @default ec2.InstanceType.of(T4G, MICRO)
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * The image the host boots; it must be Amazon Linux 2023 (cfn-init, dnf, the nodejs22 package).
   * @default - the latest Amazon Linux 2023 for the instance type's architecture
   */
  readonly machineImage?: ec2.IMachineImage;
  /**
   * IPv4 ranges allowed to reach the receiver port from outside (provider webhooks).
   * @default []
   */
  readonly allowCidrs?: string[];
  /**
   * Paths the commands may write besides the state directory (the unit has ProtectSystem=strict).
   * @default []
   */
  readonly writablePaths?: string[];
  /**
   * systemd units the commands may start, stop, restart and reload with `systemctl` (no sudo): a
   * polkit rule lets the service user do that to these units and no others.
   * @default []
   */
  readonly manageUnits?: string[];
  /**
   * Size of the encrypted gp3 root volume in GiB, at least 8 (the image's size).
   * @default 8
   */
  readonly rootVolumeGiB?: number;
  /**
   * The receiver's TypeScript entry, bundled into the asset cfn-init installs.
   * @default receiver/daemon.ts
   */
  readonly receiverEntry?: string;
  /**
   * How long CloudFormation waits for the first cfn-init run to succeed (packages, files, and the
   * receiver answering /healthz).
   * @default Duration.minutes(15)
   */
  readonly initTimeout?: Duration;
}

/**
 * The receiver config the host installs: the given one, with its commands started through the
 * command runner's socket (triggler-command.socket), so that they run in a unit whose firewall
 * denies the instance metadata service while the receiver keeps it.
 */
function installedReceiverConfig(given: ReceiverConfigInput): ReceiverConfigInput {
  return { ...given, commandRunner: { socket: HOST_PATHS.commandSocket } };
}

/** The receiver config as the host will read it (defaults filled in), or a prop problem naming why not. */
function receiverConfigProblems(given: ReceiverConfigInput): { config?: ReceiverConfig; problems: PropProblem[] } {
  let config: ReceiverConfig;
  try {
    // The given config: a trigger's `user`, which the runner cannot take, is refused below with the host's reason.
    const parsed = parseReceiverConfig(given, 'receiverConfig');
    config = { ...parsed, commandRunner: installedReceiverConfig(given).commandRunner! };
  } catch (error) {
    return { problems: [{ prop: 'receiverConfig', problem: (error as Error).message }] };
  }
  const problems: PropProblem[] = [
    ...propProblem(
      'receiverConfig.tokens.ssm',
      config.tokens.ssm ? undefined : 'must be set: on AWS the receiver reads its tokens from SSM',
    ),
    ...propProblem(
      'receiverConfig.tokens.file',
      config.tokens.file === undefined ? undefined : 'must not be set: the host has no token file',
    ),
    ...config.triggers.flatMap((trigger, i) => [
      ...propProblem(
        `receiverConfig.triggers[${i}]`,
        trigger.token === undefined && trigger.tokenEnv === undefined
          ? undefined
          : 'must not carry token or tokenEnv: tokens stay in SSM, out of the template',
      ),
      ...propProblem(
        `receiverConfig.triggers[${i}].user`,
        trigger.user === undefined ? undefined : `must not be set: the receiver runs as ${SERVICE_USER}, not root`,
      ),
    ]),
    ...propProblem(
      'receiverConfig.commandRunner',
      given.commandRunner === undefined || given.commandRunner.socket === HOST_PATHS.commandSocket
        ? undefined
        : `must be left out: the host's command runner listens on ${HOST_PATHS.commandSocket}`,
    ),
    ...propProblem(
      'receiverConfig.limits.maxConcurrentRuns',
      config.limits.maxConcurrentRuns <= COMMAND_SOCKET_MAX_CONNECTIONS
        ? undefined
        : `must be at most ${COMMAND_SOCKET_MAX_CONNECTIONS}: each running command holds a connection to ${COMMAND_SOCKET_NAME}, which takes that many`,
    ),
    ...propProblem(
      'receiverConfig.stateDir',
      config.stateDir === `/var/lib/${SERVICE_USER}` ? undefined : `must be /var/lib/${SERVICE_USER}, the unit's state directory`,
    ),
    ...propProblem(
      'receiverConfig.admin.host',
      config.admin === false || config.admin.host === '127.0.0.1'
        ? undefined
        : 'must be 127.0.0.1: the admin listener is for the host itself (the security group opens only listen.port)',
    ),
  ];
  return { config, problems };
}

/** Every bad prop of a ReceiverHost besides its receiver config. */
export function receiverHostPropProblems(props: ReceiverHostProps): PropProblem[] {
  const rootVolumeGiB = props.rootVolumeGiB ?? 8;
  return [
    ...(props.allowCidrs ?? []).flatMap((cidr, i) =>
      propProblem(`allowCidrs[${i}]`, /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr) ? undefined : `must be an IPv4 CIDR, got ${cidr}`),
    ),
    ...(props.writablePaths ?? []).flatMap((p, i) =>
      propProblem(
        `writablePaths[${i}]`,
        /^\/[^\s]*$/.test(p) && !p.split('/').includes('..') ? undefined : `must be an absolute path without spaces or "..", got ${p}`,
      ),
    ),
    ...(props.manageUnits ?? []).flatMap((unit, i) =>
      propProblem(
        `manageUnits[${i}]`,
        UNIT_NAME.test(unit) ? undefined : `must be a systemd unit name such as my-app.service, got ${unit}`,
      ),
    ),
    ...propProblem(
      'rootVolumeGiB',
      Number.isInteger(rootVolumeGiB) && rootVolumeGiB >= 8
        ? undefined
        : `must be a whole number of at least 8 (the image's size), got ${rootVolumeGiB}`,
    ),
  ];
}

/** Checks every prop at once; returns the receiver config as the host will read it. */
function parsedReceiverConfig(scope: Construct, props: ReceiverHostProps): ReceiverConfig {
  const { config, problems } = receiverConfigProblems(props.receiverConfig);
  throwPropProblems(scope, [...problems, ...receiverHostPropProblems(props)]);
  return config!;
}

/**
 * The receiver host: one EC2 instance on Amazon Linux 2023 (IMDSv2 only, encrypted gp3 root,
 * Session Manager instead of SSH: no key pair, no port 22), set up by cfn-init: Node.js from the
 * AL2023 repositories, a `triggler` system user, the esbuild-bundled receiver, its generated
 * config, and a hardened systemd unit.
 *
 * Updates reach the running host through cfn-hup, which polls the stack and re-runs cfn-init when
 * this instance's metadata changes (a new bundle or config after `cdk deploy`); cfn-init then
 * restarts the receiver. The alternative, a metadata hash in the user data, replaces the instance
 * on every change: a new address, and the run history in /var/lib/triggler gone. Each update is
 * gated like the first create: the stack waits for the host to prove /healthz on the new version,
 * and a host that cannot goes back to the version it had and fails the update with the reason.
 */
export class ReceiverHost extends Construct implements ec2.IConnectable {
  public readonly instance: ec2.Instance;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly connections: ec2.Connections;
  /** The config installed on the host, as the receiver will read it (defaults filled in). */
  public readonly receiverConfig: ReceiverConfig;
  public readonly port: number;
  public readonly instanceId: string;
  public readonly privateIp: string;
  public readonly publicIp: string;
  /** The receiver's base URL inside the VPC. */
  public readonly privateUrl: string;
  /** Completes when the receiver answers /healthz on the version this deploy gave the host; fails with the reason when it does not. */
  public readonly healthy: CfnWaitCondition;
  /** The units the commands may manage with systemctl (see unit-control.ts). */
  public readonly manageUnits: string[];

  constructor(scope: Construct, id: string, props: ReceiverHostProps) {
    super(scope, id);
    const allowCidrs = props.allowCidrs ?? [];
    const rootVolumeGiB = props.rootVolumeGiB ?? 8;
    this.receiverConfig = parsedReceiverConfig(this, props);
    this.manageUnits = [...new Set(props.manageUnits ?? [])];
    const deployAccess = deployAccessOf(this.receiverConfig);
    // Each deploy.path joins the unit's writable paths.
    const writablePaths = [...new Set([...(props.writablePaths ?? []), ...deployAccess.paths])];
    this.port = this.receiverConfig.listen.port;

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'git-triggler receiver host: the receiver port for the sender (and allowCidrs); no SSH',
      // The host installs packages, calls CloudFormation and SSM, and the commands fetch code.
      allowAllOutbound: true,
    });
    for (const cidr of allowCidrs) {
      this.securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(this.port), `receiver.allowCidrs: ${cidr}`);
    }
    if (allowCidrs.includes('0.0.0.0/0')) {
      Validations.of(this.securityGroup).acknowledge({
        id: 'AwsSolutions-EC23',
        reason:
          'receiver.allowCidrs in the stack config opens the receiver port to 0.0.0.0/0 for provider webhooks; every delivery must carry a valid signature.',
      });
    }
    this.connections = new ec2.Connections({ securityGroups: [this.securityGroup], defaultPort: ec2.Port.tcp(this.port) });

    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO);
    const machineImage =
      props.machineImage ??
      ec2.MachineImage.latestAmazonLinux2023({
        cpuType:
          instanceType.architecture === ec2.InstanceArchitecture.ARM_64 ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64,
      });
    const bundle = new ReceiverBundle(this, 'Bundle', {
      entry: props.receiverEntry ?? path.join(REPOSITORY_ROOT, 'receiver', 'daemon.ts'),
      cliEntry: path.join(REPOSITORY_ROOT, 'bin', 'triggler-cli.ts'),
      commandRunnerEntry: path.join(REPOSITORY_ROOT, 'receiver', 'command-runner-main.ts'),
    });

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC },
      associatePublicIpAddress: true,
      instanceType,
      machineImage,
      securityGroup: this.securityGroup,
      requireImdsv2: true,
      detailedMonitoring: false,
      propagateTagsToVolumeOnCreation: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(rootVolumeGiB, {
            encrypted: true,
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            deleteOnTermination: true,
          }),
        },
      ],
      // cfn-hup applies metadata changes in place; replacing the host would lose its run history.
      userDataCausesReplacement: false,
    });
    // The host's creation signal carries no reason (SignalResource has none); a wait condition's
    // does, so the health step signals this one too and a receiver that cannot start fails the
    // deploy with its reason in the events. Its clock starts with the stack: it waits for the
    // instance's resources, the boot and the whole cfn-init run.
    //
    // The same gate holds every later update: the handle and the wait condition are named after
    // the host's revision (a hash of everything cfn-init installs), so a change to any of it makes
    // CloudFormation create a new pair and wait for the host to prove the new version. cfn-hup
    // applies it and the health step signals the new handle; a version that does not answer is
    // replaced by the previous one on the host, and its failure rolls the stack update back. An
    // Auto Scaling group's update policy would gate updates too, but by replacing the instance:
    // a new private address for the sender and the relay, and the run history gone.
    const initTimeout = props.initTimeout ?? Duration.minutes(15);
    const installedConfig = installedReceiverConfig(props.receiverConfig);
    const revision = this.hostRevision(bundle, installedConfig, writablePaths, deployAccess);
    const healthyHandle = new CfnWaitConditionHandle(this, `HealthyHandle${revision}`);
    this.healthy = new CfnWaitCondition(this, `Healthy${revision}`, {
      handle: healthyHandle.ref,
      count: 1,
      timeout: String(initTimeout.toSeconds() + 600),
    });
    this.instance.applyCloudFormationInit(this.hostSetup(bundle, installedConfig, writablePaths, healthyHandle.ref, deployAccess), {
      configSets: ['default'],
      timeout: initTimeout,
      // No fingerprint in the user data: with one, every metadata change would replace the instance.
      embedFingerprint: false,
    });
    this.instanceId = this.instance.instanceId;
    this.privateIp = this.instance.instancePrivateIp;
    this.publicIp = this.instance.instancePublicIp;
    this.privateUrl = `http://${this.privateIp}:${this.port}`;

    const prefix = this.receiverConfig.tokens.ssm!.prefix;
    const tokenParameters = this.receiverConfig.triggers.map((trigger) => tokenParameterName(prefix, tokenNameOf(trigger)));
    const keyParameters = this.receiverConfig.triggers.flatMap((trigger) =>
      trigger.deploy?.sshKey === undefined ? [] : [tokenParameterName(prefix, trigger.deploy.sshKey)],
    );
    // Deploy keys are read like tokens, by the same SSM source: after a key is replaced by hand
    // (a new version), it reads the previous version from the history too.
    props.tokens.grantRead(
      this.instance,
      [...new Set([...tokenParameters, ...keyParameters])],
      ['ssm:GetParameter', 'ssm:GetParameterHistory'],
    );
    grantGitPull(this, this.instance, deployAccess);
    this.grantSessionManager();
    this.acknowledgeFindings();
  }

  /**
   * Eight hex digits that change whenever what the host receives changes: the bundle, the receiver
   * config, the files beside this construct, the writable paths, the units and the deploy access.
   */
  private hostRevision(
    bundle: ReceiverBundle,
    receiverConfig: ReceiverConfigInput,
    writablePaths: string[],
    deployAccess: ReturnType<typeof deployAccessOf>,
  ): string {
    const files = [
      RECEIVER_UNIT_FILE_NAME,
      COMMAND_SOCKET_FILE_NAME,
      COMMAND_SERVICE_FILE_NAME,
      CFN_HUP_UNIT_FILE_NAME,
      WAIT_HEALTHY_FILE_NAME,
      HOST_REVISION_FILE_NAME,
    ].map((name) => fs.readFileSync(hostFilePath(name), 'utf8'));
    const received = Stack.of(this).resolve({
      bundle: bundle.asset.assetHash,
      receiverConfig,
      writablePaths,
      manageUnits: this.manageUnits,
      deployAccess,
      files,
      port: this.port,
    });
    return createHash('sha256').update(JSON.stringify(received)).digest('hex').slice(0, 8);
  }

  private hostSetup(
    bundle: ReceiverBundle,
    receiverConfig: ReceiverConfigInput,
    writablePaths: string[],
    healthySignalUrl: string,
    deployAccess: ReturnType<typeof deployAccessOf>,
  ): ec2.CloudFormationInit {
    const gitConfig = deployAccess.codeCommit.length > 0;
    const receiverRestart = new ec2.InitServiceRestartHandle();
    const cfnHupRestart = new ec2.InitServiceRestartHandle();
    const logicalId = Stack.of(this).getLogicalId(this.instance.instance);
    const configOwnedByService = { owner: 'root', group: SERVICE_USER, mode: '000640', serviceRestartHandles: [receiverRestart] };
    const rootOnly = { owner: 'root', group: 'root', mode: '000400', serviceRestartHandles: [cfnHupRestart] };

    return ec2.CloudFormationInit.fromConfigSets({
      configSets: { default: ['revision', 'system', 'receiver', 'health'] },
      configs: {
        // Before anything of the new version is written: keep the version that serves now.
        revision: new ec2.InitConfig([
          ec2.InitFile.fromFileInline(HOST_PATHS.hostRevisionScript, hostFilePath(HOST_REVISION_FILE_NAME), {
            owner: 'root',
            group: 'root',
            mode: '000755',
          }),
          ec2.InitCommand.argvCommand([HOST_PATHS.hostRevisionScript, 'save', String(this.port), ...revisionPaths(gitConfig)], {
            key: '10-save',
          }),
        ]),
        // A config of its own: cfn-init creates files before it runs commands, and the receiver's
        // files belong to this user.
        system: new ec2.InitConfig([
          ec2.InitPackage.yum(NODE_PACKAGE),
          ec2.InitCommand.shellCommand(
            `id -u ${SERVICE_USER} >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/${SERVICE_USER} --no-create-home --shell /sbin/nologin ${SERVICE_USER}`,
            { key: '10-service-user' },
          ),
          ...deploySystemSetup(deployAccess, SERVICE_USER),
          ...unitControlSetup(this.manageUnits, SERVICE_USER),
          ...commandIsolationSetup(),
        ]),
        receiver: new ec2.InitConfig([
          ec2.InitSource.fromExistingAsset(HOST_PATHS.installDir, bundle.asset, { serviceRestartHandles: [receiverRestart] }),
          ec2.InitFile.fromString(
            HOST_PATHS.cli,
            `#!/bin/sh\nexec /usr/bin/node-22 ${HOST_PATHS.installDir}/${ReceiverBundle.CLI_FILE_NAME} "$@"\n`,
            { owner: 'root', group: 'root', mode: '000755' },
          ),
          ec2.InitFile.fromObject(HOST_PATHS.configFile, receiverConfig, configOwnedByService),
          // The SDK in Node.js does not read the region from instance metadata.
          ec2.InitFile.fromString(
            HOST_PATHS.environmentFile,
            `AWS_REGION=${Aws.REGION}\nNODE_ENV=production\n${gitConfig ? `GIT_CONFIG_GLOBAL=${GIT_CONFIG_FILE}\n` : ''}`,
            configOwnedByService,
          ),
          ...(gitConfig ? [ec2.InitFile.fromString(GIT_CONFIG_FILE, gitConfigFor(deployAccess), configOwnedByService)] : []),
          ec2.InitFile.fromFileInline(HOST_PATHS.unitFile, hostFilePath(RECEIVER_UNIT_FILE_NAME), {
            owner: 'root',
            group: 'root',
            mode: '000644',
            serviceRestartHandles: [receiverRestart],
          }),
          ec2.InitFile.fromString(HOST_PATHS.writablePathsDropIn, writablePathsDropIn(writablePaths), {
            owner: 'root',
            group: 'root',
            mode: '000644',
            serviceRestartHandles: [receiverRestart],
          }),
          // The command runner: each command in an instance of its own unit, which cannot reach
          // instance metadata. New instances read these files; nothing of them runs for long.
          ...[
            [HOST_PATHS.commandSocketUnitFile, COMMAND_SOCKET_FILE_NAME],
            [HOST_PATHS.commandServiceUnitFile, COMMAND_SERVICE_FILE_NAME],
          ].map(([file, name]) => ec2.InitFile.fromFileInline(file!, hostFilePath(name!), { owner: 'root', group: 'root', mode: '000644' })),
          ec2.InitFile.fromString(HOST_PATHS.commandWritablePathsDropIn, writablePathsDropIn(writablePaths), {
            owner: 'root',
            group: 'root',
            mode: '000644',
          }),
          ec2.InitFile.fromString('/etc/cfn/cfn-hup.conf', `[main]\nstack=${Aws.STACK_ID}\nregion=${Aws.REGION}\ninterval=1\n`, rootOnly),
          ec2.InitFile.fromString(
            '/etc/cfn/hooks.d/triggler-receiver.conf',
            [
              '[triggler-receiver-update]',
              'triggers=post.update',
              `path=Resources.${logicalId}.Metadata.AWS::CloudFormation::Init`,
              `action=/opt/aws/bin/cfn-init -v --stack ${Aws.STACK_NAME} --resource ${logicalId} --configsets default --region ${Aws.REGION}`,
              'runas=root',
              '',
            ].join('\n'),
            rootOnly,
          ),
          ec2.InitFile.fromFileInline('/etc/systemd/system/cfn-hup.service', hostFilePath(CFN_HUP_UNIT_FILE_NAME), {
            owner: 'root',
            group: 'root',
            mode: '000644',
            serviceRestartHandles: [cfnHupRestart],
          }),
          // cfn-init writes unit files but does not tell systemd; services start after commands.
          ec2.InitCommand.argvCommand(['systemctl', 'daemon-reload'], { key: '10-daemon-reload' }),
          // A command and not a cfn-init service: the socket is started once and left listening
          // (restarting it would refuse the commands that start meanwhile); its instances are not
          // services cfn-init could restart.
          ec2.InitCommand.argvCommand(['systemctl', 'enable', '--now', COMMAND_SOCKET_NAME], { key: '20-command-socket' }),
          ec2.InitService.enable(SERVICE_NAME, { serviceManager: ec2.ServiceManager.SYSTEMD, serviceRestartHandle: receiverRestart }),
          ec2.InitService.enable('cfn-hup', { serviceManager: ec2.ServiceManager.SYSTEMD, serviceRestartHandle: cfnHupRestart }),
        ]),
        // After `receiver` has started (or restarted) the service: a config's services start
        // after its commands, so the wait is a config of its own.
        health: new ec2.InitConfig([
          ec2.InitFile.fromFileInline(HOST_PATHS.waitHealthyScript, hostFilePath(WAIT_HEALTHY_FILE_NAME), {
            owner: 'root',
            group: 'root',
            mode: '000755',
          }),
          ec2.InitCommand.argvCommand([HOST_PATHS.waitHealthyScript, String(this.port), String(HEALTHY_WAIT_SECONDS), healthySignalUrl], {
            key: '10-wait-healthy',
          }),
        ]),
      },
    });
  }

  /**
   * What the SSM agent needs for Session Manager (and Run Command), written out instead of
   * AmazonSSMManagedInstanceCore, which also allows ssm:GetParameter(s) on every parameter of the
   * account: with the shared aws/ssm key, every stack's secrets in the region. None of these
   * actions reads a parameter, a document's secrets or an object; none takes a resource ARN.
   */
  private grantSessionManager(): void {
    this.instance.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'SessionManagerAgent',
        actions: [
          'ssm:UpdateInstanceInformation',
          'ssmmessages:CreateControlChannel',
          'ssmmessages:CreateDataChannel',
          'ssmmessages:OpenControlChannel',
          'ssmmessages:OpenDataChannel',
          'ec2messages:AcknowledgeMessage',
          'ec2messages:DeleteMessage',
          'ec2messages:FailMessage',
          'ec2messages:GetEndpoint',
          'ec2messages:GetMessages',
          'ec2messages:SendReply',
        ],
        resources: ['*'],
      }),
    );
  }

  private acknowledgeFindings(): void {
    Validations.of(this.instance).acknowledge(
      {
        id: 'AwsSolutions-EC28',
        reason:
          "One small host whose health shows in its 5-minute basic metrics and the receiver's logs; detailed monitoring would cost more than the instance.",
      },
      {
        id: 'AwsSolutions-EC29',
        reason:
          'The stack replaces this host on purpose (a new image, a new root volume size); termination protection would block cdk deploy and cdk destroy. Its state is run history, not data.',
      },
    );
    const assetReadReason =
      'cfn-init downloads the receiver bundle from the CDK asset bucket; this is the read grant CDK gives for an asset (its object key changes with every bundle).';
    Validations.of(this.instance.role).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          "Session Manager replaces SSH (no key pair, no port 22): its agent's actions (UpdateInstanceInformation, ssmmessages, ec2messages) take no resource ARN. None of them reads a parameter or an object.",
      },
      { id: 'AwsSolutions-IAM5[Action::s3:GetObject*]', reason: assetReadReason },
      { id: 'AwsSolutions-IAM5[Action::s3:GetBucket*]', reason: assetReadReason },
      { id: 'AwsSolutions-IAM5[Action::s3:List*]', reason: assetReadReason },
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]',
        reason: assetReadReason,
      },
    );
  }
}

/** What `triggler-host-revision` keeps and puts back: everything the `receiver` config writes but cfn-hup's own files. */
function revisionPaths(gitConfig: boolean): string[] {
  return [
    HOST_PATHS.installDir,
    HOST_PATHS.cli,
    HOST_PATHS.configFile,
    HOST_PATHS.environmentFile,
    ...(gitConfig ? [GIT_CONFIG_FILE] : []),
    HOST_PATHS.unitFile,
    HOST_PATHS.writablePathsDropIn,
    HOST_PATHS.commandSocketUnitFile,
    HOST_PATHS.commandServiceUnitFile,
    HOST_PATHS.commandWritablePathsDropIn,
  ];
}

/** ReadWritePaths for the receiver's unit and the command runner's; "-" makes systemd skip a path that does not exist yet. */
function writablePathsDropIn(writablePaths: string[]): string {
  const header = '# Written by the git-triggler stack from receiver.writablePaths.\n[Service]\n';
  return writablePaths.length === 0 ? `${header}# (none)\n` : `${header}ReadWritePaths=${writablePaths.map((p) => `-${p}`).join(' ')}\n`;
}
