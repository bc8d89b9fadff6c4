/**
 * Custom-resource handler (CDK Provider framework `onEvent`) that generates the trigger tokens and
 * writes them to SSM Parameter Store as SecureStrings, so no token ever appears in a template,
 * an asset, an output or an environment variable.
 *
 * - Create and Update write each listed token **only when absent** (`Overwrite: false`): a token
 *   rotated with `triggler tokens rotate` survives every later deploy.
 * - A token the stack creates carries the tag `git-triggler:stack = <stack id>`; Delete removes
 *   only parameters with that tag (never one that existed before), unless RetainOnDelete is true.
 * - Tokens of triggers removed from the config are left in place on Update: a token may have been
 *   pasted into a provider's webhook settings, and an Update can still roll back. A new Prefix is
 *   the same: the tokens are written under it and the old parameters stay (the physical id never
 *   changes on Update, so CloudFormation sends no Delete for the old prefix).
 *
 * The token value exists only in the PutParameter request: it is never returned in Data or the
 * physical id, and never logged.
 */
import { newToken } from '../protocol/token';
import {
  DeleteParameterCommand,
  ListTagsForResourceCommand,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { z } from 'zod';
import { errorName, readResourceProperties, type ProviderResponse } from './custom-resource';
import { createLambdaLogger, type Logger } from './log';

/** Marks a parameter this stack created; its value is the stack id. */
export const OWNER_TAG_KEY = 'git-triggler:stack';

const propertiesSchema = z.object({
  Prefix: z.string().regex(/^\/[A-Za-z0-9_.\-/]*[^/]$/, 'must start with / and not end with /'),
  TokenNames: z.array(z.string().min(1, 'must not be empty')).min(1, 'must name at least one token'),
  // CloudFormation hands every scalar property over as a string.
  RetainOnDelete: z.enum(['true', 'false']).transform((value) => value === 'true'),
});

type TokenProperties = z.output<typeof propertiesSchema>;

function readProperties(raw: unknown, which: string): TokenProperties {
  return readResourceProperties(propertiesSchema, raw, which, 'token');
}

export function createTokenProvider(ssm: SSMClient, log: Logger) {
  async function writeIfAbsent(parameterName: string, stackId: string): Promise<'created' | 'kept'> {
    try {
      await ssm.send(
        new PutParameterCommand({
          Name: parameterName,
          Value: newToken(),
          Type: 'SecureString',
          Overwrite: false,
          Description: 'git-triggler trigger token (rotate with: npx triggler tokens rotate)',
          Tags: [{ Key: OWNER_TAG_KEY, Value: stackId }],
        }),
      );
      return 'created';
    } catch (error) {
      if (errorName(error) === 'ParameterAlreadyExists') return 'kept';
      // The SDK's error carries no request input, so the message cannot hold the token.
      throw new Error(`could not write token parameter ${parameterName}: ${errorName(error)}: ${(error as Error).message}`, { cause: error });
    }
  }

  async function createdByStack(parameterName: string, stackId: string): Promise<boolean | 'missing'> {
    try {
      const { TagList } = await ssm.send(new ListTagsForResourceCommand({ ResourceType: 'Parameter', ResourceId: parameterName }));
      return (TagList ?? []).some((tag) => tag.Key === OWNER_TAG_KEY && tag.Value === stackId);
    } catch (error) {
      if (errorName(error) === 'InvalidResourceId' || errorName(error) === 'ParameterNotFound') return 'missing';
      throw error;
    }
  }

  async function deleteOurs(parameterName: string, stackId: string): Promise<void> {
    const ours = await createdByStack(parameterName, stackId);
    if (ours === 'missing') {
      log.info({ parameter: parameterName }, 'token parameter already gone');
      return;
    }
    if (!ours) {
      log.info({ parameter: parameterName }, 'token parameter was not created by this stack; kept');
      return;
    }
    try {
      await ssm.send(new DeleteParameterCommand({ Name: parameterName }));
      log.info({ parameter: parameterName }, 'token parameter deleted');
    } catch (error) {
      if (errorName(error) !== 'ParameterNotFound') throw error;
    }
  }

  return async function onEvent(event: CloudFormationCustomResourceEvent): Promise<ProviderResponse> {
    if (event.RequestType === 'Delete' && !propertiesSchema.safeParse(event.ResourceProperties).success) {
      // Properties this handler refuses made the Create fail before anything was written; failing
      // the rollback's Delete too would leave the stack stuck in ROLLBACK_FAILED.
      log.warn({ requestType: event.RequestType }, 'delete of a resource whose properties were never valid: nothing to remove');
      return { PhysicalResourceId: event.PhysicalResourceId };
    }
    const properties = readProperties(event.ResourceProperties, 'ResourceProperties');
    const parameterNames = [...new Set(properties.TokenNames)].map((name) => `${properties.Prefix}/${name}`);
    const physicalId = `git-triggler-tokens:${properties.Prefix}`;

    if (event.RequestType === 'Delete') {
      if (properties.RetainOnDelete) {
        log.info({ parameters: parameterNames.length, prefix: properties.Prefix }, 'tokens retained on delete');
      } else {
        for (const name of parameterNames) await deleteOurs(name, event.StackId);
      }
      return { PhysicalResourceId: event.PhysicalResourceId };
    }

    let created = 0;
    for (const name of parameterNames) {
      const outcome = await writeIfAbsent(name, event.StackId);
      if (outcome === 'created') created += 1;
      log.info({ parameter: name, outcome }, outcome === 'created' ? 'token created' : 'token exists; kept');
    }
    log.info({ requestType: event.RequestType, prefix: properties.Prefix, created, kept: parameterNames.length - created }, 'tokens in place');
    // An Update keeps the physical id, whatever the prefix: a new one would make CloudFormation
    // delete the old resource, and that delete would remove every token under the old prefix.
    return { PhysicalResourceId: event.RequestType === 'Update' ? event.PhysicalResourceId : physicalId };
  };
}

export const handler = createTokenProvider(new SSMClient({ maxAttempts: 8 }), createLambdaLogger());
