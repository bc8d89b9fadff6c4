/**
 * triggler: the command line.
 *   init      write a starter receiver config and token file here
 *   check     validate a config, its token file and its paths without starting anything
 *   serve     run the receiver in the foreground
 *   send      send one signed delivery (--wait: and follow its run to the end)
 *   runs      recent runs, or one run: from the receiver's admin listener, else from its state directory (./runs-command)
 *   rerun     queue a run's trigger again with the same newest delivery
 *   deliveries, redeliver   the receiver's recent deliveries, and a new run of an accepted one (./deliveries-commands)
 *   fleet-step  one step of a fleet's rollout on this host (prepare, switch, rollback, converge)
 *   fleet     a fleet's rollouts on AWS: status, rollouts, show, promote, rollback, rerun (./fleet-command)
 *   releases, rollback   a deploy trigger's releases, and switching back to one (./deploy-commands)
 *   hook      a post-receive hook for a bare repository on this server (./hook-command)
 *   service-unit   a hardened systemd unit for this install
 *   tokens    rotate, list and show trigger tokens
 */
import { Command } from 'commander';
import { checkCommand, initCommand } from './init-command';
import { deliveriesCommands } from './deliveries-commands';
import { deployCommands } from './deploy-commands';
import { fleetCommandWhenAsked } from './fleet-command-loader';
import { fleetStepCommand } from './fleet-step';
import { hookCommand } from './hook-command';
import { runsCommand } from './runs-command';
import { locateReceiver, postAdminAction } from './runs-source';
import { sendCommand } from './send-command';
import { serveCommand } from './serve-command';
import { serviceUnitCommand } from './service-unit';
import { tokensCommand } from './tokens-command';
import { VERSION } from './version';

const program = new Command()
  .name('triggler')
  .description('Run a command on your server when a Git branch is pushed.')
  .version(VERSION, '-V, --version', 'print the version')
  .showHelpAfterError();

program.addCommand(initCommand());
program.addCommand(checkCommand());

program.addCommand(serveCommand());

program.addCommand(sendCommand());

program.addCommand(runsCommand());

program
  .command('rerun')
  .description("queue a new run of a run's trigger with the same newest delivery (commit, pusher), through the admin listener")
  .argument('<run-id>')
  .option('-a, --admin <url>', "admin listener URL (default: the config's admin address, else http://127.0.0.1:5001)")
  .option(
    '-c, --config <file>',
    'take the admin address and the state directory from this receiver config (default: ./receiver.json when it is here)',
  )
  .option('-d, --state-dir <dir>', "where the admin credential is (default: the config's, else /var/lib/triggler)")
  .option('--rebuild', 'for a deploy trigger: build a new release of the commit even when it has a good one (default: switch to that one)')
  .addHelpText(
    'after',
    "\nA re-run is a write: it needs the admin credential in <stateDir>/admin-token, which only the receiver's user (or root) can read.\n\nExample:\n  sudo -u triggler triggler rerun r_0mj3k2x1c000a1b2c3d4 --config /etc/triggler/receiver.json",
  )
  .action(async (runId: string, options: { admin?: string; config?: string; stateDir?: string; rebuild?: boolean }) => {
    const queued = await postAdminAction(
      locateReceiver(options),
      'a re-run',
      `/runs/${encodeURIComponent(runId)}/rerun`,
      options.rebuild ? { rebuild: true } : undefined,
    );
    process.stdout.write(`queued run ${queued}, a re-run of ${runId}\n`);
  });

program.addCommand(tokensCommand());
program.addCommand(hookCommand());
program.addCommand(serviceUnitCommand());
program.addCommand(fleetStepCommand());
program.addCommand(fleetCommandWhenAsked());
for (const command of deployCommands()) program.addCommand(command);
for (const command of deliveriesCommands()) program.addCommand(command);

program.parseAsync().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException).code;
  process.stderr.write(`triggler: ${code === 'ECONNREFUSED' ? `cannot connect (${message})` : message}\n`);
  process.exitCode = 1;
});
