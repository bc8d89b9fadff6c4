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

/** The receiver the unit starts, as the AWS host's bundle holds it: the loader (BUNDLE_LOADER_FILE_NAME) of RECEIVER_PROGRAM_FILE. */
export const RECEIVER_BUNDLE_FILE = 'receiver.js';
/** A long-running receiver's entry: it runs the bundle named after its own file, read in pieces (the file says why). */
export const BUNDLE_LOADER_FILE_NAME = 'bundle-loader.js';
/** The bundle a loader copied to `loaderFileName` runs. */
export function loadedBundleName(loaderFileName: string): string {
  return loaderFileName.replace(/\.js$/, '-bundle.js');
}
/** The receiver's own bundle (receiver/daemon.ts) on the AWS host, which receiver.js runs. */
export const RECEIVER_PROGRAM_FILE = loadedBundleName(RECEIVER_BUNDLE_FILE);
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

/** Beside the bundles: the packages they load only when needed, each in a file of its own. */
export const DEFERRED_DIR = 'deferred';

/**
 * Loaded only when needed: undici by the commands that talk to a receiver and by notifications
 * that post; the SSM client by an SSM token source and `triggler tokens`; SNS and CloudWatch by
 * notifications that name them; Step Functions by `triggler fleet`; pino-pretty by a log for
 * people (`--log-format pretty`, or a terminal); prom-client by the first read of a receiver's
 * metrics (its process defaults). A bundle's whole text is read and kept by Node when it loads,
 * so code left inside it costs memory even if it never runs: a receiver on local tokens without
 * notifications, not yet scraped, reads none of them.
 */
export const DEFERRED_PACKAGES = [
  'undici',
  '@aws-sdk/client-ssm',
  '@aws-sdk/client-sns',
  '@aws-sdk/client-cloudwatch',
  '@aws-sdk/client-sfn',
  'pino-pretty',
  'prom-client',
] as const;

/** A deferred package's file in DEFERRED_DIR. */
export function deferredFileName(packageName: string): string {
  return `${packageName.replace(/^@/, '').replaceAll('/', '-')}.js`;
}

/**
 * A bundle's build in which every require of a deferred package is a require of its file in
 * DEFERRED_DIR beside the bundle (esbuild's alias and external, so that build and buildSync, which
 * takes no plugins, do it alike).
 */
export function withDeferredPackages(options: BuildOptions): BuildOptions {
  return {
    ...options,
    alias: {
      ...options.alias,
      ...Object.fromEntries(DEFERRED_PACKAGES.map((name) => [name, `./${DEFERRED_DIR}/${deferredFileName(name)}`])),
    },
    external: [...(options.external ?? []), `./${DEFERRED_DIR}/*`],
  };
}

/** The builds of the deferred packages' own files, into `outdir`/DEFERRED_DIR; `resolveDir` is where their node_modules are found from. */
export function deferredPackageBuilds(outdir: string, resolveDir: string, target: string): BuildOptions[] {
  return DEFERRED_PACKAGES.map((name) => {
    const options = receiverBuildOptions('', path.join(outdir, DEFERRED_DIR, deferredFileName(name)), target);
    delete options.entryPoints;
    return { ...options, stdin: { contents: `module.exports = require(${JSON.stringify(name)});`, resolveDir, loader: 'js' } };
  });
}

/**
 * esbuild writes strings and regular expressions as ASCII, but keeps comments as they are, and
 * one character past ASCII anywhere makes V8 hold the whole bundle's text at two bytes a
 * character (3.5 MB instead of 1.75, for as long as the process runs); the loader also reads the
 * bundle as ASCII. A comment's characters mean nothing to the program: each one past ASCII becomes
 * `?`. Anything else past ASCII fails the build rather than change what the program says.
 */
export function asciiComments(file: string): void {
  const text = fs.readFileSync(file, 'utf8');
  if (!/[\u0080-\uffff]/.test(text)) return;
  const lines = text.split('\n').map((line, index) => {
    if (!/[\u0080-\uffff]/.test(line)) return line;
    const comment = /^\s*(\/\/|\/?\*)/.test(line) ? 0 : line.indexOf('//');
    const first = line.search(/[\u0080-\uffff]/);
    if (comment < 0 || first < comment || (comment > 0 && /['"`]/.test(line.slice(0, comment)))) {
      throw new Error(`${path.basename(file)}:${index + 1}: a character past ASCII outside a comment: ${line.trim().slice(0, 120)}`);
    }
    return line.replace(/[\u0080-\uffff]/g, '?');
  });
  fs.writeFileSync(file, lines.join('\n'));
}
