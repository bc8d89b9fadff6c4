/**
 * Sender figures, printed as a markdown section:
 * - the size of lambda/sender.ts bundled as the stack bundles it (esbuild, CJS, node24, minified,
 *   keep-names, the AWS SDK inside: BundledNodeFunction's `bundleAwsSDK: true`), and for comparison
 *   with `@aws-sdk/*` left to the runtime;
 * - cold module-init time of that bundle in a fresh `node` process (median of several spawns), and
 *   the first invocation after it (SSM client set-up, first GetParameter, first connection);
 * - warm handler time per delivery (p50, p99) to a receiver on 127.0.0.1, with the token cached.
 * SSM is the local SSM endpoint (scripts/local-ssm.ts); nothing here talks to AWS.
 *
 *   npx tsx bench/sender.bench.ts        (BENCH_SPAWNS, BENCH_DELIVERIES to change the counts)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startLocalSsm, type LocalSsm } from '../scripts/local-ssm';
import { bundleLambda } from '../scripts/local-lambda';
import {
  freePort,
  kib,
  ms,
  percentile,
  probePath,
  runBench,
  runProbe,
  startMinimalReceiver,
  stopChild,
  verdict,
  type MinimalReceiver,
} from './support';

const ROOT = resolve(__dirname, '..');
const SPAWNS = Number(process.env.BENCH_SPAWNS ?? 10);
const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 1000);
const SEED_DELIVERIES = Math.max(50, Math.round(DELIVERIES / 4));
const TARGET_INIT_MS = 150;
const TARGET_P50_MS = 5;

const STANDARD_TOKEN = randomBytes(24).toString('hex');
const SEED_TOKEN = randomBytes(24).toString('hex');

interface Bundle {
  file: string;
  bytes: number;
  gzipBytes: number;
}

/** The sender as the stack bundles it, and two variants for comparison. */
async function bundleSender(dir: string, variant: 'stack' | 'cjs-sdk' | 'external-sdk'): Promise<Bundle> {
  const file = join(dir, `sender-${variant}.js`);
  await bundleLambda('sender', file, {
    ...(variant === 'external-sdk' ? { external: ['@aws-sdk/*'] } : {}),
    // esbuild's default for node prefers `main` (the SDK's one-file CommonJS build, which cannot be
    // tree-shaken); the stack puts `module` first to take its ES build, of which only what the
    // sender uses is kept. `cjs-sdk` shows what that saves.
    ...(variant === 'cjs-sdk' ? { mainFields: ['main', 'module'] } : {}),
  });
  const content = readFileSync(file);
  return { file, bytes: content.length, gzipBytes: gzipSync(content, { level: 9 }).length };
}

/** A CodeCommit trigger event for one pushed branch, as AWS's documented sample has it (the repository, branch and event id set). */
function codeCommitEvent(repository: string, branch: string, eventId: string): unknown {
  return {
    Records: [
      {
        awsRegion: 'us-east-2',
        codecommit: { references: [{ commit: '5e493c6f3067653f3d04eca608b4901eb227078', ref: `refs/heads/${branch}` }] },
        eventId,
        eventName: 'ReferenceChanges',
        eventPartNumber: 1,
        eventSource: 'aws:codecommit',
        eventSourceARN: `arn:aws:codecommit:us-east-2:123456789012:${repository}`,
        eventTime: '2019-03-12T20:58:25.400+0000',
        eventTotalParts: 1,
        eventTriggerConfigId: '0d17d6a4-efeb-46f3-b3ab-a63741badeb8',
        eventTriggerName: 'index.handler',
        eventVersion: '1.0',
        userIdentityARN: 'arn:aws:iam::123456789012:user/intern',
      },
    ],
  };
}

/** The project's receiver (`triggler serve`) in its own process, when it starts; undefined if not. */
async function startRealReceiver(dir: string): Promise<{ url: string; child: ChildProcess } | undefined> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const config = {
    listen: { host: '127.0.0.1', port },
    admin: { host: '127.0.0.1', port: adminPort },
    stateDir: join(dir, 'receiver-state'),
    log: { level: 'warn' },
    triggers: [{ repository: 'bench-real', branch: 'main', token: STANDARD_TOKEN, command: 'true' }],
  };
  writeFileSync(join(dir, 'receiver.json'), JSON.stringify(config), { mode: 0o600 });
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'triggler.js'), 'serve', '--config', join(dir, 'receiver.json')], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 100 && child.exitCode === null; attempt++) {
    try {
      const response = await fetch(`${url}/healthz`);
      await response.text();
      return { url, child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill('SIGTERM');
  return undefined;
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'triggler-sender-bench-'));
  let ssm: LocalSsm | undefined;
  let minimal: MinimalReceiver | undefined;
  let real: { url: string; child: ChildProcess } | undefined;
  try {
    const bundled = await bundleSender(dir, 'stack');
    const cjsSdk = await bundleSender(dir, 'cjs-sdk');
    const external = await bundleSender(dir, 'external-sdk');
    const coldProbe = probePath('sender-cold.js');
    const warmProbe = probePath('sender-warm.js');

    ssm = await startLocalSsm({ region: 'us-east-2' });
    ssm.put('/bench/standard', STANDARD_TOKEN);
    ssm.put('/bench/seed', SEED_TOKEN);
    minimal = await startMinimalReceiver();
    real = await startRealReceiver(dir);

    const routes = [
      { repository: 'bench', branch: 'main', url: minimal.url, tokenParameter: '/bench/standard', scheme: 'standard' },
      { repository: 'bench', branch: 'legacy', url: minimal.url, tokenParameter: '/bench/seed', scheme: 'seed' },
      ...(real ? [{ repository: 'bench-real', branch: 'main', url: real.url, tokenParameter: '/bench/standard', scheme: 'standard' }] : []),
    ];
    const awsDir = join(dir, 'aws');
    const baseEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir,
      // The external-SDK bundle finds @aws-sdk/* in this repository's node_modules.
      NODE_PATH: join(ROOT, 'node_modules'),
      // The SDK warns that Node 20 nears its end of support; Lambda runs Node 24.
      NODE_NO_WARNINGS: '1',
      AWS_ENDPOINT_URL_SSM: ssm.url,
      AWS_ACCESS_KEY_ID: 'AKIDSENDERBENCH',
      AWS_SECRET_ACCESS_KEY: 'sender-bench-secret',
      AWS_REGION: 'us-east-2',
      AWS_CONFIG_FILE: join(awsDir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(awsDir, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      TRIGGLER_ROUTES: JSON.stringify(routes),
      TRIGGLER_LOG_LEVEL: 'info',
      BENCH_BARE_URL: `${minimal.url}/bare`,
    };
    const standardEvent = JSON.stringify(codeCommitEvent('bench', 'main', 'cold'));

    // Spawns of the three bundles take turns, so a change in the machine's load falls on all alike.
    type ColdRun = { bootMs: number; initMs: number; initCpuMs: number; firstMs: number };
    const coldRuns = new Map<Bundle, ColdRun[]>([
      [bundled, []],
      [cjsSdk, []],
      // With the SDK external it resolves to this repository's node_modules (unminified), standing
      // in for the copy the Lambda runtime ships.
      [external, []],
    ]);
    for (let i = 0; i < SPAWNS; i++) {
      for (const [bundle, runs] of coldRuns) {
        runs.push((await runProbe(coldProbe, [bundle.file], { ...baseEnv, BENCH_EVENT: standardEvent })) as ColdRun);
      }
    }
    const cold = (bundle: Bundle) => {
      const runs = coldRuns.get(bundle)!;
      return {
        initMs: percentile(
          runs.map((r) => r.initMs),
          50,
        ),
        initCpuMs: percentile(
          runs.map((r) => r.initCpuMs),
          50,
        ),
        firstMs: percentile(
          runs.map((r) => r.firstMs),
          50,
        ),
        bootMs: percentile(
          runs.map((r) => r.bootMs),
          50,
        ),
      };
    };
    const coldBundled = cold(bundled);
    const coldCjsSdk = cold(cjsSdk);
    const coldExternal = cold(external);

    type Warm = { handlerMs: number[]; fetchMs: number[]; rssMiB: number };
    const warm = async (repository: string, branch: string, count: number) =>
      (await runProbe(warmProbe, [bundled.file, String(count)], {
        ...baseEnv,
        BENCH_EVENT: JSON.stringify(codeCommitEvent(repository, branch, 'warm')),
      })) as Warm;
    const standard = await warm('bench', 'main', DELIVERIES);
    const seed = await warm('bench', 'legacy', SEED_DELIVERIES);
    const toReal = real ? await warm('bench-real', 'main', Math.min(DELIVERIES, 300)) : undefined;

    const p50 = percentile(standard.handlerMs, 50);
    const lines = [
      '',
      '## Sender',
      '',
      `Bundle: \`lambda/sender.ts\` through esbuild ${require('esbuild/package.json').version} as \`BundledNodeFunction\` bundles it (CJS, target node24, minified, keep-names, \`@aws-sdk/*\` bundled from its ES build: \`bundleAwsSDK: true\`, \`mainFields: ['module', 'main']\`). Measured on Node.js ${process.version} (Lambda runs Node.js 24), ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${loadAtStart.toFixed(1)} when the bench started (other work on the machine inflates every time below). Logs on (one JSON line per delivery, written to /dev/null). SSM is the local SSM endpoint, token cached after the first read.`,
      '',
      '| figure | value | how |',
      '| --- | --- | --- |',
      `| bundle size, AWS SDK bundled from its ES build (what the stack deploys) | ${kib(bundled.bytes)} (${kib(bundled.gzipBytes)} gzip) | esbuild output file |`,
      `| bundle size, SDK bundled from its CommonJS build (esbuild's default \`mainFields\`) | ${kib(cjsSdk.bytes)} (${kib(cjsSdk.gzipBytes)} gzip) | for comparison |`,
      `| bundle size, \`@aws-sdk/*\` external (runtime's SDK) | ${kib(external.bytes)} (${kib(external.gzipBytes)} gzip) | for comparison |`,
      `| cold module init, as deployed | ${ms(coldBundled.initMs)} wall (${verdict(coldBundled.initMs, TARGET_INIT_MS)}), ${ms(coldBundled.initCpuMs)} CPU | \`require()\` of the bundle in a fresh \`node\`, median of ${SPAWNS}; CPU = user + system time of the process during it |`,
      `| cold module init, SDK from its CommonJS build | ${ms(coldCjsSdk.initMs)} wall, ${ms(coldCjsSdk.initCpuMs)} CPU | same, for comparison |`,
      `| cold module init, SDK external | ${ms(coldExternal.initMs)} wall, ${ms(coldExternal.initCpuMs)} CPU | same, SDK from node_modules |`,
      `| first invocation after a cold init | ${ms(coldBundled.firstMs)} | SSM client set-up, first GetParameter, first connection, one Standard delivery; median of ${SPAWNS} |`,
      `| Node.js start-up before the module loads | ${ms(coldBundled.bootMs)} | not counted above; Lambda's runtime start is its own |`,
      `| warm handler, one Standard delivery, p50 / p99 | ${ms(p50)} / ${ms(percentile(standard.handlerMs, 99))} (p50 ${verdict(p50, TARGET_P50_MS)}) | ${DELIVERIES} invocations after 50 warm-up, minimal 202 receiver |`,
      `| bare \`fetch\` POST to the same receiver, p50 / p99 | ${ms(percentile(standard.fetchMs, 50))} / ${ms(percentile(standard.fetchMs, 99))} | the network floor inside the figure above |`,
      `| warm handler, one seed delivery (1000 SHA-256 rounds), p50 / p99 | ${ms(percentile(seed.handlerMs, 50))} / ${ms(percentile(seed.handlerMs, 99))} | ${SEED_DELIVERIES} invocations |`,
      toReal
        ? `| warm handler to the real receiver (\`triggler serve\`), p50 / p99 | ${ms(percentile(toReal.handlerMs, 50))} / ${ms(percentile(toReal.handlerMs, 99))} | ${toReal.handlerMs.length} invocations, each a new webhook-id the receiver verifies and records |`
        : '| warm handler to the real receiver | not measured | `triggler serve` did not start |',
      `| RSS after the warm Standard run | ${standard.rssMiB.toFixed(0)} MiB | \`process.memoryUsage().rss\` |`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    if (real) await stopChild(real.child);
    await minimal?.close();
    await ssm?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench('sender', main);
