/**
 * Builds the CLI that `npm pack` ships: dist/triggler.js, one bundle of bin/triggler-cli.ts and
 * everything it uses (the receiver included), bundled as the receiver is for the host, so an
 * install needs neither tsx nor any dependency at run time. The systemd unit `triggler
 * service-unit` starts from goes beside it. Run by `npm pack` (prepack).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';
import { CLI_BUNDLE_FILE, hostFilePath, RECEIVER_UNIT_FILE_NAME, receiverBuildOptions } from '../lib/host-files/host-files';

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');

export function buildCli(outdir = DIST): string {
  fs.rmSync(outdir, { recursive: true, force: true });
  fs.mkdirSync(outdir, { recursive: true });
  const outfile = path.join(outdir, CLI_BUNDLE_FILE);
  // The oldest Node.js the package supports (package.json engines).
  buildSync(receiverBuildOptions(path.join(ROOT, 'bin', 'triggler-cli.ts'), outfile, 'node20'));
  fs.copyFileSync(hostFilePath(RECEIVER_UNIT_FILE_NAME), path.join(outdir, RECEIVER_UNIT_FILE_NAME));
  return outfile;
}

if (require.main === module) process.stdout.write(`built ${path.relative(process.cwd(), buildCli())}\n`);
