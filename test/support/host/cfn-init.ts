/**
 * A small interpreter for the part of cfn-init (AWS::CloudFormation::Init metadata) the receiver
 * host uses: configSets; per config, in cfn-init's order, packages, groups, users, sources, files,
 * commands (by key, alphabetically) and systemd services. It reads everything from the
 * synthesized template, resolves the intrinsic functions the metadata holds (Ref, Fn::Join,
 * Fn::Sub) from values the caller gives, and applies it to a host through `CfnInitHost`.
 *
 * Packages are not installed: they name Amazon Linux 2023 packages (dnf), and the interpreter
 * reports them as skipped so the caller can put their equivalent in place and say so.
 */
import * as path from 'node:path';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Where the metadata is applied: a booted guest, reached by running commands in it. */
export interface CfnInitHost {
  /** Writes a file (parent folders created), then sets its mode (octal, e.g. "0640") and owner. */
  writeFile(file: string, content: string, mode: string, owner: string, group: string): Promise<void>;
  /** Copies a local folder's contents into a folder on the host. */
  copyTree(localDir: string, hostDir: string): Promise<void>;
  /** Runs argv (no shell); env adds to a minimal environment. */
  run(argv: string[], options?: { cwd?: string; env?: Record<string, string> }): Promise<CommandResult>;
}

export interface CfnInitOptions {
  /** Values for Ref and Fn::Sub: pseudo parameters (`AWS::Region`) and logical ids. */
  readonly refs: Record<string, string>;
  /** The local folder holding what a `sources` URL points at (a CDK asset). */
  readonly sourceDir: (url: string) => string;
}

export interface CfnInitReport {
  /** Package installs skipped, as `<manager>: <name>`. */
  skippedPackages: string[];
  /** Every command that ran, by config and key, with its result. */
  commands: { config: string; key: string; result: CommandResult }[];
  /** Files written, in order. */
  files: string[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface InitFileSpec {
  content?: Json;
  source?: Json;
  mode?: string;
  owner?: string;
  group?: string;
  encoding?: string;
}

interface InitCommandSpec {
  command: Json;
  cwd?: string;
  env?: Record<string, Json>;
  test?: Json;
  ignoreErrors?: boolean;
}

interface InitServiceSpec {
  enabled?: boolean;
  ensureRunning?: boolean;
  files?: string[];
  sources?: string[];
  commands?: string[];
}

interface InitConfigSpec {
  packages?: Record<string, Record<string, Json>>;
  groups?: Record<string, Json>;
  users?: Record<string, Json>;
  sources?: Record<string, Json>;
  files?: Record<string, InitFileSpec>;
  commands?: Record<string, InitCommandSpec>;
  services?: Record<string, Record<string, InitServiceSpec>>;
}

/** The keys cfn-init knows; anything else in a config is refused rather than silently ignored. */
const CONFIG_KEYS = new Set(['packages', 'groups', 'users', 'sources', 'files', 'commands', 'services']);

export class CfnInitError extends Error {
  constructor(
    message: string,
    readonly report: CfnInitReport,
  ) {
    super(message);
    this.name = 'CfnInitError';
  }
}

/** Resolves the intrinsic functions metadata may hold; anything else is refused by name. */
export function resolveIntrinsics(value: Json, refs: Record<string, string>): Json {
  if (Array.isArray(value)) return value.map((item) => resolveIntrinsics(item, refs));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'))) {
    const [name] = keys as [string];
    const argument = value[name]!;
    if (name === 'Ref') return lookUp(String(argument), refs);
    if (name === 'Fn::Join') {
      const [separator, parts] = argument as [string, Json[]];
      return parts.map((part) => String(resolveIntrinsics(part, refs))).join(separator);
    }
    if (name === 'Fn::Sub' && typeof argument === 'string')
      return argument.replace(/\$\{([^}]+)\}/g, (_, ref: string) => lookUp(ref, refs));
    throw new Error(`cfn-init interpreter: ${name} is not supported (${JSON.stringify(value)})`);
  }
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, resolveIntrinsics(inner, refs)]));
}

function lookUp(name: string, refs: Record<string, string>): string {
  const found = refs[name];
  if (found === undefined) throw new Error(`cfn-init interpreter: no value for Ref ${name}`);
  return found;
}

/** cfn-init's mode is six octal digits ("000640"); chmod wants the permission bits. */
function chmodMode(mode: string | undefined): string {
  return (mode ?? '000644').slice(-4);
}

/** The instance's AWS::CloudFormation::Init metadata from a template. */
export function initMetadataOf(
  template: { Resources: Record<string, { Type: string; Metadata?: Record<string, unknown> }> },
  logicalId: string,
): Record<string, Json> {
  const resource = template.Resources[logicalId];
  const init = resource?.Metadata?.['AWS::CloudFormation::Init'];
  if (!init) throw new Error(`${logicalId} has no AWS::CloudFormation::Init metadata`);
  return init as Record<string, Json>;
}

/** Applies one configSet of the metadata to the host, config by config, as cfn-init does. */
export async function runCfnInit(
  metadata: Record<string, Json>,
  configSet: string,
  host: CfnInitHost,
  options: CfnInitOptions,
): Promise<CfnInitReport> {
  const report: CfnInitReport = { skippedPackages: [], commands: [], files: [] };
  const configSets = metadata.configSets as Record<string, string[]> | undefined;
  const configNames = configSets?.[configSet];
  if (!configNames) throw new Error(`cfn-init interpreter: no configSet ${configSet}`);
  for (const name of configNames) {
    const config = metadata[name] as InitConfigSpec | undefined;
    if (!config) throw new Error(`cfn-init interpreter: configSet ${configSet} names config ${name}, which is missing`);
    await applyConfig(name, config, host, options, report);
  }
  return report;
}

async function applyConfig(
  name: string,
  config: InitConfigSpec,
  host: CfnInitHost,
  options: CfnInitOptions,
  report: CfnInitReport,
): Promise<void> {
  const unknown = Object.keys(config).filter((key) => !CONFIG_KEYS.has(key));
  if (unknown.length > 0) throw new Error(`cfn-init interpreter: config ${name} has keys it does not know: ${unknown.join(', ')}`);
  if (Object.keys(config.groups ?? {}).length > 0 || Object.keys(config.users ?? {}).length > 0) {
    throw new Error(`cfn-init interpreter: config ${name} uses groups or users, which this interpreter does not implement`);
  }
  for (const [manager, packages] of Object.entries(config.packages ?? {})) {
    for (const pkg of Object.keys(packages)) report.skippedPackages.push(`${manager}: ${pkg}`);
  }

  const changed = new Set<string>();
  for (const [target, url] of Object.entries(config.sources ?? {})) {
    await host.copyTree(options.sourceDir(String(resolveIntrinsics(url, options.refs))), target);
    changed.add(target);
  }
  for (const [file, spec] of Object.entries(config.files ?? {})) {
    if (spec.source !== undefined || (spec.encoding !== undefined && spec.encoding !== 'plain')) {
      throw new Error(`cfn-init interpreter: ${file} uses source or encoding, which this interpreter does not implement`);
    }
    const content = resolveIntrinsics(spec.content ?? '', options.refs);
    // cfn-init writes a JSON object as JSON.
    const text = typeof content === 'string' ? content : JSON.stringify(content);
    await host.writeFile(file, text, chmodMode(spec.mode), spec.owner ?? 'root', spec.group ?? 'root');
    report.files.push(file);
    changed.add(file);
  }
  for (const key of Object.keys(config.commands ?? {}).sort()) {
    const spec = config.commands![key]!;
    if (spec.test !== undefined)
      throw new Error(`cfn-init interpreter: command ${key} uses test, which this interpreter does not implement`);
    const command = resolveIntrinsics(spec.command, options.refs);
    const argv = typeof command === 'string' ? ['/bin/sh', '-c', command] : (command as Json[]).map(String);
    const env = Object.fromEntries(Object.entries(spec.env ?? {}).map(([k, v]) => [k, String(resolveIntrinsics(v, options.refs))]));
    const result = await host.run(argv, { cwd: spec.cwd, env });
    report.commands.push({ config: name, key, result });
    if (result.code !== 0 && !spec.ignoreErrors) {
      throw new CfnInitError(
        `cfn-init: command ${key} of config ${name} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
        report,
      );
    }
  }
  for (const [manager, services] of Object.entries(config.services ?? {})) {
    if (manager !== 'systemd') throw new Error(`cfn-init interpreter: service manager ${manager} is not implemented`);
    for (const [service, spec] of Object.entries(services)) await applyService(service, spec, changed, host, report);
  }
}

/** enabled, then ensureRunning: start when stopped, restart when a file or source it lists changed. */
async function applyService(
  service: string,
  spec: InitServiceSpec,
  changed: Set<string>,
  host: CfnInitHost,
  report: CfnInitReport,
): Promise<void> {
  const systemctl = async (...args: string[]) => {
    const result = await host.run(['systemctl', ...args]);
    if (result.code !== 0 && args[0] !== 'is-active')
      throw new CfnInitError(`cfn-init: systemctl ${args.join(' ')} failed: ${result.stderr.trim()}`, report);
    return result;
  };
  if (spec.enabled === true) await systemctl('enable', service);
  if (spec.enabled === false) await systemctl('disable', service);
  if (spec.ensureRunning !== true) return;
  const running = (await systemctl('is-active', '--quiet', service)).code === 0;
  const touched = [...(spec.files ?? []), ...(spec.sources ?? [])].some((item) => changed.has(path.normalize(item)) || changed.has(item));
  if (!running) await systemctl('start', service);
  else if (touched) await systemctl('restart', service);
}
