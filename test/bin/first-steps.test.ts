/** `triggler check`, `service-unit` and `send --commit <ref>`: the real CLI on real files. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { resolveCommit } from '../../bin/send-command';
import { ROOT, runCli } from '../support/cli';
import { startTestReceiver, tempDir } from '../support/receiver-fixture';

describe('triggler check', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('triggler-check-');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names the field and the path for a token file that is missing, and exits 2', async () => {
    const config = join(dir, 'receiver.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        stateDir: './state',
        tokens: { file: './tokens.json' },
        triggers: [{ repository: 'app', branch: 'main', command: 'true', cwd: './nowhere' }],
      }),
    );
    const checked = await runCli(['check', '--config', config]);
    expect(checked.code).toBe(2);
    expect(checked.stderr).toContain(
      `tokens.file: cannot read ${join(dir, 'tokens.json')}: it does not exist (triggler init, or triggler tokens rotate --file FILE --create REPO BRANCH, makes one)`,
    );
    expect(checked.stderr).toContain(`triggers[0].cwd: ${join(dir, 'nowhere')} is not a directory`);
  });

  it('says a token the file lacks', async () => {
    const sub = join(dir, 'lacking');
    fs.mkdirSync(sub);
    fs.writeFileSync(join(sub, 'tokens.json'), JSON.stringify({ 'app/dev': 'a-token-of-sixteen-chars' }), { mode: 0o600 });
    fs.writeFileSync(
      join(sub, 'receiver.json'),
      JSON.stringify({
        stateDir: './state',
        tokens: { file: './tokens.json' },
        triggers: [{ repository: 'app', branch: 'main', command: 'true' }],
      }),
    );
    const checked = await runCli(['check', '--config', join(sub, 'receiver.json')]);
    expect(checked).toMatchObject({
      code: 2,
      stderr: expect.stringContaining(`triggers[0]: no token named app/main in ${join(sub, 'tokens.json')}`),
    });
  });

  it('warns of sudo in a command, which the hardened unit rules out, and still exits 0', async () => {
    const sub = join(dir, 'sudo');
    fs.mkdirSync(sub);
    fs.writeFileSync(join(sub, 'tokens.json'), JSON.stringify({ 'app/main': 'a-token-of-sixteen-chars' }), { mode: 0o600 });
    const trigger = {
      repository: 'app',
      branch: 'main',
      command: 'true',
      deploy: { repositoryUrl: '/srv/git/app.git', path: join(sub, 'srv'), activate: 'sudo systemctl restart app' },
    };
    fs.writeFileSync(
      join(sub, 'receiver.json'),
      JSON.stringify({ stateDir: './state', tokens: { file: './tokens.json' }, triggers: [trigger] }),
    );
    const checked = await runCli(['check', '--config', join(sub, 'receiver.json')]);
    expect(checked.code).toBe(0);
    expect(checked.stderr).toContain(
      'warning: triggers[0].deploy.activate runs sudo, which cannot work under the unit triggler service-unit writes (NoNewPrivileges, no capabilities): to restart a service run systemctl without sudo and allow it with a polkit rule (docs/self-hosting.md)',
    );
    expect(checked.stdout).toContain('is valid');
  });

  it('says a deploy key the token file lacks or cannot be used, without quoting it', async () => {
    const sub = join(dir, 'deploy-keys');
    fs.mkdirSync(sub);
    const publicHalf = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
    fs.writeFileSync(join(sub, 'tokens.json'), JSON.stringify({ 'app/main': 'a-token-of-sixteen-chars', 'keys/public': publicHalf }), {
      mode: 0o600,
    });
    const deploy = (sshKey: string) => ({
      repositoryUrl: 'git@github.com:owner/app.git',
      path: join(sub, 'srv', sshKey.replace('/', '-')),
      sshKey,
    });
    fs.writeFileSync(
      join(sub, 'receiver.json'),
      JSON.stringify({
        stateDir: './state',
        tokens: { file: './tokens.json' },
        triggers: [
          { repository: 'app', branch: 'main', command: 'true', deploy: deploy('keys/missing') },
          { repository: 'app', branch: 'dev', tokenName: 'app/main', command: 'true', deploy: deploy('keys/public') },
        ],
      }),
    );
    const checked = await runCli(['check', '--config', join(sub, 'receiver.json')]);
    expect(checked.code).toBe(2);
    expect(checked.stderr).toContain(
      `triggers[0].deploy.sshKey: there is no key named keys/missing in ${join(sub, 'tokens.json')} (triggler tokens deploy-key keys/missing --file ${join(sub, 'tokens.json')} makes one)`,
    );
    expect(checked.stderr).toContain(
      `triggers[1].deploy.sshKey: the key keys/public in ${join(sub, 'tokens.json')} cannot be used: it is a public key: give the private half`,
    );
    expect(checked.stderr).not.toContain('AAAAC3');
  });

  it('exits 2 for a config that cannot be loaded at all, with the words that say why', async () => {
    const sub = join(dir, 'unloadable');
    fs.mkdirSync(sub);
    const write = (name: string, text: string) => {
      fs.writeFileSync(join(sub, name), text, { mode: 0o600 });
      return join(sub, name);
    };
    const trigger = { repository: 'app', branch: 'main', command: 'true', token: 'a-token-of-sixteen-chars' };
    const cases: Array<[string, string[], string]> = [
      [
        'an unknown key',
        ['--config', write('unknown-key.json', JSON.stringify({ triggers: [{ ...trigger, comand: 'true' }] }))],
        'triggers[0].comand: unknown key (did you mean "command"?)',
      ],
      [
        'a bad value',
        ['--config', write('bad-value.json', JSON.stringify({ listen: { port: 'http' }, triggers: [trigger] }))],
        `triggler: config ${join(sub, 'bad-value.json')} is not valid:\n  listen.port: `,
      ],
      [
        'a file that is not JSON',
        ['--config', write('bad-json.json', '{\n  "triggers": []\n  "listen": {}\n}\n')],
        `triggler: config ${join(sub, 'bad-json.json')} is not valid JSON at line 2, column 17:\n      "triggers": []`,
      ],
      [
        'a missing file',
        ['--config', join(sub, 'missing.json')],
        `triggler: cannot read config ${join(sub, 'missing.json')}: it does not exist; \`triggler init\` writes a starter config and token file`,
      ],
      // No --config: ./receiver.json, where init writes it (the CLI runs in the repository's root, which has none).
      ['no --config', [], `triggler: cannot read config receiver.json (${join(ROOT, 'receiver.json')}): it does not exist`],
    ];
    const checked = await Promise.all(cases.map(([, args]) => runCli(['check', ...args])));
    expect(cases.map(([what], i) => ({ what, ...checked[i]! }))).toEqual(
      cases.map(([what, , says]) => ({ what, code: 2, stdout: '', stderr: expect.stringContaining(says) })),
    );
    // A config that loads and has no problems still exits 0.
    const valid = await runCli(['check', '--config', write('valid.json', JSON.stringify({ stateDir: './state', triggers: [trigger] }))]);
    expect({ code: valid.code, stderr: valid.stderr }).toEqual({ code: 0, stderr: '' });
  });
});

describe('the AWS SDK on a supported Node.js', () => {
  it("prints no notice about Node.js versions before an SSM command's answer", async () => {
    const env = {
      PATH: process.env.PATH,
      HOME: ROOT,
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIDTEST',
      AWS_SECRET_ACCESS_KEY: 'test-secret',
      AWS_ENDPOINT_URL_SSM: 'http://127.0.0.1:1',
      AWS_MAX_ATTEMPTS: '1',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const listed = await runCli(['tokens', 'list', '--prefix', '/git-triggler/tokens'], { env });
    expect(listed.stderr).toContain('cannot list /git-triggler/tokens in SSM');
    expect(listed.stderr).not.toMatch(/NodeVersionSupportWarning|will require node/);
  });
});

describe('triggler service-unit', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('triggler-unit-');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("keeps every hardening line of the unit the AWS host runs, with this install's paths", async () => {
    const config = join(dir, 'receiver.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        stateDir: '/var/lib/triggler',
        tokens: { file: '/etc/triggler/tokens.json' },
        triggers: [{ repository: 'app', branch: 'main', command: 'true', cwd: '/srv/app' }],
      }),
    );
    const printed = await runCli(['service-unit', '--config', config, '--user', 'deployer']);
    expect(printed.code).toBe(0);
    const unit = printed.stdout;
    expect(unit).toContain(
      `ExecStart=${process.execPath} ${join(ROOT, 'bin', 'triggler.js')} serve --config ${config} --log-format json\n`,
    );
    expect(unit).toContain('User=deployer\nGroup=deployer\n');
    expect(unit).toContain('ReadWritePaths=/var/lib/triggler /srv/app\n');
    expect(unit).toContain('StateDirectory=triggler\n');
    const aws = fs.readFileSync(join(ROOT, 'lib', 'host-files', 'triggler-receiver.service'), 'utf8');
    const hardening = (text: string) =>
      text
        .split('\n')
        .filter((line) =>
          /^(NoNewPrivileges|Protect|Private|Restrict|LockPersonality|Capability|Ambient|SystemCall|KillMode|TimeoutStopSec|LimitNOFILE)/.test(
            line,
          ),
        );
    expect(hardening(unit)).toEqual(hardening(aws));
    expect(hardening(aws).length).toBeGreaterThan(15);
  });
});

describe('send --commit with a ref', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('triggler-ref-');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("resolves a ref in the current directory's repository, keeps a commit id as it is, and says what it could not resolve", () => {
    const env = { PATH: process.env.PATH, HOME: dir };
    execFileSync('git', ['-c', 'init.defaultBranch=main', 'init', '-q', dir], { env });
    execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'one'], {
      cwd: dir,
      env,
    });
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    expect(resolveCommit('main', dir)).toBe(head);
    expect(resolveCommit('HEAD', dir)).toBe(head);
    expect(resolveCommit('A'.repeat(40), dir)).toBe('a'.repeat(40));
    expect(() => resolveCommit('no-such-branch', dir)).toThrow(
      /--commit: "no-such-branch" is not a commit id, and git cannot resolve it here/,
    );
    expect(() => resolveCommit('--upload-pack=x', dir)).toThrow(/--commit/);
  });
});

describe('triggler send --token-file', () => {
  it("reads a shared token by --token-name, or by the --config trigger's tokenName, and says when to pass it", async () => {
    const dir = tempDir('triggler-send-');
    const tokenFile = join(dir, 'tokens.json');
    fs.writeFileSync(tokenFile, JSON.stringify({ 'app/shared': 'whsec_c2hhcmVkIHRva2VuIHNoYXJlZCB0b2tlbiBzaGFyZWQ=' }), { mode: 0o600 });
    const triggers = [{ repository: 'app', branch: 'dev', tokenName: 'app/shared', command: 'true' }];
    const receiver = await startTestReceiver({ tokens: { file: tokenFile }, triggers }, { dir });
    try {
      const config = join(dir, 'receiver.json');
      fs.writeFileSync(config, JSON.stringify({ stateDir: './other-state', tokens: { file: tokenFile }, triggers }));
      const byName = await runCli(['send', 'app', 'dev', '--url', receiver.url, '--token-file', tokenFile, '--token-name', 'app/shared']);
      expect({ code: byName.code, stdout: byName.stdout }).toMatchObject({ code: 0, stdout: expect.stringContaining('202') });
      const byConfig = await runCli(['send', 'app', 'dev', '--url', receiver.url, '--token-file', tokenFile, '--config', config]);
      expect({ code: byConfig.code, stdout: byConfig.stdout }).toMatchObject({ code: 0, stdout: expect.stringContaining('202') });
      const unnamed = await runCli(['send', 'app', 'dev', '--url', receiver.url, '--token-file', tokenFile]);
      expect(unnamed.code).not.toBe(0);
      expect(unnamed.stderr).toContain(`no token named app/dev in ${tokenFile} (a shared token: pass --token-name)`);
    } finally {
      await receiver.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
