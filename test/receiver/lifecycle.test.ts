/** The disposer stack that starts and stops the receiver's parts, and the reload plan. */
import { DisposerStack, prepareThenCommit, startInOrder } from '../../receiver/lifecycle';

describe('DisposerStack', () => {
  it('stops parts newest first, every one of them even when one throws, then says which failed', async () => {
    const stopped: string[] = [];
    const parts = new DisposerStack();
    parts.push('runner', () => void stopped.push('runner'));
    parts.push('listener', () => {
      stopped.push('listener');
      throw new Error('EBADF');
    });
    parts.push('admin', async () => void stopped.push('admin'));
    const failure = await parts.disposeAll().catch((error: unknown) => error as Error);
    expect(stopped).toEqual(['admin', 'listener', 'runner']);
    expect(failure).toBeInstanceOf(Error);
    expect(failure?.message).toBe('could not stop: listener');
    expect((failure?.cause as Error).message).toBe('EBADF');
  });

  it('stops each part once: a second disposeAll has nothing left to stop', async () => {
    const stopped: string[] = [];
    const parts = new DisposerStack();
    parts.push('runner', () => void stopped.push('runner'));
    await parts.disposeAll();
    await parts.disposeAll();
    expect(stopped).toEqual(['runner']);
  });

  it('a start that fails part-way stops what had started, newest first, and throws why the start failed', async () => {
    const events: string[] = [];
    const stopErrors: unknown[] = [];
    const parts = new DisposerStack();
    const started = startInOrder(
      parts,
      async () => {
        await parts.start(
          'tokens',
          () => events.push('tokens started'),
          () => void events.push('tokens stopped'),
        );
        await parts.start(
          'runner',
          async () => events.push('runner started'),
          () => {
            events.push('runner stopped');
            throw new Error('journal lock');
          },
        );
        // A part whose start throws has nothing to stop.
        await parts.start(
          'admin',
          () => Promise.reject(new Error('EADDRINUSE')),
          () => void events.push('admin stopped'),
        );
      },
      (error) => stopErrors.push(error),
    );
    await expect(started).rejects.toThrow('EADDRINUSE');
    expect(events).toEqual(['tokens started', 'runner started', 'runner stopped', 'tokens stopped']);
    expect(stopErrors).toHaveLength(1);
    expect((stopErrors[0] as Error).message).toBe('could not stop: runner');
  });
});

describe('prepareThenCommit', () => {
  it('commits every step only once all have prepared, in order', async () => {
    const events: string[] = [];
    await prepareThenCommit([
      () => (events.push('prepare tokens'), { commit: () => void events.push('commit tokens') }),
      async () => (events.push('prepare certificate'), { commit: () => void events.push('commit certificate') }),
    ]);
    expect(events).toEqual(['prepare tokens', 'prepare certificate', 'commit tokens', 'commit certificate']);
  });

  it('changes nothing when a step cannot prepare: what was prepared is let go, and the error is thrown', async () => {
    const events: string[] = [];
    const plan = prepareThenCommit([
      () => ({ commit: () => void events.push('commit tokens'), abandon: () => void events.push('abandon tokens') }),
      () => {
        throw new Error('listen.tls.key: the key is not the certificate’s');
      },
      () => ({ commit: () => void events.push('commit notifications') }),
    ]);
    await expect(plan).rejects.toThrow('listen.tls.key');
    expect(events).toEqual(['abandon tokens']);
  });
});
