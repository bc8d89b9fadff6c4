/**
 * One deadline for a whole deploy: a remote that accepts the connection and never answers costs
 * the run the trigger's timeoutSeconds once (no second fetch after the first is stopped), and the
 * run ends `timed-out`, not `failed`. Real git against a real TCP server that says nothing.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import type { Runner } from '../../../../receiver/runs/runner';
import { logText, makeDelivery, makeStateDir, makeTrigger, openRunner, removeDir } from '../../../support/runner-harness';

describe('the deploy deadline', () => {
  let dir: string;
  let runner: Runner | undefined;
  let server: net.Server;
  const sockets = new Set<net.Socket>();
  let port: number;

  beforeEach(async () => {
    dir = makeStateDir();
    server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterEach(async () => {
    await runner?.close();
    runner = undefined;
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    removeDir(dir);
  });

  for (const scheme of ['git', 'http'] as const) {
    it(`a ${scheme}:// remote that never answers: one fetch, stopped at timeoutSeconds, the run timed-out`, async () => {
      const commit = 'c0ffee0000000000000000000000000000000001';
      ({ runner } = await openRunner({
        stateDir: path.join(dir, 'state'),
        triggers: [
          makeTrigger({
            command: 'true',
            timeoutSeconds: 2,
            deploy: { repositoryUrl: `${scheme}://127.0.0.1:${port}/app.git`, path: path.join(dir, 'srv', 'app') },
          }),
        ],
      }));
      const started = Date.now();
      const { runId } = await runner.accept(makeDelivery({ commit }));
      await runner.idle();
      const run = runner.history.run(runId)!;
      expect(run).toMatchObject({ status: 'timed-out', error: "timed out: the deploy's timeoutSeconds (2s) ran out during fetch main" });
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
      const log = await logText(runner, run);
      expect(log).toContain('fetch main: git <safe config>');
      // The branch's fetch used the whole budget: the fetch of the commit by its id never started.
      expect(log).not.toContain(`fetch ${commit}`);
      expect(log).not.toContain('lay out release');
    });
  }
});
