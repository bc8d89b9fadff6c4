import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { CfnWaitCondition, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import {
  acknowledgeHostRoleFindings,
  grantHostAccess,
  hostHealthGate,
  hostInit,
  ReceiverHostBase,
  rootVolumeOf,
  type ReceiverHostProps,
} from './host-setup';

export { receiverHostPropProblems, type ReceiverHostProps } from './host-setup';

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
export class ReceiverHost extends ReceiverHostBase {
  public readonly instance: ec2.Instance;
  public readonly instanceId: string;
  public readonly privateIp: string;
  public readonly publicIp: string;
  /** The receiver's base URL inside the VPC. */
  public readonly privateUrl: string;
  /** Completes when the receiver answers /healthz on the version this deploy gave the host; fails with the reason when it does not. */
  public readonly healthy: CfnWaitCondition;

  constructor(scope: Construct, id: string, props: ReceiverHostProps) {
    super(scope, id, props, 'git-triggler receiver host: the receiver port for the sender (and allowCidrs); no SSH');
    const parts = this.parts;

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PUBLIC },
      associatePublicIpAddress: true,
      instanceType: parts.instanceType,
      machineImage: parts.machineImage,
      securityGroup: this.securityGroup,
      requireImdsv2: true,
      detailedMonitoring: false,
      propagateTagsToVolumeOnCreation: true,
      blockDevices: rootVolumeOf(parts),
      // cfn-hup applies metadata changes in place; replacing the host would lose its run history.
      userDataCausesReplacement: false,
    });
    // The host's creation signal carries no reason (SignalResource has none); a wait condition's
    // does, so the health step signals this one too and a receiver that cannot start fails the
    // deploy with its reason in the events. The same gate holds every later update (see
    // hostHealthGate). An Auto Scaling group's update policy would gate updates too, but by
    // replacing the instance: a new private address for the sender and the relay, and the run
    // history gone.
    const gate = hostHealthGate(this, parts, 1);
    this.healthy = gate.healthy;
    this.instance.applyCloudFormationInit(hostInit(parts, this.instance.instance, gate.handle.ref), {
      configSets: ['default'],
      timeout: parts.initTimeout,
      // No fingerprint in the user data: with one, every metadata change would replace the instance.
      embedFingerprint: false,
    });
    this.instanceId = this.instance.instanceId;
    this.privateIp = this.instance.instancePrivateIp;
    this.publicIp = this.instance.instancePublicIp;
    this.privateUrl = `http://${this.privateIp}:${this.port}`;

    grantHostAccess(this, parts, props.tokens, this.instance);
    this.acknowledgeFindings();
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
    acknowledgeHostRoleFindings(this.instance.role);
  }
}
