/** `triggler runs` and `triggler rerun`, the real CLI against a real receiver and its state directory. */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { buildDeliveryRequest } from '../../protocol';
import { runCli } from '../support/cli';
import { startTestReceiver, tempDir, type TestReceiver } from '../support/receiver-fixture';

const TOKEN = 'runs-cli-test-token-0123456789';
const cli = (args: string[]) => runCli(args);

describe('triggler runs and rerun', () => {
  const dir = tempDir();
  const stateDir = join(dir, 'state');
  let receiver: TestReceiver;
  let runId: string;

  beforeAll(async () => {
    receiver = await startTestReceiver({ triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'echo "ran $TRIGGLER_COMMIT"' }] }, { dir });
    const delivery = buildDeliveryRequest({ scheme: 'standard', token: TOKEN, id: 'msg_cli_1', timestamp: Math.floor(Date.now() / 1000), data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: 'c'.repeat(40), source: 'cli' } });
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
    fs.writeFileSync(config, JSON.stringify({ stateDir, admin: { host: '127.0.0.1', port: Number(port) }, triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }] }));
    await receiver.close();
    const fallback = await cli(['runs', '--config', config]);
    expect(fallback.stderr).toBe(`from the state directory ${stateDir} (the admin listener http://127.0.0.1:${port} does not answer)\n`);
    expect(fallback.stdout).toContain(runId);
    const log = await cli(['runs', '--config', config, '--log', runId]);
    expect(log.stdout).toBe(`ran ${'c'.repeat(40)}\n`);
  });
});
