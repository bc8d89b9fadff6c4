import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { BundledNodeFunction } from './bundled-node-function';

export interface BundledProviderProps {
  /** The `onEvent` handler's TypeScript entry under `lambda/`. */
  readonly entry: string;
  /** What the provider is for; the handler's and the framework's descriptions start from it. */
  readonly description: string;
  /**
   * What the handler may do, in its role's default policy. An owner that scopes grants per
   * resource attaches its own policies to `handler.role` instead.
   * @default [] (nothing beyond writing its own logs)
   */
  readonly handlerPolicy?: iam.PolicyStatement[];
  /**
   * The handler's environment variables.
   * @default none
   */
  readonly environment?: Record<string, string>;
  /**
   * How long one handler invocation may run.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * Retention of the handler's and the framework's log groups.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * A custom-resource provider (CDK Provider framework) whose `onEvent` handler is one of our
 * `lambda/` entries. The framework function gets its own log group and a role without AWS managed
 * policies; the cdk-nag findings the framework itself causes are acknowledged here, once.
 */
export class BundledProvider extends Construct {
  public readonly serviceToken: string;
  public readonly handler: BundledNodeFunction;

  constructor(scope: Construct, id: string, props: BundledProviderProps) {
    super(scope, id);

    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.handler = new BundledNodeFunction(this, 'Handler', {
      entry: props.entry,
      description: props.description,
      timeout: props.timeout ?? Duration.minutes(5),
      logRetention: retention,
      environment: props.environment,
    });
    for (const statement of props.handlerPolicy ?? []) this.handler.role.addToPolicy(statement);

    const frameworkLogs = new logs.LogGroup(this, 'FrameworkLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });
    const frameworkRole = new iam.Role(this, 'FrameworkRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the custom-resource framework for ${props.description}`,
    });
    frameworkLogs.grantWrite(frameworkRole);

    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: this.handler.function,
      logGroup: frameworkLogs,
      frameworkOnEventRole: frameworkRole,
    });
    this.serviceToken = provider.serviceToken;

    // The framework may invoke any version of our handler: `grantInvoke` adds `<arn>:*` for them.
    const handlerArn = Stack.of(this).resolve(this.handler.function.functionArn) as { 'Fn::GetAtt': [string, string] };
    Validations.of(frameworkRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${handlerArn['Fn::GetAtt'][0]}.Arn>:*]`,
      reason:
        'The CDK Provider framework invokes its onEvent handler by ARN and by version (<arn>:*); the wildcard covers only versions of that one function.',
    });
  }
}
