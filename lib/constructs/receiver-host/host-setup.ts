/**
 * What every receiver host gets, whether it is the stack's one instance (receiver-host.ts) or each
 * instance of a fleet (receiver-fleet.ts): the props and their checks, the security group, the
 * image, the bundle, the cfn-init configuration that installs the receiver and gates every update
 * on /healthz, and the role's grants. One definition, so a fleet host is set up exactly like the
 * single host.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Aws, CfnResource, CfnWaitCondition, CfnWaitConditionHandle, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, type IConstruct } from 'constructs';
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
import { deployAccessOf, deploySystemSetup, GIT_CONFIG_FILE, gitConfigFor, grantGitPull, type DeployAccess } from './deploy-access';
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

/** What a host is built from, each part worked out once from the props. */
export interface ReceiverHostParts {
  /** The config as the receiver will read it (defaults filled in). */
  readonly receiverConfig: ReceiverConfig;
  /** The config as the host receives it (what cfn-init writes). */
  readonly receiverConfigInput: ReceiverConfigInput;
  readonly manageUnits: string[];
  readonly deployAccess: DeployAccess;
  /** The props' writable paths and every deploy.path. */
  readonly writablePaths: string[];
  readonly port: number;
  readonly allowCidrs: string[];
  readonly rootVolumeGiB: number;
  readonly securityGroup: ec2.SecurityGroup;
  readonly connections: ec2.Connections;
  readonly instanceType: ec2.InstanceType;
  readonly machineImage: ec2.IMachineImage;
  readonly bundle: ReceiverBundle;
  readonly initTimeout: Duration;
}

/**
 * Checks every prop at once, then builds what a host of either kind needs in `scope`: the security
 * group (the receiver port, for allowCidrs), the image and the bundle.
 */
export function receiverHostParts(scope: Construct, props: ReceiverHostProps, securityGroupDescription: string): ReceiverHostParts {
  const { config, problems } = receiverConfigProblems(props.receiverConfig);
  throwPropProblems(scope, [...problems, ...receiverHostPropProblems(props)]);
  const receiverConfig = config!;
  const allowCidrs = props.allowCidrs ?? [];
  const deployAccess = deployAccessOf(receiverConfig);
  const port = receiverConfig.listen.port;

  const securityGroup = new ec2.SecurityGroup(scope, 'SecurityGroup', {
    vpc: props.vpc,
    description: securityGroupDescription,
    // The host installs packages, calls CloudFormation and SSM, and the commands fetch code.
    allowAllOutbound: true,
  });
  for (const cidr of allowCidrs) {
    securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), `receiver.allowCidrs: ${cidr}`);
  }
  if (allowCidrs.includes('0.0.0.0/0')) {
    Validations.of(securityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'receiver.allowCidrs in the stack config opens the receiver port to 0.0.0.0/0 for provider webhooks; every delivery must carry a valid signature.',
    });
  }

  const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO);
  const machineImage =
    props.machineImage ??
    ec2.MachineImage.latestAmazonLinux2023({
      cpuType:
        instanceType.architecture === ec2.InstanceArchitecture.ARM_64 ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64,
    });
  const bundle = new ReceiverBundle(scope, 'Bundle', {
    entry: props.receiverEntry ?? path.join(REPOSITORY_ROOT, 'receiver', 'daemon.ts'),
    cliEntry: path.join(REPOSITORY_ROOT, 'bin', 'triggler-cli.ts'),
    commandRunnerEntry: path.join(REPOSITORY_ROOT, 'receiver', 'command-runner-main.ts'),
  });
  return {
    receiverConfig,
    receiverConfigInput: installedReceiverConfig(props.receiverConfig),
    manageUnits: [...new Set(props.manageUnits ?? [])],
    deployAccess,
    // Each deploy.path joins the unit's writable paths.
    writablePaths: [...new Set([...(props.writablePaths ?? []), ...deployAccess.paths])],
    port,
    allowCidrs,
    rootVolumeGiB: props.rootVolumeGiB ?? 8,
    securityGroup,
    connections: new ec2.Connections({ securityGroups: [securityGroup], defaultPort: ec2.Port.tcp(port) }),
    instanceType,
    machineImage,
    bundle,
    initTimeout: props.initTimeout ?? Duration.minutes(15),
  };
}

/**
 * What both kinds of receiver host (ReceiverHost, ReceiverFleet) are and expose: the installed
 * receiver config, its port, the security group, the units its commands may manage, and the parts
 * the rest of their setup is built from.
 */
export abstract class ReceiverHostBase extends Construct implements ec2.IConnectable {
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly connections: ec2.Connections;
  /** The config installed on the host, as the receiver will read it (defaults filled in). */
  public readonly receiverConfig: ReceiverConfig;
  public readonly port: number;
  /** The units the commands may manage with systemctl (see unit-control.ts). */
  public readonly manageUnits: string[];
  protected readonly parts: ReceiverHostParts;

  constructor(scope: Construct, id: string, props: ReceiverHostProps, securityGroupDescription: string) {
    super(scope, id);
    this.parts = receiverHostParts(this, props, securityGroupDescription);
    this.receiverConfig = this.parts.receiverConfig;
    this.manageUnits = this.parts.manageUnits;
    this.port = this.parts.port;
    this.securityGroup = this.parts.securityGroup;
    this.connections = this.parts.connections;
  }
}

/** The host's root volume: encrypted gp3 of the configured size, gone with the instance. */
export function rootVolumeOf(parts: ReceiverHostParts): ec2.BlockDevice[] {
  return [
    {
      deviceName: '/dev/xvda',
      volume: ec2.BlockDeviceVolume.ebs(parts.rootVolumeGiB, {
        encrypted: true,
        volumeType: ec2.EbsDeviceVolumeType.GP3,
        deleteOnTermination: true,
      }),
    },
  ];
}

/**
 * The gate every version of the host passes: a wait condition named after the host's revision (a
 * hash of everything cfn-init installs), so a change to any of it makes CloudFormation create a
 * new pair and wait for `count` hosts to prove the new version on /healthz. The health step of
 * cfn-init signals its handle; a version that does not answer is replaced by the previous one on
 * the host, and its failure (with the reason) rolls the stack update back. Its clock starts with
 * the stack: it waits for the host's resources, the boot and the whole cfn-init run.
 */
export function hostHealthGate(
  scope: Construct,
  parts: ReceiverHostParts,
  count: number,
): { handle: CfnWaitConditionHandle; healthy: CfnWaitCondition } {
  const revision = hostRevision(scope, parts);
  const handle = new CfnWaitConditionHandle(scope, `HealthyHandle${revision}`);
  const healthy = new CfnWaitCondition(scope, `Healthy${revision}`, {
    handle: handle.ref,
    count,
    timeout: String(parts.initTimeout.toSeconds() + 600),
  });
  return { handle, healthy };
}

/**
 * What a host's role may do, the same for every host: read exactly the tokens and deploy keys its
 * triggers name, pull the repositories it deploys, and serve Session Manager.
 */
export function grantHostAccess(
  scope: Construct,
  parts: ReceiverHostParts,
  tokens: TriggerTokens,
  grantee: iam.IGrantable,
  extraAgentActions: readonly string[] = [],
): void {
  const prefix = parts.receiverConfig.tokens.ssm!.prefix;
  const tokenParameters = parts.receiverConfig.triggers.map((trigger) => tokenParameterName(prefix, tokenNameOf(trigger)));
  const keyParameters = parts.receiverConfig.triggers.flatMap((trigger) =>
    trigger.deploy?.sshKey === undefined ? [] : [tokenParameterName(prefix, trigger.deploy.sshKey)],
  );
  // Deploy keys are read like tokens, by the same SSM source: after a key is replaced by hand
  // (a new version), it reads the previous version from the history too.
  tokens.grantRead(grantee, [...new Set([...tokenParameters, ...keyParameters])], ['ssm:GetParameter', 'ssm:GetParameterHistory']);
  grantGitPull(scope, grantee, parts.deployAccess);
  grantSessionManager(grantee, extraAgentActions);
}

/**
 * Eight hex digits that change whenever what the host receives changes: the bundle, the receiver
 * config, the files beside this construct, the writable paths, the units and the deploy access.
 */
export function hostRevision(scope: Construct, parts: ReceiverHostParts): string {
  const { bundle, receiverConfigInput: receiverConfig, writablePaths, deployAccess, manageUnits, port } = parts;
  const files = [
    RECEIVER_UNIT_FILE_NAME,
    COMMAND_SOCKET_FILE_NAME,
    COMMAND_SERVICE_FILE_NAME,
    CFN_HUP_UNIT_FILE_NAME,
    WAIT_HEALTHY_FILE_NAME,
    HOST_REVISION_FILE_NAME,
  ].map((name) => fs.readFileSync(hostFilePath(name), 'utf8'));
  const received = Stack.of(scope).resolve({
    bundle: bundle.asset.assetHash,
    receiverConfig,
    writablePaths,
    manageUnits,
    deployAccess,
    files,
    port,
  });
  return createHash('sha256').update(JSON.stringify(received)).digest('hex').slice(0, 8);
}

export function hostInit(parts: ReceiverHostParts, metadataResource: CfnResource, healthySignalUrl: string): ec2.CloudFormationInit {
  const { bundle, receiverConfigInput: receiverConfig, writablePaths, deployAccess, manageUnits, port } = parts;
  const gitConfig = deployAccess.codeCommit.length > 0;
  const receiverRestart = new ec2.InitServiceRestartHandle();
  const cfnHupRestart = new ec2.InitServiceRestartHandle();
  const logicalId = Stack.of(metadataResource).getLogicalId(metadataResource);
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
        ec2.InitCommand.argvCommand([HOST_PATHS.hostRevisionScript, 'save', String(port), ...revisionPaths(gitConfig)], {
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
        ...unitControlSetup(manageUnits, SERVICE_USER),
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
        ec2.InitCommand.argvCommand([HOST_PATHS.waitHealthyScript, String(port), String(HEALTHY_WAIT_SECONDS), healthySignalUrl], {
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
export function grantSessionManager(grantee: iam.IGrantable, extraAgentActions: readonly string[] = []): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'SessionManagerAgent',
      actions: [
        ...extraAgentActions,
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

/** Why the SSM agent's actions are granted on `*`. */
export const SESSION_MANAGER_AGENT_WHY =
  "Session Manager replaces SSH (no key pair, no port 22): its agent's actions (UpdateInstanceInformation, ssmmessages, ec2messages) take no resource ARN. None of them reads a parameter or an object.";

/** cdk-nag's findings on a host role, each with why it stands. */
export function acknowledgeHostRoleFindings(role: IConstruct, agentActionsWhy = SESSION_MANAGER_AGENT_WHY): void {
  const assetReadReason =
    'cfn-init downloads the receiver bundle from the CDK asset bucket; this is the read grant CDK gives for an asset (its object key changes with every bundle).';
  Validations.of(role).acknowledge(
    {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: agentActionsWhy,
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
