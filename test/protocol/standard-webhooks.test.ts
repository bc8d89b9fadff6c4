import crypto from 'node:crypto';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import {
  parseStandardHeaders,
  signStandardWebhook,
  standardWebhookHeaders,
  standardWebhookKey,
  TokenKeys,
  verifyStandardWebhook,
  type StandardHeaders,
} from '../../protocol';

const WHSEC = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const RAW = 'a plain token that is long enough';

/** The reference library takes base64 keys; a raw token is its UTF-8 bytes, base64-encoded. */
function referenceFor(token: string): Webhook {
  return token.startsWith('whsec_') ? new Webhook(token) : new Webhook(Buffer.from(token, 'utf8').toString('base64'));
}

function parsed(headers: Record<string, string>): StandardHeaders {
  const result = parseStandardHeaders(headers['webhook-id'], headers['webhook-timestamp'], headers['webhook-signature']);
  if ('header' in result) throw new Error(`${result.header} ${result.reason}`);
  return result;
}

describe('Standard Webhooks', () => {
  const now = Math.floor(Date.now() / 1000);

  it.each([WHSEC, RAW])('verifies what the standardwebhooks library signs (%#)', (token) => {
    const body = JSON.stringify({ type: 'git.push', data: { commit: 'abc' } });
    const signature = referenceFor(token).sign('msg_1', new Date(now * 1000), body);
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(now), 'webhook-signature': signature };
    expect(verifyStandardWebhook(token, parsed(headers), Buffer.from(body))).toBe(true);
  });

  it.each([WHSEC, RAW])('signs what the standardwebhooks library verifies (%#)', (token) => {
    const body = '{"type":"git.push","data":{"branch":"main"}}';
    const headers = standardWebhookHeaders(token, 'msg_2', now, body);
    expect(referenceFor(token).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it.each([WHSEC, RAW])("verifies with a token's kept keys what the standardwebhooks library signs, as with the token (%#)", (token) => {
    const keys = new TokenKeys(token);
    const body = JSON.stringify({ type: 'git.push', data: { commit: 'def' } });
    const headers = parsed({
      'webhook-id': 'msg_keys',
      'webhook-timestamp': String(now),
      'webhook-signature': referenceFor(token).sign('msg_keys', new Date(now * 1000), body),
    });
    // Twice: the second check uses the key imported by the first.
    expect(verifyStandardWebhook(keys, headers, Buffer.from(body))).toBe(true);
    expect(verifyStandardWebhook(keys, headers, Buffer.from(body))).toBe(true);
    expect(verifyStandardWebhook(keys, headers, Buffer.from(`${body} `))).toBe(false);
    expect(verifyStandardWebhook(new TokenKeys('another token, long enough'), headers, Buffer.from(body))).toBe(false);
  });

  it('refuses signatures of the wrong length without computing an HMAC', () => {
    const hmac = jest.spyOn(crypto, 'createHmac');
    try {
      const body = Buffer.from('{}');
      for (const length of [0, 31, 33, 64]) {
        const headers: StandardHeaders = { id: 'msg_len', timestamp: now, signatures: [Buffer.alloc(length, 1)] };
        expect(verifyStandardWebhook(WHSEC, headers, body)).toBe(false);
        expect(verifyStandardWebhook(new TokenKeys(WHSEC), headers, body)).toBe(false);
      }
      expect(hmac).not.toHaveBeenCalled();
    } finally {
      hmac.mockRestore();
    }
  });

  it('reads the whsec_ key as base64 and any other token as UTF-8 bytes', () => {
    expect(standardWebhookKey(WHSEC)).toEqual(Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64'));
    expect(standardWebhookKey(RAW)).toEqual(Buffer.from(RAW, 'utf8'));
  });

  it('accepts any one of several signatures (key rotation) and ignores other versions', () => {
    const body = Buffer.from('{}');
    const good = signStandardWebhook(WHSEC, 'msg_3', now, body);
    const other = signStandardWebhook('another token, long enough', 'msg_3', now, body);
    const headers = parsed({ 'webhook-id': 'msg_3', 'webhook-timestamp': String(now), 'webhook-signature': `v1a,abc ${other} ${good}` });
    expect(headers.signatures).toHaveLength(2);
    expect(verifyStandardWebhook(WHSEC, headers, body)).toBe(true);
    expect(verifyStandardWebhook('a third token, long enough', headers, body)).toBe(false);
  });

  it('names the header that is missing or malformed', () => {
    const sig = signStandardWebhook(WHSEC, 'id', now, '');
    expect(parseStandardHeaders(undefined, '1', sig)).toEqual({ header: 'webhook-id', reason: 'is missing' });
    expect(parseStandardHeaders('has space', '1', sig)).toMatchObject({ header: 'webhook-id' });
    expect(parseStandardHeaders('id', undefined, sig)).toEqual({ header: 'webhook-timestamp', reason: 'is missing' });
    expect(parseStandardHeaders('id', '1.5', sig)).toMatchObject({ header: 'webhook-timestamp' });
    expect(parseStandardHeaders('id', '1', undefined)).toEqual({ header: 'webhook-signature', reason: 'is missing' });
    expect(parseStandardHeaders('id', '1', 'v1,notbase64!')).toMatchObject({ header: 'webhook-signature' });
    expect(parseStandardHeaders('id', '1', 'v2,abc')).toEqual({ header: 'webhook-signature', reason: 'has no v1 signature' });
  });

  it('accepts no mutation of a signed message (id, timestamp, body or signature)', () => {
    const token = WHSEC;
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }).filter((s) => /^[\x21-\x7e]+$/.test(s)),
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.nat({ max: 4 }),
        fc.nat(),
        (id, bodyBytes, which, seed) => {
          const body = Buffer.from(bodyBytes);
          const headers = parsed(standardWebhookHeaders(token, id, now, body));
          expect(verifyStandardWebhook(token, headers, body)).toBe(true);
          const mutated = { ...headers, signatures: [...headers.signatures] };
          let mutatedBody = body;
          if (which === 0) mutated.id = `${id}x`;
          else if (which === 1) mutated.timestamp = now + 1 + (seed % 1000);
          else if (which === 2) mutatedBody = Buffer.concat([body, Buffer.from([seed % 256])]);
          else if (which === 3 && body.length > 0) {
            mutatedBody = Buffer.from(body);
            mutatedBody[seed % body.length] = (mutatedBody[seed % body.length]! + 1 + (seed % 255)) % 256;
          } else {
            const sig = Buffer.from(mutated.signatures[0]!);
            sig[seed % sig.length] = sig[seed % sig.length]! ^ (1 + (seed % 255));
            mutated.signatures = [sig];
          }
          expect(verifyStandardWebhook(token, mutated, mutatedBody)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
