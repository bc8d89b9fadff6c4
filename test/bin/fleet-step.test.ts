/**
 * `triggler fleet-step`: the real CLI asking a real `triggler serve` (its admin listener) for
 * each step as a journaled run, against a real bare repository.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { buildDeliveryRequest } from '../../protocol';
import { NOTHING_TO_ROLL_BACK, type StepResult } from '../../bin/fleet-step';
import { waitForRun } from '../../bin/runs-source';
import type { RunRecord } from '../../receiver';
import { freePort, runCli, startCli, stopCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';
import { sourceRepo, type SourceRepo } from '../support/git-repo';

describe('triggler fleet-step', () => {
  const dir = tempDir();
  const configFile = join(dir, 'receiver.json');
  const deployPath = join(dir, 'srv', 'app');
  let repo: SourceRepo;
  let serve: Awaited<ReturnType<typeof startCli>> | undefined;
  let listenUrl: string;
  let adminUrl: string;
  const token = 'fleet-step-test-token-0123456789';

  beforeAll(async () => {
    repo = sourceRepo(dir);
    const [port, adminPort] = [await freePort(), await freePort()];
    listenUrl = `http://127.0.0.1:${port}`;
    adminUrl = `http://127.0.0.1:${adminPort}`;
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        listen: { host: '127.0.0.1', port },
        admin: { host: '127.0.0.1', port: adminPort },
        stateDir: join(dir, 'state'),
        triggers: [
          {
            repository: 'app',
            branch: 'main',
            token,
            command: 'true',
            timeoutSeconds: 30,
            deploy: {
              repositoryUrl: repo.url,
              path: deployPath,
              healthCheck: { command: 'test ! -f unhealthy', timeoutSeconds: 1, intervalSeconds: 1 },
            },
          },
        ],
      }),
      { mode: 0o600 },
    );
    serve = await startCli(['serve', '--config', configFile], /receiver listening/);
  }, 60_000);
  afterAll(async () => {
    if (serve) await stopCli(serve.child);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function step(...args: string[]): Promise<{ code: number; line: StepResult }> {
    const result = await runCli(['fleet-step', ...args, '--repository', 'app', '--branch', 'main', '--config', configFile]);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    return { code: result.code, line: JSON.parse(lines[0]!) as StepResult };
  }
  const current = (): string => fs.readlinkSync(join(deployPath, 'current'));

  it('prepare builds without switching, switch makes it current, converge deploys a new commit once, rollback goes back', async () => {
    const v1 = repo.commit({ v: '1' });
    const prepared = await step('prepare', '--commit', v1);
    expect(prepared).toEqual({
      code: 0,
      line: {
        status: 'succeeded',
        runId: expect.stringMatching(/^r_/),
        release: expect.stringMatching(new RegExp(`-${v1.slice(0, 12)}$`)),
        commit: v1,
        host: os.hostname(),
      },
    });
    expect(fs.existsSync(join(deployPath, 'current'))).toBe(false);
    const switched = await step('switch', '--commit', v1.slice(0, 7));
    expect(switched.line).toMatchObject({ status: 'succeeded', release: prepared.line.release, commit: v1 });
    expect(current()).toBe(`releases/${prepared.line.release}`);
    // Its first release: a plain rollback has nowhere to go, says so, asks the receiver for no run and leaves current.
    const nowhere = await step('rollback');
    expect(nowhere).toEqual({
      code: 1,
      line: {
        status: NOTHING_TO_ROLL_BACK,
        runId: null,
        release: prepared.line.release,
        commit: v1,
        host: os.hostname(),
        error: `nothing to roll back to: no release older than current (${prepared.line.release}, commit ${v1.slice(0, 12)}) ever went live here with another commit, so the host stays on it`,
      },
    });
    expect(current()).toBe(`releases/${prepared.line.release}`);

    const v2 = repo.commit({ v: '2' });
    const converged = await step('converge', '--commit', v2);
    expect(converged).toMatchObject({ code: 0, line: { status: 'succeeded', commit: v2 } });
    expect(current()).toBe(`releases/${converged.line.release}`);
    // Already current: nothing is asked of the receiver.
    const again = await step('converge', '--commit', v2);
    expect(again).toEqual({
      code: 0,
      line: { status: 'succeeded', runId: null, release: converged.line.release, commit: v2, host: os.hostname() },
    });

    const back = await step('rollback');
    expect(back).toMatchObject({ code: 0, line: { status: 'succeeded', release: prepared.line.release, commit: v1 } });
    expect(current()).toBe(`releases/${prepared.line.release}`);
    // `releases` says the same, newest first.
    const listed = await runCli(['releases', 'app', 'main', '--config', configFile, '--json']);
    expect((JSON.parse(listed.stdout) as { id: string; status: string }[]).map((release) => [release.id, release.status])).toEqual([
      [converged.line.release, 'good'],
      [prepared.line.release, 'current'],
    ]);
  }, 120_000);

  it('a failed step exits non-zero with its status and reason in the line', async () => {
    const before = current();
    const unhealthy = repo.commit({ unhealthy: 'yes' });
    const converged = await step('converge', '--commit', unhealthy);
    expect(converged.code).toBe(1);
    expect(converged.line).toMatchObject({
      status: 'rolled-back',
      commit: unhealthy,
      error: expect.stringMatching(/^health check failed/),
    });
    expect(current()).toBe(before);
    const missing = await step('switch', '--commit', 'abcdef1');
    expect(missing).toMatchObject({
      code: 1,
      line: { status: 'failed', error: 'no release of commit abcdef1 to switch to: prepare it first' },
    });
  }, 120_000);

  it('a push of the current commit re-run switches nothing; rerun --rebuild builds a new release of it', async () => {
    const commit = repo.commit({ v: 'rebuilt', unhealthy: null });
    const converged = await step('converge', '--commit', commit);
    expect(converged.line.status).toBe('succeeded');
    const delivery = buildDeliveryRequest({
      scheme: 'standard',
      token,
      id: 'msg_rebuild',
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit, source: 'test' },
    });
    const answer = await request(`${listenUrl}${delivery.path}`, { method: 'POST', headers: delivery.headers, body: delivery.body! });
    const pushed = ((await answer.body.json()) as { run: { id: string } }).run.id;
    const rerun = async (...flags: string[]): Promise<string> => {
      const queued = await runCli(['rerun', pushed, '--config', configFile, ...flags]);
      expect(queued.code).toBe(0);
      return /^queued run (\S+),/.exec(queued.stdout)![1]!;
    };
    const finished = (runId: string): Promise<RunRecord> => waitForRun(adminUrl, runId, 100);
    expect(await finished(pushed)).toMatchObject({ status: 'succeeded', deploy: { release: converged.line.release } });
    expect(await finished(await rerun())).toMatchObject({ status: 'succeeded', deploy: { release: converged.line.release } });
    const rebuilt = await finished(await rerun('--rebuild'));
    expect(rebuilt.status).toBe('succeeded');
    expect(rebuilt.deploy!.release).not.toBe(converged.line.release);
    expect(current()).toBe(`releases/${rebuilt.deploy!.release}`);
  }, 120_000);

  it.each([
    [['switch', '--repository', 'app;reboot', '--branch', 'main', '--commit', 'abcdef1'], '--repository must be a repository name'],
    [['switch', '--repository', 'app', '--branch', 'main/../x', '--commit', 'abcdef1'], '--branch must be a branch name'],
    [['prepare', '--repository', 'app', '--branch', 'main', '--commit', '$(id)'], '--commit must be a commit id'],
    [['prepare', '--repository', 'app', '--branch', 'main'], '--commit is required for prepare'],
    [
      ['converge', '--repository', 'app', '--branch', 'main', '--commit', 'abcdef1'],
      '--commit must be the whole commit id (40 or 64 hex digits) for converge',
    ],
    [
      ['deploy', '--repository', 'app', '--branch', 'main', '--commit', 'a'.repeat(40)],
      '<step> must be one of prepare, switch, rollback, converge',
    ],
    [['rollback', '--repository', 'app', '--branch', 'main', '--config', 'receiver.json'], '--config must be an absolute path'],
    [['rollback', '--branch', 'main'], "required option '--repository <name>' not specified"],
  ])('refuses %j naming the flag', async (args, problem) => {
    const result = await runCli(['fleet-step', ...args]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(problem);
  });
});
