/**
 * Where `triggler tokens` reads and writes tokens: SSM Parameter Store (the stack's SecureStrings
 * `<prefix>/<tokenName>`) or a local token file. Each store does rotate, list and show in its own
 * way; the commands do not know which store they talk to.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Parameter, SSMClient } from '@aws-sdk/client-ssm';
import { awsErrorName, describeAwsError, parameterNameProblem, tokenParameterName } from '../protocol';
import { DEPLOY_KEYS_FOLDER, publicKeyNameOf } from '../lib/stack-config/deploy-keys';
import { readTokenFile, type TokenFile, tokensOfEntry } from '../receiver';

/**
 * The AWS SDK's SSM module, loaded when a command reaches SSM: the CLI's other commands (`serve`
 * above all) do not pay for it. scripts/build-cli.ts keeps it in a file of its own beside the CLI
 * bundle, read only then.
 */
export function ssmSdk(): typeof import('@aws-sdk/client-ssm') {
  return require('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm');
}

/** A rotation sooner than this after the last one drops a token senders may still hold. */
const RECENT_ROTATION_SECONDS = 120;

export interface StoreIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Epoch milliseconds. */
  now: () => number;
  ssmClient: () => SSMClient;
}

/** What `tokens list` prints: JSON rows, or a table of them. */
export interface TokenListing {
  rows: object[];
  header: string[];
  cells: string[][];
  /** Said when there are no rows. */
  empty: string;
}

export interface TokenStore {
  /** Writes `replacement` as the token's new value, keeping the previous one for the receivers' grace. */
  rotate(tokenName: string, replacement: string, create: boolean): Promise<void>;
  /** Names, versions and ages; never a value. */
  list(): Promise<TokenListing>;
  /** The token's current value. */
  show(tokenName: string): Promise<string>;
  /**
   * Stores a secret that has no grace period (a deploy key): the new value only. Refuses to replace
   * one that exists unless `replace`; says which it did.
   */
  write(name: string, value: string, replace: boolean): Promise<'created' | 'replaced'>;
  /**
   * Keeps a deploy key's public half beside it, where the stack reads it for its output
   * (`<name>.pub`, a plain String). Only SSM has such a place; a token file needs none.
   */
  writePublicHalf?(name: string, publicKey: string): Promise<void>;
}

/** "3d 4h", "12m", "40s": how long ago, for people. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

export class SsmTokenStore implements TokenStore {
  constructor(
    readonly prefix: string,
    private readonly io: StoreIo,
  ) {}

  async rotate(tokenName: string, replacement: string, create: boolean): Promise<void> {
    const { stdout, stderr, now } = this.io;
    const parameter = this.parameterOf(tokenName);
    await this.withSsm(async (client) => {
      let current: Parameter | undefined;
      try {
        // Without decryption: only whether it exists and how old it is matter here.
        current = (await client.send(new (ssmSdk().GetParameterCommand)({ Name: parameter }))).Parameter;
      } catch (error) {
        if (awsErrorName(error) !== 'ParameterNotFound')
          throw new Error(`cannot read ${parameter} from SSM: ${describeAwsError(error)}`, { cause: error });
      }
      if (!current && !create) {
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
        version = (
          await client.send(
            new (ssmSdk().PutParameterCommand)({ Name: parameter, Value: replacement, Type: 'SecureString', Overwrite: true }),
          )
        ).Version;
      } catch (error) {
        // The SDK's error never carries the request, so the new token cannot be in this message.
        throw new Error(`cannot write ${parameter} to SSM: ${describeAwsError(error)}`, { cause: error });
      }
      stdout(`${current ? 'rotated' : 'created'} ${parameter} version ${version ?? '?'}\n`);
      stderr('senders pick the new token up within their cache time; receivers accept the previous one for their grace period\n');
    });
  }

  async list(): Promise<TokenListing> {
    const at = this.io.now();
    const parameters = await this.withSsm(async (client) => {
      const found: Parameter[] = [];
      let nextToken: string | undefined;
      do {
        let page;
        try {
          // Without decryption: a list never needs a value, and SSM then returns none.
          page = await client.send(
            new (ssmSdk().GetParametersByPathCommand)({
              Path: this.prefix,
              Recursive: true,
              MaxResults: 10,
              ...(nextToken ? { NextToken: nextToken } : {}),
            }),
          );
        } catch (error) {
          throw new Error(`cannot list ${this.prefix} in SSM: ${describeAwsError(error)}`, { cause: error });
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
      // A deploy key's public half is a plain String on purpose (the stack outputs it).
      const publicHalf = row.name.startsWith(`${this.prefix}/${DEPLOY_KEYS_FOLDER}/`) && row.name.endsWith('.pub');
      if (row.type !== null && row.type !== 'SecureString' && !publicHalf)
        this.io.stderr(`warning: ${row.name} is a ${row.type} parameter: a token belongs in a SecureString\n`);
    }
    return {
      rows,
      header: ['PARAMETER', 'VERSION', 'AGE', 'MODIFIED'],
      cells: rows.map((r) => [
        r.name,
        r.version === null ? '-' : String(r.version),
        r.ageSeconds === null ? '-' : formatAge(r.ageSeconds),
        r.lastModified ?? '-',
      ]),
      empty: `no token parameters under ${this.prefix}`,
    };
  }

  async show(tokenName: string): Promise<string> {
    const parameter = this.parameterOf(tokenName);
    const found = await this.withSsm(async (client) => {
      try {
        return (await client.send(new (ssmSdk().GetParameterCommand)({ Name: parameter, WithDecryption: true }))).Parameter;
      } catch (error) {
        if (awsErrorName(error) === 'ParameterNotFound')
          throw new Error(`no token parameter ${parameter} in SSM (check --prefix or --stack)`, { cause: error });
        throw new Error(`cannot read ${parameter} from SSM: ${describeAwsError(error)}`, { cause: error });
      }
    });
    if (!found?.Value) throw new Error(`${parameter} has no value`);
    // Only the token goes to stdout, so it can be piped (to a clipboard, say); which version it is goes to stderr.
    this.io.stderr(`${parameter} version ${found.Version ?? '?'}\n`);
    return found.Value;
  }

  async write(name: string, value: string, replace: boolean): Promise<'created' | 'replaced'> {
    const parameter = this.parameterOf(name);
    return this.withSsm(async (client) => {
      let version: number | undefined;
      try {
        version = (
          await client.send(new (ssmSdk().PutParameterCommand)({ Name: parameter, Value: value, Type: 'SecureString', Overwrite: replace }))
        ).Version;
      } catch (error) {
        if (awsErrorName(error) === 'ParameterAlreadyExists')
          throw new Error(`${parameter} exists already (pass --replace to replace it)`, { cause: error });
        throw new Error(`cannot write ${parameter} to SSM: ${describeAwsError(error)}`, { cause: error });
      }
      const outcome = version !== undefined && version > 1 ? 'replaced' : 'created';
      this.io.stderr(`${outcome} ${parameter} version ${version ?? '?'}\n`);
      return outcome;
    });
  }

  async writePublicHalf(name: string, publicKey: string): Promise<void> {
    const parameter = this.parameterOf(publicKeyNameOf(name));
    await this.withSsm(async (client) => {
      try {
        await client.send(
          new (ssmSdk().PutParameterCommand)({
            Name: parameter,
            Value: publicKey,
            Type: 'String',
            Overwrite: true,
            Description: "git-triggler deploy key: the public half, for the repository's deploy keys (read-only)",
          }),
        );
      } catch (error) {
        throw new Error(`cannot write ${parameter} to SSM: ${describeAwsError(error)}`, { cause: error });
      }
    });
    this.io.stderr(`wrote its public half to ${parameter}\n`);
  }

  private parameterOf(tokenName: string): string {
    const name = tokenParameterName(this.prefix, tokenName);
    const problem = parameterNameProblem(name);
    if (problem) throw new Error(problem);
    return name;
  }

  private async withSsm<T>(work: (client: SSMClient) => Promise<T>): Promise<T> {
    const client = this.io.ssmClient();
    try {
      return await work(client);
    } catch (error) {
      throw withoutRegionHint(error);
    } finally {
      client.destroy();
    }
  }
}

/**
 * SSM with no AWS region configured (a self-hosted box with no AWS settings): the SDK's "Region is
 * missing" said as a choice between the stores, since the user most likely meant a token file.
 */
function withoutRegionHint(error: unknown): unknown {
  const messages: string[] = [];
  for (let cause = error; cause instanceof Error; cause = cause.cause) messages.push(cause.message);
  if (!messages.some((message) => /Region is missing/i.test(message))) return error;
  return new Error(
    `${(error as Error).message}\n  No AWS region is set, so SSM cannot be asked. On a self-hosted box, choose the token file: --config <receiver.json> (its tokens.file) or --file <tokens.json>; for SSM, set AWS_REGION (or a profile with a region).`,
    { cause: error },
  );
}

export class FileTokenStore implements TokenStore {
  constructor(
    readonly path: string,
    private readonly io: StoreIo,
  ) {}

  async rotate(tokenName: string, replacement: string, create: boolean): Promise<void> {
    const present = await readTokenFileIfPresent(this.path);
    if (!present && !create) throw new Error(`token file ${this.path} does not exist (pass --create to start one)`);
    const file: TokenFile = present?.file ?? {};
    const entry = Object.prototype.hasOwnProperty.call(file, tokenName) ? file[tokenName] : undefined;
    if (entry === undefined && !create) throw new Error(`no token named ${tokenName} in ${this.path} (pass --create to add it)`);
    const rotatedAt = new Date(this.io.now()).toISOString();
    const previous = entry === undefined ? undefined : typeof entry === 'string' ? entry : entry.current;
    file[tokenName] = { current: replacement, ...(previous !== undefined ? { previous } : {}), rotatedAt };
    await writeTokenFileAtomically(this.path, file, present?.owner);
    this.io.stdout(`${entry === undefined ? 'created' : 'rotated'} ${tokenName} in ${this.path} at ${rotatedAt}\n`);
    this.io.stderr(
      'a running receiver picks it up on SIGHUP (systemctl reload triggler-receiver), or when the first delivery signed with the new token arrives\n',
    );
  }

  async list(): Promise<TokenListing> {
    const at = this.io.now();
    const file = await readTokenFile(this.path);
    const rows = Object.entries(file)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, entry]) => {
        const rotatedAt = typeof entry === 'string' ? undefined : entry.rotatedAt;
        const ageSeconds = rotatedAt ? (at - Date.parse(rotatedAt)) / 1000 : undefined;
        return {
          name,
          rotatedAt: rotatedAt ?? null,
          ageSeconds: ageSeconds === undefined ? null : Math.floor(ageSeconds),
          previous: typeof entry !== 'string' && entry.previous !== undefined,
        };
      });
    return {
      rows,
      header: ['TOKEN', 'ROTATED', 'AGE', 'PREVIOUS'],
      cells: rows.map((r) => [
        r.name,
        r.rotatedAt ?? '-',
        r.ageSeconds === null ? '-' : formatAge(r.ageSeconds),
        r.previous ? 'kept' : '-',
      ]),
      empty: `no tokens in ${this.path}`,
    };
  }

  async show(tokenName: string): Promise<string> {
    const file = await readTokenFile(this.path);
    const [token] = tokensOfEntry(Object.prototype.hasOwnProperty.call(file, tokenName) ? file[tokenName] : undefined, 0, this.io.now());
    if (token === undefined) throw new Error(`no token named ${tokenName} in ${this.path}`);
    return token;
  }

  async write(name: string, value: string, replace: boolean): Promise<'created' | 'replaced'> {
    const present = await readTokenFileIfPresent(this.path);
    const file: TokenFile = present?.file ?? {};
    const exists = Object.prototype.hasOwnProperty.call(file, name);
    if (exists && !replace) throw new Error(`${name} exists already in ${this.path} (pass --replace to replace it)`);
    file[name] = value;
    await writeTokenFileAtomically(this.path, file, present?.owner);
    const outcome = exists ? 'replaced' : 'created';
    this.io.stderr(`${outcome} ${name} in ${this.path}\n`);
    return outcome;
  }
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
