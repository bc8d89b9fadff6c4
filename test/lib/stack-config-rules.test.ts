import { parseStackConfig, StackConfigError, type StackConfig, type StackConfigInput } from '../../lib/stack-config/schema';
import { rolloutSettingsOf } from '../../lib/stack-config/fleet-settings';
import {
  RECEIVER_ACCEPTS_ITS_CONFIG,
  STACK_CONFIG_RULES,
  stackConfigProblems,
  type StackConfigProblem,
} from '../../lib/stack-config/rules';

const config = parseStackConfig({ triggers: [{ repository: 'app', branch: 'main', command: 'make deploy' }] });

function problemsOfRule(id: string, broken: StackConfig): StackConfigProblem[] {
  const rule = [...STACK_CONFIG_RULES, RECEIVER_ACCEPTS_ITS_CONFIG].find((candidate) => candidate.id === id);
  if (!rule) throw new Error(`no rule ${id}`);
  const problems: StackConfigProblem[] = [];
  rule.check(broken, (path, message) => problems.push({ path, message }));
  return problems;
}

describe('stack config rules', () => {
  test('each rule has its own kebab-case name and says why it exists', () => {
    const rules = [...STACK_CONFIG_RULES, RECEIVER_ACCEPTS_ITS_CONFIG];
    expect(new Set(rules.map((rule) => rule.id)).size).toBe(rules.length);
    for (const rule of rules) {
      expect(rule.id).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(rule.explanation.length).toBeGreaterThan(30);
    }
  });

  test('a valid config breaks no rule', () => {
    expect(stackConfigProblems(config)).toEqual([]);
  });

  test('a rule reports at the field that fixes it; a per-trigger rule under that trigger', () => {
    expect(problemsOfRule('distinct-ports', { ...config, receiver: { ...config.receiver, adminPort: config.receiver.port } })).toEqual([
      { path: ['receiver', 'adminPort'], message: 'must differ from receiver.port' },
    ]);
    const sudo = { ...config, triggers: [config.triggers[0]!, { ...config.triggers[0]!, branch: 'next', command: 'sudo make' }] };
    expect(problemsOfRule('commands-fit-the-host', sudo).map((problem) => problem.path)).toEqual([['triggers', 1, 'command']]);
    expect(problemsOfRule('distinct-ports', sudo)).toEqual([]);
  });

  test('a cwd or deploy.path under /tmp or /var/tmp is refused: the command runner has its own', () => {
    const inTmp = {
      ...config,
      triggers: [
        { ...config.triggers[0]!, cwd: '/tmp/work' },
        { ...config.triggers[0]!, branch: 'next', cwd: '/srv/work', deploy: { ...config.triggers[0]!.deploy, path: '/var/tmp/app' } },
        { ...config.triggers[0]!, branch: 'other', cwd: '/tmpfiles' },
      ],
    } as StackConfig;
    const problems = problemsOfRule('paths-outside-private-tmp', inTmp);
    expect(problems.map((problem) => problem.path)).toEqual([
      ['triggers', 0, 'cwd'],
      ['triggers', 1, 'deploy', 'path'],
    ]);
    expect(problems[0]!.message).toMatch(/^\/tmp\/work is under \/tmp, which the command runner sees as its own private \/tmp/);
  });

  test("the receiver's own schema runs only once every other rule is clean", () => {
    const twice = { ...config, triggers: [config.triggers[0]!, config.triggers[0]!] };
    expect(problemsOfRule('receiver-accepts-its-config', twice).length).toBeGreaterThan(0);
    const alsoBadPorts = { ...twice, receiver: { ...twice.receiver, adminPort: twice.receiver.port } };
    expect(stackConfigProblems(alsoBadPorts).map((problem) => problem.path)).toEqual([['receiver', 'adminPort']]);
  });
});

describe('a fleet in the stack config', () => {
  const deployed = { repository: 'app', branch: 'main', command: 'make', deploy: { path: '/srv/app' } };
  const fleet: StackConfigInput = { triggers: [deployed], receiver: { hosts: 4 } };

  function problemsOf(input: StackConfigInput): string[] {
    try {
      parseStackConfig(input);
    } catch (error) {
      if (error instanceof StackConfigError) return error.problems;
      throw error;
    }
    return [];
  }

  test('a fleet without a rollout section takes every default; hosts 1 is the single host', () => {
    const config = parseStackConfig(fleet);
    expect(config.receiver.hosts).toBe(4);
    expect(rolloutSettingsOf(config)).toEqual({
      canary: 1,
      batchSize: '25%',
      maxFailedHosts: 0,
      bakeSeconds: 300,
      alarms: [],
      hold: false,
    });
    expect(parseStackConfig({ triggers: [deployed] }).receiver.hosts).toBe(1);
  });

  test('batchSize is a count or a percentage of the fleet; hosts and every count are whole numbers in range', () => {
    expect(parseStackConfig({ ...fleet, rollout: { batchSize: '50%' } }).rollout!.batchSize).toBe('50%');
    expect(parseStackConfig({ ...fleet, rollout: { batchSize: 2 } }).rollout!.batchSize).toBe(2);
    expect(problemsOf({ ...fleet, rollout: { batchSize: '0%' } }).join('\n')).toMatch(/^rollout\.batchSize: /m);
    expect(problemsOf({ ...fleet, rollout: { batchSize: '150%' } }).join('\n')).toMatch(/^rollout\.batchSize: /m);
    expect(problemsOf({ ...fleet, receiver: { hosts: 0 } })).toEqual([expect.stringMatching(/^receiver\.hosts: /)]);
    expect(problemsOf({ ...fleet, receiver: { hosts: 1.5 } })).toEqual([expect.stringMatching(/^receiver\.hosts: /)]);
    expect(problemsOf({ ...fleet, rollout: { alarms: [''] } })).toEqual([expect.stringMatching(/^rollout\.alarms\[0\]: /)]);
    expect(problemsOf({ ...fleet, rollout: { alarms: ['bad\u0007name'] } })).toEqual([
      'rollout.alarms[0]: must be an alarm name without control characters',
    ]);
  });

  test('a rollout section needs a fleet', () => {
    expect(problemsOf({ triggers: [deployed], rollout: { canary: 1 } })).toEqual([
      'rollout: applies only to a fleet: set receiver.hosts above 1 (one host deploys each push itself)',
    ]);
  });

  test('the canary, the batch size and the failure threshold must fit the fleet, each named at its field', () => {
    expect(problemsOf({ ...fleet, rollout: { canary: 4 } })).toEqual([
      'rollout.canary: must be less than receiver.hosts (4): the canary is switched alone, then the rest in batches',
    ]);
    expect(problemsOf({ ...fleet, rollout: { canary: 1, batchSize: 4, maxFailedHosts: 3 } })).toEqual([
      'rollout.batchSize: must be at most 3, the hosts left after the canary (or a percentage such as "50%")',
      'rollout.maxFailedHosts: must be less than 3, the hosts switched in batches: with 3 every one of them could fail and the rollout still go on',
    ]);
    expect(problemsOf({ ...fleet, rollout: { canary: 1, batchSize: 3, maxFailedHosts: 2 } })).toEqual([]);
  });

  test('every trigger of a fleet deploys releases', () => {
    const bare = { repository: 'tool', branch: 'main', command: 'make' };
    expect(problemsOf({ ...fleet, triggers: [deployed, bare] })).toEqual([
      'triggers[1].deploy: is required on a fleet (receiver.hosts 4): a rollout prepares, switches and rolls back releases, which only a deploy section makes',
    ]);
    expect(problemsOf({ triggers: [deployed, bare] })).toEqual([]);
  });

  test('a fleet takes no webhook on its receiver port: only through the relay, which starts a rollout', () => {
    expect(problemsOf({ ...fleet, receiver: { hosts: 4, allowCidrs: ['203.0.113.0/24'] } })).toEqual([
      'receiver.allowCidrs: must be empty on a fleet (receiver.hosts above 1), and webhooks.ingress not "direct": a webhook would deploy on one host, past the rollout; use webhooks.ingress "function-url", whose relay starts a rollout',
    ]);
  });
});
