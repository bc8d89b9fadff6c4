/**
 * The stack with `webhooks.ingress: "function-url"`: the relay's Function URL and its auth type,
 * the acknowledged public-access finding (checked by running a cdk-nag pack that raises it), the
 * relay's IAM (only its token parameters), the outputs to paste, and a receiver with no internet
 * ingress at all.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template as Assertions } from 'aws-cdk-lib/assertions';
import { NIST80053R5Checks } from 'cdk-nag';
import type { StackConfigInput } from '../../../lib/stack-config/schema';
import {
  configOf,
  dependencyCycles,
  findTokenLikeValues,
  removeScratch,
  scratchOutdir,
  trigglerApp,
  type Template,
} from '../../support/stack-fixture';

afterAll(removeScratch);

const relayedConfig: StackConfigInput = {
  stackName: 'Relayed',
  triggers: [
    {
      repository: 'Codertocat/Hello-World',
      branch: 'main',
      command: 'deploy',
      source: 'webhook',
      provider: 'github',
      tokenName: 'github/Codertocat/Hello-World',
    },
    {
      repository: 'Codertocat/Hello-World',
      branch: 'staging',
      command: 'deploy',
      source: 'webhook',
      provider: 'github',
      tokenName: 'github/Codertocat/Hello-World',
    },
    { repository: 'mike/diaspora', branch: 'master', command: 'deploy', source: 'webhook', provider: 'gitlab' },
    { repository: 'app', branch: 'main', command: 'deploy' },
  ],
  webhooks: { ingress: 'function-url' },
};

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown };

let template: Template;
let assertions: Assertions;

beforeAll(() => {
  const { stack } = trigglerApp(configOf(relayedConfig));
  // Synthesis runs cdk-nag's AwsSolutions checks: an unacknowledged finding fails here.
  assertions = Assertions.fromStack(stack);
  template = assertions.toJSON() as Template;
});

function relayFunction(): [string, { Properties?: Record<string, unknown> }] {
  const found = Object.entries(assertions.findResources('AWS::Lambda::Function')).find(([, r]) =>
    String((r.Properties as { Description?: string }).Description).startsWith('git-triggler webhook relay'),
  );
  return found!;
}

test('one Function URL with auth type NONE, on the relay, which runs in the isolated subnets and reserves no concurrency by default', () => {
  const [relayId, relay] = relayFunction();
  assertions.resourceCountIs('AWS::Lambda::Url', 1);
  assertions.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'NONE', TargetFunctionArn: { 'Fn::GetAtt': [relayId, 'Arn'] } });
  expect(relay.Properties).toMatchObject({
    Runtime: 'nodejs24.x',
    Architectures: ['arm64'],
    Timeout: 9,
    LoggingConfig: { LogFormat: 'JSON', SystemLogLevel: 'WARN' },
    VpcConfig: { SubnetIds: [expect.anything()] },
  });
  expect(relay.Properties).not.toHaveProperty('ReservedConcurrentExecutions');
  // Anyone may invoke it through its URL, and only through its URL.
  const permissions = Object.values(assertions.findResources('AWS::Lambda::Permission')).filter((p) =>
    JSON.stringify((p.Properties as { FunctionName: unknown }).FunctionName).includes(relayId),
  );
  expect(permissions.map((p) => p.Properties).sort((a, b) => String(a!.Action).localeCompare(String(b!.Action)))).toEqual([
    expect.objectContaining({ Action: 'lambda:InvokeFunction', Principal: '*', InvokedViaFunctionUrl: true }),
    expect.objectContaining({ Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' }),
  ]);
});

test("the relay's settings name the receiver's private URL, its body limit, and one route per provider, repository and token", () => {
  const [, relay] = relayFunction();
  const joined = (relay.Properties as { Environment: { Variables: { TRIGGLER_RELAY: { 'Fn::Join': [string, unknown[]] } } } }).Environment
    .Variables.TRIGGLER_RELAY['Fn::Join'];
  const text = joined[1].map((part) => (typeof part === 'string' ? part : '10.0.0.10')).join(joined[0]);
  expect(JSON.parse(text)).toEqual({
    receiverUrl: 'http://10.0.0.10:5000',
    timeoutMs: 8000,
    bodyLimitBytes: 5242880,
    tokenTtlSeconds: 60,
    tokenGraceSeconds: 900,
    routes: [
      { provider: 'github', repository: 'Codertocat/Hello-World', tokenParameter: '/relayed/tokens/github/Codertocat/Hello-World' },
      { provider: 'gitlab', repository: 'mike/diaspora', tokenParameter: '/relayed/tokens/mike/diaspora/master' },
    ],
  });
});

test("the relay's role reads exactly its webhooks' token parameters (decrypted through SSM only), nothing else of SSM", () => {
  const [, relay] = relayFunction();
  const roleId = (relay.Properties as { Role: { 'Fn::GetAtt': [string] } }).Role['Fn::GetAtt'][0];
  const policies = Object.values(assertions.findResources('AWS::IAM::Policy')).filter((p) =>
    ((p.Properties as { Roles: { Ref: string }[] }).Roles ?? []).some((r) => r.Ref === roleId),
  );
  const statements = policies.flatMap((p) => (p.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement);
  const ssm = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('ssm:')));
  expect(ssm.map((s) => s.Action)).toEqual(['ssm:GetParameter']);
  const resources = JSON.stringify(ssm[0]!.Resource);
  expect(resources).toContain('parameter/relayed/tokens/github/Codertocat/Hello-World');
  expect(resources).toContain('parameter/relayed/tokens/mike/diaspora/master');
  expect(resources).not.toContain('/app/main');
  expect([ssm[0]!.Resource].flat()).toHaveLength(2);
  const kms = statements.filter((s) => [s.Action].flat().includes('kms:Decrypt'));
  expect(kms).toEqual([
    expect.objectContaining({
      Condition: {
        StringEquals: { 'kms:ViaService': expect.anything() },
        StringLike: {
          'kms:EncryptionContext:PARAMETER_ARN': [
            'arn:*:ssm:*:*:parameter/relayed/tokens/github/Codertocat/Hello-World',
            'arn:*:ssm:*:*:parameter/relayed/tokens/mike/diaspora/master',
          ],
        },
      },
    }),
  ]);
  const managed = JSON.stringify(
    (assertions.findResources('AWS::IAM::Role')[roleId]!.Properties as { ManagedPolicyArns?: unknown }).ManagedPolicyArns,
  );
  expect(managed).toContain('AWSLambdaENIManagementAccess');
});

test('the receiver has no internet ingress: only the relay and the sender reach its port', () => {
  for (const group of Object.values(assertions.findResources('AWS::EC2::SecurityGroup'))) {
    for (const rule of (group.Properties as { SecurityGroupIngress?: { CidrIp?: string }[] }).SecurityGroupIngress ?? []) {
      expect(rule.CidrIp).toBeUndefined();
    }
  }
  const ingress = Object.values(assertions.findResources('AWS::EC2::SecurityGroupIngress')).map(
    (r) => r.Properties as { CidrIp?: string; Description?: string; FromPort?: number },
  );
  for (const rule of ingress) expect(rule.CidrIp).toBeUndefined();
  expect(
    ingress
      .filter((r) => r.FromPort === 5000)
      .map((r) => r.Description)
      .sort(),
  ).toEqual(['sender to receiver', 'webhook relay to receiver']);
  expect(Object.keys(template.Outputs ?? {})).not.toContain('ReceiverPublicUrl');
});

test("outputs one ready-to-paste URL per provider and its secrets' parameter names (never values)", () => {
  const outputs = template.Outputs ?? {};
  const functionUrlId = Object.keys(assertions.findResources('AWS::Lambda::Url'))[0]!;
  expect(outputs.GitHubWebhookUrl!.Value).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [functionUrlId, 'FunctionUrl'] }, 'hooks/github']] });
  expect(outputs.GitLabWebhookUrl!.Value).toEqual({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [functionUrlId, 'FunctionUrl'] }, 'hooks/gitlab']] });
  expect(outputs.GitHubWebhookSecrets!.Value).toBe('/relayed/tokens/github/Codertocat/Hello-World');
  expect(outputs.GitLabWebhookSecrets!.Value).toBe('/relayed/tokens/mike/diaspora/master');
  expect(
    Object.keys(outputs)
      .filter((name) => /Webhook/.test(name))
      .sort(),
  ).toEqual(['GitHubWebhookSecrets', 'GitHubWebhookUrl', 'GitLabWebhookSecrets', 'GitLabWebhookUrl']);
  expect(findTokenLikeValues(template, 'Relayed')).toEqual([]);
  expect(dependencyCycles(template)).toEqual([]);
});

test('the public-access finding is acknowledged with its reason: a cdk-nag pack that raises it finds nothing on the relay', () => {
  const outdir = scratchOutdir();
  const { app } = trigglerApp(configOf(relayedConfig), { outdir });
  Validations.of(app).addPlugins(new NIST80053R5Checks(app));
  // That pack finds other things in this stack (it is not the one the app runs); the report says what.
  expect(() => app.synth()).toThrow();
  const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: { violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
  };
  const publicAccess = report.pluginReports
    .flatMap((r) => r.violations)
    .filter((v) => v.ruleName.endsWith('LambdaFunctionPublicAccessProhibited'));
  expect(publicAccess.flatMap((v) => v.violatingConstructs.map((c) => c.constructPath)).filter((p) => p.includes('WebhookRelay'))).toEqual(
    [],
  );
  const { stack } = trigglerApp(configOf(relayedConfig));
  const relay = stack.webhookRelay!.function;
  const acknowledged = Object.assign(
    {},
    ...relay.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).map((m) => m.data as object),
  ) as Record<string, string>;
  const reason = Object.entries(acknowledged).find(([id]) => id.endsWith('NIST.800.53.R5-LambdaFunctionPublicAccessProhibited'))?.[1];
  expect(reason).toMatch(/cannot sign AWS requests.*auth type NONE.*verifies every request/);
}, 60_000);

test('a reservation is set when asked, with a synth note of the quota it needs; false reserves none', () => {
  const { stack } = trigglerApp(configOf({ ...relayedConfig, webhooks: { ingress: 'function-url', reservedConcurrency: 5 } }));
  const reserved = Assertions.fromStack(stack);
  reserved.hasResourceProperties('AWS::Lambda::Function', {
    Description: Match.stringLikeRegexp('^git-triggler webhook relay'),
    ReservedConcurrentExecutions: 5,
  });
  Annotations.fromStack(stack).hasInfo(
    '*',
    Match.stringLikeRegexp(
      'reservedConcurrency 5: Lambda keeps 100 concurrent executions of the account unreserved, so this deploy needs a concurrency quota of at least 105',
    ),
  );
  const { stack: unreserved } = trigglerApp(
    configOf({ ...relayedConfig, webhooks: { ingress: 'function-url', reservedConcurrency: false } }),
  );
  expect(Annotations.fromStack(unreserved).findInfo('*', Match.stringLikeRegexp('reservedConcurrency'))).toEqual([]);
});

test("timeoutSeconds sets the relay's bound and Lambda's timeout past it", () => {
  const { stack } = trigglerApp(
    configOf({ ...relayedConfig, webhooks: { ingress: 'function-url', reservedConcurrency: false, timeoutSeconds: 5 } }),
  );
  const relay = Object.values(Assertions.fromStack(stack).findResources('AWS::Lambda::Function')).find((r) =>
    String((r.Properties as { Description?: string }).Description).startsWith('git-triggler webhook relay'),
  )!;
  expect((relay.Properties as { ReservedConcurrentExecutions?: number }).ReservedConcurrentExecutions).toBeUndefined();
  expect((relay.Properties as { Timeout: number }).Timeout).toBe(6);
});
