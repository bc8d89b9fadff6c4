/**
 * Where the receiver's JSON log lines go: stdout, written asynchronously. A synchronous write(2)
 * per line on the event loop's thread was the largest single cost of an accepted delivery; pino's
 * own asynchronous destination buffers lines and hands them to the thread pool instead. Lines must
 * still all arrive: pino writes what is buffered synchronously when the process exits (an exit
 * call, an uncaught error), and a stop waits here until every line is written before it exits.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

/** What asyncStdout() makes (pino's SonicBoom), as far as a stop needs it. */
interface AsyncDestination extends DestinationStream {
  sync: boolean;
  destroyed: boolean;
  once(event: 'drain' | 'error', listener: () => void): unknown;
}

/** Past this, a stop exits anyway: the exit's own synchronous write takes what is left. */
const LOG_WRITTEN_WAIT_MS = 5000;

export function asyncStdout(): DestinationStream {
  return pino.destination({ dest: 1, sync: false });
}

/**
 * Resolves once every line `logger` has taken so far is written (at most LOG_WRITTEN_WAIT_MS):
 * call it just before the process exits. The destination stays open, so a line logged after it
 * is still taken (and written by the exit). A synchronous destination is written already.
 */
export function logWritten(logger: Logger): Promise<void> {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as AsyncDestination | undefined;
  if (stream?.sync !== false || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, LOG_WRITTEN_WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    // The destination writes whenever it is not writing already: an empty write queued behind the
    // lines taken so far is written after them, and 'drain' says nothing is left.
    stream.once('drain', done);
    stream.once('error', done);
    stream.write('');
  });
}
