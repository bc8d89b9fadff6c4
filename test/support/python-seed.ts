import { execFileSync } from 'node:child_process';

/** The original server's algorithm, run by Python's hashlib: an independent implementation. */
export function pythonSeedSignature(ts: number, repo: string, branch: string, token: string, iterations: number): string {
  const script = [
    'import hashlib, sys',
    'ts, repo, branch, token, n = sys.argv[1:6]',
    "h = '%s:%s:%s' % (ts, '%s:%s' % (repo, branch), token)",
    'for _ in range(int(n)): h = hashlib.sha256(h.encode()).hexdigest()',
    'print(h)',
  ].join('\n');
  return execFileSync('python3', ['-c', script, String(ts), repo, branch, token, String(iterations)], { encoding: 'utf8' }).trim();
}
