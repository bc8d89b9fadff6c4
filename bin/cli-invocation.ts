/**
 * How a hook or a systemd unit starts this same `triggler` again: `node <the CLI's file>` for an
 * npm install or a clone, the executable alone for the single executable (scripts/build-sea.ts),
 * whose script is inside it and whose path Node.js repeats as argv[1].
 */
import * as fs from 'node:fs';
import { isSea } from 'node:sea';

export interface CliInvocation {
  /** The program to execute: node, or the single executable. */
  program: string;
  /** The CLI's file that node runs; none for the single executable. */
  script?: string;
}

export function cliInvocation(): CliInvocation {
  if (isSea()) return { program: process.execPath };
  return { program: process.execPath, script: fs.realpathSync(process.argv[1] ?? '') };
}
