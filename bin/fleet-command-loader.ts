/**
 * `triggler fleet` loads the AWS SDK (Step Functions and Run Command). Its module is required only
 * when the command line names it, so `serve` and every other command start without the SDK; the
 * list of commands still shows it.
 */
import { Command } from 'commander';

export const FLEET_SUMMARY = "a fleet's rollouts on AWS (Step Functions and Run Command): status, history, promote, rollback, rerun";

export function fleetCommandWhenAsked(argv: readonly string[] = process.argv): Command {
  if (argv.slice(2).includes('fleet')) return (require('./fleet-command') as typeof import('./fleet-command')).fleetCommand();
  return new Command('fleet').description(FLEET_SUMMARY).allowUnknownOption().allowExcessArguments();
}
