/**
 * The receiver's front door: what the CLI, the CDK app's entry, the scripts and the benches use of
 * it. Everything else in receiver/ is its own business and may move; ESLint keeps bin/, scripts/
 * and bench/ to this module.
 *
 * Only modules that `triggler serve` loads anyway are named here: the token sources and
 * notification publishers that need the AWS SDK are loaded when a config asks for them, never
 * from here.
 */

// Serving: `triggler serve`, and the host's bundle (./daemon).
export { reportStartupError, serve } from './main';

// The receiver config and the files beside it.
export { loadReceiverConfigFile, type LoadedConfig } from './config/config-file';
export { unreadable } from './config/config-errors';
export {
  ConfigError,
  describeZodIssues,
  receiverConfigSchema,
  triggerSchema,
  type ReceiverConfig,
  type TriggerConfig,
} from './config/schema';
export { listenerUrl } from './config/listener-url';
export { configPaths, portProblems } from './config/startup-problems';
export { readTokenFile, tokensOfEntry, type TokenFile } from './tokens/file-token-source';

// The runs, as the admin listener or the state directory shows them.
export { adminAuthorization, readAdminCredential } from './http/admin-credential';
export { isFinal, type RunRecord } from './runs/run-record';
export { commitWords, releaseWords, runCommit, runTime, timeAgo } from './http/run-description';
export { RunReader } from './runs/run-reader';
export { RunStore } from './runs/run-store';
export { StateLock } from './runs/state-lock';
export { Runner } from './runs/runner';
export { type DescribedRelease, describeReleases, ReleaseLayout, type ReleaseListing } from './runs/deploy/release-layout';
