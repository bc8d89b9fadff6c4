import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { expectEachTestToRunNothing, startTestReceiver, tempDir, type TestReceiver } from '../../../support/receiver-fixture';
import { RECORD_RUN, recordedRuns } from '../../../support/run-recorder';

const FIXTURES = join(__dirname, '../../../support/fixtures/providers');
type Payload = Record<string, unknown>;
const fixture = (name: string): Payload => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Payload;

/** The "Secret token" of the mike/diaspora project webhook, sent as X-Gitlab-Token. */
const SECRET_TOKEN = 'gitlab-secret-token-of-mike-diaspora';
/** A GitLab signing token (Standard Webhooks: whsec_ and a base64 key). */
const SIGNING_TOKEN = 'whsec_c2lnbmluZy10b2tlbi1vZi10aGUtbWlrZS9kaWFzcG9yYS13ZWJob29r';
const EXAMPLE_TOKEN = 'gitlab-secret-token-of-jsmith-example';

// GitLab's documented payloads, and what the tests derive from them.
const pushMaster = fixture('gitlab-push.json');
const tagPush = fixture('gitlab-tag-push.json');
const pushDev = { ...pushMaster, ref: 'refs/heads/dev' };
const pushSigned = { ...pushMaster, ref: 'refs/heads/signed' };
// How GitLab reports a deleted branch: after is all zeros, checkout_sha is null, no commits.
const deleteMaster = { ...pushMaster, after: '0'.repeat(40), checkout_sha: null, commits: [], total_commits_count: 0 };
// A comment on a commit of the same project (X-Gitlab-Event: Note Hook), trimmed to what matters.
const commitComment = {
  object_kind: 'note',
  project: pushMaster.project,
  repository: pushMaster.repository,
  object_attributes: { note: 'looks good', noteable_type: 'Commit' },
};
const COMMIT = pushMaster.checkout_sha as string;

/** The headers GitLab sends with an X-Gitlab-Token webhook (it sends webhook-id/-timestamp even unsigned). */
function secretTokenHeaders(event: string, token: string, id = randomUUID()): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-gitlab-event': event,
    'x-gitlab-token': token,
    'x-gitlab-event-uuid': randomUUID(),
    'x-gitlab-webhook-uuid': '8c2b2f3e-3e4a-4d6e-9b0a-2f5e3c1d9a10',
    'idempotency-key': id,
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
  };
}

/** The headers of a webhook with a signing token, signed by the standardwebhooks library. */
function signingTokenHeaders(
  event: string,
  body: string,
  options: { id?: string; at?: Date; token?: string } = {},
): Record<string, string> {
  const id = options.id ?? randomUUID();
  const at = options.at ?? new Date();
  return {
    'content-type': 'application/json',
    'x-gitlab-event': event,
    'idempotency-key': id,
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(options.token ?? SIGNING_TOKEN).sign(id, at, body),
  };
}

describe('GitLab webhooks: POST /hooks/gitlab', () => {
  let receiver: TestReceiver;
  let workDir: string;
  const post = (body: Payload | string, headers: Record<string, string>) =>
    receiver.send('/hooks/gitlab', { headers, body: typeof body === 'string' ? body : JSON.stringify(body) });

  beforeAll(async () => {
    workDir = tempDir('triggler-gitlab-');
    receiver = await startTestReceiver({
      triggers: [
        // "diaspora" is the project's path (its display name is "Diaspora"); "mike/diaspora" its full path.
        {
          repository: 'diaspora',
          branch: 'master',
          token: SECRET_TOKEN,
          tokenName: 'gitlab/mike/diaspora',
          command: RECORD_RUN,
          cwd: workDir,
        },
        {
          repository: 'mike/diaspora',
          branch: 'dev',
          token: SECRET_TOKEN,
          tokenName: 'gitlab/mike/diaspora',
          command: RECORD_RUN,
          cwd: workDir,
        },
        // A trigger whose webhook uses a signing token instead.
        { repository: 'mike/diaspora', branch: 'signed', token: SIGNING_TOKEN, command: RECORD_RUN, cwd: workDir },
        { repository: 'jsmith/example', branch: 'master', token: EXAMPLE_TOKEN, command: RECORD_RUN, cwd: workDir },
      ],
    });
  });

  afterAll(async () => {
    await receiver?.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the trigger of the pushed branch on a valid X-Gitlab-Token, with checkout_sha as the commit', async () => {
    const id = randomUUID();
    const res = await post(pushMaster, secretTokenHeaders('Push Hook', SECRET_TOKEN, id));
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'accepted', delivery: id, run: { repository: 'diaspora', branch: 'master' } });
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toEqual({
      provider: 'gitlab',
      repository: 'diaspora',
      branch: 'master',
      commit: COMMIT,
      pusher: 'jsmith',
      event: 'Push Hook',
      delivery: id,
    });
  });

  it('runs nothing for a retry carrying the same Idempotency-Key', async () => {
    const headers = secretTokenHeaders('Push Hook', SECRET_TOKEN);
    const first = await post(pushMaster, headers);
    await receiver.settledRuns();
    const before = recordedRuns(workDir).length;
    const retry = await post(pushMaster, { ...headers, 'x-gitlab-event-uuid': randomUUID() });
    expect(first.status).toBe(202);
    expect(retry).toMatchObject({ status: 200, body: { status: 'duplicate' } });
    await receiver.settledRuns();
    expect(recordedRuns(workDir).length).toBe(before);
  });

  it('runs a branch trigger naming the full path, sharing the webhook secret', async () => {
    const res = await post(pushDev, secretTokenHeaders('Push Hook', SECRET_TOKEN));
    expect(res.status).toBe(202);
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ repository: 'mike/diaspora', branch: 'dev', commit: COMMIT });
  });

  it('verifies a signing token (Standard Webhooks) instead of X-Gitlab-Token when webhook-signature is sent', async () => {
    const body = JSON.stringify(pushSigned);
    const id = randomUUID();
    const res = await post(body, signingTokenHeaders('Push Hook', body, { id }));
    expect(res.status).toBe(202);
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ provider: 'gitlab', repository: 'mike/diaspora', branch: 'signed', delivery: id });
    // GitLab's retry is signed again, later, with the same webhook-id: nothing new runs.
    const before = recordedRuns(workDir).length;
    const retry = await post(body, signingTokenHeaders('Push Hook', body, { id, at: new Date(Date.now() + 2000) }));
    expect(retry).toMatchObject({ status: 200, body: { status: 'duplicate' } });
    await receiver.settledRuns();
    expect(recordedRuns(workDir).length).toBe(before);
  });

  describe('runs nothing', () => {
    expectEachTestToRunNothing(() => receiver);

    it('refuses a wrong X-Gitlab-Token and an unknown project with the same 401', async () => {
      const wrong = await post(pushMaster, secretTokenHeaders('Push Hook', 'a-wrong-secret-token-for-gitlab'));
      const unknown = await post(
        { ...pushMaster, project: { ...(pushMaster.project as Payload), name: 'Other', path_with_namespace: 'mike/other' } },
        secretTokenHeaders('Push Hook', SECRET_TOKEN),
      );
      expect(wrong.status).toBe(401);
      expect(unknown).toEqual({ ...wrong, headers: unknown.headers });
      const reasons = receiver.logs.filter((line) => line.status === 401 && line.provider === 'gitlab').map((line) => line.reason);
      expect(reasons).toEqual(expect.arrayContaining(['bad X-Gitlab-Token', 'no trigger for this repository']));
    });

    it('refuses a delivery with neither X-Gitlab-Token nor webhook-signature with 401', async () => {
      const headers = secretTokenHeaders('Push Hook', SECRET_TOKEN);
      delete headers['x-gitlab-token'];
      expect((await post(pushMaster, headers)).status).toBe(401);
    });

    it('refuses a signing-token signature made with another key (401) or outside the time window (400)', async () => {
      const body = JSON.stringify(pushSigned);
      const otherKey = 'whsec_YW5vdGhlci1rZXktdGhhdC1zaWducy10aGlzLWRlbGl2ZXJ5';
      expect((await post(body, signingTokenHeaders('Push Hook', body, { token: otherKey }))).status).toBe(401);
      const stale = await post(body, signingTokenHeaders('Push Hook', body, { at: new Date(Date.now() - 301_000) }));
      expect(stale).toMatchObject({ status: 400, body: { error: 'webhook-timestamp is too old' } });
      const headers = signingTokenHeaders('Push Hook', body);
      const malformed = await post(body, { ...headers, 'webhook-signature': 'v1,not-base64!' });
      expect(malformed).toMatchObject({ status: 400 });
      expect(String(malformed.body.error)).toContain('webhook-signature');
    });

    it('ignores a Tag Push Hook with 2xx', async () => {
      const res = await post(tagPush, secretTokenHeaders('Tag Push Hook', EXAMPLE_TOKEN));
      expect(res).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: event Tag Push Hook is not Push Hook' } });
    });

    it('ignores a tag ref even inside a Push Hook', async () => {
      const res = await post({ ...tagPush, object_kind: 'push' }, secretTokenHeaders('Push Hook', EXAMPLE_TOKEN));
      expect(res).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: tag push (v1.0.0)' } });
    });

    it('ignores a branch deletion with 2xx', async () => {
      const res = await post(deleteMaster, secretTokenHeaders('Push Hook', SECRET_TOKEN));
      expect(res).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: branch master was deleted' } });
    });

    it('ignores other events with 2xx once verified, and refuses them unverified', async () => {
      const res = await post(commitComment, secretTokenHeaders('Note Hook', SECRET_TOKEN));
      expect(res).toMatchObject({ status: 200, body: { status: 'ignored' } });
      expect((await post(commitComment, secretTokenHeaders('Note Hook', 'a-wrong-secret-token-for-gitlab'))).status).toBe(401);
    });

    it('answers 400 to a verified body that is not a push payload', async () => {
      const res = await post({ ...pushMaster, after: 'not-a-commit' }, secretTokenHeaders('Push Hook', SECRET_TOKEN));
      expect(res).toMatchObject({ status: 400, body: { error: 'after must be a commit id (40 or 64 hex digits)' } });
      const notJson = await post('{"project": ', secretTokenHeaders('Push Hook', SECRET_TOKEN));
      expect(notJson).toMatchObject({ status: 400, body: { error: 'body is not a JSON object' } });
    });

    it('answers 400 naming X-Gitlab-Event when it is missing', async () => {
      const headers = secretTokenHeaders('Push Hook', SECRET_TOKEN);
      delete headers['x-gitlab-event'];
      expect(await post(pushMaster, headers)).toMatchObject({ status: 400, body: { error: 'X-Gitlab-Event is missing' } });
    });
  });

  it('never writes a token to the log', () => {
    const log = JSON.stringify(receiver.logs);
    for (const secret of [SECRET_TOKEN, SIGNING_TOKEN, SIGNING_TOKEN.slice('whsec_'.length), EXAMPLE_TOKEN])
      expect(log).not.toContain(secret);
  });
});
