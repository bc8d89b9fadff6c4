/**
 * The fetch of a deploy: the pushed branch into the mirror, then the wanted commit by id when the
 * branch has moved past it, over SSH with a deploy key when the trigger names one; and what the
 * mirror then knows of the deployed commit (its subject and author) for the run's record.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Outcome } from '../command';
import { type DeployOutcome, type DeployRequest, type DeploySteps, endsTheRun, failed } from './deploy-steps';
import { fetchHeadCommit, gitIn, readCommitText, requestedCommit } from './git';
import type { ReleaseLayout } from './release-layout';
import { type SshAccess, prepareSshAccess } from './ssh-access';

/**
 * Fetches the branch into the mirror, then makes sure the wanted commit is there (fetching it by
 * id if the branch has moved past it). Resolves with the commit to deploy.
 */
export async function fetchRunCommit(request: DeployRequest, layout: ReleaseLayout, steps: DeploySteps): Promise<string | DeployOutcome> {
  const { mirror } = layout;
  if (!(await layout.mirrorExists())) {
    const created = await steps.run('create mirror', ['git', 'init', '--bare', '--quiet', mirror], request.deploy.path);
    if (created.status !== 'succeeded') return created;
  }
  if (request.deploy.sshKey !== undefined && request.config.user !== undefined && process.getuid?.() === 0) {
    return failed(
      `deploy.sshKey cannot be used with user "${request.config.user}": the key file is readable by the receiver alone, and git would run as that user`,
    );
  }
  const ssh = await prepareSshAccess(request.deploy, {
    stateDir: request.stateDir,
    runId: request.run.id,
    secretNamed: request.secretNamed,
  });
  if (ssh && 'error' in ssh) return failed(ssh.error);
  if (ssh) steps.note(ssh.description);
  try {
    return await fetchCommit(request, layout, steps, ssh);
  } finally {
    await ssh?.dispose();
  }
}

/** A fetch that did not reach the remote: the run fails, and over ssh the log says how to read why. */
function cannotFetch(steps: DeploySteps, error: string, outcome: Outcome, ssh: SshAccess | undefined): DeployOutcome {
  if (ssh) steps.note(ssh.unreachable);
  return failed(error, outcome);
}

async function fetchCommit(
  request: DeployRequest,
  layout: ReleaseLayout,
  steps: DeploySteps,
  ssh: SshAccess | undefined,
): Promise<string | DeployOutcome> {
  const fetchEnv = ssh?.env ?? {};
  const { mirror } = layout;
  const url = request.deploy.repositoryUrl;
  const branch = request.run.branch;
  const fetchArgs = ['fetch', '--no-tags', '--no-recurse-submodules', '--quiet', '--', url];
  const fetched = await steps.run(
    `fetch ${branch}`,
    gitIn(mirror, ...fetchArgs, `+refs/heads/${branch}:refs/heads/${branch}`),
    request.deploy.path,
    { env: fetchEnv },
  );
  if (endsTheRun(fetched)) return fetched;
  const wanted = requestedCommit(request.run.commit);
  if (wanted === undefined) {
    if (fetched.status !== 'succeeded') return cannotFetch(steps, `cannot fetch branch ${branch} from ${url}`, fetched, ssh);
    const tip = fetchHeadCommit(await fsp.readFile(path.join(mirror, 'FETCH_HEAD'), 'utf8').catch(() => ''));
    if (!tip) return failed(`the fetch of ${branch} from ${url} named no commit`);
    steps.note(`no commit in the push: deploying the tip of ${branch}, ${tip}`);
    return tip;
  }
  const has = (): Promise<Outcome> =>
    steps.run('look for the commit', gitIn(mirror, 'cat-file', '-e', `${wanted}^{commit}`), request.deploy.path);
  let present = await has();
  if (endsTheRun(present)) return present;
  if (present.status !== 'succeeded') {
    const byId = await steps.run(`fetch ${wanted}`, gitIn(mirror, ...fetchArgs, wanted), request.deploy.path, { env: fetchEnv });
    if (endsTheRun(byId)) return byId;
    present = await has();
    if (endsTheRun(present)) return present;
    // Only a remote that could be read can be said to lack the commit: when neither fetch got
    // through (no access, no such repository, a refused host key), that is what the run says.
    if (present.status !== 'succeeded' && fetched.status !== 'succeeded') {
      return cannotFetch(steps, `cannot fetch from ${url} (the log has git's reason); nothing was switched`, byId, ssh);
    }
  }
  if (present.status !== 'succeeded') return failed(`the remote ${url} does not have commit ${wanted}; nothing was switched`);
  return wanted;
}

/**
 * The outcome with the deployed commit's subject and author in its deploy record, read from the
 * mirror whatever the run did (a fetched push, a reused release, a rollback): people know a commit
 * by its subject, not its id. Without them when git cannot tell, or the receiver is stopping.
 */
export async function withCommitText(outcome: DeployOutcome, layout: ReleaseLayout, steps: DeploySteps): Promise<DeployOutcome> {
  const deploy = outcome.deploy;
  if (!deploy?.commit || steps.stopped) return outcome;
  const account = steps.runAs && 'account' in steps.runAs ? steps.runAs.account : undefined;
  const text = await readCommitText(layout.mirror, deploy.commit, account);
  return text ? { ...outcome, deploy: { ...deploy, ...text } } : outcome;
}
