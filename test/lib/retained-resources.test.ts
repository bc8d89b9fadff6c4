/**
 * What the stack keeps when it is deleted it also keeps on an update that replaces it, but not
 * when the deploy that created it fails: a rolled-back first deploy leaves nothing behind that
 * would make the retry fail ("already exists").
 */
import { configOf, everyOptionConfigInput, exampleConfigInput, removeScratch, trigglerApp, type Template } from '../support/stack-fixture';

afterAll(removeScratch);

type PolicyResource = Template['Resources'][string] & { DeletionPolicy?: string; UpdateReplacePolicy?: string };

function resourcesOf(input: Parameters<typeof configOf>[0]): Record<string, PolicyResource> {
  const { app, stack } = trigglerApp(configOf(input));
  return (app.synth().getStackByName(stack.stackName).template as { Resources: Record<string, PolicyResource> }).Resources;
}

describe.each([
  ['the shipped config', exampleConfigInput],
  ['a config with every option on', everyOptionConfigInput],
])('%s', (_name, input) => {
  let resources: Record<string, PolicyResource>;
  beforeAll(() => {
    resources = resourcesOf(input());
  });

  test('every resource kept on delete is RetainExceptOnCreate, and kept on replacement', () => {
    const kept = Object.entries(resources).filter(
      ([, resource]) => resource.DeletionPolicy !== undefined && resource.DeletionPolicy !== 'Delete',
    );
    expect(kept.length).toBeGreaterThan(0);
    for (const [id, resource] of kept) {
      expect({ id, type: resource.Type, deletion: resource.DeletionPolicy, replace: resource.UpdateReplacePolicy }).toEqual({
        id,
        type: resource.Type,
        deletion: 'RetainExceptOnCreate',
        replace: 'Retain',
      });
    }
  });

  test('what it keeps are the repositories it creates, and nothing else', () => {
    const kept = Object.values(resources).filter((resource) => resource.DeletionPolicy === 'RetainExceptOnCreate');
    const created = Object.values(resources).filter((resource) => resource.Type === 'AWS::CodeCommit::Repository');
    expect(kept).toEqual(created);
  });
});
