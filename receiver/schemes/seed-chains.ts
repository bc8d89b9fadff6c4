/**
 * Seed-scheme hash chains, computed off the event loop. n rounds of SHA-256 take about n/2 µs;
 * at the largest n a trigger may set, one chain is tens of milliseconds that would otherwise hold
 * every other request, a valid delivery's among them. One worker thread computes them in turn.
 *
 * The worker's code is inline, not a file: the receiver ships as one bundle.
 */
import { Worker } from 'node:worker_threads';

const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
const sha256 = crypto.hash ? (s) => crypto.hash('sha256', s, 'hex') : (s) => crypto.createHash('sha256').update(s).digest('hex');
parentPort.on('message', ({ id, input, iterations }) => {
  let value = input;
  for (let round = 0; round < iterations; round++) value = sha256(value);
  parentPort.postMessage({ id, value });
});
`;

interface Job {
  resolve(value: string): void;
  reject(error: Error): void;
}

export class SeedChains {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  private next = 0;
  private closed = false;

  /** `iterations` rounds of hex SHA-256 over `input` (hashChain of the protocol), in the worker. */
  compute(input: string, iterations: number): Promise<string> {
    if (this.closed) return Promise.reject(new Error('seed chains are closed'));
    const worker = this.ensureWorker();
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      // Only while a chain is being computed does the worker keep the process alive.
      if (this.jobs.size === 1) worker.ref();
      worker.postMessage({ id, input, iterations });
    });
  }

  /** Chains waiting or being computed. */
  get pending(): number {
    return this.jobs.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new Error('seed chains are closed'));
    await worker?.terminate();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_CODE, { eval: true });
    worker.unref();
    worker.on('message', ({ id, value }: { id: number; value: string }) => {
      const job = this.jobs.get(id);
      if (!job) return;
      this.jobs.delete(id);
      if (this.jobs.size === 0) worker.unref();
      job.resolve(value);
    });
    const lost = (error: Error) => {
      if (this.worker !== worker) return;
      // The next chain starts a new worker.
      this.worker = undefined;
      this.failAll(error);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the seed-chain worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    for (const job of this.jobs.values()) job.reject(error);
    this.jobs.clear();
  }
}
