/**
 * Deploy runs against real git: a real bare repository with commits made here, the real runner,
 * real child processes for every step (fetch, worktree, command, activate, health check).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunRecord } from '../../../../receiver/runs/run-record';
import { deployFixtureEach } from '../../../support/deploy-fixture';
import { git, sourceRepo } from '../../../support/git-repo';
import { logText, makeDelivery, waitFor } from '../../../support/runner-harness';

describe('deploy runs', () => {
  const app = deployFixtureEach();
  const { start, push, layout, currentFile } = app;

  /** A command that runs until the test opens the gate: a run lasts as long as the test needs, however slow the machine. */
  const gatePath = (): string => path.join(app.dir, 'gate');
  const gatedCommand = (): string => `while [ ! -e '${gatePath()}' ]; do sleep 0.05; done`;
  const openGate = (): void => fs.writeFileSync(gatePath(), '');
  const closeGate = (): void => fs.rmSync(gatePath(), { force: true });

  it('lays out the first commit as a release, runs the command in it and points current at it', async () => {
    const first = app.repo.commit({ 'index.html': 'one' });
    await start('printf "%s|%s|%s|%s" "$PWD" "$TRIGGLER_RELEASE_DIR" "$TRIGGLER_PREVIOUS_RELEASE_DIR" "$TRIGGLER_DEPLOY_PATH" > vars.txt');
    const run = await push(first);
    expect(run.status).toBe('succeeded');
    expect(run.deploy?.commit).toBe(first);
    expect(run.deploy?.release).toMatch(new RegExp(`^\\d{8}-\\d{6}-\\d{3}-${first.slice(0, 12)}$`));
    const releaseDir = path.join(app.deployPath, 'releases', run.deploy!.release!);
    expect(currentFile('index.html')).toBe('one');
    expect(fs.readlinkSync(path.join(app.deployPath, 'current'))).toBe(`releases/${run.deploy!.release}`);
    expect(currentFile('vars.txt')).toBe(`${releaseDir}|${releaseDir}||${app.deployPath}`);
    expect(fs.existsSync(path.join(app.deployPath, 'repo.git', 'HEAD'))).toBe(true);
    const log = await logText(app.runner, run);
    for (const step of ['create mirror', 'fetch main', 'lay out release', 'command', `current -> releases/${run.deploy!.release}`])
      expect(log).toContain(step);
    // git's safe config is one word in the log, not ten settings on every git line.
    expect(log).toContain(`fetch main: git <safe config> --git-dir=${path.join(app.deployPath, 'repo.git')} fetch --no-tags`);
    expect(log).not.toContain('core.hooksPath');
    expect(log).toMatch(/\[triggler \d{4}-\d\d-\d\dT[\d:.]+Z\] command: ok \(\d+\.\ds\)/);
  });

  it('a second push becomes a new release; the command sees the one before', async () => {
    await start('printf "%s" "$TRIGGLER_PREVIOUS_RELEASE_DIR" > previous.txt');
    const first = await push(app.repo.commit({ 'index.html': 'one' }));
    const second = await push(app.repo.commit({ 'index.html': 'two' }));
    expect(second.status).toBe('succeeded');
    expect(second.deploy?.previousRelease).toBe(first.deploy?.release);
    expect(currentFile('index.html')).toBe('two');
    expect(currentFile('previous.txt')).toBe(path.join(app.deployPath, 'releases', first.deploy!.release!));
    const releases = await layout().list();
    expect(releases.map((r) => [r.id, r.state, r.current, r.runId])).toEqual([
      [first.deploy!.release, 'live', false, first.id],
      [second.deploy!.release, 'live', true, second.id],
    ]);
  });

  it('a failing command leaves current where it was; the run failed', async () => {
    await start('test -f good');
    const good = await push(app.repo.commit({ good: 'yes' }));
    const bad = await push(app.repo.commit({ good: null }));
    expect(bad.status).toBe('failed');
    expect(bad.exitCode).toBe(1);
    expect(await layout().current()).toBe(good.deploy!.release);
    expect((await layout().list()).find((r) => r.id === bad.deploy!.release)?.state).toBe('failed');
    expect(await logText(app.runner, bad)).toContain('current is unchanged');
  });

  it('a failing health check switches back and activates the release before: rolled-back', async () => {
    await start('true', {
      activate: 'echo "$TRIGGLER_RELEASE_DIR" >> "$TRIGGLER_DEPLOY_PATH/activations"',
      healthCheck: { command: 'test -f healthy', timeoutSeconds: 2, intervalSeconds: 1 },
    });
    const good = await push(app.repo.commit({ healthy: 'yes' }));
    expect(good.status).toBe('succeeded');
    const bad = await push(app.repo.commit({ healthy: null }));
    expect(bad.status).toBe('rolled-back');
    expect(bad.error).toMatch(/^health check failed \(it did not pass within 2s \(2 attempts; .*\)\); current is back at /);
    expect(await layout().current()).toBe(good.deploy!.release);
    const activations = fs.readFileSync(path.join(app.deployPath, 'activations'), 'utf8').trim().split('\n');
    const releaseDir = (id: string | undefined): string => path.join(app.deployPath, 'releases', id!);
    // The good release once, the bad one, then the good one again.
    expect(activations).toEqual([releaseDir(good.deploy!.release), releaseDir(bad.deploy!.release), releaseDir(good.deploy!.release)]);
    const log = await logText(app.runner, bad);
    expect(log).toContain('health check 1: test -f healthy');
    expect(log).toContain('health check 2: test -f healthy');
    expect(log).toContain(`current -> releases/${good.deploy!.release} (back)`);
    expect((await layout().list()).find((r) => r.id === bad.deploy!.release)?.state).toBe('rolled-back');
  });

  it('a failed activate on a first deploy removes current again (there was none before)', async () => {
    await start('true', { activate: 'exit 3' });
    const run = await push(app.repo.commit({ a: '1' }));
    expect(run.status).toBe('rolled-back');
    expect(run.exitCode).toBe(3);
    expect(fs.existsSync(path.join(app.deployPath, 'current'))).toBe(false);
  });

  it('keeps keepReleases releases, never current or the one a rollback returns to', async () => {
    await start('true', { keepReleases: 2 });
    const runs: RunRecord[] = [];
    for (let i = 0; i < 4; i += 1) runs.push(await push(app.repo.commit({ n: String(i) })));
    const ids = (await layout().list()).map((r) => r.id);
    expect(ids).toEqual([runs[2]!.deploy!.release, runs[3]!.deploy!.release]);
    expect(fs.readdirSync(path.join(app.deployPath, 'releases')).sort()).toEqual(ids);
    // The mirror forgot the removed worktrees.
    expect(fs.readdirSync(path.join(app.deployPath, 'repo.git', 'worktrees')).sort()).toEqual(ids);
  });

  it('a commit the remote does not have fails naming it, and nothing switches', async () => {
    await start('true');
    const good = await push(app.repo.commit({ a: '1' }));
    const missing = 'd'.repeat(40);
    const run = await push(missing);
    expect(run.status).toBe('failed');
    expect(run.error).toBe(`the remote ${app.repo.url} does not have commit ${missing}; nothing was switched`);
    expect(await layout().current()).toBe(good.deploy!.release);
  });

  it('a remote that cannot be read at all fails as such, not as a missing commit, and nothing switches', async () => {
    const gone = path.join(app.dir, 'no-such-repo.git');
    await start('true', { repositoryUrl: gone });
    const run = await push(app.repo.commit({ a: '1' }));
    expect(run.status).toBe('failed');
    expect(run.error).toBe(`cannot fetch from ${gone} (the log has git's reason); nothing was switched`);
    expect(await layout().current()).toBeUndefined();
  });

  it('runs no hook planted in the mirror, and fetches or checks out no submodule the commit names', async () => {
    await start('true');
    await push(app.repo.commit({ a: '1' }));
    // A post-checkout hook in the mirror, as anyone who could write there might leave one.
    const marker = path.join(app.dir, 'hook-ran');
    const hook = path.join(app.deployPath, 'repo.git', 'hooks', 'post-checkout');
    fs.mkdirSync(path.dirname(hook), { recursive: true });
    fs.writeFileSync(hook, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
    // A commit whose tree names a submodule (a gitlink and its .gitmodules entry).
    fs.mkdirSync(path.join(app.dir, 'inner'));
    const inner = sourceRepo(path.join(app.dir, 'inner'));
    inner.commit({ secret: 'from the submodule' });
    const work = path.join(app.dir, 'work');
    // A repository inside the work tree: `git add` records it as a gitlink.
    git(work, 'clone', '--quiet', inner.url, 'lib');
    const withSubmodule = app.repo.commit({ '.gitmodules': `[submodule "lib"]\n\tpath = lib\n\turl = ${inner.url}\n` });
    expect(git(work, 'ls-tree', withSubmodule, 'lib')).toContain('160000 commit');

    const run = await push(withSubmodule);
    expect(run.status).toBe('succeeded');
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.readdirSync(path.join(app.deployPath, 'current', 'lib'))).toEqual([]);
  });

  it('a push without a commit (the seed scheme) deploys the branch tip and records which commit that was', async () => {
    await start('printf "%s" "$TRIGGLER_COMMIT" > commit.txt');
    const tip = app.repo.commit({ a: '1' });
    const run = await push('');
    expect(run.status).toBe('succeeded');
    expect(run.deploy?.commit).toBe(tip);
    expect(currentFile('commit.txt')).toBe(tip);
    // What people know the commit by, read from the mirror once the fetch named it.
    expect(run.deploy).toMatchObject({ subject: 'commit 1', author: 'test' });
  });

  it('a burst of pushes during a deploy is one more release, of the newest commit', async () => {
    await start(gatedCommand());
    const first = app.repo.commit({ n: '0' });
    const { runId } = await app.runner.accept(makeDelivery({ commit: first }));
    await waitFor('the first deploy to run', () => app.runner.history.run(runId)?.status === 'running');
    let newest = '';
    const later = [];
    for (let i = 1; i <= 20; i += 1) {
      newest = app.repo.commit({ n: String(i) });
      later.push(await app.runner.accept(makeDelivery({ commit: newest })));
    }
    expect(app.runner.history.run(runId)?.status).toBe('running');
    openGate();
    await app.runner.idle();
    expect(new Set(later.map((r) => r.runId)).size).toBe(1);
    const releases = await layout().list();
    expect(releases.map((r) => r.commit)).toEqual([first, newest]);
    expect(releases.at(-1)?.current).toBe(true);
  });

  it('a rollback run switches back to the release before current, runs activate and the health check', async () => {
    await start('true', {
      activate: 'echo "$TRIGGLER_RELEASE_DIR" >> "$TRIGGLER_DEPLOY_PATH/activations"',
      healthCheck: { command: 'true' },
    });
    const first = await push(app.repo.commit({ v: '1' }));
    await push(app.repo.commit({ v: '2' }));
    const { runId } = await app.runner.requestRun('app', 'main', { type: 'rollback' });
    await app.runner.idle();
    const rollback = app.runner.history.run(runId)!;
    expect(rollback.status).toBe('succeeded');
    expect(rollback.scheme).toBe('admin');
    expect(rollback.deploy?.release).toBe(first.deploy!.release);
    // The commit it returned to, by its subject too: a rollback fetches nothing, the mirror has it.
    expect(rollback.deploy).toMatchObject({ commit: first.deploy!.commit, subject: 'commit 1', author: 'test' });
    expect(currentFile('v')).toBe('1');
    expect(fs.readFileSync(path.join(app.deployPath, 'activations'), 'utf8').trim().split('\n').at(-1)).toBe(
      path.join(app.deployPath, 'releases', first.deploy!.release!),
    );
    // Nothing older is live: a second rollback has nowhere to go.
    const { runId: again } = await app.runner.requestRun('app', 'main', { type: 'rollback' });
    await app.runner.idle();
    expect(app.runner.history.run(again)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^no live release older than current/),
    });
    // --to by commit goes forward again.
    const { runId: forward } = await app.runner.requestRun('app', 'main', {
      type: 'rollback',
      to: (await layout().list())[1]!.commit.slice(0, 7),
    });
    await app.runner.idle();
    expect(app.runner.history.run(forward)?.status).toBe('succeeded');
    expect(currentFile('v')).toBe('2');
  });

  it('a rollback to a release whose command failed is refused, by its id or its commit, saying so', async () => {
    await start('test -e broken && exit 1; true');
    await push(app.repo.commit({ v: '1' }));
    const broken = await push(app.repo.commit({ broken: 'yes' }));
    expect(broken.status).toBe('failed');
    const failed = (await layout().list()).find((release) => release.commit === broken.deploy!.commit)!;
    expect(failed.state).toBe('failed');
    const current = await layout().current();
    for (const to of [failed.id, failed.commit.slice(0, 7)]) {
      const { runId } = await app.runner.requestRun('app', 'main', { type: 'rollback', to });
      await app.runner.idle();
      expect(app.runner.history.run(runId)).toMatchObject({
        status: 'failed',
        error: `release ${failed.id} (commit ${failed.commit.slice(0, 12)}) is failed: its command did not succeed there, so it cannot be made current (see triggler releases)`,
      });
    }
    expect(await layout().current()).toBe(current);
  });

  async function rollbackTo(to: string): Promise<RunRecord> {
    const { runId } = await app.runner.requestRun('app', 'main', { type: 'rollback', to });
    await app.runner.idle();
    return app.runner.history.run(runId)!;
  }

  it('a release whose build the receiver was stopped in is interrupted after the restart; a rollback to it is refused', async () => {
    // The command waits while the commit holds `slow`, until the test removes the file it waits on.
    const waiting = `if [ -e slow ]; then touch "${app.dir}/started"; while [ -e "${app.dir}/hold" ]; do sleep 0.05; done; fi`;
    await start(waiting, {}, { rerunInterrupted: false });
    expect((await push(app.repo.commit({ v: '1' }))).status).toBe('succeeded');
    fs.writeFileSync(path.join(app.dir, 'hold'), '');
    const killedCommit = app.repo.commit({ v: '2', slow: 'yes' });
    await app.runner.accept(makeDelivery({ commit: killedCommit }));
    await waitFor('the build to start', () => fs.existsSync(path.join(app.dir, 'started')));
    await app.runner.close();
    fs.rmSync(path.join(app.dir, 'hold'));
    await start(waiting, {}, { rerunInterrupted: false });
    // Any run of the trigger recovers first: a rollback to the current release does, and changes nothing.
    const current = await layout().current();
    await rollbackTo(current!);
    const killed = (await layout().list()).find((release) => release.commit === killedCommit)!;
    expect(killed.state).toBe('interrupted');
    for (const to of [killed.id, killedCommit.slice(0, 7)]) {
      expect(await rollbackTo(to)).toMatchObject({
        status: 'failed',
        error: `release ${killed.id} (commit ${killedCommit.slice(0, 12)}) is interrupted: its command did not succeed there, so it cannot be made current (see triggler releases)`,
      });
    }
    expect(await layout().current()).toBe(current);
  });

  it('a rollback to a release directory the manifest does not know is refused', async () => {
    await start('true');
    expect((await push(app.repo.commit({ v: '1' }))).status).toBe('succeeded');
    const current = await layout().current();
    const stray = '20200101-000000-000-0123456789ab';
    fs.mkdirSync(layout().releaseDir(stray));
    expect(await rollbackTo(stray)).toMatchObject({
      status: 'failed',
      error: `release ${stray} (not in releases.json) is interrupted: its command did not succeed there, so it cannot be made current (see triggler releases)`,
    });
    expect(await layout().current()).toBe(current);
  });

  it('a push arriving while a rollback waits does not join it', async () => {
    await start(gatedCommand());
    openGate();
    await push(app.repo.commit({ v: '1' }));
    closeGate();
    const { runId: running } = await app.runner.accept(makeDelivery({ commit: app.repo.commit({ v: '2' }) }));
    await waitFor('the deploy to run', () => app.runner.history.run(running)?.status === 'running');
    const { runId: rollback } = await app.runner.requestRun('app', 'main', { type: 'rollback' });
    const after = await app.runner.accept(makeDelivery({ commit: app.repo.commit({ v: '3' }) }));
    expect(after.runId).not.toBe(rollback);
    expect(after.coalesced).toBe(false);
    expect(app.runner.history.run(rollback)?.status).toBe('pending');
    openGate();
    await app.runner.idle();
    expect(app.runner.history.run(rollback)?.status).toBe('succeeded');
    expect(currentFile('v')).toBe('3');
  });
});
