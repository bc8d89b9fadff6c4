/**
 * What a trigger's commands ask of the AWS host that it cannot give: sudo (the receiver's unit
 * rules it out) and systemctl on a unit receiver.manageUnits does not name (polkit refuses it).
 * Both would fail only at the first push, as a failed or rolled-back run; synth says so instead.
 * Shell commands are read for the plain forms (`sudo ...`, `systemctl restart my-app`) at the
 * start of a command or after `;`, `&&`, `||`, `|`, `(`, `then`, `do` or `else`.
 */

/** A command as the config gives it: a shell line or an argv. */
export type HostCommand = string | readonly string[];

/** The fields of a trigger (stack or receiver config) that hold commands the host runs. */
interface CommandFields {
  command: HostCommand;
  deploy?: { activate?: HostCommand | undefined; healthCheck?: { command: HostCommand } | undefined } | undefined;
}

/** Each command a trigger runs, with its path under the trigger. */
export function commandsOf(trigger: CommandFields): { field: string[]; command: HostCommand }[] {
  const fields: [string[], HostCommand | undefined][] = [
    [['command'], trigger.command],
    [['deploy', 'activate'], trigger.deploy?.activate],
    [['deploy', 'healthCheck', 'command'], trigger.deploy?.healthCheck?.command],
  ];
  return fields.flatMap(([field, command]) => (command === undefined ? [] : [{ field, command }]));
}

/** A unit name systemctl takes: `name[@instance].type`, of a type a service would be restarted by. */
export const UNIT_NAME = /^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|target|timer|path)$/;

/** The systemctl verbs receiver.manageUnits allows on its units (systemd passes the verb and the unit to polkit). */
export const UNIT_VERBS = ['start', 'stop', 'restart', 'reload', 'try-restart', 'reload-or-restart', 'reload-or-try-restart'] as const;

/** Where a simple command may start in a shell line. */
const COMMAND_START = String.raw`(?:^|[;&|(\n]\s*|\b(?:then|do|else)\s+)`;
const SUDO = new RegExp(`${COMMAND_START}sudo(?:\\s|$)`);
const SYSTEMCTL = new RegExp(
  `${COMMAND_START}systemctl((?:\\s+-{1,2}[\\w-]+)*)\\s+(${UNIT_VERBS.join('|')})((?:\\s+[\\w@.:\\\\-]+)+)`,
  'g',
);

/** A unit as systemctl reads a bare name: `my-app` is `my-app.service`. */
function unitName(name: string): string {
  return /\.(service|socket|target|timer|path|mount|scope|slice|swap|device|automount)$/.test(name) ? name : `${name}.service`;
}

/** The units a command starts, stops, restarts or reloads with systemctl (not `systemctl --user`). */
export function systemctlUnitsOf(command: HostCommand): string[] {
  const line = typeof command === 'string' ? command : command.join(' ');
  if (typeof command !== 'string' && command[0] !== 'systemctl') return [];
  const units: string[] = [];
  for (const match of line.matchAll(SYSTEMCTL)) {
    if (/--user\b/.test(match[1] ?? '')) continue;
    units.push(
      ...match[3]!
        .trim()
        .split(/\s+/)
        .filter((word) => !word.startsWith('-'))
        .map(unitName),
    );
  }
  return units;
}

/** Whether a command runs sudo. */
export function usesSudo(command: HostCommand): boolean {
  return typeof command === 'string' ? SUDO.test(command) : command[0] === 'sudo';
}

/** What is wrong with one command for the host, or undefined. */
export function hostCommandProblem(command: HostCommand, manageUnits: readonly string[]): string | undefined {
  if (usesSudo(command)) {
    return 'runs sudo, which cannot work on the host: the receiver\'s unit has NoNewPrivileges and no capabilities. To restart a service, run "systemctl restart <unit>" without sudo and list the unit in receiver.manageUnits';
  }
  const missing = [...new Set(systemctlUnitsOf(command).filter((unit) => !manageUnits.includes(unit)))];
  if (missing.length > 0)
    return `runs systemctl on ${missing.join(', ')}, which receiver.manageUnits does not list: add ${missing.length === 1 ? 'it' : 'them'} there, or the host refuses`;
  return undefined;
}
