/**
 * Builds `triggler` as one executable file per Linux architecture (Node.js single executable
 * applications): the CLI bundled as for `npm pack`, prepared into a blob by this Node.js and
 * injected with postject into a copy of a Node.js binary of the same version. The result runs
 * `triggler` on a box that has no Node.js.
 *
 *   tsx scripts/build-sea.ts                 # dist/sea/triggler-linux-x64 and -arm64
 *   tsx scripts/build-sea.ts --arch x64      # one of them
 *   tsx scripts/build-sea.ts --arch arm64 --node /path/to/arm64/node
 *
 * The Node.js binary of this machine's architecture is the one running this script. Another
 * architecture's comes from the npm package node-linux-<arch> at this Node.js's exact version,
 * fetched with `npm pack` (the blob is only valid in the version that made it) and kept under
 * dist/sea/ for the next build; `--node` names one instead.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { hostFilePath, RECEIVER_UNIT_FILE_NAME, receiverBuildOptions } from '../lib/host-files/host-files';

const ROOT = path.join(__dirname, '..');
const SEA_DIR = path.join(ROOT, 'dist', 'sea');
/** The marker Node.js looks for to know a blob was injected (its last character becomes 1). */
const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const BLOB_RESOURCE = 'NODE_SEA_BLOB';

export type SeaArch = 'x64' | 'arm64';
export const SEA_ARCHES: readonly SeaArch[] = ['x64', 'arm64'];
/** ELF e_machine of each architecture. */
const ELF_MACHINES: Record<SeaArch, number> = { x64: 62, arm64: 183 };

export interface SeaBuildOptions {
  arch: SeaArch;
  /** Where the executable goes (`triggler-linux-<arch>` inside it). */
  outdir?: string;
  /** A Node.js binary for `arch` of exactly this Node.js's version; by default this machine's, or the npm package's. */
  node?: string;
  /** Where a Node.js binary fetched from npm is kept between builds. */
  cacheDir?: string;
  /** Where the bundle, sea-config.json and the blob are made and left; a temporary folder, removed, by default. */
  workDir?: string;
}

/** What an executable file says about itself, read without running it. */
export interface ExecutableFacts {
  arch: SeaArch | undefined;
  /** The sentinel fuse is flipped: Node.js will look for the blob at start. */
  fuseFlipped: boolean;
  /** The blob's bytes stand in the file. */
  holdsBlob: boolean;
}

export function executableFacts(file: string, blob: Buffer): ExecutableFacts {
  const bytes = fs.readFileSync(file);
  const isElf64 = bytes.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])) && bytes[4] === 2 && bytes[5] === 1;
  const machine = isElf64 ? bytes.readUInt16LE(18) : -1;
  return {
    arch: SEA_ARCHES.find((arch) => ELF_MACHINES[arch] === machine),
    fuseFlipped: bytes.includes(`${SENTINEL_FUSE}:1`),
    holdsBlob: bytes.includes(blob),
  };
}

/** This Node.js's binary for `arch`: the running one, or the npm package's (fetched once into cacheDir). */
export function nodeBinaryFor(arch: SeaArch, cacheDir = SEA_DIR): string {
  if (arch === process.arch) return process.execPath;
  const version = process.versions.node;
  const cached = path.join(cacheDir, `node-linux-${arch}-${version}`, 'node');
  if (fs.existsSync(cached)) return cached;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-sea-node-'));
  try {
    const spec = `node-linux-${arch}@${version}`;
    let tarball: string;
    try {
      tarball = execFileSync('npm', ['pack', spec, '--pack-destination', work, '--silent'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
        .trim()
        .split('\n')
        .pop()!;
    } catch (error) {
      throw new Error(
        `could not fetch ${spec} with npm pack (pass --node with a Node.js ${version} binary for linux-${arch}): ${((error as { stderr?: string }).stderr ?? String(error)).trim()}`,
        { cause: error },
      );
    }
    execFileSync('tar', ['-xzf', path.join(work, tarball), '-C', work, 'package/bin/node']);
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    fs.copyFileSync(path.join(work, 'package', 'bin', 'node'), cached);
    fs.chmodSync(cached, 0o755);
    return cached;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Builds `triggler-linux-<arch>` and returns its path; throws if the result is not what was asked. */
export function buildSea(options: SeaBuildOptions): string {
  const { arch } = options;
  const outdir = options.outdir ?? SEA_DIR;
  const node = options.node ?? nodeBinaryFor(arch, options.cacheDir);
  const base = fs.readFileSync(node);
  if (!base.includes(`${SENTINEL_FUSE}:0`))
    throw new Error(`${node} is not a Node.js binary that can hold a single executable application (no unflipped ${SENTINEL_FUSE})`);

  const work = options.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-sea-'));
  fs.mkdirSync(work, { recursive: true });
  try {
    const bundle = path.join(work, 'triggler.js');
    const result = buildSync(
      receiverBuildOptions(path.join(ROOT, 'bin', 'triggler-sea.ts'), bundle, `node${process.versions.node.split('.')[0]}`),
    );
    if (result.errors.length > 0) throw new Error(`bundling the CLI failed: ${result.errors.map((e) => e.text).join('; ')}`);
    const blob = path.join(work, 'triggler.blob');
    const seaConfig = {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      // A snapshot would need the CLI to start from v8.startupSnapshot; the code cache is V8's for
      // this machine's architecture only. Both are left out: the script is compiled at start.
      useSnapshot: false,
      useCodeCache: false,
      assets: { [RECEIVER_UNIT_FILE_NAME]: hostFilePath(RECEIVER_UNIT_FILE_NAME) },
    };
    fs.writeFileSync(path.join(work, 'sea-config.json'), JSON.stringify(seaConfig, null, 2));
    execFileSync(process.execPath, ['--experimental-sea-config', path.join(work, 'sea-config.json')], { cwd: work, stdio: 'pipe' });

    fs.mkdirSync(outdir, { recursive: true });
    const executable = path.join(outdir, `triggler-linux-${arch}`);
    fs.rmSync(executable, { force: true });
    fs.writeFileSync(executable, base, { mode: 0o755 });
    execFileSync(
      process.execPath,
      [require.resolve('postject/dist/cli.js'), executable, BLOB_RESOURCE, blob, '--sentinel-fuse', SENTINEL_FUSE],
      { stdio: 'pipe' },
    );

    const facts = executableFacts(executable, fs.readFileSync(blob));
    if (facts.arch !== arch || !facts.fuseFlipped || !facts.holdsBlob) {
      throw new Error(`${executable} is not a linux-${arch} single executable: ${JSON.stringify(facts)}`);
    }
    return executable;
  } finally {
    if (options.workDir === undefined) fs.rmSync(work, { recursive: true, force: true });
  }
}

function parseArgs(argv: string[]): { arches: SeaArch[]; node?: string; outdir?: string } {
  const value = (flag: string) => {
    const at = argv.indexOf(flag);
    return at === -1 ? undefined : argv[at + 1];
  };
  const arch = value('--arch');
  if (arch !== undefined && !SEA_ARCHES.includes(arch as SeaArch))
    throw new Error(`--arch must be one of ${SEA_ARCHES.join(', ')}, got ${arch}`);
  const node = value('--node');
  if (node !== undefined && arch === undefined) throw new Error('--node needs --arch: the binary is of one architecture');
  return { arches: arch ? [arch as SeaArch] : [...SEA_ARCHES], node, outdir: value('--out') };
}

if (require.main === module) {
  try {
    const { arches, node, outdir } = parseArgs(process.argv.slice(2));
    for (const arch of arches) {
      const executable = buildSea({ arch, node, outdir });
      const mib = (fs.statSync(executable).size / 2 ** 20).toFixed(0);
      process.stdout.write(`built ${path.relative(process.cwd(), executable)} (${mib} MiB)\n`);
    }
  } catch (error) {
    process.stderr.write(`build-sea: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
