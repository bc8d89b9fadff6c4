/** Real git for tests: a repository for deploy tests (commits made here, fetched by the receiver from a bare copy), and git as a pusher runs it. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

function runGit(cwd: string, args: string[], env: NodeJS.ProcessEnv): string {
  return execFileSync('git', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** git for the repositories a test makes, its output trimmed. */
export function git(cwd: string, ...args: string[]): string {
  return runGit(cwd, args, GIT_ENV);
}

/**
 * git as someone who pushes from this server's shell runs it, for tests of what git itself runs
 * (the hook `triggler hook install` writes): the committer named on its command line, `main` for
 * a new repository's branch, and of this process's environment only PATH, with HOME the folder it
 * runs in (no user's git config; whatever the hook keeps under HOME stays in the test's folder).
 */
export function gitAsPusher(cwd: string, ...args: string[]): string {
  const named = ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'init.defaultBranch=main'];
  return runGit(cwd, [...named, ...args], { PATH: process.env.PATH, HOME: cwd });
}

export interface SourceRepo {
  /** The bare repository the receiver fetches from (a path git can fetch). */
  url: string;
  /** Writes (or, with null, deletes) files, commits them on `branch`, pushes to the bare repository; returns the commit. */
  commit(files: Record<string, string | null>, branch?: string): string;
}

export function sourceRepo(dir: string): SourceRepo {
  const work = path.join(dir, 'work');
  const url = path.join(dir, 'origin.git');
  git(dir, 'init', '--quiet', '--bare', '--initial-branch=main', url);
  git(dir, 'init', '--quiet', '--initial-branch=main', work);
  let count = 0;
  return {
    url,
    commit(files, branch = 'main') {
      count += 1;
      for (const [name, content] of Object.entries(files)) {
        const file = path.join(work, name);
        if (content === null) fs.rmSync(file, { force: true });
        else {
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fs.writeFileSync(file, content);
        }
      }
      git(work, 'add', '--all');
      git(work, 'commit', '--quiet', '--allow-empty', '-m', `commit ${count}`);
      const sha = git(work, 'rev-parse', 'HEAD');
      git(work, 'push', '--quiet', url, `HEAD:refs/heads/${branch}`);
      return sha;
    },
  };
}
