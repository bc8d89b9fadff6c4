import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import webhookExamples from '@octokit/webhooks-examples';
import { claimedRepository, parseJsonObject, readProviderPush, type ProviderName } from '../../protocol';

const FIXTURES = join(__dirname, '../support/fixtures/providers');
type Payload = Record<string, unknown>;
const fixture = (name: string): Payload => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as Payload;
const githubPush = structuredClone(webhookExamples.find((d) => d.name === 'push')!.examples[4]) as unknown as Payload;

function read(provider: ProviderName, payload: Payload) {
  const push = readProviderPush(provider, payload);
  if ('field' in push) throw new Error(`${push.field} ${push.reason}`);
  return push;
}

describe('provider push payloads', () => {
  it('reads the repository a payload claims, before anything is verified', () => {
    expect(claimedRepository('github', githubPush)).toEqual({ name: 'Hello-World', fullName: 'Codertocat/Hello-World' });
    expect(claimedRepository('gitlab', fixture('gitlab-push.json'))).toEqual({ name: 'Diaspora', fullName: 'mike/diaspora' });
    expect(claimedRepository('gitea', fixture('gitea-push.json'))).toEqual({ name: 'webhooks', fullName: 'gitea/webhooks' });
    expect(claimedRepository('bitbucket', fixture('bitbucket-push.json'))).toEqual({ name: 'repo_name', fullName: 'team_name/repo_name' });
    // GitLab before 8.5 sent only repository.name.
    expect(claimedRepository('gitlab', { repository: { name: 'Diaspora' } })).toEqual({ name: 'Diaspora' });
    expect(claimedRepository('github', { repository: { name: 42 } })).toBeUndefined();
    expect(claimedRepository('github', { zen: 'no repository' })).toBeUndefined();
  });

  it('parses only JSON objects', () => {
    expect(parseJsonObject('{"a":1}')).toEqual({ a: 1 });
    expect(parseJsonObject('[1]')).toBeUndefined();
    expect(parseJsonObject('null')).toBeUndefined();
    expect(parseJsonObject('{"a":')).toBeUndefined();
  });

  it("reads GitHub's push: branch, after as the commit, pusher.name; before of zeros is no previous commit", () => {
    expect(read('github', githubPush)).toEqual({
      repository: { name: 'Hello-World', fullName: 'Codertocat/Hello-World' },
      pusher: 'Codertocat',
      updates: [{ kind: 'branch', branch: 'master', commit: '6113728f27ae82c7b1a177c8d03f9e96e0adf246' }],
    });
    const update = read('github', { ...githubPush, ref: 'refs/heads/feature/x/y', before: 'a'.repeat(40) }).updates[0];
    expect(update).toEqual({
      kind: 'branch',
      branch: 'feature/x/y',
      commit: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
      previousCommit: 'a'.repeat(40),
    });
  });

  it('tells a deleted branch, a tag and another ref from a branch push', () => {
    expect(read('github', { ...githubPush, deleted: true }).updates).toEqual([{ kind: 'branch-deleted', branch: 'master' }]);
    expect(read('gitea', { ...fixture('gitea-push.json'), after: '0'.repeat(40) }).updates).toEqual([
      { kind: 'branch-deleted', branch: 'develop' },
    ]);
    expect(read('github', { ...githubPush, ref: 'refs/tags/v1' }).updates).toEqual([{ kind: 'tag', tag: 'v1' }]);
    expect(read('github', { ...githubPush, ref: 'refs/notes/commits' }).updates).toEqual([{ kind: 'other', ref: 'refs/notes/commits' }]);
    expect(read('github', { ...githubPush, ref: 'refs/heads/' }).updates).toEqual([{ kind: 'other', ref: 'refs/heads/' }]);
  });

  it('takes SHA-256 commit ids (64 hex digits) and refuses anything else as a commit', () => {
    const sha256 = 'e'.repeat(64);
    expect(read('github', { ...githubPush, after: sha256 }).updates[0]).toMatchObject({ commit: sha256 });
    expect(readProviderPush('github', { ...githubPush, after: 'HEAD' })).toEqual({
      field: 'after',
      reason: 'must be a commit id (40 or 64 hex digits)',
    });
    expect(readProviderPush('github', { ...githubPush, after: `${'a'.repeat(40)}\n` })).toMatchObject({ field: 'after' });
    expect(readProviderPush('github', { ...githubPush, ref: 5 })).toEqual({ field: 'ref', reason: 'must be a non-empty string' });
    expect(readProviderPush('github', { ...githubPush, repository: null })).toMatchObject({ field: 'repository' });
  });

  it("reads GitLab's push: checkout_sha as the commit, user_username as the pusher; null checkout_sha is a deletion", () => {
    const gitlab = fixture('gitlab-push.json');
    expect(read('gitlab', gitlab)).toEqual({
      repository: { name: 'Diaspora', fullName: 'mike/diaspora' },
      pusher: 'jsmith',
      updates: [
        {
          kind: 'branch',
          branch: 'master',
          commit: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
          previousCommit: '95790bf891e76fee5e1747ab589903a6a1f80f22',
        },
      ],
    });
    expect(read('gitlab', { ...gitlab, after: '0'.repeat(40), checkout_sha: null }).updates).toEqual([
      { kind: 'branch-deleted', branch: 'master' },
    ]);
    expect(read('gitlab', fixture('gitlab-tag-push.json')).updates).toEqual([{ kind: 'tag', tag: 'v1.0.0' }]);
    expect(readProviderPush('gitlab', { ...gitlab, checkout_sha: 7 })).toMatchObject({ field: 'checkout_sha' });
  });

  it("reads Gitea's push: pusher.login as the pusher", () => {
    expect(read('gitea', fixture('gitea-push.json'))).toEqual({
      repository: { name: 'webhooks', fullName: 'gitea/webhooks' },
      pusher: 'gitea',
      updates: [
        {
          kind: 'branch',
          branch: 'develop',
          commit: 'bffeb74224043ba2feb48d137756c8a9331c449a',
          previousCommit: '28e1879d029cb852e4844d9c718537df08844e03',
        },
      ],
    });
  });

  it("reads every change of Bitbucket's push: branches, tags, deleted branches", () => {
    const bitbucket = fixture('bitbucket-push.json');
    const [change] = (bitbucket.push as { changes: Payload[] }).changes;
    const changes = [
      change,
      { ...change, new: { type: 'branch', name: 'develop', target: { hash: 'd'.repeat(40) } }, old: null },
      { ...change, new: { type: 'tag', name: 'v2', target: { hash: 'd'.repeat(40) } }, old: null },
      { ...change, new: null, old: { type: 'branch', name: 'gone', target: { hash: 'd'.repeat(40) } }, closed: true },
      { ...change, new: { type: 'named_branch', name: 'default', target: { hash: 'd'.repeat(40) } } },
    ];
    expect(read('bitbucket', { ...bitbucket, push: { changes } })).toEqual({
      repository: { name: 'repo_name', fullName: 'team_name/repo_name' },
      pusher: 'Emma',
      updates: [
        {
          kind: 'branch',
          branch: 'name-of-branch',
          commit: '709d658dc5b6d6afcd46049c2f332ee3f515a67d',
          previousCommit: '1e65c05c1d5171631d92438a13901ca7dae9618c',
        },
        { kind: 'branch', branch: 'develop', commit: 'd'.repeat(40) },
        { kind: 'tag', tag: 'v2' },
        { kind: 'branch-deleted', branch: 'gone' },
        { kind: 'other', ref: 'named_branch:default' },
      ],
    });
    expect(
      readProviderPush('bitbucket', { ...bitbucket, push: { changes: [{ ...change, new: { type: 'branch', name: 'x', target: {} } }] } }),
    ).toEqual({
      field: 'push.changes[0].new.target.hash',
      reason: 'must be a commit id (40 or 64 hex digits)',
    });
  });

  it('passes on a pusher only when it is printable text, trying the next name otherwise', () => {
    expect(read('github', { ...githubPush, pusher: { name: 'evil\u0000name' }, sender: { login: 'octocat' } }).pusher).toBe('octocat');
    expect(read('gitea', { ...fixture('gitea-push.json'), pusher: { login: 'line\nbreak' } }).pusher).toBeUndefined();
    expect(read('bitbucket', { ...fixture('bitbucket-push.json'), actor: { nickname: 'emma', display_name: 'Emma' } }).pusher).toBe('emma');
  });
});
