/**
 * A bare repository on this server with the hook `triggler hook install` writes: real git pushes,
 * a real receiver started and stopped as a child process. A push while the receiver is down is
 * kept and sent later; every pushed branch runs exactly once.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { freePort, runCli, startCli, stopCli } from '../support/cli';
import { gitAsPusher } from '../support/git-repo';
import { tempDir } from '../support/receiver-fixture';
import { waitFor } from '../support/wait-for';

const TOKEN = 'whsec_aG9vayB0ZXN0IHRva2VuIGZvciB0aGUgcmVjZWl2ZXIh';

describe('triggler hook: pushes to a bare repository on this server', () => {
  const dir = tempDir('triggler-hook-');
  const bare = join(dir, 'srv', 'site.git');
  const clone = join(dir, 'clone');
  const ranFile = join(dir, 'ran.txt');
  let port: number;
  let configFile: string;

  beforeAll(async () => {
    port = await freePort();
    fs.mkdirSync(join(dir, 'srv'));
    gitAsPusher(dir, 'init', '--bare', bare);
    gitAsPusher(dir, 'clone', bare, clone);
    fs.writeFileSync(join(clone, 'README'), 'one\n');
    gitAsPusher(clone, 'add', 'README');
    gitAsPusher(clone, 'commit', '-m', 'one');
    const tokenFile = join(dir, 'hook-tokens.json');
    fs.writeFileSync(tokenFile, JSON.stringify({ 'site/main': TOKEN, 'site/dev': TOKEN, 'site/feature/x': TOKEN }), { mode: 0o600 });
    configFile = join(dir, 'receiver.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        listen: { host: '127.0.0.1', port },
        admin: false,
        stateDir: join(dir, 'state'),
        triggers: ['main', 'dev', 'feature/x'].map((branch) => ({
          repository: 'site',
          branch,
          token: TOKEN,
          command: `echo "$TRIGGLER_BRANCH $TRIGGLER_COMMIT" >> ${ranFile}`,
        })),
      }),
      { mode: 0o600 },
    );
    const installed = await runCli(['hook', 'install', '--git-dir', bare, '--url', `http://127.0.0.1:${port}`, '--token-file', tokenFile]);
    expect(installed).toMatchObject({ code: 0, stdout: expect.stringContaining(`pushes of site now go to http://127.0.0.1:${port}`) });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The hook's line, as git shows it ("remote: triggler: ..."). */
  function hookLine(...refs: string[]): string {
    const result = spawnSync('git', ['push', 'origin', ...refs], {
      cwd: clone,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: clone },
    });
    if (result.status !== 0) throw new Error(`push failed: ${result.stderr}`);
    // git pads the remote's lines with spaces.
    return result.stderr
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line.startsWith('remote: triggler:'))
      .join('\n');
  }

  it('refuses to replace a hook it did not write', async () => {
    const other = join(dir, 'other.git');
    gitAsPusher(dir, 'init', '--bare', other);
    fs.writeFileSync(join(other, 'hooks', 'post-receive'), '#!/bin/sh\necho mine\n', { mode: 0o755 });
    const refused = await runCli(['hook', 'install', '--git-dir', other, '--url', 'http://127.0.0.1:1', '--token-env', 'X']);
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('was not written by triggler: pass --force') });
  });

  it('keeps pushes made while the receiver is down, sends them once it is up, and runs each branch once', async () => {
    gitAsPusher(clone, 'branch', 'dev');
    gitAsPusher(clone, 'branch', 'feature/x');
    gitAsPusher(clone, 'tag', 'v1');
    const down = hookLine('main', 'dev', 'v1');
    expect(down).toMatch(
      /^remote: triggler: main [0-9a-f]{12}: receiver unreachable \(ECONNREFUSED\); kept in .*triggler-spool, sent again on the next push or by triggler hook flush; dev [0-9a-f]{12}: receiver unreachable/,
    );
    expect(fs.readdirSync(join(bare, 'triggler-spool'))).toHaveLength(2);
    expect(fs.existsSync(ranFile)).toBe(false);

    const receiver = await startCli(['serve', '--config', configFile], /receiver listening/);
    try {
      const up = hookLine('feature/x');
      expect(up).toMatch(/^remote: triggler: 2 kept deliveries sent; feature\/x [0-9a-f]{12}: accepted, run r_\S+$/);
      expect(fs.readdirSync(join(bare, 'triggler-spool'))).toHaveLength(0);
      // A flush with nothing kept sends nothing.
      expect(await runCli(['hook', 'flush', '--git-dir', bare])).toMatchObject({
        code: 0,
        stdout: 'triggler: nothing to send (no branch was updated)\n',
      });
      const head = gitAsPusher(clone, 'rev-parse', 'HEAD').trim();
      const ran = () => (fs.existsSync(ranFile) ? fs.readFileSync(ranFile, 'utf8').trim().split('\n').sort() : []);
      await waitFor('three runs', () => ran().length >= 3);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(ran()).toEqual([`dev ${head}`, `feature/x ${head}`, `main ${head}`]);
    } finally {
      await stopCli(receiver.child);
    }
  });

  it('sends nothing for a deleted branch', () => {
    expect(hookLine(':dev')).toBe('remote: triggler: nothing to send (no branch was updated)');
  });
});
