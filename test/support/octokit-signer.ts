/**
 * Signs bodies with `@octokit/webhooks-methods`, GitHub's own signing code, as an independent
 * reference. The package is ESM-only and Jest here loads CommonJS, so it runs in a real Node
 * child process (one per batch).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const PROJECT_ROOT = resolve(__dirname, '../..');

const SIGN_SCRIPT = `
import { sign } from '@octokit/webhooks-methods';
let input = '';
for await (const chunk of process.stdin) input += chunk;
const { secret, bodies } = JSON.parse(input);
process.stdout.write(JSON.stringify(await Promise.all(bodies.map((body) => sign(secret, body)))));
`;

/** `sha256=<hex>` for each body, as GitHub puts in X-Hub-Signature-256. */
export function signWithOctokit(secret: string, bodies: string[]): Promise<string[]> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(process.execPath, ['--input-type=module', '-e', SIGN_SCRIPT], { cwd: PROJECT_ROOT }, (error, stdout) => {
      if (error) reject(error);
      else resolvePromise(JSON.parse(stdout) as string[]);
    });
    child.stdin!.end(JSON.stringify({ secret, bodies }));
  });
}
