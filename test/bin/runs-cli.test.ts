/** `triggler runs` and `triggler rerun`, the real CLI against a real receiver and its state directory. */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { buildDeliveryRequest } from '../../protocol';
import { runCli } from '../support/cli';
import { sourceRepo } from '../support/git-repo';
import { pushStandard, startTestReceiver, tempDir, type TestReceiver } from '../support/receiver-fixture';

const TOKEN = 'runs-cli-test-token-0123456789';
const cli = (args: string[]) => runCli(args);

describe('triggler runs and rerun', () => {
  const dir = tempDir();
  const stateDir = join(dir, 'state');
  let receiver: TestReceiver;
  let runId: string;

  beforeAll(async () => {
    receiver = await startTestReceiver(
      { triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'echo "ran $TRIGGLER_COMMIT"' }] },
      { dir },
    );
    const delivery = buildDeliveryRequest({
      scheme: 'standard',
      token: TOKEN,
      id: 'msg_cli_1',
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: 'c'.repeat(40), source: 'cli' },
    });
    runId = ((await receiver.send(delivery.path, { headers: delivery.headers, body: delivery.body! })).body.run as { id: string }).id;
    await receiver.settledRuns();
  });
  afterAll(async () => {
    await receiver.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists runs from the admin listener and says so', async () => {
    const listed = await cli(['runs', '--admin', receiver.adminUrl!]);
    expect(listed.stderr).toBe(`from the admin listener ${receiver.adminUrl}\n`);
    expect(listed.stdout).toContain(runId);
  });

  it('re-runs a run with the credential from the state directory', async () => {
    const rerun = await cli(['rerun', runId, '--admin', receiver.adminUrl!, '--state-dir', stateDir]);
    expect(rerun.code).toBe(0);
    const [, newId] = /^queued run (\S+), a re-run of /.exec(rerun.stdout) ?? [];
    await receiver.settledRuns();
    expect(receiver.history.run(newId!)).toMatchObject({ rerunOf: runId, commit: 'c'.repeat(40), status: 'succeeded' });
    // Without a readable credential nothing is queued.
    const refused = await cli(['rerun', runId, '--admin', receiver.adminUrl!, '--state-dir', join(dir, 'nowhere')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/no admin credential at/);
  });

  it('reads the state directory beside a live receiver, and when the listener does not answer', async () => {
    const direct = await cli(['runs', '--state-dir', stateDir, '--json']);
    expect(direct.stderr).toBe(`from the state directory ${stateDir}\n`);
    expect((JSON.parse(direct.stdout) as { id: string }[]).map((r) => r.id)).toContain(runId);
    const config = join(dir, 'receiver.json');
    const { port } = new URL(receiver.adminUrl!);
    fs.writeFileSync(
      config,
      JSON.stringify({
        stateDir,
        admin: { host: '127.0.0.1', port: Number(port) },
        triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
      }),
    );
    await receiver.close();
    const fallback = await cli(['runs', '--config', config]);
    expect(fallback.stderr).toBe(`from the state directory ${stateDir} (the admin listener http://127.0.0.1:${port} does not answer)\n`);
    expect(fallback.stdout).toContain(runId);
    const log = await cli(['runs', '--config', config, '--log', runId]);
    expect(log.stdout).toBe(`ran ${'c'.repeat(40)}\n`);
  });
});

describe('triggler runs on a deploy trigger', () => {
  const dir = tempDir();
  const stateDir = join(dir, 'state');
  const repo = sourceRepo(dir);
  let receiver: TestReceiver;
  const deploys: { run: string; commit: string; release: string }[] = [];
  let rollbackRun: string;

  beforeAll(async () => {
    receiver = await startTestReceiver(
      {
        triggers: [
          { repository: 'app', branch: 'main', token: TOKEN, command: 'true', deploy: { repositoryUrl: repo.url, path: join(dir, 'srv') } },
        ],
      },
      { dir },
    );
    for (const n of [1, 2]) {
      const commit = repo.commit({ 'index.html': `version ${n}` });
      const run = await pushStandard(receiver, { token: TOKEN, repository: 'app', branch: 'main', commit });
      await receiver.settledRuns();
      deploys.push({ run, commit, release: receiver.history.run(run)!.deploy!.release! });
    }
    ({ runId: rollbackRun } = await receiver.runner.requestRun('app', 'main', { type: 'rollback' }));
    await receiver.settledRuns();
  });
  afterAll(async () => {
    await receiver.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists the release of each deploy run, a rollback marked with the release it returned to, and the commit subjects', async () => {
    const [first, second] = deploys;
    const listed = await cli(['runs', '--admin', receiver.adminUrl!]);
    const lines = listed.stdout.split('\n');
    expect(lines[0]).toMatch(/^RUN +TRIGGER +STATUS +EXIT +COMMIT +RELEASE +DELIVERIES +STARTED +TOOK +SUBJECT$/);
    const line = (run: string) => lines.find((l) => l.startsWith(run)) ?? '';
    expect(line(rollbackRun)).toMatch(
      new RegExp(
        `^${rollbackRun} +app@main +succeeded +0 +${first!.commit.slice(0, 12)} +rollback → ${first!.release} .* commit 1 — test$`,
      ),
    );
    expect(line(second!.run)).toMatch(new RegExp(` ${second!.commit.slice(0, 12)} +${second!.release} .* commit 2 — test$`));
  });

  it('shows one run in full, from the admin listener and from the journal alike', async () => {
    const [first, second] = deploys;
    const fromAdmin = await cli(['runs', rollbackRun, '--admin', receiver.adminUrl!]);
    const fromJournal = await cli(['runs', rollbackRun, '--state-dir', stateDir]);
    expect(fromJournal.stderr).toBe(`from the state directory ${stateDir}\n`);
    for (const shown of [fromAdmin, fromJournal]) {
      expect(shown.code).toBe(0);
      expect(shown.stdout).toContain(`run:            ${rollbackRun}\n`);
      expect(shown.stdout).toContain(`commit:         ${first!.commit}\nsubject:        commit 1\nauthor:         test\n`);
      expect(shown.stdout).toContain(`release:        rollback → ${first!.release}\nrelease before: ${second!.release}\n`);
      expect(shown.stdout).toMatch(/\nstarted: +\d{4}-\d\d-\d\dT[\d:.]+Z \((just now|\d+ s ago|\d+ min ago)\)\n/);
      expect(shown.stdout).not.toContain('not given by the sender');
    }
    const json = await cli(['runs', rollbackRun, '--admin', receiver.adminUrl!, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: rollbackRun, action: { type: 'rollback' }, deploy: { release: first!.release } });
    const missing = await cli(['runs', 'r_nosuchrun', '--admin', receiver.adminUrl!]);
    expect(missing).toMatchObject({ code: 1, stderr: `triggler: no run r_nosuchrun at the admin listener ${receiver.adminUrl}\n` });
  });
});

describe('rollback and rerun when the receiver is down', () => {
  const dir = tempDir();
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('say that the admin listener did not answer, how to see whether the receiver runs, and that the action needs it', async () => {
    const stateDir = join(dir, 'state');
    const trigger = {
      repository: 'app',
      branch: 'main',
      token: TOKEN,
      command: 'true',
      deploy: { repositoryUrl: join(dir, 'app.git'), path: join(dir, 'srv', 'app') },
    };
    // A receiver that ran here once (its state directory holds the admin credential) and has stopped.
    const receiver = await startTestReceiver({ triggers: [trigger] }, { dir });
    const { port } = new URL(receiver.adminUrl!);
    await receiver.dispose();
    const config = join(dir, 'receiver.json');
    fs.writeFileSync(config, JSON.stringify({ stateDir, admin: { host: '127.0.0.1', port: Number(port) }, triggers: [trigger] }));
    const admin = `http://127.0.0.1:${port}`;
    const down = (what: string) =>
      `triggler: the receiver's admin listener at ${admin} did not answer (connect ECONNREFUSED 127.0.0.1:${port}).\n` +
      `  Is the receiver running? systemctl status triggler-receiver says (and journalctl -u triggler-receiver why it stopped); is ${admin} its admin address (--admin, or the config's admin)?\n` +
      `  ${what} is a run of the receiver: it needs the receiver running.\n`;
    const [rollback, rerun] = await Promise.all([
      cli(['rollback', 'app', 'main', '--config', config]),
      cli(['rerun', 'r_0mj3k2x1c000a1b2c3d4', '--config', config]),
    ]);
    expect(rollback).toEqual({ code: 1, stdout: '', stderr: down('A rollback') });
    expect(rerun).toEqual({ code: 1, stdout: '', stderr: down('A re-run') });
  });
});
