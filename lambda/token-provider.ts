/**
 * Custom-resource handler (CDK Provider framework `onEvent`) for the secrets the stack generates
 * in SSM Parameter Store, so no secret ever appears in a template, an asset, an output or an
 * environment variable. It serves two resource types, told apart by `ResourceType`:
 * `Custom::TrigglerTokens` (below) and `Custom::TrigglerDeployKey` (./deploy-key-provider.ts).
 *
 * The trigger tokens:
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
import { SSMClient } from '@aws-sdk/client-ssm';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { z } from 'zod';
import { booleanPropertySchema, parameterPathSchema, readResourceProperties, type ProviderResponse } from './custom-resource';
import { createDeployKeyProvider, DEPLOY_KEY_RESOURCE_TYPE } from './deploy-key-provider';
import { createLambdaLogger, type Logger } from './log';
import { ownedParameters, type OwnedParameters } from './owned-parameters';

export { OWNER_TAG_KEY } from './owned-parameters';

/** The resource type the stack gives the trigger tokens (lib/constructs/trigger-tokens.ts). */
export const TOKENS_RESOURCE_TYPE = 'Custom::TrigglerTokens';

const propertiesSchema = z.object({
  Prefix: parameterPathSchema,
  TokenNames: z.array(z.string().min(1, 'must not be empty')).min(1, 'must name at least one token'),
  RetainOnDelete: booleanPropertySchema,
});

const TOKEN = {
  type: 'SecureString',
  description: 'git-triggler trigger token (rotate with: npx triggler tokens rotate)',
  what: 'token',
} as const;

function createTokensHandler(log: Logger, parameters: OwnedParameters) {
  return async function onTokensEvent(event: CloudFormationCustomResourceEvent): Promise<ProviderResponse> {
    if (event.RequestType === 'Delete' && !propertiesSchema.safeParse(event.ResourceProperties).success) {
      // Properties this handler refuses made the Create fail before anything was written; failing
      // the rollback's Delete too would leave the stack stuck in ROLLBACK_FAILED.
      log.warn({ requestType: event.RequestType }, 'delete of a resource whose properties were never valid: nothing to remove');
      return { PhysicalResourceId: event.PhysicalResourceId };
    }
    const properties = readResourceProperties(propertiesSchema, event.ResourceProperties, 'ResourceProperties', 'token');
    const parameterNames = [...new Set(properties.TokenNames)].map((name) => `${properties.Prefix}/${name}`);
    const physicalId = `git-triggler-tokens:${properties.Prefix}`;

    if (event.RequestType === 'Delete') {
      if (properties.RetainOnDelete) {
        log.info({ parameters: parameterNames.length, prefix: properties.Prefix }, 'tokens retained on delete');
      } else {
        for (const name of parameterNames) await parameters.deleteOurs(name, event.StackId, 'token');
      }
      return { PhysicalResourceId: event.PhysicalResourceId };
    }

    let created = 0;
    for (const name of parameterNames) {
      const outcome = await parameters.writeIfAbsent(name, newToken(), TOKEN, event.StackId);
      if (outcome === 'created') created += 1;
      log.info({ parameter: name, outcome }, outcome === 'created' ? 'token created' : 'token exists; kept');
    }
    log.info(
      { requestType: event.RequestType, prefix: properties.Prefix, created, kept: parameterNames.length - created },
      'tokens in place',
    );
    // An Update keeps the physical id, whatever the prefix: a new one would make CloudFormation
    // delete the old resource, and that delete would remove every token under the old prefix.
    return { PhysicalResourceId: event.RequestType === 'Update' ? event.PhysicalResourceId : physicalId };
  };
}

export interface TokenProviderOptions {
  /**
   * The stack's tokens.prefix as it is now, the only path its role may manage
   * (TRIGGLER_TOKEN_PREFIX). A deploy key outside it was made under an earlier prefix: its Delete
   * keeps it, saying so, rather than fail on a name the role may no longer touch.
   */
  prefix?: string;
}

export function createTokenProvider(ssm: SSMClient, log: Logger, options: TokenProviderOptions = {}) {
  const parameters = ownedParameters(ssm, log);
  const handlers = new Map<string, (event: CloudFormationCustomResourceEvent) => Promise<ProviderResponse>>([
    [TOKENS_RESOURCE_TYPE, createTokensHandler(log, parameters)],
    [DEPLOY_KEY_RESOURCE_TYPE, createDeployKeyProvider(ssm, log, parameters, options.prefix)],
  ]);
  return async function onEvent(event: CloudFormationCustomResourceEvent): Promise<ProviderResponse> {
    const handle = handlers.get(event.ResourceType);
    if (handle) return handle(event);
    if (event.RequestType === 'Delete') {
      // Its Create failed here before anything was written: nothing to remove.
      log.warn({ resourceType: event.ResourceType }, 'delete of a resource type this handler does not serve: nothing to remove');
      return { PhysicalResourceId: event.PhysicalResourceId };
    }
    throw new Error(`this handler serves ${[...handlers.keys()].join(' and ')}, not ${event.ResourceType}`);
  };
}

export const handler = createTokenProvider(new SSMClient({ maxAttempts: 8 }), createLambdaLogger(), {
  prefix: process.env.TRIGGLER_TOKEN_PREFIX || undefined,
});
