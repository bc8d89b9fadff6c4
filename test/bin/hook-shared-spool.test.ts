/**
 * A repository shared by a group (`git init --shared=group`), pushed to by two real users while
 * the receiver is down: the second user's hook keeps its push in the spool the first one made,
 * and once the receiver is up either user's next push sends and removes what both kept. Needs
 * root (to create the users and a group; they are removed afterwards); skipped otherwise.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { spoolModes } from '../../bin/hook-spool';
import { freePort, runCli, startCli, stopCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

const TOKEN = 'whsec_c2hhcmVkIHNwb29sIHRlc3QgdG9rZW4gZm9yIHRoZSBob29r';
const asRoot = process.getuid?.() === 0;

describe('the hook spool of a group-shared repository', () => {
  it('is shared as git shares the repository', () => {
    expect(spoolModes(undefined)).toEqual({ directory: 0o700, file: 0o600 });
    expect(spoolModes('umask')).toEqual({ directory: 0o700, file: 0o600 });
    for (const group of ['group', 'true', '1']) expect(spoolModes(group)).toEqual({ directory: 0o2770, file: 0o660 });
    for (const all of ['all', 'everybody', '2']) expect(spoolModes(all)).toEqual({ directory: 0o2775, file: 0o664 });
    expect(spoolModes('0640')).toEqual({ directory: 0o2750, file: 0o640 });
    expect(spoolModes('0660')).toEqual({ directory: 0o2770, file: 0o660 });
  });

  (asRoot ? describe : describe.skip)('two users pushing while the receiver is down', () => {
    const suffix = randomBytes(3).toString('hex');
    const group = `tgshare${suffix}`;
    const users = [`tgalice${suffix}`, `tgbob${suffix}`];
    const dir = tempDir('triggler-shared-hook-');
    const bare = join(dir, 'site.git');
    const ranFile = join(dir, 'ran.txt');
    const created: string[] = [];
    let groupCreated = false;
    let port: number;
    let configFile: string;

    /**
     * Runs git as `user`, with their own groups (runuser sets the supplementary ones) and the token
     * in the variable the hook reads (a token file must be its one reader's); returns stderr, where
     * the hook's line is. TMPDIR keeps what the CLI caches in the test's folder.
     */
    function gitAs(user: string, cwd: string, ...args: string[]): string {
      const result = spawnSync(
        'runuser',
        [
          '-u',
          user,
          '--',
          'env',
          `HOME=${join(dir, user)}`,
          `TMPDIR=${join(dir, user)}`,
          `PATH=${process.env.PATH}`,
          `SITE_HOOK_TOKEN=${TOKEN}`,
          'git',
          '-c',
          `user.name=${user}`,
          '-c',
          'user.email=u@example.com',
          ...args,
        ],
        { cwd, encoding: 'utf8' },
      );
      if (result.status !== 0) throw new Error(`git ${args.join(' ')} as ${user} failed: ${result.stdout}${result.stderr}`);
      return result.stderr;
    }

    function pushAs(user: string, content: string): string {
      const clone = join(dir, user, 'clone');
      fs.writeFileSync(join(clone, 'README'), content);
      execFileSync('chown', [`${user}:`, join(clone, 'README')]);
      gitAs(user, clone, 'add', 'README');
      gitAs(user, clone, 'commit', '-q', '-m', content);
      return gitAs(user, clone, 'push', '-q', 'origin', 'HEAD:main')
        .split('\n')
        .map((line) => line.trimEnd())
        .filter((line) => line.startsWith('remote: triggler:'))
        .join('\n');
    }

    const spoolDir = join(bare, 'triggler-spool');
    const spoolFiles = (): string[] => fs.readdirSync(spoolDir).filter((name) => name.endsWith('.json'));

    beforeAll(async () => {
      execFileSync('groupadd', [group]);
      groupCreated = true;
      for (const user of users) {
        execFileSync('useradd', ['-M', '-s', '/bin/sh', '-G', group, user]);
        created.push(user);
      }
      fs.chmodSync(dir, 0o755);
      execFileSync('git', ['init', '-q', '--bare', '--shared=group', '--initial-branch=main', bare]);
      execFileSync('chgrp', ['-R', group, bare]);
      port = await freePort();
      configFile = join(dir, 'receiver.json');
      fs.writeFileSync(
        configFile,
        JSON.stringify({
          listen: { host: '127.0.0.1', port },
          admin: false,
          stateDir: join(dir, 'state'),
          triggers: [{ repository: 'site', branch: 'main', token: TOKEN, command: `echo "$TRIGGLER_COMMIT" >> ${ranFile}` }],
        }),
        { mode: 0o600 },
      );
      expect(
        await runCli(['hook', 'install', '--git-dir', bare, '--url', `http://127.0.0.1:${port}`, '--token-env', 'SITE_HOOK_TOKEN']),
      ).toMatchObject({ code: 0 });
      for (const user of users) {
        fs.mkdirSync(join(dir, user));
        // Git refuses a repository another user owns unless told it is safe, as a shared repository's users are.
        fs.writeFileSync(join(dir, user, '.gitconfig'), `[safe]\n\tdirectory = ${bare}\n`);
        execFileSync('chown', ['-R', `${user}:`, join(dir, user)]);
        gitAs(user, join(dir, user), 'clone', '-q', bare, 'clone');
      }
    }, 60_000);

    afterAll(() => {
      for (const user of created) spawnSync('userdel', [user]);
      if (groupCreated) spawnSync('groupdel', [group]);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('each user keeps their push in the one spool; either user sends and removes both', async () => {
      const [alice, bob] = users as [string, string];
      expect(pushAs(alice, 'one')).toMatch(/^remote: triggler: main [0-9a-f]{12}: receiver unreachable \(ECONNREFUSED\); kept in /);
      const spool = fs.statSync(spoolDir);
      expect(spool.mode & 0o7777).toBe(0o2770);
      expect(spoolFiles().map((name) => fs.statSync(join(spoolDir, name)).mode & 0o777)).toEqual([0o660]);

      gitAs(bob, join(dir, bob, 'clone'), 'pull', '-q', '--ff-only', 'origin', 'main');
      expect(pushAs(bob, 'two')).toMatch(/^remote: triggler: main [0-9a-f]{12}: receiver unreachable \(ECONNREFUSED\); kept in /);
      expect(spoolFiles()).toHaveLength(2);

      const receiver = await startCli(['serve', '--config', configFile], /receiver listening/);
      try {
        gitAs(alice, join(dir, alice, 'clone'), 'pull', '-q', '--ff-only', 'origin', 'main');
        const sent = pushAs(alice, 'three');
        expect(sent).toMatch(/^remote: triggler: 2 kept deliveries sent; main [0-9a-f]{12}: accepted, run r_\S+$/);
        expect(spoolFiles()).toHaveLength(0);
      } finally {
        await stopCli(receiver.child);
      }
    }, 60_000);
  });
});
