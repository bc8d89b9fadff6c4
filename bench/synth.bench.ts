/**
 * Stack figure, printed as a markdown section: the wall time of `npx cdk synth -q` on the
 * example config (triggler.config.json), median of 3 runs. Each run is the real thing: tsx loads
 * the app, esbuild bundles the sender, both custom-resource handlers and the receiver, and cdk-nag
 * checks the template. No AWS credentials, no network.
 *
 *   npx tsx bench/synth.bench.ts        (BENCH_RUNS to change the count)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TARGET_SECONDS = 15;

function offlineEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_EC2_METADATA_DISABLED: 'true' };
  delete env.AWS_PROFILE;
  delete env.AWS_SECRET_ACCESS_KEY;
  delete env.AWS_SESSION_TOKEN;
  return env;
}

function synthOnce(outdir: string): number {
  const started = process.hrtime.bigint();
  const result = spawnSync('npx', ['cdk', 'synth', '-q', '--output', outdir], { cwd: ROOT, env: offlineEnvironment(), encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) {
    process.stderr.write(result.stdout + result.stderr);
    throw new Error(`cdk synth exited with ${result.status}`);
  }
  return seconds;
}

function main(): void {
  const load = loadavg()[0]?.toFixed(2);
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const outdir = mkdtempSync(join(tmpdir(), 'triggler-synth-bench-'));
    try {
      times.push(synthOnce(outdir));
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  process.stdout.write(
    [
      '',
      '## Stack: `cdk synth`',
      '',
      `\`npx cdk synth -q\` on triggler.config.json (4 esbuild bundles, cdk-nag AwsSolutions), no credentials; ${cpus().length} cores, load average ${load} at start.`,
      '',
      '| runs | median | each | target |',
      '| --- | --- | --- | --- |',
      `| ${RUNS} | ${median.toFixed(1)} s | ${times.map((t) => `${t.toFixed(1)} s`).join(', ')} | ≤ ${TARGET_SECONDS} s ${median <= TARGET_SECONDS ? '(met)' : '(missed)'} |`,
      '',
    ].join('\n'),
  );
}

main();
