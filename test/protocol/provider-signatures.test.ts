import crypto, { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { gitlabTokenMatches, parseHexSignature, parseHubSignature, signHubBody, TokenKeys, verifyBodyHmac } from '../../protocol';
import { signWithOctokit } from '../support/octokit-signer';

describe('provider signatures', () => {
  it("verifies GitHub's documented test vector", () => {
    // docs.github.com, "Validating webhook deliveries": secret, payload and the signature GitHub sends.
    const secret = "It's a Secret to Everybody";
    const header = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    const signature = parseHubSignature(header);
    expect(signature).toBeDefined();
    expect(verifyBodyHmac(secret, 'Hello, World!', signature!)).toBe(true);
    expect(verifyBodyHmac(secret, 'Hello, World?', signature!)).toBe(false);
    expect(verifyBodyHmac("It's a Secret to Everybody!", 'Hello, World!', signature!)).toBe(false);
    expect(signHubBody(secret, 'Hello, World!')).toBe(header);
  });

  it('signs exactly as @octokit/webhooks-methods does (unicode, long and short bodies)', async () => {
    const secret = 'a secret with unicode: héllo ✓';
    const bodies = ['{}', '{"ref":"refs/heads/main"}', 'snowman ☃ and emoji 🚀', 'x'.repeat(10_000)];
    const reference = await signWithOctokit(secret, bodies);
    bodies.forEach((body, i) => {
      expect(signHubBody(secret, body)).toBe(reference[i]);
      expect(verifyBodyHmac(secret, Buffer.from(body, 'utf8'), parseHubSignature(reference[i])!)).toBe(true);
    });
  });

  it("verifies with a token's kept keys what @octokit/webhooks-methods signs, as with the token", async () => {
    const secret = 'whsec_a provider secret, prefix and all';
    const keys = new TokenKeys(secret);
    const bodies = ['{"ref":"refs/heads/main"}', 'snowman ☃'];
    const reference = await signWithOctokit(secret, bodies);
    bodies.forEach((body, i) => {
      expect(verifyBodyHmac(keys, Buffer.from(body, 'utf8'), parseHubSignature(reference[i])!)).toBe(true);
      expect(verifyBodyHmac(keys, Buffer.from(`${body}x`, 'utf8'), parseHubSignature(reference[i])!)).toBe(false);
      expect(verifyBodyHmac(new TokenKeys(`${secret}x`), Buffer.from(body, 'utf8'), parseHubSignature(reference[i])!)).toBe(false);
    });
    expect(gitlabTokenMatches(keys, secret)).toBe(true);
    expect(gitlabTokenMatches(keys, `${secret} `)).toBe(false);
  });

  it('refuses a signature of the wrong length without computing an HMAC', () => {
    const hmac = jest.spyOn(crypto, 'createHmac');
    try {
      for (const length of [0, 20, 31, 33]) {
        expect(verifyBodyHmac('secret', '{}', Buffer.alloc(length, 7))).toBe(false);
        expect(verifyBodyHmac(new TokenKeys('secret'), '{}', Buffer.alloc(length, 7))).toBe(false);
      }
      expect(hmac).not.toHaveBeenCalled();
    } finally {
      hmac.mockRestore();
    }
  });

  it('accepts only sha256=<64 hex> in X-Hub-Signature-256 / X-Hub-Signature', () => {
    expect(parseHubSignature(undefined)).toBeUndefined();
    expect(parseHubSignature('')).toBeUndefined();
    expect(parseHubSignature(`sha1=${'a'.repeat(40)}`)).toBeUndefined();
    expect(parseHubSignature(`sha256=${'a'.repeat(63)}`)).toBeUndefined();
    expect(parseHubSignature(`sha256=${'g'.repeat(64)}`)).toBeUndefined();
    expect(parseHubSignature('a'.repeat(64))).toBeUndefined();
    expect(parseHubSignature(`sha256=${'AB'.repeat(32)}`)).toEqual(Buffer.alloc(32, 0xab));
  });

  it('accepts only 64 bare hex digits in X-Gitea-Signature', () => {
    expect(parseHexSignature(undefined)).toBeUndefined();
    expect(parseHexSignature(`sha256=${'a'.repeat(64)}`)).toBeUndefined();
    expect(parseHexSignature('a'.repeat(65))).toBeUndefined();
    expect(parseHexSignature('0f'.repeat(32))).toEqual(Buffer.alloc(32, 0x0f));
  });

  it('verifies a Gitea signature computed the way Gitea computes it (hex HMAC-SHA256 of the payload)', () => {
    const payload = '{"ref":"refs/heads/develop"}';
    const hex = createHmac('sha256', 'gitea secret').update(payload).digest('hex');
    expect(verifyBodyHmac('gitea secret', payload, parseHexSignature(hex)!)).toBe(true);
    expect(verifyBodyHmac('other secret', payload, parseHexSignature(hex)!)).toBe(false);
  });

  it('any change to the body or the secret fails verification', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.nat(), (secret, bytes, at) => {
        const body = Buffer.from(bytes);
        const signature = parseHubSignature(signHubBody(secret, body))!;
        expect(verifyBodyHmac(secret, body, signature)).toBe(true);
        const tampered = Buffer.from(body);
        tampered[at % tampered.length]! ^= 0x01;
        expect(verifyBodyHmac(secret, tampered, signature)).toBe(false);
        expect(verifyBodyHmac(`${secret}x`, body, signature)).toBe(false);
      }),
    );
  });

  it('compares a GitLab secret token exactly, whatever the lengths', () => {
    expect(gitlabTokenMatches('gitlab-secret-token', 'gitlab-secret-token')).toBe(true);
    expect(gitlabTokenMatches('gitlab-secret-token', 'gitlab-secret-toke')).toBe(false);
    expect(gitlabTokenMatches('gitlab-secret-token', 'gitlab-secret-token ')).toBe(false);
    expect(gitlabTokenMatches('gitlab-secret-token', '')).toBe(false);
    expect(gitlabTokenMatches('gitlab-secret-token', 'GITLAB-SECRET-TOKEN')).toBe(false);
  });
});
