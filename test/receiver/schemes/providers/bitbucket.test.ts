import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expectEachTestToRunNothing, startTestReceiver, tempDir, type TestReceiver } from '../../../support/receiver-fixture';
import { RECORD_RUN, recordedRuns } from '../../../support/run-recorder';

const FIXTURES = join(__dirname, '../../../support/fixtures/providers');
type Payload = Record<string, unknown>;
type Change = Record<string, unknown> & { new: Record<string, unknown> | null; old: Record<string, unknown> | null };

/** The secret of the team_name/repo_name repository webhook. */
const SECRET = 'bitbucket-webhook-secret-of-repo-name';
const WRONG_SECRET = 'a-secret-that-no-trigger-holds';

// Bitbucket's documented repo:push payload (one change, to branch name-of-branch).
const documented = JSON.parse(readFileSync(join(FIXTURES, 'bitbucket-push.json'), 'utf8')) as Payload;
const documentedChange = (documented.push as { changes: Change[] }).changes[0]!;
const DOCUMENTED_COMMIT = '709d658dc5b6d6afcd46049c2f332ee3f515a67d';
const DEVELOP_COMMIT = 'd'.repeat(40);

/** The documented change moved to another branch and commit. */
function changeTo(branch: string, commit: string): Change {
  const change = structuredClone(documentedChange);
  const target = { ...(change.new!.target as Payload), hash: commit };
  change.new = { ...change.new!, name: branch, target };
  change.old = { ...change.old!, name: branch };
  return change;
}

/** The documented payload with these changes instead of its one. */
function pushOf(...changes: Change[]): Payload {
  return { ...documented, push: { changes } };
}

// Derived pushes: two branches at once; a tag; a deleted branch (Bitbucket sends new: null, closed: true).
const twoBranches = pushOf(documentedChange, changeTo('develop', DEVELOP_COMMIT));
const configuredAndNot = pushOf(changeTo('develop', DEVELOP_COMMIT), changeTo('no-trigger-here', DEVELOP_COMMIT));
const tagPush = pushOf({
  ...structuredClone(documentedChange),
  new: { ...documentedChange.new!, type: 'tag', name: 'v1.0.0' },
  old: null,
  created: true,
});
const branchDeleted = pushOf({ ...structuredClone(documentedChange), new: null, closed: true });
// A pull request event for the same repository, trimmed to what matters.
const pullRequestCreated = {
  actor: documented.actor,
  repository: documented.repository,
  pullrequest: { id: 2, title: 'A change', state: 'OPEN' },
};

/** The headers Bitbucket Cloud sends; X-Hub-Signature is hex HMAC-SHA256 of the body under the secret. */
function bitbucketHeaders(
  event: string,
  body: string,
  options: { request?: string; attempt?: number; secret?: string } = {},
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'Bitbucket-Webhooks/2.0',
    'x-event-key': event,
    'x-hook-uuid': '3b7898dc-6891-4225-ae60-24613bb83080',
    'x-request-uuid': options.request ?? randomUUID(),
    'x-attempt-number': String(options.attempt ?? 1),
    'x-hub-signature': `sha256=${createHmac('sha256', options.secret ?? SECRET)
      .update(body)
      .digest('hex')}`,
  };
}

describe('Bitbucket Cloud webhooks: POST /hooks/bitbucket', () => {
  let receiver: TestReceiver;
  let workDir: string;
  const post = (payload: Payload, event = 'repo:push', options: { request?: string; attempt?: number; secret?: string } = {}) => {
    const body = JSON.stringify(payload);
    return receiver.send('/hooks/bitbucket', { headers: bitbucketHeaders(event, body, options), body });
  };

  beforeAll(async () => {
    workDir = tempDir('triggler-bitbucket-');
    receiver = await startTestReceiver({
      triggers: [
        {
          repository: 'team_name/repo_name',
          branch: 'name-of-branch',
          token: SECRET,
          tokenName: 'bitbucket/team_name/repo_name',
          command: RECORD_RUN,
          cwd: workDir,
        },
        {
          repository: 'team_name/repo_name',
          branch: 'develop',
          token: SECRET,
          tokenName: 'bitbucket/team_name/repo_name',
          command: RECORD_RUN,
          cwd: workDir,
        },
      ],
    });
  });

  afterAll(async () => {
    await receiver?.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the trigger of the pushed branch, telling the command provider, pusher, event and commit', async () => {
    const request = randomUUID();
    const res = await post(documented, 'repo:push', { request });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      status: 'accepted',
      delivery: request,
      run: { repository: 'team_name/repo_name', branch: 'name-of-branch' },
    });
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toEqual({
      provider: 'bitbucket',
      repository: 'team_name/repo_name',
      branch: 'name-of-branch',
      commit: DOCUMENTED_COMMIT,
      pusher: 'Emma',
      event: 'repo:push',
      delivery: request,
    });
  });

  it('runs every branch of a push that carries several, and none of them again on a retry', async () => {
    const before = recordedRuns(workDir).length;
    const request = randomUUID();
    const res = await post(twoBranches, 'repo:push', { request });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      status: 'accepted',
      delivery: request,
      runs: [
        { repository: 'team_name/repo_name', branch: 'name-of-branch', status: 'accepted' },
        { repository: 'team_name/repo_name', branch: 'develop', status: 'accepted' },
      ],
    });
    await receiver.settledRuns();
    const ran = recordedRuns(workDir).slice(before);
    expect(ran.map((run) => `${run.branch} ${run.commit}`).sort()).toEqual([
      `develop ${DEVELOP_COMMIT}`,
      `name-of-branch ${DOCUMENTED_COMMIT}`,
    ]);

    // Bitbucket's retry: the same X-Request-UUID, a higher X-Attempt-Number.
    const retry = await post(twoBranches, 'repo:push', { request, attempt: 2 });
    expect(retry).toMatchObject({ status: 200, body: { status: 'duplicate' } });
    await receiver.settledRuns();
    expect(recordedRuns(workDir).length).toBe(before + 2);
  });

  it('runs the configured branch of a push and says which it ignored', async () => {
    const before = recordedRuns(workDir).length;
    const res = await post(configuredAndNot);
    expect(res).toMatchObject({
      status: 202,
      body: { status: 'accepted', run: { branch: 'develop' }, ignored: ['no trigger for branch no-trigger-here'] },
    });
    await receiver.settledRuns();
    expect(
      recordedRuns(workDir)
        .slice(before)
        .map((run) => run.branch),
    ).toEqual(['develop']);
  });

  describe('runs nothing', () => {
    expectEachTestToRunNothing(() => receiver);

    it('refuses a bad signature and an unsigned delivery with 401', async () => {
      expect((await post(documented, 'repo:push', { secret: WRONG_SECRET })).status).toBe(401);
      const body = JSON.stringify(documented);
      const headers = bitbucketHeaders('repo:push', body);
      delete headers['x-hub-signature'];
      expect((await receiver.send('/hooks/bitbucket', { headers, body })).status).toBe(401);
    });

    it('ignores a tag push and a branch deletion with 2xx', async () => {
      expect(await post(tagPush)).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: tag push (v1.0.0)' } });
      expect(await post(branchDeleted)).toMatchObject({
        status: 200,
        body: { status: 'ignored', reason: 'ignored: branch name-of-branch was deleted' },
      });
    });

    it('ignores events other than repo:push with 2xx once verified', async () => {
      expect(await post(pullRequestCreated, 'pullrequest:created')).toMatchObject({
        status: 200,
        body: { status: 'ignored', reason: 'ignored: event pullrequest:created is not repo:push' },
      });
      expect((await post(pullRequestCreated, 'pullrequest:created', { secret: WRONG_SECRET })).status).toBe(401);
    });

    it('answers 400 to a verified body without push.changes', async () => {
      expect(await post({ ...documented, push: {} })).toMatchObject({ status: 400, body: { error: 'push.changes must be an array' } });
    });
  });

  it('never writes a secret to the log', () => {
    const log = JSON.stringify(receiver.logs);
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain(WRONG_SECRET);
  });
});
