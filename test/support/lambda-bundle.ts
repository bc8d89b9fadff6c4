/**
 * A Lambda entry bundled as `BundledNodeFunction` bundles it for the stack (esbuild, CJS, node24,
 * minified, keep-names, the AWS SDK inside from its ES build), for tests and benches that run the
 * shipped handler without a whole synth.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, type BuildOptions } from 'esbuild';

export const REPOSITORY_ROOT = join(__dirname, '..', '..');

/** Bundles `lambda/<name>.ts` into `outfile` (with `overrides`, for comparisons); returns its size in bytes. */
export async function bundleLambda(name: string, outfile: string, overrides: BuildOptions = {}): Promise<number> {
  await build({
    entryPoints: [join(REPOSITORY_ROOT, 'lambda', `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    minify: true,
    keepNames: true,
    mainFields: ['module', 'main'],
    logLevel: 'error',
    ...overrides,
  });
  return readFileSync(outfile).length;
}
