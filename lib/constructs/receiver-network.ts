import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { propProblem, throwPropProblems, type PropProblem } from '../construct-props';

export interface ReceiverNetworkProps {
  /**
   * The VPC's IPv4 range, /16 to /24.
   * @default '10.0.0.0/16'
   */
  readonly cidr?: string;
  /**
   * Availability zones, 1 to 3. Each one adds a copy of every interface endpoint (about $7.30 a month).
   * @default 1
   */
  readonly maxAzs?: number;
  /**
   * Send VPC flow logs (all traffic) to a CloudWatch log group.
   * @default true
   */
  readonly flowLogs?: boolean;
  /**
   * Retention of the flow-log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Add an SSM interface endpoint, for what runs in the isolated subnets (the sender, the webhook
   * relay). Without either (webhook triggers reached directly) the host reaches SSM over its public
   * address and the endpoint would only cost money.
   * @default true
   */
  readonly ssmEndpoint?: boolean;
  /**
   * Add a CodeCommit interface endpoint (for the sender's commit details).
   * @default false
   */
  readonly codeCommitEndpoint?: boolean;
  /**
   * Add a Step Functions interface endpoint: on a fleet the sender and the relay start rollouts
   * instead of delivering to one host.
   * @default false
   */
  readonly stepFunctionsEndpoint?: boolean;
}

/** Every bad prop of a ReceiverNetwork. */
export function receiverNetworkPropProblems(props: ReceiverNetworkProps): PropProblem[] {
  const maxAzs = props.maxAzs ?? 1;
  const cidr = props.cidr ?? '10.0.0.0/16';
  const bits = Number(cidr.split('/')[1]);
  return [
    ...propProblem('maxAzs', !Number.isInteger(maxAzs) || maxAzs < 1 || maxAzs > 3 ? `must be 1, 2 or 3, got ${maxAzs}` : undefined),
    ...propProblem(
      'cidr',
      !/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr) || bits < 16 || bits > 24
        ? `must be an IPv4 range from /16 to /24, got ${cidr}`
        : undefined,
    ),
  ];
}

/**
 * The VPC, kept apart from the host because the sender lives in it too. No NAT gateway (the
 * costliest part of a small VPC): the receiver host sits in a public subnet with a public address
 * (its inbound port stays closed to everyone but the sender unless allowCidrs opens it) so it can
 * reach package repositories, CloudFormation and git remotes; the sender sits in an isolated
 * subnet and reaches SSM through an interface endpoint (which, by private DNS, the host uses too).
 */
export class ReceiverNetwork extends Construct {
  public readonly vpc: ec2.Vpc;
  /** Where the receiver host goes. */
  public readonly hostSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PUBLIC };
  /** Where the sender goes: no route out of the VPC. */
  public readonly functionSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  public readonly ssmEndpoint?: ec2.InterfaceVpcEndpoint;
  public readonly codeCommitEndpoint?: ec2.InterfaceVpcEndpoint;
  public readonly stepFunctionsEndpoint?: ec2.InterfaceVpcEndpoint;
  public readonly flowLogGroup?: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ReceiverNetworkProps = {}) {
    super(scope, id);
    const maxAzs = props.maxAzs ?? 1;
    // The VPC would silently take fewer zones than asked: an environment-agnostic stack knows two.
    const known = Stack.of(this).availabilityZones.length;
    throwPropProblems(this, [
      ...receiverNetworkPropProblems(props),
      ...propProblem(
        'maxAzs',
        maxAzs > known
          ? `must be at most ${known}: the stack knows ${known} zones at synth (one without an account and region knows two)`
          : undefined,
      ),
    ]);
    const cidr = props.cidr ?? '10.0.0.0/16';

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(cidr),
      maxAzs,
      natGateways: 0,
      subnetConfiguration: [
        { name: 'host', subnetType: ec2.SubnetType.PUBLIC },
        { name: 'functions', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      ],
      // Restricting the default security group takes another custom resource; nothing here uses it.
      restrictDefaultSecurityGroup: false,
    });

    if (props.flowLogs ?? true) {
      this.flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
        retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      this.vpc.addFlowLog('FlowLog', {
        destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
        trafficType: ec2.FlowLogTrafficType.ALL,
      });
    } else {
      Validations.of(this.vpc).acknowledge({
        id: 'AwsSolutions-VPC7',
        reason: 'network.flowLogs is false in the stack config: the operator chose not to pay for flow logs.',
      });
    }

    if (props.ssmEndpoint ?? true) {
      // Private DNS makes every SSM call in the VPC (the sender's and the host's) go through it.
      this.ssmEndpoint = this.vpc.addInterfaceEndpoint('Ssm', {
        service: ec2.InterfaceVpcEndpointAwsService.SSM,
        subnets: this.functionSubnets,
        privateDnsEnabled: true,
        open: false,
      });
    }
    if (props.stepFunctionsEndpoint) {
      this.stepFunctionsEndpoint = this.vpc.addInterfaceEndpoint('StepFunctions', {
        service: ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
        subnets: this.functionSubnets,
        privateDnsEnabled: true,
        open: false,
      });
    }
    if (props.codeCommitEndpoint) {
      this.codeCommitEndpoint = this.vpc.addInterfaceEndpoint('CodeCommit', {
        service: ec2.InterfaceVpcEndpointAwsService.CODECOMMIT,
        subnets: this.functionSubnets,
        privateDnsEnabled: true,
        open: false,
      });
    }
  }

  /** Lets a peer reach the interface endpoints (HTTPS). */
  allowEndpointsFrom(peer: ec2.IConnectable): void {
    this.ssmEndpoint?.connections.allowDefaultPortFrom(peer, 'SSM API');
    this.codeCommitEndpoint?.connections.allowDefaultPortFrom(peer, 'CodeCommit API');
    this.stepFunctionsEndpoint?.connections.allowDefaultPortFrom(peer, 'Step Functions API');
  }
}
