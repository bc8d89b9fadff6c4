import { randomUUID } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import webhookExamples from '@octokit/webhooks-examples';
import { expectEachTestToRunNothing, startTestReceiver, tempDir, type TestReceiver } from '../../../support/receiver-fixture';
import { signWithOctokit } from '../../../support/octokit-signer';
import { RECORD_RUN, recordedRuns } from '../../../support/run-recorder';

/** The one secret of the Codertocat/Hello-World repository webhook, shared by its branch triggers. */
const REPOSITORY_SECRET = 'repository-webhook-secret-of-Codertocat-Hello-World';
/** A trigger of the same repository that names a token of its own. */
const STAGING_SECRET = 'a-separate-secret-for-the-staging-trigger';
/** The secret of a trigger that names the repository without its owner. */
const NAME_ONLY_SECRET = 'secret-of-a-trigger-named-Hello-World';
const WRONG_SECRET = 'not-the-secret-of-any-trigger-at-all';

type Payload = Record<string, unknown>;

function example(event: string, index: number): Payload {
  const definition = webhookExamples.find((d) => d.name === event);
  if (!definition) throw new Error(`no ${event} examples in @octokit/webhooks-examples`);
  return structuredClone(definition.examples[index]) as unknown as Payload;
}

// GitHub's own examples. push[4]: a push creating branch master of Codertocat/Hello-World.
const pushMaster = example('push', 4);
const pushTag = example('push', 0);
const deleteTag = example('push', 1);
const ping = example('ping', 0);
const organisationPing = example('ping', 3);
const issueEdited = example('issues', 0);
// Derived from push[4]: the same push to other branches, and the deletion of master.
const pushDev = { ...pushMaster, ref: 'refs/heads/dev' };
const pushStaging = { ...pushMaster, ref: 'refs/heads/staging' };
const pushRelease = { ...pushMaster, ref: 'refs/heads/release' };
const pushUnconfigured = { ...pushMaster, ref: 'refs/heads/no-trigger-here' };
const deleteMaster = { ...pushMaster, deleted: true, created: false, after: '0'.repeat(40), head_commit: null, commits: [] };
const pushOtherRepository = {
  ...pushMaster,
  repository: { ...(pushMaster.repository as Payload), name: 'Other', full_name: 'Codertocat/Other' },
};
const COMMIT = pushMaster.after as string;

describe('GitHub webhooks: POST /hooks/github', () => {
  let receiver: TestReceiver;
  let workDir: string;
  /** Every body the tests send, with its X-Hub-Signature-256 from @octokit/webhooks-methods, by secret. */
  const signatures = new Map<string, string>();
  const bodies: Record<string, string> = {};

  function signed(name: string, secret = REPOSITORY_SECRET): { body: string; signature: string } {
    const body = bodies[name]!;
    const signature = signatures.get(`${secret}\n${body}`);
    if (signature === undefined) throw new Error(`${name} was not signed with that secret in beforeAll`);
    return { body, signature };
  }

  function send(name: string, event: string, options: { secret?: string; delivery?: string; headers?: Record<string, string> } = {}) {
    const { body, signature } = signed(name, options.secret);
    return receiver.send('/hooks/github', {
      headers: {
        'content-type': 'application/json',
        'x-github-event': event,
        'x-github-delivery': options.delivery ?? randomUUID(),
        'x-hub-signature-256': signature,
        ...options.headers,
      },
      body,
    });
  }

  const runCount = async () => (await receiver.settledRuns()).length;

  beforeAll(async () => {
    workDir = tempDir('triggler-github-');
    Object.assign(bodies, {
      pushMaster: JSON.stringify(pushMaster),
      pushDev: JSON.stringify(pushDev),
      pushStaging: JSON.stringify(pushStaging),
      pushRelease: JSON.stringify(pushRelease),
      pushUnconfigured: JSON.stringify(pushUnconfigured),
      pushTag: JSON.stringify(pushTag),
      deleteTag: JSON.stringify(deleteTag),
      deleteMaster: JSON.stringify(deleteMaster),
      pushOtherRepository: JSON.stringify(pushOtherRepository),
      ping: JSON.stringify(ping),
      organisationPing: JSON.stringify(organisationPing),
      issueEdited: JSON.stringify(issueEdited),
      formPushDev: `payload=${encodeURIComponent(JSON.stringify({ ...pushDev, after: 'a'.repeat(40) }))}`,
      notJson: '{"ref": "refs/heads/master", "repository": ',
      largeNotJson: `{"padding": "${'x'.repeat(70 * 1024)}`,
      noRef: JSON.stringify({ ...pushMaster, ref: undefined }),
    });
    for (const secret of [REPOSITORY_SECRET, STAGING_SECRET, NAME_ONLY_SECRET, WRONG_SECRET]) {
      const names = Object.keys(bodies);
      const sigs = await signWithOctokit(
        secret,
        names.map((name) => bodies[name]!),
      );
      names.forEach((name, i) => signatures.set(`${secret}\n${bodies[name]}`, sigs[i]!));
    }
    const tokenFile = join(workDir, 'tokens.json');
    writeFileSync(
      tokenFile,
      JSON.stringify({
        'github/Codertocat/Hello-World': REPOSITORY_SECRET,
        'github/Codertocat/Hello-World-staging': STAGING_SECRET,
        'github/Hello-World': NAME_ONLY_SECRET,
      }),
    );
    chmodSync(tokenFile, 0o600);
    receiver = await startTestReceiver({
      limits: { bodyBytes: 128 * 1024 },
      tokens: { file: tokenFile },
      triggers: [
        {
          repository: 'Codertocat/Hello-World',
          branch: 'master',
          tokenName: 'github/Codertocat/Hello-World',
          command: RECORD_RUN,
          cwd: workDir,
        },
        {
          repository: 'Codertocat/Hello-World',
          branch: 'dev',
          tokenName: 'github/Codertocat/Hello-World',
          command: RECORD_RUN,
          cwd: workDir,
        },
        {
          repository: 'Codertocat/Hello-World',
          branch: 'staging',
          tokenName: 'github/Codertocat/Hello-World-staging',
          command: RECORD_RUN,
          cwd: workDir,
        },
        { repository: 'Hello-World', branch: 'release', tokenName: 'github/Hello-World', command: RECORD_RUN, cwd: workDir },
      ],
    });
  });

  afterAll(async () => {
    await receiver?.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the trigger of the pushed branch, telling the command provider, pusher, event and commit', async () => {
    const delivery = randomUUID();
    const res = await send('pushMaster', 'push', { delivery });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'accepted', delivery, run: { repository: 'Codertocat/Hello-World', branch: 'master' } });
    const runs = await receiver.settledRuns();
    expect(runs.find((run) => run.id === (res.body.run as { id: string }).id)).toMatchObject({
      status: 'succeeded',
      commit: COMMIT,
      scheme: 'github',
    });
    expect(recordedRuns(workDir).at(-1)).toEqual({
      provider: 'github',
      repository: 'Codertocat/Hello-World',
      branch: 'master',
      commit: COMMIT,
      pusher: 'Codertocat',
      event: 'push',
      delivery,
    });
  });

  it('runs nothing for a redelivery (the same X-GitHub-Delivery) and answers 200', async () => {
    const delivery = randomUUID();
    const first = await send('pushMaster', 'push', { delivery });
    await receiver.settledRuns();
    const before = recordedRuns(workDir).length;
    const again = await send('pushMaster', 'push', { delivery });
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'duplicate', run: { id: (first.body.run as { id: string }).id } });
    await receiver.settledRuns();
    expect(recordedRuns(workDir).length).toBe(before);
  });

  it('runs another branch trigger that shares the repository webhook secret (one tokenName)', async () => {
    const res = await send('pushDev', 'push');
    expect(res.status).toBe(202);
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ repository: 'Codertocat/Hello-World', branch: 'dev', commit: COMMIT });
  });

  it('does not run a trigger that names another token with the repository secret; its own secret runs it', async () => {
    const before = await runCount();
    const withRepositorySecret = await send('pushStaging', 'push');
    expect(withRepositorySecret.status).toBe(200);
    expect(withRepositorySecret.body).toMatchObject({ status: 'ignored', reason: 'ignored: no trigger for branch staging' });
    expect(await runCount()).toBe(before);
    const withOwnSecret = await send('pushStaging', 'push', { secret: STAGING_SECRET });
    expect(withOwnSecret.status).toBe(202);
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ branch: 'staging' });
  });

  it('matches a trigger that names the repository without its owner', async () => {
    const res = await send('pushRelease', 'push', { secret: NAME_ONLY_SECRET });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ run: { repository: 'Hello-World', branch: 'release' } });
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ repository: 'Hello-World', branch: 'release' });
  });

  it('takes a form-encoded body (payload=...), signed over the raw body', async () => {
    const res = await send('formPushDev', 'push', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(202);
    await receiver.settledRuns();
    expect(recordedRuns(workDir).at(-1)).toMatchObject({ branch: 'dev', commit: 'a'.repeat(40) });
  });

  describe('runs nothing', () => {
    expectEachTestToRunNothing(() => receiver);

    it('answers a verified ping with 200, for a repository and for an organisation webhook', async () => {
      const repositoryPing = await send('ping', 'ping', { secret: NAME_ONLY_SECRET });
      expect(repositoryPing).toMatchObject({ status: 200, body: { status: 'ok', event: 'ping' } });
      // An organisation webhook's ping names no repository: any configured secret is tried.
      const orgPing = await send('organisationPing', 'ping');
      expect(orgPing).toMatchObject({ status: 200, body: { status: 'ok', event: 'ping' } });
      expect((await send('ping', 'ping', { secret: WRONG_SECRET })).status).toBe(401);
      expect((await send('organisationPing', 'ping', { secret: WRONG_SECRET })).status).toBe(401);
    });

    it('refuses a bad signature and an unknown repository with the same 401; the log tells them apart', async () => {
      const bad = await send('pushMaster', 'push', { secret: WRONG_SECRET });
      const unknown = await send('pushOtherRepository', 'push');
      expect(bad.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(unknown.body).toEqual(bad.body);
      const reasons = receiver.logs.filter((line) => line.status === 401 && line.provider === 'github').map((line) => line.reason);
      expect(reasons).toEqual(expect.arrayContaining(['bad X-Hub-Signature-256', 'no trigger for this repository']));
    });

    it('refuses an unsigned delivery and a malformed signature header with 401', async () => {
      const unsigned = await receiver.send('/hooks/github', {
        headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID() },
        body: bodies.pushMaster!,
      });
      expect(unsigned.status).toBe(401);
      const sha1 = await send('pushMaster', 'push', { headers: { 'x-hub-signature-256': `sha1=${'0'.repeat(40)}` } });
      expect(sha1.status).toBe(401);
      expect(receiver.logs.some((line) => line.reason === 'unsigned: no X-Hub-Signature-256')).toBe(true);
    });

    it('ignores tag pushes and tag deletions with 2xx', async () => {
      const tag = await send('pushTag', 'push');
      expect(tag).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: tag push (simple-tag)' } });
      const tagDeleted = await send('deleteTag', 'push');
      expect(tagDeleted).toMatchObject({ status: 200, body: { status: 'ignored' } });
    });

    it('ignores a branch deletion with 2xx', async () => {
      const res = await send('deleteMaster', 'push');
      expect(res).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: branch master was deleted' } });
    });

    it('ignores events other than push with 2xx, once verified', async () => {
      const res = await send('issueEdited', 'issues');
      expect(res).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: event issues is not push' } });
      expect((await send('issueEdited', 'issues', { secret: WRONG_SECRET })).status).toBe(401);
    });

    it('ignores a pushed branch that has no trigger with 2xx', async () => {
      const res = await send('pushUnconfigured', 'push');
      expect(res).toMatchObject({ status: 200, body: { status: 'ignored', reason: 'ignored: no trigger for branch no-trigger-here' } });
    });

    it('answers 400 to a body that verifies but is not a push payload, 401 when it does not verify', async () => {
      const notJson = await send('notJson', 'push');
      expect(notJson).toMatchObject({ status: 400, body: { error: 'body is not a JSON object' } });
      expect((await send('notJson', 'push', { secret: WRONG_SECRET })).status).toBe(401);
      const noRef = await send('noRef', 'push');
      expect(noRef).toMatchObject({ status: 400, body: { error: 'ref must be a non-empty string' } });
    });

    it('does not try every token over a large body that names no repository: 401 even when signed', async () => {
      const res = await send('largeNotJson', 'push');
      expect(res.status).toBe(401);
      expect(receiver.logs.some((l) => l.reason === 'body names no repository and is too large to try every token')).toBe(true);
    });

    it('answers 400 naming X-GitHub-Event when it is missing', async () => {
      const { body, signature } = signed('pushMaster');
      const res = await receiver.send('/hooks/github', { headers: { 'x-hub-signature-256': signature }, body });
      expect(res).toMatchObject({ status: 400, body: { error: 'X-GitHub-Event is missing' } });
    });

    it('refuses a body over the limit with 413', async () => {
      const res = await receiver.send('/hooks/github', {
        headers: { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` },
        body: 'x'.repeat(129 * 1024),
      });
      expect(res.status).toBe(413);
    });
  });

  it('never writes a secret to the log', () => {
    const log = JSON.stringify(receiver.logs);
    for (const secret of [REPOSITORY_SECRET, STAGING_SECRET, NAME_ONLY_SECRET, WRONG_SECRET]) expect(log).not.toContain(secret);
  });
});
