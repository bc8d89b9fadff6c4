import * as fs from 'node:fs';
import { join } from 'node:path';
import { loadReceiverConfigFile } from '../../../receiver/config/config-file';
import { closest } from '../../../receiver/config/config-errors';
import { tempDir } from '../../support/receiver-fixture';
import { configRefusal } from './config-refusal';

const TOKEN = 'whsec_dGhpcyBpcyBhIHRlc3Qga2V5IGZvciB0aGUgcmVjZWl2ZXI=';

describe('config problems lead somewhere', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const problemsOf = (text: string): string => configRefusal(dir, text).message;

  it('suggests the known key a misspelt one was meant to be, and says the real one is required', () => {
    const message = problemsOf(JSON.stringify({ triggers: [{ repository: 'app', branch: 'main', comand: 'true', token: TOKEN }] }));
    expect(message).toContain('triggers[0].comand: unknown key (did you mean "command"?)');
    expect(message).toContain('triggers[0].command: is required');
    expect(message).not.toContain('Invalid input');
  });

  it('says a missing section is required and suggests it for a misspelt one', () => {
    const message = problemsOf(JSON.stringify({ trigers: [] }));
    expect(message).toContain('triggers: is required');
    expect(message).toContain('trigers: unknown key (did you mean "triggers"?)');
  });

  it('lists the known keys when nothing is close', () => {
    expect(
      problemsOf(JSON.stringify({ listen: { zzzzzzz: 1 }, triggers: [{ repository: 'a', branch: 'b', command: 'true', token: TOKEN }] })),
    ).toContain('listen.zzzzzzz: unknown key (known keys: host, port, tls)');
  });

  it("shows the line and column of a JSON syntax error, with the line's structure, and never an inline token", () => {
    const message = problemsOf(
      `{\n  "triggers": [\n    { "repository": "app", "branch": "main", "token": "${TOKEN}" "command": "true" }\n  ]\n}\n`,
    );
    expect(message).toMatch(/is not valid JSON at line 3, column \d+:/);
    expect(message).toContain('{ "repository": "…", "branch": "…", "token": "…" "command": "…" }');
    expect(message).not.toContain(TOKEN);
  });

  it('takes // and /* */ comments, as the starter config has them', () => {
    const file = join(dir, 'commented.json');
    fs.writeFileSync(
      file,
      `// a comment\n{ /* where */ "listen": { "port": 5999 }, // the port\n  "triggers": [{ "repository": "app", "branch": "main", "command": "echo // not a comment", "token": "${TOKEN}" }] }\n`,
      { mode: 0o600 },
    );
    const { config } = loadReceiverConfigFile(file);
    expect(config.listen.port).toBe(5999);
    expect(config.triggers[0]?.command).toBe('echo // not a comment');
  });

  it('says which path it tried for a missing config, and what makes one', () => {
    expect(() => loadReceiverConfigFile(join(dir, 'nope.json'))).toThrow(
      /cannot read config .*nope\.json: it does not exist; `triggler init` writes a starter config and token file/,
    );
  });

  it("refuses a trigger user with the command runner, which starts commands as its own unit's user, and a relative socket", () => {
    const trigger = { repository: 'app', branch: 'main', command: 'true', token: TOKEN, user: 'deploy' };
    expect(problemsOf(JSON.stringify({ commandRunner: { socket: '/run/triggler/command.sock' }, triggers: [trigger] }))).toContain(
      "triggers[0].user: cannot be used with commandRunner: the runner starts commands as its own unit's user",
    );
    expect(
      problemsOf(JSON.stringify({ commandRunner: { socket: 'command.sock' }, triggers: [{ ...trigger, user: undefined }] })),
    ).toContain('commandRunner.socket: must be an absolute path');
  });

  it('suggests only near keys', () => {
    expect(closest('comand', ['command', 'cwd'])).toBe('command');
    expect(closest('Command', ['command'])).toBe('command');
    expect(closest('tiemoutSeconds', ['timeoutSeconds', 'token'])).toBe('timeoutSeconds');
    expect(closest('xyz', ['command', 'cwd'])).toBeUndefined();
  });
});

describe("a deploy section's bad input is refused when the config loads, naming the field", () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function problemsOf(triggers: Record<string, unknown>[]): string | undefined {
    const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify({ triggers: triggers.map((t) => ({ command: 'true', token: TOKEN, ...t })) }), { mode: 0o600 });
    try {
      loadReceiverConfigFile(file);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }
  const app = (deploy: Record<string, unknown>) => ({
    repository: 'app',
    branch: 'main',
    deploy: { repositoryUrl: '/srv/git/app.git', path: '/srv/app', ...deploy },
  });

  it.each([
    ['a relative path', { path: 'srv/app' }, 'triggers[0].deploy.path: must be an absolute path'],
    ['a path with ..', { path: '/srv/../etc' }, 'triggers[0].deploy.path: must not contain ".."'],
    ['the root', { path: '/' }, 'triggers[0].deploy.path: must not be /'],
    [
      'a URL git would take for an option',
      { repositoryUrl: '--upload-pack=touch /tmp/x' },
      'triggers[0].deploy.repositoryUrl: must not contain spaces',
    ],
    ['a URL starting with -', { repositoryUrl: '-oProxyCommand=x' }, 'triggers[0].deploy.repositoryUrl: must not start with "-"'],
  ])('%s', (_what, deploy, expected) => {
    expect(problemsOf([app(deploy)])).toContain(expected);
  });

  it.each([
    ['a password', 'https://me:s3cret-Pa55@git.example.com/me/app.git', 's3cret-Pa55', 'must not hold a password'],
    [
      'a GitHub token as the user',
      'https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/me/app.git',
      'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
      'must not hold an access token as its user name',
    ],
    [
      'a fine-grained GitHub token',
      'https://github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz@github.com/me/app.git',
      'github_pat_11ABCDEFG',
      'must not hold an access token as its user name',
    ],
    [
      'a GitLab token',
      'https://glpat-xxxxxxxxxxxxxxxxxxxx@gitlab.com/me/app.git',
      'glpat-xxxx',
      'must not hold an access token as its user name',
    ],
    [
      'a 40-hex token (Gitea)',
      `https://${'0123456789abcdef'.repeat(2)}01234567@gitea.example.com/me/app.git`,
      '0123456789abcdef0123',
      'must not hold an access token as its user name',
    ],
  ])('a URL holding %s, never quoted back', (_what, repositoryUrl, secret, expected) => {
    const message = problemsOf([app({ repositoryUrl })]);
    expect(message).toContain(
      `triggers[0].deploy.repositoryUrl: ${expected}: use deploy.sshKey with an SSH URL, or the host's credential helper (CodeCommit)`,
    );
    expect(message).not.toContain(secret);
  });

  it('takes a user name that is only a user name, and ssh and local URLs', () => {
    expect(problemsOf([app({ repositoryUrl: 'https://deploy@git.example.com/me/app.git' })])).toBeUndefined();
    expect(
      problemsOf([
        app({
          repositoryUrl: 'ssh://git@git.example.com:2222/me/app.git',
          knownHosts: ['[git.example.com]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'],
        }),
      ]),
    ).toBeUndefined();
    expect(problemsOf([app({ repositoryUrl: 'file:///srv/git/app.git' })])).toBeUndefined();
  });

  it('refuses two triggers deploying into one path, or one inside the other', () => {
    const other = (path: string) => ({ repository: 'site', branch: 'main', deploy: { repositoryUrl: '/srv/git/site.git', path } });
    expect(problemsOf([app({}), other('/srv/app')])).toContain(
      'triggers[1].deploy.path: is the deploy.path of triggers[0] (app main); give each trigger its own',
    );
    expect(problemsOf([app({}), other('/srv/app/site')])).toContain(
      'triggers[1].deploy.path: overlaps the deploy.path of triggers[0] (app main)',
    );
    expect(problemsOf([app({ path: '/srv/app/inner' }), other('/srv/app/')])).toContain(
      'triggers[1].deploy.path: overlaps the deploy.path of triggers[0] (app main)',
    );
    expect(problemsOf([app({}), other('/srv/application')])).toBeUndefined();
  });
});

describe('a deploy over SSH is checked when the config loads', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function load(
    deploy: Record<string, unknown>,
    tokens: Record<string, unknown> = { file: join(dir, 'tokens.json') },
    stateDir = '/var/lib/triggler',
  ): string | undefined {
    const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    const trigger = { repository: 'app', branch: 'main', command: 'true', token: TOKEN, deploy: { path: '/srv/app', ...deploy } };
    fs.writeFileSync(file, JSON.stringify({ stateDir, tokens, triggers: [trigger] }), { mode: 0o600 });
    try {
      loadReceiverConfigFile(file);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  const GITHUB_LINE = 'github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';

  it('takes a key for a pinned provider, and known_hosts lines for a host of ones own', () => {
    expect(load({ repositoryUrl: 'git@github.com:owner/app.git', sshKey: 'app/deploy-key' })).toBeUndefined();
    expect(
      load({
        repositoryUrl: 'ssh://git@gitea.example.com:2222/team/app.git',
        sshKey: 'app/deploy-key',
        knownHosts: [GITHUB_LINE.replace('github.com', '[gitea.example.com]:2222')],
      }),
    ).toBeUndefined();
  });

  it('names the field and the host when no keys are pinned for it', () => {
    expect(load({ repositoryUrl: 'git@gitea.example.com:team/app.git', sshKey: 'app/deploy-key' })).toContain(
      "triggers[0].deploy.knownHosts: is needed for gitea.example.com: host keys ship only for github.com, gitlab.com, bitbucket.org and codeberg.org. Add the host's lines (ssh-keyscan gitea.example.com, checked against the keys its administrator publishes)",
    );
  });

  it('refuses known_hosts lines for another host, or that are not lines', () => {
    expect(load({ repositoryUrl: 'ssh://git@gitea.example.com:2222/team/app.git', sshKey: 'k', knownHosts: [GITHUB_LINE] })).toContain(
      'triggers[0].deploy.knownHosts: has no line for [gitea.example.com]:2222, the host of repositoryUrl',
    );
    expect(load({ repositoryUrl: 'git@github.com:owner/app.git', sshKey: 'k', knownHosts: ['github.com'] })).toContain(
      'triggers[0].deploy.knownHosts[0]: must be "<host> <key type> <key>"',
    );
  });

  it('refuses a key for a URL that is not SSH, and a key with nowhere to be stored', () => {
    expect(load({ repositoryUrl: 'https://github.com/owner/app.git', sshKey: 'k' })).toContain(
      'triggers[0].deploy.sshKey: applies only to an SSH repositoryUrl',
    );
    expect(load({ repositoryUrl: 'git@github.com:owner/app.git', sshKey: 'k' }, {})).toContain(
      'triggers[0].deploy.sshKey: names a key in the token file or SSM, and this config has neither',
    );
  });

  it('refuses a state directory ssh could not be given the key files in, only when a trigger fetches over ssh', () => {
    const ssh = { repositoryUrl: 'git@github.com:owner/app.git', sshKey: 'k' };
    expect(load(ssh, undefined, '/var/lib/${USER}')).toContain('stateDir: holds "${": triggers[0] fetches over ssh');
    expect(load(ssh, undefined, '/var/lib/100% "trig\'gler"')).toBeUndefined();
    expect(load({ repositoryUrl: 'https://github.com/owner/app.git' }, undefined, '/var/lib/${USER}')).toBeUndefined();
  });

  it('refuses a deploy key for a trigger that runs as another user, saying why, rather than failing every run', () => {
    const file = join(dir, 'as-user.json');
    const trigger = (deploy: Record<string, unknown>) => ({
      repository: 'app',
      branch: 'main',
      command: 'true',
      token: TOKEN,
      user: 'deployer',
      deploy: { path: '/srv/app', repositoryUrl: 'git@github.com:owner/app.git', ...deploy },
    });
    fs.writeFileSync(
      file,
      JSON.stringify({ tokens: { file: join(dir, 'tokens.json') }, triggers: [trigger({ sshKey: 'deploy-keys/app' })] }),
      { mode: 0o600 },
    );
    expect(() => loadReceiverConfigFile(file)).toThrow(
      'triggers[0].deploy.sshKey: cannot be used with user "deployer": the key file is readable by the receiver alone, and a root receiver runs git as that user, so every fetch would fail; leave out user, or leave out sshKey',
    );
    // Without the key, git fetches with the user's own ssh.
    fs.writeFileSync(file, JSON.stringify({ tokens: { file: join(dir, 'tokens.json') }, triggers: [trigger({})] }), { mode: 0o600 });
    expect(loadReceiverConfigFile(file).config.triggers[0]).toMatchObject({
      user: 'deployer',
      deploy: { repositoryUrl: 'git@github.com:owner/app.git' },
    });
  });
});
