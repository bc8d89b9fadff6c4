/**
 * The journal's states on their own: open, failing (a write failed: accepts refused, runs' records
 * held, a retry due), open again, stopping, closing and closed, and a read-only reader. A failed
 * write is one that reaches the file and then throws, as a full disk or an I/O error makes a synced
 * write do (what it left must be cut off).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Journal } from '../../../receiver/runs/journal';
import type { JournalRecord } from '../../../receiver/runs/journal-record';
import { JournalWriteError } from '../../../receiver/runs/run-errors';
import { acceptRecord } from '../../support/journal-records';
import { makeDelivery, makeStateDir, newRunId, recordingLogger, removeDir, waitFor } from '../../support/runner-harness';

let dir: string;
let journals: Journal[];
let failing: jest.SpyInstance | undefined;

beforeEach(() => {
  dir = makeStateDir();
  journals = [];
});

afterEach(async () => {
  failing?.mockRestore();
  failing = undefined;
  for (const journal of journals) await journal.close();
  removeDir(dir);
});

function journalAt(
  mode: 'append' | 'read-only' = 'append',
  options: Partial<ConstructorParameters<typeof Journal>[0]> = {},
): { journal: Journal; written: JournalRecord[] } {
  const written: JournalRecord[] = [];
  const journal = new Journal(
    {
      path: path.join(dir, 'journal.jsonl'),
      dir,
      logger: recordingLogger().logger,
      fsync: true,
      maxRecordBytes: 1024 * 1024,
      compactAfterBytes: 1024 * 1024,
      compactAfterRecords: 1000,
      retryWriteAfterMs: 20,
      written: (records) => written.push(...records),
      current: () => written,
      ...options,
    },
    mode,
  );
  journals.push(journal);
  return { journal, written };
}

type Write = (this: fsp.FileHandle, ...args: unknown[]) => Promise<{ bytesWritten: number }>;

/** From now on, every write reaches the file and then fails, as a synced write on a full disk does. */
async function failSyncs(): Promise<void> {
  const probe = await fsp.open(path.join(dir, 'probe'), 'w');
  await probe.close();
  const prototype = Object.getPrototypeOf(probe) as { write: Write };
  const write = prototype.write;
  failing = jest.spyOn(prototype, 'write').mockImplementation(async function (this: fsp.FileHandle, ...args: unknown[]) {
    await write.apply(this, args);
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  });
}

const start = (runId: string): JournalRecord => ({ type: 'start', at: new Date().toISOString(), runId });

describe('Journal', () => {
  it('takes nothing before it is open; once open, writes records and hands them over in order', async () => {
    const { journal, written } = journalAt();
    expect(journal.stateName).toBe('closed');
    await expect(journal.append(start(newRunId()))).rejects.toThrow('the run store is closed');
    await journal.open();
    expect(journal.stateName).toBe('open');
    const records = [acceptRecord(newRunId(), makeDelivery()), acceptRecord(newRunId(), makeDelivery())];
    await Promise.all(records.map((record) => journal.append(record)));
    expect(written).toEqual(records);
    expect(fs.readFileSync(path.join(dir, 'journal.jsonl'), 'utf8')).toBe(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
    expect(journal.size).toBe(fs.statSync(path.join(dir, 'journal.jsonl')).size);
  });

  it('failing: refuses accepts at once, holds runs’ records, and writes them once a retry succeeds', async () => {
    const { journal, written } = journalAt();
    await journal.open();
    await failSyncs();
    await expect(journal.append(acceptRecord(newRunId(), makeDelivery()))).rejects.toBeInstanceOf(JournalWriteError);
    expect(journal.stateName).toBe('failing');
    expect(journal.health()).toMatchObject({ status: 'degraded', reason: expect.stringContaining('no space left on device') as string });
    await expect(journal.append(acceptRecord(newRunId(), makeDelivery()))).rejects.toBeInstanceOf(JournalWriteError);
    const runId = newRunId();
    const held = journal.append(start(runId));
    failing?.mockRestore();
    await held;
    expect(journal.stateName).toBe('open');
    expect(journal.health()).toEqual({ status: 'ok' });
    expect(written).toEqual([start(runId)].map((record) => ({ ...record, at: expect.any(String) as string })));
    // What the failed writes left is cut off: the file holds the held record alone.
    const lines = fs
      .readFileSync(path.join(dir, 'journal.jsonl'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '');
    expect(lines.map((line) => (JSON.parse(line) as JournalRecord).type)).toEqual(['start']);
  });

  it('stopping: while failing, runs’ records are refused instead of held, those held included', async () => {
    const { journal } = journalAt();
    await journal.open();
    await failSyncs();
    await expect(journal.append(acceptRecord(newRunId(), makeDelivery()))).rejects.toBeInstanceOf(JournalWriteError);
    const held = journal.append(start(newRunId()));
    journal.stopping();
    await expect(held).rejects.toBeInstanceOf(JournalWriteError);
    await expect(journal.append(start(newRunId()))).rejects.toBeInstanceOf(JournalWriteError);
  });

  it('close writes what is queued, then refuses; a held record is refused as closed', async () => {
    const { journal, written } = journalAt();
    await journal.open();
    const queued = acceptRecord(newRunId(), makeDelivery());
    const appended = journal.append(queued);
    await journal.close();
    await appended;
    expect(written).toEqual([queued]);
    expect(journal.stateName).toBe('closed');
    await expect(journal.append(start(newRunId()))).rejects.toThrow('the run store is closed');

    const second = journalAt();
    await second.journal.open();
    await failSyncs();
    await expect(second.journal.append(acceptRecord(newRunId(), makeDelivery()))).rejects.toBeInstanceOf(JournalWriteError);
    const held = expect(second.journal.append(start(newRunId()))).rejects.toThrow('the run store is closed');
    await second.journal.close();
    await held;
  });

  it('read-only: replays what is there and writes nothing', async () => {
    const record = acceptRecord(newRunId(), makeDelivery());
    fs.writeFileSync(path.join(dir, 'journal.jsonl'), `${JSON.stringify(record)}\n`);
    const { journal } = journalAt('read-only');
    const replayed: JournalRecord[] = [];
    await journal.replay((read) => replayed.push(read));
    expect(replayed).toEqual([record]);
    expect(journal.stateName).toBe('read-only');
    await expect(journal.append(start(newRunId()))).rejects.toThrow('the run store is closed');
    await journal.close();
    expect(journal.stateName).toBe('read-only');
    expect(fs.readdirSync(dir)).toEqual(['journal.jsonl']);
  });

  it('retries on its own while nothing is written: a newline probes whether writes succeed again', async () => {
    const { journal } = journalAt();
    await journal.open();
    await failSyncs();
    await expect(journal.append(acceptRecord(newRunId(), makeDelivery()))).rejects.toBeInstanceOf(JournalWriteError);
    failing?.mockRestore();
    await waitFor('the journal to take writes again', () => journal.stateName === 'open');
    await journal.append(acceptRecord(newRunId(), makeDelivery()));
  });

  it('rewrites a state of several megabytes line for line: long lines, and lines past ASCII, whole', async () => {
    const state: JournalRecord[] = [];
    for (let i = 0; i < 12_000; i++) {
      // About half of each line's bytes past ASCII: a line's bytes are not its length.
      state.push(acceptRecord(newRunId(), makeDelivery({ deliveryId: `msg_${i}_${'é'.repeat(200 + (i % 50))}` })));
    }
    // Longer than a third of what a rewrite encodes before each write, and longer than all of it.
    state.splice(5000, 0, start('r'.repeat(400 * 1024)), start('ü'.repeat(1500 * 1024)));
    const { journal } = journalAt('append', { current: () => state, maxRecordBytes: 8 * 1024 * 1024 });
    await journal.open();
    const file = path.join(dir, 'journal.jsonl');
    expect(fs.statSync(file).size).toBeGreaterThan(4 * 1024 * 1024);
    expect(fs.readFileSync(file, 'utf8')).toBe(state.map((record) => `${JSON.stringify(record)}\n`).join(''));
    expect(journal.size).toBe(fs.statSync(file).size);
  });

  describe('compaction during a flood of accepts', () => {
    /** Accepts arrive while this clock stands still; moving it is accepts pausing. */
    let clock: number;
    const journalFile = () => path.join(dir, 'journal.jsonl');
    const lineCount = () => fs.readFileSync(journalFile(), 'utf8').split('\n').filter(Boolean).length;

    async function flooded(accepts: number): Promise<Journal> {
      clock = 1_000_000;
      // The state a rewrite writes: one run, whatever was appended.
      const snapshot: JournalRecord[] = [start(newRunId())];
      const { journal } = journalAt('append', { compactAfterRecords: 10, compactQuietMs: 20, now: () => clock, current: () => snapshot });
      await journal.open();
      for (let i = 0; i < accepts; i++) await journal.append(acceptRecord(newRunId(), makeDelivery()));
      return journal;
    }

    it('waits while accepts keep arriving, and rewrites once they pause', async () => {
      const journal = await flooded(14);
      // Due since the 11th record; its timer has looked more than once, and accepts have not paused.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(lineCount()).toBe(1 + 14);
      clock += 20;
      await waitFor('the rewrite once accepts paused', () => lineCount() === 1);
      // Records that come after it are appended to the rewritten file.
      await journal.append(start(newRunId()));
      expect(lineCount()).toBe(2);
      expect(journal.size).toBe(fs.statSync(journalFile()).size);
    });

    it('rewrites anyway once the file has grown half as much again as made it due', async () => {
      const journal = await flooded(16);
      await journal.close();
      // The 15th accept took it to 16 records, past 1.5 × 10: rewritten as the snapshot with no
      // pause, and the 16th appended after it.
      expect(lineCount()).toBe(2);
    });
  });
});
