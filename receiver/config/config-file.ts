/** Reading the receiver config from disk: paths in it are relative to the file. */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, parseReceiverConfig, type ReceiverConfig } from './schema';

/** " (at position N)" from a JSON.parse error, without the text V8 quotes. */
export function jsonErrorPosition(error: unknown): string {
  const position = /position (\d+)/.exec(error instanceof Error ? error.message : '');
  return position ? ` (at position ${position[1]})` : '';
}

export interface LoadedConfig {
  config: ReceiverConfig;
  /** Things worth saying at start-up that do not stop it. */
  warnings: string[];
}

export function loadReceiverConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, []);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    // The config may hold inline tokens, and V8's message quotes the text around the fault.
    throw new ConfigError(`config ${path} is not valid JSON${jsonErrorPosition(error)}`, []);
  }
  const config = parseReceiverConfig(raw, `config ${path}`);
  const base = dirname(resolve(path));
  config.stateDir = resolve(base, config.stateDir);
  if (config.tokens.file) config.tokens.file = resolve(base, config.tokens.file);
  for (const trigger of config.triggers) if (trigger.cwd) trigger.cwd = resolve(base, trigger.cwd);

  const warnings: string[] = [];
  const mode = statSync(path).mode;
  if (config.triggers.some((t) => t.token !== undefined) && (mode & 0o044) !== 0) {
    warnings.push(`config ${path} holds inline tokens and others can read it (mode ${(mode & 0o777).toString(8)}): chmod 600 it, or move the tokens to tokens.file`);
  }
  return { config, warnings };
}
