/**
 * A config with many repositories against the limits AWS puts on what the stack deploys: IAM's
 * policy sizes (a role's inline policies 10,240 characters together, a managed policy 6,144, no
 * more than 10 managed policies on a role without a quota increase) and CloudFormation's 200
 * outputs. Past those a `cdk deploy` fails on AWS after the upload; here it is found at synth.
 */
import { App, CfnOutput, Stack } from 'aws-cdk-lib';
import type { StackConfigInput } from '../../lib/stack-config/schema';
import { inStatementSizedGroups } from '../../lib/constructs/trigger-tokens';
import { stackSizeProblems } from '../../lib/triggler-stack';
import { configOf, removeScratch, scratchOutdir, trigglerApp, type Template } from '../support/stack-fixture';

afterAll(removeScratch);

/** IAM counts a policy's characters without whitespace, as AWS renders it: the longest names stand in. */
const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::Partition': 'aws-us-gov',
  'AWS::Region': 'ap-southeast-4',
  'AWS::AccountId': '123456789012',
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'GitTriggler',
};

/** The policy document as IAM would see it: intrinsics resolved (a resource's own ARN stood in by a long one). */
function rendered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rendered);
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    if ('Ref' in object)
      return PSEUDO_PARAMETERS[object.Ref as string] ?? `arn:aws-us-gov:service:ap-southeast-4:123456789012:${'r'.repeat(64)}`;
    if ('Fn::GetAtt' in object) return `arn:aws-us-gov:service:ap-southeast-4:123456789012:${'a'.repeat(64)}`;
    if ('Fn::Join' in object) {
      const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
      return (rendered(parts) as unknown[]).join(separator);
    }
    return Object.fromEntries(Object.entries(object).map(([key, inner]) => [key, rendered(inner)]));
  }
  return value;
}

const policySize = (document: unknown): number => JSON.stringify(rendered(document)).length;

function manyRepositories(codeCommit: number, webhook: number): StackConfigInput {
  const triggers: StackConfigInput['triggers'] = [];
  for (let i = 0; i < codeCommit; i += 1)
    triggers.push({
      repository: `service-${i}`,
      branch: 'main',
      createRepository: true,
      command: 'true',
      deploy: { path: `/srv/service-${i}` },
    });
  for (let i = 0; i < webhook; i += 1) {
    triggers.push({
      repository: `team/app-${i}`,
      branch: 'main',
      source: 'webhook',
      provider: 'github',
      command: 'true',
      deploy: { path: `/srv/app-${i}`, repositoryUrl: `git@github.com:team/app-${i}.git` },
    });
  }
  return { stackName: 'GitTriggler', triggers, receiver: { allowCidrs: ['192.0.2.0/24'] }, webhooks: { ingress: 'direct' } };
}

describe('a stack of 20 CodeCommit and 100 webhook repositories, each deploying (the latter with generated deploy keys)', () => {
  let template: Template;
  beforeAll(() => {
    const { app, stack } = trigglerApp(configOf(manyRepositories(20, 100)));
    template = app.synth().getStackByName(stack.stackName).template as Template;
  });

  it('gives every role policies IAM takes: inline 10,240 characters together, each managed one 6,144, at most 10 managed', () => {
    const resources = Object.values(template.Resources);
    const roles = new Map<string, { inline: number; managed: number[] }>();
    const roleOf = (ref: unknown) => (ref as { Ref: string }).Ref;
    for (const [id, resource] of Object.entries(template.Resources)) {
      // AWS managed policies a role names count towards its 10 as well.
      if (resource.Type === 'AWS::IAM::Role') {
        const entry = roles.get(id) ?? { inline: 0, managed: [] };
        entry.managed.push(...((resource.Properties?.ManagedPolicyArns as unknown[] | undefined) ?? []).map(() => 0));
        roles.set(id, entry);
      }
      const properties = resource.Properties as { PolicyDocument?: unknown; Roles?: unknown[] } | undefined;
      if (!properties?.PolicyDocument) continue;
      for (const role of properties.Roles ?? []) {
        const entry = roles.get(roleOf(role)) ?? { inline: 0, managed: [] };
        if (resource.Type === 'AWS::IAM::Policy') entry.inline += policySize(properties.PolicyDocument);
        if (resource.Type === 'AWS::IAM::ManagedPolicy') entry.managed.push(policySize(properties.PolicyDocument));
        roles.set(roleOf(role), entry);
      }
    }
    // The receiver host, the sender and the token generator are the roles with the most to grant.
    expect([...roles.keys()]).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^ReceiverInstanceInstanceRole/),
        expect.stringMatching(/^SenderRole/),
        expect.stringMatching(/^TokensProviderHandlerRole/),
      ]),
    );
    const over = [...roles].filter(
      ([, { inline, managed }]) => inline > 10_240 || managed.some((size) => size > 6_144) || managed.length > 10,
    );
    expect(over).toEqual([]);
    // The host may still read exactly its triggers' tokens and keys: 120 tokens and 100 keys.
    const hostReads = resources
      .filter(
        (resource) =>
          resource.Properties?.PolicyDocument !== undefined &&
          JSON.stringify(resource.Properties.Roles ?? []).includes('ReceiverInstanceInstanceRole'),
      )
      .flatMap((resource) => (resource.Properties!.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement)
      .filter((statement) => JSON.stringify(statement.Action).includes('ssm:GetParameter'))
      .flatMap((statement) => [statement.Resource].flat().map((arn) => rendered(arn) as string));
    expect(hostReads).toHaveLength(120 + 100);
    expect(hostReads.filter((arn) => arn.includes('*'))).toEqual([]);
  });

  it("stays within CloudFormation's 200 outputs and 500 resources", () => {
    expect(Object.keys(template.Outputs ?? {}).length).toBeLessThanOrEqual(200);
    expect(Object.keys(template.Resources).length).toBeLessThanOrEqual(500);
  });
});

describe("past CloudFormation's limits, synth fails naming them", () => {
  it('201 outputs', () => {
    const stack = new Stack(new App({ outdir: scratchOutdir() }), 'Big');
    for (let i = 0; i < 201; i += 1) new CfnOutput(stack, `Output${i}`, { value: String(i) });
    expect(stackSizeProblems(stack)).toEqual([
      'the stack would have 201 outputs (one DeployKey<repository> per repository with a generated deploy key); CloudFormation allows 200: split the triggers over two stacks (each with its own stackName and tokens.prefix)',
    ]);
    const small = new Stack(new App({ outdir: scratchOutdir() }), 'Small');
    new CfnOutput(small, 'Only', { value: 'x' });
    expect(stackSizeProblems(small)).toEqual([]);
  });

  it('a config with more repositories with deploy keys than outputs allow', () => {
    const { app } = trigglerApp(configOf(manyRepositories(0, 200)));
    expect(() => app.synth()).toThrow(/the stack would have 2\d\d outputs .*CloudFormation allows 200: split the triggers over two stacks/);
  });
});

describe('inStatementSizedGroups', () => {
  it('keeps every name, in order, in groups of about 1,500 characters of ARNs', () => {
    const names = Array.from({ length: 100 }, (_, i) => `/git-triggler/tokens/team/app-${i}/main`);
    const groups = inStatementSizedGroups(names);
    expect(groups.flat()).toEqual(names);
    expect(groups.length).toBeGreaterThan(1);
    for (const group of groups) expect(group.reduce((sum, name) => sum + 60 + name.length, 0)).toBeLessThanOrEqual(1500);
    expect(inStatementSizedGroups([])).toEqual([]);
    expect(inStatementSizedGroups(['/a'])).toEqual([['/a']]);
  });
});
