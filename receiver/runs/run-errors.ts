/** Why the runs layer did not take a delivery or a request: codes of the receiver's error catalogue, never statuses. */
import { ReceiverError } from '../errors';

/** The journal cannot be written: no delivery is accepted until it can, since none would be durable (the sender retries). */
export class JournalWriteError extends ReceiverError {
  constructor(cause: Error) {
    super('journal', `cannot write the run journal: ${cause.message}`, { cause });
    this.name = 'JournalWriteError';
  }
}

/** accept() after close() began: the receiver is stopping (the sender retries). */
export class RunnerClosedError extends ReceiverError {
  constructor() {
    super('stopping', 'the runner is shutting down');
    this.name = 'RunnerClosedError';
  }
}

/** requestRun() or rerun() for a run or trigger that is not there, or that cannot do what was asked; the message is the answer. */
export class RunRequestRefused extends ReceiverError {
  constructor(message: string, code: 'not-found' | 'conflict') {
    super(code, message);
    this.name = 'RunRequestRefused';
  }
}
