/**
 * The whole stack from the example config: snapshot, cdk-nag, no token in the template, no cycle,
 * outputs, and what the pieces mean together (the sender's routes reach the receiver's triggers).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CfnResource, Stack } from 'aws-cdk-lib';
import { Match, Template as Assertions } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { parseSenderRoutes } from '../../lambda/sender-routes';
import { parseReceiverConfig } from '../../receiver/config/schema';
import type { StackConfigInput } from '../../lib/stack-config/schema';
import { createTrigglerApp } from '../../lib/triggler-app';
import {
  NO_BUNDLING,
  acknowledgedFindings,
  cliContext,
  configOf,
  dependencyCycles,
  exampleConfigInput,
  findTokenLikeValues,
  normaliseAssetHashes,
  removeScratch,
  trigglerApp,
  type Template,
} from '../support/stack-fixture';

afterAll(removeScratch);

let template: Template;
let assertions: Assertions;
let stackConstruct: Stack;

beforeAll(() => {
  const { stack } = trigglerApp(configOf(exampleConfigInput()));
  // Synthesis runs cdk-nag: an unacknowledged finding throws here and fails every test below.
  assertions = Assertions.fromStack(stack);
  template = assertions.toJSON() as Template;
  stackConstruct = stack;
});

/** Replaces the receiver's address token in a Fn::Join with a plain address, as CloudFormation will. */
function resolveJoin(value: unknown, instanceLogicalId: string, address: string): string {
  const join = (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return join[1]
    .map((part) => {
      if (typeof part === 'string') return part;
      const getAtt = (part as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
      if (getAtt && getAtt[0] === instanceLogicalId && getAtt[1] === 'PrivateIp') return address;
      throw new Error(`unexpected part in TRIGGLER_ROUTES: ${JSON.stringify(part)}`);
    })
    .join(join[0]);
}

/** A template value with its `Fn::Join`s of strings and `Ref AWS::Region` written out for one region. */
function inRegion(value: unknown, region: string): unknown {
  if (Array.isArray(value)) return value.map((item) => inRegion(item, region));
  if (typeof value !== 'object' || value === null) return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (join) {
    return join[1]
      .map((part) => {
        if (typeof part === 'string') return part;
        if ((part as { Ref?: string }).Ref === 'AWS::Region') return region;
        throw new Error(`unexpected part in the receiver config: ${JSON.stringify(part)}`);
      })
      .join(join[0]);
  }
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, inRegion(item, region)]));
}

describe('the example stack', () => {
  test('matches the snapshot (asset hashes normalised)', () => {
    expect(normaliseAssetHashes(template)).toMatchSnapshot();
  });

  test('holds no token-like value: no whsec_, no long base64 or hex run other than asset hashes', () => {
    expect(findTokenLikeValues(template, 'GitTriggler')).toEqual([]);
  });

  test('the token check finds a token when one is there', () => {
    const poisoned = JSON.parse(JSON.stringify(template)) as Template;
    const token = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    const bare = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyzABCDEF').toString('base64');
    Object.values(poisoned.Resources)[0]!.Properties = { Leak: token, Other: bare };
    expect(findTokenLikeValues(poisoned, 'GitTriggler')).toEqual(expect.arrayContaining([token, bare]));
  });

  test('has no dependency cycle (the created repository refers to the sender; nothing refers back)', () => {
    expect(dependencyCycles(template)).toEqual([]);
  });

  test('the cycle check finds a cycle when one is there', () => {
    const cyclic: Template = {
      Resources: {
        A: { Type: 'X', Properties: { B: { Ref: 'B' } } },
        B: { Type: 'X', Properties: { A: { 'Fn::GetAtt': ['A', 'Arn'] } } },
      },
    };
    expect(dependencyCycles(cyclic)).toEqual([['A', 'B', 'A']]);
  });

  test('routes every CodeCommit trigger to the receiver, and the receiver knows every trigger the sender routes', () => {
    const instanceId = Object.keys(assertions.findResources('AWS::EC2::Instance'))[0]!;
    const senders = assertions.findResources('AWS::Lambda::Function', {
      Properties: { Environment: { Variables: { TRIGGLER_ROUTES: {} } } },
    });
    const variables = (Object.values(senders)[0]!.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment
      .Variables;
    const routes = parseSenderRoutes(resolveJoin(variables.TRIGGLER_ROUTES, instanceId, '10.0.0.10')).routes;

    const instance = assertions.findResources('AWS::EC2::Instance')[instanceId]!;
    const init = (instance.Metadata as Record<string, { receiver: { files: Record<string, { content: unknown }> } }>)[
      'AWS::CloudFormation::Init'
    ]!;
    const receiverConfig = parseReceiverConfig(inRegion(init.receiver.files['/etc/triggler/receiver.json']!.content, 'eu-west-1'));

    expect(routes.map((r) => [r.repository, r.branch, r.url, r.tokenParameter, r.scheme])).toEqual([
      ['my-app', 'main', 'http://10.0.0.10:5000', '/git-triggler/tokens/my-app/main', 'standard'],
      ['my-service', 'release/v2', 'http://10.0.0.10:5000', '/git-triggler/tokens/my-service/release/v2', 'standard'],
    ]);
    expect(receiverConfig.triggers.map((t) => [t.repository, t.branch])).toEqual(routes.map((r) => [r.repository, r.branch]));
    // The example deploys my-app: fetched from its CodeCommit repository in the stack's region.
    expect(receiverConfig.triggers[0]!.deploy).toMatchObject({
      repositoryUrl: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/my-app',
      path: '/srv/my-app',
      keepReleases: 5,
    });
    expect(receiverConfig.tokens.ssm?.prefix).toBe('/git-triggler/tokens');
    expect(receiverConfig.listen).toEqual({ host: '0.0.0.0', port: 5000 });
    expect(variables.TRIGGLER_TOKEN_TTL_SECONDS).toBe(String(receiverConfig.tokens.ssm?.ttlSeconds));
  });

  test('deploys on an empty account: every repository it names is one it creates, and keeps on delete', () => {
    const repositories = Object.values(assertions.findResources('AWS::CodeCommit::Repository'));
    expect(repositories.map((r) => [(r.Properties as { RepositoryName: string }).RepositoryName, r.DeletionPolicy])).toEqual([
      ['my-app', 'RetainExceptOnCreate'],
      ['my-service', 'RetainExceptOnCreate'],
    ]);
    // No existing repository, so nothing to check; the triggers are merged onto the created ones.
    assertions.resourceCountIs('Custom::TrigglerRepositoryCheck', 0);
    for (const [repository, branch] of [
      ['my-app', 'main'],
      ['my-service', 'release/v2'],
    ]) {
      assertions.hasResourceProperties('Custom::TrigglerRepositoryTriggers', {
        RepositoryName: repository,
        Triggers: [{ name: 'git-triggler-GitTriggler', branches: [branch], events: ['createReference', 'updateReference'] }],
      });
    }
  });

  test('creates the tokens before the receiver host and before any CodeCommit trigger', () => {
    const tokensId = Object.keys(assertions.findResources('Custom::TrigglerTokens'))[0]!;
    const dependents = ['AWS::EC2::Instance', 'Custom::TrigglerRepositoryTriggers'];
    for (const type of dependents) {
      const resources = Object.values(assertions.findResources(type));
      expect(resources.length).toBeGreaterThan(0);
      for (const resource of resources) expect([resource.DependsOn ?? []].flat()).toContain(tokensId);
    }
  });

  test('the host signals success only once the receiver answers /healthz (a wait condition carries the reason otherwise)', () => {
    const [instanceId, instance] = Object.entries(assertions.findResources('AWS::EC2::Instance'))[0]!;
    const init = (
      instance.Metadata as Record<
        string,
        { configSets: { default: string[] }; health: { commands: Record<string, { command: unknown[] }> } }
      >
    )['AWS::CloudFormation::Init']!;
    expect(init.configSets.default.at(-1)).toBe('health');
    const [handleId] = Object.keys(assertions.findResources('AWS::CloudFormation::WaitConditionHandle'));
    expect(init.health.commands['10-wait-healthy']!.command).toEqual([
      '/usr/local/sbin/triggler-wait-healthy',
      '5000',
      '120',
      { Ref: handleId },
    ]);
    assertions.hasResourceProperties('AWS::CloudFormation::WaitCondition', { Handle: { Ref: handleId }, Count: 1 });
    expect(instance).toMatchObject({ CreationPolicy: { ResourceSignal: { Count: 1, Timeout: 'PT15M' } } });
    expect(instanceId).toBeDefined();
  });

  test('outputs the host, a Session Manager command, and the token parameter names (never values)', () => {
    const outputs = template.Outputs ?? {};
    expect(Object.keys(outputs).sort()).toEqual(
      [
        'FailedDeliveriesQueueUrl',
        'ReceiverInstanceId',
        'ReceiverPrivateAddress',
        'ReceiverPrivateUrl',
        'SenderLogGroup',
        'SessionManagerCommand',
        'TokenParameterNames',
        'TokenPrefix',
      ].sort(),
    );
    expect(outputs.TokenParameterNames!.Value).toBe('/git-triggler/tokens/my-app/main,/git-triggler/tokens/my-service/release/v2');
    expect(JSON.stringify(outputs.SessionManagerCommand!.Value)).toContain('aws ssm start-session --target ');
  });

  test('opens no port to the internet and holds no SSH key', () => {
    for (const group of Object.values(assertions.findResources('AWS::EC2::SecurityGroup'))) {
      for (const rule of (group.Properties as { SecurityGroupIngress?: { CidrIp?: string }[] }).SecurityGroupIngress ?? []) {
        expect(rule.CidrIp).not.toBe('0.0.0.0/0');
      }
    }
    for (const rule of Object.values(assertions.findResources('AWS::EC2::SecurityGroupIngress'))) {
      expect((rule.Properties as { CidrIp?: string }).CidrIp).toBeUndefined();
    }
    for (const instance of Object.values(assertions.findResources('AWS::EC2::Instance'))) {
      expect((instance.Properties as { KeyName?: string }).KeyName).toBeUndefined();
    }
    assertions.resourceCountIs('AWS::EC2::NatGateway', 0);
  });

  test('every acknowledged cdk-nag finding names its rule and gives a specific reason', () => {
    // CDK acknowledges some of its own built-in template checks; every other acknowledgment is ours.
    const ours = acknowledgedFindings(stackConstruct);
    expect(ours.length).toBeGreaterThan(10);
    for (const { path, id, reason } of ours) {
      expect({ path, id }).toEqual({ path, id: expect.stringMatching(/^(Annotation::)?AwsSolutions-[A-Z]+\d+(\[.+\])?$/) });
      expect({ path, id, reason }).toEqual({ path, id, reason: expect.stringMatching(/^.{60,}$/) });
    }
  });
});

describe('other valid configs synthesize cleanly (cdk-nag included), without a cycle', () => {
  test.each<[string, StackConfigInput, (t: Assertions) => void]>([
    [
      'provider webhooks only, open to the internet, no flow logs',
      {
        stackName: 'Webhooks',
        triggers: [
          {
            repository: 'Codertocat/Hello-World',
            branch: 'main',
            command: 'deploy',
            source: 'webhook',
            tokenName: 'github/Codertocat/Hello-World',
          },
        ],
        receiver: { allowCidrs: ['0.0.0.0/0'] },
        network: { flowLogs: false },
      },
      (t) => {
        t.resourceCountIs('AWS::Lambda::Function', 2); // the token handler and its framework: no sender
        t.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
        t.resourceCountIs('AWS::EC2::FlowLog', 0);
        expect(Object.keys(t.toJSON().Outputs as object)).toContain('ReceiverPublicUrl');
        t.hasResourceProperties('Custom::TrigglerTokens', { Prefix: '/webhooks/tokens', TokenNames: ['github/Codertocat/Hello-World'] });
      },
    ],
    [
      'created repositories with commit details (GetCommit must not close a cycle), seed scheme, two zones',
      {
        triggers: [
          { repository: 'app', branch: 'main', command: 'a', createRepository: true, scheme: 'seed', iterations: 1000 },
          { repository: 'app', branch: 'dev', command: 'b', createRepository: true },
        ],
        sender: { commitDetails: true, alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts' },
        network: { maxAzs: 2 },
        tags: { team: 'platform' },
      },
      (t) => {
        // SSM and CodeCommit, each with a network interface in both zones.
        const endpoints = Object.values(t.findResources('AWS::EC2::VPCEndpoint'));
        expect(endpoints.map((e) => (e.Properties as { SubnetIds: unknown[] }).SubnetIds.length)).toEqual([2, 2]);
        t.resourceCountIs('Custom::TrigglerRepositoryCheck', 0);
        t.hasResourceProperties('Custom::TrigglerRepositoryTriggers', { RepositoryName: 'app', Triggers: [{ branches: ['main', 'dev'] }] });
        t.hasResourceProperties('AWS::CodeCommit::Repository', {
          RepositoryName: 'app',
          Triggers: Match.absent(),
          Tags: [{ Key: 'team', Value: 'platform' }],
        });
      },
    ],
    [
      'a relayed GitHub webhook deploying a private repository over SSH, with a generated deploy key',
      {
        stackName: 'Sites',
        triggers: [
          {
            repository: 'owner/site',
            branch: 'main',
            command: 'make',
            source: 'webhook',
            provider: 'github',
            tokenName: 'github/owner/site',
            deploy: { repositoryUrl: 'git@github.com:owner/site.git', path: '/srv/site' },
          },
        ],
        webhooks: { ingress: 'function-url' },
      },
      (t) => {
        t.resourceCountIs('Custom::TrigglerDeployKey', 1);
        t.hasResourceProperties('Custom::TrigglerDeployKey', {
          ParameterName: '/sites/tokens/deploy-keys/owner/site',
          Comment: 'git-triggler Sites owner/site',
        });
        expect(Object.keys(t.toJSON().Outputs as object)).toEqual(
          expect.arrayContaining(['GitHubWebhookUrl', expect.stringMatching(/^DeployKeyOwnerSite/)]),
        );
      },
    ],
  ])('%s', (_name, input, check) => {
    const { stack } = trigglerApp(configOf(input));
    const synthesized = Assertions.fromStack(stack);
    expect(dependencyCycles(synthesized.toJSON() as Template)).toEqual([]);
    expect(findTokenLikeValues(synthesized.toJSON() as Template, stack.stackName)).toEqual([]);
    check(synthesized);
  });
});

describe('cdk-nag on every synth', () => {
  test('fails the synth on a finding nobody acknowledged, naming the rule', () => {
    const { app, stack } = trigglerApp(configOf(exampleConfigInput()));
    const open = new ec2.SecurityGroup(stack, 'Unreviewed', { vpc: stack.network.vpc, description: 'left open on purpose by this test' });
    open.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22));
    expect(() => app.synth()).toThrow(/AwsSolutions-EC23/);
  });
});

describe("CDK's built-in CloudFormation validation (off in bin/app.ts for speed, run here)", () => {
  test('finds nothing in the stack, while it does find a bad property in a control stack', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-cfn-validate-'));
    try {
      const { app } = createTrigglerApp(configOf(exampleConfigInput()), {
        appProps: { outdir, builtinCloudFormationValidation: true, context: { ...cliContext(), ...NO_BUNDLING } },
      });
      const control = new Stack(app, 'Control');
      const queue = new sqs.Queue(control, 'Queue', { enforceSSL: true });
      (queue.node.defaultChild as CfnResource).addPropertyOverride('NotAQueueProperty', 1);

      expect(() => app.synth()).toThrow(/F3002/);
      const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
        pluginReports: { pluginName: string; violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
      };
      const builtin = report.pluginReports.filter((r) => r.pluginName === 'CloudFormation Validate');
      const flagged = builtin.flatMap((r) =>
        r.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} ${c.constructPath}`)),
      );
      expect(flagged).toEqual(['F3002 Control/Queue/Resource']);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  }, 60_000);
});
