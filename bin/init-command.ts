/**
 * The first minutes on a server: `triggler init` writes a commented starter config and a private
 * token file with one generated token, and says what to run next; `triggler check` validates a
 * config, its tokens and its paths without starting anything.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { newToken, privateKeyProblem, tokenNameOf, triggerLabel } from '../protocol';
import {
  ConfigError,
  type LoadedConfig,
  loadReceiverConfigFile,
  portProblems,
  readTokenFile,
  type ReceiverConfig,
  StateLock,
  tokensOfEntry,
  unreadable,
} from '../receiver';
import { commandsOf, usesSudo } from '../lib/stack-config/host-commands';

export const STARTER_CONFIG = 'receiver.json';
export const STARTER_TOKENS = 'tokens.json';

function starterConfig(repository: string, branch: string, port: number): string {
  return `// git-triggler receiver config, written by \`triggler init\`. Comments are allowed; every field
// is described in docs/receiver-config.md. Relative paths are relative to this file.
{
  // Where signed deliveries arrive. Keep it on loopback behind a TLS proxy, or set
  // "tls": { "cert": "/path/fullchain.pem", "key": "/path/privkey.pem" } to serve HTTPS itself.
  "listen": { "host": "127.0.0.1", "port": ${port} },
  // The runs page, /metrics and the writes (rollback, re-run); loopback only.
  "admin": { "host": "127.0.0.1", "port": ${port + 1} },
  // Run records, the delivery journal, run logs and the admin credential.
  "stateDir": "./state",
  // Tokens by name ("<repository>/<branch>"); the file must stay private (chmod 600).
  "tokens": { "file": "./${STARTER_TOKENS}" },
  "triggers": [
    {
      "repository": ${JSON.stringify(repository)},
      "branch": ${JSON.stringify(branch)},
      // Runs through /bin/sh -c. The push reaches it only as environment variables:
      // TRIGGLER_REPOSITORY, TRIGGLER_BRANCH, TRIGGLER_COMMIT, TRIGGLER_RUN_ID, ...
      "command": "echo \\"deploying $TRIGGLER_REPOSITORY $TRIGGLER_BRANCH at $TRIGGLER_COMMIT\\"",
      "timeoutSeconds": 900
      // To deploy the pushed commit into releases with a "current" symlink, add:
      // "deploy": { "repositoryUrl": "/srv/git/my-app.git", "path": "/srv/my-app" }
    }
  ]
}
`;
}

/** Writes a file that must not exist yet; a file already there is never overwritten. */
function writeNew(file: string, text: string, mode: number): void {
  try {
    fs.writeFileSync(file, text, { flag: 'wx', mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new Error(`${file} exists already: init never overwrites (move it away, or run init in another directory)`, { cause: error });
    throw error;
  }
}

export function initCommand(): Command {
  return new Command('init')
    .description(
      `write a starter ${STARTER_CONFIG} and a private ${STARTER_TOKENS} with one generated token, in this directory (never overwriting)`,
    )
    .option('-r, --repository <name>', "the first trigger's repository", 'my-app')
    .option('-b, --branch <name>', "the first trigger's branch", 'main')
    .option('-p, --port <port>', 'the delivery port (the admin listener takes the next one)', (v) => Number(v), 5000)
    .option('-d, --dir <dir>', 'where to write them', '.')
    .action((options: { repository: string; branch: string; port: number; dir: string }) => {
      if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65534)
        throw new Error('--port must be a whole number from 1 to 65534');
      const dir = path.resolve(options.dir);
      const configFile = path.join(dir, STARTER_CONFIG);
      const tokenFile = path.join(dir, STARTER_TOKENS);
      for (const file of [configFile, tokenFile])
        if (fs.existsSync(file))
          throw new Error(`${file} exists already: init never overwrites (move it away, or run init in another directory)`);
      writeNew(tokenFile, `${JSON.stringify({ [tokenNameOf(options)]: newToken() }, null, 2)}\n`, 0o600);
      writeNew(configFile, starterConfig(options.repository, options.branch, options.port), 0o644);
      const shown = path.relative(process.cwd(), configFile) || configFile;
      const label = `${options.repository} ${options.branch}`;
      process.stdout.write(
        [
          `wrote ${configFile}`,
          `wrote ${tokenFile} (mode 600, one token: ${tokenNameOf(options)})`,
          '',
          'next:',
          `  triggler check --config ${shown}`,
          `  triggler serve --config ${shown}`,
          `  triggler send ${label} --config ${shown} --wait      (in another terminal)`,
          '',
        ].join('\n'),
      );
    });
}

/**
 * What `check` finds wrong with a loaded config's tokens and paths (the schema checked the rest),
 * and what would fail only under the hardened unit (`cautions`: sudo in a command).
 */
export async function configProblems(config: ReceiverConfig): Promise<{ problems: string[]; notes: string[]; cautions: string[] }> {
  const problems: string[] = [];
  const notes: string[] = [];
  const cautions: string[] = [];
  let file: Awaited<ReturnType<typeof readTokenFile>> | undefined;
  if (config.tokens.file) {
    try {
      file = await readTokenFile(config.tokens.file);
      notes.push(`tokens from ${config.tokens.file}`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(
        `tokens.file: cannot read ${config.tokens.file}: ${code ? unreadable(error) : (error as Error).message}${code === 'ENOENT' ? ' (triggler init, or triggler tokens rotate --file FILE --create REPO BRANCH, makes one)' : ''}`,
      );
    }
  }
  if (config.tokens.ssm)
    notes.push(`tokens not found elsewhere are read from SSM under ${config.tokens.ssm.prefix} (not checked here: that needs AWS)`);
  config.triggers.forEach((trigger, i) => {
    const where = `triggers[${i}]`;
    if (trigger.tokenEnv !== undefined && !process.env[trigger.tokenEnv])
      problems.push(`${where}.tokenEnv: environment variable ${trigger.tokenEnv} is not set here`);
    if (
      trigger.token === undefined &&
      trigger.tokenEnv === undefined &&
      file &&
      tokensOfEntry(file[tokenNameOf(trigger)], 0, Date.now()).length === 0 &&
      !config.tokens.ssm
    ) {
      problems.push(`${where}: no token named ${tokenNameOf(trigger)} in ${config.tokens.file}`);
    }
    if (trigger.cwd !== undefined && !isDirectory(trigger.cwd)) problems.push(`${where}.cwd: ${trigger.cwd} is not a directory`);
    const sshKey = trigger.deploy?.sshKey;
    if (sshKey !== undefined && file) {
      const [key] = tokensOfEntry(file[sshKey], 0, Date.now());
      const problem =
        key === undefined
          ? config.tokens.ssm
            ? undefined
            : `there is no key named ${sshKey} in ${config.tokens.file} (triggler tokens deploy-key ${sshKey} --file ${config.tokens.file} makes one)`
          : privateKeyProblem(key);
      if (problem)
        problems.push(
          `${where}.deploy.sshKey: ${key === undefined ? problem : `the key ${sshKey} in ${config.tokens.file} cannot be used: ${problem}`}`,
        );
    }
    for (const { field, command } of commandsOf(trigger)) {
      if (usesSudo(command)) {
        cautions.push(
          `${where}.${field.join('.')} runs sudo, which cannot work under the unit triggler service-unit writes (NoNewPrivileges, no capabilities): to restart a service run systemctl without sudo and allow it with a polkit rule (docs/self-hosting.md)`,
        );
      }
    }
    const deployPath = trigger.deploy?.path;
    if (deployPath !== undefined) {
      const existing = nearestExisting(deployPath);
      if (!isWritable(existing))
        problems.push(`${where}.deploy.path: ${deployPath} cannot be created or written here (${existing} is not writable by this user)`);
    }
  });
  const takenPorts = await portProblems(config);
  // Checking the config of a receiver that is running (before a reload, say): its ports are its own.
  const running = takenPorts.length > 0 ? StateLock.holder(config.stateDir) : undefined;
  if (running)
    notes.push(
      ...takenPorts.map(
        (taken) => `${taken}; the receiver running on ${config.stateDir} (pid ${running.pid}) holds it, as expected while it runs`,
      ),
    );
  else problems.push(...takenPorts);
  const stateParent = nearestExisting(config.stateDir);
  if (!isWritable(stateParent))
    problems.push(`stateDir: ${config.stateDir} cannot be created or written by this user (${stateParent} is not writable)`);
  return { problems, notes, cautions };
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function nearestExisting(dir: string): string {
  let current = path.resolve(dir);
  while (!fs.existsSync(current) && path.dirname(current) !== current) current = path.dirname(current);
  return current;
}

function isWritable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** `check` says "this config is not usable" with exit 2, whatever the reason; a crash of check itself stays 1. */
const CONFIG_UNUSABLE = 2;

export function checkCommand(): Command {
  return new Command('check')
    .description('validate a receiver config, its token file and its paths without starting anything; exit 2 when something is wrong')
    .option('-c, --config <file>', 'the receiver config', STARTER_CONFIG)
    .action(async (options: { config: string }) => {
      let loaded: LoadedConfig;
      try {
        loaded = loadReceiverConfigFile(options.config);
      } catch (error) {
        // Unreadable, not JSON, or not valid: the same words the CLI prints for any error, and exit 2.
        if (!(error instanceof ConfigError)) throw error;
        process.stderr.write(`triggler: ${error.message}\n`);
        process.exitCode = CONFIG_UNUSABLE;
        return;
      }
      const { config, warnings } = loaded;
      const { problems, notes, cautions } = await configProblems(config);
      for (const warning of [...warnings, ...cautions]) process.stderr.write(`warning: ${warning}\n`);
      if (problems.length > 0) {
        process.stderr.write(`triggler: config ${options.config} would not work:\n  ${problems.join('\n  ')}\n`);
        process.exitCode = CONFIG_UNUSABLE;
        return;
      }
      const triggers = config.triggers.map(triggerLabel).join(', ');
      process.stdout.write(
        `config ${options.config} is valid: ${config.triggers.length} trigger${config.triggers.length === 1 ? '' : 's'} (${triggers}); deliveries on ${config.listen.tls ? 'https' : 'http'}://${config.listen.host}:${config.listen.port}; state in ${config.stateDir}${notes.length ? `; ${notes.join('; ')}` : ''}\n`,
      );
    });
}
