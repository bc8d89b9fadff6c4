/**
 * The files the receiver's host runs from, in one place for every way they ship: the CDK stack's
 * receiver host (cfn-init installs them), `triggler service-unit` (the unit for a server without
 * the stack) and `npm pack` (the packed CLI and the unit beside it). Nothing here knows the CDK.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BuildOptions } from 'esbuild';

/** The systemd unit's file name: beside this module in a clone, beside the bundle in dist/. */
export const RECEIVER_UNIT_FILE_NAME = 'triggler-receiver.service';
/** cfn-hup's unit, which applies the stack's metadata changes on the AWS host. */
export const CFN_HUP_UNIT_FILE_NAME = 'cfn-hup.service';
/** The script that waits for the receiver's /healthz and signals the stack. */
export const WAIT_HEALTHY_FILE_NAME = 'wait-healthy.sh';
/** The command runner's socket and its per-connection service (commands without instance metadata). */
export const COMMAND_SOCKET_FILE_NAME = 'triggler-command.socket';
export const COMMAND_SERVICE_FILE_NAME = 'triggler-command@.service';
/** The script that keeps the last version that served, and puts it back when a new one does not. */
export const HOST_REVISION_FILE_NAME = 'host-revision.sh';

/** The receiver the unit starts, as the AWS host's bundle holds it. */
export const RECEIVER_BUNDLE_FILE = 'receiver.js';
/** The command runner the socket's instances start (receiver/command-runner-main.ts). */
export const COMMAND_RUNNER_BUNDLE_FILE = 'command-runner.js';
/** The CLI (`triggler runs`, `releases`, `rollback`, ...) bundled beside the receiver. */
export const CLI_BUNDLE_FILE = 'triggler.js';

/** Where things live on the AWS host. The unit file names the same paths. */
export const HOST_PATHS = {
  installDir: '/opt/triggler',
  configFile: '/etc/triggler/receiver.json',
  environmentFile: '/etc/triggler/receiver.env',
  unitFile: '/etc/systemd/system/triggler-receiver.service',
  writablePathsDropIn: '/etc/systemd/system/triggler-receiver.service.d/50-writable-paths.conf',
  commandSocketUnitFile: '/etc/systemd/system/triggler-command.socket',
  commandServiceUnitFile: '/etc/systemd/system/triggler-command@.service',
  /** The commands write where the receiver's commands always could. */
  commandWritablePathsDropIn: '/etc/systemd/system/triggler-command@.service.d/50-writable-paths.conf',
  /** The socket unit listens here; the receiver config's commandRunner names it. */
  commandSocket: '/run/triggler/command.sock',
  waitHealthyScript: '/usr/local/sbin/triggler-wait-healthy',
  /** wait-healthy.sh calls it by this path. */
  hostRevisionScript: '/usr/local/sbin/triggler-host-revision',
  /** The CLI on PATH: `sudo -u triggler triggler releases my-app main --config /etc/triggler/receiver.json`. */
  cli: '/usr/local/bin/triggler',
} as const;

/** How long the last cfn-init step waits for the receiver's /healthz before it fails the deploy. */
export const HEALTHY_WAIT_SECONDS = 120;

export const SERVICE_NAME = 'triggler-receiver';
export const COMMAND_SOCKET_NAME = 'triggler-command.socket';
/** triggler-command.socket's MaxConnections: one connection per running command. */
export const COMMAND_SOCKET_MAX_CONNECTIONS = 4096;
export const SERVICE_USER = 'triggler';
/** The AL2023 package; the unit runs /usr/bin/node-22 so a second Node.js install cannot change it. */
export const NODE_PACKAGE = 'nodejs22';

/** The path of one of the files beside this module (in the packed CLI: beside the bundle). */
export function hostFilePath(fileName: string): string {
  return path.join(__dirname, fileName);
}

/** The receiver's systemd unit as the AWS host installs it; `triggler service-unit` rewrites its paths. */
export function receiverUnitTemplate(): string {
  const file = hostFilePath(RECEIVER_UNIT_FILE_NAME);
  if (!fs.existsSync(file)) throw new Error(`the unit template ${RECEIVER_UNIT_FILE_NAME} is missing from this install`);
  return fs.readFileSync(file, 'utf8');
}

/** How the receiver (and the CLI) is bundled for the host, for `npm pack`, and for the benchmark, which measures what ships. */
export function receiverBuildOptions(entry: string, outfile: string, target = 'node22'): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target,
    format: 'cjs',
    // Readable stack traces in journalctl beat a few hundred kilobytes on disk.
    minify: false,
    legalComments: 'none',
    logLevel: 'silent',
  };
}
