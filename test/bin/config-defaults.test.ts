/**
 * Where `triggler init` put the config, the other commands find it: `check`, `serve`, `send` and
 * `runs` without `--config` use ./receiver.json; `runs` with none says it found no receiver rather
 * than "no runs yet"; `send` without `--commit` sends HEAD inside a repository and no commit
 * outside one (never forty zeros). The real CLI in a directory of the test's own.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { freePort, runCli, startCli, stopCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

describe('the config init writes, found without --config', () => {
  const dir = tempDir('triggler-config-defaults-');
  const work = join(dir, 'work');
  const empty = join(dir, 'empty');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('check, serve, send and runs use ./receiver.json; runs elsewhere says it found no receiver', async () => {
    fs.mkdirSync(work);
    fs.mkdirSync(empty);
    const port = await freePort();
    const env = { PATH: process.env.PATH, HOME: dir };
    expect(await runCli(['init', '--repository', 'app', '--port', String(port)], { cwd: work, env })).toMatchObject({ code: 0 });
    const stateDir = join(work, 'state');

    // With ./receiver.json here but no receiver run yet: its state directory is named, not "no runs yet".
    const before = await runCli(['runs'], { cwd: work, env });
    expect(before).toMatchObject({
      code: 1,
      stderr: `triggler: the state directory ${stateDir} (stateDir of receiver.json) does not exist, and the admin listener http://127.0.0.1:${port + 1} does not answer: no receiver has run with it yet\n`,
    });
    const nowhere = await runCli(['runs', '--admin', `http://127.0.0.1:${await freePort()}`], { cwd: empty, env });
    expect(nowhere).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(
        /^triggler: found no receiver: no --config and no \.\/receiver\.json here, the admin listener http:\/\/127\.0\.0\.1:\d+ does not answer, and \/var\/lib\/triggler does not exist; pass --config/,
      ),
    });

    expect(await runCli(['check'], { cwd: work, env })).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^config receiver\.json is valid: 1 trigger \(app@main\)/),
    });
    expect(await runCli(['check'], { cwd: empty, env })).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('cannot read config receiver.json'),
    });

    const receiver = await startCli(['serve', '--log-format', 'json'], /receiver listening/, { cwd: work, env });
    try {
      // Not a git repository: no commit at all.
      const outside = await runCli(['send', 'app', 'main', '--wait'], { cwd: work, env });
      expect(outside).toMatchObject({
        code: 0,
        stderr: expect.stringContaining('no --commit and no git repository here: the delivery names no commit'),
      });
      expect(outside.stdout).toMatch(/-> 202\n/);

      execFileSync('git', ['init', '-q'], { cwd: work, env });
      execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'one'], {
        cwd: work,
        env,
      });
      const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: work, env, encoding: 'utf8' }).trim();
      const inside = await runCli(['send', 'app', 'main', '--wait'], { cwd: work, env });
      expect(inside).toMatchObject({ code: 0, stderr: expect.stringContaining(`commit ${head}: HEAD of the repository here`) });

      const listed = await runCli(['runs', '--json'], { cwd: work, env });
      const runs = JSON.parse(listed.stdout) as { commit: string }[];
      expect(runs.map((run) => run.commit)).toEqual([head, '']);
    } finally {
      await stopCli(receiver.child);
    }
  }, 120_000);
});
