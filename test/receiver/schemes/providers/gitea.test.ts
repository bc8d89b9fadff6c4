import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expectEachTestToRunNothing, startTestReceiver, tempDir, type TestReceiver } from '../../../support/receiver-fixture';
import { RECORD_RUN, recordedRuns } from '../../../support/run-recorder';

const FIXTURES = join(__dirname, '../../../support/fixtures/providers');
type Payload = Record<string, unknown>;

/** The secret of the gitea/webhooks repository webhook. */
const SECRET = 'gitea-webhook-secret-of-gitea-webhooks';
const WRONG_SECRET = 'a-secret-that-no-trigger-holds';

// Gitea's documented push payload, and what the tests derive from it.
const pushDevelop = JSON.parse(readFileSync(join(FIXTURES, 'gitea-push.json'), 'utf8')) as Payload;
const pushMaster = { ...pushDevelop, ref: 'refs/heads/master' };
const pushUnconfigured = { ...pushDevelop, ref: 'refs/heads/no-trigger-here' };
const pushTag = { ...pushDevelop, ref: 'refs/tags/v1.0.0', before: '0'.repeat(40), commits: [] };
// Gitea reports a deleted branch as a push whose after is all zeros.
const deleteDevelop = { ...pushDevelop, before: pushDevelop.after, after: '0'.repeat(40), commits: [] };
// Gitea's "create" event (a branch was created), as it sends it alongside the push.
const createBranch = {
  sha: pushDevelop.after,
  ref: 'develop',
  ref_type: 'branch',
  repository: pushDevelop.repository,
  sender: pushDevelop.sender,
};
const COMMIT = pushDevelop.after as string;

/** What Gitea computes: hex HMAC-SHA256 of the JSON payload under the secret. */
const giteaSignature = (json: string, secret = SECRET) => createHmac('sha256', secret).update(json).digest('hex');

/** The headers Gitea sends (it adds Gogs and GitHub look-alikes, which the receiver does not need). */
function giteaHeaders(event: string, json: string, options: { delivery?: string; secret?: string } = {}): Record<string, string> {
  const delivery = options.delivery ?? randomUUID();
  const signature = giteaSignature(json, options.secret);
  return {
    'content-type': 'application/json',
    'x-gitea-delivery': delivery,
    'x-gitea-event': event,
    'x-gitea-event-type': event,
    'x-gitea-signature': signature,
    'x-gogs-delivery': delivery,
    'x-gogs-event': event,
    'x-gogs-signature': signature,
    'x-hub-signature-256': `sha256=${signature}`,
    'x-github-delivery': delivery,
    'x-github-event': event,
  };
}

/** A form body as Gitea's Go code writes it (url.Values.Encode: spaces become "+"). */
const formEncoded = (json: string) => `payload=${encodeURIComponent(json).replace(/%20/g, '+')}`;

describe('Gitea and Forgejo webhooks: POST /hooks/gitea, /hooks/forgejo', () => {
  let receiver: TestReceiver;
  let workDir: string;
  const post = (body: string, headers: Record<string, string>, path = '/hooks/gitea') => receiver.send(path, { headers, body });
  const postJson = (payload: Payload, event = 'push', options: { delivery?: string; secret?: string } = {}) => {
    const json = JSON.stringify(payload);
    return post(json, giteaHeaders(event, json, options));
  };

  beforeAll(async () => {
    workDir = tempDir('triggler-gitea-');
    receiver = await startTestReceiver({
      triggers: [
        {
          repository: 'gitea/webhooks',
          branch: 'develop',
          token: SECRET,
          tokenName: 'gitea/gitea/webhooks',
          command: RECORD_RUN,
          cwd: workDir,
        },
        { repository: 'webhooks', branch: 'master', token: SECRET, tokenName: 'gitea/gitea/webhooks', command: RECORD_RUN, cwd: workDir },
      ],
    });
  });

  afterAll(async () => {
    await receiver?.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the trigger of the pushed branch, telling the command provider, pusher, event and commit', async () => {
    const delivery = randomUUID();
    const res = await postJson(pushDevelop, 'push', { delivery });
    expect(res.status).toBe(202);
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toEqual({
      provider: 'gitea',
      repository: 'gitea/webhooks',
      branch: 'develop',
      commit: COMMIT,
      pusher: 'gitea',
      event: 'push',
      delivery,
    });
  });

  it('runs nothing for a redelivery (the same X-Gitea-Delivery)', async () => {
    const delivery = randomUUID();
    expect((await postJson(pushMaster, 'push', { delivery })).status).toBe(202);
    await receiver.settledRuns();
    const before = recordedRuns(workDir).length;
    expect(await postJson(pushMaster, 'push', { delivery })).toMatchObject({ status: 200, body: { status: 'duplicate' } });
    await receiver.settledRuns();
    expect(recordedRuns(workDir).length).toBe(before);
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ repository: 'webhooks', branch: 'master' });
  });

  it('takes the form-encoded body (payload=...), whose signature covers the JSON, not the form', async () => {
    const json = JSON.stringify({ ...pushDevelop, after: 'b'.repeat(40) });
    const headers = { ...giteaHeaders('push', json), 'content-type': 'application/x-www-form-urlencoded' };
    const res = await post(formEncoded(json), headers);
    expect(res.status).toBe(202);
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ branch: 'develop', commit: 'b'.repeat(40) });
  });

  it('serves Forgejo at /hooks/forgejo with its X-Forgejo-* headers', async () => {
    const json = JSON.stringify({ ...pushDevelop, after: 'c'.repeat(40) });
    const delivery = randomUUID();
    const res = await post(
      json,
      {
        'content-type': 'application/json',
        'x-forgejo-delivery': delivery,
        'x-forgejo-event': 'push',
        'x-forgejo-signature': giteaSignature(json),
      },
      '/hooks/forgejo',
    );
    expect(res.status).toBe(202);
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ provider: 'gitea', branch: 'develop', commit: 'c'.repeat(40), delivery });
  });

  describe('runs nothing', () => {
    expectEachTestToRunNothing(() => receiver);

    it('refuses a bad signature and an unsigned delivery with 401', async () => {
      expect((await postJson(pushDevelop, 'push', { secret: WRONG_SECRET })).status).toBe(401);
      const json = JSON.stringify(pushDevelop);
      const unsigned = giteaHeaders('push', json);
      for (const name of ['x-gitea-signature', 'x-gogs-signature', 'x-hub-signature-256']) delete unsigned[name];
      expect((await post(json, unsigned)).status).toBe(401);
    });

    it('refuses a form body whose signature covers the form instead of the JSON', async () => {
      const json = JSON.stringify(pushDevelop);
      const form = formEncoded(json);
      const headers = { ...giteaHeaders('push', form), 'content-type': 'application/x-www-form-urlencoded' };
      expect((await post(form, headers)).status).toBe(401);
    });

    it('answers 400 to a form body without a payload field', async () => {
      const res = await post('other=1', { ...giteaHeaders('push', ''), 'content-type': 'application/x-www-form-urlencoded' });
      expect(res).toMatchObject({ status: 400, body: { error: 'payload: the form-encoded body has no payload field' } });
    });

    it('ignores a tag push and a branch deletion with 2xx', async () => {
      expect(await postJson(pushTag)).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: tag push (v1.0.0)' } });
      expect(await postJson(deleteDevelop)).toMatchObject({
        status: 200,
        body: { status: 'ignored', reason: 'ignored: branch develop was deleted' },
      });
    });

    it('ignores other events (create, delete) with 2xx', async () => {
      expect(await postJson(createBranch, 'create')).toMatchObject({
        status: 200,
        body: { status: 'ignored', reason: 'ignored: event create is not push' },
      });
      expect(await postJson(createBranch, 'delete')).toMatchObject({ status: 200, body: { status: 'ignored' } });
    });

    it('ignores a pushed branch that has no trigger with 2xx', async () => {
      expect(await postJson(pushUnconfigured)).toMatchObject({
        status: 200,
        body: { status: 'ignored', reason: 'ignored: no trigger for branch no-trigger-here' },
      });
    });

    it('refuses a repository with no trigger with 401', async () => {
      const other = { ...pushDevelop, repository: { ...(pushDevelop.repository as Payload), name: 'other', full_name: 'gitea/other' } };
      expect((await postJson(other)).status).toBe(401);
    });
  });

  it('never writes a secret to the log', () => {
    const log = JSON.stringify(receiver.logs);
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain(WRONG_SECRET);
  });
});
