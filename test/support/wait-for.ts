/**
 * Waiting for something a test can observe (a log line, a file, a run's state). There is no
 * deadline here: the test's own timeout is the only one, so a busy machine makes a test slower,
 * never wrong. A wait still going when its test ends (a timeout, a failure elsewhere) stops then
 * and says what it was waiting for.
 */
const pending = new Set<{ what: string; stop(): void }>();

if (typeof afterEach === 'function') {
  afterEach(() => {
    for (const wait of pending) {
      process.stderr.write(`the test ended while waiting for ${wait.what}\n`);
      wait.stop();
    }
    pending.clear();
  });
}

/** Resolves with the first value of `probe` that is neither undefined nor false, polled every 20 ms. */
export function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const wait = { what, stop: () => clearTimeout(timer) };
    pending.add(wait);
    const poll = async () => {
      try {
        const value = await probe();
        if (value !== undefined && value !== false) {
          pending.delete(wait);
          resolve(value);
        } else if (pending.has(wait)) {
          timer = setTimeout(() => void poll(), 20);
        }
      } catch (error) {
        pending.delete(wait);
        reject(error as Error);
      }
    };
    void poll();
  });
}
