/**
 * `npm run bench`: runs every bench/*.bench.ts in its own process, one after another (they share
 * two cores), and prints their markdown sections. Copy the figures into BENCHMARKS.md.
 *   npm run bench                 all of them
 *   npm run bench -- receiver     only those whose file name contains "receiver"
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

const filter = process.argv[2] ?? '';
const files = readdirSync(__dirname)
  .filter((f) => f.endsWith('.bench.ts') && f.includes(filter))
  .sort();
process.stdout.write(
  `# git-triggler benchmarks\n\n${new Date().toISOString().slice(0, 10)} — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}\n`,
);
let failed = 0;
for (const file of files) {
  const result = spawnSync(process.execPath, [require.resolve('tsx/cli'), join(__dirname, file)], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    process.stdout.write(`\n(${file} failed with exit ${result.status})\n`);
  }
}
process.exit(failed ? 1 : 0);
