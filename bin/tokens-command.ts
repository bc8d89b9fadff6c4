/**
 * `triggler tokens`: rotate, list and show trigger tokens, in SSM Parameter Store (the stack's
 * SecureStrings `<prefix>/<tokenName>`) or in a local token file.
 *
 *   rotate  writes a new token as a new version; prints the parameter (or file) and version, never the token
 *   list    token names with their versions and ages; never a value
 *   show    prints one token, and only with --reveal (for pasting into a provider's webhook settings)
 *
 * Rotation loses no delivery: senders pick the new token up within their cache time, and
 * receivers accept the previous one for a grace period longer than that (docs/rotation.md).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  GetParameterCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  SSMClient,
  type Parameter,
} from '@aws-sdk/client-ssm';
import { Command, Option } from 'commander';
import { defaultTokenPrefix } from '../lib/config';
import { parameterNameProblem } from '../protocol';
import { newToken } from '../protocol/token';
import { describeZodIssues, receiverConfigSchema, tokenNameOf, triggerSchema } from '../receiver/config/schema';
import { readTokenFile, tokensOfEntry, type TokenFile } from '../receiver/tokens/file-token-source';

/** The stack config's default `tokens.prefix` (the prefix of the default stack, GitTriggler). */
export const DEFAULT_TOKEN_PREFIX = '/git-triggler/tokens';

/** A rotation sooner than this after the last one drops a token senders may still hold. */
const RECENT_ROTATION_SECONDS = 120;

const prefixSchema = receiverConfigSchema.shape.tokens.unwrap().shape.ssm.unwrap().shape.prefix;
const tokenNameSchema = triggerSchema.shape.tokenName.unwrap();
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]*$/;

export interface TokensCommandDependencies {
  /** @default a client with the SDK's default credential, region and endpoint resolution */
  ssmClient?: () => SSMClient;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Epoch milliseconds. @default Date.now */
  now?: () => number;
  /** What `rotate --stdin` reads. @default all of standard input, refused when it is a terminal */
  stdin?: () => Promise<string>;
}

interface StoreOptions {
  prefix?: string;
  stack?: string;
  file?: string;
}

interface NameOptions {
  tokenName?: string;
}

type TokenStore = { kind: 'ssm'; prefix: string } | { kind: 'file'; path: string };

/**
 * The token prefix of a stack by naming convention, `/<stack name in kebab case>/tokens`: the
 * default stack `GitTriggler` gets the stack config's default prefix, `/git-triggler/tokens`.
 * A stack whose config sets another `tokens.prefix` needs `--prefix`.
 */
export function tokenPrefixOfStack(stackName: string): string {
  if (!STACK_NAME.test(stackName)) throw new Error(`--stack: "${stackName}" is not a stack name (a letter, then letters, digits and "-")`);
  return defaultTokenPrefix(stackName);
}

/** "3d 4h", "12m", "40s": how long ago, for people. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** "AccessDeniedException: User ... is not authorized". AWS error messages never hold parameter values. */
function describeAwsError(error: unknown): string {
  const { name, message } = typeof error === 'object' && error !== null ? (error as { name?: unknown; message?: unknown }) : {};
  const code = typeof name === 'string' && name !== '' && name !== 'Error' ? name : '';
  const text = typeof message === 'string' ? message : String(error);
  return code && !text.startsWith(code) ? `${code}: ${text}` : text;
}

function errorName(error: unknown): string | undefined {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return typeof name === 'string' ? name : undefined;
}

function storeOf(options: StoreOptions, stderr: (text: string) => void): TokenStore {
  if (options.file !== undefined) return { kind: 'file', path: options.file };
  if (options.stack !== undefined) {
    const prefix = tokenPrefixOfStack(options.stack);
    stderr(`stack ${options.stack}: token prefix ${prefix} (by naming convention; pass --prefix if the stack config sets another tokens.prefix)\n`);
    return { kind: 'ssm', prefix };
  }
  const prefix = options.prefix ?? DEFAULT_TOKEN_PREFIX;
  const parsed = prefixSchema.safeParse(prefix);
  if (!parsed.success) throw new Error(`--prefix: "${prefix}" ${parsed.error.issues[0]?.message ?? 'is not valid'}`);
  return { kind: 'ssm', prefix };
}

/** The token's name: `<repository>/<branch>`, or the shared name given with --token-name. */
function tokenNameFrom(repository: string | undefined, branch: string | undefined, options: NameOptions): string {
  if (options.tokenName !== undefined) {
    if (repository !== undefined) throw new Error('give either <repository> <branch> or --token-name, not both');
    const parsed = tokenNameSchema.safeParse(options.tokenName);
    if (!parsed.success) throw new Error(`--token-name: ${describeZodIssues(parsed.error).map((p) => p.replace(/^\(top level\): /, '')).join('; ')}`);
    return options.tokenName;
  }
  if (repository === undefined || branch === undefined || repository === '' || branch === '') {
    throw new Error('name the token: <repository> <branch>, or --token-name NAME for a shared token');
  }
  return tokenNameOf({ repository, branch });
}

function parameterOf(prefix: string, tokenName: string): string {
  const name = `${prefix}/${tokenName}`;
  const problem = parameterNameProblem(name);
  if (problem) throw new Error(problem);
  return name;
}

/** A token given on standard input: a pipe, never a terminal (where it would be echoed) nor argv (where `ps` shows it). */
async function readStandardInput(): Promise<string> {
  if (process.stdin.isTTY) throw new Error('--stdin reads the token from a pipe, not a terminal: e.g. pbpaste | triggler tokens rotate --stdin my-repo main');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The token --stdin gave, without its line ending; refused when it is too short to be one. */
function givenToken(text: string): string {
  const token = text.replace(/[\r\n]+$/, '');
  if (token.length < 16) throw new Error('--stdin: the token must be at least 16 characters (got fewer)');
  if (/[\r\n]/.test(token)) throw new Error('--stdin: the token must be one line');
  return token;
}

/** Writes the token file whole, or not at all: a temporary file beside it, made private, renamed over it. */
async function writeTokenFileAtomically(path: string, file: TokenFile, owner?: { uid: number; gid: number }): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temporary, 'wx', 0o600);
  try {
    // The receiver may run as another user than the one rotating (root, say): it keeps its file.
    if (owner && process.getuid?.() === 0) await handle.chown(owner.uid, owner.gid);
    await handle.chmod(0o600);
    await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`, 'utf8');
    await handle.sync();
    await handle.close();
    await fs.rename(temporary, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(temporary, { force: true });
    throw error;
  }
}

async function readTokenFileIfPresent(path: string): Promise<{ file: TokenFile; owner: { uid: number; gid: number } } | undefined> {
  let owner: { uid: number; gid: number };
  try {
    const stat = await fs.stat(path);
    owner = { uid: stat.uid, gid: stat.gid };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return { file: await readTokenFile(path), owner };
}

export function tokensCommand(dependencies: TokensCommandDependencies = {}): Command {
  const stdout = dependencies.stdout ?? ((text: string) => void process.stdout.write(text));
  const stderr = dependencies.stderr ?? ((text: string) => void process.stderr.write(text));
  const now = dependencies.now ?? Date.now;
  const ssmClient = dependencies.ssmClient ?? (() => new SSMClient({}));
  const stdin = dependencies.stdin ?? readStandardInput;

  async function withSsm<T>(work: (client: SSMClient) => Promise<T>): Promise<T> {
    const client = ssmClient();
    try {
      return await work(client);
    } finally {
      client.destroy();
    }
  }

  const storeOptions = (command: Command): Command =>
    command
      .addOption(new Option('--prefix <path>', `SSM path prefix of the tokens (default ${DEFAULT_TOKEN_PREFIX})`).conflicts(['stack', 'file']))
      .addOption(new Option('--stack <name>', 'the stack whose tokens these are: prefix /<stack-name-in-kebab-case>/tokens').conflicts(['prefix', 'file']))
      .addOption(new Option('--file <file>', 'a local token file instead of SSM').conflicts(['prefix', 'stack']));

  const tokens = new Command('tokens').description('rotate, list and show trigger tokens (SSM Parameter Store or a token file)');

  storeOptions(
    tokens
      .command('rotate')
      .description('write a new token for <repository> <branch>; prints the parameter and its new version, never the token')
      .argument('[repository]')
      .argument('[branch]'),
  )
    .option('--token-name <name>', 'a shared token\'s name instead of <repository>/<branch>')
    .option('--create', 'create the token when it does not exist yet (otherwise that is an error: a mistyped name must not make a new token)')
    .option('--stdin', 'take the new token from standard input instead of generating one (a secret the provider generates, such as a GitLab signing token)')
    .addHelpText(
      'after',
      '\nSenders pick the new token up within their cache time (60 s by default); receivers accept the\nprevious one for their grace period (900 s by default), so deliveries in flight are not refused.\n\nExamples:\n  triggler tokens rotate my-repo main\n  triggler tokens rotate --stack GitTriggler my-repo main\n  triggler tokens rotate --file /etc/triggler/tokens.json my-repo main   (then: systemctl reload triggler-receiver)',
    )
    .action(async (repository: string | undefined, branch: string | undefined, options: StoreOptions & NameOptions & { create?: boolean; stdin?: boolean }) => {
      const tokenName = tokenNameFrom(repository, branch, options);
      const store = storeOf(options, stderr);
      const replacement = options.stdin ? givenToken(await stdin()) : newToken();
      if (store.kind === 'file') {
        const present = await readTokenFileIfPresent(store.path);
        if (!present && !options.create) throw new Error(`token file ${store.path} does not exist (pass --create to start one)`);
        const file: TokenFile = present?.file ?? {};
        const entry = Object.prototype.hasOwnProperty.call(file, tokenName) ? file[tokenName] : undefined;
        if (entry === undefined && !options.create) throw new Error(`no token named ${tokenName} in ${store.path} (pass --create to add it)`);
        const rotatedAt = new Date(now()).toISOString();
        const previous = entry === undefined ? undefined : typeof entry === 'string' ? entry : entry.current;
        file[tokenName] = { current: replacement, ...(previous !== undefined ? { previous } : {}), rotatedAt };
        await writeTokenFileAtomically(store.path, file, present?.owner);
        stdout(`${entry === undefined ? 'created' : 'rotated'} ${tokenName} in ${store.path} at ${rotatedAt}\n`);
        stderr('a running receiver picks it up on SIGHUP (systemctl reload triggler-receiver), or when the first delivery signed with the new token arrives\n');
        return;
      }
      const parameter = parameterOf(store.prefix, tokenName);
      await withSsm(async (client) => {
        let current: Parameter | undefined;
        try {
          // Without decryption: only whether it exists and how old it is matter here.
          current = (await client.send(new GetParameterCommand({ Name: parameter }))).Parameter;
        } catch (error) {
          if (errorName(error) !== 'ParameterNotFound') throw new Error(`cannot read ${parameter} from SSM: ${describeAwsError(error)}`, { cause: error });
        }
        if (!current && !options.create) {
          throw new Error(`no token parameter ${parameter} in SSM (check --prefix or --stack; pass --create to make a new one)`);
        }
        const ageSeconds = current?.LastModifiedDate ? (now() - current.LastModifiedDate.getTime()) / 1000 : Number.POSITIVE_INFINITY;
        if (ageSeconds < RECENT_ROTATION_SECONDS) {
          stderr(
            `warning: ${parameter} was written ${formatAge(ageSeconds)} ago; this rotation ends the grace of the token before it, which senders may still hold for their cache time\n`,
          );
        }
        let version: number | undefined;
        try {
          version = (await client.send(new PutParameterCommand({ Name: parameter, Value: replacement, Type: 'SecureString', Overwrite: true }))).Version;
        } catch (error) {
          // The SDK's error never carries the request, so the new token cannot be in this message.
          throw new Error(`cannot write ${parameter} to SSM: ${describeAwsError(error)}`, { cause: error });
        }
        stdout(`${current ? 'rotated' : 'created'} ${parameter} version ${version ?? '?'}\n`);
        stderr('senders pick the new token up within their cache time; receivers accept the previous one for their grace period\n');
      });
    });

  storeOptions(tokens.command('list').description('list token parameters with their versions and ages (never a value)'))
    .option('--json', 'print JSON instead of a table')
    .action(async (options: StoreOptions & { json?: boolean }) => {
      const store = storeOf(options, stderr);
      const at = now();
      if (store.kind === 'file') {
        const file = await readTokenFile(store.path);
        const rows = Object.entries(file)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, entry]) => {
            const rotatedAt = typeof entry === 'string' ? undefined : entry.rotatedAt;
            const ageSeconds = rotatedAt ? (at - Date.parse(rotatedAt)) / 1000 : undefined;
            return { name, rotatedAt: rotatedAt ?? null, ageSeconds: ageSeconds === undefined ? null : Math.floor(ageSeconds), previous: typeof entry !== 'string' && entry.previous !== undefined };
          });
        if (options.json) stdout(`${JSON.stringify(rows, null, 2)}\n`);
        else if (rows.length === 0) stdout(`no tokens in ${store.path}\n`);
        else {
          stdout(
            `${table(
              ['TOKEN', 'ROTATED', 'AGE', 'PREVIOUS'],
              rows.map((r) => [r.name, r.rotatedAt ?? '-', r.ageSeconds === null ? '-' : formatAge(r.ageSeconds), r.previous ? 'kept' : '-']),
            )}\n`,
          );
        }
        return;
      }
      const parameters = await withSsm(async (client) => {
        const found: Parameter[] = [];
        let nextToken: string | undefined;
        do {
          let page;
          try {
            // Without decryption: a list never needs a value, and SSM then returns none.
            page = await client.send(new GetParametersByPathCommand({ Path: store.prefix, Recursive: true, MaxResults: 10, ...(nextToken ? { NextToken: nextToken } : {}) }));
          } catch (error) {
            throw new Error(`cannot list ${store.prefix} in SSM: ${describeAwsError(error)}`, { cause: error });
          }
          found.push(...(page.Parameters ?? []));
          nextToken = page.NextToken;
        } while (nextToken);
        return found;
      });
      const rows = parameters
        .filter((p): p is Parameter & { Name: string } => typeof p.Name === 'string')
        .sort((a, b) => a.Name.localeCompare(b.Name))
        .map((p) => ({
          name: p.Name,
          version: p.Version ?? null,
          type: p.Type ?? null,
          lastModified: p.LastModifiedDate?.toISOString() ?? null,
          ageSeconds: p.LastModifiedDate ? Math.floor((at - p.LastModifiedDate.getTime()) / 1000) : null,
        }));
      for (const row of rows) {
        if (row.type !== null && row.type !== 'SecureString') stderr(`warning: ${row.name} is a ${row.type} parameter: a token belongs in a SecureString\n`);
      }
      if (options.json) stdout(`${JSON.stringify(rows, null, 2)}\n`);
      else if (rows.length === 0) stdout(`no token parameters under ${store.prefix}\n`);
      else {
        stdout(
          `${table(
            ['PARAMETER', 'VERSION', 'AGE', 'MODIFIED'],
            rows.map((r) => [r.name, r.version === null ? '-' : String(r.version), r.ageSeconds === null ? '-' : formatAge(r.ageSeconds), r.lastModified ?? '-']),
          )}\n`,
        );
      }
    });

  storeOptions(
    tokens
      .command('show')
      .description('print the token of <repository> <branch> (needs --reveal), e.g. to paste into a provider\'s webhook settings')
      .argument('[repository]')
      .argument('[branch]'),
  )
    .option('--token-name <name>', 'a shared token\'s name instead of <repository>/<branch>')
    .option('--reveal', 'really print the token')
    .action(async (repository: string | undefined, branch: string | undefined, options: StoreOptions & NameOptions & { reveal?: boolean }) => {
      const tokenName = tokenNameFrom(repository, branch, options);
      if (!options.reveal) {
        throw new Error(
          'tokens show prints a secret, which then stays in your terminal\'s scrollback and maybe a log: add --reveal if you mean it (tokens list shows names, versions and ages without values)',
        );
      }
      const store = storeOf(options, stderr);
      if (store.kind === 'file') {
        const file = await readTokenFile(store.path);
        const [token] = tokensOfEntry(Object.prototype.hasOwnProperty.call(file, tokenName) ? file[tokenName] : undefined, 0, now());
        if (token === undefined) throw new Error(`no token named ${tokenName} in ${store.path}`);
        stdout(`${token}\n`);
        return;
      }
      const parameter = parameterOf(store.prefix, tokenName);
      const found = await withSsm(async (client) => {
        try {
          return (await client.send(new GetParameterCommand({ Name: parameter, WithDecryption: true }))).Parameter;
        } catch (error) {
          if (errorName(error) === 'ParameterNotFound') throw new Error(`no token parameter ${parameter} in SSM (check --prefix or --stack)`, { cause: error });
          throw new Error(`cannot read ${parameter} from SSM: ${describeAwsError(error)}`, { cause: error });
        }
      });
      if (!found?.Value) throw new Error(`${parameter} has no value`);
      // Only the token on stdout, so it can be piped (to a clipboard, say); which version it is goes to stderr.
      stderr(`${parameter} version ${found.Version ?? '?'}\n`);
      stdout(`${found.Value}\n`);
    });

  return tokens;
}
