import { App, Validations, type AppProps, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { StackConfig } from './stack-config/schema';
import { TrigglerStack } from './triggler-stack';

export interface TrigglerAppOptions {
  /**
   * Props of the CDK app: its output folder, context and validation settings.
   * @default - the CDK's defaults (cdk.out, or what the CLI passes)
   */
  readonly appProps?: AppProps;
  /**
   * The stack's account and region. With a region, synth refuses a region without CodeCommit.
   * @default - environment-agnostic: the stack goes where the deploy's credentials point
   */
  readonly env?: Environment;
}

/**
 * The CDK app: one stack from one config, with cdk-nag's AwsSolutions checks on every synth. A
 * finding that no construct acknowledged (with its reason) fails the synth.
 */
export function createTrigglerApp(config: StackConfig, options: TrigglerAppOptions = {}): { app: App; stack: TrigglerStack } {
  // CDK's built-in template validation compiles its schema engine on every synth: about 11 s of
  // a 12 s synth on this project's 2-core machine. cdk-nag is the check this app runs on every
  // synth; test/lib runs the built-in validation once.
  const app = new App({ builtinCloudFormationValidation: false, ...options.appProps });
  const stack = new TrigglerStack(app, config.stackName, { config, env: options.env });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
