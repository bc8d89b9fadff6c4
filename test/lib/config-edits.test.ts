/**
 * Editing the stack config is safe: a base config and its variants (a trigger prepended, one
 * removed, the list reordered, a branch added) are synthesized, and every resource of a repository
 * the edit did not touch keeps its logical id and its properties, so CloudFormation leaves it
 * alone. What the edit did touch is checked too: it is updated in place, or removed, never renamed.
 * Also here: the checks that fail a deploy early (existing repositories before the host; a region
 * without CodeCommit at synth).
 */
import { Template as Assertions } from 'aws-cdk-lib/assertions';
import type { StackConfigInput } from '../../lib/stack-config/schema';
import { idFromName } from '../../lib/stack-config/name-ids';
import { configOf, removeScratch, trigglerApp, type Template } from '../support/stack-fixture';

afterAll(removeScratch);

type Trigger = StackConfigInput['triggers'][number];

const fresh: Trigger = { repository: 'fresh-app', branch: 'main', command: 'deploy fresh', createRepository: true };
const existing: Trigger = { repository: 'existing.service', branch: 'release/v2', command: ['deploy', 'existing'] };
const second: Trigger = { repository: 'second_repo', branch: 'main', command: 'deploy second' };
const secondDev: Trigger = { repository: 'second_repo', branch: 'dev', command: 'deploy second dev' };
const BASE: Trigger[] = [fresh, existing, second];

function synth(triggers: Trigger[]): Template {
  const { stack } = trigglerApp(configOf({ triggers }));
  return Assertions.fromStack(stack).toJSON() as Template;
}

/** The resources whose logical id carries the repository's name-derived id. */
function resourcesOf(template: Template, repository: string): Record<string, unknown> {
  const nameId = idFromName(repository);
  return Object.fromEntries(Object.entries(template.Resources).filter(([id]) => id.includes(nameId)));
}

let base: Template;

beforeAll(() => {
  base = synth(BASE);
});

describe('every resource of a repository is named after the repository', () => {
  test('names read like the repository plus a hash of its exact name; look-alike names stay apart', () => {
    expect(idFromName('fresh-app')).toMatch(/^FreshApp[0-9a-f]{8}$/);
    expect(idFromName('my-app')).not.toBe(idFromName('my.app'));
    expect(idFromName('my-app')).not.toBe(idFromName('MyApp'));
    expect(idFromName('x'.repeat(100))).toHaveLength(48);
  });

  test('the base config gives each repository its merge resource, invoke permission and handler grant, and the created one its repository', () => {
    const types = (repository: string) =>
      Object.values(resourcesOf(base, repository))
        .map((r) => (r as { Type: string }).Type)
        .sort();
    const each = ['AWS::IAM::Policy', 'AWS::Lambda::Permission', 'Custom::TrigglerRepositoryTriggers'];
    expect(types('fresh-app')).toEqual(['AWS::CodeCommit::Repository', ...each]);
    expect(types('existing.service')).toEqual(each);
    expect(types('second_repo')).toEqual(each);
  });
});

describe.each<[string, Trigger[], string[]]>([
  [
    'a trigger prepended',
    [{ repository: 'newcomer', branch: 'main', command: 'x', createRepository: true }, ...BASE],
    ['fresh-app', 'existing.service', 'second_repo'],
  ],
  ['the first trigger removed', [existing, second], ['existing.service', 'second_repo']],
  ['the list reordered', [second, existing, fresh], ['fresh-app', 'existing.service', 'second_repo']],
  ['a branch added to an existing repository', [fresh, existing, second, secondDev], ['fresh-app', 'existing.service']],
])('%s', (_name, triggers, unchanged) => {
  let variant: Template;

  beforeAll(() => {
    variant = synth(triggers);
  });

  test.each(unchanged)('%s keeps every logical id and every property', (repository) => {
    const before = resourcesOf(base, repository);
    expect(Object.keys(before).length).toBeGreaterThan(1);
    expect(resourcesOf(variant, repository)).toEqual(before);
  });

  test('the token resource lists the tokens sorted, so only a changed set of tokens changes it', () => {
    const tokens = (t: Template) => Object.values(t.Resources).find((r) => r.Type === 'Custom::TrigglerTokens')!.Properties;
    const names = [...new Set(triggers.map((t) => `${t.repository}/${t.branch}`))].sort();
    expect(tokens(variant)).toEqual({ ...tokens(base), TokenNames: names });
  });
});

describe('what an edit does to the repository it touches', () => {
  test("a branch added updates that repository's merge resource in place (same id, one more branch)", () => {
    const variant = synth([fresh, existing, second, secondDev]);
    const [beforeId, before] = Object.entries(resourcesOf(base, 'second_repo')).find(
      ([, r]) => (r as { Type: string }).Type === 'Custom::TrigglerRepositoryTriggers',
    )!;
    const after = variant.Resources[beforeId]!;
    expect((before as { Properties: { Triggers: { branches: string[] }[] } }).Properties.Triggers[0]!.branches).toEqual(['main']);
    expect((after.Properties as { Triggers: { branches: string[] }[] }).Triggers[0]!.branches).toEqual(['main', 'dev']);
  });

  test('a created repository leaving the config: the repository is retained, its merge resource (our trigger) is deleted', () => {
    const variant = synth([existing, second]);
    const repositoryId = Object.entries(resourcesOf(base, 'fresh-app')).find(
      ([, r]) => (r as { Type: string }).Type === 'AWS::CodeCommit::Repository',
    )![0];
    expect(base.Resources[repositoryId]).toMatchObject({ DeletionPolicy: 'RetainExceptOnCreate', UpdateReplacePolicy: 'Retain' });
    expect(resourcesOf(variant, 'fresh-app')).toEqual({});
  });
});

describe('fail fast', () => {
  test('existing repositories are checked by one resource the receiver host waits for', () => {
    const checks = Object.entries(base.Resources).filter(([, r]) => r.Type === 'Custom::TrigglerRepositoryCheck');
    expect(checks).toHaveLength(1);
    const [checkId, check] = checks[0]!;
    expect(check.Properties).toMatchObject({
      RepositoryNames: ['existing.service', 'second_repo'],
      TriggerName: 'git-triggler-GitTriggler',
    });
    const instance = Object.values(base.Resources).find((r) => r.Type === 'AWS::EC2::Instance')!;
    expect([instance.DependsOn ?? []].flat()).toContain(checkId);
    // The check needs only its handler: nothing of the host, the sender or the tokens.
    expect(JSON.stringify(check)).not.toMatch(/Receiver|Sender|Tokens/);
  });

  test("a region that lacks what the config uses fails synth when the stack's region is known, naming the field and the region", () => {
    const config = configOf({ triggers: BASE });
    expect(() => trigglerApp(config, { env: { region: 'eu-central-2' } })).toThrow(
      /^GitTriggler: triggers\[0\]\.source: CodeCommit is not offered in eu-central-2: /,
    );
    expect(() => trigglerApp(config, { env: { region: 'eu-west-1' } })).not.toThrow();
    // Webhook triggers need no CodeCommit.
    expect(() =>
      trigglerApp(configOf({ triggers: [{ repository: 'a/b', branch: 'main', command: 'x', source: 'webhook' }] }), {
        env: { region: 'eu-central-2' },
      }),
    ).not.toThrow();
  });
});
