/**
 * The receiver config the stack ships to the host (`/etc/triggler/receiver.json`), generated from
 * the stack config. Tokens and deploy keys stay in SSM: the file names the prefix and their names,
 * never a secret.
 */
import type { ReceiverConfigInput } from '../../receiver/config/schema';
import { sshKeyOf } from './deploy-keys';
import type { StackConfig, StackTrigger } from './schema';

/** Where the receiver keeps its journal and run logs; the systemd unit makes it its state directory. */
export const RECEIVER_STATE_DIR = '/var/lib/triggler';

/** What the generated config takes from where it is deployed rather than from the stack config. */
export interface ReceiverHostSettings extends Pick<ReceiverConfigInput, 'notify'> {
  /** The stack's region (a CloudFormation reference at synth), which CodeCommit clone URLs name. */
  readonly region: string;
}

export function receiverConfigFor(config: StackConfig, host: ReceiverHostSettings): ReceiverConfigInput {
  const { region, ...extra } = host;
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
      rerunInterrupted: trigger.rerunInterrupted,
      ...(trigger.deploy === undefined ? {} : { deploy: deployOf(trigger, trigger.deploy, region) }),
    })),
  };
}

/** A trigger's deploy section as the receiver takes it: the URL filled in, and the key it fetches with (its own or the generated one). */
function deployOf(
  trigger: StackTrigger,
  deploy: NonNullable<StackTrigger['deploy']>,
  region: string,
): NonNullable<ReceiverConfigInput['triggers'][number]['deploy']> {
  const sshKey = sshKeyOf(trigger);
  return {
    ...deploy,
    repositoryUrl: deploy.repositoryUrl ?? codeCommitUrl(trigger.repository, region),
    ...(sshKey === undefined ? {} : { sshKey }),
  };
}

/** The HTTPS clone URL of a CodeCommit repository in a region (the credential helper signs for it). */
export function codeCommitUrl(repository: string, region: string): string {
  return `https://git-codecommit.${region}.amazonaws.com/v1/repos/${repository}`;
}
