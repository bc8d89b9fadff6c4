/**
 * Builds the CLI that `npm pack` ships: dist/triggler.js, one bundle of bin/triggler-cli.ts and
 * everything it uses (the receiver included), bundled as the receiver is for the host, so an
 * install needs neither tsx nor any dependency at run time; and dist/triggler-serve.js, `serve`
 * alone (bin/triggler-serve.ts, bundled in dist/triggler-serve-bundle.js and run by a loader that
 * reads it in pieces, bin/triggler-serve-loader.js), which bin/triggler.js runs for `triggler
 * serve` so a long-running receiver keeps none of the other commands' code. The systemd unit `triggler
 * service-unit` starts from goes beside it. Run by `npm pack` (prepack).
 *
 * The packages the CLI loads only when a command or a config needs them (each required inside the
 * function that uses it) go in files of their own under dist/deferred/: a bundle's whole text is
 * read and kept by Node when it loads, so code left inside it costs memory even if it never runs.
 * `triggler serve` on local tokens without notifications then reads none of them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { CLI_BUNDLE_FILE, hostFilePath, RECEIVER_UNIT_FILE_NAME, receiverBuildOptions } from '../lib/host-files/host-files';

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
/** Beside the CLI bundle; a require from the bundle names it relative to the bundle's own file. */
export const DEFERRED_DIR = 'deferred';
/** What runs `triggler serve` alone, beside the whole CLI: bin/triggler-serve-loader.js, which runs the bundle in SERVE_PROGRAM_FILE. */
export const SERVE_BUNDLE_FILE = 'triggler-serve.js';
/** The bundle of `triggler serve` alone (bin/triggler-serve.ts), the name bin/triggler-serve-loader.js reads. */
export const SERVE_PROGRAM_FILE = 'triggler-serve-bundle.js';

/**
 * Loaded only when needed: undici by the commands that talk to a receiver and by notifications
 * that post; the SSM client by an SSM token source and `triggler tokens`; SNS and CloudWatch by
 * notifications that name them; Step Functions by `triggler fleet`; pino-pretty by a log for
 * people (`--log-format pretty`, or a terminal); prom-client by the first read of a receiver's
 * metrics (its process defaults).
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

function deferredFileName(packageName: string): string {
  return `${packageName.replace(/^@/, '').replaceAll('/', '-')}.js`;
}

/** Every require of a deferred package becomes a require of its file in dist/deferred/. */
function deferredPackages(): Plugin {
  const filter = new RegExp(`^(${DEFERRED_PACKAGES.map((name) => name.replaceAll('/', '\\/')).join('|')})$`);
  return {
    name: 'deferred-packages',
    setup(build) {
      build.onResolve({ filter }, (args) => ({ path: `./${DEFERRED_DIR}/${deferredFileName(args.path)}`, external: true }));
    },
  };
}

/**
 * esbuild writes strings and regular expressions as ASCII, but keeps comments as they are, and
 * one character past ASCII anywhere makes V8 hold the whole bundle's text at two bytes a
 * character (3.5 MB instead of 1.75, for as long as the process runs). A comment's characters
 * mean nothing to the program: each one past ASCII becomes `?`. Anything else past ASCII fails
 * the build rather than change what the program says.
 */
function asciiComments(file: string): void {
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

/**
 * zod's `locales` (error messages in some forty languages, ~350 KB of the bundle, ~2.5 MiB of a
 * process at rest) are re-exported by its `z` namespace, so esbuild cannot leave them out; the CLI
 * and the receiver speak English only (zod's default, which zod imports on its own), so inside
 * zod the namespace is English alone.
 */
function englishOnlyZod(): Plugin {
  return {
    name: 'english-only-zod',
    setup(build) {
      build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
        /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)
          ? { path: 'zod-locales', namespace: 'english-only-zod', pluginData: { resolveDir: path.join(args.resolveDir, '..', 'locales') } }
          : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'english-only-zod' }, (args) => ({
        contents: "export { default as en } from './en.js';",
        resolveDir: (args.pluginData as { resolveDir: string }).resolveDir,
        loader: 'js',
      }));
    },
  };
}

export async function buildCli(outdir = DIST): Promise<string> {
  fs.rmSync(outdir, { recursive: true, force: true });
  fs.mkdirSync(outdir, { recursive: true });
  const outfile = path.join(outdir, CLI_BUNDLE_FILE);
  // The oldest Node.js the package supports (package.json engines).
  const target = 'node20';
  for (const [entry, file] of [
    ['triggler-cli.ts', outfile],
    ['triggler-serve.ts', path.join(outdir, SERVE_PROGRAM_FILE)],
  ] as const) {
    await build({ ...receiverBuildOptions(path.join(ROOT, 'bin', entry), file, target), plugins: [deferredPackages(), englishOnlyZod()] });
    asciiComments(file);
  }
  for (const name of DEFERRED_PACKAGES) {
    const options = receiverBuildOptions('', path.join(outdir, DEFERRED_DIR, deferredFileName(name)), target);
    delete options.entryPoints;
    await build({ ...options, stdin: { contents: `module.exports = require(${JSON.stringify(name)});`, resolveDir: ROOT, loader: 'js' } });
  }
  // A long-running receiver's bundle is read in pieces (the loader says why).
  fs.copyFileSync(path.join(ROOT, 'bin', 'triggler-serve-loader.js'), path.join(outdir, SERVE_BUNDLE_FILE));
  fs.copyFileSync(hostFilePath(RECEIVER_UNIT_FILE_NAME), path.join(outdir, RECEIVER_UNIT_FILE_NAME));
  return outfile;
}

if (require.main === module) {
  buildCli().then(
    (outfile) => process.stdout.write(`built ${path.relative(process.cwd(), outfile)}\n`),
    (error: unknown) => {
      process.stderr.write(`build-cli: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
