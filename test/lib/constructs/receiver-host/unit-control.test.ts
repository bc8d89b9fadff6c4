/**
 * receiver.manageUnits: the host gets polkit and a rule that lets the service user start, stop,
 * restart and reload exactly those units with systemctl (no sudo, which the unit's hardening
 * rules out). The rule is run here in a JavaScript sandbox with polkit's objects stood in; the
 * host test runs it under a real polkitd and systemd.
 */
import * as vm from 'node:vm';
import { Template as Assertions } from 'aws-cdk-lib/assertions';
import { POLKIT_RULE_FILE, polkitRuleFor } from '../../../../lib/constructs/receiver-host/unit-control';
import { configOf, removeScratch, trigglerApp } from '../../../support/stack-fixture';

afterAll(removeScratch);

type Init = Record<
  string,
  { packages?: Record<string, Record<string, unknown>>; files?: Record<string, { content: unknown; owner?: string; mode?: string }> }
>;

function initWith(manageUnits?: string[]): Init {
  const deploy = { path: '/srv/my-app', ...(manageUnits ? { activate: 'systemctl restart my-app' } : {}) };
  const { stack } = trigglerApp(
    configOf({
      triggers: [{ repository: 'my-app', branch: 'main', command: 'true', deploy }],
      receiver: { ...(manageUnits ? { manageUnits } : {}) },
    }),
  );
  const resources = Assertions.fromStack(stack).toJSON().Resources as Record<string, { Type: string; Metadata?: Record<string, unknown> }>;
  return Object.values(resources).find((r) => r.Type === 'AWS::EC2::Instance')!.Metadata!['AWS::CloudFormation::Init'] as Init;
}

/** What polkitd would answer for an action, by the rule's own code. */
function decide(rule: string, action: { id: string; unit?: string; verb?: string }, user: string): string {
  const rules: ((action: unknown, subject: unknown) => string)[] = [];
  const polkit = {
    Result: { YES: 'yes', NO: 'no', NOT_HANDLED: 'not handled' },
    addRule: (fn: (action: unknown, subject: unknown) => string) => rules.push(fn),
  };
  vm.runInNewContext(rule, { polkit });
  expect(rules).toHaveLength(1);
  const details: Record<string, string | undefined> = { unit: action.unit, verb: action.verb };
  return rules[0]!({ id: action.id, lookup: (key: string) => details[key] }, { user });
}

describe('receiver.manageUnits', () => {
  it('installs polkit and a root-owned rule naming the units', () => {
    const init = initWith(['my-app.service', 'worker@1.service']);
    expect(init.system!.packages!.yum).toHaveProperty('polkit');
    const file = init.system!.files![POLKIT_RULE_FILE]!;
    expect(file).toMatchObject({ owner: 'root', mode: '000644' });
    expect(file.content).toBe(polkitRuleFor(['my-app.service', 'worker@1.service'], 'triggler'));
  });

  it('adds nothing without units', () => {
    const init = initWith();
    expect(init.system!.packages!.yum).not.toHaveProperty('polkit');
    expect(init.system!.files?.[POLKIT_RULE_FILE]).toBeUndefined();
  });

  it('lets the service user manage exactly those units, with the verbs a deploy uses, and nobody else', () => {
    const rule = polkitRuleFor(['my-app.service'], 'triggler');
    const manage = 'org.freedesktop.systemd1.manage-units';
    for (const verb of ['restart', 'start', 'stop', 'reload', 'try-restart', 'reload-or-restart'])
      expect(decide(rule, { id: manage, unit: 'my-app.service', verb }, 'triggler')).toBe('yes');
    expect(decide(rule, { id: manage, unit: 'sshd.service', verb: 'restart' }, 'triggler')).toBe('not handled');
    expect(decide(rule, { id: manage, unit: 'my-app.service', verb: 'enable' }, 'triggler')).toBe('not handled');
    expect(decide(rule, { id: manage, unit: 'my-app.service', verb: 'restart' }, 'ec2-user')).toBe('not handled');
    expect(decide(rule, { id: 'org.freedesktop.systemd1.manage-unit-files', unit: 'my-app.service', verb: 'restart' }, 'triggler')).toBe(
      'not handled',
    );
  });

  it('refuses what is not a unit name, naming the field', () => {
    expect(() =>
      configOf({ triggers: [{ repository: 'a', branch: 'main', command: 'true' }], receiver: { manageUnits: ['my-app'] } }),
    ).toThrow('receiver.manageUnits[0]: must be a systemd unit name such as my-app.service');
    expect(() =>
      configOf({
        triggers: [{ repository: 'a', branch: 'main', command: 'true' }],
        receiver: { manageUnits: ['a"); polkit.Result.YES; ("x.service'] },
      }),
    ).toThrow('receiver.manageUnits[0]: must be a systemd unit name');
  });
});

describe('commands the host cannot run are refused at synth, naming the field', () => {
  const config =
    (trigger: Record<string, unknown>, manageUnits: string[] = []) =>
    () =>
      configOf({ triggers: [{ repository: 'my-app', branch: 'main', command: 'true', ...trigger } as never], receiver: { manageUnits } });

  it('sudo anywhere a command starts, in the command, activate or the health check', () => {
    expect(config({ deploy: { path: '/srv/my-app', activate: 'sudo systemctl restart my-app' } })).toThrow(
      'triggers[0].deploy.activate: runs sudo, which cannot work on the host: the receiver\'s unit has NoNewPrivileges and no capabilities. To restart a service, run "systemctl restart <unit>" without sudo and list the unit in receiver.manageUnits',
    );
    expect(config({ command: 'npm ci && sudo npm run install-service' })).toThrow('triggers[0].command: runs sudo');
    expect(config({ command: ['sudo', 'make'] })).toThrow('triggers[0].command: runs sudo');
    expect(config({ deploy: { path: '/srv/my-app', healthCheck: { command: 'if true; then sudo curl localhost; fi' } } })).toThrow(
      'triggers[0].deploy.healthCheck.command: runs sudo',
    );
    // Not a command of its own.
    expect(config({ command: 'echo "no sudo here" && grep -c sudo /etc/group' })).not.toThrow();
  });

  it('systemctl on a unit receiver.manageUnits does not list; a listed one, with or without .service, is fine', () => {
    expect(config({ deploy: { path: '/srv/my-app', activate: 'systemctl restart my-app' } })).toThrow(
      'triggers[0].deploy.activate: runs systemctl on my-app.service, which receiver.manageUnits does not list: add it there, or the host refuses',
    );
    expect(
      config({ deploy: { path: '/srv/my-app', activate: 'systemctl restart my-app && systemctl reload nginx.service' } }, [
        'my-app.service',
      ]),
    ).toThrow('runs systemctl on nginx.service, which');
    expect(config({ deploy: { path: '/srv/my-app', activate: 'systemctl restart my-app' } }, ['my-app.service'])).not.toThrow();
    expect(config({ command: ['systemctl', 'reload', 'nginx.service'] }, ['nginx.service'])).not.toThrow();
    // Reading status needs no rule.
    expect(config({ deploy: { path: '/srv/my-app', healthCheck: { command: 'systemctl is-active my-app' } } })).not.toThrow();
  });
});
