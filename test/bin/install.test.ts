/**
 * The packed tarball installed globally into a temporary prefix: `triggler` runs from any
 * directory without tsx or the clone, and a new user's first four commands work as init says.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { freePort, ROOT, runCli, startCli, stopCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

describe('the packed CLI, installed anywhere', () => {
  const dir = tempDir('triggler-install-');
  const prefix = join(dir, 'prefix');
  const work = join(dir, 'somewhere-else');
  const triggler = join(prefix, 'bin', 'triggler');
  // Only the installed CLI and node on PATH: nothing of the clone.
  const env = { PATH: `${join(prefix, 'bin')}:${join(process.execPath, '..')}:/usr/bin:/bin`, HOME: dir };
  const program = [triggler];

  beforeAll(() => {
    execFileSync('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT, stdio: 'pipe' });
    const [tarball] = fs.readdirSync(dir).filter((name) => name.endsWith('.tgz'));
    execFileSync('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', join(dir, tarball!)], {
      cwd: dir,
      stdio: 'pipe',
      env: { ...process.env, npm_config_offline: 'true' },
    });
    fs.mkdirSync(work);
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('ships the bundle, not the TypeScript, and needs no dependency', () => {
    const installed = join(prefix, 'lib', 'node_modules', 'git-triggler');
    expect(fs.existsSync(join(installed, 'dist', 'triggler.js'))).toBe(true);
    expect(fs.existsSync(join(installed, 'bin', 'triggler-cli.ts'))).toBe(false);
    expect(fs.existsSync(join(installed, 'node_modules'))).toBe(false);
  });

  it('prints its version from any directory', async () => {
    const version = JSON.parse(fs.readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
    expect(await runCli(['--version'], { cwd: work, env, program })).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('init, check, serve and send --wait, as init says', async () => {
    const port = await freePort();
    const init = await runCli(['init', '--port', String(port), '--repository', 'site', '--branch', 'main'], { cwd: work, env, program });
    expect(init.code).toBe(0);
    expect(init.stdout).toContain('triggler check --config receiver.json');
    expect(fs.statSync(join(work, 'tokens.json')).mode & 0o777).toBe(0o600);
    expect(await runCli(['init'], { cwd: work, env, program })).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('exists already: init never overwrites'),
    });

    const check = await runCli(['check', '--config', 'receiver.json'], { cwd: work, env, program });
    expect(check).toMatchObject({ code: 0, stdout: expect.stringContaining('is valid: 1 trigger (site@main)') });

    const serve = await startCli(['serve', '--config', 'receiver.json'], /receiver listening/, { cwd: work, env, program });
    try {
      const sent = await runCli(['send', 'site', 'main', '--config', 'receiver.json', '--wait'], { cwd: work, env, program });
      expect(sent.code).toBe(0);
      expect(sent.stdout).toMatch(/-> 202/);
      // Outside a git repository and without --commit, the delivery names no commit (never forty zeros).
      expect(sent.stdout).toMatch(/run r_\S+ succeeded \(exit 0\)\ndeploying site main at \n/);
    } finally {
      await stopCli(serve.child);
    }
    // Not a terminal: JSON lines.
    expect(JSON.parse(serve.output().split('\n')[0]!)).toMatchObject({ msg: expect.any(String) });
  }, 60_000);
});
