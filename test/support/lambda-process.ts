/**
 * A bundled Lambda handler in its own `node` process, as Lambda runs it: the bundle's AWS SDK loads
 * parts of itself with dynamic `import()`, which Jest's module sandbox cannot do. Invocations go
 * over the IPC channel, one at a time, each with the environment changes it names.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { stopCli } from './cli';

const RUNNER = join(__dirname, 'children', 'lambda-runner.js');

export interface LambdaProcess {
  invoke<T>(event: unknown, env?: Record<string, string>): Promise<T>;
  close(): Promise<void>;
}

export async function startLambdaProcess(bundle: string, env: NodeJS.ProcessEnv): Promise<LambdaProcess> {
  const child: ChildProcess = fork(RUNNER, [bundle], { env, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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
