/**
 * `triggler tokens`: rotate, list and show trigger tokens, in SSM Parameter Store (the stack's
 * SecureStrings `<prefix>/<tokenName>`) or in a local token file (./token-stores).
 *
 *   rotate  writes a new token as a new version; prints the parameter (or file) and version, never the token
 *   list    token names with their versions and ages; never a value
 *   show    prints one token, and only with --reveal (for pasting into a provider's webhook settings)
 *   deploy-key  makes a deploy key (a trigger's deploy.sshKey) and prints its public half
 *
 * Rotation loses no delivery: senders pick the new token up within their cache time, and
 * receivers accept the previous one for a grace period longer than that (docs/rotation.md).
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import { Command, Option } from 'commander';
import { defaultTokenPrefix, newDeployKey, newToken, publicKeyOf, shellWord, tokenNameOf } from '../protocol';
import { describeZodIssues, loadReceiverConfigFile, receiverConfigSchema, triggerSchema } from '../receiver';
import { DEPLOY_KEYS_FOLDER } from '../lib/stack-config/deploy-keys';
import { table } from './table';
import { FileTokenStore, formatAge, SsmTokenStore, ssmSdk, type StoreIo, type TokenStore } from './token-stores';

export { formatAge };

/** The stack config's default `tokens.prefix` (the prefix of the default stack, GitTriggler). */
export const DEFAULT_TOKEN_PREFIX = '/git-triggler/tokens';

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
  config?: string;
}

interface NameOptions {
  tokenName?: string;
}

/**
 * The token prefix of a stack by naming convention, `/<stack name in kebab case>/tokens`: the
 * default stack `GitTriggler` gets the stack config's default prefix, `/git-triggler/tokens`.
 * A stack whose config sets another `tokens.prefix` needs `--prefix`.
 */
export function tokenPrefixOfStack(stackName: string): string {
  if (!STACK_NAME.test(stackName)) throw new Error(`--stack: "${stackName}" is not a stack name (a letter, then letters, digits and "-")`);
  return defaultTokenPrefix(stackName);
}

/** The store a receiver config reads its tokens from: its token file, else its SSM prefix. */
function storeOfConfig(configPath: string, io: StoreIo): TokenStore {
  const { tokens } = loadReceiverConfigFile(configPath).config;
  if (tokens.file !== undefined) return new FileTokenStore(tokens.file, io);
  if (tokens.ssm !== undefined) return new SsmTokenStore(tokens.ssm.prefix, io);
  throw new Error(
    `--config: ${configPath} names no token store (neither tokens.file nor tokens.ssm); its triggers' tokens are inline or in variables`,
  );
}

function storeOf(options: StoreOptions, io: StoreIo): TokenStore {
  if (options.file !== undefined) return new FileTokenStore(options.file, io);
  if (options.config !== undefined) return storeOfConfig(options.config, io);
  if (options.stack !== undefined) {
    const prefix = tokenPrefixOfStack(options.stack);
    io.stderr(
      `stack ${options.stack}: token prefix ${prefix} (by naming convention; pass --prefix if the stack config sets another tokens.prefix)\n`,
    );
    return new SsmTokenStore(prefix, io);
  }
  const prefix = options.prefix ?? DEFAULT_TOKEN_PREFIX;
  const parsed = prefixSchema.safeParse(prefix);
  if (!parsed.success) throw new Error(`--prefix: "${prefix}" ${parsed.error.issues[0]?.message ?? 'is not valid'}`);
  return new SsmTokenStore(prefix, io);
}

/** The store options as given (`--file F`, `--stack S`, `--prefix P`), for a command we suggest: it must reach the same store. */
function storeArguments(options: StoreOptions): string[] {
  if (options.file !== undefined) return ['--file', options.file];
  if (options.stack !== undefined) return ['--stack', options.stack];
  if (options.prefix !== undefined) return ['--prefix', options.prefix];
  if (options.config !== undefined) return ['--config', options.config];
  return [];
}

/** The token's name: `<repository>/<branch>`, or the shared name given with --token-name. */
function tokenNameFrom(repository: string | undefined, branch: string | undefined, options: NameOptions): string {
  if (options.tokenName !== undefined) {
    if (repository !== undefined) throw new Error('give either <repository> <branch> or --token-name, not both');
    const parsed = tokenNameSchema.safeParse(options.tokenName);
    if (!parsed.success)
      throw new Error(
        `--token-name: ${describeZodIssues(parsed.error)
          .map((p) => p.replace(/^\(top level\): /, ''))
          .join('; ')}`,
      );
    return options.tokenName;
  }
  if (repository === undefined || branch === undefined || repository === '' || branch === '') {
    throw new Error('name the token: <repository> <branch>, or --token-name NAME for a shared token');
  }
  return tokenNameOf({ repository, branch });
}

/** A token given on standard input: a pipe, never a terminal (where it would be echoed) nor argv (where `ps` shows it). */
async function readStandardInput(): Promise<string> {
  if (process.stdin.isTTY)
    throw new Error('--stdin reads the token from a pipe, not a terminal: e.g. pbpaste | triggler tokens rotate --stdin my-repo main');
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

export function tokensCommand(dependencies: TokensCommandDependencies = {}): Command {
  const stdout = dependencies.stdout ?? ((text: string) => void process.stdout.write(text));
  const stderr = dependencies.stderr ?? ((text: string) => void process.stderr.write(text));
  const now = dependencies.now ?? Date.now;
  const ssmClient = dependencies.ssmClient ?? (() => new (ssmSdk().SSMClient)({}));
  const stdin = dependencies.stdin ?? readStandardInput;

  const io: StoreIo = { stdout, stderr, now, ssmClient };

  const storeOptions = (command: Command): Command =>
    command
      .addOption(
        new Option('--prefix <path>', `SSM path prefix of the tokens (default ${DEFAULT_TOKEN_PREFIX})`).conflicts([
          'stack',
          'file',
          'config',
        ]),
      )
      .addOption(
        new Option('--stack <name>', 'the stack whose tokens these are: prefix /<stack-name-in-kebab-case>/tokens').conflicts([
          'prefix',
          'file',
          'config',
        ]),
      )
      .addOption(new Option('--file <file>', 'a local token file instead of SSM').conflicts(['prefix', 'stack', 'config']))
      .addOption(
        new Option('-c, --config <file>', 'the token store a receiver config reads: its tokens.file, else its tokens.ssm prefix').conflicts(
          ['prefix', 'stack', 'file'],
        ),
      );

  const tokens = new Command('tokens').description('rotate, list and show trigger tokens (SSM Parameter Store or a token file)');

  storeOptions(
    tokens
      .command('rotate')
      .description('write a new token for <repository> <branch>; prints the parameter and its new version, never the token')
      .argument('[repository]')
      .argument('[branch]'),
  )
    .option('--token-name <name>', "a shared token's name instead of <repository>/<branch>")
    .option(
      '--create',
      'create the token when it does not exist yet (otherwise that is an error: a mistyped name must not make a new token)',
    )
    .option(
      '--stdin',
      'take the new token from standard input instead of generating one (a secret the provider generates, such as a GitLab signing token)',
    )
    .addHelpText(
      'after',
      '\nSenders pick the new token up within their cache time (60 s by default); receivers accept the\nprevious one for their grace period (900 s by default), so deliveries in flight are not refused.\n\nExamples:\n  triggler tokens rotate my-repo main\n  triggler tokens rotate --stack GitTriggler my-repo main\n  triggler tokens rotate --config /etc/triggler/receiver.json my-repo main   (its token file; then: systemctl reload triggler-receiver)',
    )
    .action(
      async (
        repository: string | undefined,
        branch: string | undefined,
        options: StoreOptions & NameOptions & { create?: boolean; stdin?: boolean },
      ) => {
        const tokenName = tokenNameFrom(repository, branch, options);
        if (tokenName.startsWith(`${DEPLOY_KEYS_FOLDER}/`)) {
          throw new Error(
            `--token-name: ${tokenName} is a deploy key, not a token: triggler tokens deploy-key ${[tokenName, ...storeArguments(options)].map(shellWord).join(' ')} --replace makes a new one`,
          );
        }
        const store = storeOf(options, io);
        const replacement = options.stdin ? givenToken(await stdin()) : newToken();
        await store.rotate(tokenName, replacement, options.create === true);
      },
    );

  storeOptions(tokens.command('list').description('list token parameters with their versions and ages (never a value)'))
    .option('--json', 'print JSON instead of a table')
    .action(async (options: StoreOptions & { json?: boolean }) => {
      const store = storeOf(options, io);
      const { rows, header, cells, empty } = await store.list();
      if (options.json) stdout(`${JSON.stringify(rows, null, 2)}\n`);
      else if (rows.length === 0) stdout(`${empty}\n`);
      else stdout(`${table(header, cells)}\n`);
    });

  storeOptions(
    tokens
      .command('show')
      .description("print the token of <repository> <branch> (needs --reveal), e.g. to paste into a provider's webhook settings")
      .argument('[repository]')
      .argument('[branch]'),
  )
    .option('--token-name <name>', "a shared token's name instead of <repository>/<branch>")
    .option('--reveal', 'really print the token')
    .action(
      async (repository: string | undefined, branch: string | undefined, options: StoreOptions & NameOptions & { reveal?: boolean }) => {
        const tokenName = tokenNameFrom(repository, branch, options);
        if (!options.reveal) {
          throw new Error(
            "tokens show prints a secret, which then stays in your terminal's scrollback and maybe a log: add --reveal if you mean it (tokens list shows names, versions and ages without values)",
          );
        }
        const store = storeOf(options, io);
        stdout(`${await store.show(tokenName)}\n`);
      },
    );

  storeOptions(
    tokens
      .command('deploy-key')
      .description(
        "make an ed25519 deploy key stored as <name> (a trigger's deploy.sshKey) and print its public half, to paste into the provider's deploy keys",
      )
      .argument('<name>', 'the name it is stored under, e.g. deploy-keys/my-app'),
  )
    .option('--replace', 'replace the key stored under <name>: fetches fail until the provider has the new public key')
    .option('--public', 'print the public half of the key stored under <name>; make nothing')
    .option('--comment <text>', "the public key's comment (default: git-triggler <name>)")
    .addHelpText(
      'after',
      '\nOnly the public half is printed; the private half goes straight into the token file or SSM.\nAdd it at the provider as a read-only deploy key (GitHub: Settings > Deploy keys; GitLab:\nSettings > Repository > Deploy keys; Gitea: Settings > Deploy Keys; Bitbucket: Repository\nsettings > Access keys).\n\nExamples:\n  triggler tokens deploy-key --file /etc/triggler/tokens.json deploy-keys/my-app\n  triggler tokens deploy-key --stack GitTriggler deploy-keys/my-app --public',
    )
    .action(async (name: string, options: StoreOptions & { replace?: boolean; public?: boolean; comment?: string }) => {
      const parsed = tokenNameSchema.safeParse(name);
      if (!parsed.success)
        throw new Error(
          `<name>: ${describeZodIssues(parsed.error)
            .map((p) => p.replace(/^\(top level\): /, ''))
            .join('; ')}`,
        );
      const store = storeOf(options, io);
      if (options.public) {
        stdout(`${publicKeyOf(await store.show(name))}\n`);
        return;
      }
      const key = newDeployKey(options.comment ?? `git-triggler ${name}`);
      const outcome = await store.write(name, key.privateKey, options.replace === true);
      await store.writePublicHalf?.(name, key.publicKey);
      if (outcome === 'replaced') {
        stderr(
          `a running receiver fetches with the new key from now on (${store instanceof FileTokenStore ? 'on its next fetch' : 'within tokens.cacheSeconds'}), and fails until the provider has its public half; ` +
            `a stack's DeployKey output keeps showing the old half until the key's resource changes (--public prints the stored one)\n`,
        );
      }
      stdout(`${key.publicKey}\n`);
    });

  return tokens;
}
