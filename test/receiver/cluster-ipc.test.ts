/**
 * The primary answers a worker over the cluster's IPC channel after the runner has journalled its
 * delivery; by then the worker may be dead. A reply on a closed channel must not end the primary.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { send } from '../../receiver/cluster';

describe('a reply to a worker whose channel has closed', () => {
  it('is dropped without an error event, which nothing would hear and which would end the primary', async () => {
    const child = spawn(process.execPath, ['-e', 'process.exit(0)'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    await once(child, 'exit');
    expect(child.connected).toBe(false);
    const events: string[] = [];
    const emit = child.emit.bind(child);
    child.emit = (event: string | symbol, ...args: unknown[]) => {
      events.push(String(event));
      return emit(event, ...args);
    };
    send(child, { t: 'accepted', id: 1, result: { status: 'accepted', runId: 'r1', coalesced: false } });
    // Node reports a closed channel on a later tick: give it several.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(events).not.toContain('error');
  });
});
