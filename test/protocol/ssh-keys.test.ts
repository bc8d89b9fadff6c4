/**
 * Deploy keys and pinned host keys, checked with OpenSSH's own ssh-keygen: the keys we write are
 * keys it reads, and every pinned host key has the fingerprint its provider publishes.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  keyFingerprint,
  knownHostsLineProblem,
  newDeployKey,
  PINNED_KNOWN_HOSTS,
  pinnedKnownHosts,
  privateKeyProblem,
  publicKeyOf,
  sshTarget,
} from '../../protocol';
import { sshKeygen, sshKeygenMissing } from '../support/sshd';

/**
 * The fingerprints the providers publish, copied from their pages: GitHub's "GitHub's SSH key
 * fingerprints", GitLab.com's "SSH host keys fingerprints", Atlassian's "Configure SSH and
 * two-step verification" (Bitbucket Cloud), Codeberg's "SSH fingerprint".
 */
const PUBLISHED: Record<string, string[]> = {
  'github.com': [
    'SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU',
    'SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM',
    'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s',
  ],
  '[ssh.github.com]:443': ['SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU', 'SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM'],
  'gitlab.com': [
    'SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8',
    'SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw',
    'SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ',
  ],
  'bitbucket.org': ['SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM', 'SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0'],
  'codeberg.org': ['SHA256:mIlxA9k46MmM6qdJOdMnAQpzGxF4WIVVL+fj+wZbw0g'],
};

const missing = sshKeygenMissing();
if (missing) process.stderr.write(`ssh-keygen checks of deploy keys skipped: ${missing}\n`);
const withSshKeygen = missing ? describe.skip : describe;

withSshKeygen('checked with ssh-keygen', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-ssh-keys-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const keygen = (...args: string[]): string =>
    execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const writeKey = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return file;
  };

  it('every pinned host key has the fingerprint its provider publishes, and no other is pinned', () => {
    const file = writeKey('pinned_known_hosts', `${PINNED_KNOWN_HOSTS.join('\n')}\n`);
    const listed = keygen('-l', '-f', file)
      .split('\n')
      .map((line) => line.split(' '))
      .map(([, fingerprint, host]) => ({ host: host!, fingerprint: fingerprint! }));
    expect(listed).toHaveLength(PINNED_KNOWN_HOSTS.length);
    for (const { host, fingerprint } of listed) expect(PUBLISHED[host]).toContain(fingerprint);
    expect(Object.keys(PUBLISHED).sort()).toEqual([...new Set(listed.map((entry) => entry.host))].sort());
    // Our own fingerprint function agrees with ssh-keygen's.
    expect(PINNED_KNOWN_HOSTS.map((line) => keyFingerprint(line.split(' ').slice(1).join(' ')))).toEqual(
      listed.map((entry) => entry.fingerprint),
    );
  });

  it('a new deploy key is one ssh-keygen reads, with the public key we print', () => {
    const key = newDeployKey('git-triggler my-stack my-app');
    const file = writeKey('deploy_key', key.privateKey);
    expect(keygen('-y', '-f', file)).toBe(key.publicKey);
    expect(key.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} git-triggler my-stack my-app$/);
    expect(publicKeyOf(key.privateKey)).toBe(key.publicKey);
    expect(keyFingerprint(key.publicKey)).toBe(keygen('-l', '-f', file).split(' ')[1]);
    expect(privateKeyProblem(key.privateKey)).toBeUndefined();
    // Two keys are two keys.
    expect(newDeployKey('x').publicKey).not.toBe(newDeployKey('x').publicKey);
  });

  it('a comment cannot break the key out of its lines', () => {
    const key = newDeployKey('evil\nssh-ed25519 AAAA injected');
    expect(key.publicKey.split('\n')).toHaveLength(1);
    expect(keygen('-y', '-f', writeKey('comment_key', key.privateKey))).toBe(key.publicKey);
  });

  it('reads the public half of a key ssh-keygen made', () => {
    const made = sshKeygen(dir, 'made_by_keygen');
    expect(publicKeyOf(made.privateKey)).toBe(made.publicKey);
  });

  it('takes the known_hosts lines ssh-keygen reads and refuses the ones it does not: whole keys of every type, not cut ones', () => {
    const readable = (line: string): boolean => {
      try {
        keygen('-l', '-f', writeKey('one_known_host', `${line}\n`));
        return true;
      } catch {
        return false;
      }
    };
    const sshString = (bytes: Buffer | string): Buffer => {
      const body = Buffer.from(bytes);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(body.length);
      return Buffer.concat([length, body]);
    };
    const made = (
      [['ed25519'], ['rsa', '-b', '2048'], ['ecdsa', '-b', '256'], ['ecdsa', '-b', '384'], ['ecdsa', '-b', '521']] as const
    ).map(([type, ...bits]) => {
      const file = path.join(dir, `host_${type}_${bits.join('')}`);
      keygen('-q', '-t', type, ...bits, '-N', '', '-f', file);
      return fs.readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2) as [string, string];
    });
    // Security-key public keys (PROTOCOL.u2f), written out by hand: reading one needs no device.
    const ed25519 = Buffer.from(made[0]![1], 'base64').subarray(-32);
    made.push([
      'sk-ssh-ed25519@openssh.com',
      Buffer.concat([sshString('sk-ssh-ed25519@openssh.com'), sshString(ed25519), sshString('ssh:')]).toString('base64'),
    ]);
    const nistp256 = Buffer.from(made[2]![1], 'base64');
    made.push([
      'sk-ecdsa-sha2-nistp256@openssh.com',
      Buffer.concat([sshString('sk-ecdsa-sha2-nistp256@openssh.com'), nistp256.subarray(4 + 19), sshString('ssh:')]).toString('base64'),
    ]);
    const lines: string[] = [];
    for (const [type, key] of made) {
      const blob = Buffer.from(key, 'base64');
      lines.push(`host ${type} ${key}`);
      // Cut short at whole base64 groups (so only the structure can tell), by one byte, and with a byte too many.
      for (const groups of [1, 4, 8, Math.floor(key.length / 4) - 1]) lines.push(`host ${type} ${key.slice(0, groups * 4)}`);
      lines.push(`host ${type} ${blob.subarray(0, -1).toString('base64')}`);
      lines.push(`host ${type} ${Buffer.concat([blob, Buffer.from([0])]).toString('base64')}`);
    }
    const verdicts = lines.map((line) => ({ line, ours: knownHostsLineProblem(line) === undefined, sshKeygen: readable(line) }));
    expect(verdicts.filter((v) => v.ours !== v.sshKeygen)).toEqual([]);
    expect(verdicts.filter((v) => v.ours)).toHaveLength(made.length);
    for (const { line, ours } of verdicts)
      if (!ours) expect(knownHostsLineProblem(line)).toBe('has a key that is cut short or not valid base64');
  });

  it('says what is wrong with keys a fetch cannot use, never quoting them', () => {
    const encrypted = path.join(dir, 'encrypted');
    keygen('-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', encrypted);
    expect(privateKeyProblem(fs.readFileSync(encrypted, 'utf8'))).toBe(
      'it is encrypted with a passphrase, which nobody can type for a fetch',
    );
    expect(privateKeyProblem(fs.readFileSync(`${encrypted}.pub`, 'utf8'))).toBe('it is a public key: give the private half');
    const rsaPem = path.join(dir, 'rsa_pem');
    keygen('-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-f', rsaPem);
    expect(privateKeyProblem(fs.readFileSync(rsaPem, 'utf8'))).toBeUndefined();
    const pkcs8 = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    expect(privateKeyProblem(pkcs8)).toBe("it is an ed25519 key in PEM (PKCS#8), which ssh cannot read: write it in OpenSSH's format");
    // ssh-keygen agrees that it cannot.
    expect(() => keygen('-y', '-f', writeKey('pkcs8', pkcs8))).toThrow(/invalid format/);
    expect(privateKeyProblem('whsec_notakey')).toBe('it is not a private key (no "-----BEGIN OPENSSH PRIVATE KEY-----" block)');
    const truncated = newDeployKey('t').privateKey.split('\n');
    const damaged = [truncated[0], truncated[1], truncated.at(-2)].join('\n');
    expect(privateKeyProblem(damaged)).toMatch(/^it is damaged/);
  });
});

describe('which host an SSH URL names', () => {
  it.each([
    ['git@github.com:owner/app.git', { host: 'github.com', port: 22 }],
    ['ssh://git@github.com/owner/app.git', { host: 'github.com', port: 22 }],
    ['ssh://git@ssh.github.com:443/owner/app.git', { host: 'ssh.github.com', port: 443 }],
    ['git+ssh://git@GitLab.com/group/app.git', { host: 'gitlab.com', port: 22 }],
    ['ssh://git@[::1]:2222/srv/app.git', { host: '::1', port: 2222 }],
    ['gitea.example.com:team/app.git', { host: 'gitea.example.com', port: 22 }],
  ])('%s', (url, target) => {
    expect(sshTarget(url)).toEqual(target);
  });

  it.each(['https://github.com/owner/app.git', '/srv/git/app.git', './app.git', 'file:///srv/app.git', 'dir/with:colon'])(
    '%s is not SSH',
    (url) => {
      expect(sshTarget(url)).toBeUndefined();
    },
  );

  it('pins keys for the hosted providers only', () => {
    expect(pinnedKnownHosts({ host: 'github.com', port: 22 })).toHaveLength(3);
    expect(pinnedKnownHosts({ host: 'ssh.github.com', port: 443 })).toHaveLength(2);
    expect(pinnedKnownHosts({ host: 'github.com', port: 2222 })).toEqual([]);
    expect(pinnedKnownHosts({ host: 'gitea.example.com', port: 22 })).toEqual([]);
  });

  it('checks a known_hosts line', () => {
    expect(knownHostsLineProblem(PINNED_KNOWN_HOSTS[0]!)).toBeUndefined();
    expect(knownHostsLineProblem('github.com')).toBe('must be "<host> <key type> <key>", as ssh-keyscan prints it');
    expect(knownHostsLineProblem(`@revoked ${PINNED_KNOWN_HOSTS[0]!}`)).toBe('must not carry a marker (@cert-authority, @revoked)');
    expect(knownHostsLineProblem('|1|abc=|def= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl')).toBe(
      'must name its host in plain text, not hashed',
    );
    expect(knownHostsLineProblem('host ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl')).toBe(
      'has a key whose type is not ssh-rsa',
    );
    expect(knownHostsLineProblem('host ssh-dss AAAA')).toBe('has an unknown key type "ssh-dss"');
  });

  it('says a key is cut short or garbled, not of another type, and names another type only when the key really has one', () => {
    const github = PINNED_KNOWN_HOSTS[0]!.split(' ')[2]!;
    const cut = 'has a key that is cut short or not valid base64';
    for (const line of PINNED_KNOWN_HOSTS) expect([line, knownHostsLineProblem(line)]).toEqual([line, undefined]);
    expect(knownHostsLineProblem('host ssh-ed25519 AAAA')).toBe(cut);
    expect(knownHostsLineProblem('host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPr0LAAZ')).toBe(cut);
    expect(knownHostsLineProblem(`host ssh-ed25519 ${github.slice(0, -4)}`)).toBe(cut);
    expect(knownHostsLineProblem(`host ssh-ed25519 ${github.replace(/=*$/, '').slice(0, -1)}`)).toBe(cut);
    expect(
      knownHostsLineProblem(`host ssh-ed25519 ${Buffer.concat([Buffer.from(github, 'base64'), Buffer.from('x')]).toString('base64')}`),
    ).toBe(cut);
    expect(knownHostsLineProblem('host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GK*l')).toBe(cut);
    expect(
      knownHostsLineProblem(`host ssh-ed25519 ${Buffer.from('\u0000\u0000\u0000\u0003\u0001\u0002\u0003rest').toString('base64')}`),
    ).toBe(cut);
    // An RSA key whose modulus is missing, and one whose modulus is cut short.
    const rsa = Buffer.from(PINNED_KNOWN_HOSTS[2]!.split(' ')[2]!, 'base64');
    expect(knownHostsLineProblem(`host ssh-rsa ${rsa.subarray(0, 4 + 7 + 4 + 3).toString('base64')}`)).toBe(cut);
    expect(knownHostsLineProblem(`host ssh-rsa ${rsa.subarray(0, 60).toString('base64')}`)).toBe(cut);
    // A whole key of one type, labelled another.
    expect(knownHostsLineProblem(`host ecdsa-sha2-nistp256 ${github}`)).toBe('has a key whose type is not ecdsa-sha2-nistp256');
  });
});
