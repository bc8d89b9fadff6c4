/**
 * `triggler serve`: the receiver in the foreground. Its own module, so the serve-only entry
 * (./triggler-serve.ts) carries it without the CLI's other commands.
 */
import { Command, Option } from 'commander';
import { reportStartupError, serve } from '../receiver';
import { watchConfig } from './config-watch';

/** Where `triggler init` writes the config: the commands that read one use it when it is here and no --config is given. */
export const DEFAULT_CONFIG = 'receiver.json';

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the receiver in the foreground (SIGHUP reloads the config and the token file)')
    .option('-c, --config <file>', 'receiver config (JSON, comments allowed)', DEFAULT_CONFIG)
    .addOption(
      new Option('--log-format <format>', 'json lines, or pretty lines for people (auto: pretty on a terminal, json otherwise)')
        .choices(['auto', 'json', 'pretty'])
        .default('auto'),
    )
    .option(
      '-w, --watch',
      'reload when the config file (or its token file) changes, as SIGHUP does: a config that is not valid is refused whole and the running one stays',
    )
    .action(async (options: { config: string; logFormat: 'auto' | 'json' | 'pretty'; watch?: boolean }) => {
      process.env.TRIGGLER_LOG_FORMAT = options.logFormat === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : options.logFormat;
      const receiver = await serve(options.config).catch((error: unknown) => reportStartupError(error, options.config));
      // Only the process that owns the receiver reloads it (a delivery worker of a clustered one returns none).
      if (options.watch && receiver)
        watchConfig(options.config, (files) => process.stderr.write(`watching ${files.join(' and ')}: a change reloads the receiver\n`));
    });
}
