import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import {
  providerDeliveryId,
  providerJsonPayload,
  providerRequestHeaders,
  readProviderSignature,
  triggerNamesRepository,
  type HeaderReader,
} from '../../protocol';
import { signWithOctokit } from '../support/octokit-signer';

const SECRET = 'the-webhook-secret-of-this-repository';
const reader =
  (headers: Record<string, string>): HeaderReader =>
  (name) =>
    headers[name];
const verified = (result: ReturnType<typeof readProviderSignature>, token: string) =>
  'verify' in result ? result.verify(token) : result.unsigned;

describe('a provider request before any token is tried', () => {
  const body = Buffer.from('{"ref":"refs/heads/main","repository":{"name":"app","full_name":"team/app"}}');

  test('GitHub: X-Hub-Signature-256 over the raw body, signed by @octokit/webhooks-methods; ping is its test event', async () => {
    const [signature] = await signWithOctokit(SECRET, [body.toString()]);
    const push = readProviderSignature('github', reader({ 'x-hub-signature-256': signature!, 'x-github-event': 'push' }), body);
    expect(verified(push, SECRET)).toBe(true);
    expect(verified(push, `${SECRET}!`)).toBe(false);
    expect(push).toMatchObject({ provider: 'github', event: 'push', ping: false, signatureName: 'X-Hub-Signature-256' });
    expect(readProviderSignature('github', reader({ 'x-hub-signature-256': signature!, 'x-github-event': 'ping' }), body)).toMatchObject({
      ping: true,
    });
    expect(readProviderSignature('github', reader({}), body)).toEqual({ unsigned: 'no X-Hub-Signature-256' });
    expect(readProviderSignature('github', reader({ 'x-hub-signature-256': 'sha256=zz' }), body)).toEqual({
      unsigned: 'X-Hub-Signature-256 is not sha256=<64 hex digits>',
    });
  });

  test('Gitea/Forgejo: the hex HMAC covers the JSON payload, also when it is a form field', () => {
    const form = Buffer.from(new URLSearchParams({ payload: body.toString() }).toString());
    const hex = createHmac('sha256', SECRET).update(body).digest('hex');
    const request = readProviderSignature(
      'gitea',
      reader({ 'content-type': 'application/x-www-form-urlencoded', 'x-forgejo-signature': hex }),
      form,
    );
    expect(verified(request, SECRET)).toBe(true);
    expect(request).toMatchObject({ payload: body, signatureName: 'X-Forgejo-Signature' });
    expect(providerJsonPayload('application/x-www-form-urlencoded', Buffer.from('other=1'))).toEqual(Buffer.from('other=1'));
  });

  test('Bitbucket: X-Hub-Signature (sha256=) over the raw body', () => {
    const request = readProviderSignature(
      'bitbucket',
      reader({ 'x-hub-signature': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`, 'x-event-key': 'repo:push' }),
      body,
    );
    expect(verified(request, SECRET)).toBe(true);
    expect(request).toMatchObject({ event: 'repo:push', ping: false });
  });

  test('GitLab: a signing token (Standard Webhooks, signed by the standardwebhooks library) or the secret token as sent', () => {
    const key = `whsec_${Buffer.from('a-gitlab-signing-key-32-bytes-long!!').toString('base64')}`;
    const timestamp = new Date();
    const signature = new Webhook(key).sign('msg_1', timestamp, body.toString());
    const signed = readProviderSignature(
      'gitlab',
      reader({
        'webhook-id': 'msg_1',
        'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
        'webhook-signature': signature,
      }),
      body,
    );
    expect(verified(signed, key)).toBe(true);
    expect(verified(signed, SECRET)).toBe(false);
    expect(verified(readProviderSignature('gitlab', reader({ 'x-gitlab-token': SECRET }), body), SECRET)).toBe(true);
    expect(readProviderSignature('gitlab', reader({ 'webhook-signature': signature }), body)).toEqual({
      unsigned: 'webhook-id is missing',
    });
    expect(readProviderSignature('gitlab', reader({}), body)).toEqual({ unsigned: 'no X-Gitlab-Token or webhook-signature' });
  });

  test('the headers a verifier forwards are exactly those the receiver reads, and the delivery id comes first from its own header', () => {
    expect(providerRequestHeaders('github')).toEqual([
      'content-type',
      'user-agent',
      'x-github-event',
      'x-github-delivery',
      'x-hub-signature-256',
    ]);
    expect(providerRequestHeaders('gitlab')).toEqual(
      expect.arrayContaining([
        'x-gitlab-event',
        'x-gitlab-token',
        'webhook-id',
        'webhook-timestamp',
        'webhook-signature',
        'idempotency-key',
        'x-gitlab-event-uuid',
      ]),
    );
    expect(providerRequestHeaders('gitea')).toEqual(
      expect.arrayContaining(['x-gitea-signature', 'x-forgejo-signature', 'x-gitea-delivery', 'x-forgejo-delivery']),
    );
    expect(providerDeliveryId('gitlab', reader({ 'webhook-id': 'a', 'x-gitlab-event-uuid': 'b' }))).toBe('a');
    expect(providerDeliveryId('bitbucket', reader({ 'x-request-uuid': 'c' }))).toBe('c');
  });

  test("a trigger names a claimed repository by the receiver's rule", () => {
    expect(triggerNamesRepository('team/app', { name: 'app', fullName: 'team/app' })).toBe(true);
    expect(triggerNamesRepository('other/app', { name: 'app', fullName: 'team/app' })).toBe(false);
    expect(triggerNamesRepository('app', { name: 'app', fullName: 'team/app' })).toBe(true);
    expect(triggerNamesRepository('diaspora', { name: 'Diaspora', fullName: 'mike/diaspora' })).toBe(true);
    expect(triggerNamesRepository('team/app', { name: 'app' })).toBe(false);
  });
});
