/**
 * `triggler serve` alone: what the package's `triggler` runs for `serve` once built (bin/triggler.js),
 * so a long-running receiver holds none of the other commands' code. The same command as
 * `triggler serve` in the whole CLI (./serve-command).
 */
import { Command } from 'commander';
import { serveCommand } from './serve-command';
import { VERSION } from './version';

new Command()
  .name('triggler')
  .version(VERSION, '-V, --version', 'print the version')
  .showHelpAfterError()
  .addCommand(serveCommand())
  .parseAsync()
  .catch((error: unknown) => {
    process.stderr.write(`triggler: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
