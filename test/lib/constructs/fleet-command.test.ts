/**
 * The fleet's Command document: its props' checks, and its script run for real under /bin/sh with
 * the real CLI on PATH (through a wrapper like the host's /usr/local/bin/triggler), the way the
 * agent runs it: parameters as SSM_<name> variables, or written into the text by an older agent.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { ConstructPropsError } from '../../../lib/construct-props';
import {
  FleetCommand,
  fleetCommandPropProblems,
  fleetStepScript,
  NO_FLEET_COMMIT,
  associationNameOf,
} from '../../../lib/constructs/fleet-command';
import { CLI } from '../../support/cli';

const fleetTag = { key: 'TrigglerFleet', value: 'Test' };
const props = { triggers: [{ repository: 'app', branch: 'main' }], fleetTag, commitParameterPrefix: '/test/fleet' };

let scratch: string;
let withCli: string;
let withoutCli: string;

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-fleet-command-'));
  withCli = path.join(scratch, 'bin');
  withoutCli = path.join(scratch, 'empty');
  fs.mkdirSync(withCli);
  fs.mkdirSync(withoutCli);
  // What the host installs as /usr/local/bin/triggler: a wrapper that runs the bundled CLI.
  fs.writeFileSync(path.join(withCli, 'triggler'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, {
    mode: 0o755,
  });
});

afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the document's script as the agent would, with `parameters` as SSM_<name> variables (or, with `asText`, written into the script). */
function runScript(
  parameters: Record<string, string>,
  options: { cli: boolean; joinWaitSeconds?: number; asText?: boolean },
): Promise<ScriptRun> {
  let script = fleetStepScript(options.joinWaitSeconds ?? 0).join('\n');
  const env: NodeJS.ProcessEnv = { PATH: `${options.cli ? withCli : withoutCli}:/usr/bin:/bin`, HOME: scratch };
  for (const [name, value] of Object.entries(parameters)) {
    if (options.asText) script = script.split(`{{${name}}}`).join(value);
    else env[`SSM_${name}`] = value;
  }
  const file = path.join(scratch, `script-${Math.random().toString(36).slice(2)}.sh`);
  fs.writeFileSync(file, script);
  return new Promise((resolve) => {
    execFile('/bin/sh', [file], { env, cwd: scratch, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('the fleet step script', () => {
  const base = { repository: 'app', branch: 'main', config: '/nonexistent/receiver.json' };

  test('converge of a trigger no rollout has reached yet deploys nothing, and needs no CLI', async () => {
    const run = await runScript({ ...base, step: 'converge', commit: NO_FLEET_COMMIT }, { cli: false });
    expect(run).toMatchObject({ code: 0, stdout: 'no rollout of this trigger has finished yet: nothing to converge\n' });
  });

  test('an older agent writes the values into the text: the same script works', async () => {
    const run = await runScript({ ...base, step: 'converge', commit: NO_FLEET_COMMIT }, { cli: false, asText: true });
    expect(run).toMatchObject({ code: 0, stdout: 'no rollout of this trigger has finished yet: nothing to converge\n' });
  });

  test('a value with shell syntax reaches triggler fleet-step as one argument, which refuses it; nothing runs', async () => {
    const marker = path.join(scratch, 'ran');
    const run = await runScript({ ...base, step: 'prepare', branch: `main; touch ${marker}`, commit: 'a'.repeat(40) }, { cli: true });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--branch must be a branch name');
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('a rollback without a commit passes no --commit (an empty one would be refused with exit 2)', async () => {
    const run = await runScript({ ...base, step: 'rollback', commit: '' }, { cli: true });
    expect(run.code).toBe(1);
    const line = JSON.parse(run.stdout.trim()) as { status: string; commit: string | null; error: string };
    expect(line).toMatchObject({ status: 'error', commit: null });
    expect(line.error).toContain('/nonexistent/receiver.json');
  });

  test('converge on a host whose receiver cannot be asked gives up at its deadline with the last line', async () => {
    const run = await runScript({ ...base, step: 'converge', commit: 'b'.repeat(40) }, { cli: true, joinWaitSeconds: 0 });
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout.trim())).toMatchObject({ status: 'error', commit: 'b'.repeat(40) });
  });

  test('converge on a host still installing the CLI says so at its deadline', async () => {
    const run = await runScript({ ...base, step: 'converge', commit: 'b'.repeat(40) }, { cli: false, joinWaitSeconds: 0 });
    expect(run).toMatchObject({ code: 1, stdout: 'triggler is not installed yet\n' });
  });
});

describe('FleetCommand props', () => {
  test('are checked together, each named', () => {
    expect(
      fleetCommandPropProblems({
        ...props,
        triggers: [{ repository: '-bad', branch: 'a..b' }],
        stepTimeout: Duration.days(3),
      }).map((problem) => problem.prop),
    ).toEqual(['triggers[0].repository', 'triggers[0].branch', 'stepTimeout']);
    expect(fleetCommandPropProblems({ ...props, triggers: [] }).map((problem) => problem.prop)).toEqual(['triggers']);
    expect(fleetCommandPropProblems(props)).toEqual([]);
  });

  test('a construct with bad props throws them all at once', () => {
    const stack = new Stack(new App({ outdir: fs.mkdtempSync(path.join(scratch, 'app-')) }), 'Test');
    expect(() => new FleetCommand(stack, 'Fleet', { ...props, triggers: [] })).toThrow(ConstructPropsError);
  });

  test("association names stay within State Manager's 128 characters and apart for names that read alike", () => {
    const long = associationNameOf('S'.repeat(87), 'r'.repeat(100), 'b'.repeat(200));
    expect(long).toMatch(/^[A-Za-z0-9_.-]{3,128}$/);
    expect(associationNameOf('S', 'app', 'release/v2')).not.toBe(associationNameOf('S', 'app', 'release-v2'));
  });
});
