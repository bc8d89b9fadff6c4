/**
 * How a command of the receiver restarts a service on the host: `systemctl restart my-app`, with
 * no sudo. The unit's hardening (NoNewPrivileges, and the settings that imply it, an empty
 * capability set, RestrictSUIDSGID) leaves sudo no way to work, by design. systemctl as the
 * service user instead asks systemd over D-Bus, and systemd asks polkit: a rule lets the service
 * user start, stop, restart and reload exactly the units the stack config names, and nothing else.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { UNIT_VERBS } from '../../stack-config/host-commands';

/** Where polkitd reads its JavaScript rules (the same path on Amazon Linux 2023 and Debian). */
export const POLKIT_RULE_FILE = '/etc/polkit-1/rules.d/50-git-triggler.rules';

/** The polkit rule: ES5, which every polkitd's JavaScript engine (mozjs, duktape) reads. */
export function polkitRuleFor(units: readonly string[], serviceUser: string): string {
  return [
    "// Written by the git-triggler stack from receiver.manageUnits: the receiver's commands, run as",
    `// ${serviceUser}, may start, stop, restart and reload these units with systemctl, and no others.`,
    'polkit.addRule(function (action, subject) {',
    `  if (action.id !== "org.freedesktop.systemd1.manage-units" || subject.user !== ${JSON.stringify(serviceUser)}) return polkit.Result.NOT_HANDLED;`,
    `  var units = ${JSON.stringify(units)};`,
    `  var verbs = ${JSON.stringify(UNIT_VERBS)};`,
    '  if (units.indexOf(action.lookup("unit")) >= 0 && verbs.indexOf(action.lookup("verb")) >= 0) return polkit.Result.YES;',
    '  return polkit.Result.NOT_HANDLED;',
    '});',
    '',
  ].join('\n');
}

/**
 * cfn-init elements for the `system` config: polkit and the rule, when any unit is named. The
 * standard AL2023 image is reported to lack polkit (it is in the AL2023 repositories); cfn-init
 * leaves an installed package alone.
 */
export function unitControlSetup(units: readonly string[], serviceUser: string): ec2.InitElement[] {
  if (units.length === 0) return [];
  return [
    ec2.InitPackage.yum('polkit'),
    ec2.InitFile.fromString(POLKIT_RULE_FILE, polkitRuleFor(units, serviceUser), { owner: 'root', group: 'root', mode: '000644' }),
  ];
}
