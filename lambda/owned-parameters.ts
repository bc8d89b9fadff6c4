/**
 * The SSM writes the secrets provider makes for tokens and deploy keys alike: a parameter is
 * written only when absent and tagged as this stack's, and deleted only when it carries that tag.
 * A value is only ever in a PutParameter request: never in an error message or a log line (the
 * SDK's errors carry no request input).
 */
import {
  DeleteParameterCommand,
  ListTagsForResourceCommand,
  PutParameterCommand,
  type ParameterType,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { errorName } from './custom-resource';
import type { Logger } from './log';

/** Marks a parameter this stack created; its value is the stack id. */
export const OWNER_TAG_KEY = 'git-triggler:stack';

export interface ParameterWrite {
  type: ParameterType;
  description: string;
  /** What the parameter holds, as errors and log lines name it ("token", "deploy key"). */
  what: string;
}

export interface OwnedParameters {
  /** Writes the value unless the parameter exists; 'kept' when it does. */
  writeIfAbsent(name: string, value: string, write: ParameterWrite, stackId: string): Promise<'created' | 'kept'>;
  /** Deletes the parameter when this stack created it; keeps any other, and a missing one is no error. */
  deleteOurs(name: string, stackId: string, what: string): Promise<void>;
}

export function ownedParameters(ssm: SSMClient, log: Logger): OwnedParameters {
  async function createdByStack(name: string, stackId: string): Promise<boolean | 'missing'> {
    try {
      const { TagList } = await ssm.send(new ListTagsForResourceCommand({ ResourceType: 'Parameter', ResourceId: name }));
      return (TagList ?? []).some((tag) => tag.Key === OWNER_TAG_KEY && tag.Value === stackId);
    } catch (error) {
      if (errorName(error) === 'InvalidResourceId' || errorName(error) === 'ParameterNotFound') return 'missing';
      throw error;
    }
  }

  return {
    async writeIfAbsent(name, value, write, stackId) {
      try {
        await ssm.send(
          new PutParameterCommand({
            Name: name,
            Value: value,
            Type: write.type,
            Overwrite: false,
            Description: write.description,
            Tags: [{ Key: OWNER_TAG_KEY, Value: stackId }],
          }),
        );
        return 'created';
      } catch (error) {
        if (errorName(error) === 'ParameterAlreadyExists') return 'kept';
        throw new Error(`could not write ${write.what} parameter ${name}: ${errorName(error)}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    },

    async deleteOurs(name, stackId, what) {
      const ours = await createdByStack(name, stackId);
      if (ours === 'missing') {
        log.info({ parameter: name }, `${what} parameter already gone`);
        return;
      }
      if (!ours) {
        log.info({ parameter: name }, `${what} parameter was not created by this stack; kept`);
        return;
      }
      try {
        await ssm.send(new DeleteParameterCommand({ Name: name }));
        log.info({ parameter: name }, `${what} parameter deleted`);
      } catch (error) {
        if (errorName(error) !== 'ParameterNotFound') throw error;
      }
    },
  };
}
