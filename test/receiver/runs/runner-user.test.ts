/** Which account a trigger's command runs as: the passwd lookup, and a real run with `user` set. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lookupPasswdUser, parsePasswd } from '../../../receiver/runs/run-as-user';
import type { Runner } from '../../../receiver/runs/runner';
import { sourceRepo } from '../../support/git-repo';
import { logText, makeDelivery, makeStateDir, makeTrigger, openRunner, removeDir } from '../../support/runner-harness';

const fixture = path.join(__dirname, '..', '..', 'support', 'fixtures', 'runner-passwd');

describe('passwd lookup', () => {
  it('reads name, uid, gid, home and shell, and skips comments, short lines, non-numeric ids and NIS lines', () => {
    const accounts = parsePasswd(fs.readFileSync(fixture, 'utf8'));
    expect([...accounts.keys()]).toEqual(['root', 'deploy', 'web']);
    expect(accounts.get('web')).toEqual({ name: 'web', uid: 33, gid: 33, home: '/var/www', shell: '/usr/sbin/nologin' });
  });

  it('takes the first line for a name, as getpwnam does', async () => {
    expect(await lookupPasswdUser('deploy', fixture)).toEqual({
      name: 'deploy',
      uid: 1001,
      gid: 1002,
      home: '/home/deploy',
      shell: '/bin/sh',
    });
  });

  it('finds no account for an unknown name or a skipped line', async () => {
    expect(await lookupPasswdUser('nobody-here', fixture)).toBeUndefined();
    expect(await lookupPasswdUser('bad-uid', fixture)).toBeUndefined();
    expect(await lookupPasswdUser('+nisuser', fixture)).toBeUndefined();
  });

  it('reads CRLF files', () => {
    expect(parsePasswd('ops:x:5:6:Ops:/home/ops:/bin/sh\r\n').get('ops')?.shell).toBe('/bin/sh');
  });
});

describe('running as a user', () => {
  // Whether the receiver can switch users depends on how the tests run; each case checks what must happen then.
  const receiverIsRoot = process.getuid?.() === 0;
  const nobody = parsePasswd(fs.readFileSync('/etc/passwd', 'utf8')).get('nobody');
  let stateDir: string;
  let runner: Runner | undefined;

  beforeEach(() => {
    stateDir = makeStateDir();
  });
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
    removeDir(stateDir);
  });

  it('runs as the named user when the receiver is root, else as the receiver user with one warning at open', async () => {
    if (!nobody) throw new Error('this test needs a "nobody" account in /etc/passwd');
    const opened = await openRunner({
      stateDir,
      triggers: [makeTrigger({ command: 'echo "$(id -u):$(id -g):$HOME:$USER"', cwd: '/', user: 'nobody' })],
    });
    runner = opened.runner;
    const warnings = opened.lines.filter((line) => line.level === 40 && line.msg.includes('not root'));
    const first = await runner.accept(makeDelivery());
    await runner.accept(makeDelivery());
    await runner.idle();
    const [line] = (await logText(runner, first.runId)).trim().split('\n');
    if (receiverIsRoot) {
      expect(line).toBe(`${nobody.uid}:${nobody.gid}:${nobody.home}:nobody`);
      expect(warnings).toEqual([]);
    } else {
      expect(line?.startsWith(`${process.getuid?.()}:`)).toBe(true);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ trigger: 'app@main', user: 'nobody' });
    }
    expect(opened.lines.filter((entry) => entry.level === 40 && entry.msg.includes('not root'))).toHaveLength(warnings.length);
  });

  it('fails the run of an unknown user with a clear error when root, and runs it as the receiver user when not', async () => {
    const opened = await openRunner({ stateDir, triggers: [makeTrigger({ command: 'true', cwd: '/', user: 'no-such-user-anywhere' })] });
    runner = opened.runner;
    const { runId } = await runner.accept(makeDelivery());
    await runner.idle();
    if (receiverIsRoot) {
      expect(runner.history.run(runId)).toMatchObject({ status: 'failed', error: 'user "no-such-user-anywhere" is not in /etc/passwd' });
    } else {
      expect(runner.history.run(runId)?.status).toBe('succeeded');
    }
  });
});

describe('deploying as a user', () => {
  const receiverIsRoot = process.getuid?.() === 0;
  const nobody = parsePasswd(fs.readFileSync('/etc/passwd', 'utf8')).get('nobody');
  let dir: string;
  let runner: Runner | undefined;

  beforeEach(() => {
    dir = makeStateDir();
    // The user must reach the deploy path and the source repository (the state directory stays the receiver's).
    fs.chmodSync(dir, 0o711);
  });
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
    removeDir(dir);
  });

  (receiverIsRoot ? it : it.skip)(
    'under a root receiver, the deploy path and releases belong to the user, who fetches and builds there',
    async () => {
      if (!nobody) throw new Error('this test needs a "nobody" account in /etc/passwd');
      const repo = sourceRepo(dir);
      const deployPath = path.join(dir, 'srv', 'app');
      const commit = repo.commit({ 'index.html': 'as nobody' });
      // git fetches from a local repository only if the fetching user owns it (safe.directory).
      execFileSync('chown', ['-R', `${nobody.uid}:${nobody.gid}`, repo.url]);
      ({ runner } = await openRunner({
        stateDir: path.join(dir, 'state'),
        triggers: [makeTrigger({ command: 'id -u > built-by', user: 'nobody', deploy: { repositoryUrl: repo.url, path: deployPath } })],
      }));
      const { runId } = await runner.accept(makeDelivery({ commit }));
      await runner.idle();
      const run = runner.history.run(runId)!;
      expect({ status: run.status, log: run.status === 'succeeded' ? '' : await logText(runner, run) }).toEqual({
        status: 'succeeded',
        log: '',
      });
      for (const owned of [
        deployPath,
        path.join(deployPath, 'releases'),
        path.join(deployPath, 'repo.git'),
        path.join(deployPath, 'releases', run.deploy!.release!),
      ]) {
        expect([owned, fs.statSync(owned).uid]).toEqual([owned, nobody.uid]);
      }
      expect(fs.readFileSync(path.join(deployPath, 'current', 'built-by'), 'utf8').trim()).toBe(String(nobody.uid));
    },
  );
});
