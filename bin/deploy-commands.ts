/**
 * `triggler releases` and `triggler rollback`, for triggers with a deploy section.
 *
 *   releases  the releases in a trigger's deploy.path (read from disk), newest first: id, commit,
 *             what it is (current, previous, good, ...), when, the run that made it
 *   rollback  asks the receiver for a rollback run (through its admin listener, with the admin
 *             credential from its state directory), waits for it and prints how it ended
 */
import { Command } from 'commander';
import {
  type DescribedRelease,
  describeReleases,
  loadReceiverConfigFile,
  type ReceiverConfig,
  ReleaseLayout,
  type TriggerConfig,
} from '../receiver';
import { locateReceiver, postAdminAction, waitForRun } from './runs-source';
import { table } from './table';

export function deployTrigger(
  configFile: string,
  repository: string,
  branch: string,
): { trigger: TriggerConfig & { deploy: NonNullable<TriggerConfig['deploy']> }; config: ReceiverConfig } {
  const { config } = loadReceiverConfigFile(configFile);
  const trigger = config.triggers.find((t) => t.repository === repository && t.branch === branch);
  if (!trigger) throw new Error(`${configFile} has no trigger for ${repository} ${branch}`);
  if (!trigger.deploy) throw new Error(`the trigger ${repository} ${branch} in ${configFile} has no deploy section`);
  return { trigger: { ...trigger, deploy: trigger.deploy }, config };
}

function releasesTable(releases: DescribedRelease[]): string {
  const rows = releases.map((r) => [r.id, r.commit.slice(0, 12), r.status, r.createdAt, r.runId]);
  return table(['RELEASE', 'COMMIT', 'STATE', 'CREATED', 'RUN'], rows);
}

export function deployCommands(): Command[] {
  const releases = new Command('releases')
    .description(
      'list the releases of a trigger with deploy, newest first: current, previous (where a plain rollback goes), good, built, failed, rolled-back, interrupted',
    )
    .argument('<repository>')
    .argument('<branch>')
    .requiredOption('-c, --config <file>', 'the receiver config naming the trigger')
    .option('--json', 'print JSON instead of a table')
    .action(async (repository: string, branch: string, options: { config: string; json?: boolean }) => {
      const { trigger } = deployTrigger(options.config, repository, branch);
      const list = describeReleases(await new ReleaseLayout(trigger.deploy.path).list());
      process.stdout.write(
        options.json
          ? `${JSON.stringify(list, null, 2)}\n`
          : list.length
            ? `${releasesTable(list)}\n`
            : `no releases in ${trigger.deploy.path} yet\n`,
      );
    });

  const rollback = new Command('rollback')
    .description(
      'switch a deploy trigger back to an older release, as a run of the receiver (it waits its turn, runs activate and healthCheck)',
    )
    .argument('<repository>')
    .argument('<branch>')
    .requiredOption('-c, --config <file>', 'the receiver config (its stateDir holds the admin credential)')
    .option('--to <release-or-commit>', 'a release id or a commit (default: the newest good release before current of another commit)')
    .option('-a, --admin <url>', "admin listener URL (default: the config's admin address)")
    .option('--no-wait', 'print the run id and return without waiting for it')
    .addHelpText(
      'after',
      "\nNeeds read access to the receiver's state directory (its admin credential): run it as the receiver's user, e.g. sudo -u triggler triggler rollback ...",
    )
    .action(async (repository: string, branch: string, options: { config: string; to?: string; admin?: string; wait: boolean }) => {
      const { config } = deployTrigger(options.config, repository, branch);
      const where = locateReceiver(options, config);
      const runId = await postAdminAction(where, 'a rollback', '/rollback', {
        repository,
        branch,
        ...(options.to === undefined ? {} : { to: options.to }),
      });
      process.stdout.write(`rollback run ${runId} accepted\n`);
      if (!options.wait || !where.admin) return;
      const run = await waitForRun(where.admin, runId);
      process.stdout.write(
        `${run.status}${run.deploy?.release ? `: current is ${run.status === 'succeeded' ? run.deploy.release : (run.deploy.previousRelease ?? 'unchanged')}` : ''}${run.error ? ` (${run.error})` : ''}\n`,
      );
      if (run.status !== 'succeeded') process.exitCode = 1;
    });
  return [releases, rollback];
}
