/**
 * Webhook relay figures, printed as a markdown section:
 * - the size of lambda/relay.ts bundled as the stack bundles it (BundledNodeFunction's options);
 * - cold module init of that bundle in a fresh `node` (median of several spawns), and the first
 *   invocation after it (SSM client set-up, first GetParameter, first connection to the receiver);
 * - warm handler time per forwarded delivery (a GitHub push from @octokit/webhooks-examples,
 *   verified, forwarded to a minimal 202 receiver on 127.0.0.1), beside a bare fetch of the same
 *   body to the same receiver: the difference is the relay's overhead;
 * - warm handler time of a forged request (refused 401): what one request of a flood costs.
 * SSM is the local SSM endpoint (scripts/local-ssm.ts); nothing here talks to AWS.
 *
 *   npx tsx bench/relay.bench.ts        (BENCH_SPAWNS, BENCH_DELIVERIES to change the counts)
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import webhookExamples from '@octokit/webhooks-examples';
import { startLocalSsm, type LocalSsm } from '../scripts/local-ssm';
import { bundleLambda, functionUrlEvent, localSsmEnvironment } from '../scripts/local-lambda';
import { kib, ms, percentile, probePath, runBench, runProbe, startMinimalReceiver, verdict, type MinimalReceiver } from './support';

const SPAWNS = Number(process.env.BENCH_SPAWNS ?? 10);
const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 1000);
const TARGET_INIT_MS = 150;
const TARGET_P50_MS = 5;
const SECRET = randomBytes(24).toString('hex');
const PARAMETER = '/bench/tokens/github/Codertocat/Hello-World';

function githubPush(secret: string): string {
  const body = JSON.stringify(webhookExamples.find((d) => d.name === 'push')!.examples[4]);
  const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'GitHub-Hookshot/bench',
    'x-github-event': 'push',
    'x-hub-signature-256': signature,
  };
  return JSON.stringify(functionUrlEvent('/hooks/github', headers, body));
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'triggler-relay-bench-'));
  let ssm: LocalSsm | undefined;
  let minimal: MinimalReceiver | undefined;
  try {
    const bundle = join(dir, 'relay.js');
    await bundleLambda('relay', bundle);
    const content = readFileSync(bundle);
    const [coldProbe, warmProbe] = [probePath('relay-cold.js'), probePath('relay-warm.js')];

    ssm = await startLocalSsm({ region: 'eu-west-1' });
    ssm.put(PARAMETER, SECRET);
    minimal = await startMinimalReceiver();
    const env: NodeJS.ProcessEnv = {
      ...localSsmEnvironment(ssm.url, dir, 'eu-west-1'),
      TRIGGLER_LOG_LEVEL: 'info',
      TRIGGLER_RELAY: JSON.stringify({
        receiverUrl: minimal.url,
        timeoutMs: 8000,
        bodyLimitBytes: 5 * 1024 * 1024,
        tokenTtlSeconds: 60,
        tokenGraceSeconds: 900,
        routes: [{ provider: 'github', repository: 'Codertocat/Hello-World', tokenParameter: PARAMETER }],
      }),
      BENCH_PUSH: githubPush(SECRET),
      BENCH_FORGED: githubPush(randomBytes(24).toString('hex')),
      BENCH_BARE_URL: `${minimal.url}/bare`,
    };

    type Cold = { initMs: number; initCpuMs: number; firstMs: number };
    const colds: Cold[] = [];
    for (let i = 0; i < SPAWNS; i++) colds.push((await runProbe(coldProbe, [bundle], env)) as Cold);
    const cold = (field: keyof Cold) =>
      percentile(
        colds.map((c) => c[field]),
        50,
      );
    const warm = (await runProbe(warmProbe, [bundle, String(DELIVERIES)], env)) as {
      forwardedMs: number[];
      forgedMs: number[];
      fetchMs: number[];
      rssMiB: number;
    };

    const p50 = percentile(warm.forwardedMs, 50);
    const fetchP50 = percentile(warm.fetchMs, 50);
    const lines = [
      '',
      '## Webhook relay',
      '',
      `Bundle: \`lambda/relay.ts\` through esbuild ${require('esbuild/package.json').version} as \`BundledNodeFunction\` bundles it (CJS, target node24, minified, keep-names, \`@aws-sdk/client-ssm\` bundled from its ES build). Measured on Node.js ${process.version} (Lambda runs Node.js 24), ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${loadAtStart.toFixed(1)} when the bench started. Logs on (one JSON line per forwarded delivery; refusals a few per second, the rest counted), to /dev/null. SSM is the local SSM endpoint, token cached after the first read. Deliveries: GitHub's push example (\`@octokit/webhooks-examples\` push[4], ${Buffer.byteLength(JSON.parse(env.BENCH_PUSH!).body)} bytes), HMAC-signed.`,
      '',
      '| figure | value | how |',
      '| --- | --- | --- |',
      `| bundle size (what the stack deploys) | ${kib(content.length)} (${kib(gzipSync(content, { level: 9 }).length)} gzip) | esbuild output file |`,
      `| cold module init | ${ms(cold('initMs'))} wall (${verdict(cold('initMs'), TARGET_INIT_MS)}), ${ms(cold('initCpuMs'))} CPU | \`require()\` of the bundle in a fresh \`node\`, median of ${SPAWNS} |`,
      `| first invocation after a cold init | ${ms(cold('firstMs'))} | SSM client set-up, first GetParameter, verify, first connection, one forwarded push; median of ${SPAWNS} |`,
      `| warm handler, one verified push forwarded, p50 / p99 | ${ms(p50)} / ${ms(percentile(warm.forwardedMs, 99))} (p50 ${verdict(p50, TARGET_P50_MS)}) | ${DELIVERIES} invocations after 50 warm-up, minimal 202 receiver |`,
      `| bare \`fetch\` POST of the same body to the same receiver, p50 / p99 | ${ms(fetchP50)} / ${ms(percentile(warm.fetchMs, 99))} | the network floor inside the figure above |`,
      `| relay overhead per forwarded delivery, p50 | ${ms(p50 - fetchP50)} (${verdict(p50 - fetchP50, TARGET_P50_MS)}) | warm handler p50 minus bare fetch p50 |`,
      `| warm handler, one forged push refused (401), p50 / p99 | ${ms(percentile(warm.forgedMs, 50))} / ${ms(percentile(warm.forgedMs, 99))} | ${DELIVERIES} invocations: the work one request of a flood costs (Lambda bills whole milliseconds) |`,
      `| RSS after the warm runs | ${warm.rssMiB.toFixed(0)} MiB | \`process.memoryUsage().rss\` |`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    await minimal?.close();
    await ssm?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runBench('relay', main);
