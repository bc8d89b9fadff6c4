/** A run that times out says so once in its log: the line that ends it, with the signals it took. */
import { logText, makeDelivery, makeStateDir, makeTrigger, openRunner, removeDir } from '../../support/runner-harness';

describe("a timed-out run's log", () => {
  const stateDir = makeStateDir();
  afterAll(() => removeDir(stateDir));

  it('holds the timeout line once', async () => {
    const { runner } = await openRunner({
      stateDir,
      triggers: [makeTrigger({ command: 'echo started; sleep 30', cwd: stateDir, timeoutSeconds: 1 })],
    });
    try {
      const { runId } = await runner.accept(makeDelivery());
      await runner.idle();
      const log = await logText(runner, runId);
      expect(log).toBe('started\n\n[triggler] timed out after 1s (SIGTERM to the process group)\n');
      expect(log.match(/timed out/g)).toHaveLength(1);
    } finally {
      await runner.close();
    }
  });
});
