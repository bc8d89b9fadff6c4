/**
 * A stack whose triggers deploy: the host gets git, each deploy.path (owned by the service user,
 * writable for the unit), codecommit:GitPull on exactly the fetched repositories, and the
 * CodeCommit credential helper for the service; the receiver config carries the deploy sections.
 */
import { Stack } from 'aws-cdk-lib';
import { Template as Assertions } from 'aws-cdk-lib/assertions';
import type { ReceiverConfig } from '../../receiver/config/schema';
import { configOf, removeScratch, trigglerApp } from './stack-fixture';

afterAll(removeScratch);

const deploy = { path: '/srv/my-app', activate: 'sudo systemctl restart my-app', healthCheck: { command: 'curl -fsS http://127.0.0.1:8080/health' } };

function synth(): { template: Record<string, unknown>; stack: Stack } {
  const { stack } = trigglerApp(
    configOf({
      triggers: [
        { repository: 'my-app', branch: 'main', createRepository: true, command: 'npm ci && npm run build', deploy },
        { repository: 'other', branch: 'main', command: 'true' },
        { repository: 'owner/site', branch: 'main', source: 'webhook', tokenName: 'site', command: 'true', deploy: { repositoryUrl: 'git@github.com:owner/site.git', path: '/srv/site' } },
      ],
    }),
  );
  return { template: Assertions.fromStack(stack).toJSON(), stack };
}

describe('a stack with deploy triggers', () => {
  const { template, stack } = synth();
  const resources = template.Resources as Record<string, { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> }>;
  const init = Object.values(resources).find((r) => r.Type === 'AWS::EC2::Instance')!.Metadata!['AWS::CloudFormation::Init'] as Record<string, { packages?: Record<string, unknown>; commands?: Record<string, { command: unknown }>; files?: Record<string, { content: unknown }> }>;
  const resolved = (value: unknown): string => JSON.stringify(stack.resolve(value));

  it('installs git and creates each deploy.path owned by the service user', () => {
    expect(init.system!.packages).toEqual({ yum: { nodejs22: [], git: [] } });
    expect(init.system!.commands!['20-deploy-paths']!.command).toEqual(['install', '-d', '-o', 'triggler', '-g', 'triggler', '-m', '0755', '/srv/my-app', '/srv/site']);
  });

  it('makes each deploy.path writable for the unit', () => {
    expect(init.receiver!.files!['/etc/systemd/system/triggler-receiver.service.d/50-writable-paths.conf']!.content).toContain('ReadWritePaths=-/srv/my-app -/srv/site\n');
  });

  it('grants codecommit:GitPull on exactly the CodeCommit repository it fetches', () => {
    const statements = Object.values(resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy')
      .flatMap((r) => (r.Properties!.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement)
      .filter((s) => s.Action === 'codecommit:GitPull');
    expect(statements).toHaveLength(1);
    expect(resolved(statements[0]!.Resource)).toBe(JSON.stringify({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':codecommit:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':my-app']] }));
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
    expect(resolved(receiverConfig.triggers[0]!.deploy!.repositoryUrl)).toBe(JSON.stringify({ 'Fn::Join': ['', ['https://git-codecommit.', { Ref: 'AWS::Region' }, '.amazonaws.com/v1/repos/my-app']] }));
    expect(receiverConfig.triggers[0]!.deploy).toMatchObject({ path: '/srv/my-app', keepReleases: 5, activate: deploy.activate, healthCheck: { command: deploy.healthCheck.command, timeoutSeconds: 60, intervalSeconds: 2 } });
    expect(receiverConfig.triggers[2]!.deploy!.repositoryUrl).toBe('git@github.com:owner/site.git');
  });

  it('a webhook trigger must name its repositoryUrl', () => {
    expect(() => configOf({ triggers: [{ repository: 'site', branch: 'main', source: 'webhook', command: 'true', deploy: { path: '/srv/site' } }] })).toThrow(
      'triggers[0].deploy.repositoryUrl: is required for source "webhook"',
    );
  });
});
