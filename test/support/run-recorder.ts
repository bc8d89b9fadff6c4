/** A trigger command that writes what it was told to a file, so tests see what a real run saw. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Appends one line per run to runs.txt in its cwd: provider|repository|branch|commit|pusher|event|delivery. */
export const RECORD_RUN =
  'printf "%s|%s|%s|%s|%s|%s|%s\\n" "$TRIGGLER_PROVIDER" "$TRIGGLER_REPOSITORY" "$TRIGGLER_BRANCH" "$TRIGGLER_COMMIT" "$TRIGGLER_PUSHER" "$TRIGGLER_EVENT" "$TRIGGLER_DELIVERY_ID" >> runs.txt';

export interface RecordedRun {
  provider: string;
  repository: string;
  branch: string;
  commit: string;
  pusher: string;
  event: string;
  delivery: string;
}

export function recordedRuns(dir: string): RecordedRun[] {
  const file = join(dir, 'runs.txt');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [provider = '', repository = '', branch = '', commit = '', pusher = '', event = '', delivery = ''] = line.split('|');
      return { provider, repository, branch, commit, pusher, event, delivery };
    });
}
