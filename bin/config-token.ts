/**
 * A trigger's token as the receiver's config gives it (inline, a variable, or the config's token
 * file), for the CLI commands that sign a delivery with the receiver's own tokens on its box:
 * `send --config` and the post-receive hook installed with `--config`.
 */
import { tokenNameOf } from '../protocol';
import { readTokenFile, type ReceiverConfig, tokensOfEntry, type TriggerConfig } from '../receiver';

/** The trigger's current token; throws saying where it was looked for. */
export async function configTriggerToken(config: ReceiverConfig, trigger: TriggerConfig, configPath: string): Promise<string> {
  if (trigger.token) return trigger.token;
  const fromEnv = trigger.tokenEnv ? process.env[trigger.tokenEnv] : undefined;
  if (fromEnv) return fromEnv;
  if (config.tokens.file) {
    const [token] = tokensOfEntry((await readTokenFile(config.tokens.file))[tokenNameOf(trigger)], 0, Date.now());
    if (token) return token;
  }
  throw new Error(`cannot read the token of ${trigger.repository} ${trigger.branch} from ${configPath} (SSM tokens: use --token-env)`);
}
