import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { parseSeedHeaders, seedPath, seedSignature, seedSignaturesEqual } from '../../protocol';
import { pythonSeedSignature } from '../support/python-seed';

describe('seed signature', () => {
  it('matches the original algorithm computed by Python hashlib, 1000 rounds', () => {
    const cases: Array<[number, string, string, string]> = [
      [1764300000, 'stello', 'master', 'W9STlWYxY2hati4m71*X2SZFKgb^0UD2N^z^0PdjOp$EQ6@^bR'],
      [1, 'my-repo', 'feature/login', 'a-token-of-sixteen+'],
      [1999999999, 'r', 'b', 'ünïcødé token ✓ with spaces'],
    ];
    for (const [ts, repo, branch, token] of cases) {
      expect(seedSignature(ts, repo, branch, token, 1000)).toBe(pythonSeedSignature(ts, repo, branch, token, 1000));
    }
  });

  it('one round is one hex SHA-256 of "<ts>:<repo>:<branch>:<token>" (openssl)', () => {
    const expected = execFileSync('openssl', ['dgst', '-sha256', '-r'], { input: '1700000000:repo:main:secret-token-value' })
      .toString()
      .split(' ')[0];
    expect(seedSignature(1700000000, 'repo', 'main', 'secret-token-value', 1)).toBe(expected);
  });

  it('defaults to 1000 rounds', () => {
    expect(seedSignature(5, 'a', 'b', 'c')).toBe(seedSignature(5, 'a', 'b', 'c', 1000));
    expect(seedSignature(5, 'a', 'b', 'c', 999)).not.toBe(seedSignature(5, 'a', 'b', 'c', 1000));
  });

  it('changes when any signed part changes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (ts, repo, token) => {
        const base = seedSignature(ts, repo, 'main', token, 3);
        expect(seedSignature(ts + 1, repo, 'main', token, 3)).not.toBe(base);
        expect(seedSignature(ts, `${repo}x`, 'main', token, 3)).not.toBe(base);
        expect(seedSignature(ts, repo, 'main', `${token}x`, 3)).not.toBe(base);
      }),
      { numRuns: 50 },
    );
  });

  it('parses well-formed headers and names the bad one', () => {
    const sig = 'A'.repeat(64);
    expect(parseSeedHeaders('1700000000', sig)).toEqual({ timestamp: 1700000000, signature: 'a'.repeat(64) });
    expect(parseSeedHeaders(undefined, sig)).toEqual({ header: 'X-Signature-Timestamp', reason: 'is missing' });
    expect(parseSeedHeaders('17e8', sig)).toMatchObject({ header: 'X-Signature-Timestamp' });
    expect(parseSeedHeaders('-5', sig)).toMatchObject({ header: 'X-Signature-Timestamp' });
    expect(parseSeedHeaders('1700000000', undefined)).toEqual({ header: 'X-Signature', reason: 'is missing' });
    expect(parseSeedHeaders('1700000000', 'zz')).toMatchObject({ header: 'X-Signature' });
  });

  it('compares signatures exactly', () => {
    const sig = seedSignature(1, 'a', 'b', 'c', 2);
    expect(seedSignaturesEqual(sig, sig)).toBe(true);
    expect(seedSignaturesEqual(sig, `${sig.slice(0, 63)}${sig[63] === '0' ? '1' : '0'}`)).toBe(false);
    expect(seedSignaturesEqual(sig, sig.slice(1))).toBe(false);
  });

  it('builds the original route, encoding what a URL cannot hold', () => {
    expect(seedPath('stello', 'master')).toBe('/stello-master');
    expect(seedPath('my-repo', 'feature/x')).toBe('/my-repo-feature%2Fx');
  });
});
