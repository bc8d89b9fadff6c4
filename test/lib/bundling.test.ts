/**
 * The example stack synthesized with bundling on (local esbuild, no Docker): the bundles the stack
 * ships really load and run, carry none of the CDK, and the template still holds no token.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { buildDeliveryRequest } from '../../protocol';
import { newToken } from '../../protocol/token';
import { DEFERRED_PACKAGES, deferredFileName } from '../../lib/host-files/host-files';
import { startLocalSsm } from '../../scripts/local-ssm';
import { configOf, exampleConfigInput, findTokenLikeValues, trigglerApp, type Template } from '../support/stack-fixture';
import { freePort } from '../support/cli';
import { waitFor } from '../support/wait-for';

let outdir: string;
let template: Template;
let assetDirs: { receiver: string; sender: string; tokenProvider: string; triggersProvider: string };

function assetDirOfFunction(descriptionStart: string): string {
  const fn = Object.values(template.Resources).find(
    (r) =>
      r.Type === 'AWS::Lambda::Function' && String((r.Properties as { Description?: string }).Description).startsWith(descriptionStart),
  );
  const key = (fn!.Properties as { Code: { S3Key: string } }).Code.S3Key;
  return path.join(outdir, `asset.${key.replace(/\.zip$/, '')}`);
}

beforeAll(() => {
  outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-bundling-'));
  const { app } = trigglerApp(configOf(exampleConfigInput()), { bundling: true, outdir });
  const assembly = app.synth();
  template = assembly.getStackByName('GitTriggler').template as Template;
  const instance = Object.values(template.Resources).find((r) => r.Type === 'AWS::EC2::Instance')!;
  const init = (instance.Metadata as Record<string, { receiver: { sources: Record<string, { 'Fn::Sub': string }> } }>)[
    'AWS::CloudFormation::Init'
  ]!;
  const receiverKey = /([0-9a-f]{64})\.zip$/.exec(init.receiver.sources['/opt/triggler']!['Fn::Sub'])![1]!;
  assetDirs = {
    receiver: path.join(outdir, `asset.${receiverKey}`),
    sender: assetDirOfFunction('git-triggler sender'),
    tokenProvider: assetDirOfFunction('git-triggler token generator'),
    triggersProvider: assetDirOfFunction('git-triggler CodeCommit trigger merge'),
  };
}, 120_000);

afterAll(() => {
  fs.rmSync(outdir, { recursive: true, force: true });
});

function runNode(args: string[], cwd: string) {
  return spawnSync(process.execPath, args, {
    cwd,
    encoding: 'utf8',
    timeout: 20_000,
    env: { PATH: process.env.PATH, AWS_REGION: 'eu-west-1' },
  });
}

test('the receiver asset is receiver.js, which runs its main (a missing config is exit 2, naming the file), and the CLI and the command runner beside it', () => {
  expect(fs.readdirSync(assetDirs.receiver).sort()).toEqual([
    'command-runner.js',
    'deferred',
    'receiver-bundle.js',
    'receiver.js',
    'triggler.js',
  ]);
  expect(fs.readdirSync(path.join(assetDirs.receiver, 'deferred')).sort()).toEqual(DEFERRED_PACKAGES.map(deferredFileName).sort());
  const help = runNode([path.join(assetDirs.receiver, 'triggler.js'), 'releases', '--help'], outdir);
  expect(help.status).toBe(0);
  expect(help.stdout).toContain('Usage: triggler releases');
  const missing = path.join(outdir, 'no-such-receiver.json');
  const result = runNode([path.join(assetDirs.receiver, 'receiver.js'), '--config', missing], outdir);
  expect(result.status).toBe(2);
  expect(result.stderr).toContain(`cannot read config ${missing}: it does not exist`);
});

test('the bundled receiver judges its config with the same schema: a bad field is named', () => {
  const config = path.join(outdir, 'bad-receiver.json');
  fs.writeFileSync(
    config,
    JSON.stringify({ tokens: { ssm: { prefix: '/git-triggler/tokens' } }, triggers: [{ repository: 'app', branch: 'main', command: '' }] }),
  );
  const result = runNode([path.join(assetDirs.receiver, 'receiver.js'), '--config', config], outdir);
  expect(result.status).toBe(2);
  expect(result.stderr).toContain('triggers[0].command: must not be empty');
});

test.each([
  ['sender', () => assetDirs.sender],
  ['token provider', () => assetDirs.tokenProvider],
  ['repository-trigger provider', () => assetDirs.triggersProvider],
])('the %s bundle is one index.js that loads in plain node and exports its handler', (_name, dir) => {
  expect(fs.readdirSync(dir()).filter((f) => !f.endsWith('.map'))).toEqual(['index.js']);
  // This machine's Node.js 20 draws an SDK deprecation warning; Lambda runs Node.js 24.
  const result = runNode(['--no-warnings', path.join(__dirname, '..', 'support', 'children', 'handler-type.js'), 'index.js'], dir());
  expect(result.stderr).toBe('');
  expect(result.stdout).toBe('function');
});

test('no bundle carries the CDK (runtime code never depends on it)', () => {
  for (const dir of Object.values(assetDirs)) {
    const files = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((file) => fs.statSync(path.join(dir, file)).isFile());
    for (const file of files) {
      expect({
        file: path.join(path.basename(dir), file),
        cdk: fs.readFileSync(path.join(dir, file), 'utf8').includes('aws-cdk-lib'),
      }).toEqual({
        file: path.join(path.basename(dir), file),
        cdk: false,
      });
    }
  }
});

test('the bundled template holds no token-like value either', () => {
  expect(findTokenLikeValues(template, 'GitTriggler')).toEqual([]);
});

/** The host's receiver started on `config`; resolves with its listener's URL once it listens. */
function startHostReceiver(config: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [path.join(assetDirs.receiver, 'receiver.js'), '--config', config], {
    cwd: outdir,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { PATH: process.env.PATH, ...env },
  });
  const listening = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'receiver listening' && entry.url) resolve(entry.url);
    });
  });
  return { child, listening };
}

test('the host receiver serves with none of its deferred packages at hand, and reads prom-client from them at the first scrape', async () => {
  const config = path.join(outdir, 'local-receiver.json');
  const adminPort = await freePort();
  fs.writeFileSync(
    config,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: adminPort },
      stateDir: path.join(outdir, 'local-state'),
      triggers: [{ repository: 'app', branch: 'main', token: 'a-token-of-some-length-0123456789', command: 'true' }],
    }),
    { mode: 0o600 },
  );
  const deferred = path.join(assetDirs.receiver, 'deferred');
  const aside = path.join(outdir, 'deferred-aside');
  fs.renameSync(deferred, aside);
  let receiver: ReturnType<typeof startHostReceiver> | undefined;
  try {
    receiver = startHostReceiver(config);
    const url = await receiver.listening;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  } finally {
    fs.renameSync(aside, deferred);
  }
  try {
    const metrics = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^process_cpu_user_seconds_total /m);
  } finally {
    const exited = once(receiver.child, 'exit');
    receiver.child.kill('SIGTERM');
    await exited;
  }
});

test('the bundled receiver, as the host runs it, reads its token from SSM and runs a delivery', async () => {
  const ssm = await startLocalSsm();
  const token = newToken();
  ssm.put('/git-triggler/tokens/app/main', token);
  const config = path.join(outdir, 'ssm-receiver.json');
  const marker = path.join(outdir, 'ran-from-bundle');
  fs.writeFileSync(
    config,
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      admin: false,
      stateDir: path.join(outdir, 'bundle-state'),
      tokens: { ssm: { prefix: '/git-triggler/tokens' } },
      triggers: [{ repository: 'app', branch: 'main', command: ['sh', '-c', `echo "$TRIGGLER_COMMIT" > ${marker}`] }],
    }),
  );
  const { child, listening } = startHostReceiver(config, {
    AWS_ENDPOINT_URL_SSM: ssm.url,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  try {
    const url = await listening;
    const delivery = buildDeliveryRequest({
      scheme: 'standard',
      token,
      id: 'msg_bundle',
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: 'b0b0b0b', source: 'test' },
    });
    const response = await request(url + delivery.path, { method: 'POST', headers: delivery.headers, body: delivery.body! });
    expect(response.statusCode).toBe(202);
    await response.body.dump();
    // The shell creates the file before it writes the line: wait for the whole line.
    await waitFor('the run to write its marker', () => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').endsWith('\n'));
    expect(fs.readFileSync(marker, 'utf8').trim()).toBe('b0b0b0b');
    expect(ssm.calls.GetParameter).toBe(1);
  } finally {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
    await ssm.close();
  }
});
