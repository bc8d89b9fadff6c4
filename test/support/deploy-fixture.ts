/**
 * A deploy trigger's runner, fresh for each test of the describe that asks for it: a state folder
 * holding a real source repository (./git-repo) and the deploy path, the runner opened by the test
 * with the command it needs, closed and the folder removed after each test.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ReceiverConfigInput } from '../../receiver/config/schema';
import { ReleaseLayout } from '../../receiver/runs/deploy/release-layout';
import type { RunRecord } from '../../receiver/runs/run-record';
import type { Runner } from '../../receiver/runs/runner';
import { sourceRepo, type SourceRepo } from './git-repo';
import { makeDelivery, makeStateDir, makeTrigger, openRunner, removeDir } from './runner-harness';

type TriggerInput = ReceiverConfigInput['triggers'][number];
export type DeployInput = NonNullable<TriggerInput['deploy']>;

export interface DeployFixture {
  /** This test's folder (removed after it). */
  readonly dir: string;
  /** The repository the trigger deploys from. */
  readonly repo: SourceRepo;
  /** The trigger's deploy.path. */
  readonly deployPath: string;
  /** The runner start() opened. */
  readonly runner: Runner;
  /** Opens the runner with one deploy trigger (app main) running `command`, its deploy section and fields as given. */
  start(command: string, deploy?: Partial<DeployInput>, trigger?: Partial<TriggerInput>): Promise<Runner>;
  /** The run's record once the runner has nothing left to do. */
  finished(runId: string): Promise<RunRecord>;
  /** Pushes `commit` and waits for its run. */
  push(commit: string): Promise<RunRecord>;
  layout(): ReleaseLayout;
  /** A file of the current release. */
  currentFile(name: string): string;
}

/** Call in a describe: each of its tests gets a new folder, repository and (once it starts one) runner. */
export function deployFixtureEach(): DeployFixture {
  let dir: string | undefined;
  let repo: SourceRepo | undefined;
  let runner: Runner | undefined;
  beforeEach(() => {
    dir = makeStateDir();
    repo = sourceRepo(dir);
  });
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
    if (dir) removeDir(dir);
  });
  const present = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`no ${what}: the deploy fixture is for inside a test, after start()`);
    return value;
  };
  const deployPath = (): string => path.join(present(dir, 'folder'), 'srv', 'app');
  const finished = async (runId: string): Promise<RunRecord> => {
    const started = present(runner, 'runner');
    await started.idle();
    return started.history.run(runId)!;
  };
  return {
    get dir() {
      return present(dir, 'folder');
    },
    get repo() {
      return present(repo, 'repository');
    },
    get deployPath() {
      return deployPath();
    },
    get runner() {
      return present(runner, 'runner');
    },
    start: async (command, deploy = {}, trigger = {}) => {
      ({ runner } = await openRunner({
        stateDir: path.join(present(dir, 'folder'), 'state'),
        triggers: [
          makeTrigger({
            command,
            timeoutSeconds: 30,
            ...trigger,
            deploy: { repositoryUrl: present(repo, 'repository').url, path: deployPath(), ...deploy },
          }),
        ],
      }));
      return runner;
    },
    finished,
    push: async (commit) => finished((await present(runner, 'runner').accept(makeDelivery({ commit }))).runId),
    layout: () => new ReleaseLayout(deployPath()),
    currentFile: (name) => fs.readFileSync(path.join(deployPath(), 'current', name), 'utf8'),
  };
}
