/**
 * The stack config: defaults, the JSON Schema file, errors that name the field, CodeCommit and SSM
 * naming rules, and the receiver config generated from it (checked by the receiver's own schema).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseReceiverConfig } from '../../receiver/config/schema';
import { MAX_TRIGGERS_PER_REPOSITORY as MAX_AT_MERGE } from '../../lambda/repository-triggers-provider';
import {
  MAX_TRIGGERS_PER_REPOSITORY,
  branchNameProblem,
  repositoryNameProblem,
  triggerNameProblem,
} from '../../lib/stack-config/codecommit-rules';
import { tokenPrefixOfStack } from '../../bin/tokens-command';
import {
  StackConfigError,
  defaultTokenPrefix,
  loadStackConfig,
  parseStackConfig,
  repositoryTriggerPlans,
  tokenNamesOf,
  type StackConfigInput,
} from '../../lib/stack-config/schema';
import { deployKeyNameOf, generatedDeployKeysOf, ownDeployKeyNamesOf } from '../../lib/stack-config/deploy-keys';
import { receiverConfigFor } from '../../lib/stack-config/receiver-config';
import { parameterNameProblem } from '../../protocol';
import { CONFIG_SCHEMA_PATH, configJsonSchemaText } from '../../scripts/write-config-schema';
import { EXAMPLE_CONFIG_PATH } from '../support/stack-fixture';

const minimal: StackConfigInput = { triggers: [{ repository: 'app', branch: 'main', command: 'make deploy' }] };

function problemsOf(input: unknown): string[] {
  try {
    parseStackConfig(input);
  } catch (error) {
    if (error instanceof StackConfigError) return error.problems;
    throw error;
  }
  throw new Error('the config was accepted');
}

describe('defaults', () => {
  test('a config with one trigger gets every default', () => {
    const config = parseStackConfig(minimal);
    expect(config.stackName).toBe('GitTriggler');
    expect(config.triggers[0]).toEqual({
      repository: 'app',
      branch: 'main',
      command: 'make deploy',
      source: 'codecommit',
      createRepository: false,
      timeoutSeconds: 3600,
      scheme: 'standard',
      env: {},
      rerunInterrupted: true,
    });
    expect(config.receiver).toEqual({
      port: 5000,
      adminPort: 5001,
      instanceType: 't4g.micro',
      allowCidrs: [],
      writablePaths: [],
      manageUnits: [],
      rootVolumeGiB: 8,
      logLevel: 'info',
      hosts: 1,
    });
    expect(config.rollout).toBeUndefined();
    expect(config.tokens).toEqual({ prefix: '/git-triggler/tokens', retainOnDelete: false, cacheSeconds: 60, graceSeconds: 900 });
    expect(config.sender).toEqual({
      memoryMiB: 256,
      timeoutSeconds: 60,
      deliveryTimeoutSeconds: 10,
      retryAttempts: 2,
      maxEventAgeSeconds: 21600,
      commitDetails: false,
    });
    expect(config.network).toEqual({ cidr: '10.0.0.0/16', maxAzs: 1, flowLogs: true });
    expect(config.logRetentionDays).toBe(30);
  });

  test('webhooks.ingress: "direct" for a config that opens allowCidrs (as before the setting), else "none"; the relay\'s defaults', () => {
    expect(parseStackConfig(minimal).webhooks).toEqual({ ingress: 'none', reservedConcurrency: false, timeoutSeconds: 8 });
    expect(parseStackConfig({ ...minimal, receiver: { allowCidrs: ['192.30.252.0/22'] } }).webhooks.ingress).toBe('direct');
    const relayed = parseStackConfig({
      triggers: [{ repository: 'o/r', branch: 'main', command: 'x', source: 'webhook', provider: 'forgejo' }],
      webhooks: { ingress: 'function-url' },
    });
    expect(relayed.webhooks.ingress).toBe('function-url');
    expect(relayed.triggers[0]!.provider).toBe('forgejo');
    expect(receiverConfigFor(relayed, { region: 'eu-west-1' }).triggers[0]).not.toHaveProperty('provider');
  });

  test('the token prefix follows the stack name, the convention `triggler tokens --stack NAME` uses', () => {
    expect(parseStackConfig(minimal).tokens.prefix).toBe('/git-triggler/tokens');
    expect(parseStackConfig({ ...minimal, stackName: 'StagingTriggler' }).tokens.prefix).toBe('/staging-triggler/tokens');
    expect(parseStackConfig({ ...minimal, stackName: 'Staging', tokens: { prefix: '/ops/tokens' } }).tokens.prefix).toBe('/ops/tokens');
    for (const name of ['GitTriggler', 'StagingTriggler', 'CI-Hooks', 'ABCService', 'prod2Triggler', 'x']) {
      expect(defaultTokenPrefix(name)).toBe(tokenPrefixOfStack(name));
    }
  });

  test('the committed example config is valid', () => {
    expect(() => loadStackConfig(EXAMPLE_CONFIG_PATH)).not.toThrow();
  });
});

describe('the JSON Schema file', () => {
  test('is the one the zod schema generates (run npx tsx scripts/write-config-schema.ts after a change)', () => {
    expect(fs.readFileSync(CONFIG_SCHEMA_PATH, 'utf8')).toBe(configJsonSchemaText());
  });

  test('gives every optional field a default, or says in its description what happens without it', () => {
    const schema = JSON.parse(configJsonSchemaText()) as JsonSchema;
    const undocumented: string[] = [];
    walkProperties(schema, '', (where, property, required) => {
      if (required || where === '$schema') return;
      if (property.default === undefined && !/Default:/.test(property.description ?? '')) undocumented.push(where);
    });
    expect(undocumented).toEqual([]);
  });

  test("shows the issue's names and defaults to editors", () => {
    const schema = JSON.parse(configJsonSchemaText()) as JsonSchema;
    const trigger = schema.properties!.triggers!.items!;
    expect(trigger.required).toEqual(['repository', 'branch', 'command']);
    expect(trigger.properties!.createRepository!.default).toBe(false);
    expect(trigger.properties!.scheme!.default).toBe('standard');
    expect(Object.keys(trigger.properties!)).toEqual(expect.arrayContaining(['cwd', 'timeoutSeconds']));
    expect(schema.properties!.receiver!.properties!.port!.default).toBe(5000);
    expect(schema.properties!.receiver!.properties!.allowCidrs!.default).toEqual([]);
    expect(schema.properties!.receiver!.properties!.instanceType!.default).toBe('t4g.micro');
  });
});

describe('a bad config names the field', () => {
  const trigger = { repository: 'app', branch: 'main', command: 'x' };
  test.each<[string, unknown, string]>([
    ['no triggers', { triggers: [] }, 'triggers: must list at least one trigger'],
    ['an empty command', { triggers: [{ ...trigger, command: '' }] }, 'triggers[0].command: must not be empty'],
    [
      'a bad repository name',
      { triggers: [trigger, { ...trigger, repository: 'my app' }] },
      'triggers[1].repository: a CodeCommit repository name may hold only',
    ],
    [
      'a repository ending in .git',
      { triggers: [{ ...trigger, repository: 'app.git' }] },
      'triggers[0].repository: a CodeCommit repository name must not end in ".git"',
    ],
    [
      'a bad branch',
      { triggers: [{ ...trigger, branch: 'feature..x' }] },
      'triggers[0].branch: a CodeCommit branch name must not contain ".."',
    ],
    [
      'a branch SSM cannot name',
      { triggers: [{ ...trigger, branch: 'feat+x' }] },
      'triggers[0].branch: the SSM parameter name /git-triggler/tokens/app/feat+x may hold only letters, digits and _ . - /; set tokenName',
    ],
    [
      'a tokenName SSM cannot name',
      { triggers: [{ ...trigger, tokenName: 'team@app' }] },
      'triggers[0].tokenName: the SSM parameter name /git-triggler/tokens/team@app may hold only',
    ],
    [
      'two triggers disagreeing on createRepository',
      {
        triggers: [
          { ...trigger, createRepository: true },
          { ...trigger, branch: 'dev' },
        ],
      },
      'triggers[1].createRepository: disagrees with triggers[0] for repository app',
    ],
    [
      'createRepository on a webhook trigger',
      { triggers: [{ ...trigger, source: 'webhook', createRepository: true }] },
      'triggers[0].createRepository: applies only to source "codecommit"',
    ],
    [
      'a colliding seed route',
      {
        triggers: [
          { ...trigger, branch: 'main-x' },
          { ...trigger, repository: 'app-main', branch: 'x' },
        ],
      },
      'triggers[1]: its seed route /app-main-x collides with triggers[0]',
    ],
    ['a repeated trigger', { triggers: [trigger, { ...trigger, command: 'y' }] }, 'triggers[1]: repeats triggers[0]'],
    [
      'an unknown trigger field',
      { triggers: [{ ...trigger, branches: ['x'] }] },
      'triggers[0].branches: unknown key (did you mean "branch"?)',
    ],
    ['a port out of range', { ...minimal, receiver: { port: 70000 } }, 'receiver.port:'],
    ['the admin port on the receiver port', { ...minimal, receiver: { port: 5001 } }, 'receiver.adminPort: must differ from receiver.port'],
    [
      'a bad CIDR',
      { ...minimal, receiver: { allowCidrs: ['203.0.113.0/24', '10.0.0.0/33'] } },
      'receiver.allowCidrs[1]: must be an IPv4 CIDR',
    ],
    [
      'a relative writable path',
      { ...minimal, receiver: { writablePaths: ['srv/app'] } },
      'receiver.writablePaths[0]: must be an absolute path',
    ],
    [
      'an instance type that is not one',
      { ...minimal, receiver: { instanceType: 'large' } },
      'receiver.instanceType: must be an EC2 instance type',
    ],
    ['a prefix ending in /', { ...minimal, tokens: { prefix: '/tokens/' } }, 'tokens.prefix: must start with / and not end with /'],
    [
      'a prefix AWS reserves',
      { ...minimal, tokens: { prefix: '/aws/tokens' } },
      'tokens.prefix: the SSM parameter name /aws/tokens must not begin with "aws" or "ssm"',
    ],
    [
      'a cache longer than the grace period',
      { ...minimal, tokens: { cacheSeconds: 900 } },
      'tokens.cacheSeconds: must be shorter than tokens.graceSeconds (900)',
    ],
    [
      'a Lambda timeout shorter than a delivery',
      { ...minimal, sender: { timeoutSeconds: 10 } },
      'sender.timeoutSeconds: must be longer than sender.deliveryTimeoutSeconds (10)',
    ],
    ['too many retries', { ...minimal, sender: { retryAttempts: 3 } }, 'sender.retryAttempts:'],
    [
      'more zones than a stack without credentials knows',
      { ...minimal, network: { maxAzs: 3 } },
      'network.maxAzs: must be 1 or 2: `cdk synth` needs no credentials',
    ],
    ['a retention CloudWatch refuses', { ...minimal, logRetentionDays: 31 }, 'logRetentionDays:'],
    ['a stack name too long for the trigger name', { ...minimal, stackName: 'S'.repeat(88) }, 'stackName: must be at most 87 characters'],
    ['a misspelt section', { ...minimal, reciever: {} }, 'reciever: unknown key (did you mean "receiver"?)'],
    [
      'allowCidrs with the function-url ingress: both fields named',
      {
        triggers: [{ ...trigger, source: 'webhook', provider: 'github' }],
        receiver: { allowCidrs: ['192.30.252.0/22'] },
        webhooks: { ingress: 'function-url' },
      },
      'receiver.allowCidrs: must be empty with webhooks.ingress "function-url"',
    ],
    [
      'allowCidrs with ingress none',
      { ...minimal, receiver: { allowCidrs: ['192.30.252.0/22'] }, webhooks: { ingress: 'none' } },
      'receiver.allowCidrs: must be empty with webhooks.ingress "none"',
    ],
    [
      'the direct ingress with nothing opened',
      { ...minimal, webhooks: { ingress: 'direct' } },
      'receiver.allowCidrs: must list the providers\' address ranges with webhooks.ingress "direct"',
    ],
    [
      'a relayed webhook trigger without its provider',
      { triggers: [{ ...trigger, source: 'webhook' }], webhooks: { ingress: 'function-url' } },
      'triggers[0].provider: is required with webhooks.ingress "function-url"',
    ],
    [
      'a provider on a CodeCommit trigger',
      { triggers: [{ ...trigger, provider: 'github' }] },
      'triggers[0].provider: applies only to source "webhook"',
    ],
    [
      'a provider the receiver does not serve',
      { triggers: [{ ...trigger, source: 'webhook', provider: 'gitee' }] },
      'triggers[0].provider:',
    ],
    [
      'a relay with no webhook trigger',
      { ...minimal, webhooks: { ingress: 'function-url' } },
      'webhooks.ingress: "function-url" needs at least one trigger with source "webhook"',
    ],
    [
      'a relay bound past what providers wait',
      { triggers: [{ ...trigger, source: 'webhook', provider: 'github' }], webhooks: { ingress: 'function-url', timeoutSeconds: 30 } },
      'webhooks.timeoutSeconds:',
    ],
  ])('%s', (_name, input, expected) => {
    expect(problemsOf(input)).toEqual(expect.arrayContaining([expect.stringContaining(expected)]));
  });

  test('every problem is reported at once, each naming its own field', () => {
    const problems = problemsOf({ triggers: [{ repository: 'a b', branch: '', command: '' }], receiver: { port: 0 } });
    expect(problems.map((p) => p.split(':')[0])).toEqual(
      expect.arrayContaining(['triggers[0].branch', 'triggers[0].command', 'receiver.port']),
    );
  });

  test('loadStackConfig names the file it cannot read or parse', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-config-'));
    try {
      const broken = path.join(dir, 'broken.json');
      fs.writeFileSync(broken, '{ "triggers": [ }');
      expect(() => loadStackConfig(path.join(dir, 'missing.json'))).toThrow(/cannot read .*missing\.json: ENOENT/);
      expect(() => loadStackConfig(broken)).toThrow(/broken\.json is not valid JSON/);
      const invalid = path.join(dir, 'invalid.json');
      fs.writeFileSync(invalid, JSON.stringify({ triggers: [{ repository: 'app', branch: 'main' }] }));
      expect(() => loadStackConfig(invalid)).toThrow(/invalid\.json is not valid:\n {2}triggers\[0\]\.command:/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('what the stack derives from the config', () => {
  const config = parseStackConfig({
    triggers: [
      { repository: 'app', branch: 'main', command: 'a', createRepository: true },
      { repository: 'app', branch: 'release/v2', command: 'b', createRepository: true, tokenName: 'app/shared' },
      { repository: 'app', branch: 'hotfix', command: 'c', createRepository: true, tokenName: 'app/shared' },
      { repository: 'lib', branch: 'main', command: 'd' },
      { repository: 'Codertocat/Hello-World', branch: 'main', command: 'e', source: 'webhook' },
    ],
  });

  test('one token per name, shared names once', () => {
    expect(tokenNamesOf(config)).toEqual(['app/main', 'app/shared', 'lib/main', 'Codertocat/Hello-World/main']);
  });

  test('one CodeCommit trigger per repository listing all its branches; webhook triggers get none', () => {
    expect(repositoryTriggerPlans(config)).toEqual([
      { repository: 'app', createRepository: true, branches: ['main', 'release/v2', 'hotfix'] },
      { repository: 'lib', createRepository: false, branches: ['main'] },
    ]);
  });

  test("the receiver config passes the receiver's own schema, keeps trigger order, and holds no token", () => {
    const receiver = parseReceiverConfig(receiverConfigFor(config, { region: 'eu-west-1' }));
    expect(receiver.triggers.map((t) => `${t.repository}@${t.branch}`)).toEqual(config.triggers.map((t) => `${t.repository}@${t.branch}`));
    expect(receiver.tokens.ssm).toEqual({ prefix: '/git-triggler/tokens', ttlSeconds: 60, graceSeconds: 900 });
    expect(receiver.admin).toEqual({
      host: '127.0.0.1',
      port: 5001,
      allowedHosts: [],
      maxConnections: 256,
      maxLogViewers: 128,
      maxLogViewersPerRun: 64,
    });
    expect(receiver.stateDir).toBe('/var/lib/triggler');
    expect(receiver.triggers.every((t) => t.token === undefined && t.tokenEnv === undefined)).toBe(true);
    expect(receiver.triggers[1]!.tokenName).toBe('app/shared');
  });

  test('rerunInterrupted reaches the receiver: true unless a trigger says false', () => {
    const stack = parseStackConfig({
      triggers: [
        { repository: 'app', branch: 'main', command: 'true' },
        { repository: 'app', branch: 'once', command: 'true', rerunInterrupted: false },
      ],
    });
    expect(parseReceiverConfig(receiverConfigFor(stack, { region: 'eu-west-1' })).triggers.map((t) => t.rerunInterrupted)).toEqual([
      true,
      false,
    ]);
  });
});

describe('CodeCommit and SSM naming rules', () => {
  test.each<[string, string, string | undefined]>([
    ['a plain branch', 'main', undefined],
    ['slashes and dots', 'release/v2.1', undefined],
    ['a leading slash', '/main', 'must not begin or end with "/" or "."'],
    ['a trailing dot', 'main.', 'must not begin or end with "/" or "."'],
    ['"@" alone', '@', 'must not be "@" alone'],
    ['"//"', 'a//b', 'must not contain "..", "//" or "@{"'],
    ['"@{"', 'a@{b', 'must not contain "..", "//" or "@{"'],
    ['a space', 'my branch', 'must not contain spaces'],
    ['a colon', 'a:b', 'must not contain spaces'],
    ['a commit id', '0123456789abcdef0123456789abcdef01234567', 'must not be 40 hexadecimal digits'],
    ['257 characters', 'x'.repeat(257), 'has 1 to 256 characters'],
  ])('branch: %s', (_label, branch, expected) => {
    const problem = branchNameProblem(branch);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toContain(expected);
  });

  test('repository and trigger names', () => {
    expect(repositoryNameProblem('my-repo_1.0')).toBeUndefined();
    expect(repositoryNameProblem('r'.repeat(101))).toContain('1 to 100 characters');
    expect(triggerNameProblem('git-triggler-GitTriggler')).toBeUndefined();
    expect(triggerNameProblem('has space')).toContain('may hold only letters');
    expect(triggerNameProblem('t'.repeat(101))).toContain('1 to 100 characters');
  });

  test('ten triggers per repository, the same limit at synth and in the merge handler', () => {
    expect(MAX_TRIGGERS_PER_REPOSITORY).toBe(10);
    expect(MAX_AT_MERGE).toBe(MAX_TRIGGERS_PER_REPOSITORY);
  });

  test('SSM parameter names', () => {
    expect(parameterNameProblem('/git-triggler/tokens/app/main')).toBeUndefined();
    expect(parameterNameProblem('/ssm-stuff/x')).toContain('must not begin with "aws" or "ssm"');
    expect(parameterNameProblem(`/${Array.from({ length: 16 }, () => 'l').join('/')}`)).toContain('has 16 levels; SSM allows 15');
    expect(parameterNameProblem(`/${'n'.repeat(1011)}`)).toContain('SSM allows 1011');
    expect(parameterNameProblem('/a//b')).toContain('empty level');
  });
});

interface JsonSchema {
  type?: string;
  description?: string;
  default?: unknown;
  required?: string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
}

function walkProperties(schema: JsonSchema, at: string, visit: (where: string, property: JsonSchema, required: boolean) => void): void {
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const where = at ? `${at}.${name}` : name;
    visit(where, property, (schema.required ?? []).includes(name));
    walkProperties(property, where, visit);
    if (property.items) walkProperties(property.items, `${where}[]`, visit);
  }
}

describe('deploy keys', () => {
  const site = { repository: 'owner/site', branch: 'main', command: 'make', source: 'webhook' as const, tokenName: 'github/owner/site' };
  const deploy = (repositoryUrl: string | undefined, more: Record<string, unknown> = {}) => ({
    ...(repositoryUrl === undefined ? {} : { repositoryUrl }),
    path: '/srv/site',
    ...more,
  });
  const sshKeysOf = (input: StackConfigInput) =>
    receiverConfigFor(parseStackConfig(input), { region: 'eu-west-1' }).triggers.map((t) => t.deploy?.sshKey);

  test('a webhook trigger fetching over SSH gets a generated key, named after its repository; https and CodeCommit get none', () => {
    const config = parseStackConfig({
      triggers: [
        { ...site, deploy: deploy('git@github.com:owner/site.git') },
        { ...site, repository: 'owner/ssh-url', deploy: deploy('ssh://git@gitlab.com:22/owner/ssh-url.git', { path: '/srv/ssh-url' }) },
        { ...site, repository: 'owner/public', deploy: deploy('https://github.com/owner/public.git', { path: '/srv/public' }) },
        { repository: 'app', branch: 'main', command: 'make', deploy: deploy(undefined, { path: '/srv/app' }) },
        { ...site, repository: 'owner/nodeploy' },
      ],
    });
    expect(receiverConfigFor(config, { region: 'eu-west-1' }).triggers.map((t) => t.deploy?.sshKey)).toEqual([
      'deploy-keys/owner/site',
      'deploy-keys/owner/ssh-url',
      undefined,
      undefined,
      undefined,
    ]);
    expect(generatedDeployKeysOf(config.triggers)).toEqual([
      { repository: 'owner/site', keyName: 'deploy-keys/owner/site', repositoryUrl: 'git@github.com:owner/site.git' },
      { repository: 'owner/ssh-url', keyName: 'deploy-keys/owner/ssh-url', repositoryUrl: 'ssh://git@gitlab.com:22/owner/ssh-url.git' },
    ]);
    expect(() => parseReceiverConfig(receiverConfigFor(config, { region: 'eu-west-1' }))).not.toThrow();
  });

  test('two branches of one repository share its key', () => {
    const input: StackConfigInput = {
      triggers: [
        { ...site, deploy: deploy('git@github.com:owner/site.git') },
        { ...site, branch: 'dev', deploy: deploy('git@github.com:owner/site.git', { path: '/srv/site-dev' }) },
      ],
    };
    expect(sshKeysOf(input)).toEqual(['deploy-keys/owner/site', 'deploy-keys/owner/site']);
    expect(generatedDeployKeysOf(parseStackConfig(input).triggers)).toHaveLength(1);
  });

  test('a trigger naming its own sshKey keeps it and gets none generated; knownHosts pass through', () => {
    const knownHosts = ['git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'];
    const config = parseStackConfig({
      triggers: [{ ...site, deploy: deploy('git@git.example.com:owner/site.git', { sshKey: 'keys/site', knownHosts }) }],
    });
    expect(receiverConfigFor(config, { region: 'eu-west-1' }).triggers[0]!.deploy).toMatchObject({ sshKey: 'keys/site', knownHosts });
    expect(generatedDeployKeysOf(config.triggers)).toEqual([]);
    expect(ownDeployKeyNamesOf(config.triggers)).toEqual(['keys/site']);
  });

  test('a name SSM cannot hold is made one it can, apart from names that read alike', () => {
    expect(deployKeyNameOf('Codertocat/Hello-World')).toBe('deploy-keys/Codertocat/Hello-World');
    expect(deployKeyNameOf('My Project')).toMatch(/^deploy-keys\/My-Project-[0-9a-f]{8}$/);
    expect(deployKeyNameOf('My  Project')).not.toBe(deployKeyNameOf('My Project'));
    expect(deployKeyNameOf('team@host//x')).toMatch(/^deploy-keys\/team-host\/x-[0-9a-f]{8}$/);
    expect(deployKeyNameOf('@@@')).toMatch(/^deploy-keys\/[0-9a-f]{8}$/);
    for (const name of ['My Project', 'team@host//x', '@@@', 'ünïcode/repo', ' /lead/']) {
      expect(parameterNameProblem(`/git-triggler/tokens/${deployKeyNameOf(name)}.pub`)).toBeUndefined();
    }
    expect(
      sshKeysOf({ triggers: [{ ...site, repository: 'My Project', deploy: deploy('git@bitbucket.org:team/my-project.git') }] })[0],
    ).toBe(deployKeyNameOf('My Project'));
  });

  test.each<[string, StackConfigInput, string]>([
    [
      'an SSH host nobody pinned, without knownHosts',
      { triggers: [{ ...site, deploy: deploy('git@git.example.com:owner/site.git') }] },
      'triggers[0].deploy.knownHosts: is needed for git.example.com: host keys ship only for github.com, gitlab.com, bitbucket.org and codeberg.org',
    ],
    [
      'an unpinned port, without knownHosts',
      { triggers: [{ ...site, deploy: deploy('ssh://git@gitlab.com:2222/owner/site.git') }] },
      'triggers[0].deploy.knownHosts: is needed for [gitlab.com]:2222',
    ],
    [
      'knownHosts without a line for the host',
      {
        triggers: [
          {
            ...site,
            deploy: deploy('git@git.example.com:owner/site.git', {
              knownHosts: ['other.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'],
            }),
          },
        ],
      },
      'triggers[0].deploy.knownHosts: has no line for git.example.com',
    ],
    [
      'an sshKey for an https URL',
      { triggers: [{ ...site, deploy: deploy('https://github.com/owner/site.git', { sshKey: 'keys/site' }) }] },
      'triggers[0].deploy.sshKey: applies only to an SSH repositoryUrl',
    ],
    [
      'knownHosts for the CodeCommit URL',
      {
        triggers: [
          {
            repository: 'app',
            branch: 'main',
            command: 'x',
            deploy: deploy(undefined, {
              knownHosts: ['github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'],
            }),
          },
        ],
      },
      'triggers[0].deploy.knownHosts: applies only to an SSH repositoryUrl (ssh://git@host/owner/repo.git or git@host:owner/repo.git), not https://git-codecommit.<region>.amazonaws.com/v1/repos/app',
    ],
    [
      'an sshKey SSM cannot name',
      { triggers: [{ ...site, deploy: deploy('git@github.com:owner/site.git', { sshKey: 'team@site' }) }] },
      'triggers[0].deploy.sshKey: the SSM parameter name /git-triggler/tokens/team@site may hold only',
    ],
    [
      "a repository too deep for its key's SSM name",
      {
        triggers: [
          { ...site, repository: Array.from({ length: 14 }, (_, i) => `l${i}`).join('/'), deploy: deploy('git@github.com:owner/site.git') },
        ],
      },
      'triggers[0].deploy.sshKey: the deploy key the stack would generate for this repository cannot be stored: the SSM parameter name /git-triggler/tokens/deploy-keys/l0/',
    ],
    [
      'a generated key named like a token',
      {
        triggers: [
          { ...site, repository: 'deploy-keys', branch: 'site', tokenName: undefined },
          { ...site, repository: 'site', deploy: deploy('git@github.com:owner/site.git') },
        ],
      },
      'triggers[1].deploy.sshKey: the deploy key the stack would generate for this repository, deploy-keys/site, is also the token of triggers[0]; set deploy.sshKey to name a key of your own',
    ],
    [
      "a generated key named like another key's public half",
      {
        triggers: [
          { ...site, repository: 'app', deploy: deploy('git@github.com:o/app.git') },
          { ...site, repository: 'app.pub', deploy: deploy('git@github.com:o/app.pub.git', { path: '/srv/other' }) },
        ],
      },
      'triggers[1].deploy.sshKey: the deploy key the stack would generate for this repository, deploy-keys/app.pub, is also the public half of the deploy key the stack generates for repository app',
    ],
    [
      'an sshKey naming a token',
      { triggers: [{ ...site, deploy: deploy('git@github.com:owner/site.git', { sshKey: 'github/owner/site' }) }] },
      'triggers[0].deploy.sshKey: is the token of triggers[0]: a deploy key needs a name of its own',
    ],
    [
      'an sshKey naming a generated public half',
      {
        triggers: [
          { ...site, deploy: deploy('git@github.com:owner/site.git') },
          {
            ...site,
            branch: 'dev',
            deploy: deploy('git@github.com:owner/site.git', { path: '/srv/dev', sshKey: 'deploy-keys/owner/site.pub' }),
          },
        ],
      },
      'triggers[1].deploy.sshKey: is the public half of the deploy key the stack generates for repository owner/site',
    ],
    [
      "one repository's triggers fetching different URLs with the one generated key",
      {
        triggers: [
          { ...site, deploy: deploy('git@github.com:owner/site.git') },
          { ...site, branch: 'dev', deploy: deploy('git@github.com:fork/site.git', { path: '/srv/dev' }) },
        ],
      },
      "triggers[1].deploy.repositoryUrl: differs from triggers[0]'s (git@github.com:owner/site.git), and both would fetch with the one key the stack generates for repository owner/site",
    ],
  ])('refused: %s', (_name, input, expected) => {
    expect(problemsOf(input)).toEqual(expect.arrayContaining([expect.stringContaining(expected)]));
  });

  test("accepted: an unpinned host with its knownHosts, and an sshKey sharing another trigger's generated key", () => {
    const knownHosts = ['git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'];
    expect(sshKeysOf({ triggers: [{ ...site, deploy: deploy('git@git.example.com:owner/site.git', { knownHosts }) }] })).toEqual([
      'deploy-keys/owner/site',
    ]);
    expect(
      sshKeysOf({
        triggers: [
          { ...site, deploy: deploy('git@github.com:owner/site.git') },
          {
            ...site,
            branch: 'dev',
            deploy: deploy('ssh://git@github.com/owner/site.git', { path: '/srv/dev', sshKey: 'deploy-keys/owner/site' }),
          },
        ],
      }),
    ).toEqual(['deploy-keys/owner/site', 'deploy-keys/owner/site']);
  });
});
