/**
 * `hook install --wait`: the post-receive hook follows each run its push joined, through the
 * receiver's admin listener (the run's live log as server-sent events, then the run's record), and
 * prints the log to the pusher as it comes (git shows it as `remote:` lines), ending with the
 * outcome and the release. A push never hangs on it for longer than the wait: after it, the hook
 * says where to look and lets the push end while the run goes on.
 */
import { request } from './http-request';
import type { RunRecord } from '../receiver';
import { isUnreachable } from './runs-source';

export interface FollowTarget {
  admin: string;
  run: string;
  /** "main 1a2b3c4d5e6f", for the pusher. */
  label: string;
}

/** The line that ends a followed run: its status, exit code or error, and the release it made. */
export function outcomeLine(run: RunRecord): string {
  const exit = run.exitCode !== undefined && run.exitCode !== null ? ` (exit ${run.exitCode})` : '';
  const release = run.deploy?.release
    ? `, release ${run.deploy.release}${run.deploy.commit ? ` (${run.deploy.commit.slice(0, 12)})` : ''}`
    : '';
  return `run ${run.id} ${run.status}${exit}${release}${run.error ? `: ${run.error}` : ''}`;
}

/** Writes the run's log as it comes to `write`, then its outcome; gives up (saying where to look) at `deadline`. */
export async function followRun(
  target: FollowTarget,
  wait: { deadline: number; waitMs: number },
  write: (text: string) => void,
): Promise<void> {
  const lookElsewhere = `see it with: triggler runs --log ${target.run}   (or ${target.admin}/runs/${target.run})`;
  write(`triggler: following run ${target.run} of ${target.label}\n`);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), Math.max(0, wait.deadline - Date.now()));
  let endsWithNewline = true;
  const print = (text: string): void => {
    if (text === '') return;
    write(text);
    endsWithNewline = text.endsWith('\n');
  };
  try {
    const response = await request(`${target.admin}/runs/${encodeURIComponent(target.run)}/log/events`, {
      signal: abort.signal,
      bodyTimeout: 0,
      headersTimeout: 0,
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      write(`triggler: cannot follow run ${target.run}: the admin listener answered ${response.statusCode}; ${lookElsewhere}\n`);
      return;
    }
    let buffered = '';
    let ended = false;
    for await (const chunk of response.body) {
      buffered += (chunk as Buffer).toString('utf8');
      let cut: number;
      while ((cut = buffered.indexOf('\n\n')) >= 0) {
        const event = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        const name = /^event: (.*)$/m.exec(event)?.[1];
        const data = /^data: (.*)$/m.exec(event)?.[1];
        if ((name === 'append' || name === 'reset') && data !== undefined) print(JSON.parse(data) as string);
        if (name === 'end') ended = true;
      }
    }
    if (!endsWithNewline) write('\n');
    if (!ended) {
      write(`triggler: the admin listener stopped sending run ${target.run}'s log; ${lookElsewhere}\n`);
      return;
    }
    const answer = await request(`${target.admin}/runs/${encodeURIComponent(target.run)}`, {
      headers: { accept: 'application/json' },
      signal: abort.signal,
    });
    const { run } = (await answer.body.json()) as { run: RunRecord };
    write(`triggler: ${outcomeLine(run)}\n`);
  } catch (error) {
    if (!endsWithNewline) write('\n');
    if (abort.signal.aborted)
      write(`triggler: run ${target.run} has not ended within the hook's wait (${wait.waitMs / 1000} s); it goes on: ${lookElsewhere}\n`);
    else
      write(
        `triggler: cannot follow run ${target.run}: ${isUnreachable(error) ? `the admin listener at ${target.admin} does not answer` : (error as Error).message}; ${lookElsewhere}\n`,
      );
  } finally {
    clearTimeout(timer);
  }
}
