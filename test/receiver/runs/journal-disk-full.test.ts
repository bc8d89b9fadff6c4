/**
 * A full disk under the run journal, for real where the test may mount a tiny tmpfs (as root), and
 * otherwise through the file handle's write: the store refuses deliveries while it cannot write,
 * keeps what it accepted before, and takes deliveries again by itself once writes succeed.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { AcceptedDelivery } from '../../../receiver/delivery';
import { JournalWriteError, RunStore } from '../../../receiver/runs/run-store';
import { acceptRecord } from '../../support/journal-records';
import { makeDelivery, makeStateDir, newRunId, recordingLogger, removeDir } from '../../support/runner-harness';

interface Disk {
  /** Where the state directory goes. */
  dir: string;
  real: boolean;
  fill(): Promise<void>;
  free(): Promise<void>;
  remove(): void;
}

/** A 512 KiB tmpfs of our own: filled by a file, freed by deleting it. */
function tmpfsDisk(top: string): Disk | undefined {
  const dir = path.join(top, 'disk');
  fs.mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'triggler-test', dir], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const filler = path.join(dir, 'filler');
  return {
    dir,
    real: true,
    async fill() {
      const fd = fs.openSync(filler, 'w');
      try {
        // Large writes first, then smaller ones into the last free page.
        for (const size of [64 * 1024, 4096, 1]) {
          const chunk = Buffer.alloc(size, 0x66);
          try {
            for (;;) fs.writeSync(fd, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          }
        }
      } finally {
        fs.closeSync(fd);
      }
    },
    async free() {
      fs.rmSync(filler, { force: true });
    },
    remove() {
      execFileSync('umount', [dir]);
    },
  };
}

/** Without a mount: every write writes at most 100 bytes and then fails as a full disk does. */
async function injectedDisk(top: string): Promise<Disk> {
  const probe = await fsp.open(path.join(top, 'probe'), 'w');
  await probe.close();
  const prototype = Object.getPrototypeOf(probe) as {
    write: (buffer: Buffer, offset: number, length: number) => Promise<{ bytesWritten: number }>;
  };
  const write = prototype.write;
  let spy: jest.SpyInstance | undefined;
  return {
    dir: path.join(top, 'disk'),
    real: false,
    async fill() {
      let room = 100;
      spy = jest.spyOn(prototype, 'write').mockImplementation(async function (
        this: unknown,
        buffer: Buffer,
        offset: number,
        length: number,
      ) {
        if (room === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        const part = Math.min(room, length);
        room -= part;
        return write.call(this, buffer, offset, part);
      });
    },
    async free() {
      spy?.mockRestore();
    },
    remove() {},
  };
}

let top: string;
let disk: Disk;
const stores: RunStore[] = [];

beforeEach(async () => {
  top = makeStateDir();
  disk = tmpfsDisk(top) ?? (await injectedDisk(top));
});

afterEach(async () => {
  await disk.free();
  for (const store of stores.splice(0)) await store.close();
  disk.remove();
  removeDir(top);
});

async function openStore() {
  const { logger, lines } = recordingLogger();
  const opened = await RunStore.open({ stateDir: path.join(disk.dir, 'state'), keepRuns: 10, logger, retryWriteAfterMs: 50 });
  stores.push(opened.store);
  return { store: opened.store, lines };
}

function settled(promise: Promise<unknown>): () => boolean {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  return () => done;
}

describe('a full disk under the journal', () => {
  it('refuses deliveries while it cannot write, keeps what it had, and accepts again by itself once writes succeed', async () => {
    const { store, lines } = await openStore();
    const kept = makeDelivery();
    const running = newRunId();
    await store.record(acceptRecord(running, kept));
    expect(store.health()).toEqual({ status: 'ok' });

    await disk.fill();
    // Several KiB in one write: more than any free space left in the journal's last page.
    const refusedRun = newRunId();
    const refused = Array.from({ length: 40 }, () => makeDelivery());
    const results = await Promise.allSettled(refused.map((delivery) => store.record(acceptRecord(refusedRun, delivery))));
    expect(results.every((result) => result.status === 'rejected' && result.reason instanceof JournalWriteError)).toBe(true);
    expect(store.health()).toMatchObject({
      status: 'degraded',
      reason: expect.stringContaining('no space left on device') as string,
      since: expect.any(String) as string,
    });
    await expect(store.record(acceptRecord(newRunId(), makeDelivery()))).rejects.toBeInstanceOf(JournalWriteError);
    // The run's own record belongs to a delivery accepted before: it waits instead of being lost.
    // (Larger than a page, so that it cannot fit in what is left of the journal's last one.)
    const error = `exited with code 1: ${'e'.repeat(8192)}`;
    const finish = store.record({ type: 'finish', at: new Date().toISOString(), runId: running, status: 'failed', exitCode: 1, error });
    const finishDone = settled(finish);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(finishDone()).toBe(false);
    expect(store.run(refusedRun)).toBeUndefined();
    for (const delivery of refused) expect(store.dedupeEntry(delivery.dedupeKey)).toBeUndefined();
    expect(lines.filter((entry) => entry.level === 50 && entry.msg.includes('write failed'))).toHaveLength(1);

    await disk.free();
    await finish;
    expect(store.health()).toEqual({ status: 'ok' });
    expect(store.run(running)).toMatchObject({ status: 'failed', error });
    expect(lines.some((entry) => entry.level === 30 && entry.msg.includes('takes writes again'))).toBe(true);
    const after = makeDelivery();
    const afterRun = newRunId();
    await store.record(acceptRecord(afterRun, after));
    // A refused delivery was never accepted: its sender's retry is accepted now.
    await store.record(acceptRecord(afterRun, refused[0] as AcceptedDelivery));
    await store.close();
    stores.splice(0);

    const reopened = await openStore();
    // No partial line was buried: nothing to skip or warn about.
    expect(reopened.lines.filter((entry) => entry.level >= 40)).toEqual([]);
    expect(reopened.store.run(running)).toMatchObject({ status: 'failed', error });
    expect(reopened.store.run(afterRun)).toMatchObject({ status: 'pending', deliveryIds: [after.deliveryId, refused[0]?.deliveryId] });
    expect(reopened.store.run(refusedRun)).toBeUndefined();
    expect(reopened.store.dedupeEntry(kept.dedupeKey)?.runId).toBe(running);
    expect(reopened.store.dedupeEntry(refused[1]?.dedupeKey ?? '')).toBeUndefined();
  });

  it('does not keep a stopping receiver waiting: once told so, records it cannot write are refused', async () => {
    const { store } = await openStore();
    const runId = newRunId();
    await store.record(acceptRecord(runId, makeDelivery()));
    await disk.fill();
    await expect(store.record(acceptRecord(newRunId(), makeDelivery({ deliveryId: 'x'.repeat(8192) })))).rejects.toBeInstanceOf(
      JournalWriteError,
    );
    const start = store.record({ type: 'start', at: new Date().toISOString(), runId });
    store.refuseWhileUnwritable();
    // Either written in the journal's last free bytes already, or refused: it no longer waits.
    await start.catch((error: unknown) => expect(error).toBeInstanceOf(JournalWriteError));
    await expect(
      store.record({ type: 'finish', at: new Date().toISOString(), runId, status: 'interrupted', error: 'e'.repeat(8192) }),
    ).rejects.toBeInstanceOf(JournalWriteError);
  });
});
