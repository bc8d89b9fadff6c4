/**
 * `triggler tokens`: in-process against aws-sdk-client-mock (every SSM request checked), then the
 * real `bin/triggler.js` as a child process against the local SSM endpoint, and `rotate --file`
 * with a SIGHUP to a real `triggler serve` child process.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { GetParameterCommand, GetParametersByPathCommand, ParameterNotFound, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { Command } from 'commander';
import { request } from 'undici';
import { DEFAULT_TOKEN_PREFIX, formatAge, tokenPrefixOfStack, tokensCommand } from '../../bin/tokens-command';
import { parseStackConfig } from '../../lib/stack-config/schema';
import { buildDeliveryRequest, publicKeyOf } from '../../protocol';
import { startLocalSsm, type LocalSsm } from '../../scripts/local-ssm';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'triggler.js');
const NEW_TOKEN = /^whsec_[A-Za-z0-9+/]{43}=$/;
const OLD_TOKEN = 'whsec_b2xkLXRva2VuLW9sZC10b2tlbi1vbGQtdG9rZW4tb2xk';
const NOW = Date.parse('2026-03-01T12:00:00Z');

interface CliResult {
  stdout: string;
  stderr: string;
}

/** Runs `triggler tokens ...` in-process; commander's exits become thrown errors. */
async function runTokens(args: string[], stdin?: string): Promise<CliResult> {
  const result: CliResult = { stdout: '', stderr: '' };
  const tokens = tokensCommand({
    stdout: (t) => (result.stdout += t),
    stderr: (t) => (result.stderr += t),
    now: () => NOW,
    stdin: async () => {
      if (stdin === undefined) throw new Error('the test gave no standard input');
      return stdin;
    },
  });
  const quiet = (command: Command): void => {
    command.exitOverride().configureOutput({ writeOut: (t) => (result.stdout += t), writeErr: (t) => (result.stderr += t) });
    command.commands.forEach(quiet);
  };
  const program = new Command('triggler').addCommand(tokens);
  quiet(program);
  await program.parseAsync(['tokens', ...args], { from: 'user' });
  return result;
}

describe('the stack prefix convention', () => {
  it("gives the default stack the stack config's default prefix", () => {
    const config = parseStackConfig({ triggers: [{ repository: 'my-repo', branch: 'main', command: 'true' }] });
    expect(tokenPrefixOfStack(config.stackName)).toBe(config.tokens.prefix);
    expect(DEFAULT_TOKEN_PREFIX).toBe(config.tokens.prefix);
  });

  it('writes other stack names in kebab case, and refuses what is not a stack name', () => {
    expect(tokenPrefixOfStack('Staging')).toBe('/staging/tokens');
    expect(tokenPrefixOfStack('HTTPTriggers2')).toBe('/http-triggers2/tokens');
    expect(tokenPrefixOfStack('prod-GitTriggler')).toBe('/prod-git-triggler/tokens');
    expect(() => tokenPrefixOfStack('../etc')).toThrow('--stack');
  });

  it('writes ages for people', () => {
    expect([formatAge(42), formatAge(600), formatAge(3 * 3600 + 720), formatAge(2 * 86_400 + 3600)]).toEqual([
      '42s',
      '10m',
      '3h 12m',
      '2d 1h',
    ]);
  });
});

describe('triggler tokens against a mocked SSM client', () => {
  const ssmMock = mockClient(SSMClient);
  const NAME = `${DEFAULT_TOKEN_PREFIX}/my-repo/main`;

  beforeEach(() => ssmMock.reset());
  afterAll(() => ssmMock.restore());

  it('rotate writes a new whsec_ token as a SecureString with Overwrite and prints the name and version, never the token', async () => {
    ssmMock
      .on(GetParameterCommand)
      .resolves({ Parameter: { Name: NAME, Type: 'SecureString', Version: 4, LastModifiedDate: new Date(NOW - 86_400_000) } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 5 });
    const out = await runTokens(['rotate', 'my-repo', 'main']);

    expect(out.stdout).toBe(`rotated ${NAME} version 5\n`);
    // Existence is checked without decryption: the CLI never reads the old value.
    expect(ssmMock.commandCalls(GetParameterCommand)[0]!.args[0].input).toEqual({ Name: NAME });
    const put = ssmMock.commandCalls(PutParameterCommand);
    expect(put).toHaveLength(1);
    const input = put[0]!.args[0].input;
    expect(input).toMatchObject({ Name: NAME, Type: 'SecureString', Overwrite: true });
    expect(input.Value).toMatch(NEW_TOKEN);
    expect(out.stdout + out.stderr).not.toContain(input.Value!);
    expect(out.stderr).not.toContain('warning');
  });

  it('rotate makes a different token every time', async () => {
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: NAME, Version: 1, LastModifiedDate: new Date(NOW - 86_400_000) } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 2 });
    await runTokens(['rotate', 'my-repo', 'main']);
    await runTokens(['rotate', 'my-repo', 'main']);
    const values = ssmMock.commandCalls(PutParameterCommand).map((call) => call.args[0].input.Value);
    expect(values[0]).not.toBe(values[1]);
  });

  it('rotate warns when the token was rotated moments ago (the one before loses its grace)', async () => {
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: NAME, Version: 2, LastModifiedDate: new Date(NOW - 30_000) } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 3 });
    const out = await runTokens(['rotate', 'my-repo', 'main']);
    expect(out.stdout).toBe(`rotated ${NAME} version 3\n`);
    expect(out.stderr).toContain(`warning: ${NAME} was written 30s ago`);
  });

  it('rotate refuses a token that does not exist (a typo must not create one) unless --create', async () => {
    ssmMock.on(GetParameterCommand).rejects(new ParameterNotFound({ message: 'not found', $metadata: {} }));
    ssmMock.on(PutParameterCommand).resolves({ Version: 1 });
    await expect(runTokens(['rotate', 'my-repo', 'mian'])).rejects.toThrow(
      `no token parameter ${DEFAULT_TOKEN_PREFIX}/my-repo/mian in SSM`,
    );
    expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(0);
    const out = await runTokens(['rotate', 'my-repo', 'mian', '--create']);
    expect(out.stdout).toBe(`created ${DEFAULT_TOKEN_PREFIX}/my-repo/mian version 1\n`);
  });

  it('rotate --stack resolves the prefix by convention and says so; --prefix and --token-name name a shared token', async () => {
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Version: 1, LastModifiedDate: new Date(NOW - 86_400_000) } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 2 });
    const byStack = await runTokens(['rotate', '--stack', 'Staging', 'my-repo', 'main']);
    expect(byStack.stdout).toBe('rotated /staging/tokens/my-repo/main version 2\n');
    expect(byStack.stderr).toContain('stack Staging: token prefix /staging/tokens');
    const shared = await runTokens(['rotate', '--prefix', '/ops/hooks', '--token-name', 'github/my-repo']);
    expect(shared.stdout).toBe('rotated /ops/hooks/github/my-repo version 2\n');
  });

  it('rotate --stdin stores the token it is given (a secret the provider generates), without its line ending', async () => {
    ssmMock.on(GetParameterCommand).resolves({ Parameter: { Name: NAME, Version: 1, LastModifiedDate: new Date(NOW - 86_400_000) } });
    ssmMock.on(PutParameterCommand).resolves({ Version: 2 });
    const given = 'whsec_Z2l0bGFiLXNpZ25pbmctdG9rZW4tZ2l0bGFiLXNpZ25pbmc=';
    const out = await runTokens(['rotate', '--stdin', 'my-repo', 'main'], `${given}\n`);
    expect(out.stdout).toBe(`rotated ${NAME} version 2\n`);
    expect(ssmMock.commandCalls(PutParameterCommand)[0]!.args[0].input.Value).toBe(given);
    await expect(runTokens(['rotate', '--stdin', 'my-repo', 'main'], 'short\n')).rejects.toThrow(
      '--stdin: the token must be at least 16 characters',
    );
    expect(ssmMock.commandCalls(PutParameterCommand)).toHaveLength(1);
  });

  it('refuses bad input, naming the option, before any SSM call', async () => {
    await expect(runTokens(['rotate', '--prefix', 'no-slash', 'my-repo', 'main'])).rejects.toThrow(
      '--prefix: "no-slash" must start with /',
    );
    await expect(runTokens(['rotate', '--prefix', '/a', '--stack', 'B', 'my-repo', 'main'])).rejects.toThrow(
      /cannot be used with option '--stack/,
    );
    await expect(runTokens(['rotate', 'my-repo'])).rejects.toThrow('name the token');
    await expect(runTokens(['rotate', '--token-name', 'bad name'])).rejects.toThrow('--token-name');
    await expect(runTokens(['rotate', 'my repo', 'main'])).rejects.toThrow('may hold only letters, digits and _ . - /');
    expect(ssmMock.calls()).toHaveLength(0);
  });

  it('list pages through the prefix without decryption and prints names, versions and ages, never a value', async () => {
    const old = new Date(NOW - 3 * 86_400_000);
    ssmMock
      .on(GetParametersByPathCommand, { Path: DEFAULT_TOKEN_PREFIX, Recursive: true, MaxResults: 10 })
      .resolves({
        Parameters: [{ Name: NAME, Type: 'SecureString', Version: 3, Value: 'AQICAciphertext-one', LastModifiedDate: old }],
        NextToken: 'next',
      })
      .on(GetParametersByPathCommand, { NextToken: 'next' })
      .resolves({
        Parameters: [
          {
            Name: `${DEFAULT_TOKEN_PREFIX}/app/dev`,
            Type: 'String',
            Version: 1,
            Value: 'plain-value-oops',
            LastModifiedDate: new Date(NOW - 90_000),
          },
        ],
      });
    const out = await runTokens(['list']);
    expect(out.stdout).toBe(
      [
        'PARAMETER                          VERSION  AGE    MODIFIED',
        `${DEFAULT_TOKEN_PREFIX}/app/dev       1        1m     2026-03-01T11:58:30.000Z`,
        `${NAME}  3        3d 0h  2026-02-26T12:00:00.000Z`,
        '',
      ].join('\n'),
    );
    expect(out.stderr).toContain(`warning: ${DEFAULT_TOKEN_PREFIX}/app/dev is a String parameter`);
    for (const call of ssmMock.commandCalls(GetParametersByPathCommand)) expect(call.args[0].input.WithDecryption).not.toBe(true);
    expect(out.stdout + out.stderr).not.toMatch(/ciphertext|plain-value/);

    const json = JSON.parse((await runTokens(['list', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(json.map((row) => [row.name, row.version, row.ageSeconds])).toEqual([
      [`${DEFAULT_TOKEN_PREFIX}/app/dev`, 1, 90],
      [NAME, 3, 259_200],
    ]);
  });

  it('show refuses without --reveal, before reading anything, and says why', async () => {
    await expect(runTokens(['show', 'my-repo', 'main'])).rejects.toThrow(/prints a secret.*add --reveal/);
    expect(ssmMock.calls()).toHaveLength(0);
  });

  it('show --reveal prints only the token on stdout (the version goes to stderr)', async () => {
    ssmMock
      .on(GetParameterCommand, { Name: NAME, WithDecryption: true })
      .resolves({ Parameter: { Name: NAME, Value: OLD_TOKEN, Version: 7 } });
    const out = await runTokens(['show', 'my-repo', 'main', '--reveal']);
    expect(out).toEqual({ stdout: `${OLD_TOKEN}\n`, stderr: `${NAME} version 7\n` });
  });

  it('names the parameter and the AWS error when SSM refuses', async () => {
    ssmMock.on(GetParameterCommand).rejects(
      Object.assign(new Error('User: arn:aws:iam::1:user/x is not authorized to perform: ssm:GetParameter'), {
        name: 'AccessDeniedException',
      }),
    );
    await expect(runTokens(['rotate', 'my-repo', 'main'])).rejects.toThrow(`cannot read ${NAME} from SSM: AccessDeniedException: User`);
  });
});

describe('triggler tokens --file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triggler-tokens-file-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('rotate writes {current, previous, rotatedAt} atomically with mode 0600, keeping the other entries', async () => {
    const path = join(dir, 'tokens.json');
    writeFileSync(path, JSON.stringify({ 'my-repo/main': OLD_TOKEN, 'other/dev': { current: 'whsec_b3RoZXItb3RoZXItb3RoZXItb3RoZXI=' } }), {
      mode: 0o600,
    });
    const out = await runTokens(['rotate', '--file', path, 'my-repo', 'main']);

    expect(out.stdout).toBe(`rotated my-repo/main in ${path} at 2026-03-01T12:00:00.000Z\n`);
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { current: string; previous?: string; rotatedAt?: string }>;
    expect(file['my-repo/main']).toEqual({
      current: expect.stringMatching(NEW_TOKEN),
      previous: OLD_TOKEN,
      rotatedAt: '2026-03-01T12:00:00.000Z',
    });
    expect(file['other/dev']).toEqual({ current: 'whsec_b3RoZXItb3RoZXItb3RoZXItb3RoZXI=' });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['tokens.json']);
    expect(out.stdout + out.stderr).not.toContain(file['my-repo/main']!.current);

    // A second rotation moves the current token to previous.
    const first = file['my-repo/main']!.current;
    await runTokens(['rotate', '--file', path, 'my-repo', 'main']);
    const again = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { current: string; previous?: string }>;
    expect(again['my-repo/main']!.previous).toBe(first);
    expect(again['my-repo/main']!.current).not.toBe(first);
  });

  it('rotate --create starts a file (mode 0600) or adds a token; without --create both are errors', async () => {
    const path = join(dir, 'new.json');
    await expect(runTokens(['rotate', '--file', path, 'app', 'main'])).rejects.toThrow(
      `token file ${path} does not exist (pass --create to start one)`,
    );
    expect((await runTokens(['rotate', '--file', path, '--create', 'app', 'main'])).stdout).toBe(
      `created app/main in ${path} at 2026-03-01T12:00:00.000Z\n`,
    );
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await expect(runTokens(['rotate', '--file', path, 'app', 'dev'])).rejects.toThrow(
      `no token named app/dev in ${path} (pass --create to add it)`,
    );
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { current: string; previous?: string }>;
    expect(Object.keys(file)).toEqual(['app/main']);
    expect(file['app/main']!.previous).toBeUndefined();
  });

  it("keeps the file's owner when root rotates it (the receiver runs as its own user)", async () => {
    const path = join(dir, 'owned.json');
    writeFileSync(path, JSON.stringify({ 'app/main': OLD_TOKEN }), { mode: 0o600 });
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chownSync(path, 4321, 4321);
    const before = statSync(path);
    await runTokens(['rotate', '--file', path, 'app', 'main']);
    const after = statSync(path);
    expect([after.uid, after.gid]).toEqual([before.uid, before.gid]);
    expect(after.ino).not.toBe(before.ino);
    if (asRoot) expect(after.uid).toBe(4321);
  });

  it('refuses a token file others can read, and leaves it untouched', async () => {
    const path = join(dir, 'open.json');
    writeFileSync(path, JSON.stringify({ 'app/main': OLD_TOKEN }));
    chmodSync(path, 0o644);
    await expect(runTokens(['rotate', '--file', path, 'app', 'main'])).rejects.toThrow(
      'must not be readable or writable by group or others',
    );
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ 'app/main': OLD_TOKEN });
  });

  it('list shows names and rotation ages, show --reveal the current token', async () => {
    const path = join(dir, 'tokens.json');
    writeFileSync(
      path,
      JSON.stringify({
        'b/main': OLD_TOKEN,
        'a/main': { current: 'whsec_Y3VycmVudC1jdXJyZW50LWN1cnJlbnQtY3Vy', previous: OLD_TOKEN, rotatedAt: '2026-03-01T11:00:00Z' },
      }),
      { mode: 0o600 },
    );
    const list = await runTokens(['list', '--file', path]);
    expect(list.stdout).toBe(
      [
        'TOKEN   ROTATED               AGE    PREVIOUS',
        'a/main  2026-03-01T11:00:00Z  1h 0m  kept',
        'b/main  -                     -      -',
        '',
      ].join('\n'),
    );
    expect(list.stdout).not.toContain('whsec_');
    expect((await runTokens(['show', '--file', path, 'a', 'main', '--reveal'])).stdout).toBe(
      'whsec_Y3VycmVudC1jdXJyZW50LWN1cnJlbnQtY3Vy\n',
    );
  });
});

describe('triggler tokens deploy-key --file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triggler-deploy-key-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stores the private half beside the tokens, prints only the public half, and refuses to replace one without --replace', async () => {
    const path = join(dir, 'tokens.json');
    writeFileSync(path, JSON.stringify({ 'app/main': OLD_TOKEN }), { mode: 0o600 });
    const made = await runTokens(['deploy-key', '--file', path, 'deploy-keys/app']);
    expect(made.stdout).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} git-triggler deploy-keys\/app\n$/);
    expect(made.stderr).toBe(`created deploy-keys/app in ${path}\n`);
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
    expect(file['app/main']).toBe(OLD_TOKEN);
    expect(file['deploy-keys/app']).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(publicKeyOf(file['deploy-keys/app']!)).toBe(made.stdout.trim());
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(made.stdout + made.stderr).not.toContain('PRIVATE KEY');

    await expect(runTokens(['deploy-key', '--file', path, 'deploy-keys/app'])).rejects.toThrow(
      `deploy-keys/app exists already in ${path} (pass --replace to replace it)`,
    );
    expect((await runTokens(['deploy-key', '--file', path, 'deploy-keys/app', '--public'])).stdout).toBe(made.stdout);
    const replaced = await runTokens(['deploy-key', '--file', path, 'deploy-keys/app', '--replace', '--comment', 'web-1 deploy']);
    expect(replaced.stdout).toMatch(/ web-1 deploy\n$/);
    expect(replaced.stdout).not.toBe(made.stdout);
    expect(replaced.stderr).toContain(
      'a running receiver fetches with the new key from now on (on its next fetch), and fails until the provider has its public half',
    );
    await expect(runTokens(['deploy-key', '--file', path, 'no spaces'])).rejects.toThrow('<name>: may hold letters, digits and _ . - / @');
  });

  it('rotate of a deploy key in a file suggests deploy-key --replace on that same file, and the suggestion works as given', async () => {
    // No AWS settings at all: a suggestion that lost --file would go to SSM and fail ("Region is missing").
    const env = { PATH: process.env.PATH, HOME: dir };
    const path = join(dir, 'my tokens.json');
    const made = await cli(['tokens', 'deploy-key', '--file', path, 'deploy-keys/my-app'], env);
    expect(made.code).toBe(0);
    const refused = await cli(['tokens', 'rotate', '--file', path, '--token-name', 'deploy-keys/my-app'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `deploy-keys/my-app is a deploy key, not a token: triggler tokens deploy-key deploy-keys/my-app --file '${path}' --replace makes a new one`,
    );
    const followed = await followSuggestion(refused.stderr, env);
    expect(followed.code).toBe(0);
    expect(followed.stderr.split('\n')[0]).toBe(`replaced deploy-keys/my-app in ${path}`);
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
    expect(Object.keys(file)).toEqual(['deploy-keys/my-app']);
    expect(publicKeyOf(file['deploy-keys/my-app']!)).toBe(followed.stdout.trim());
    expect(followed.stdout).not.toBe(made.stdout);
  });
});

/** The real CLI, as a user runs it: `node bin/triggler.js ...`. */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult & { code: number }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT, env, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Follows the deploy-key command a refused `tokens rotate` suggests, as a user pasting it into a
 * shell would: `sh` reads it, with `triggler` standing for this clone's CLI.
 */
function followSuggestion(stderr: string, env: NodeJS.ProcessEnv): Promise<CliResult & { code: number; suggested: string }> {
  const suggested = /is a deploy key, not a token: (triggler tokens deploy-key .*) makes a new one$/m.exec(stderr)?.[1];
  if (!suggested) throw new Error(`no suggestion in: ${stderr}`);
  return new Promise((resolve) => {
    execFile(
      'sh',
      ['-c', `triggler() { "$TRIGGLER_NODE" "$TRIGGLER_CLI" "$@"; }; ${suggested}`],
      { cwd: ROOT, env: { ...env, TRIGGLER_NODE: process.execPath, TRIGGLER_CLI: CLI }, timeout: 30_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr, suggested });
      },
    );
  });
}

describe('bin/triggler.js tokens against the local SSM endpoint', () => {
  let ssm: LocalSsm;
  let awsDir: string;
  let env: NodeJS.ProcessEnv;
  const NAME = `${DEFAULT_TOKEN_PREFIX}/my-repo/main`;

  beforeAll(async () => {
    ssm = await startLocalSsm({ region: 'eu-west-1' });
    awsDir = mkdtempSync(join(tmpdir(), 'triggler-tokens-aws-'));
    env = {
      PATH: process.env.PATH,
      HOME: awsDir,
      AWS_ENDPOINT_URL_SSM: ssm.url,
      AWS_ACCESS_KEY_ID: 'AKIDLOCALSSMTEST',
      AWS_SECRET_ACCESS_KEY: 'local-ssm-test-secret',
      AWS_REGION: 'eu-west-1',
      AWS_CONFIG_FILE: join(awsDir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(awsDir, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    ssm.put(NAME, OLD_TOKEN);
  });

  afterAll(async () => {
    await ssm.close();
    rmSync(awsDir, { recursive: true, force: true });
  });

  it('rotate prints the parameter and the new version, never the token, and exits 0', async () => {
    const out = await cli(['tokens', 'rotate', 'my-repo', 'main'], env);
    expect(out.code).toBe(0);
    expect(out.stdout).toBe(`rotated ${NAME} version 2\n`);
    const stored = ssm.get(NAME)!;
    expect(stored).toMatchObject({ type: 'SecureString', version: 2 });
    expect(stored.value).toMatch(NEW_TOKEN);
    expect(out.stdout + out.stderr).not.toContain(stored.value);
  });

  it('list shows the parameter with its version and age', async () => {
    ssm.put(`${DEFAULT_TOKEN_PREFIX}/app/dev`, OLD_TOKEN);
    const out = await cli(['tokens', 'list', '--stack', 'GitTriggler'], env);
    expect(out.code).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^PARAMETER\s+VERSION\s+AGE\s+MODIFIED$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/).slice(0, 2))).toEqual([
      [`${DEFAULT_TOKEN_PREFIX}/app/dev`, '1'],
      [NAME, '2'],
    ]);
    expect(out.stdout).not.toContain('whsec_');
  });

  it('show refuses without --reveal (exit 1) and prints the token with it', async () => {
    const refused = await cli(['tokens', 'show', 'my-repo', 'main'], env);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('add --reveal');
    const shown = await cli(['tokens', 'show', 'my-repo', 'main', '--reveal'], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toBe(`${ssm.get(NAME)!.value}\n`);
  });

  it('deploy-key writes a SecureString under the prefix and prints its public half', async () => {
    const out = await cli(['tokens', 'deploy-key', '--stack', 'GitTriggler', 'deploy-keys/app'], env);
    expect(out.code).toBe(0);
    const stored = ssm.get(`${DEFAULT_TOKEN_PREFIX}/deploy-keys/app`)!;
    expect(stored).toMatchObject({ type: 'SecureString', version: 1 });
    expect(publicKeyOf(stored.value)).toBe(out.stdout.trim());
    expect(out.stderr).toContain(`created ${DEFAULT_TOKEN_PREFIX}/deploy-keys/app version 1`);
    // The public half beside it, where the stack reads it for its DeployKey output.
    expect(ssm.get(`${DEFAULT_TOKEN_PREFIX}/deploy-keys/app.pub`)).toMatchObject({ type: 'String', value: out.stdout.trim() });
    const again = await cli(['tokens', 'deploy-key', '--stack', 'GitTriggler', 'deploy-keys/app'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('exists already (pass --replace to replace it)');
    expect((await cli(['tokens', 'deploy-key', '--stack', 'GitTriggler', 'deploy-keys/app', '--public'], env)).stdout).toBe(out.stdout);
    const replaced = await cli(['tokens', 'deploy-key', '--stack', 'GitTriggler', 'deploy-keys/app', '--replace'], env);
    expect(replaced.code).toBe(0);
    expect(ssm.get(`${DEFAULT_TOKEN_PREFIX}/deploy-keys/app`)!.version).toBe(2);
    expect(ssm.get(`${DEFAULT_TOKEN_PREFIX}/deploy-keys/app.pub`)!.value).toBe(replaced.stdout.trim());
    expect(replaced.stderr).toContain(
      "(within tokens.cacheSeconds), and fails until the provider has its public half; a stack's DeployKey output keeps showing the old half",
    );
    // Listed without a warning about the public half's plain String type.
    const listed = await cli(['tokens', 'list', '--stack', 'GitTriggler'], env);
    expect(listed.stdout).toContain(`${DEFAULT_TOKEN_PREFIX}/deploy-keys/app.pub`);
    expect(listed.stderr).not.toContain('warning');
    // A token rotation never writes over a deploy key.
    const rotated = await cli(['tokens', 'rotate', '--token-name', 'deploy-keys/app'], env);
    expect(rotated.code).toBe(1);
    expect(rotated.stderr).toContain(
      'deploy-keys/app is a deploy key, not a token: triggler tokens deploy-key deploy-keys/app --replace makes a new one',
    );
    expect(ssm.get(`${DEFAULT_TOKEN_PREFIX}/deploy-keys/app`)!.version).toBe(2);
  });

  it.each([
    [['--stack', 'Staging'], '/staging/tokens'],
    [['--prefix', '/ops/keys'], '/ops/keys'],
  ])(
    'rotate %j of a deploy key suggests deploy-key --replace with the same store option, and the suggestion reaches that store',
    async (store, prefix) => {
      const refused = await cli(['tokens', 'rotate', ...store, '--token-name', 'deploy-keys/site'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        `deploy-keys/site is a deploy key, not a token: triggler tokens deploy-key deploy-keys/site ${store.join(' ')} --replace makes a new one`,
      );
      expect(ssm.get(`${prefix}/deploy-keys/site`)).toBeUndefined();
      const followed = await followSuggestion(refused.stderr, env);
      expect(followed.code).toBe(0);
      expect(publicKeyOf(ssm.get(`${prefix}/deploy-keys/site`)!.value)).toBe(followed.stdout.trim());
      expect(ssm.get(`${DEFAULT_TOKEN_PREFIX}/deploy-keys/site`)).toBeUndefined();
    },
  );
});

describe('rotate --file and SIGHUP with a real `triggler serve`', () => {
  let dir: string;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('picks up the rotated token on SIGHUP, keeps the previous one for the grace period, then refuses it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'triggler-tokens-serve-'));
    const tokenFile = join(dir, 'tokens.json');
    writeFileSync(tokenFile, JSON.stringify({ 'app/main': OLD_TOKEN }), { mode: 0o600 });
    const config = join(dir, 'receiver.json');
    const graceSeconds = 4;
    writeFileSync(
      config,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        admin: false,
        stateDir: join(dir, 'state'),
        tokens: { file: tokenFile, graceSeconds },
        triggers: [{ repository: 'app', branch: 'main', command: ['true'] }],
      }),
    );
    child = spawn(process.execPath, [CLI, 'serve', '--config', config], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const logs: Array<Record<string, unknown>> = [];
    const waiters: Array<{ msg: string; resolve: (record: Record<string, unknown>) => void }> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const record = JSON.parse(line) as Record<string, unknown>;
      logs.push(record);
      for (const waiter of waiters.filter((w) => w.msg === record.msg)) waiter.resolve(record);
    });
    const logged = (msg: string) => new Promise<Record<string, unknown>>((resolve) => waiters.push({ msg, resolve }));

    const { url } = (await logged('receiver listening')) as { url: string };
    const deliver = async (token: string, id: string) => {
      const signed = buildDeliveryRequest({
        scheme: 'standard',
        token,
        id,
        timestamp: Math.floor(Date.now() / 1000),
        data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: 'c0ffee', source: 'test' },
      });
      const response = await request(url + signed.path, { method: 'POST', headers: signed.headers, body: signed.body! });
      await response.body.text();
      return response.statusCode;
    };
    expect(await deliver(OLD_TOKEN, 'msg_before')).toBe(202);

    const rotated = await cli(['tokens', 'rotate', '--file', tokenFile, 'app', 'main'], { PATH: process.env.PATH, HOME: dir });
    expect(rotated.code).toBe(0);
    const entry = (JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, { current: string; previous: string; rotatedAt: string }>)[
      'app/main'
    ]!;
    expect(entry.previous).toBe(OLD_TOKEN);

    const reloaded = logged('config reloaded');
    child.kill('SIGHUP');
    await reloaded;
    expect(await deliver(entry.current, 'msg_new_token')).toBe(202);
    expect(await deliver(OLD_TOKEN, 'msg_old_in_grace')).toBe(202);

    const graceEnds = Date.parse(entry.rotatedAt) + graceSeconds * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, graceEnds - Date.now() + 300)));
    expect(await deliver(OLD_TOKEN, 'msg_old_after_grace')).toBe(401);
    expect(await deliver(entry.current, 'msg_new_after_grace')).toBe(202);

    expect(logs.some((r) => r.msg === 'delivery rejected' && r.status === 401)).toBe(true);
    const text = logs.map((r) => JSON.stringify(r)).join('\n');
    expect(text).not.toContain(OLD_TOKEN);
    expect(text).not.toContain(entry.current);
  });
});
