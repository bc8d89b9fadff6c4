/**
 * The real `triggler fleet` CLI (bin/triggler.js as a child process, through ./cli) with its AWS
 * calls answered by aws-sdk-client-mock in that process (./fleet-cli-aws-preload): the test says
 * what AWS answers and reads back every call the CLI made.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCli, type CliResult } from './cli';

const PRELOAD = join(__dirname, 'fleet-cli-aws-preload.ts');

/** One answer: to `command` (ListExecutions, ...) of `client`, when its input includes `input`. */
export interface AwsAnswer {
  client: 'sfn' | 'ssm';
  command: string;
  input?: Record<string, unknown>;
  output?: unknown;
  error?: { name: string; message: string };
}

export interface RecordedAwsCall {
  client: 'sfn' | 'ssm';
  command: string;
  input: Record<string, unknown>;
}

export async function runFleetCli(
  args: string[],
  answers: AwsAnswer[],
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult & { calls: RecordedAwsCall[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'triggler-fleet-cli-'));
  try {
    const answersFile = join(dir, 'answers.json');
    const callsFile = join(dir, 'calls.json');
    writeFileSync(answersFile, JSON.stringify(answers));
    const result = await runCli(['fleet', ...args], {
      program: [process.execPath, '--require', 'tsx/cjs', '--require', PRELOAD, CLI],
      env: {
        PATH: process.env.PATH,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        FLEET_TEST_AWS_ANSWERS: answersFile,
        FLEET_TEST_AWS_CALLS: callsFile,
        ...env,
      },
    });
    let calls: RecordedAwsCall[] = [];
    try {
      calls = JSON.parse(readFileSync(callsFile, 'utf8')) as RecordedAwsCall[];
    } catch {
      // The process ended before it wrote them (it did not start): no calls.
    }
    return { ...result, calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
