import { CODECOMMIT_REPOSITORY_TYPE, CODECOMMIT_SERVICE, FUNCTION_URLS, regionProblems } from '../../lib/stack-config/regions';
import { configOf } from '../support/stack-fixture';

const created = { repository: 'app', branch: 'main', command: 'make', createRepository: true };
const existing = { repository: 'lib', branch: 'main', command: 'make' };
const webhook = { repository: 'owner/site', branch: 'main', command: 'make', source: 'webhook' as const, provider: 'github' as const };

describe('region capability tables', () => {
  test('where CodeCommit exists but its CloudFormation type does not, triggers on existing repositories pass and createRepository is refused at its field', () => {
    for (const region of ['af-south-1', 'il-central-1', 'me-central-1', 'ap-south-2', 'ap-southeast-3']) {
      expect(CODECOMMIT_SERVICE.missingIn).not.toContain(region);
      expect(CODECOMMIT_REPOSITORY_TYPE.missingIn).toContain(region);
      expect(regionProblems(configOf({ triggers: [existing] }), region)).toEqual([]);
      expect(regionProblems(configOf({ triggers: [existing, created] }), region)).toEqual([
        {
          path: ['triggers', 1, 'createRepository'],
          message: expect.stringContaining(`AWS::CodeCommit::Repository does not exist in ${region} (CodeCommit itself does)`),
        },
      ]);
    }
  });

  test('where CodeCommit is not offered, every CodeCommit trigger is refused at its source; webhook triggers pass', () => {
    const problems = regionProblems(configOf({ triggers: [existing, created, webhook] }), 'ca-west-1');
    expect(problems.map((problem) => problem.path)).toEqual([
      ['triggers', 0, 'source'],
      ['triggers', 1, 'source'],
    ]);
    expect(problems[0]!.message).toMatch(/^CodeCommit is not offered in ca-west-1/);
    expect(regionProblems(configOf({ triggers: [webhook] }), 'ca-west-1')).toEqual([]);
  });

  test('the function-url ingress is refused where Lambda has no Function URLs, naming webhooks.ingress and the region', () => {
    const relayed = configOf({ triggers: [webhook], webhooks: { ingress: 'function-url' } });
    expect(FUNCTION_URLS.missingIn).toHaveLength(11);
    for (const region of FUNCTION_URLS.missingIn) {
      expect(regionProblems(relayed, region)).toEqual([
        { path: ['webhooks', 'ingress'], message: expect.stringContaining(`which ${region} does not offer`) },
      ]);
    }
    expect(regionProblems(relayed, 'eu-west-1')).toEqual([]);
  });

  test('a region where CloudFormation has the repository type has the service too', () => {
    for (const region of CODECOMMIT_SERVICE.missingIn) expect(CODECOMMIT_REPOSITORY_TYPE.missingIn).toContain(region);
  });
});
