/**
 * The `Custom::TrigglerDeployKey` resource: one repository's deploy key, an ed25519 key pair
 * generated here, never in a template. Its private half goes to SSM as a SecureString (the name the
 * receiver's `deploy.sshKey` reads), its public half beside it as a plain String, and the public
 * half is the resource's `PublicKey` attribute, which the stack outputs for pasting into the
 * provider's deploy keys.
 *
 * - Create and Update write the private half **only when absent** (`Overwrite: false`): a key
 *   replaced by hand survives every later deploy, and so does the one already pasted.
 * - When the private half exists, `PublicKey` is read from the public parameter: this handler never
 *   reads a private key (it has no decrypt rights). A private half with no public one beside it
 *   (a key made by hand, or a public half deleted) fails the deploy, saying how to fix it; a
 *   public parameter that holds anything but one public key line is refused, so nothing else can
 *   reach the stack's outputs.
 * - A new private half always gets its own public half, over a stale one left from an earlier key.
 * - Both carry the tag `git-triggler:stack = <stack id>`; Delete (the stack's, or the repository's
 *   leaving the config) removes only parameters with that tag, unless RetainOnDelete is true.
 * - The physical id is the private half's name: a new name (a new tokens.prefix) is a new key,
 *   and CloudFormation deletes the old one once the update has succeeded.
 *
 * The private key exists only in the PutParameter request: never in Data, the physical id, an
 * error or a log line.
 */
import { GetParameterCommand, PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { z } from 'zod';
import { isPublicKeyLine, newDeployKey } from '../protocol/ssh-keys';
import { booleanPropertySchema, errorName, parameterPathSchema, readResourceProperties, type ProviderResponse } from './custom-resource';
import type { Logger } from './log';
import type { OwnedParameters } from './owned-parameters';

/** The resource type the stack gives a deploy key (lib/constructs/trigger-tokens.ts). */
export const DEPLOY_KEY_RESOURCE_TYPE = 'Custom::TrigglerDeployKey';

const propertiesSchema = z.object({
  ParameterName: parameterPathSchema,
  PublicParameterName: parameterPathSchema,
  /** The key's comment: `git-triggler <stack> <repository>`, in both halves. */
  Comment: z.string().min(1, 'must not be empty').max(512),
  RetainOnDelete: booleanPropertySchema,
});

type KeyProperties = z.output<typeof propertiesSchema>;

const PRIVATE_HALF = {
  type: 'SecureString',
  description: 'git-triggler deploy key: the private half (OpenSSH format), read by the receiver host',
  what: 'deploy key',
} as const;
const PUBLIC_HALF = {
  type: 'String',
  description: "git-triggler deploy key: the public half, for the repository's deploy keys (read-only)",
  what: 'deploy key public half',
} as const;

export function createDeployKeyProvider(ssm: SSMClient, log: Logger, parameters: OwnedParameters, prefix?: string) {
  async function storedPublicKey(properties: KeyProperties): Promise<string> {
    const { ParameterName: name, PublicParameterName: publicName } = properties;
    let value: string | undefined;
    try {
      value = (await ssm.send(new GetParameterCommand({ Name: publicName }))).Parameter?.Value;
    } catch (error) {
      if (errorName(error) !== 'ParameterNotFound') {
        throw new Error(`could not read deploy key public half ${publicName}: ${errorName(error)}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    if (value === undefined) {
      throw new Error(
        `the deploy key ${name} exists but its public half ${publicName} does not, and the stack never reads a private key. Write the public half there as a String parameter (ssh-keygen -y -f <private key file> prints it), or delete ${name} so the next deploy generates a new key`,
      );
    }
    // Never quoted: whatever it is, it is not a public key.
    if (!isPublicKeyLine(value.trim()))
      throw new Error(
        `${publicName} does not hold one OpenSSH public key line ("ssh-ed25519 AAAA... comment"); write the public half of ${name} there`,
      );
    return value.trim();
  }

  /** The key in place, and its public half. */
  async function keyInPlace(properties: KeyProperties, stackId: string): Promise<{ publicKey: string; outcome: 'created' | 'kept' }> {
    const { ParameterName: name, PublicParameterName: publicName } = properties;
    const pair = newDeployKey(properties.Comment);
    if ((await parameters.writeIfAbsent(name, pair.privateKey, PRIVATE_HALF, stackId)) === 'kept') {
      return { publicKey: await storedPublicKey(properties), outcome: 'kept' };
    }
    try {
      await writePublicHalf(publicName, pair.publicKey, stackId);
    } catch (error) {
      // A private half without its public one would fail every later deploy: take it back.
      await parameters.deleteOurs(name, stackId, 'deploy key').catch(() => undefined);
      throw error;
    }
    return { publicKey: pair.publicKey, outcome: 'created' };
  }

  async function writePublicHalf(publicName: string, publicKey: string, stackId: string): Promise<void> {
    if ((await parameters.writeIfAbsent(publicName, publicKey, PUBLIC_HALF, stackId)) === 'created') return;
    // Left from the key this one replaces. Overwrite cannot carry tags: the old ones stay.
    try {
      await ssm.send(
        new PutParameterCommand({
          Name: publicName,
          Value: publicKey,
          Type: 'String',
          Overwrite: true,
          Description: PUBLIC_HALF.description,
        }),
      );
    } catch (error) {
      throw new Error(`could not write ${PUBLIC_HALF.what} parameter ${publicName}: ${errorName(error)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    log.info({ parameter: publicName }, 'deploy key public half replaced: it belonged to an earlier key');
  }

  return async function onDeployKeyEvent(event: CloudFormationCustomResourceEvent): Promise<ProviderResponse> {
    if (event.RequestType === 'Delete' && !propertiesSchema.safeParse(event.ResourceProperties).success) {
      // The Create failed on these properties before anything was written.
      log.warn({ requestType: event.RequestType }, 'delete of a deploy key whose properties were never valid: nothing to remove');
      return { PhysicalResourceId: event.PhysicalResourceId };
    }
    const properties = readResourceProperties(propertiesSchema, event.ResourceProperties, 'ResourceProperties', 'deploy key');
    const { ParameterName: name, PublicParameterName: publicName } = properties;

    if (event.RequestType === 'Delete') {
      if (properties.RetainOnDelete) log.info({ parameter: name }, 'deploy key retained on delete');
      else if (prefix !== undefined && !name.startsWith(`${prefix}/`)) {
        log.warn(
          { parameter: name, prefix },
          'deploy key kept: it is under an earlier tokens.prefix, which this stack no longer manages; delete both halves by hand once no host fetches with it',
        );
      } else for (const parameter of [name, publicName]) await parameters.deleteOurs(parameter, event.StackId, 'deploy key');
      return { PhysicalResourceId: event.PhysicalResourceId };
    }

    const { publicKey, outcome } = await keyInPlace(properties, event.StackId);
    log.info(
      { requestType: event.RequestType, parameter: name, outcome },
      outcome === 'created' ? 'deploy key created' : 'deploy key exists; kept',
    );
    return { PhysicalResourceId: `git-triggler-deploy-key:${name}`, Data: { PublicKey: publicKey } };
  };
}
