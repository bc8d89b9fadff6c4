/**
 * Only a release whose command succeeded may become current: a rollback to a release whose build
 * the receiver was stopped in (recorded `interrupted` at the next start), or to a release directory
 * the manifest does not know, is refused and current stays where it was. Real git, real runner.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ReleaseLayout } from '../../../../receiver/runs/deploy/release-layout';
import type { Runner } from '../../../../receiver/runs/runner';
import { makeDelivery, makeStateDir, makeTrigger, openRunner, removeDir, waitFor } from '../../runner-harness';
import { sourceRepo, type SourceRepo } from '../../deploy/git-repo';

describe('which releases may become current', () => {
  let dir: string;
  let repo: SourceRepo;
  let deployPath: string;
  let runner: Runner | undefined;

  beforeEach(() => {
    dir = makeStateDir();
    repo = sourceRepo(dir);
    deployPath = path.join(dir, 'srv', 'app');
  });
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
    removeDir(dir);
  });

  async function open(): Promise<Runner> {
    // The command waits while the commit holds `slow`, until the test removes the file it waits on.
    const command = `if [ -e slow ]; then touch "${dir}/started"; while [ -e "${dir}/hold" ]; do sleep 0.05; done; fi`;
    ({ runner } = await openRunner({
      stateDir: path.join(dir, 'state'),
      triggers: [makeTrigger({ command, timeoutSeconds: 60, rerunInterrupted: false, deploy: { repositoryUrl: repo.url, path: deployPath } })],
    }));
    return runner;
  }

  async function rollbackTo(to: string): Promise<{ status: string; error?: string }> {
    const { runId } = await runner!.requestRun('app', 'main', { type: 'rollback', to });
    await runner!.idle();
    return runner!.history.run(runId)!;
  }

  it('a release whose build was stopped is interrupted after the restart, and a rollback to it is refused', async () => {
    await open();
    const { runId: firstRun } = await runner!.accept(makeDelivery({ commit: repo.commit({ v: '1' }) }));
    await runner!.idle();
    expect(runner!.history.run(firstRun)?.status).toBe('succeeded');
    fs.writeFileSync(path.join(dir, 'hold'), '');
    const killedCommit = repo.commit({ v: '2', slow: 'yes' });
    await runner!.accept(makeDelivery({ commit: killedCommit }));
    await waitFor('the build to start', () => fs.existsSync(path.join(dir, 'started')));
    await runner!.close();
    fs.rmSync(path.join(dir, 'hold'));
    await open();
    // Any run of the trigger recovers first: a rollback to the current release does, and changes nothing.
    const layout = new ReleaseLayout(deployPath);
    const current = await layout.current();
    await rollbackTo(current!);
    const killed = (await layout.list()).find((release) => release.commit === killedCommit)!;
    expect(killed.state).toBe('interrupted');
    for (const to of [killed.id, killedCommit.slice(0, 7)]) {
      expect(await rollbackTo(to)).toMatchObject({
        status: 'failed',
        error: `release ${killed.id} (commit ${killedCommit.slice(0, 12)}) is interrupted: its command did not succeed there, so it cannot be made current (see triggler releases)`,
      });
    }
    expect(await layout.current()).toBe(current);
  });

  it('a release directory the manifest does not know is refused', async () => {
    await open();
    const { runId } = await runner!.accept(makeDelivery({ commit: repo.commit({ v: '1' }) }));
    await runner!.idle();
    expect(runner!.history.run(runId)?.status).toBe('succeeded');
    const layout = new ReleaseLayout(deployPath);
    const current = await layout.current();
    const stray = '20200101-000000-000-0123456789ab';
    fs.mkdirSync(layout.releaseDir(stray));
    expect(await rollbackTo(stray)).toMatchObject({
      status: 'failed',
      error: `release ${stray} (not in releases.json) is interrupted: its command did not succeed there, so it cannot be made current (see triggler releases)`,
    });
    expect(await layout.current()).toBe(current);
  });
});
