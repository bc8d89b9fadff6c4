/**
 * Deploys through the real receiver in a child process (`bin/triggler.js serve`), pushes signed
 * like a sender signs them, the real CLI for `releases` and `rollback`, and a SIGKILL mid-deploy.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { request } from 'undici';
import { buildDeliveryRequest } from '../../../../protocol';
import type { RunRecord } from '../../../../receiver/runs/run-record';
import { ReleaseLayout } from '../../../../receiver/runs/deploy/release-layout';
import { tempDir } from '../../../support/receiver-fixture';
import { sshdMissing, sshKeygen, startSshd } from '../../../support/sshd';
import { waitFor } from '../../../support/wait-for';
import { sourceRepo, type SourceRepo } from '../../../support/git-repo';

const CLI = path.resolve(__dirname, '..', '..', '..', '..', 'bin', 'triggler.js');
const TOKEN = 'whsec_ZGVwbG95IHRlc3Qga2V5IGRlcGxveSB0ZXN0IGtleQ==';

interface Serving {
  child: ChildProcess;
  url: string;
  adminUrl: string;
}

function serve(configFile: string): Promise<Serving> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === 'receiver listening') resolve({ child, url: String(entry.url), adminUrl: String(entry.adminUrl) });
    });
  });
}

async function stop(serving: Serving | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!serving || serving.child.exitCode !== null || serving.child.signalCode !== null) return;
  const exited = new Promise((resolve) => serving.child.once('exit', resolve));
  serving.child.kill(signal);
  await exited;
}

async function push(serving: Serving, commit: string): Promise<string> {
  const delivery = buildDeliveryRequest({
    scheme: 'standard',
    token: TOKEN,
    id: `msg_${commit}`,
    timestamp: Math.floor(Date.now() / 1000),
    data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit, source: 'test' },
  });
  const response = await request(`${serving.url}${delivery.path}`, { method: 'POST', headers: delivery.headers, body: delivery.body });
  const body = (await response.body.json()) as { run: { id: string } };
  expect(response.statusCode).toBe(202);
  return body.run.id;
}

async function runOf(serving: Serving, id: string): Promise<RunRecord> {
  const response = await request(`${serving.adminUrl}/runs/${id}`);
  return ((await response.body.json()) as { run: RunRecord }).run;
}

const finished = (serving: Serving, id: string): Promise<RunRecord> =>
  waitFor(`run ${id} to finish`, async () => {
    const run = await runOf(serving, id);
    return !['pending', 'running'].includes(run.status) && run;
  });

/** The pid a slow step writes once it runs. */
async function pidIn(file: string): Promise<number> {
  await waitFor(`a pid in ${file}`, () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim() !== '');
  return Number(fs.readFileSync(file, 'utf8'));
}

/** A command the SIGKILLed receiver left running: the test's to end. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

const cli = (...args: string[]): Promise<{ stdout: string; stderr: string }> =>
  promisify(execFile)(process.execPath, [CLI, ...args], { encoding: 'utf8' });

describe('deploys through the receiver process', () => {
  let dir: string;
  let repo: SourceRepo;
  let deployPath: string;
  let configFile: string;
  let serving: Serving | undefined;

  beforeEach(() => {
    dir = tempDir('triggler-deploy-');
    repo = sourceRepo(dir);
    deployPath = path.join(dir, 'srv', 'app');
    configFile = path.join(dir, 'receiver.json');
  });
  afterEach(async () => {
    await stop(serving);
    serving = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function writeConfig(
    command: string,
    deploy: Record<string, unknown> = {},
    trigger: Record<string, unknown> = {},
    top: Record<string, unknown> = {},
  ): void {
    const config = {
      ...top,
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      stateDir: './state',
      limits: { shutdownGraceSeconds: 0 },
      triggers: [
        {
          repository: 'app',
          branch: 'main',
          token: TOKEN,
          command,
          deploy: { repositoryUrl: repo.url, path: deployPath, ...deploy },
          ...trigger,
        },
      ],
    };
    fs.writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  }

  const sshMissing = sshdMissing();
  if (sshMissing) process.stderr.write(`deploy over SSH through the receiver process skipped: ${sshMissing}\n`);
  (sshMissing ? it.skip : it)('fetches a private repository over SSH with the deploy key from the token file', async () => {
    const sshd = await startSshd(path.join(dir, 'sshd'));
    try {
      const key = sshKeygen(dir, 'deploy_key');
      sshd.authorize(key.publicKey);
      const tokenFile = path.join(dir, 'tokens.json');
      fs.writeFileSync(tokenFile, JSON.stringify({ 'app/deploy-key': key.privateKey }), { mode: 0o600 });
      writeConfig(
        'cp index.html built.html',
        { repositoryUrl: sshd.url(repo.url), sshKey: 'app/deploy-key', knownHosts: [sshd.knownHostsLine] },
        {},
        { tokens: { file: tokenFile } },
      );
      serving = await serve(configFile);
      const run = await finished(serving, await push(serving, repo.commit({ 'index.html': 'private' })));
      expect(run.status).toBe('succeeded');
      expect(fs.readFileSync(path.join(deployPath, 'current', 'built.html'), 'utf8')).toBe('private');
      expect(sshd.log()).toContain('Accepted publickey');
      expect(fs.readdirSync(path.join(dir, 'state', 'ssh'))).toEqual([]);
    } finally {
      await stop(serving);
      await sshd.close();
    }
  });

  it('triggler releases lists them; triggler rollback switches back through the receiver and is recorded as a run', async () => {
    writeConfig('true', {
      activate: 'echo "$TRIGGLER_RELEASE_DIR" >> "$TRIGGLER_DEPLOY_PATH/activations"',
      healthCheck: { command: 'test -f index.html' },
    });
    serving = await serve(configFile);
    const first = await finished(serving, await push(serving, repo.commit({ 'index.html': 'one' })));
    const second = await finished(serving, await push(serving, repo.commit({ 'index.html': 'two' })));
    expect([first.status, second.status]).toEqual(['succeeded', 'succeeded']);

    const listed = await cli('releases', 'app', 'main', '--config', configFile);
    const rows = listed.stdout.trimEnd().split('\n');
    // Newest first, each with what it is now.
    expect(rows[0]).toMatch(/^RELEASE\s+COMMIT\s+STATE\s+CREATED\s+RUN$/);
    expect(rows[1]).toMatch(
      new RegExp(`^${second.deploy!.release}\\s+${second.deploy!.commit!.slice(0, 12)}\\s+current\\s+\\S+\\s+${second.id}$`),
    );
    expect(rows[2]).toMatch(
      new RegExp(`^${first.deploy!.release}\\s+${first.deploy!.commit!.slice(0, 12)}\\s+previous\\s+\\S+\\s+${first.id}$`),
    );

    const rolledBack = await cli('rollback', 'app', 'main', '--config', configFile, '--admin', serving.adminUrl);
    const [accepted, result] = rolledBack.stdout.trim().split('\n');
    expect(result).toBe(`succeeded: current is ${first.deploy!.release}`);
    const runId = /^rollback run (\S+) accepted$/.exec(accepted!)![1]!;
    expect(await runOf(serving, runId)).toMatchObject({
      status: 'succeeded',
      scheme: 'admin',
      action: { type: 'rollback' },
      deploy: { release: first.deploy!.release, previousRelease: second.deploy!.release },
    });
    expect(fs.readFileSync(path.join(deployPath, 'current', 'index.html'), 'utf8')).toBe('one');
    expect(fs.readFileSync(path.join(deployPath, 'activations'), 'utf8').trim().split('\n')).toHaveLength(3);
    // The runs table shows the commit a rollback made current (its delivery names none).
    const runsTable = (await cli('runs', '--config', configFile, '--admin', serving.adminUrl)).stdout.split('\n');
    expect(runsTable.find((line) => line.startsWith(runId))).toContain(first.deploy!.commit!.slice(0, 12));

    // Without the admin credential the receiver refuses; a wrong --to fails the run, naming it.
    const refused = await request(`${serving.adminUrl}/rollback`, {
      method: 'POST',
      body: JSON.stringify({ repository: 'app', branch: 'main' }),
    });
    expect(refused.statusCode).toBe(401);
    await refused.body.dump();
    await expect(cli('rollback', 'app', 'main', '--config', configFile, '--admin', serving.adminUrl, '--to', 'nope')).rejects.toMatchObject(
      { code: 1, stdout: expect.stringContaining('failed (no release named nope (see triggler releases))') },
    );
  });

  it('a SIGKILL mid-deploy leaves current whole and where it was; after a restart the interrupted release never becomes current', async () => {
    // Commits holding "slow" start a command that waits to be killed.
    // The interrupted run is not run again here (a rerun would wait on its slow commit again): what
    // this checks is that the release it was building never becomes current.
    writeConfig('if [ -f slow ]; then echo $$ > "$TRIGGLER_DEPLOY_PATH/building.pid"; exec sleep 60; fi', {}, { rerunInterrupted: false });
    serving = await serve(configFile);
    const first = await finished(serving, await push(serving, repo.commit({ v: '1' })));
    const interrupted = await push(serving, repo.commit({ v: '2', slow: 'yes' }));
    const commandPid = await pidIn(path.join(deployPath, 'building.pid'));
    try {
      await stop(serving, 'SIGKILL');
      const layout = new ReleaseLayout(deployPath);
      expect(await layout.current()).toBe(first.deploy!.release);
      expect(fs.readFileSync(path.join(deployPath, 'current', 'v'), 'utf8')).toBe('1');
      expect((await layout.list()).map((r) => r.state)).toEqual(['live', 'building']);

      serving = await serve(configFile);
      expect(await runOf(serving, interrupted)).toMatchObject({ status: 'interrupted' });
      const next = await finished(serving, await push(serving, repo.commit({ v: '3', slow: null })));
      expect(next.status).toBe('succeeded');
      const releases = await layout.list();
      expect(releases.map((r) => [r.state, r.current])).toEqual([
        ['live', false],
        ['interrupted', false],
        ['live', true],
      ]);
      expect(fs.readFileSync(path.join(deployPath, 'current', 'v'), 'utf8')).toBe('3');
    } finally {
      killGroup(commandPid);
    }
  });

  it('with rerunInterrupted (the default), the restarted receiver switches back first, then deploys the interrupted commit again, switching to its release (its build succeeded)', async () => {
    // The health check hangs once (the receiver is killed during it) and passes after.
    writeConfig('true', {
      healthCheck: {
        command:
          'if [ ! -f "$TRIGGLER_DEPLOY_PATH/checked-once" ]; then touch "$TRIGGLER_DEPLOY_PATH/checked-once"; echo $$ > "$TRIGGLER_DEPLOY_PATH/checking.pid"; exec sleep 60; fi',
      },
    });
    serving = await serve(configFile);
    fs.mkdirSync(deployPath, { recursive: true });
    fs.writeFileSync(path.join(deployPath, 'checked-once'), '');
    const first = await finished(serving, await push(serving, repo.commit({ v: '1' })));
    fs.rmSync(path.join(deployPath, 'checked-once'));
    const secondCommit = repo.commit({ v: '2' });
    const interruptedId = await push(serving, secondCommit);
    const checkPid = await pidIn(path.join(deployPath, 'checking.pid'));
    try {
      await stop(serving, 'SIGKILL');
      serving = await serve(configFile);
      const layout = new ReleaseLayout(deployPath);
      const rerun = await waitFor('the rerun', async () => {
        const runs = ((await (await request(`${serving!.adminUrl}/runs`)).body.json()) as { runs: RunRecord[] }).runs;
        return runs.find((run) => run.rerunOf === interruptedId && !['pending', 'running'].includes(run.status));
      });
      const runs = ((await (await request(`${serving.adminUrl}/runs`)).body.json()) as { runs: RunRecord[] }).runs;
      const recover = runs.find((run) => run.action?.type === 'recover')!;
      expect(recover.status).toBe('succeeded');
      // The switch back ran before the rerun started.
      expect(recover.finishedAt! <= rerun.startedAt!).toBe(true);
      expect(rerun).toMatchObject({ status: 'succeeded', deploy: { commit: secondCommit, previousRelease: first.deploy!.release } });
      const releases = await layout.list();
      // The release the interrupted run built is good: the rerun switches to it again rather than build a copy.
      expect(releases.map((r) => [r.commit.slice(0, 7), r.state, r.current])).toEqual([
        [first.deploy!.commit!.slice(0, 7), 'live', false],
        [secondCommit.slice(0, 7), 'live', true],
      ]);
      expect(await layout.current()).toBe(rerun.deploy!.release);
    } finally {
      killGroup(checkPid);
    }
  });

  it('a SIGKILL after the switch, before the health check passed: the restarted receiver switches back first', async () => {
    // The interrupted push is not run again here (the test beside this one covers that): what
    // follows the restart is the switch back alone, whenever the machine gets to it.
    writeConfig(
      'true',
      {
        activate: 'echo "$TRIGGLER_RELEASE_DIR" >> "$TRIGGLER_DEPLOY_PATH/activations"',
        healthCheck: { command: 'if [ -f slow ]; then echo $$ > "$TRIGGLER_DEPLOY_PATH/checking.pid"; exec sleep 60; fi' },
      },
      { rerunInterrupted: false },
    );
    serving = await serve(configFile);
    const first = await finished(serving, await push(serving, repo.commit({ v: '1' })));
    await push(serving, repo.commit({ v: '2', slow: 'yes' }));
    const checkPid = await pidIn(path.join(deployPath, 'checking.pid'));
    try {
      await stop(serving, 'SIGKILL');
      const layout = new ReleaseLayout(deployPath);
      expect(await layout.current()).not.toBe(first.deploy!.release);
      serving = await serve(configFile);
      await waitFor(
        'the switch back',
        async () => (await layout.current()) === first.deploy!.release && !(await layout.unfinishedSwitch()),
      );
      const runs = ((await (await request(`${serving.adminUrl}/runs`)).body.json()) as { runs: RunRecord[] }).runs;
      expect(runs[0]).toMatchObject({ action: { type: 'recover' }, scheme: 'admin' });
      await finished(serving, runs[0]!.id);
      // Activated: the first release, the second, then the first again.
      expect(fs.readFileSync(path.join(deployPath, 'activations'), 'utf8').trim().split('\n')).toHaveLength(3);
      expect((await layout.list()).map((r) => [r.state, r.current])).toEqual([
        ['live', true],
        ['rolled-back', false],
      ]);
    } finally {
      killGroup(checkPid);
    }
  });
});
