/**
 * One describe per construct, each synthesized once in its own small stack (bundling skipped):
 * what the construct creates, what it grants, and that bad props fail up front naming the prop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as codecommit from 'aws-cdk-lib/aws-codecommit';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { parseSenderRoutes } from '../../lambda/sender-routes';
import type { ReceiverConfigInput } from '../../receiver/config/schema';
import { ReceiverHost } from '../../lib/constructs/receiver-host/receiver-host';
import { ReceiverNetwork } from '../../lib/constructs/receiver-network';
import { RepositoryTriggers } from '../../lib/constructs/repository-triggers';
import { SenderFunction, type SenderRoute } from '../../lib/constructs/sender-function';
import { TriggerTokens } from '../../lib/constructs/trigger-tokens';
import { NO_BUNDLING, cliContext, removeScratch, scratchOutdir } from '../support/stack-fixture';

afterAll(removeScratch);

function newStack(): Stack {
  const app = new App({ outdir: scratchOutdir(), context: { ...cliContext(), ...NO_BUNDLING } });
  return new Stack(app, 'Test');
}

function parameterArn(name: string) {
  return {
    'Fn::Join': [
      '',
      ['arn:', { Ref: 'AWS::Partition' }, ':ssm:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:parameter${name}`],
    ],
  };
}

function codeCommitArn(name: string) {
  return {
    'Fn::Join': [
      '',
      ['arn:', { Ref: 'AWS::Partition' }, ':codecommit:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:${name}`],
    ],
  };
}

/** The statements of every IAM policy attached to the role whose logical id starts with `rolePrefix`. */
function statementsOf(template: Template, rolePrefix: string): Record<string, unknown>[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => ((policy.Properties as { Roles: { Ref: string }[] }).Roles ?? []).some((role) => role.Ref.startsWith(rolePrefix)))
    .flatMap((policy) => (policy.Properties as { PolicyDocument: { Statement: Record<string, unknown>[] } }).PolicyDocument.Statement);
}

function receiverConfig(overrides: Partial<ReceiverConfigInput> = {}): ReceiverConfigInput {
  return {
    listen: { host: '0.0.0.0', port: 5000 },
    admin: { host: '127.0.0.1', port: 5001 },
    stateDir: '/var/lib/triggler',
    tokens: { ssm: { prefix: '/git-triggler/tokens' } },
    triggers: [
      { repository: 'app', branch: 'main', command: 'make deploy', cwd: '/srv/app' },
      { repository: 'lib', branch: 'release/v2', command: ['deploy', '--now'], tokenName: 'shared' },
    ],
    ...overrides,
  };
}

describe('TriggerTokens', () => {
  let template: Template;
  let tokens: TriggerTokens;

  beforeAll(() => {
    const stack = newStack();
    tokens = new TriggerTokens(stack, 'Tokens', { prefix: '/team/tokens', tokenNames: ['app/main', 'lib/release/v2', 'app/main'] });
    template = Template.fromStack(stack);
  });

  test('a custom resource lists each token name once, under the prefix, not retained by default', () => {
    template.hasResourceProperties('Custom::TrigglerTokens', {
      Prefix: '/team/tokens',
      TokenNames: ['app/main', 'lib/release/v2'],
      RetainOnDelete: 'false',
    });
    expect(tokens.parameterNames).toEqual(['/team/tokens/app/main', '/team/tokens/lib/release/v2']);
  });

  test('its handler may write, tag and delete parameters under the prefix, and nothing else (no reads, no decrypt)', () => {
    const statements = statementsOf(template, 'TokensProviderHandlerRole');
    expect(statements.filter((s) => JSON.stringify(s.Action).includes('ssm:'))).toEqual([
      {
        Effect: 'Allow',
        Action: ['ssm:AddTagsToResource', 'ssm:DeleteParameter', 'ssm:ListTagsForResource', 'ssm:PutParameter'],
        Resource: parameterArn('/team/tokens/*'),
      },
    ]);
    expect(JSON.stringify(statements)).not.toContain('kms:');
  });

  test('its grant is the same whichever tokens the config lists, so a removed name can still be deleted in the cleanup', () => {
    const stack = newStack();
    new TriggerTokens(stack, 'Tokens', { prefix: '/team/tokens', tokenNames: ['other/main'] });
    expect(statementsOf(Template.fromStack(stack), 'TokensProviderHandlerRole')).toEqual(
      statementsOf(template, 'TokensProviderHandlerRole'),
    );
  });

  test('its handler runs on the newest Node.js LTS, arm64, bundled from lambda/token-provider.ts', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('token generator'),
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      // The one path it manages: a deploy key's Delete outside it is kept (lambda/deploy-key-provider.ts).
      Environment: { Variables: { TRIGGLER_TOKEN_PREFIX: '/team/tokens' } },
    });
  });

  test('bad props fail up front, naming the prop', () => {
    const stack = newStack();
    expect(() => new TriggerTokens(stack, 'A', { prefix: 'tokens', tokenNames: ['x'] })).toThrow(
      'Test/A: prefix: the SSM parameter name tokens must start with "/"',
    );
    expect(() => new TriggerTokens(stack, 'B', { prefix: '/tokens/', tokenNames: ['x'] })).toThrow('Test/B: prefix: must not end with "/"');
    expect(() => new TriggerTokens(stack, 'C', { prefix: '/tokens', tokenNames: [] })).toThrow(
      'Test/C: tokenNames: must name at least one token',
    );
    expect(() => new TriggerTokens(stack, 'D', { prefix: '/tokens', tokenNames: ['team@app'] })).toThrow(
      'Test/D: tokenNames: the SSM parameter name /tokens/team@app may hold only',
    );
    expect(() =>
      tokens.grantRead(
        new lambda.Function(stack, 'Reader', {
          runtime: lambda.Runtime.NODEJS_24_X,
          handler: 'index.handler',
          code: lambda.Code.fromInline('exports.handler = async () => {}'),
        }),
        ['/team/tokens/other'],
      ),
    ).toThrow('Test/Tokens: grantRead: /team/tokens/other are not tokens or deploy keys of this construct');
  });
});

describe('TriggerTokens with deploy keys', () => {
  let template: Template;
  let tokens: TriggerTokens;
  let reader: lambda.Function;

  beforeAll(() => {
    const stack = newStack();
    tokens = new TriggerTokens(stack, 'Tokens', {
      prefix: '/team/tokens',
      tokenNames: ['site', 'app/main'],
      deployKeys: [
        { repository: 'owner/site', keyName: 'deploy-keys/owner/site' },
        { repository: 'My Project', keyName: 'deploy-keys/My-Project-0a1b2c3d' },
      ],
      ownDeployKeyNames: ['keys/mine'],
      retainOnDelete: true,
    });
    reader = new lambda.Function(stack, 'Reader', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {}'),
    });
    tokens.grantRead(reader, ['/team/tokens/deploy-keys/owner/site', '/team/tokens/keys/mine']);
    template = Template.fromStack(stack);
  });

  test('one key resource per repository, named after it, served by the token handler', () => {
    const keys = template.findResources('Custom::TrigglerDeployKey');
    expect(Object.keys(keys).sort()).toEqual([
      expect.stringMatching(/^TokensDeployKeyMyProject[0-9a-f]{8}/),
      expect.stringMatching(/^TokensDeployKeyOwnerSite[0-9a-f]{8}/),
    ]);
    template.hasResourceProperties('Custom::TrigglerDeployKey', {
      ParameterName: '/team/tokens/deploy-keys/owner/site',
      PublicParameterName: '/team/tokens/deploy-keys/owner/site.pub',
      Comment: 'git-triggler Test owner/site',
      RetainOnDelete: 'true',
    });
    const serviceTokens = new Set(
      Object.values(template.toJSON().Resources as Record<string, { Type: string; Properties?: { ServiceToken?: unknown } }>)
        .filter((r) => r.Type.startsWith('Custom::Triggler'))
        .map((r) => JSON.stringify(r.Properties!.ServiceToken)),
    );
    expect(serviceTokens.size).toBe(1);
    template.resourceCountIs('AWS::Lambda::Function', 3); // one handler, its framework, the reader
    expect(tokens.deployKeys.map((key) => [key.repository, key.parameterName, key.publicParameterName])).toEqual([
      ['owner/site', '/team/tokens/deploy-keys/owner/site', '/team/tokens/deploy-keys/owner/site.pub'],
      ['My Project', '/team/tokens/deploy-keys/My-Project-0a1b2c3d', '/team/tokens/deploy-keys/My-Project-0a1b2c3d.pub'],
    ]);
  });

  test('the handler may manage what is under the prefix, and read only public halves (*.pub), never decrypt', () => {
    const ssmStatements = statementsOf(template, 'TokensProviderHandlerRole').filter((s) => JSON.stringify(s.Action).includes('ssm:'));
    expect(ssmStatements.map((statement) => [statement.Action, statement.Resource])).toEqual([
      [['ssm:AddTagsToResource', 'ssm:DeleteParameter', 'ssm:ListTagsForResource', 'ssm:PutParameter'], parameterArn('/team/tokens/*')],
      ['ssm:GetParameter', parameterArn('/team/tokens/*.pub')],
    ]);
    expect(JSON.stringify(statementsOf(template, 'TokensProviderHandlerRole'))).not.toContain('kms:');
  });

  test("grantRead grants a generated key's private half or a user's own key, never a public half it was not asked for", () => {
    const statements = statementsOf(template, 'ReaderServiceRole');
    expect(statements).toEqual(
      expect.arrayContaining([
        {
          Effect: 'Allow',
          Action: 'ssm:GetParameter',
          Resource: [parameterArn('/team/tokens/deploy-keys/owner/site'), parameterArn('/team/tokens/keys/mine')],
        },
        expect.objectContaining({ Action: 'kms:Decrypt' }),
      ]),
    );
    expect(() => tokens.grantRead(reader, ['/team/tokens/deploy-keys/owner/site.pub'])).toThrow(
      'grantRead: /team/tokens/deploy-keys/owner/site.pub are not tokens or deploy keys of this construct',
    );
  });

  test('bad deploy key props fail up front, naming the prop', () => {
    const stack = newStack();
    expect(
      () =>
        new TriggerTokens(stack, 'A', {
          prefix: '/tokens',
          tokenNames: ['x'],
          deployKeys: [
            { repository: 'a', keyName: 'deploy-keys/a' },
            { repository: 'a', keyName: 'deploy-keys/b' },
          ],
        }),
    ).toThrow('Test/A: deployKeys[1].repository: repeats deployKeys[0]: one key per repository');
    expect(
      () =>
        new TriggerTokens(stack, 'B', {
          prefix: '/tokens',
          tokenNames: ['x'],
          deployKeys: [{ repository: 'a', keyName: 'deploy keys/a' }],
          ownDeployKeyNames: ['team@key'],
        }),
    ).toThrow(
      /Test\/B: deployKeys\[0\]\.keyName: the SSM parameter name \/tokens\/deploy keys\/a\.pub may hold only[^\n]*\nTest\/B: ownDeployKeyNames\[0\]: the SSM parameter name \/tokens\/team@key may hold only/,
    );
  });
});

describe('RepositoryTriggers', () => {
  let template: Template;

  beforeAll(() => {
    const stack = newStack();
    const destination = new lambda.Function(stack, 'Destination', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {}'),
    });
    new RepositoryTriggers(stack, 'Triggers', {
      destination,
      triggerName: 'git-triggler-Test',
      repositories: [
        { repository: 'fresh', createRepository: true, branches: ['main'] },
        { repository: 'existing', createRepository: false, branches: ['main', 'release/v2'] },
      ],
    });
    template = Template.fromStack(stack);
  });

  test('a created repository is kept when the stack is deleted, and gets its trigger from a merge resource that waits for it', () => {
    const [repositoryId, repository] = Object.entries(template.findResources('AWS::CodeCommit::Repository'))[0]!;
    expect(repository).toMatchObject({
      DeletionPolicy: 'RetainExceptOnCreate',
      UpdateReplacePolicy: 'Retain',
      Properties: { RepositoryName: 'fresh' },
    });
    // Not on the repository resource: a retained repository would keep a trigger nobody removes.
    expect(repository.Properties.Triggers).toBeUndefined();
    const merge = Object.values(
      template.findResources('Custom::TrigglerRepositoryTriggers', { Properties: { RepositoryName: 'fresh' } }),
    )[0]!;
    expect(merge.DependsOn).toEqual(expect.arrayContaining([repositoryId]));
    expect(merge.Properties.Triggers).toEqual([
      {
        name: 'git-triggler-Test',
        destinationArn: { 'Fn::GetAtt': [expect.stringMatching(/^Destination/), 'Arn'] },
        branches: ['main'],
        events: ['createReference', 'updateReference'],
      },
    ]);
  });

  test('an existing repository gets a merge resource, after the invoke permission exists', () => {
    const merges = template.findResources('Custom::TrigglerRepositoryTriggers', { Properties: { RepositoryName: 'existing' } });
    expect(Object.values(merges).map((m) => m.Properties)).toEqual([
      expect.objectContaining({
        RepositoryName: 'existing',
        Triggers: [
          {
            name: 'git-triggler-Test',
            destinationArn: { 'Fn::GetAtt': [expect.stringMatching(/^Destination/), 'Arn'] },
            branches: ['main', 'release/v2'],
            events: ['createReference', 'updateReference'],
          },
        ],
      }),
    ]);
    const permissions = Object.keys(
      template.findResources('AWS::Lambda::Permission', { Properties: { SourceArn: codeCommitArn('existing') } }),
    );
    expect(permissions).toHaveLength(1);
    expect(Object.values(merges)[0]!.DependsOn).toEqual(expect.arrayContaining(permissions));
  });

  test('existing repositories (only those) are checked by one resource that needs nothing but the handler and its read grant', () => {
    template.resourceCountIs('Custom::TrigglerRepositoryCheck', 1);
    const [check] = Object.values(template.findResources('Custom::TrigglerRepositoryCheck'));
    expect(check!.Properties).toEqual({ RepositoryNames: ['existing'], TriggerName: 'git-triggler-Test', ServiceToken: expect.anything() });
    expect(check!.DependsOn).toEqual([expect.stringMatching(/^TriggersAccessExisting[0-9a-f]{8}/)]);
  });

  test('CodeCommit may invoke the destination from exactly the configured repositories', () => {
    for (const repository of ['fresh', 'existing']) {
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Principal: 'codecommit.amazonaws.com',
        Action: 'lambda:InvokeFunction',
        SourceArn: codeCommitArn(repository),
        SourceAccount: { Ref: 'AWS::AccountId' },
      });
    }
    template.resourceCountIs('AWS::Lambda::Permission', 2);
  });

  test('the merge handler may read and write the triggers of each configured repository, by a policy of its own that its merge resource depends on', () => {
    const policies = template.findResources('AWS::IAM::Policy', { Properties: { PolicyName: Match.stringLikeRegexp('^TriggersAccess') } });
    const byRepository = Object.fromEntries(
      Object.entries(policies).map(([id, policy]) => {
        const statements = (policy.Properties as { PolicyDocument: { Statement: Record<string, unknown>[] } }).PolicyDocument.Statement;
        expect(statements).toHaveLength(1);
        expect(statements[0]!.Action).toEqual(['codecommit:GetRepositoryTriggers', 'codecommit:PutRepositoryTriggers']);
        const name = ['fresh', 'existing'].find((r) => JSON.stringify(statements[0]!.Resource) === JSON.stringify(codeCommitArn(r)))!;
        return [name, id];
      }),
    );
    expect(Object.keys(byRepository).sort()).toEqual(['existing', 'fresh']);
    // Deleting a merge resource (our trigger off the repository) happens before its grant goes.
    for (const repository of ['fresh', 'existing']) {
      const merge = Object.values(
        template.findResources('Custom::TrigglerRepositoryTriggers', { Properties: { RepositoryName: repository } }),
      )[0]!;
      expect(merge.DependsOn).toContain(byRepository[repository]);
    }
    // Nothing repository-specific in the handler's shared default policy.
    const defaults = template.findResources('AWS::IAM::Policy', {
      Properties: { PolicyName: Match.stringLikeRegexp('^TriggersMergeProviderHandlerRoleDefaultPolicy') },
    });
    expect(Object.keys(defaults)).toHaveLength(1);
    expect(JSON.stringify(defaults)).not.toContain('codecommit:');
  });

  test('bad props fail up front, naming the prop', () => {
    const stack = newStack();
    const destination = lambda.Function.fromFunctionArn(stack, 'Destination', 'arn:aws:lambda:eu-west-1:123456789012:function:d');
    const ok = { repository: 'app', createRepository: false, branches: ['main'] };
    const attempt = (id: string, props: Partial<ConstructorParameters<typeof RepositoryTriggers>[2]>) => () =>
      new RepositoryTriggers(stack, id, { destination, triggerName: 'git-triggler-Test', repositories: [ok], ...props });
    expect(attempt('A', { triggerName: 'has space' })).toThrow(
      'Test/A: triggerName: the CodeCommit trigger name "has space" may hold only',
    );
    expect(attempt('B', { repositories: [ok, ok] })).toThrow('Test/B: repositories[1].repository: app is listed twice');
    expect(attempt('C', { repositories: [{ ...ok, branches: [] }] })).toThrow(
      'Test/C: repositories[0].branches: must list at least one branch',
    );
    expect(attempt('D', { repositories: [{ ...ok, branches: ['main', 'bad..branch'] }] })).toThrow(
      'Test/D: repositories[0].branches[1]: a CodeCommit branch name must not contain ".."',
    );
    expect(attempt('E', { events: [codecommit.RepositoryEventTrigger.ALL, codecommit.RepositoryEventTrigger.UPDATE_REF] })).toThrow(
      'Test/E: events: "all" cannot be combined',
    );
    expect(attempt('F', { repositories: [{ ...ok, repository: 'my repo' }] })).toThrow(
      'Test/F: repositories[0].repository: a CodeCommit repository name may hold only',
    );
  });

  test('every bad prop is reported at once, one line each', () => {
    const stack = newStack();
    const destination = lambda.Function.fromFunctionArn(stack, 'Destination', 'arn:aws:lambda:eu-west-1:123456789012:function:d');
    let message = '';
    try {
      new RepositoryTriggers(stack, 'Many', {
        destination,
        triggerName: 'has space',
        events: [],
        repositories: [{ repository: 'my repo', createRepository: false, branches: ['ok', 'bad..branch'] }],
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n')).toEqual([
      expect.stringMatching(/^Test\/Many: triggerName: /),
      'Test/Many: events: must list at least one event',
      expect.stringMatching(/^Test\/Many: repositories\[0\]\.repository: /),
      expect.stringMatching(/^Test\/Many: repositories\[0\]\.branches\[1\]: /),
    ]);
  });
});

describe('SenderFunction', () => {
  let template: Template;
  const routes: SenderRoute[] = [
    { repository: 'app', branch: 'main', url: 'http://10.0.0.5:5000', tokenParameter: '/git-triggler/tokens/app/main', scheme: 'standard' },
    {
      repository: 'legacy',
      branch: 'master',
      url: 'http://10.0.0.5:5000',
      tokenParameter: '/git-triggler/tokens/legacy/master',
      scheme: 'seed',
      iterations: 500,
    },
  ];

  function senderStack(props: Partial<ConstructorParameters<typeof SenderFunction>[2]> = {}) {
    const stack = newStack();
    const network = new ReceiverNetwork(stack, 'Network');
    const tokens = new TriggerTokens(stack, 'Tokens', {
      prefix: '/git-triggler/tokens',
      tokenNames: ['app/main', 'legacy/master', 'webhook-only/main'],
    });
    const sender = new SenderFunction(stack, 'Sender', { vpc: network.vpc, tokens, routes, ...props });
    return { stack, tokens, network, sender };
  }

  beforeAll(() => {
    const { stack } = senderStack({
      alarmTopic: sns.Topic.fromTopicArn(newStack(), 'Topic', 'arn:aws:sns:eu-west-1:123456789012:alerts'),
      retryAttempts: 1,
      maxEventAge: Duration.hours(2),
    });
    template = Template.fromStack(stack);
  });

  function senderProperties(): {
    Environment: { Variables: Record<string, string> };
    VpcConfig: { SubnetIds: { Ref: string }[]; SecurityGroupIds: unknown[] };
  } {
    const [sender] = Object.values(
      template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('^git-triggler sender') } }),
    );
    return sender!.Properties as ReturnType<typeof senderProperties>;
  }

  test("runs lambda/sender.ts on the newest Node.js LTS, arm64, in the VPC's isolated subnets", () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^git-triggler sender'),
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Timeout: 60,
    });
    const subnets = senderProperties().VpcConfig.SubnetIds.map((s) => s.Ref);
    expect(subnets.length).toBe(1);
    expect(subnets[0]).toMatch(/functions/);
  });

  test("TRIGGLER_ROUTES is what the sender's own parser accepts, with the timeouts beside it", () => {
    const variables = senderProperties().Environment.Variables;
    const parsed = parseSenderRoutes(variables.TRIGGLER_ROUTES).routes;
    expect(parsed).toEqual(routes);
    expect(variables.TRIGGLER_TIMEOUT_MS).toBe('10000');
    expect(variables.TRIGGLER_TOKEN_TTL_SECONDS).toBe('60');
    expect(variables.TRIGGLER_COMMIT_DETAILS).toBeUndefined();
  });

  test('failed asynchronous invocations are retried, then land in an encrypted, TLS-only queue', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 1,
      MaximumEventAgeInSeconds: 7200,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SenderFailedDeliveries'), 'Arn'] } } },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
  });

  test('an alarm goes off when a delivery lands in the queue, and notifies the topic', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: ['arn:aws:sns:eu-west-1:123456789012:alerts'],
    });
  });

  test("may read exactly its routes' tokens, and decrypt only those, only through SSM", () => {
    const statements = statementsOf(template, 'SenderRole');
    expect(statements).toEqual(
      expect.arrayContaining([
        {
          Effect: 'Allow',
          Action: 'ssm:GetParameter',
          Resource: [parameterArn('/git-triggler/tokens/app/main'), parameterArn('/git-triggler/tokens/legacy/master')],
        },
        {
          Effect: 'Allow',
          Action: 'kms:Decrypt',
          Resource: {
            'Fn::Join': [
              '',
              ['arn:', { Ref: 'AWS::Partition' }, ':kms:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':key/*'],
            ],
          },
          Condition: {
            StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['ssm.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
            StringLike: {
              'kms:EncryptionContext:PARAMETER_ARN': [
                'arn:*:ssm:*:*:parameter/git-triggler/tokens/app/main',
                'arn:*:ssm:*:*:parameter/git-triggler/tokens/legacy/master',
              ],
            },
          },
        },
      ]),
    );
    expect(JSON.stringify(statements)).not.toContain('webhook-only');
    expect(JSON.stringify(statements)).not.toMatch(/"ssm:\*"|parameter\/git-triggler\/tokens\/\*/);
  });

  test('its security group opens nothing by default (egress is added per peer)', () => {
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('^git-triggler sender'),
      SecurityGroupEgress: [Match.objectLike({ CidrIp: '255.255.255.255/32' })],
    });
  });

  test('commit details add GetCommit on the routed repositories (names, not resources: no cycle) and turn the option on', () => {
    const { stack } = senderStack({ commitDetails: true });
    const withDetails = Template.fromStack(stack);
    const statements = statementsOf(withDetails, 'SenderRole');
    expect(statements).toEqual(
      expect.arrayContaining([
        { Effect: 'Allow', Action: 'codecommit:GetCommit', Resource: [codeCommitArn('app'), codeCommitArn('legacy')] },
      ]),
    );
    withDetails.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: { TRIGGLER_COMMIT_DETAILS: 'true' } } });
  });

  test('bad props fail up front, naming the prop', () => {
    expect(() => senderStack({ routes: [] })).toThrow('Test/Sender: routes: must hold at least one route');
    expect(() => senderStack({ routes: [{ ...routes[0]!, tokenParameter: '/elsewhere/x' }] })).toThrow(
      "Test/Sender: routes[0].tokenParameter: /elsewhere/x is not one of the tokens' parameters",
    );
    expect(() => senderStack({ routes: [{ ...routes[0]!, url: 'ftp://host' }] })).toThrow(
      'Test/Sender: routes[0].url: must be an http:// or https:// URL',
    );
    expect(() => senderStack({ timeout: Duration.seconds(10) })).toThrow('Test/Sender: timeout: must be longer than deliveryTimeout');
    expect(() => senderStack({ retryAttempts: 3 })).toThrow('Test/Sender: retryAttempts: must be 0 to 2');
    const many = Array.from({ length: 40 }, (_, i) => ({ ...routes[0]!, branch: `feature/number-${i}` }));
    expect(() => senderStack({ routes: many })).toThrow(
      /Test\/Sender: routes: 40 routes make the environment about \d+ bytes; Lambda allows 4096/,
    );
  });
});

describe('ReceiverHost', () => {
  let template: Template;
  let instanceId: string;

  function hostStack(props: Partial<ConstructorParameters<typeof ReceiverHost>[2]> = {}) {
    const stack = newStack();
    const network = new ReceiverNetwork(stack, 'Network');
    const tokens = new TriggerTokens(stack, 'Tokens', {
      prefix: '/git-triggler/tokens',
      tokenNames: ['app/main', 'shared', 'unused/main'],
    });
    const host = new ReceiverHost(stack, 'Receiver', {
      vpc: network.vpc,
      receiverConfig: receiverConfig(),
      tokens,
      writablePaths: ['/srv/app', '/var/cache/app'],
      ...props,
    });
    return { stack, host };
  }

  function initOf(t: Template): {
    configSets: unknown;
    system: Record<string, Record<string, unknown>>;
    receiver: Record<string, Record<string, Record<string, unknown>>>;
  } {
    const instance = Object.values(t.findResources('AWS::EC2::Instance'))[0]!;
    return (instance.Metadata as Record<string, ReturnType<typeof initOf>>)['AWS::CloudFormation::Init']!;
  }

  beforeAll(() => {
    template = Template.fromStack(hostStack().stack);
    instanceId = Object.keys(template.findResources('AWS::EC2::Instance'))[0]!;
  });

  test('requires IMDSv2, encrypts its gp3 root volume, has no key pair and a public address (no NAT)', () => {
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', { LaunchTemplateData: { MetadataOptions: { HttpTokens: 'required' } } });
    template.hasResourceProperties('AWS::EC2::Instance', {
      BlockDeviceMappings: [
        { DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 8, DeleteOnTermination: true } },
      ],
      KeyName: Match.absent(),
      InstanceType: 't4g.micro',
      NetworkInterfaces: [Match.objectLike({ AssociatePublicIpAddress: true })],
    });
  });

  test("runs Amazon Linux 2023 for the instance type's architecture", () => {
    const parameters = Object.keys(template.toJSON().Parameters as object);
    expect(parameters.some((p) => /al2023.*arm64/i.test(p))).toBe(true);
    const x86 = Template.fromStack(hostStack({ instanceType: new ec2.InstanceType('t3.micro') }).stack);
    expect(Object.keys(x86.toJSON().Parameters as object).some((p) => /al2023.*x8664/i.test(p))).toBe(true);
  });

  test('cfn-init installs Node.js, a system user, the bundle, the CLI, the config and the hardened unit', () => {
    const init = initOf(template);
    expect(init.configSets).toEqual({ default: ['revision', 'system', 'receiver', 'health'] });
    expect(init.system.packages).toEqual({ yum: { nodejs22: [] } });
    expect(JSON.stringify(init.system.commands)).toContain(
      'useradd --system --user-group --home-dir /var/lib/triggler --no-create-home --shell /sbin/nologin triggler',
    );
    expect(Object.keys(init.receiver.sources!)).toEqual(['/opt/triggler']);

    const files = init.receiver.files!;
    // Its commands start through the command runner's socket (test/lib/constructs/receiver-host/command-runner.test.ts).
    expect(files['/etc/triggler/receiver.json']).toEqual({
      content: { ...receiverConfig(), commandRunner: { socket: '/run/triggler/command.sock' } },
      owner: 'root',
      group: 'triggler',
      mode: '000640',
    });
    const unit = fs.readFileSync(path.join(__dirname, '../../lib/host-files/triggler-receiver.service'), 'utf8');
    expect((files['/etc/systemd/system/triggler-receiver.service'] as { content: string }).content).toBe(unit);
    for (const line of [
      'User=triggler',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'ReadWritePaths=/var/lib/triggler',
      'ExecStart=/usr/bin/node-22 /opt/triggler/receiver.js --config /etc/triggler/receiver.json',
    ]) {
      expect(unit.split('\n')).toContain(line);
    }
    expect((files['/etc/systemd/system/triggler-receiver.service.d/50-writable-paths.conf'] as { content: string }).content).toContain(
      'ReadWritePaths=-/srv/app -/var/cache/app\n',
    );
    // The CLI from the same bundle, on PATH for whoever is on the host.
    expect(files['/usr/local/bin/triggler']).toEqual({
      content: '#!/bin/sh\nexec /usr/bin/node-22 /opt/triggler/triggler.js "$@"\n',
      encoding: 'plain',
      owner: 'root',
      group: 'root',
      mode: '000755',
    });
    expect(init.receiver.services).toEqual({
      systemd: {
        'triggler-receiver': expect.objectContaining({
          enabled: true,
          ensureRunning: true,
          sources: ['/opt/triggler'],
          files: expect.arrayContaining(['/etc/triggler/receiver.json', '/etc/systemd/system/triggler-receiver.service']),
        }),
        'cfn-hup': expect.objectContaining({
          enabled: true,
          ensureRunning: true,
          files: expect.arrayContaining(['/etc/cfn/cfn-hup.conf', '/etc/cfn/hooks.d/triggler-receiver.conf']),
        }),
      },
    });
  });

  test("cfn-hup re-runs cfn-init when this instance's metadata changes", () => {
    const hook = JSON.stringify(initOf(template).receiver.files!['/etc/cfn/hooks.d/triggler-receiver.conf']);
    expect(hook).toContain(`path=Resources.${instanceId}.Metadata.AWS::CloudFormation::Init`);
    expect(hook).toContain(`--resource ${instanceId} --configsets default`);
    expect(JSON.stringify(initOf(template).receiver.files!['/etc/cfn/cfn-hup.conf'])).toContain('interval=1');
  });

  test('a changed receiver config changes the metadata, not the instance (no replacement)', () => {
    const changed = Template.fromStack(
      hostStack({ receiverConfig: receiverConfig({ triggers: [{ repository: 'app', branch: 'main', command: 'other command' }] }) }).stack,
    );
    const [changedId] = Object.keys(changed.findResources('AWS::EC2::Instance'));
    expect(changedId).toBe(instanceId);
    const userData = (t: Template) =>
      (Object.values(t.findResources('AWS::EC2::Instance'))[0]!.Properties as { UserData: unknown }).UserData;
    expect(userData(changed)).toEqual(userData(template));
    expect(initOf(changed).receiver.files!['/etc/triggler/receiver.json']).not.toEqual(
      initOf(template).receiver.files!['/etc/triggler/receiver.json'],
    );
  });

  test("may read exactly its triggers' tokens (and their history, for rotation), and decrypt only those", () => {
    const statements = statementsOf(template, 'ReceiverInstanceInstanceRole');
    const tokens = [parameterArn('/git-triggler/tokens/app/main'), parameterArn('/git-triggler/tokens/shared')];
    expect(statements).toEqual(
      expect.arrayContaining([
        { Effect: 'Allow', Action: ['ssm:GetParameter', 'ssm:GetParameterHistory'], Resource: tokens },
        expect.objectContaining({
          Action: 'kms:Decrypt',
          Condition: {
            StringEquals: { 'kms:ViaService': expect.anything() },
            StringLike: {
              'kms:EncryptionContext:PARAMETER_ARN': [
                'arn:*:ssm:*:*:parameter/git-triggler/tokens/app/main',
                'arn:*:ssm:*:*:parameter/git-triggler/tokens/shared',
              ],
            },
          },
        }),
      ]),
    );
    expect(JSON.stringify(statements)).not.toContain('unused/main');
  });

  test("carries no AWS-managed policy; the Session Manager agent's actions are written out, and nothing reads parameters or decrypts on *", () => {
    const roles = Object.values(template.findResources('AWS::IAM::Role')).filter((role) =>
      JSON.stringify(role.Properties.AssumeRolePolicyDocument).includes('ec2.amazonaws.com'),
    );
    expect(roles).toHaveLength(1);
    expect(roles[0]!.Properties.ManagedPolicyArns).toBeUndefined();
    const statements = statementsOf(template, 'ReceiverInstanceInstanceRole') as {
      Sid?: string;
      Action: string | string[];
      Resource: unknown;
      Condition?: Record<string, Record<string, unknown>>;
    }[];
    const agent = statements.find((statement) => statement.Sid === 'SessionManagerAgent')!;
    expect(agent.Resource).toBe('*');
    expect([agent.Action].flat().every((action) => /^(ssmmessages|ec2messages):|^ssm:UpdateInstanceInformation$/.test(action))).toBe(true);
    for (const statement of statements) {
      const actions = [statement.Action].flat();
      if (actions.some((action) => /^ssm:Get|^ssm:Describe|^ssm:\*|^ssm:List/.test(action))) {
        expect(statement.Resource).not.toBe('*');
        expect(JSON.stringify(statement.Resource)).not.toContain('*');
      }
      if (actions.includes('kms:Decrypt')) {
        const contexts = statement.Condition?.StringLike?.['kms:EncryptionContext:PARAMETER_ARN'] as string[];
        expect(contexts.length).toBeGreaterThan(0);
        // Exact paths: only the partition, region and account are left open.
        for (const context of contexts) expect(context).toMatch(/^arn:\*:ssm:\*:\*:parameter\/[A-Za-z0-9_./-]+$/);
      }
    }
  });

  test('opens its port to nothing by default, and to allowCidrs when asked', () => {
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    const open = Template.fromStack(hostStack({ allowCidrs: ['203.0.113.0/24'] }).stack);
    open.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('^git-triggler receiver host'),
      SecurityGroupIngress: [
        { CidrIp: '203.0.113.0/24', FromPort: 5000, ToPort: 5000, IpProtocol: 'tcp', Description: 'receiver.allowCidrs: 203.0.113.0/24' },
      ],
    });
    const acknowledgesOpenPort = (host: ReceiverHost) =>
      host.securityGroup.node.metadata.some((entry) => JSON.stringify(entry.data).includes('AwsSolutions-EC23'));
    expect(acknowledgesOpenPort(hostStack({ allowCidrs: ['203.0.113.0/24'] }).host)).toBe(false);
    // Only an explicit 0.0.0.0/0 in the config is acknowledged (with the config as the reason).
    expect(acknowledgesOpenPort(hostStack({ allowCidrs: ['0.0.0.0/0'] }).host)).toBe(true);
  });

  test('bad props fail up front, naming the prop', () => {
    expect(() => hostStack({ receiverConfig: receiverConfig({ triggers: [{ repository: 'app', branch: 'main', command: '' }] }) })).toThrow(
      /Test\/Receiver: receiverConfig: receiverConfig is not valid:\n {2}triggers\[0\]\.command: must not be empty/,
    );
    expect(() =>
      hostStack({
        receiverConfig: receiverConfig({
          triggers: [{ repository: 'app', branch: 'main', command: 'x', token: 'a-token-of-sixteen-chars' }],
        }),
      }),
    ).toThrow('Test/Receiver: receiverConfig.triggers[0]: must not carry token or tokenEnv');
    expect(() =>
      hostStack({ receiverConfig: receiverConfig({ triggers: [{ repository: 'app', branch: 'main', command: 'x', user: 'root' }] }) }),
    ).toThrow('Test/Receiver: receiverConfig.triggers[0].user: must not be set');
    expect(() => hostStack({ receiverConfig: receiverConfig({ admin: { host: '0.0.0.0', port: 5001 } }) })).toThrow(
      'Test/Receiver: receiverConfig.admin.host: must be 127.0.0.1',
    );
    expect(() => hostStack({ receiverConfig: receiverConfig({ tokens: { file: '/etc/triggler/tokens.json' } }) })).toThrow(
      'Test/Receiver: receiverConfig.tokens.ssm: must be set',
    );
    expect(() => hostStack({ writablePaths: ['relative/path'] })).toThrow('Test/Receiver: writablePaths[0]: must be an absolute path');
    expect(() => hostStack({ rootVolumeGiB: 4 })).toThrow('Test/Receiver: rootVolumeGiB: must be a whole number of at least 8');
    expect(() => hostStack({ rootVolumeGiB: 4, writablePaths: ['x'], receiverConfig: receiverConfig({ stateDir: '/srv/state' }) })).toThrow(
      /receiverConfig\.stateDir: must be \/var\/lib\/triggler[^\n]*\nTest\/Receiver: writablePaths\[0\]: [^\n]*\nTest\/Receiver: rootVolumeGiB: /,
    );
  });

  test('every change the host receives gets a new wait condition, which the health step signals; nothing else does', () => {
    const gateOf = (t: Template) => {
      const [handle] = Object.keys(t.findResources('AWS::CloudFormation::WaitConditionHandle'));
      const [condition] = Object.keys(t.findResources('AWS::CloudFormation::WaitCondition'));
      const init = initOf(t) as unknown as { health: { commands: Record<string, { command: unknown[] }> } };
      expect(init.health.commands['10-wait-healthy']!.command[3]).toEqual({ Ref: handle });
      t.hasResourceProperties('AWS::CloudFormation::WaitCondition', { Handle: { Ref: handle }, Count: 1 });
      return [handle!, condition!];
    };
    const first = gateOf(template);
    expect(gateOf(Template.fromStack(hostStack().stack))).toEqual(first);
    const edited = gateOf(Template.fromStack(hostStack({ receiverConfig: receiverConfig({ log: { level: 'debug' } }) }).stack));
    const moreWritable = gateOf(Template.fromStack(hostStack({ writablePaths: ['/srv/app'] }).stack));
    for (const other of [edited, moreWritable]) {
      expect(other[0]).not.toBe(first[0]);
      expect(other[1]).not.toBe(first[1]);
    }
  });

  test('before writing a new version, cfn-init keeps the one that serves, so the health step can put it back', () => {
    const init = initOf(template) as unknown as {
      revision: { files: Record<string, { content: string; mode: string }>; commands: Record<string, { command: unknown[] }> };
    };
    const script = fs.readFileSync(path.join(__dirname, '../../lib/host-files/host-revision.sh'), 'utf8');
    expect(init.revision.files['/usr/local/sbin/triggler-host-revision']).toMatchObject({ content: script, mode: '000755' });
    expect(init.revision.commands['10-save']!.command).toEqual([
      '/usr/local/sbin/triggler-host-revision',
      'save',
      '5000',
      '/opt/triggler',
      '/usr/local/bin/triggler',
      '/etc/triggler/receiver.json',
      '/etc/triggler/receiver.env',
      '/etc/systemd/system/triggler-receiver.service',
      '/etc/systemd/system/triggler-receiver.service.d/50-writable-paths.conf',
      '/etc/systemd/system/triggler-command.socket',
      '/etc/systemd/system/triggler-command@.service',
      '/etc/systemd/system/triggler-command@.service.d/50-writable-paths.conf',
    ]);
  });

  test('the last cfn-init step waits for /healthz with the script beside the construct, byte for byte', () => {
    const init = initOf(template) as unknown as {
      health: { files: Record<string, { content: string; mode: string }>; commands: Record<string, { command: unknown[] }> };
    };
    const script = fs.readFileSync(path.join(__dirname, '../../lib/host-files/wait-healthy.sh'), 'utf8');
    expect(init.health.files['/usr/local/sbin/triggler-wait-healthy']).toMatchObject({ content: script, mode: '000755' });
    expect(init.health.commands['10-wait-healthy']!.command.slice(0, 3)).toEqual(['/usr/local/sbin/triggler-wait-healthy', '5000', '120']);
  });
});

describe('ReceiverNetwork', () => {
  test('one zone by default: a public and an isolated subnet, no NAT gateway, an SSM endpoint, flow logs', () => {
    const stack = newStack();
    new ReceiverNetwork(stack, 'Network');
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::Subnet', 2);
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.ssm']] },
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
      SubnetIds: [{ Ref: Match.stringLikeRegexp('functions') }],
    });
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('more zones, a CodeCommit endpoint, and no flow logs when asked', () => {
    const stack = newStack();
    const network = new ReceiverNetwork(stack, 'Network', { maxAzs: 2, flowLogs: false, codeCommitEndpoint: true });
    const withoutSsm = newStack();
    new ReceiverNetwork(withoutSsm, 'Network', { ssmEndpoint: false });
    Template.fromStack(withoutSsm).resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::EC2::Subnet', 4);
    template.resourceCountIs('AWS::EC2::FlowLog', 0);
    template.resourceCountIs('AWS::EC2::VPCEndpoint', 2);
    expect(network.vpc.node.metadata.some((entry) => JSON.stringify(entry.data).includes('AwsSolutions-VPC7'))).toBe(true);
  });

  test('more zones than the stack knows are refused, naming why (the VPC would silently take fewer)', () => {
    expect(() => new ReceiverNetwork(newStack(), 'Network', { maxAzs: 3 })).toThrow(
      'Test/Network: maxAzs: must be at most 2: the stack knows 2 zones at synth',
    );
  });

  test('bad props fail up front, naming the prop', () => {
    expect(() => new ReceiverNetwork(newStack(), 'A', { maxAzs: 4 })).toThrow('Test/A: maxAzs: must be 1, 2 or 3, got 4');
    expect(() => new ReceiverNetwork(newStack(), 'B', { cidr: '10.0.0.0/8' })).toThrow(
      'Test/B: cidr: must be an IPv4 range from /16 to /24',
    );
  });
});
