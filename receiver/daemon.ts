/**
 * The receiver as a program of its own: the entry of the bundle the stack installs on the host,
 * `node receiver.js --config /etc/triggler/receiver.json`.
 */
import { reportStartupError, serve } from './main';

const at = process.argv.indexOf('--config');
const configPath = at > 0 ? process.argv[at + 1] : undefined;
if (!configPath) {
  process.stderr.write('usage: node receiver.js --config FILE\n');
  process.exit(2);
}
serve(configPath).catch((error: unknown) => reportStartupError(error, configPath));
