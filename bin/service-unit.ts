/**
 * `triggler service-unit`: the receiver's systemd unit for a server without the stack, made from
 * the unit the stack installs on AWS (lib/host-files/triggler-receiver.service), so
 * both run under the same hardening; only the paths differ.
 */
import * as path from 'node:path';
import { isSea, getAsset } from 'node:sea';
import { Command } from 'commander';
import { RECEIVER_UNIT_FILE_NAME, receiverUnitTemplate } from '../lib/host-files/host-files';
import { configPaths, loadReceiverConfigFile } from '../receiver';
import { cliInvocation, type CliInvocation } from './cli-invocation';

/** The unit the stack installs: an asset of the single executable, a file of lib/host-files/ (copied into dist/ by npm pack) otherwise. */
function unitTemplate(): string {
  return isSea() ? getAsset(RECEIVER_UNIT_FILE_NAME, 'utf8') : receiverUnitTemplate();
}

export interface UnitOptions {
  config: string;
  user: string;
  /** How the unit starts `triggler`. */
  triggler: CliInvocation;
  /** Paths the commands may write besides the state directory (the trigger's cwd, its deploy.path). */
  writable: string[];
}

export function serviceUnit(options: UnitOptions): string {
  const { config } = loadReceiverConfigFile(options.config);
  const configFile = path.resolve(options.config);
  const { program, script } = options.triggler;
  const programWhat = script === undefined ? 'the triggler executable path' : 'the node path';
  for (const [what, value] of [
    ['--user', options.user],
    [programWhat, program],
    ...(script === undefined ? [] : [['the CLI path', script]]),
    ['the config path', configFile],
    ['stateDir', config.stateDir],
  ] as const) {
    if (/[\s"'\\$%]/.test(value)) throw new Error(`${what} ${value} holds a space, quote, $ or %: systemd would split or expand it`);
  }
  const writable = [
    ...new Set([
      config.stateDir,
      ...config.triggers.flatMap((t) => [...(t.cwd ? [t.cwd] : []), ...(t.deploy ? [t.deploy.path] : [])]),
      ...options.writable.map((p) => path.resolve(p)),
    ]),
  ];
  const underVarLib = config.stateDir.startsWith('/var/lib/') ? config.stateDir.slice('/var/lib/'.length) : undefined;
  let unit = unitTemplate()
    .replace(
      /^# git-triggler receiver, installed by cfn-init[^\n]*\n# Local changes[^\n]*\n# e\.g\.[^\n]*\n/m,
      `# git-triggler receiver, written by \`triggler service-unit\` for ${configFile}.\n# Relax the hardening with a drop-in (systemctl edit triggler-receiver) rather than here.\n`,
    )
    .replace(/^User=.*$/m, `User=${options.user}`)
    .replace(/^Group=.*$/m, `Group=${options.user}`)
    .replace(
      /^EnvironmentFile=.*$/m,
      '# Variables your commands need (a token in tokenEnv, say): EnvironmentFile=-/etc/triggler/receiver.env\nEnvironmentFile=-/etc/triggler/receiver.env',
    )
    .replace(/^Environment=HOME=.*$/m, `Environment=HOME=${config.stateDir}`)
    .replace(
      /^ExecStart=.*$/m,
      `ExecStart=${[program, ...(script === undefined ? [] : [script])].join(' ')} serve --config ${configFile} --log-format json`,
    )
    .replace(/^ReadWritePaths=.*$/m, `ReadWritePaths=${writable.join(' ')}`);
  unit =
    underVarLib === undefined
      ? unit.replace(/^StateDirectory=.*\nStateDirectoryMode=.*\n/m, '')
      : unit.replace(/^StateDirectory=.*$/m, `StateDirectory=${underVarLib}`);
  return unit;
}

/** Where the unit's sandbox puts something else: PrivateTmp=yes gives the service an empty /tmp and /var/tmp of its own; ProtectHome=yes hides homes. */
const HIDDEN = [
  { under: ['/tmp', '/var/tmp'], why: 'PrivateTmp=yes: the service sees an empty /tmp and /var/tmp of its own' },
  { under: ['/home', '/root', '/run/user'], why: 'ProtectHome=yes: the service cannot see home directories' },
];

/**
 * The paths a config and `--writable` name that the unit's own sandbox hides from the service, one
 * warning each: a config under /tmp that `serve` then cannot find, a token file or deploy path in
 * a home directory.
 */
export function sandboxWarnings(configPath: string, writable: string[] = []): string[] {
  const { config } = loadReceiverConfigFile(configPath);
  const named = [
    { field: 'the config', path: path.resolve(configPath) },
    ...configPaths(config),
    ...writable.map((p) => ({ field: '--writable', path: path.resolve(p) })),
  ];
  return named.flatMap(({ field, path: where }) => {
    const hidden = HIDDEN.find(({ under }) => under.some((dir) => where === dir || where.startsWith(`${dir}/`)));
    return hidden
      ? [
          `${field} ${where} is hidden from the service by the unit's sandbox (${hidden.why}); move it (e.g. under /etc/triggler or /var/lib/triggler)`,
        ]
      : [];
  });
}

export function serviceUnitCommand(): Command {
  return new Command('service-unit')
    .description('print a hardened systemd unit that runs `triggler serve` for a config (the same hardening as the AWS host)')
    .requiredOption('-c, --config <file>', 'the receiver config the unit serves')
    .option('-u, --user <name>', 'the system user it runs as (create it with useradd --system)', 'triggler')
    .option(
      '-w, --writable <path...>',
      "more paths its commands may write (the state directory, each trigger's cwd and deploy.path are already in)",
      [],
    )
    .addHelpText(
      'after',
      '\nExample:\n  triggler service-unit --config /etc/triggler/receiver.json | sudo tee /etc/systemd/system/triggler-receiver.service\n  sudo systemctl daemon-reload && sudo systemctl enable --now triggler-receiver\n\nSee docs/self-hosting.md.',
    )
    .action((options: { config: string; user: string; writable: string[] }) => {
      for (const warning of sandboxWarnings(options.config, options.writable)) process.stderr.write(`warning: ${warning}\n`);
      process.stdout.write(
        serviceUnit({ config: options.config, user: options.user, triggler: cliInvocation(), writable: options.writable }),
      );
    });
}
