/** What loading a config file says when it refuses the file: for the tests of config problems. */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { loadReceiverConfigFile } from '../../../receiver/config/config-file';

/** Writes `text` as a new config file in `dir` (mode 600) and returns the message its load throws; fails if it loads. */
export function configRefusal(dir: string, text: string): { file: string; message: string } {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, text, { mode: 0o600 });
  try {
    loadReceiverConfigFile(file);
  } catch (error) {
    return { file, message: (error as Error).message };
  }
  throw new Error('the config was accepted');
}
