/**
 * Recent deliveries with `"workers": 2`: the real CLI serving in a child process, deliveries taken
 * by both workers, each worker's rings merged when the primary's admin listener is read, and the
 * `triggler deliveries` and `triggler redeliver` commands against it.
 */
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { buildDeliveryRequest } from '../../protocol';
import type { DeliveryView } from '../../receiver/http/delivery-recorder';
import type { RunRecord } from '../../receiver/runs/run-record';
import { freePort, runCli, startCli, stopCli } from '../support/cli';
import { sendSignedPush, tempDir } from '../support/receiver-fixture';
import { waitFor } from '../support/wait-for';

const TOKEN = 'whsec_ZGVsaXZlcmllcyB3aXRoIHdvcmtlcnMgdGVzdCBrZXk';

describe('recent deliveries with workers', () => {
  const dir = tempDir('triggler-cluster-deliveries-');
  const config = join(dir, 'receiver.json');
  // Fresh connections per request, so the shared port hands them to both workers.
  const agent = new Agent({ pipelining: 0, keepAliveTimeout: 1 });
  let serving: Awaited<ReturnType<typeof startCli>>;
  let url: string;
  let adminUrl: string;

  beforeAll(async () => {
    // A fixed admin port, so that the CLI finds the listener from the config.
    const adminPort = await freePort();
    writeFileSync(
      config,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        admin: { host: '127.0.0.1', port: adminPort },
        workers: 2,
        stateDir: './state',
        limits: { recentDeliveries: 30 },
        triggers: [{ repository: 'app', branch: 'main', token: TOKEN, command: 'true' }],
      }),
      { mode: 0o600 },
    );
    serving = await startCli(['serve', '--config', config, '--log-format', 'json'], /"receiver listening"/, { cwd: dir });
    const line = JSON.parse(
      serving
        .output()
        .split('\n')
        .find((l) => l.includes('"receiver listening"'))!,
    ) as Record<string, string>;
    url = line.url!;
    adminUrl = line.adminUrl!;
  });
  afterAll(async () => {
    await stopCli(serving.child);
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every worker's deliveries, once each worker has answered (a loaded machine may take a while). */
  async function allDeliveries(count: number): Promise<DeliveryView[]> {
    return waitFor(`${count} deliveries from both workers`, async () => {
      const response = await request(`${adminUrl}/deliveries`);
      const answer = (await response.body.json()) as { deliveries: DeliveryView[]; unanswered?: number };
      return answer.unanswered === undefined && answer.deliveries.length >= count ? answer.deliveries : undefined;
    });
  }

  it("merges both workers' deliveries, newest first, and redelivers one taken by a worker", async () => {
    const statuses = await Promise.all(
      Array.from(
        { length: 12 },
        async (_, i) => (await sendSignedPush(url, { token: TOKEN, id: `msg_w_${i}`, commit: String(i).padStart(40, 'c') }, agent)).status,
      ),
    );
    expect(statuses.every((s) => s === 202)).toBe(true);
    const forged = buildDeliveryRequest({
      scheme: 'standard',
      token: 'not-the-token-of-app-main-at-all',
      id: 'msg_forged',
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: 'f'.repeat(40), source: 'test' },
    });
    const refused = await request(url + forged.path, { method: 'POST', headers: forged.headers, body: forged.body!, dispatcher: agent });
    await refused.body.dump();
    expect(refused.statusCode).toBe(401);

    const deliveries = await allDeliveries(13);
    expect(deliveries[0]).toMatchObject({ outcome: 'rejected', reason: 'bad webhook-signature', trigger: 'app@main' });
    const accepted = deliveries.filter((d) => d.outcome === 'accepted');
    expect(accepted).toHaveLength(12);
    // Ids name the worker that kept them: both workers answered.
    expect(new Set(accepted.map((d) => /w(\d+)-/.exec(d.id)![1])).size).toBe(2);
    const times = deliveries.map((d) => d.receivedAt);
    expect(times).toEqual([...times].sort().reverse());
    expect(JSON.stringify(deliveries)).not.toContain(forged.headers['webhook-signature']!.slice(3));

    // The CLI's table: newest first, the forged one with its reason.
    const listed = await waitFor('the table from both workers', async () => {
      const result = await runCli(['deliveries', '--config', config, '--trigger', 'app@main'], { cwd: dir });
      return result.code === 0 && result.stderr === '' ? result : undefined;
    });
    const rows = listed.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^DELIVERY\s+RECEIVED\s+TRIGGER\s+OUTCOME\s+STATUS\s+REQUEST\s+RUN\s+REASON$/);
    expect(rows).toHaveLength(14);
    expect(rows[1]).toMatch(/app@main\s+rejected\s+401\s+POST \/hooks\/app\/main\s+bad webhook-signature$/);

    const chosen = accepted[5]!;
    const redelivered = await runCli(['redeliver', chosen.id, '--config', config], { cwd: dir });
    expect(redelivered).toMatchObject({ code: 0, stderr: '' });
    const runId = /^queued run (\S+), a redelivery of /.exec(redelivered.stdout)![1]!;
    const run = await waitFor('the redelivery to finish', async () => {
      const response = await request(`${adminUrl}/runs/${runId}`);
      const { run } = (await response.body.json()) as { run: RunRecord };
      return run.status === 'succeeded' ? run : undefined;
    });
    expect(run).toMatchObject({ redeliveryOf: chosen.id, commit: chosen.commit, deliveryIds: [chosen.answer.body.delivery] });

    const forgedId = deliveries[0]!.id;
    const notAccepted = await runCli(['redeliver', forgedId, '--config', config], { cwd: dir });
    expect(notAccepted.code).toBe(1);
    expect(notAccepted.stderr).toMatch(
      /the receiver refused \(409\): delivery .* was rejected: only an accepted delivery can be delivered again/,
    );
  });
});
