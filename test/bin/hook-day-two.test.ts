/**
 * The hook on its second day, with real git pushes to a bare repository: a branch with no trigger
 * sends and keeps nothing; a kept delivery is listed, flushed with the reason it is still kept,
 * and dropped; a hook installed with the receiver's own config and `--wait` shows the run's log and
 * outcome in the push's output (`remote:` lines), and says where to look once its wait is over.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, runCli, startCli, stopCli } from '../support/cli';
import { gitAsPusher } from '../support/git-repo';
import { tempDir } from '../support/receiver-fixture';

const TOKEN = 'whsec_ZGF5IHR3byBob29rIHRlc3QgdG9rZW4gZm9yIHNpdGUh';

describe('the hook on day two', () => {
  const dir = tempDir('triggler-hook-day-two-');
  const bare = join(dir, 'site.git');
  const clone = join(dir, 'clone');
  const tokenFile = join(dir, 'tokens.json');
  const release = join(dir, 'release-slow');

  beforeAll(() => {
    gitAsPusher(dir, 'init', '-q', '--bare', bare);
    gitAsPusher(dir, 'clone', '-q', bare, clone);
    fs.writeFileSync(join(clone, 'README'), 'one\n');
    gitAsPusher(clone, 'add', 'README');
    gitAsPusher(clone, 'commit', '-q', '-m', 'one');
    fs.writeFileSync(tokenFile, JSON.stringify({ 'site/main': TOKEN, 'site/slow': TOKEN }), { mode: 0o600 });
  });
  afterAll(() => {
    // A run still waiting on its file ends, so the receiver stops at once.
    fs.writeFileSync(release, '');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The push's output as git shows the hook's lines (git pads them with spaces). */
  async function push(...refs: string[]): Promise<string> {
    // Not a synchronous child: a receiver started by this test answers the hook meanwhile.
    const { stderr } = await promisify(execFile)('git', ['push', '-q', 'origin', ...refs], {
      cwd: clone,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: clone },
    });
    return stderr
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line.startsWith('remote:'))
      .join('\n');
  }

  const spoolFiles = (): string[] => (fs.existsSync(join(bare, 'triggler-spool')) ? fs.readdirSync(join(bare, 'triggler-spool')) : []);

  it('sends and keeps nothing for a branch with no token named for it, and names why a kept delivery is still kept', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    expect(await runCli(['hook', 'install', '--git-dir', bare, '--url', down, '--token-file', tokenFile])).toMatchObject({ code: 0 });
    gitAsPusher(clone, 'branch', 'feature');
    expect(await push('feature')).toMatch(
      new RegExp(
        `^remote: triggler: feature [0-9a-f]{12}: no trigger for site feature \\(no token named site/feature in ${tokenFile}\\): nothing sent, nothing kept$`,
      ),
    );
    expect(spoolFiles()).toEqual([]);

    expect(await push('main')).toMatch(/^remote: triggler: main [0-9a-f]{12}: receiver unreachable \(ECONNREFUSED\); kept in /);
    const flushed = await runCli(['hook', 'flush', '--git-dir', bare]);
    expect(flushed).toMatchObject({
      code: 1,
      stdout: expect.stringMatching(/^triggler: main [0-9a-f]{12} \(kept since \S+\) still kept: receiver unreachable \(ECONNREFUSED\)\n$/),
    });

    const listed = await runCli(['hook', 'list', '--git-dir', bare, '--json']);
    const [kept] = JSON.parse(listed.stdout) as { id: string; branch: string }[];
    expect(kept).toMatchObject({ branch: 'main', id: expect.stringMatching(/^push_/) });
    expect((await runCli(['hook', 'list', '--git-dir', bare])).stdout).toMatch(
      new RegExp(`^ID +BRANCH +COMMIT +KEPT SINCE +PUSHER\\n${kept!.id} +main `),
    );
    expect(await runCli(['hook', 'drop', '--git-dir', bare, 'push_nosuch'])).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('not kept in'),
    });
    expect(await runCli(['hook', 'drop', '--git-dir', bare, kept!.id])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^dropped 1 kept delivery: main [0-9a-f]{12}\n$/),
    });
    expect(spoolFiles()).toEqual([]);
    expect(await runCli(['hook', 'flush', '--git-dir', bare])).toMatchObject({ code: 0 });
    expect((await runCli(['hook', 'list', '--git-dir', bare])).stdout).toMatch(/^nothing kept in /);
  }, 120_000);

  it("with --config and --wait, a push shows its run's log and outcome; a run longer than the wait is left with where to look", async () => {
    const [listenPort, adminPort] = [await freePort(), await freePort()];
    const configFile = join(dir, 'receiver.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: listenPort },
        admin: { host: '127.0.0.1', port: adminPort },
        stateDir: join(dir, 'state'),
        tokens: { file: tokenFile },
        triggers: [
          { repository: 'site', branch: 'main', command: 'echo "building $TRIGGLER_COMMIT"; echo "built"' },
          {
            repository: 'site',
            branch: 'slow',
            command: `echo "waiting for the release"; while [ ! -f ${release} ]; do sleep 0.05; done; echo released`,
          },
        ],
      }),
      { mode: 0o600 },
    );
    const receiver = await startCli(['serve', '--config', configFile], /receiver listening/);
    try {
      expect(await runCli(['hook', 'install', '--force', '--git-dir', bare, '--config', configFile, '--wait'])).toMatchObject({
        code: 0,
        stdout: expect.stringContaining(
          `now go to http://127.0.0.1:${listenPort}; each push shows its run (through http://127.0.0.1:${adminPort}`,
        ),
      });
      fs.writeFileSync(join(clone, 'README'), 'two\n');
      gitAsPusher(clone, 'commit', '-q', '-a', '-m', 'two');
      const head = gitAsPusher(clone, 'rev-parse', 'HEAD');
      const shown = await push('main');
      const lines = shown.split('\n');
      expect(lines[0]).toMatch(/^remote: triggler: main [0-9a-f]{12}: accepted, run (r_\S+)$/);
      const run = /run (r_\S+)$/.exec(lines[0]!)![1]!;
      expect(lines).toContain(`remote: triggler: following run ${run} of main ${head.slice(0, 12)}`);
      expect(lines).toContain(`remote: building ${head}`);
      expect(lines).toContain('remote: built');
      expect(lines.at(-1)).toBe(`remote: triggler: run ${run} succeeded (exit 0)`);

      // No trigger in the config: nothing sent or kept, nothing followed.
      gitAsPusher(clone, 'branch', 'other');
      expect(await push('other')).toMatch(
        new RegExp(`^remote: triggler: other [0-9a-f]{12}: no trigger for site other in ${configFile}: nothing sent, nothing kept$`),
      );

      expect(await runCli(['hook', 'install', '--git-dir', bare, '--config', configFile, '--wait', '--wait-timeout', '1'])).toMatchObject({
        code: 0,
      });
      gitAsPusher(clone, 'branch', 'slow');
      const slow = (await push('slow')).split('\n');
      const slowRun = /run (r_\S+)$/.exec(slow[0]!)![1]!;
      expect(slow).toContain('remote: waiting for the release');
      expect(slow.at(-1)).toBe(
        `remote: triggler: run ${slowRun} has not ended within the hook's wait (1 s); it goes on: see it with: triggler runs --log ${slowRun}   (or http://127.0.0.1:${adminPort}/runs/${slowRun})`,
      );
      expect(spoolFiles()).toEqual([]);
    } finally {
      fs.writeFileSync(release, '');
      await stopCli(receiver.child);
    }
  }, 120_000);
});
