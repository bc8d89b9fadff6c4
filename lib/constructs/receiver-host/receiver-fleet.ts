import { CfnWaitCondition, Tags, Validations } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { propProblem, throwPropProblems, type PropProblem } from '../../construct-props';
import {
  acknowledgeHostRoleFindings,
  grantHostAccess,
  hostHealthGate,
  hostInit,
  ReceiverHostBase,
  rootVolumeOf,
  SESSION_MANAGER_AGENT_WHY,
  type ReceiverHostProps,
} from './host-setup';

/** What the SSM agent calls to run a State Manager association on its own instance (the fleet's converge). */
const STATE_MANAGER_AGENT_ACTIONS = ['ssm:ListInstanceAssociations', 'ssm:UpdateInstanceAssociationStatus', 'ssm:PutComplianceItems'];

/** The tag a fleet's hosts carry: the rollout snapshots them by it, Run Command and the association target it. */
export interface FleetTag {
  readonly key: string;
  readonly value: string;
}

export interface ReceiverFleetProps extends ReceiverHostProps {
  /** How many hosts run the receiver, at least 2. */
  readonly hosts: number;
  /** Every host carries this tag from its launch. */
  readonly fleetTag: FleetTag;
}

/** Every bad prop of a ReceiverFleet besides those every host has (host-setup.ts). */
export function receiverFleetPropProblems(props: Pick<ReceiverFleetProps, 'hosts' | 'allowCidrs' | 'fleetTag'>): PropProblem[] {
  return [
    ...propProblem(
      'hosts',
      Number.isInteger(props.hosts) && props.hosts >= 2
        ? undefined
        : `must be a whole number of at least 2 (one host is a ReceiverHost), got ${props.hosts}`,
    ),
    ...propProblem(
      'allowCidrs',
      (props.allowCidrs ?? []).length === 0
        ? undefined
        : 'must be empty: a fleet takes pushes only through rollouts, never on its receiver port',
    ),
    ...propProblem(
      'fleetTag.key',
      /^[A-Za-z0-9_.:/=+@-]{1,128}$/.test(props.fleetTag.key) && !props.fleetTag.key.startsWith('aws:')
        ? undefined
        : `must be a tag key (up to 128 letters, digits and _.:/=+-@, not starting with aws:), got ${props.fleetTag.key}`,
    ),
  ];
}

/**
 * The receiver on a fleet: an Auto Scaling group of `hosts` instances, each set up exactly like the
 * single host (the same cfn-init configuration, unit and hardening: host-setup.ts) and tagged with
 * the fleet tag. No port is open on them: pushes reach a fleet only as rollouts, which Run Command
 * carries to each host's own receiver through its admin listener (`triggler fleet-step`).
 *
 * How a change reaches the fleet depends on what changed:
 * - The receiver's bundle, its config, the unit (what cfn-init installs): cfn-hup on every host,
 *   as on the single host. Every host applies it in place and the revision's wait condition waits
 *   for all `hosts` of them to prove /healthz; a host that cannot puts its previous version back
 *   and fails the update, which rolls the stack back. Replacing the hosts instead would rebuild
 *   every release of every trigger on every host for a config edit, and a rollout in flight would
 *   lose the instances it snapshot; in place, the deployed applications keep serving from
 *   `current` while the receivers restart (nothing reaches a fleet's receiver but rollouts).
 * - The launch template (a new image, instance type or root volume): a rolling replacement, one
 *   host at a time, each new host signalling once cfn-init proved /healthz; the State Manager
 *   association then deploys each trigger's fleet commit to it (fleet-command.ts).
 */
export class ReceiverFleet extends ReceiverHostBase implements iam.IGrantable {
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** What each host boots from: image, type, role, security group, encrypted root, IMDSv2. */
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly grantPrincipal: iam.IPrincipal;
  public readonly hosts: number;
  public readonly fleetTag: FleetTag;
  /** Completes when every host answers /healthz on the version this deploy gave the fleet. */
  public readonly healthy: CfnWaitCondition;

  constructor(scope: Construct, id: string, props: ReceiverFleetProps) {
    super(scope, id, props, 'git-triggler receiver fleet: no inbound port (rollouts reach each host through Run Command); no SSH');
    throwPropProblems(this, receiverFleetPropProblems(props));
    const parts = this.parts;
    this.hosts = props.hosts;
    this.fleetTag = props.fleetTag;

    // A launch template of its own: Auto Scaling no longer takes launch configurations in new
    // accounts, and the CDK makes one unless a feature flag (in cdk.json, not in every app) says not to.
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'git-triggler receiver fleet host',
    });
    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType: parts.instanceType,
      machineImage: parts.machineImage,
      userData: ec2.UserData.forLinux(),
      role,
      securityGroup: this.securityGroup,
      associatePublicIpAddress: true,
      requireImdsv2: true,
      detailedMonitoring: false,
      blockDevices: rootVolumeOf(parts),
    });
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Hosts', {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC },
      launchTemplate: this.launchTemplate,
      // A fixed size: the fleet is what the config says; a desired capacity would be reset on every deploy anyway.
      minCapacity: props.hosts,
      maxCapacity: props.hosts,
      signals: autoscaling.Signals.waitForAll({ timeout: parts.initTimeout }),
      // Only a launch template change replaces hosts (cfn-hup applies the rest in place): one at a
      // time, the others serving, each new one proving /healthz before the next goes.
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: props.hosts - 1,
        waitOnResourceSignals: true,
        pauseTime: parts.initTimeout,
      }),
    });
    this.grantPrincipal = this.autoScalingGroup.grantPrincipal;
    Tags.of(this.autoScalingGroup).add(props.fleetTag.key, props.fleetTag.value, { applyToLaunchedInstances: true });

    const gate = hostHealthGate(this, parts, props.hosts);
    this.healthy = gate.healthy;
    this.autoScalingGroup.applyCloudFormationInit(
      hostInit(parts, this.autoScalingGroup.node.defaultChild as autoscaling.CfnAutoScalingGroup, gate.handle.ref),
      {
        configSets: ['default'],
        // No fingerprint in the user data: with one, every metadata change would replace every host.
        embedFingerprint: false,
      },
    );

    grantHostAccess(this, parts, props.tokens, this.autoScalingGroup, STATE_MANAGER_AGENT_ACTIONS);
    acknowledgeHostRoleFindings(
      role,
      `${SESSION_MANAGER_AGENT_WHY} On a fleet the agent also runs the converge association: ListInstanceAssociations, UpdateInstanceAssociationStatus and PutComplianceItems act on the calling instance's own associations and compliance, and read nothing else.`,
    );
    this.acknowledgeFindings();
  }

  private acknowledgeFindings(): void {
    Validations.of(this.autoScalingGroup).acknowledge({
      id: 'AwsSolutions-AS3',
      reason:
        "The group's size is fixed by the stack config and it never scales; a replaced host is the stack's own rolling update (in the stack events) or a failed health check, and the converge association's status shows each joining host's deploy.",
    });
  }
}
