/**
 * A deploy checks its directory again: when a symlink made after the config loaded points one
 * trigger's deploy path at another's, the deploy fails naming both triggers and touches nothing.
 * Real git, real runner.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ReleaseLayout } from '../../../../receiver/runs/deploy/release-layout';
import type { Runner } from '../../../../receiver/runs/runner';
import { makeDelivery, makeStateDir, makeTrigger, openRunner, removeDir } from '../../../support/runner-harness';
import { sourceRepo } from '../../../support/git-repo';

describe("a deploy path that a symlink joined to another trigger's", () => {
  let dir: string;
  let runner: Runner | undefined;

  beforeEach(() => {
    dir = makeStateDir();
  });
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
    removeDir(dir);
  });

  it("fails the deploy, naming both triggers, and leaves the other trigger's releases alone", async () => {
    const repo = sourceRepo(dir);
    const site = path.join(dir, 'srv', 'site');
    const alias = path.join(dir, 'srv', 'site-alias');
    const deploying = (repository: string, deployPath: string) =>
      makeTrigger({ repository, command: 'true', deploy: { repositoryUrl: repo.url, path: deployPath } });
    ({ runner } = await openRunner({ stateDir: path.join(dir, 'state'), triggers: [deploying('app', site), deploying('blog', alias)] }));
    const commit = repo.commit({ v: '1' });
    const { runId: first } = await runner.accept(makeDelivery({ repository: 'app', commit }));
    await runner.idle();
    expect(runner.history.run(first)?.status).toBe('succeeded');
    const before = await new ReleaseLayout(site).list();

    fs.symlinkSync(site, alias);
    const { runId: second } = await runner.accept(makeDelivery({ repository: 'blog', commit }));
    await runner.idle();
    expect(runner.history.run(second)).toMatchObject({
      status: 'failed',
      error: `the deploy.path of blog main (${alias}) is the deploy.path of app main (${site}) (${alias} resolves to ${fs.realpathSync(site)}): the two would overwrite each other's releases and current, so nothing was deployed; give each trigger its own directory`,
    });
    expect(await new ReleaseLayout(site).list()).toEqual(before);
  });
});
