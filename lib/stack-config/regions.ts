/**
 * What the stack uses that AWS does not offer in every region, one table per capability, and the
 * config fields that need each. Checked at synth whenever the region is known (the CDK CLI's
 * region, or a stack `env`): a region without one fails there, naming the field and the region,
 * instead of failing the deploy after the host was built. As of late 2026; AWS adds capabilities
 * to regions over time, so a table lists where one is missing (a region newer than the table is
 * assumed to have it, and the deploy is the final word).
 */
import type { StackConfigProblem } from './rules';
import type { StackConfig } from './schema';

export interface RegionalCapability {
  /** What is missing, as a sentence names it. */
  readonly name: string;
  /** Regions that lack it. */
  readonly missingIn: readonly string[];
}

/** The CodeCommit service itself: existing repositories, their triggers, GetCommit (the region table of the CodeCommit user guide). */
export const CODECOMMIT_SERVICE: RegionalCapability = {
  name: 'CodeCommit',
  missingIn: [
    'ap-east-2',
    'ap-southeast-4',
    'ap-southeast-5',
    'ap-southeast-6',
    'ap-southeast-7',
    'ca-west-1',
    'eu-central-2',
    'eu-south-2',
    'mx-central-1',
  ],
};

/** CloudFormation's `AWS::CodeCommit::Repository`, which `createRepository` uses: missing also where the service itself is newer. */
export const CODECOMMIT_REPOSITORY_TYPE: RegionalCapability = {
  name: "CloudFormation's AWS::CodeCommit::Repository",
  missingIn: [...CODECOMMIT_SERVICE.missingIn, 'af-south-1', 'ap-south-2', 'ap-southeast-3', 'il-central-1', 'me-central-1'].sort(),
};

/** Lambda Function URLs, which `webhooks.ingress: "function-url"` uses. */
export const FUNCTION_URLS: RegionalCapability = {
  name: 'Lambda Function URLs',
  missingIn: [
    'ap-east-2',
    'ap-south-2',
    'ap-southeast-4',
    'ap-southeast-5',
    'ap-southeast-6',
    'ap-southeast-7',
    'ca-west-1',
    'eu-central-2',
    'eu-south-2',
    'il-central-1',
    'me-central-1',
  ],
};

/** Every regional capability the config needs that the region lacks, each at the field that asks for it. */
export function regionProblems(config: StackConfig, region: string): StackConfigProblem[] {
  const problems: StackConfigProblem[] = [];
  const lacks = (capability: RegionalCapability) => capability.missingIn.includes(region);
  config.triggers.forEach((trigger, i) => {
    if (trigger.source !== 'codecommit') return;
    if (lacks(CODECOMMIT_SERVICE)) {
      problems.push({
        path: ['triggers', i, 'source'],
        message: `${CODECOMMIT_SERVICE.name} is not offered in ${region}: deploy to a region that has it, or use only source "webhook" triggers (see docs/deploy.md)`,
      });
    } else if (trigger.createRepository && lacks(CODECOMMIT_REPOSITORY_TYPE)) {
      problems.push({
        path: ['triggers', i, 'createRepository'],
        message: `${CODECOMMIT_REPOSITORY_TYPE.name} does not exist in ${region} (CodeCommit itself does): create the repository yourself (aws codecommit create-repository) and set createRepository false, or deploy to another region`,
      });
    }
  });
  if (config.webhooks.ingress === 'function-url' && lacks(FUNCTION_URLS)) {
    problems.push({
      path: ['webhooks', 'ingress'],
      message: `"function-url" needs ${FUNCTION_URLS.name}, which ${region} does not offer: use "direct" with receiver.allowCidrs, or deploy to another region`,
    });
  }
  return problems;
}
