/**
 * Signs bodies with `@octokit/webhooks-methods`, GitHub's own signing code, as an independent
 * reference. The package is ESM-only and Jest here loads CommonJS, so it runs in a real Node
 * child process (one per batch).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const SIGNER = join(__dirname, 'children', 'octokit-sign.mjs');

/** `sha256=<hex>` for each body, as GitHub puts in X-Hub-Signature-256. */
export function signWithOctokit(secret: string, bodies: string[]): Promise<string[]> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(process.execPath, [SIGNER], (error, stdout) => {
      if (error) reject(error);
      else resolvePromise(JSON.parse(stdout) as string[]);
    });
    child.stdin!.end(JSON.stringify({ secret, bodies }));
  });
}
