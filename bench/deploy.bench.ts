/**
 * Deploy figures, printed as a markdown section: a deploy run of a 10 MB, 1,000-file
 * repository (the real runner: fetch into the mirror, `git worktree add` of the release, command
 * `true`, switch, journal) against plain git doing the same in the same run:
 *   first        deploy into an empty path  vs  `git clone --no-checkout` + `git checkout <commit>`
 *   incremental  deploy of a new commit (10 files changed) with the mirror in place
 *                vs  `git fetch` into a bare repository + `git worktree add` of that commit
 * Medians of BENCH_RUNS (5) runs; target: incremental ≤ 1.5× its baseline.
 *
 *   npx tsx bench/deploy.bench.ts
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { Runner, triggerSchema } from '../receiver';
import { median } from './support';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FILES = 1000;
const FILE_BYTES = 10 * 1024;
const TARGET = 1.5;
const ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'b@example.com',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'b@example.com',
};

const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', args, { cwd, env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const ms = (seconds: number): string => `${(seconds * 1000).toFixed(0)} ms`;

function timed(action: () => void): number {
  const started = process.hrtime.bigint();
  action();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function timedAsync(action: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** A bare repository of FILES random (incompressible) files, and a work tree to commit from. */
function makeRepository(dir: string): { url: string; commit: (changed: number) => string } {
  const work = path.join(dir, 'work');
  const url = path.join(dir, 'origin.git');
  git(dir, 'init', '--quiet', '--bare', '--initial-branch=main', url);
  git(dir, 'init', '--quiet', '--initial-branch=main', work);
  for (let i = 0; i < FILES; i++) {
    const file = path.join(work, `src/${i % 20}/file-${i}.txt`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, randomBytes(FILE_BYTES / 2).toString('hex'));
  }
  const commit = (changed: number): string => {
    for (let i = 0; i < changed; i++)
      fs.writeFileSync(path.join(work, `src/${i % 20}/file-${i}.txt`), randomBytes(FILE_BYTES / 2).toString('hex'));
    git(work, 'add', '--all');
    git(work, 'commit', '--quiet', '-m', 'bench');
    git(work, 'push', '--quiet', url, 'HEAD:refs/heads/main');
    return git(work, 'rev-parse', 'HEAD');
  };
  commit(0);
  return { url, commit };
}

let delivery = 0;
async function deploy(runner: Runner, commit: string): Promise<void> {
  delivery += 1;
  const { runId } = await runner.accept({
    dedupeKey: `bench:${delivery}`,
    dedupeUntil: Date.now() + 60_000,
    deliveryId: `d${delivery}`,
    repository: 'app',
    branch: 'main',
    commit,
    scheme: 'standard',
    receivedAt: new Date().toISOString(),
  });
  await runner.idle();
  const status = runner.history.run(runId)?.status;
  if (status !== 'succeeded') throw new Error(`deploy run ${runId} ended ${status}`);
}

async function openRunner(dir: string, url: string, deployPath: string): Promise<Runner> {
  return Runner.open({
    stateDir: path.join(dir, 'state'),
    triggers: [
      triggerSchema.parse({
        repository: 'app',
        branch: 'main',
        token: 'bench-token-0123456789',
        command: 'true',
        deploy: { repositoryUrl: url, path: deployPath, keepReleases: 3 },
      }),
    ],
    maxConcurrentRuns: 1,
    runLogBytes: 64 * 1024,
    keepRuns: 100,
    shutdownGraceSeconds: 0,
    logger: pino({ level: 'silent' }),
  });
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(tmpdir(), 'triggler-deploy-bench-'));
  try {
    const repo = makeRepository(root);
    const first = { deploy: [] as number[], baseline: [] as number[] };
    const incremental = { deploy: [] as number[], baseline: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      const dir = path.join(root, `run-${run}`);
      fs.mkdirSync(dir);
      const commit = git(repo.url, 'rev-parse', 'refs/heads/main');
      first.baseline.push(
        timed(() => {
          git(dir, 'clone', '--quiet', '--no-checkout', repo.url, 'clone');
          git(path.join(dir, 'clone'), 'checkout', '--quiet', commit);
        }),
      );
      const runner = await openRunner(dir, repo.url, path.join(dir, 'deploy'));
      try {
        first.deploy.push(await timedAsync(() => deploy(runner, commit)));
        // The baseline's own bare repository, fetched up to the same point.
        const bare = path.join(dir, 'bare.git');
        git(dir, 'init', '--quiet', '--bare', bare);
        git(bare, 'fetch', '--quiet', repo.url, '+refs/heads/main:refs/heads/main');
        const next = repo.commit(10);
        incremental.baseline.push(
          timed(() => {
            git(bare, 'fetch', '--quiet', repo.url, '+refs/heads/main:refs/heads/main');
            git(bare, 'worktree', 'add', '--quiet', '--detach', path.join(dir, 'worktree'), next);
          }),
        );
        incremental.deploy.push(await timedAsync(() => deploy(runner, next)));
      } finally {
        await runner.close();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const bytes = Number(execFileSync('du', ['-sb', path.join(root, 'work', 'src')], { encoding: 'utf8' }).split('\t')[0]);
    const firstRatio = median(first.deploy) / median(first.baseline);
    const incrementalRatio = median(incremental.deploy) / median(incremental.baseline);
    process.stdout.write(
      [
        '',
        '## Deploy',
        '',
        `A repository of ${FILES} files, ${(bytes / 2 ** 20).toFixed(1)} MiB (random, incompressible), on local disk (a path git fetches over its local transport). A deploy is the real runner: journal records, \`git fetch\` into the mirror, \`git worktree add\` of the release, command \`true\`, the switch of \`current\`, the manifest. Medians of ${RUNS} runs, each baseline measured in the same run just before its deploy.`,
        '',
        '| figure | deploy | plain git | ratio | target |',
        '| --- | --- | --- | --- | --- |',
        `| first deploy vs \`git clone --no-checkout\` + \`git checkout\` | ${ms(median(first.deploy))} | ${ms(median(first.baseline))} | ${firstRatio.toFixed(2)}× | |`,
        `| incremental deploy (10 files changed) vs \`git fetch\` + \`git worktree add\` | ${ms(median(incremental.deploy))} | ${ms(median(incremental.baseline))} | ${incrementalRatio.toFixed(2)}× | ≤ ${TARGET}× ${incrementalRatio <= TARGET ? '(met)' : '(**not met**)'} |`,
        '',
        `Runs (s): first ${first.deploy.map((t) => t.toFixed(3)).join(', ')} vs ${first.baseline.map((t) => t.toFixed(3)).join(', ')}; incremental ${incremental.deploy.map((t) => t.toFixed(3)).join(', ')} vs ${incremental.baseline.map((t) => t.toFixed(3)).join(', ')}.`,
        '',
      ].join('\n'),
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
