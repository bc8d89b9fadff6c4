/**
 * A real OpenSSH server on 127.0.0.1 for deploys over SSH: its own host key (made by ssh-keygen),
 * its own authorized_keys, logging in as the user the tests run as. git's ssh transport runs
 * `git-upload-pack '<path>'` through it, so a URL `ssh://<user>@127.0.0.1:<port>/<bare repo path>`
 * fetches a repository of the test's own.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './cli';

export const SSHD = '/usr/sbin/sshd';
/** As root, sshd wants its privilege separation folder, which its service unit would create. */
const PRIVSEP_DIR = '/run/sshd';

export interface Sshd {
  port: number;
  /** The server's host key as a known_hosts line for `[127.0.0.1]:<port>`. */
  knownHostsLine: string;
  /** Lets this public key (an authorized_keys line) log in. */
  authorize(publicKey: string): void;
  /** The ssh URL of a repository at this absolute path. */
  url(repositoryPath: string): string;
  /** What sshd logged (connections, refused keys). */
  log(): string;
  close(): Promise<void>;
}

/** Why ssh-keygen cannot be run here, or undefined when it can. */
export function sshKeygenMissing(): string | undefined {
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'ssh-keygen is not installed (Debian package openssh-client)';
  }
  return undefined;
}

/** Why the tests against a real sshd cannot run here, or undefined when they can. */
export function sshdMissing(): string | undefined {
  if (!fs.existsSync(SSHD)) return `${SSHD} is not installed (Debian package openssh-server)`;
  return sshKeygenMissing();
}

/** An ed25519 key pair made by ssh-keygen in `dir`: the private key's text and its public line. */
export function sshKeygen(dir: string, name: string): { privateKey: string; publicKey: string; file: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file], { stdio: 'ignore' });
  return { privateKey: fs.readFileSync(file, 'utf8'), publicKey: fs.readFileSync(`${file}.pub`, 'utf8').trim(), file };
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startSshd(dir: string): Promise<Sshd> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKey = sshKeygen(dir, 'host_key');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  fs.writeFileSync(authorizedKeys, '', { mode: 0o600 });
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey.file}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'UsePAM no',
      // The test's temporary folders are not the home folder layout StrictModes checks for.
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  const madePrivsepDir = process.getuid?.() === 0 && !fs.existsSync(PRIVSEP_DIR);
  if (madePrivsepDir) fs.mkdirSync(PRIVSEP_DIR, { mode: 0o755 });
  let output = '';
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    if (madePrivsepDir) fs.rmSync(PRIVSEP_DIR, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await connects(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await close();
      throw new Error(`sshd did not start: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const user = os.userInfo().username;
  return {
    port,
    knownHostsLine: `[127.0.0.1]:${port} ${hostKey.publicKey.split(' ').slice(0, 2).join(' ')}`,
    authorize: (publicKey) => fs.appendFileSync(authorizedKeys, `${publicKey.trim()}\n`),
    url: (repositoryPath) => `ssh://${user}@127.0.0.1:${port}${repositoryPath}`,
    log: () => output,
    close,
  };
}
