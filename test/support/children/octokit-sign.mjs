/**
 * Signs bodies with `@octokit/webhooks-methods`, GitHub's own signing code (ESM-only, so a plain
 * node ES module): reads `{ secret, bodies }` as JSON on stdin, writes the signatures as a JSON
 * array on stdout.
 */
import { sign } from '@octokit/webhooks-methods';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { secret, bodies } = JSON.parse(input);
process.stdout.write(JSON.stringify(await Promise.all(bodies.map((body) => sign(secret, body)))));
