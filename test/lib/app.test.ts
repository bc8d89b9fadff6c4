/**
 * bin/app.ts as the CDK CLI runs it (a child process with the CLI's environment), with no AWS
 * credentials: `-c config=PATH` picks the config, a bad one exits non-zero naming the field before
 * anything is synthesized; and cdk.json keeps the CLI offline and quiet.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NO_BUNDLING, REPOSITORY_ROOT, cliContext } from '../support/stack-fixture';

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-app-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** No credentials anywhere the SDK or the CLI would look. */
function offlineEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: path.join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-aws-credentials'),
    ...extra,
  };
}

/** Runs the app the way `cdk synth` does: context in CDK_CONTEXT_JSON, output in CDK_OUTDIR. */
function runApp(context: Record<string, unknown>, outdir: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(REPOSITORY_ROOT, 'bin', 'app.ts')], {
    cwd: REPOSITORY_ROOT,
    encoding: 'utf8',
    timeout: 90_000,
    env: offlineEnvironment({
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({ ...cliContext(), ...NO_BUNDLING, ...context }),
      ...env,
    }),
  });
}

test('-c config=PATH synthesizes the stack that config names, offline', () => {
  const config = path.join(dir, 'other.json');
  fs.writeFileSync(
    config,
    JSON.stringify({ stackName: 'OtherTriggler', triggers: [{ repository: 'tools', branch: 'main', command: 'make' }] }),
  );
  const outdir = path.join(dir, 'out-good');
  const result = runApp({ config }, outdir);
  expect(result.stderr).not.toMatch(/error/i);
  expect(result.status).toBe(0);
  const template = JSON.parse(fs.readFileSync(path.join(outdir, 'OtherTriggler.template.json'), 'utf8')) as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const merge = Object.values(template.Resources).find((r) => r.Type === 'Custom::TrigglerRepositoryTriggers');
  expect(merge?.Properties.RepositoryName).toBe('tools');
}, 100_000);

test('the region the CDK CLI deploys to is checked before anything is synthesized', () => {
  const config = path.join(dir, 'regional.json');
  fs.writeFileSync(config, JSON.stringify({ triggers: [{ repository: 'tools', branch: 'main', command: 'make' }] }));
  const outdir = path.join(dir, 'out-region');
  const refused = runApp({ config }, outdir, { CDK_DEFAULT_REGION: 'ca-west-1' });
  expect(refused.status).toBe(1);
  expect(refused.stderr).toContain('triggler: triggers[0].source: CodeCommit is not offered in ca-west-1');
  expect(refused.stderr).toContain('(the region comes from your AWS profile or AWS_REGION)');
  expect(fs.existsSync(path.join(outdir, 'GitTriggler.template.json'))).toBe(false);
  // A region with CodeCommit synthesizes as without one (the stack stays environment-agnostic).
  const accepted = runApp({ config }, outdir, { CDK_DEFAULT_REGION: 'eu-west-1' });
  expect(accepted.status).toBe(0);
  expect(fs.existsSync(path.join(outdir, 'GitTriggler.template.json'))).toBe(true);
}, 200_000);

test('a bad config exits non-zero, names each bad field, and synthesizes nothing', () => {
  const config = path.join(dir, 'bad.json');
  fs.writeFileSync(config, JSON.stringify({ triggers: [{ repository: 'tools', branch: 'main', command: '' }], receiver: { port: 0 } }));
  const outdir = path.join(dir, 'out-bad');
  const result = runApp({ config }, outdir);
  expect(result.status).toBe(1);
  expect(result.stderr).toContain(`triggler: ${config} is not valid:`);
  expect(result.stderr).toContain('triggers[0].command: must not be empty');
  expect(result.stderr).toContain('receiver.port:');
  expect(fs.existsSync(path.join(outdir, 'GitTriggler.template.json'))).toBe(false);
}, 100_000);

test('`npx cdk synth` itself fails on a bad config, with the field named', () => {
  const config = path.join(dir, 'bad-for-cli.json');
  fs.writeFileSync(config, JSON.stringify({ triggers: [{ repository: 'tools', branch: 'feat..x', command: 'make' }] }));
  const result = spawnSync('npx', ['cdk', 'synth', '-q', '-c', `config=${config}`, '--output', path.join(dir, 'cli-out')], {
    cwd: REPOSITORY_ROOT,
    encoding: 'utf8',
    timeout: 90_000,
    env: offlineEnvironment({}),
  });
  expect(result.status).not.toBe(0);
  expect(result.stdout + result.stderr).toContain('triggers[0].branch: a CodeCommit branch name must not contain ".."');
}, 100_000);

test('cdk.json runs the app through tsx, with notices, telemetry, version reporting and lookups off', () => {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(REPOSITORY_ROOT, 'cdk.json'), 'utf8')) as Record<string, unknown> & {
    context: Record<string, unknown>;
  };
  expect(cdkJson).toMatchObject({ app: 'npx tsx bin/app.ts', notices: false, versionReporting: false, lookups: false });
  expect(cdkJson.context['cli-telemetry']).toBe(false);
});
