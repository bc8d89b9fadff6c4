/**
 * Deploys over SSH with a deploy key, against a real OpenSSH server on 127.0.0.1 (its own host
 * key and authorized_keys), real git and the real runner. Keys are made by ssh-keygen, as a user
 * makes one, and by newDeployKey, as the stack makes one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { newDeployKey, PINNED_KNOWN_HOSTS } from '../../../../protocol';
import type { RunRecord } from '../../../../receiver/runs/run-record';
import type { Runner } from '../../../../receiver/runs/runner';
import { sshdMissing, sshKeygen, startSshd, type Sshd } from '../../../support/sshd';
import { startTestReceiver } from '../../../support/receiver-fixture';
import { logText, makeDelivery, makeStateDir, makeTrigger, openRunner, removeDir } from '../../../support/runner-harness';
import { waitFor } from '../../../support/wait-for';
import { sourceRepo, type SourceRepo } from '../../../support/git-repo';

const missing = sshdMissing();
if (missing) process.stderr.write(`deploy over SSH tests skipped: ${missing}\n`);
const describeWithSshd = missing ? describe.skip : describe;

describeWithSshd('deploys over SSH with a deploy key', () => {
  let dir: string;
  let sshd: Sshd;
  let repo: SourceRepo;
  let runner: Runner | undefined;
  let userKey: { privateKey: string; publicKey: string };
  let stackKey: { privateKey: string; publicKey: string };
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    dir = makeStateDir();
    sshd = await startSshd(path.join(dir, 'sshd'));
    repo = sourceRepo(dir);
    userKey = sshKeygen(dir, 'user_key');
    stackKey = newDeployKey('git-triggler test app');
    sshd.authorize(userKey.publicKey);
    sshd.authorize(stackKey.publicKey);
    secrets.set('app/deploy-key', userKey.privateKey);
    secrets.set('app/stack-key', stackKey.privateKey);
    // An authorized_keys line is not a private key.
    secrets.set('app/public-half', userKey.publicKey);
    secrets.set('app/unauthorized', sshKeygen(dir, 'stranger_key').privateKey);
  });
  afterAll(async () => {
    await sshd?.close();
    removeDir(dir);
  });
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
  });

  const stateDir = (): string => path.join(dir, 'state');

  async function deploy(
    name: string,
    fields: { sshKey?: string; knownHosts?: string[] },
    commit: string,
    inStateDir = stateDir(),
  ): Promise<{ run: RunRecord; log: string; deployPath: string }> {
    const deployPath = path.join(dir, 'srv', name);
    ({ runner } = await openRunner({
      stateDir: inStateDir,
      triggers: [
        makeTrigger({
          command: 'cat index.html > built.txt',
          timeoutSeconds: 60,
          deploy: { repositoryUrl: sshd.url(path.join(dir, 'origin.git')), path: deployPath, ...fields },
        }),
      ],
      secretNamed: async (secret) => secrets.get(secret),
    }));
    const { runId } = await runner.accept(makeDelivery({ commit }));
    await runner.idle();
    const run = runner.history.run(runId)!;
    return { run, log: await logText(runner, run), deployPath };
  }

  it('fetches with a key ssh-keygen made, the host checked against knownHosts, and removes the key file afterwards', async () => {
    const commit = repo.commit({ 'index.html': 'over ssh' });
    const { run, log, deployPath } = await deploy('user-key', { sshKey: 'app/deploy-key', knownHosts: [sshd.knownHostsLine] }, commit);
    expect(run.status).toBe('succeeded');
    expect(run.deploy?.commit).toBe(commit);
    expect(fs.readFileSync(path.join(deployPath, 'current', 'built.txt'), 'utf8')).toBe('over ssh');
    expect(log).toContain(`ssh to [127.0.0.1]:${sshd.port} with the deploy key app/deploy-key, its host checked against deploy.knownHosts`);
    // The key reached ssh from a file of its own, gone once the fetch was over.
    expect(fs.readdirSync(path.join(stateDir(), 'ssh'))).toEqual([]);
    expect(sshd.log()).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1 .* ED25519 SHA256:/);
    expect(log).not.toContain('PRIVATE KEY');
    expect(log).not.toContain(userKey.privateKey.split('\n')[1]);
  });

  // A shell reads GIT_SSH_COMMAND, then ssh splits each option into words (its own quotes and
  // backslashes) and expands % and $ in the two paths.
  it.each([['state with \'quote\' "double" back\\slash 100%h $HOME'], ["o'brien"], ['a\\b"c%%d']])(
    'takes a state directory named %s',
    async (name) => {
      const odd = path.join(dir, name);
      const { run, log } = await deploy(
        `odd-${Buffer.from(name).toString('hex').slice(0, 16)}`,
        { sshKey: 'app/deploy-key', knownHosts: [sshd.knownHostsLine] },
        repo.commit({ 'index.html': 'odd' }),
        odd,
      );
      if (run.status !== 'succeeded') console.log(log);
      expect(run.status).toBe('succeeded');
      expect(fs.statSync(path.join(odd, 'ssh')).mode & 0o777).toBe(0o700);
    },
  );

  it('refuses a state directory whose path holds "${", which ssh cannot be given, naming it', async () => {
    const odd = path.join(dir, 'state ${HOME}');
    const { run } = await deploy(
      'refused',
      { sshKey: 'app/deploy-key', knownHosts: [sshd.knownHostsLine] },
      repo.commit({ 'index.html': 'refused' }),
      odd,
    );
    expect(run.status).toBe('failed');
    expect(run.error).toBe(`the state directory's path ${odd} holds "\${", which ssh's options cannot carry`);
    expect(fs.existsSync(path.join(odd, 'ssh'))).toBe(false);
  });

  it('fetches with a key the stack would generate (newDeployKey): sshd takes its format', async () => {
    const commit = repo.commit({ 'index.html': 'stack key' });
    const { run, deployPath } = await deploy('stack-key', { sshKey: 'app/stack-key', knownHosts: [sshd.knownHostsLine] }, commit);
    expect(run.status).toBe('succeeded');
    expect(fs.readFileSync(path.join(deployPath, 'current', 'built.txt'), 'utf8')).toBe('stack key');
  });

  it('refuses a host whose key is not the pinned one: the run fails and nothing is switched', async () => {
    const commit = repo.commit({ 'index.html': 'impostor' });
    // Another server's key for the same name: what a machine in the middle would present.
    const other = sshKeygen(dir, 'other_host_key').publicKey.split(' ').slice(0, 2).join(' ');
    const { run, log, deployPath } = await deploy(
      'wrong-host',
      { sshKey: 'app/deploy-key', knownHosts: [`[127.0.0.1]:${sshd.port} ${other}`] },
      commit,
    );
    expect(run.status).toBe('failed');
    expect(log).toContain('Host key verification failed');
    // ssh's advice names this fetch's own known_hosts copy; the log says what to change instead.
    expect(log).toContain('"Host key verification failed" means the host\'s key is not among deploy.knownHosts');
    expect(fs.existsSync(path.join(deployPath, 'current'))).toBe(false);
    expect(fs.readdirSync(path.join(stateDir(), 'ssh'))).toEqual([]);
  });

  it('without knownHosts only the pinned provider keys are trusted, and none is pinned for 127.0.0.1', async () => {
    // The config refuses this at load (no pinned keys for the host); a runner given it anyway fails the run.
    const commit = repo.commit({ 'index.html': 'unpinned' });
    const { run, log } = await deploy('unpinned', { sshKey: 'app/deploy-key' }, commit);
    expect(run.status).toBe('failed');
    expect(log).toContain(`no host keys are known for [127.0.0.1]:${sshd.port}: give them in deploy.knownHosts`);
    expect(PINNED_KNOWN_HOSTS.some((line) => line.startsWith('[127.0.0.1]'))).toBe(false);
  });

  it('a key the server does not know is refused by it, and the run says so', async () => {
    const commit = repo.commit({ 'index.html': 'stranger' });
    const { run, log } = await deploy('stranger', { sshKey: 'app/unauthorized', knownHosts: [sshd.knownHostsLine] }, commit);
    expect(run.status).toBe('failed');
    expect(log).toContain('Permission denied (publickey)');
    // The server was never read, so the run does not claim it lacks the commit.
    expect(run.error).toBe(`cannot fetch from ${sshd.url(path.join(dir, 'origin.git'))} (the log has git's reason); nothing was switched`);
  });

  it('names a missing key and a public key given for a private one, without quoting either', async () => {
    const missingRun = await deploy(
      'missing',
      { sshKey: 'app/no-such-key', knownHosts: [sshd.knownHostsLine] },
      repo.commit({ 'index.html': 'a' }),
    );
    expect(missingRun.run.status).toBe('failed');
    expect(missingRun.run.error).toBe('there is no deploy key named app/no-such-key (deploy.sshKey) in the token file or SSM');
    await runner!.close();
    const publicRun = await deploy(
      'public',
      { sshKey: 'app/public-half', knownHosts: [sshd.knownHostsLine] },
      repo.commit({ 'index.html': 'b' }),
    );
    expect(publicRun.run.status).toBe('failed');
    expect(publicRun.run.error).toBe(
      'the deploy key app/public-half (deploy.sshKey) cannot be used: it is a public key: give the private half',
    );
    expect(publicRun.log).not.toContain(userKey.publicKey.split(' ')[1]);
  });

  it('a key file a crashed fetch left is removed when the runner opens', async () => {
    const leftover = path.join(stateDir(), 'ssh', 'run-crashed.key');
    fs.mkdirSync(path.dirname(leftover), { recursive: true, mode: 0o700 });
    fs.writeFileSync(leftover, userKey.privateKey, { mode: 0o600 });
    ({ runner } = await openRunner({ stateDir: stateDir(), triggers: [makeTrigger({ command: 'true' })] }));
    expect(fs.existsSync(leftover)).toBe(false);
  });
});

describe('deploy keys at start-up', () => {
  it('warns about a deploy key the token file lacks or cannot be used, naming it and never quoting it', async () => {
    const dir = makeStateDir();
    const tokenFile = path.join(dir, 'tokens.json');
    const publicHalf = newDeployKey('x').publicKey;
    fs.writeFileSync(tokenFile, JSON.stringify({ 'keys/public': publicHalf, 'keys/good': newDeployKey('y').privateKey }), { mode: 0o600 });
    const deploy = (name: string, sshKey: string) => ({
      repositoryUrl: 'git@github.com:owner/app.git',
      path: path.join(dir, 'srv', name),
      sshKey,
    });
    const token = 'whsec_ZGVwbG95IGtleSB0ZXN0IGRlcGxveSBrZXkgdGVzdA==';
    const receiver = await startTestReceiver(
      {
        tokens: { file: tokenFile },
        triggers: [
          { repository: 'app', branch: 'ok', token, command: 'true', deploy: deploy('c', 'keys/good') },
          { repository: 'app', branch: 'main', token, command: 'true', deploy: deploy('a', 'keys/missing') },
          { repository: 'app', branch: 'dev', token, command: 'true', deploy: deploy('b', 'keys/public') },
        ],
      },
      { dir },
    );
    try {
      const warnings = await waitFor('the deploy key warnings', () => {
        const found = receiver.logs.filter((line) => line.level === 40 && typeof line.sshKey === 'string');
        return found.length >= 2 && found;
      });
      expect(warnings.map((line) => line.msg).sort()).toEqual([
        'deploy key keys/missing (deploy.sshKey): it is not in the token file or SSM; fetches with it will fail',
        'deploy key keys/public (deploy.sshKey): it is a public key: give the private half; fetches with it will fail',
      ]);
      // The usable key, checked first (the checks run in trigger order), drew none.
      expect(receiver.logs.filter((line) => line.sshKey === 'keys/good')).toEqual([]);
      expect(JSON.stringify(receiver.logs)).not.toContain(publicHalf.split(' ')[1]);
    } finally {
      await receiver.dispose();
      removeDir(dir);
    }
  });
});
