/**
 * What a host needs to fetch and lay out the code of triggers with `deploy`: git (Amazon Linux
 * 2023 ships the AWS CLI v2, not git), ssh for an SSH repositoryUrl, each deploy.path owned by the
 * service user and writable for the unit, codecommit:GitPull on exactly the CodeCommit
 * repositories the triggers fetch, and the AWS CLI's credential helper for them, configured for
 * the service only (through GIT_CONFIG_GLOBAL in the unit's environment file).
 */
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { sshTarget } from '../../../protocol';
import type { ReceiverConfig } from '../../../receiver/config/schema';

/**
 * The AL2023 package with the ssh client, which git runs for an SSH URL. Whether the standard
 * AL2023 AMI already carries it could not be confirmed from the package lists AWS publishes (the
 * AL2023 container images do not); cfn-init leaves an installed package alone, so naming it costs
 * nothing where it is there and covers an image (receiver.imageIds) where it is not.
 */
export const SSH_CLIENT_PACKAGE = 'openssh-clients';

/** The service's own git config: the CodeCommit credential helper, nothing else. */
export const GIT_CONFIG_FILE = '/etc/triggler/gitconfig';

const CODECOMMIT_URL = /^https:\/\/git-codecommit\.([^/]+)\.amazonaws\.com\/v1\/repos\/([^/]+)$/;

export interface DeployAccess {
  /** deploy.path of every trigger: created owned by the service user and writable for the unit. */
  paths: string[];
  /** CodeCommit repositories fetched over HTTPS, with their regions. */
  codeCommit: { region: string; repository: string }[];
  /** Whether any deploy fetches over SSH (the host then needs the ssh client). */
  ssh: boolean;
}

export function deployAccessOf(config: ReceiverConfig): DeployAccess {
  const deploys = config.triggers.flatMap((trigger) => (trigger.deploy ? [trigger.deploy] : []));
  const codeCommit = new Map<string, { region: string; repository: string }>();
  for (const deploy of deploys) {
    const match = CODECOMMIT_URL.exec(deploy.repositoryUrl);
    if (match) codeCommit.set(deploy.repositoryUrl, { region: match[1]!, repository: match[2]! });
  }
  return {
    paths: [...new Set(deploys.map((deploy) => deploy.path))],
    codeCommit: [...codeCommit.values()],
    ssh: deploys.some((deploy) => sshTarget(deploy.repositoryUrl) !== undefined),
  };
}

/** cfn-init elements for the `system` config (after the service user exists). */
export function deploySystemSetup(access: DeployAccess, serviceUser: string): ec2.InitElement[] {
  if (access.paths.length === 0) return [];
  return [
    ec2.InitPackage.yum('git'),
    ...(access.ssh ? [ec2.InitPackage.yum(SSH_CLIENT_PACKAGE)] : []),
    ec2.InitCommand.argvCommand(['install', '-d', '-o', serviceUser, '-g', serviceUser, '-m', '0755', ...access.paths], {
      key: '20-deploy-paths',
    }),
  ];
}

/** The git config that points git at the AWS CLI's credential helper for each CodeCommit host. */
export function gitConfigFor(access: DeployAccess): string {
  const hosts = [...new Set(access.codeCommit.map(({ region }) => `https://git-codecommit.${region}.amazonaws.com`))];
  const sections = hosts.map(
    (host) => `[credential "${host}"]\n\thelper = !/usr/bin/aws codecommit credential-helper $@\n\tUseHttpPath = true\n`,
  );
  return `# Written by the git-triggler stack: git of the receiver's deploys signs CodeCommit requests with the instance role.\n${sections.join('')}`;
}

/** codecommit:GitPull on exactly the repositories the triggers fetch. */
export function grantGitPull(scope: Construct, grantee: iam.IGrantable, access: DeployAccess): void {
  if (access.codeCommit.length === 0) return;
  const stack = Stack.of(scope);
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['codecommit:GitPull'],
      resources: access.codeCommit.map(({ region, repository }) =>
        stack.formatArn({ service: 'codecommit', region, resource: repository }),
      ),
    }),
  );
}
