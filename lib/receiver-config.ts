/**
 * The receiver config the stack ships to the host (`/etc/triggler/receiver.json`), generated from
 * the stack config. Tokens stay in SSM: the file names the prefix, never a token.
 */
import { Aws } from 'aws-cdk-lib';
import type { ReceiverConfigInput } from '../receiver/config/schema';
import type { StackConfig } from './config';

/** Where the receiver keeps its journal and run logs; the systemd unit makes it its state directory. */
export const RECEIVER_STATE_DIR = '/var/lib/triggler';

export function receiverConfigFor(config: StackConfig, extra: Pick<ReceiverConfigInput, 'notify'> = {}): ReceiverConfigInput {
  return {
    ...extra,
    // The security group, not the bind address, decides who reaches the port.
    listen: { host: '0.0.0.0', port: config.receiver.port },
    admin: { host: '127.0.0.1', port: config.receiver.adminPort },
    stateDir: RECEIVER_STATE_DIR,
    tokens: {
      ssm: { prefix: config.tokens.prefix, ttlSeconds: config.tokens.cacheSeconds, graceSeconds: config.tokens.graceSeconds },
    },
    log: { level: config.receiver.logLevel },
    triggers: config.triggers.map((trigger) => ({
      repository: trigger.repository,
      branch: trigger.branch,
      command: trigger.command,
      ...(trigger.cwd === undefined ? {} : { cwd: trigger.cwd }),
      timeoutSeconds: trigger.timeoutSeconds,
      ...(trigger.tokenName === undefined ? {} : { tokenName: trigger.tokenName }),
      ...(trigger.iterations === undefined ? {} : { iterations: trigger.iterations }),
      env: trigger.env,
      ...(trigger.deploy === undefined ? {} : { deploy: { ...trigger.deploy, repositoryUrl: trigger.deploy.repositoryUrl ?? codeCommitUrl(trigger.repository) } }),
    })),
  };
}

/** The HTTPS clone URL of a CodeCommit repository in the stack's region (the credential helper signs for it). */
export function codeCommitUrl(repository: string, region: string = Aws.REGION): string {
  return `https://git-codecommit.${region}.amazonaws.com/v1/repos/${repository}`;
}
