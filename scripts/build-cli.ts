/**
 * Builds the CLI that `npm pack` ships: dist/triggler.js, one bundle of bin/triggler-cli.ts and
 * everything it uses (the receiver included), bundled as the receiver is for the host, so an
 * install needs neither tsx nor any dependency at run time; and dist/triggler-serve.js, `serve`
 * alone (bin/triggler-serve.ts, bundled in dist/triggler-serve-bundle.js and run by a loader that
 * reads it in pieces, lib/host-files/bundle-loader.js), which bin/triggler.js runs for `triggler
 * serve` so a long-running receiver keeps none of the other commands' code. The systemd unit `triggler
 * service-unit` starts from goes beside it. Run by `npm pack` (prepack).
 *
 * The packages the CLI loads only when a command or a config needs them (each required inside the
 * function that uses it) go in files of their own under dist/deferred/ (lib/host-files says which
 * and why; the AWS host's bundle defers them alike).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build, type Plugin } from 'esbuild';
import {
  asciiComments,
  BUNDLE_LOADER_FILE_NAME,
  CLI_BUNDLE_FILE,
  deferredPackageBuilds,
  hostFilePath,
  loadedBundleName,
  RECEIVER_UNIT_FILE_NAME,
  receiverBuildOptions,
  withDeferredPackages,
} from '../lib/host-files/host-files';

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
/** What runs `triggler serve` alone, beside the whole CLI: lib/host-files/bundle-loader.js, which runs the bundle in SERVE_PROGRAM_FILE. */
export const SERVE_BUNDLE_FILE = 'triggler-serve.js';
/** The bundle of `triggler serve` alone (bin/triggler-serve.ts), the name the loader reads. */
export const SERVE_PROGRAM_FILE = loadedBundleName(SERVE_BUNDLE_FILE);

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
    await build({
      ...withDeferredPackages(receiverBuildOptions(path.join(ROOT, 'bin', entry), file, target)),
      plugins: [englishOnlyZod()],
    });
    asciiComments(file);
  }
  for (const options of deferredPackageBuilds(outdir, ROOT, target)) await build(options);
  // A long-running receiver's bundle is read in pieces (the loader says why).
  fs.copyFileSync(hostFilePath(BUNDLE_LOADER_FILE_NAME), path.join(outdir, SERVE_BUNDLE_FILE));
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
