/**
 * A stack whose triggers deploy: the host gets git, each deploy.path (owned by the service user,
 * writable for the unit), codecommit:GitPull on exactly the fetched repositories, and the
 * CodeCommit credential helper for the service; the receiver config carries the deploy sections.
 * A webhook trigger fetching over SSH gets a generated deploy key: its resource, its output, the
 * host's read grant on it and ssh on the host.
 */
import { Stack } from 'aws-cdk-lib';
import { Template as Assertions } from 'aws-cdk-lib/assertions';
import type { ReceiverConfig } from '../../receiver/config/schema';
import { configOf, findTokenLikeValues, removeScratch, trigglerApp, type Template } from '../support/stack-fixture';

afterAll(removeScratch);

const deploy = {
  path: '/srv/my-app',
  activate: 'systemctl restart my-app',
  healthCheck: { command: 'curl -fsS http://127.0.0.1:8080/health' },
};

type Triggers = Parameters<typeof configOf>[0]['triggers'];

function synth(
  triggers: Triggers = [
    { repository: 'my-app', branch: 'main', createRepository: true, command: 'npm ci && npm run build', deploy },
    { repository: 'other', branch: 'main', command: 'true' },
    {
      repository: 'owner/site',
      branch: 'main',
      source: 'webhook',
      tokenName: 'site',
      command: 'true',
      deploy: { repositoryUrl: 'git@github.com:owner/site.git', path: '/srv/site' },
    },
    {
      repository: 'owner/site',
      branch: 'dev',
      source: 'webhook',
      tokenName: 'site',
      command: 'true',
      deploy: { repositoryUrl: 'git@github.com:owner/site.git', path: '/srv/site-dev' },
    },
  ],
): { template: Record<string, unknown>; stack: Stack } {
  const { stack } = trigglerApp(configOf({ triggers, receiver: { manageUnits: ['my-app.service'] } }));
  return { template: Assertions.fromStack(stack).toJSON(), stack };
}

type Resources = Record<
  string,
  { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown>; DependsOn?: string | string[] }
>;
type Init = Record<
  string,
  { packages?: Record<string, unknown>; commands?: Record<string, { command: unknown }>; files?: Record<string, { content: unknown }> }
>;

function initOf(resources: Resources): Init {
  return Object.values(resources).find((r) => r.Type === 'AWS::EC2::Instance')!.Metadata!['AWS::CloudFormation::Init'] as Init;
}

function statementsWith(resources: Resources, action: string): { Action: unknown; Resource: unknown }[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .flatMap((r) => (r.Properties!.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement)
    .filter((s) => [s.Action].flat().includes(action));
}

describe('a stack with deploy triggers', () => {
  const { template, stack } = synth();
  const resources = template.Resources as Resources;
  const init = initOf(resources);
  const resolved = (value: unknown): string => JSON.stringify(stack.resolve(value));

  it('installs git (and ssh, for the SSH URL) and creates each deploy.path owned by the service user', () => {
    expect(init.system!.packages).toEqual({ yum: { nodejs22: [], git: [], 'openssh-clients': [], polkit: [] } });
    expect(init.system!.commands!['20-deploy-paths']!.command).toEqual([
      'install',
      '-d',
      '-o',
      'triggler',
      '-g',
      'triggler',
      '-m',
      '0755',
      '/srv/my-app',
      '/srv/site',
      '/srv/site-dev',
    ]);
  });

  it('makes each deploy.path writable for the unit', () => {
    expect(init.receiver!.files!['/etc/systemd/system/triggler-receiver.service.d/50-writable-paths.conf']!.content).toContain(
      'ReadWritePaths=-/srv/my-app -/srv/site -/srv/site-dev\n',
    );
  });

  it('grants codecommit:GitPull on exactly the CodeCommit repository it fetches', () => {
    const statements = statementsWith(resources, 'codecommit:GitPull');
    expect(statements).toHaveLength(1);
    expect(resolved(statements[0]!.Resource)).toBe(
      JSON.stringify({
        'Fn::Join': [
          '',
          ['arn:', { Ref: 'AWS::Partition' }, ':codecommit:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':my-app'],
        ],
      }),
    );
  });

  it('configures the CodeCommit credential helper for the service only', () => {
    const files = init.receiver!.files!;
    expect(resolved(files['/etc/triggler/receiver.env']!.content)).toContain('GIT_CONFIG_GLOBAL=/etc/triggler/gitconfig\\n');
    const gitConfig = resolved(files['/etc/triggler/gitconfig']!.content);
    expect(gitConfig).toContain('[credential \\"https://git-codecommit.');
    expect(gitConfig).toContain('helper = !/usr/bin/aws codecommit credential-helper $@');
    expect(gitConfig).toContain('UseHttpPath = true');
  });

  it('ships the deploy sections in the receiver config, the CodeCommit URL derived from region and repository', () => {
    const receiverConfig = init.receiver!.files!['/etc/triggler/receiver.json']!.content as ReceiverConfig;
    expect(resolved(receiverConfig.triggers[0]!.deploy!.repositoryUrl)).toBe(
      JSON.stringify({ 'Fn::Join': ['', ['https://git-codecommit.', { Ref: 'AWS::Region' }, '.amazonaws.com/v1/repos/my-app']] }),
    );
    expect(receiverConfig.triggers[0]!.deploy).toMatchObject({
      path: '/srv/my-app',
      keepReleases: 5,
      activate: deploy.activate,
      healthCheck: { command: deploy.healthCheck.command, timeoutSeconds: 60, intervalSeconds: 2 },
    });
    expect(receiverConfig.triggers[2]!.deploy!.repositoryUrl).toBe('git@github.com:owner/site.git');
  });

  describe('the SSH webhook repository', () => {
    const keys = Object.entries(resources).filter(([, r]) => r.Type === 'Custom::TrigglerDeployKey');
    const [keyId, key] = keys[0]!;
    const parameterArn = (name: string) =>
      JSON.stringify({
        'Fn::Join': [
          '',
          ['arn:', { Ref: 'AWS::Partition' }, ':ssm:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:parameter${name}`],
        ],
      });

    it('gets one generated deploy key, shared by its two branches', () => {
      expect(keys).toHaveLength(1);
      expect(key.Properties).toMatchObject({
        ParameterName: '/git-triggler/tokens/deploy-keys/owner/site',
        PublicParameterName: '/git-triggler/tokens/deploy-keys/owner/site.pub',
        Comment: 'git-triggler GitTriggler owner/site',
      });
    });

    it("outputs its public half, to paste into the repository's deploy keys read-only", () => {
      const outputs = template.Outputs as Record<string, { Value: unknown; Description: string }>;
      const [outputId, output] = Object.entries(outputs).find(([id]) => id.startsWith('DeployKey'))!;
      expect(outputId).toMatch(/^DeployKeyOwnerSite[0-9a-f]{8}$/);
      expect(output.Value).toEqual({ 'Fn::GetAtt': [keyId, 'PublicKey'] });
      expect(output.Description).toBe(
        "Deploy key of owner/site: add it to the repository's deploy keys at github.com, read-only (no write access). Its private half stays in SSM: /git-triggler/tokens/deploy-keys/owner/site",
      );
      expect(Object.keys(outputs).filter((id) => id.startsWith('DeployKey'))).toHaveLength(1);
    });

    it("the receiver fetches with it: its triggers' deploy.sshKey names it", () => {
      const receiverConfig = init.receiver!.files!['/etc/triggler/receiver.json']!.content as ReceiverConfig;
      expect(receiverConfig.triggers.map((t) => t.deploy?.sshKey)).toEqual([
        undefined,
        undefined,
        'deploy-keys/owner/site',
        'deploy-keys/owner/site',
      ]);
    });

    it('the host may read exactly its private half (and the tokens), never the public half; the key exists before the host', () => {
      const reads = statementsWith(resources, 'ssm:GetParameterHistory');
      expect(reads).toHaveLength(1);
      expect(
        [reads[0]!.Resource]
          .flat()
          .map((arn) => JSON.stringify(stack.resolve(arn)))
          .sort(),
      ).toEqual(
        [
          '/git-triggler/tokens/my-app/main',
          '/git-triggler/tokens/other/main',
          '/git-triggler/tokens/site',
          '/git-triggler/tokens/deploy-keys/owner/site',
        ]
          .map(parameterArn)
          .sort(),
      );
      const instance = Object.values(resources).find((r) => r.Type === 'AWS::EC2::Instance')!;
      expect([instance.DependsOn ?? []].flat()).toContain(keyId);
    });

    it('holds no key material in the template', () => {
      expect(findTokenLikeValues(template as Template, 'GitTriggler')).toEqual([]);
      expect(JSON.stringify(template)).not.toMatch(/PRIVATE KEY|ssh-ed25519 AAAA/);
    });
  });

  it('https and CodeCommit deploys get no key, no key output and no ssh', () => {
    const { template: plain } = synth([
      { repository: 'my-app', branch: 'main', createRepository: true, command: 'make', deploy },
      {
        repository: 'owner/public',
        branch: 'main',
        source: 'webhook',
        command: 'make',
        deploy: { repositoryUrl: 'https://github.com/owner/public.git', path: '/srv/public' },
      },
    ]);
    const plainResources = plain.Resources as Resources;
    expect(Object.values(plainResources).filter((r) => r.Type === 'Custom::TrigglerDeployKey')).toEqual([]);
    expect(Object.keys(plain.Outputs as object).filter((id) => id.startsWith('DeployKey'))).toEqual([]);
    expect(initOf(plainResources).system!.packages).toEqual({ yum: { nodejs22: [], git: [], polkit: [] } });
    expect(JSON.stringify(statementsWith(plainResources, 'ssm:GetParameter'))).not.toContain('deploy-keys');
  });

  it("a trigger's own sshKey: the host may read it, nothing is generated", () => {
    const { template: own, stack: ownStack } = synth([
      {
        repository: 'owner/site',
        branch: 'main',
        source: 'webhook',
        command: 'make',
        deploy: { repositoryUrl: 'git@github.com:owner/site.git', path: '/srv/site', sshKey: 'keys/site' },
      },
    ]);
    const ownResources = own.Resources as Resources;
    expect(Object.values(ownResources).filter((r) => r.Type === 'Custom::TrigglerDeployKey')).toEqual([]);
    const reads = statementsWith(ownResources, 'ssm:GetParameterHistory');
    expect(JSON.stringify(ownStack.resolve(reads[0]!.Resource))).toContain(':parameter/git-triggler/tokens/keys/site"');
    expect(
      (initOf(ownResources).receiver!.files!['/etc/triggler/receiver.json']!.content as ReceiverConfig).triggers[0]!.deploy!.sshKey,
    ).toBe('keys/site');
  });

  it('an SSH host with no pinned keys and no knownHosts is refused at synth, naming the field', () => {
    expect(() =>
      synth([
        {
          repository: 'team/app',
          branch: 'main',
          source: 'webhook',
          command: 'make',
          deploy: { repositoryUrl: 'ssh://git@git.example.com:2222/team/app.git', path: '/srv/app' },
        },
      ]),
    ).toThrow('triggers[0].deploy.knownHosts: is needed for [git.example.com]:2222');
  });

  it('a webhook trigger must name its repositoryUrl', () => {
    expect(() =>
      configOf({ triggers: [{ repository: 'site', branch: 'main', source: 'webhook', command: 'true', deploy: { path: '/srv/site' } }] }),
    ).toThrow('triggers[0].deploy.repositoryUrl: is required for source "webhook"');
  });
});
