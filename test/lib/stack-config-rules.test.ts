import { parseStackConfig, type StackConfig } from '../../lib/stack-config/schema';
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

  test("the receiver's own schema runs only once every other rule is clean", () => {
    const twice = { ...config, triggers: [config.triggers[0]!, config.triggers[0]!] };
    expect(problemsOfRule('receiver-accepts-its-config', twice).length).toBeGreaterThan(0);
    const alsoBadPorts = { ...twice, receiver: { ...twice.receiver, adminPort: twice.receiver.port } };
    expect(stackConfigProblems(alsoBadPorts).map((problem) => problem.path)).toEqual([['receiver', 'adminPort']]);
  });
});
