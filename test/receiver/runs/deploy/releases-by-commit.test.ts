/**
 * Releases by commit, shared paths, and a deploy split into prepare and switch runs: real git, a
 * real bare repository, the real runner and a real child process for every step.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deploySchema } from '../../../../receiver/config/deploy-schema';
import { describeReleases, ReleaseLayout } from '../../../../receiver/runs/deploy/release-layout';
import type { RunAction, RunRecord } from '../../../../receiver/runs/run-record';
import { deployFixtureEach } from '../../../support/deploy-fixture';
import { logText, waitFor } from '../../../support/runner-harness';

describe('releases by commit', () => {
  const app = deployFixtureEach();
  const { start, push, finished, layout, currentFile } = app;

  const rerun = async (run: RunRecord, rebuild = false): Promise<RunRecord> =>
    finished((await app.runner.rerun(run.id, { rebuild })).runId);
  const own = async (action: RunAction): Promise<RunRecord> => finished((await app.runner.requestRun('app', 'main', action)).runId);
  const releaseIds = async (): Promise<string[]> => (await layout().list()).map((release) => release.id);

  it('a re-run of a commit switches to its good release instead of building a copy; --rebuild builds one', async () => {
    // Counts the builds: a reused release runs no command.
    await start('echo built >> "$TRIGGLER_DEPLOY_PATH/builds"');
    const v1 = await push(app.repo.commit({ v: '1' }));
    const v2 = await push(app.repo.commit({ v: '2' }));
    const again = await rerun(v2);
    expect(again).toMatchObject({ status: 'succeeded', deploy: { release: v2.deploy!.release, commit: v2.deploy!.commit } });
    expect(await logText(app.runner, again)).toContain(`current is releases/${v2.deploy!.release} already: nothing to switch`);
    const back = await rerun(v1);
    expect(back).toMatchObject({ status: 'succeeded', deploy: { release: v1.deploy!.release, previousRelease: v2.deploy!.release } });
    expect(await layout().current()).toBe(v1.deploy!.release);
    expect(await releaseIds()).toEqual([v1.deploy!.release, v2.deploy!.release]);
    expect(fs.readFileSync(path.join(app.deployPath, 'builds'), 'utf8')).toBe('built\nbuilt\n');
    const rebuilt = await rerun(v1, true);
    expect(rebuilt.status).toBe('succeeded');
    expect(rebuilt.deploy!.release).not.toBe(v1.deploy!.release);
    expect(rebuilt.deploy!.commit).toBe(v1.deploy!.commit);
    expect(await layout().current()).toBe(rebuilt.deploy!.release);
    expect(fs.readFileSync(path.join(app.deployPath, 'builds'), 'utf8')).toBe('built\nbuilt\nbuilt\n');
  });

  it('a plain rollback goes to the newest good release of another commit', async () => {
    await start('true');
    const v1 = await push(app.repo.commit({ v: '1' }));
    const v2 = await push(app.repo.commit({ v: '2' }));
    // A second release of v2, current now: the rollback must not stop at the first one.
    const copy = await rerun(v2, true);
    expect(await layout().current()).toBe(copy.deploy!.release);
    const rollback = await own({ type: 'rollback' });
    expect(rollback).toMatchObject({ status: 'succeeded', deploy: { release: v1.deploy!.release } });
    expect(currentFile('v')).toBe('1');
  });

  it("keepReleases counts good releases: a failed build takes no good one's place, and leaves with the oldest good one kept", async () => {
    await start('test ! -f broken', { keepReleases: 3 });
    const v1 = await push(app.repo.commit({ v: '1' }));
    const v2 = await push(app.repo.commit({ v: '2' }));
    const broken = await push(app.repo.commit({ broken: 'yes' }));
    expect(broken.status).toBe('failed');
    const v4 = await push(app.repo.commit({ broken: null, v: '4' }));
    const ids = (...runs: RunRecord[]): string[] => runs.map((run) => run.deploy!.release!);
    expect(await releaseIds()).toEqual(ids(v1, v2, broken, v4));
    const v5 = await push(app.repo.commit({ v: '5' }));
    expect(await releaseIds()).toEqual(ids(v2, broken, v4, v5));
    const v6 = await push(app.repo.commit({ v: '6' }));
    expect(await releaseIds()).toEqual(ids(v4, v5, v6));
  });

  it('releases are listed newest first with what each is: current, previous, good, failed, rolled-back', async () => {
    await start('test ! -f broken', { healthCheck: { command: 'test ! -f unhealthy', timeoutSeconds: 1, intervalSeconds: 1 } });
    const v1 = await push(app.repo.commit({ v: '1' }));
    const v2 = await push(app.repo.commit({ v: '2' }));
    const v3 = await push(app.repo.commit({ v: '3' }));
    const failed = await push(app.repo.commit({ broken: 'yes' }));
    const unhealthy = await push(app.repo.commit({ broken: null, unhealthy: 'yes' }));
    expect(unhealthy.status).toBe('rolled-back');
    const listed = describeReleases(await layout().list()).map((release) => [release.id, release.status]);
    expect(listed).toEqual([
      [unhealthy.deploy!.release, 'rolled-back'],
      [failed.deploy!.release, 'failed'],
      [v3.deploy!.release, 'current'],
      [v2.deploy!.release, 'previous'],
      [v1.deploy!.release, 'good'],
    ]);
  });

  it('prepare builds a commit without switching, and again reuses it; switch makes it current and checks it', async () => {
    await start('echo built >> "$TRIGGLER_DEPLOY_PATH/builds"', {
      activate: 'echo "$TRIGGLER_RELEASE_DIR" > "$TRIGGLER_DEPLOY_PATH/activated"',
      healthCheck: { command: 'test ! -f unhealthy', timeoutSeconds: 1, intervalSeconds: 1 },
    });
    const v1 = await push(app.repo.commit({ v: '1' }));
    const v2 = app.repo.commit({ v: '2' });
    const prepared = await own({ type: 'prepare', to: v2 });
    expect(prepared).toMatchObject({
      status: 'succeeded',
      scheme: 'admin',
      commit: v2,
      deploy: { commit: v2, previousRelease: v1.deploy!.release },
    });
    expect(await layout().current()).toBe(v1.deploy!.release);
    expect((await layout().list()).find((release) => release.id === prepared.deploy!.release)?.state).toBe('built');
    const retried = await own({ type: 'prepare', to: v2 });
    expect(retried.deploy!.release).toBe(prepared.deploy!.release);
    expect(await logText(app.runner, retried)).not.toContain('fetch main');
    expect(fs.readFileSync(path.join(app.deployPath, 'builds'), 'utf8')).toBe('built\nbuilt\n');
    const switched = await own({ type: 'switch', to: v2.slice(0, 12) });
    expect(switched).toMatchObject({
      status: 'succeeded',
      deploy: { release: prepared.deploy!.release, commit: v2, previousRelease: v1.deploy!.release },
    });
    expect(currentFile('v')).toBe('2');
    expect(fs.readFileSync(path.join(app.deployPath, 'activated'), 'utf8').trim()).toBe(
      path.join(app.deployPath, 'releases', prepared.deploy!.release!),
    );
    // A commit that fails its health check after the switch: back to the release before, locally.
    const v3 = app.repo.commit({ v: '3', unhealthy: 'yes' });
    expect((await own({ type: 'prepare', to: v3 })).status).toBe('succeeded');
    const bad = await own({ type: 'switch', to: v3 });
    expect(bad.status).toBe('rolled-back');
    expect(await layout().current()).toBe(prepared.deploy!.release);
  });

  it('a switch to a commit nobody prepared fails and switches nothing', async () => {
    await start('true');
    const v1 = await push(app.repo.commit({ v: '1' }));
    const v2 = app.repo.commit({ v: '2' });
    const run = await own({ type: 'switch', to: v2 });
    expect(run).toMatchObject({ status: 'failed', error: `no release of commit ${v2} to switch to: prepare it first` });
    expect(await layout().current()).toBe(v1.deploy!.release);
  });

  it('shared paths survive three deploys and a rollback; what the commit has there is replaced by the link', async () => {
    // Each build appends to the shared log and writes into the shared directory.
    await start('test -f .env && echo "$TRIGGLER_COMMIT" >> storage/log/builds && cat .env > seen-env', {
      shared: ['.env', 'storage/log/', 'uploads/'],
    });
    fs.mkdirSync(path.join(app.deployPath, 'shared'), { recursive: true });
    fs.writeFileSync(path.join(app.deployPath, 'shared', '.env'), 'SECRET=kept\n');
    const runs: RunRecord[] = [];
    runs.push(await push(app.repo.commit({ v: '1' })));
    fs.writeFileSync(path.join(app.deployPath, 'current', 'uploads', 'photo.jpg'), 'uploaded');
    runs.push(await push(app.repo.commit({ v: '2', '.env': 'SECRET=from-the-commit\n' })));
    runs.push(await push(app.repo.commit({ v: '3' })));
    for (const run of runs) expect(run.status).toBe('succeeded');
    expect(await logText(app.runner, runs[1]!)).toContain("shared .env: the commit's own .env is replaced by the link to the shared one");
    expect(await logText(app.runner, runs[0]!)).toContain('shared storage/log/: created empty in shared/storage/log');
    const rollback = await own({ type: 'rollback' });
    expect(rollback.status).toBe('succeeded');
    expect(currentFile('v')).toBe('2');
    expect(currentFile('.env')).toBe('SECRET=kept\n');
    expect(currentFile('seen-env')).toBe('SECRET=kept\n');
    expect(currentFile('uploads/photo.jpg')).toBe('uploaded');
    expect(currentFile('storage/log/builds').trim().split('\n')).toEqual(runs.map((run) => run.deploy!.commit));
    expect(fs.lstatSync(path.join(app.deployPath, 'current', 'uploads')).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(path.join(app.deployPath, 'releases', runs[2]!.deploy!.release!, '.env'))).toBe(
      path.join('..', '..', 'shared', '.env'),
    );
  });

  it('a shared path under a directory the commit holds as a symlink fails the build, and nothing switches', async () => {
    await start('true', { shared: ['config/.env'] });
    const v1 = await push(app.repo.commit({ v: '1' }));
    // A commit whose config is a symlink out of the release: the link must not be made through it.
    fs.mkdirSync(path.join(app.dir, 'elsewhere'));
    fs.symlinkSync(path.join(app.dir, 'elsewhere'), path.join(app.dir, 'work', 'config'));
    const linked = app.repo.commit({ v: '2' });
    const run = await push(linked);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/^shared paths: .*config is a symlink: a shared path may not lead through it$/);
    expect(fs.readdirSync(path.join(app.dir, 'elsewhere'))).toEqual([]);
    expect(await layout().current()).toBe(v1.deploy!.release);
  });

  it('a prepare the receiver was killed in runs again once at the next start: the half-built release is interrupted, the new run builds the commit', async () => {
    const stateDir = path.join(app.dir, 'state');
    const hold = path.join(app.dir, 'hold');
    const started = path.join(app.dir, 'started');
    // Holds the first build until the receiver is killed; the run after the restart finds no hold.
    const trigger = {
      repository: 'app',
      branch: 'main',
      token: 'a-token-of-16-chars-or-more',
      command: `if [ -e '${hold}' ]; then touch '${started}'; exec sleep 60; fi`,
      timeoutSeconds: 30,
      deploy: { repositoryUrl: app.repo.url, path: app.deployPath },
    };
    const commit = app.repo.commit({ v: '1' });
    fs.writeFileSync(hold, '');
    const fixture = path.join(__dirname, 'fixtures', 'prepare-crash.ts');
    const receiver = spawn(process.execPath, ['--require', 'tsx/cjs', fixture, JSON.stringify({ stateDir, trigger, commit, started })], {
      cwd: path.join(__dirname, '..', '..', '..', '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    receiver.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise((resolve) => receiver.once('exit', resolve));
    try {
      await waitFor('the build to start', () => stdout.includes('\n') || receiver.exitCode !== null, 30_000);
      await waitFor('the process group in the journal', () =>
        fs.readFileSync(path.join(stateDir, 'journal.jsonl'), 'utf8').includes('"spawned"'),
      );
    } finally {
      receiver.kill('SIGKILL');
      await exited;
    }
    const { runId: killed } = JSON.parse(stdout) as { runId: string };
    fs.rmSync(hold);

    const runner = await start(trigger.command);
    await runner.idle();
    const again = runner.history.runs(10).find((run) => run.rerunOf === killed)!;
    expect(runner.history.run(killed)?.status).toBe('interrupted');
    expect(again).toMatchObject({ status: 'succeeded', action: { type: 'prepare', to: commit }, deploy: { commit } });
    const releases = await new ReleaseLayout(app.deployPath).list();
    expect(releases.map((release) => release.state)).toEqual(['interrupted', 'built']);
    expect(releases[1]!.id).toBe(again.deploy!.release);
    expect(await new ReleaseLayout(app.deployPath).current()).toBeUndefined();
  }, 60_000);
});

describe('deploy.shared at load', () => {
  const problems = (shared: string[]): string[] => {
    const parsed = deploySchema.safeParse({ repositoryUrl: '/srv/git/app.git', path: '/srv/app', shared });
    return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  };

  it('takes relative files and directories', () => {
    expect(problems(['.env', 'storage/', 'config/database.yml', './uploads/'])).toEqual([]);
  });

  it.each([
    ['/etc/passwd', 'shared.0: must be relative to the release, not absolute'],
    ['../outside', 'shared.0: must not contain ".." (it would leave the release)'],
    ['a/../../b', 'shared.0: must not contain ".." (it would leave the release)'],
    ['./', 'shared.0: must name a path inside the release, not the release itself'],
    ['.git/hooks/', "shared.0: must not be in .git (git keeps the release's checkout there)"],
    ['with space', 'shared.0: must not contain spaces, control characters or backslashes'],
  ])('refuses %s', (entry, problem) => {
    expect(problems([entry])).toEqual([problem]);
  });

  it('refuses a path named twice, or one inside another', () => {
    expect(problems(['logs/', './logs'])).toEqual(['shared: must not name a path twice']);
    expect(problems(['storage/', 'storage/cache/'])).toEqual(['shared: must not name a path inside another one']);
  });
});
