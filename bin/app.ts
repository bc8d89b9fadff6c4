/**
 * The CDK app: `npx cdk synth|deploy [-c config=PATH]` (default `triggler.config.json`).
 * A config that does not validate prints every bad field and exits non-zero before anything is
 * synthesized.
 */
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { loadStackConfig, StackConfigError, type StackConfig } from '../lib/stack-config/schema';
import { createTrigglerApp } from '../lib/triggler-app';
import { stackRegionProblems } from '../lib/triggler-stack';

const DEFAULT_CONFIG = 'triggler.config.json';

/** The config the CLI's `-c config=PATH` names; a config error is printed, not thrown. */
function loadConfigOrExit(): StackConfig {
  // An app only to read the context: it must not write a (second, empty) assembly on exit.
  const contextOnly = new App({ autoSynth: false });
  const configPath = path.resolve(String(contextOnly.node.tryGetContext('config') ?? DEFAULT_CONFIG));
  try {
    return loadStackConfig(configPath);
  } catch (error) {
    if (!(error instanceof StackConfigError)) throw error;
    process.stderr.write(`triggler: ${error.message}\n`);
    process.exit(1);
  }
}

const config = loadConfigOrExit();
// The stack stays environment-agnostic (synth needs no credentials), but the region the CDK CLI
// will deploy to is known (the profile's, or AWS_REGION): a region that lacks something the config
// uses (CodeCommit, its CloudFormation type, Function URLs) fails here, naming the field, not
// halfway through a deploy.
const deployRegion = process.env.CDK_DEFAULT_REGION;
const regionProblems = deployRegion ? stackRegionProblems(deployRegion, config) : [];
if (regionProblems.length > 0) {
  process.stderr.write(
    `triggler: ${regionProblems.map(({ prop, problem }) => `${prop}: ${problem}`).join('; ')} (the region comes from your AWS profile or AWS_REGION)\n`,
  );
  process.exit(1);
}
try {
  createTrigglerApp(config).app.synth();
} catch (error) {
  // Construct props are checked up front; their errors name the construct path and the prop.
  process.stderr.write(`triggler: ${(error as Error).message}\n`);
  process.exit(1);
}
