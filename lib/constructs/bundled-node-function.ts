import * as fs from 'node:fs';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { propProblem, throwPropProblems, type PropProblem } from '../construct-props';

/** Lambda refuses a function whose environment (names and values) passes 4 KB. */
export const MAX_ENVIRONMENT_BYTES = 4096;
/** What a receiver URL from a token resolves to at most: `http://` + IPv4 + `:` + port. */
export const LONGEST_RESOLVED_URL = 'http://255.255.255.255:65535';

/** The bytes an environment counts against MAX_ENVIRONMENT_BYTES: every name and value, as UTF-8. */
export function environmentBytes(environment: Record<string, string>): number {
  return Object.entries(environment).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + Buffer.byteLength(value), 0);
}

export interface BundledNodeFunctionProps {
  /** The TypeScript entry under `lambda/`; it must export `handler`. */
  readonly entry: string;
  /** The function's description, also used in its role's description ("Runs <description>"). */
  readonly description: string;
  /**
   * How long one invocation may run.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Memory of the function in MiB, 128 to 10240.
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * Environment variables of the function; never a secret (they show in the template).
   * @default {}
   */
  readonly environment?: Record<string, string>;
  /**
   * Retention of the function's own log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The VPC the function runs in.
   * @default - not in a VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * The subnets of `vpc` the function's network interfaces go in.
   * @default - the VPC's default selection
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Security groups of the function's network interfaces (only with `vpc`).
   * @default - a new security group (only with `vpc`)
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * Lambda's asynchronous invocation settings (see lambda.FunctionProps): retries, event age, on-failure destination.
   * @default - Lambda's defaults (2 retries, 6 hours, no destination)
   */
  readonly asyncInvoke?: Pick<lambda.FunctionProps, 'retryAttempts' | 'maxEventAge' | 'onFailure'>;
}

/** Every bad prop of a BundledNodeFunction. */
export function bundledNodeFunctionPropProblems(props: BundledNodeFunctionProps): PropProblem[] {
  return [
    ...propProblem('entry', fs.existsSync(props.entry) ? undefined : `${props.entry} does not exist`),
    ...propProblem(
      'memorySize',
      props.memorySize !== undefined && (props.memorySize < 128 || props.memorySize > 10240)
        ? `must be 128 to 10240 MiB, got ${props.memorySize}`
        : undefined,
    ),
  ];
}

/**
 * A Lambda function of ours: bundled from its TypeScript entry by local esbuild (never Docker), on
 * the newest Node.js LTS runtime, arm64, with its own log group and a role that holds no AWS managed
 * policy (only writes to that log group, plus what the owner grants).
 */
export class BundledNodeFunction extends Construct {
  /** The newest Lambda Node.js LTS runtime. */
  static readonly RUNTIME = lambda.Runtime.NODEJS_24_X;

  public readonly function: NodejsFunction;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: BundledNodeFunctionProps) {
    super(scope, id);
    throwPropProblems(this, bundledNodeFunctionPropProblems(props));

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${props.description}`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: BundledNodeFunction.RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout ?? Duration.seconds(30),
      memorySize: props.memorySize ?? 256,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: props.environment,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      ...props.asyncInvoke,
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.CJS,
        target: 'node24',
        minify: true,
        // Minified, yet errors name their functions.
        keepNames: true,
        // The SDK version the tests ran against ships in the bundle, not whatever the runtime has.
        bundleAwsSDK: true,
        // The SDK's ES module builds tree-shake: a third smaller bundle, half the cold start
        // (bench/sender.bench.ts: 926 → 661 KiB, module init 287 → 137 ms).
        mainFields: ['module', 'main'],
      },
    });
  }
}

/** What a function in the VPC needs besides the function's own props. */
export interface VpcFunctionProps extends Omit<BundledNodeFunctionProps, 'vpc' | 'securityGroups'> {
  readonly vpc: ec2.IVpc;
  /** The security group's description: what the function may reach. */
  readonly securityGroupDescription: string;
  /** Why the function runs in the VPC, for the acknowledged cdk-nag finding on its network-interface policy. */
  readonly whyInVpc: string;
}

/**
 * A function in the VPC's isolated subnets (unless told otherwise) behind a security group that
 * allows no outbound traffic until the caller opens it, with the network-interface actions Lambda
 * needs to attach. The security group is made in `scope`, beside the function.
 */
export function bundledVpcFunction(
  scope: Construct,
  id: string,
  props: VpcFunctionProps,
): { bundled: BundledNodeFunction; securityGroup: ec2.SecurityGroup } {
  const { securityGroupDescription, whyInVpc, ...functionProps } = props;
  const securityGroup = new ec2.SecurityGroup(scope, 'SecurityGroup', {
    vpc: props.vpc,
    description: securityGroupDescription,
    allowAllOutbound: false,
  });
  const bundled = new BundledNodeFunction(scope, id, {
    ...functionProps,
    vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    securityGroups: [securityGroup],
  });
  // Attaching to the VPC needs ENI actions that IAM only grants on "*"; AWS keeps this list current.
  bundled.role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaENIManagementAccess'));
  Validations.of(bundled.role).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaENIManagementAccess]',
    reason: `${whyInVpc}; Lambda needs these network-interface actions, which IAM grants only on "*". The policy holds nothing else.`,
  });
  return { bundled, securityGroup };
}
