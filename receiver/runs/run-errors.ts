/** Why the runs layer did not take a delivery or a request: what the layers above answer with. */
import { NotAccepted } from '../delivery';

/** The journal cannot be written: no delivery is accepted until it can, since none would be durable (503, the sender retries). */
export class JournalWriteError extends NotAccepted {
  constructor(cause: Error) {
    super(`cannot write the run journal: ${cause.message}`, 'journal', 'the receiver cannot take deliveries right now; try again', 503, 5, { cause });
    this.name = 'JournalWriteError';
  }
}

/** accept() after close() began: the receiver is stopping (answer 503). */
export class RunnerClosedError extends NotAccepted {
  constructor() {
    super('the runner is shutting down', 'stopping', 'the receiver cannot take deliveries right now; try again');
    this.name = 'RunnerClosedError';
  }
}

/** requestRun() for a trigger that has none, or cannot do what was asked: carries the status to answer. */
export class RunRequestRefused extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404 | 409,
  ) {
    super(message);
    this.name = 'RunRequestRefused';
  }
}
