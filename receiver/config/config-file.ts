/** Reading the receiver config from disk: paths in it are relative to the file. */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, parseJsonWithComments, unreadable } from './config-errors';
import { commandRunnerPathWarnings } from './startup-problems';
import { parseReceiverConfig, type ReceiverConfig } from './schema';

export interface LoadedConfig {
  config: ReceiverConfig;
  /** Things worth saying at start-up that do not stop it. */
  warnings: string[];
}

/** Reads a config file: JSON, with `//` and `/* *\/` comments allowed. */
export function loadReceiverConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const tried = resolve(path) === path ? path : `${path} (${resolve(path)})`;
    const hint = (error as NodeJS.ErrnoException).code === 'ENOENT' ? '; `triggler init` writes a starter config and token file' : '';
    throw new ConfigError(`cannot read config ${tried}: ${unreadable(error)}${hint}`, [], { cause: error });
  }
  const raw = parseJsonWithComments(text, `config ${path}`);
  const config = parseReceiverConfig(raw, `config ${path}`);
  const base = dirname(resolve(path));
  config.stateDir = resolve(base, config.stateDir);
  if (config.tokens.file) config.tokens.file = resolve(base, config.tokens.file);
  if (config.listen.tls) config.listen.tls = { cert: resolve(base, config.listen.tls.cert), key: resolve(base, config.listen.tls.key) };
  for (const trigger of config.triggers) if (trigger.cwd) trigger.cwd = resolve(base, trigger.cwd);

  const warnings = commandRunnerPathWarnings(config);
  const mode = statSync(path).mode;
  if (config.triggers.some((t) => t.token !== undefined) && (mode & 0o044) !== 0) {
    warnings.push(
      `config ${path} holds inline tokens and others can read it (mode ${(mode & 0o777).toString(8)}): chmod 600 it, or move the tokens to tokens.file`,
    );
  }
  return { config, warnings };
}
