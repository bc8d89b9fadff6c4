/**
 * A bundled Lambda handler in its own `node` process, as Lambda runs it: the bundle's AWS SDK loads
 * parts of itself with dynamic `import()`, which Jest's module sandbox cannot do. Invocations go
 * over the IPC channel, one at a time, each with the environment changes it names.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopCli } from './cli';

const RUNNER = `
const { handler } = require(process.argv[2]);
process.on('message', ({ id, event, env }) => {
  Object.assign(process.env, env);
  const context = { awsRequestId: 'local-' + id, getRemainingTimeInMillis: () => Number(process.env.LAMBDA_REMAINING_MS || 10000) };
  handler(event, context).then(
    (result) => process.send({ id, result }),
    (error) => process.send({ id, error: String(error && error.message) }),
  );
});
process.send({ ready: true });
`;

/**
 * The environment of a Lambda process whose SDK talks to the local SSM endpoint and to nothing of
 * this machine's own AWS set-up (no profile, no credentials file, no instance metadata).
 */
export function localSsmEnvironment(ssmUrl: string, dir: string, region: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    // The SDK warns that this machine's Node.js nears its end of support; Lambda runs Node.js 24.
    NODE_NO_WARNINGS: '1',
    AWS_ENDPOINT_URL_SSM: ssmUrl,
    AWS_ACCESS_KEY_ID: 'AKIDLOCALLAMBDA',
    AWS_SECRET_ACCESS_KEY: 'local-lambda-secret',
    AWS_REGION: region,
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

export interface LambdaProcess {
  invoke<T>(event: unknown, env?: Record<string, string>): Promise<T>;
  close(): Promise<void>;
}

export async function startLambdaProcess(bundle: string, dir: string, env: NodeJS.ProcessEnv): Promise<LambdaProcess> {
  const runner = join(dir, 'lambda-runner.js');
  writeFileSync(runner, RUNNER);
  const child: ChildProcess = fork(runner, [bundle], { env, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let next = 0;
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the Lambda process exited with ${code}`)));
    child.on('message', (message: { ready?: boolean; id?: number; result?: unknown; error?: string }) => {
      if (message.ready) return resolve();
      const pending = waiting.get(message.id!);
      waiting.delete(message.id!);
      if (message.error !== undefined) pending?.reject(new Error(message.error));
      else pending?.resolve(message.result);
    });
  });
  await ready;
  return {
    invoke: <T>(event: unknown, invocationEnv: Record<string, string> = {}) =>
      new Promise<T>((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, event, env: invocationEnv });
      }),
    close: () => stopCli(child),
  };
}
