/** `triggler deliveries` and `triggler redeliver`, the real CLI against a real receiver's admin listener. */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { DeliveryView } from '../../receiver/http/delivery-recorder';
import { freePort, runCli } from '../support/cli';
import { pushStandard, startTestReceiver, tempDir, type TestReceiver } from '../support/receiver-fixture';

const TOKEN = 'deliveries-cli-test-token-0123456789';

describe('triggler deliveries and redeliver', () => {
  const dir = tempDir();
  let receiver: TestReceiver;
  let accepted: string;

  beforeAll(async () => {
    receiver = await startTestReceiver({ triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }] }, { dir });
    accepted = await pushStandard(receiver, {
      token: TOKEN,
      repository: 'app',
      branch: 'main',
      commit: 'd'.repeat(40),
      id: 'msg_cli_deliveries',
    });
    expect((await receiver.send('/hooks/nobody/home', { headers: { 'webhook-id': 'x' } })).status).toBe(400);
    await receiver.settledRuns();
  });
  afterAll(async () => {
    await receiver.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints JSON with the headers, secrets redacted, and filters by trigger', async () => {
    const listed = await runCli(['deliveries', '--admin', receiver.adminUrl!, '--json', '--trigger', 'app@main']);
    expect(listed).toMatchObject({ code: 0, stderr: '' });
    const [delivery] = JSON.parse(listed.stdout) as DeliveryView[];
    expect(delivery).toMatchObject({ trigger: 'app@main', outcome: 'accepted', run: accepted, commit: 'd'.repeat(40) });
    expect(Object.fromEntries(delivery!.request.headers)).toMatchObject({ 'webhook-signature': '(redacted)' });
    const unknown = await runCli(['deliveries', '--admin', receiver.adminUrl!, '--trigger', 'unknown']);
    expect(unknown.stdout).toMatch(/unknown\s+rejected\s+400\s+POST \/hooks\/nobody\/home/);
    const none = await runCli(['deliveries', '--admin', receiver.adminUrl!, '--trigger', 'other@main']);
    expect(none.stdout).toBe('no deliveries for other@main\n');
  });

  it('redelivers with the credential from the state directory, and nothing without it', async () => {
    const listed = await runCli(['deliveries', '--admin', receiver.adminUrl!, '--json', '--trigger', 'app@main']);
    const { id } = (JSON.parse(listed.stdout) as DeliveryView[]).find((d) => d.outcome === 'accepted')!;
    const refused = await runCli(['redeliver', id, '--admin', receiver.adminUrl!, '--state-dir', join(dir, 'nowhere')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/no admin credential at/);
    const queued = await runCli(['redeliver', id, '--admin', receiver.adminUrl!, '--state-dir', join(dir, 'state')]);
    expect(queued.code).toBe(0);
    const [, runId] = /^queued run (\S+), a redelivery of /.exec(queued.stdout) ?? [];
    await receiver.settledRuns();
    expect(receiver.history.run(runId!)).toMatchObject({ redeliveryOf: id, commit: 'd'.repeat(40), status: 'succeeded' });
  });

  it('says the deliveries need the receiver running when its admin listener does not answer', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const result = await runCli(['deliveries', '--admin', nobody]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(`the receiver's admin listener at ${nobody} did not answer .*kept in the receiver's memory, so they need it running`),
    );
  });
});
