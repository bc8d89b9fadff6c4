/**
 * `npm run demo`: the whole local round trip on embedded defaults, no AWS account needed.
 * Starts a real receiver (`triggler serve`) on an example config in a temporary folder, sends it
 * deliveries of both schemes, shows the runs with their status and output, stops it, exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { CodeCommitTriggerEvent, Context } from 'aws-lambda';
import { handler as codeCommitSender } from '../lambda/sender';
import { request } from 'undici';
import { startLocalSsm } from '../scripts/local-ssm';
import { buildDeliveryRequest, deliveryUrl, type DeliveryRequest } from '../protocol';
import type { RunRecord } from '../receiver';

const root = resolve(__dirname, '..');
const CODECOMMIT_COMMIT = 'e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5';
const cli = join(root, 'bin', 'triggler.js');

function step(title: string): void {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
}

async function send(url: string, delivery: DeliveryRequest, label: string): Promise<Record<string, unknown>> {
  const response = await request(deliveryUrl(url, delivery.path), {
    method: delivery.method,
    headers: delivery.headers,
    ...(delivery.body !== undefined ? { body: delivery.body } : {}),
  });
  const body = (await response.body.json()) as Record<string, unknown>;
  const run = body.run as { id?: string } | undefined;
  process.stdout.write(
    `  ${label.padEnd(44)} -> ${response.statusCode} ${String(body.status ?? body.error)}${run?.id ? ` (run ${run.id})` : ''}\n`,
  );
  return body;
}

/** Waits until every delivery has run: nothing pending or running, and the last push's run is done. */
async function waitForRuns(adminUrl: string, lastCommit: string): Promise<RunRecord[]> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const response = await request(`${adminUrl}/runs?limit=100`);
    const { runs } = (await response.body.json()) as { runs: RunRecord[] };
    const settled = runs.every((r) => r.status !== 'pending' && r.status !== 'running');
    if (settled && runs.some((r) => r.commit === lastCommit)) return runs;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('runs did not finish in 30 s');
}

async function runCli(args: string[]): Promise<void> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`triggler ${args.join(' ')} exited ${code}`);
}

/**
 * What AWS does on a push, locally: the sender's token sits in SSM (here a local endpoint that
 * speaks the SSM API), and CodeCommit invokes the handler with a trigger event (here the sample
 * from the AWS documentation, pointed at my-app, with a tag and a deleted branch beside the push).
 */
async function sendCodeCommitPush(receiverUrl: string, token: string): Promise<string> {
  const ssm = await startLocalSsm();
  const parameter = '/git-triggler/tokens/my-app/main';
  ssm.put(parameter, token);
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_SSM: ssm.url,
    AWS_REGION: 'us-east-2',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    // The demo runs on Node 20; the SDK's notice about its future Node 22 minimum is not news here.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    TRIGGLER_LOG_LEVEL: 'warn',
    TRIGGLER_ROUTES: JSON.stringify([
      { repository: 'my-app', branch: 'main', url: receiverUrl, tokenParameter: parameter, scheme: 'standard' },
    ]),
  });
  try {
    const sample = JSON.parse(
      readFileSync(join(root, 'test', 'support', 'fixtures', 'codecommit-event.json'), 'utf8'),
    ) as CodeCommitTriggerEvent;
    const record = sample.Records[0]!;
    const event = {
      Records: [
        {
          ...record,
          eventSourceARN: record.eventSourceARN.replace(/[^:]+$/, 'my-app'),
          codecommit: {
            references: [
              { commit: CODECOMMIT_COMMIT, ref: 'refs/heads/main' },
              { commit: CODECOMMIT_COMMIT, ref: 'refs/tags/v1.0.0' },
              { commit: '0000000000000000000000000000000000000000', ref: 'refs/heads/old-feature', deleted: true },
            ],
          },
        },
      ],
    };
    const context = { awsRequestId: 'demo', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;
    const report = await codeCommitSender(event as CodeCommitTriggerEvent, context);
    const lines = report.deliveries.map(
      (d) => `  delivered ${d.repository} ${d.branch} at ${d.commit.slice(0, 7)} -> ${d.status} (${d.ms} ms)`,
    );
    for (const s of report.skipped) lines.push(`  skipped ${s.ref} (${s.reason})`);
    lines.push(`  the handler read the token from SSM ${ssm.calls.GetParameter} time(s)`);
    return lines.join('\n');
  } finally {
    await ssm.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'triggler-demo-'));
  let receiver: ChildProcess | undefined;
  try {
    step(`An example config in ${dir}`);
    const tokens = {
      'my-app/main': `whsec_${randomBytes(32).toString('base64')}`,
      'legacy-site/master': randomBytes(24).toString('hex'),
    };
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(tokens, null, 2), { mode: 0o600 });
    const config = {
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      stateDir: './state',
      tokens: { file: './tokens.json' },
      triggers: [
        {
          repository: 'my-app',
          branch: 'main',
          command:
            'echo "deploying $TRIGGLER_REPOSITORY@$TRIGGLER_BRANCH at ${TRIGGLER_COMMIT:-?} (run $TRIGGLER_RUN_ID)"; sleep 1; echo done',
          timeoutSeconds: 60,
        },
        {
          repository: 'legacy-site',
          branch: 'master',
          command: ['sh', '-c', 'echo "rebuilding $TRIGGLER_REPOSITORY (scheme: $TRIGGLER_SCHEME)"'],
        },
      ],
    };
    writeFileSync(join(dir, 'receiver.json'), JSON.stringify(config, null, 2));
    process.stdout.write(`  receiver.json: ${config.triggers.length} triggers; tokens.json (mode 0600) holds their tokens\n`);

    step('Starting the receiver: triggler serve --config receiver.json');
    receiver = spawn(process.execPath, [cli, 'serve', '--config', join(dir, 'receiver.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: receiver.stdout! });
    const logLines: string[] = [];
    const listening = new Promise<{ url: string; adminUrl: string }>((resolveListening, reject) => {
      receiver!.once('exit', (code) => reject(new Error(`the receiver exited (${code}) before listening`)));
      lines.on('line', (line) => {
        logLines.push(line);
        const entry = JSON.parse(line) as { msg?: string; url?: string; adminUrl?: string };
        if (entry.msg === 'receiver listening' && entry.url && entry.adminUrl)
          resolveListening({ url: entry.url, adminUrl: entry.adminUrl });
      });
    });
    const { url, adminUrl } = await listening;
    process.stdout.write(`  deliveries: ${url}   admin: ${adminUrl}\n`);

    step('Standard Webhooks deliveries (POST /hooks/<repo>/<branch>)');
    const now = () => Math.floor(Date.now() / 1000);
    const push = (id: string, commit: string) =>
      buildDeliveryRequest({
        scheme: 'standard',
        token: tokens['my-app/main'],
        id,
        timestamp: now(),
        data: { repository: 'my-app', branch: 'main', ref: 'refs/heads/main', commit, source: 'demo' },
      });
    await send(url, push('msg_demo_1', 'a1a1a1a'), 'push a1a1a1a');
    await new Promise((r) => setTimeout(r, 200));
    for (const commit of ['b2b2b2b', 'c3c3c3c', 'd4d4d4d'])
      await send(url, push(`msg_demo_${commit}`, commit), `push ${commit} while the first run runs`);
    await send(url, push('msg_demo_1', 'a1a1a1a'), 'the first push again (a sender retry)');
    await send(
      url,
      buildDeliveryRequest({
        scheme: 'standard',
        token: 'whsec_' + randomBytes(32).toString('base64'),
        id: 'msg_forged',
        timestamp: now(),
        data: { repository: 'my-app', branch: 'main', ref: 'refs/heads/main', commit: 'evil', source: 'demo' },
      }),
      'a push signed with the wrong token',
    );

    step('Seed-compatible delivery (GET /<repo>-<branch>, what the original sender sends)');
    await send(
      url,
      buildDeliveryRequest({
        scheme: 'seed',
        token: tokens['legacy-site/master'],
        repository: 'legacy-site',
        branch: 'master',
        timestamp: now(),
      }),
      'seed push to legacy-site master',
    );

    step('A CodeCommit push through the real sender Lambda handler (token from a local SSM endpoint)');
    const pushed = await sendCodeCommitPush(url, tokens['my-app/main']);
    process.stdout.write(`${pushed}\n`);

    step('Runs (triggler runs)');
    const runs = await waitForRuns(adminUrl, CODECOMMIT_COMMIT);
    await runCli(['runs', '--admin', adminUrl]);
    for (const run of [...runs].reverse()) {
      const log = await request(`${adminUrl}/runs/${run.id}/log`);
      process.stdout.write(`\n  output of ${run.id} (${run.repository} ${run.branch}, ${run.status}, ${run.deliveries} deliveries):\n`);
      process.stdout.write(`${(await log.body.text()).replace(/\n$/, '').replace(/^/gm, '    | ')}\n`);
    }

    step('Stopping the receiver (SIGTERM)');
    const exited = once(receiver, 'exit');
    receiver.kill('SIGTERM');
    const [code] = (await exited) as [number];
    receiver = undefined;
    const rejected = logLines.filter((l) => l.includes('"delivery rejected"')).length;
    process.stdout.write(`  receiver exited ${code}; it logged ${logLines.length} JSON lines, ${rejected} of them rejections\n`);
    if (code !== 0) throw new Error(`the receiver exited ${code}`);
    const myApp = runs.filter((r) => r.repository === 'my-app');
    const delivered = myApp.reduce((n, r) => n + r.deliveries, 0);
    if (!runs.every((r) => r.status === 'succeeded') || delivered !== 5 || myApp.length > 3) {
      throw new Error(`unexpected runs: ${runs.map((r) => `${r.repository} ${r.status} ${r.deliveries}`).join(', ')}`);
    }
    step(
      `Demo finished: 5 pushes to my-app ran as ${myApp.length} runs (bursts coalesce), the retry ran nothing, the forgery was refused.`,
    );
  } finally {
    receiver?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
