import * as fs from 'node:fs';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { propProblem, throwPropProblems, type PropProblem } from '../construct-props';

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
      props.memorySize !== undefined && (props.memorySize < 128 || props.memorySize > 10240) ? `must be 128 to 10240 MiB, got ${props.memorySize}` : undefined,
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
