/**
 * Every push is a new delivery: pushing x -> y, y -> x and x -> y again deploys y again (the
 * third push is accepted, not answered as a repeat of the first). Real git pushes to a bare
 * repository with the installed hook, a real receiver.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { branchPushes } from '../../bin/hook-command';
import { freePort, runCli } from '../support/cli';
import { gitAsPusher } from '../support/git-repo';
import { startTestReceiver, type TestReceiver, tempDir } from '../support/receiver-fixture';

const TOKEN = 'whsec_cHVzaCBpZHMgdGVzdCB0b2tlbiBmb3IgdGhlIHJlY2VpdmVyIQ==';

describe('the hook gives each push its own delivery id', () => {
  let dir: string;
  let receiver: TestReceiver;

  beforeEach(() => {
    dir = tempDir('triggler-hook-ids-');
  });
  afterEach(async () => {
    await receiver?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('two pushes of the same transition get different ids', () => {
    const line = `${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/main`;
    const [first] = branchPushes(line, 'site', new Date().toISOString(), undefined);
    const [again] = branchPushes(line, 'site', new Date().toISOString(), undefined);
    expect(first!.id).toMatch(/^push_[0-9a-f]{32}$/);
    expect(again!.id).not.toBe(first!.id);
  });

  it('a kept push is sent with the id it was given, so sending it again runs nothing', async () => {
    const bare = join(dir, 'site.git');
    const clone = join(dir, 'clone');
    gitAsPusher(dir, 'init', '-q', '--bare', bare);
    gitAsPusher(dir, 'clone', '-q', bare, clone);
    // Installed against a port nothing listens on: the push is kept.
    expect(
      await runCli(['hook', 'install', '--git-dir', bare, '--url', `http://127.0.0.1:${await freePort()}`, '--token-env', 'SITE_TOKEN']),
    ).toMatchObject({ code: 0 });
    fs.writeFileSync(join(clone, 'v'), 'x');
    gitAsPusher(clone, 'add', 'v');
    gitAsPusher(clone, 'commit', '-q', '-m', 'x');
    await promisify(execFile)('git', ['push', 'origin', 'HEAD:main'], {
      cwd: clone,
      env: { PATH: process.env.PATH, HOME: clone, SITE_TOKEN: TOKEN },
    });
    const spool = join(bare, 'triggler-spool');
    const [kept] = fs.readdirSync(spool);
    const keptText = fs.readFileSync(join(spool, kept!), 'utf8');
    const { id } = JSON.parse(keptText) as { id: string };

    receiver = await startTestReceiver({ triggers: [{ repository: 'site', branch: 'main', token: TOKEN, command: 'true' }] }, { dir });
    expect(
      await runCli(['hook', 'install', '--force', '--git-dir', bare, '--url', receiver.url, '--token-env', 'SITE_TOKEN']),
    ).toMatchObject({ code: 0 });
    const flush = () => runCli(['hook', 'flush', '--git-dir', bare], { env: { PATH: process.env.PATH, SITE_TOKEN: TOKEN } });
    expect(await flush()).toMatchObject({ code: 0, stdout: 'triggler: 1 kept delivery sent\n' });
    // As if the receiver's answer had been lost: the same kept push, sent again.
    fs.writeFileSync(join(spool, kept!), keptText);
    expect(await flush()).toMatchObject({ code: 0, stdout: 'triggler: 1 kept delivery sent\n' });
    const runs = await receiver.settledRuns();
    expect(runs.map((run) => run.deliveryIds)).toEqual([[id]]);
  }, 60_000);

  it('x -> y, y -> x, x -> y: each push runs, and the branch ends deployed at y', async () => {
    const ranFile = join(dir, 'ran.txt');
    receiver = await startTestReceiver(
      { triggers: [{ repository: 'site', branch: 'main', token: TOKEN, command: `echo "$TRIGGLER_COMMIT" >> ${ranFile}` }] },
      { dir },
    );
    const bare = join(dir, 'site.git');
    const clone = join(dir, 'clone');
    gitAsPusher(dir, 'init', '-q', '--bare', bare);
    gitAsPusher(dir, 'clone', '-q', bare, clone);
    fs.writeFileSync(join(clone, 'v'), 'x');
    gitAsPusher(clone, 'add', 'v');
    gitAsPusher(clone, 'commit', '-q', '-m', 'x');
    const x = gitAsPusher(clone, 'rev-parse', 'HEAD');
    gitAsPusher(clone, 'push', '-q', 'origin', 'HEAD:main');
    expect(await runCli(['hook', 'install', '--git-dir', bare, '--url', receiver.url, '--token-env', 'SITE_TOKEN'])).toMatchObject({
      code: 0,
    });
    fs.writeFileSync(join(clone, 'v'), 'y');
    gitAsPusher(clone, 'commit', '-q', '-a', '-m', 'y');
    const y = gitAsPusher(clone, 'rev-parse', 'HEAD');

    const lines: string[] = [];
    for (const commit of [y, x, y]) {
      // Not a synchronous child: the receiver answering the hook runs in this process.
      const result = await promisify(execFile)('git', ['push', '--force', 'origin', `${commit}:refs/heads/main`], {
        cwd: clone,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: clone, SITE_TOKEN: TOKEN },
      });
      lines.push(
        result.stderr
          .split('\n')
          .map((line) => line.trimEnd())
          .find((line) => line.startsWith('remote: triggler:')) ?? result.stderr,
      );
      // Each push's run ends before the next push, so none joins another's run.
      await receiver.settledRuns();
    }
    expect(lines).toEqual(
      [y, x, y].map((commit) => expect.stringMatching(new RegExp(`^remote: triggler: main ${commit.slice(0, 12)}: accepted, run r_\\S+$`))),
    );
    expect(fs.readFileSync(ranFile, 'utf8').trim().split('\n')).toEqual([y, x, y]);
  }, 60_000);
});
