/** The run journal with real files: durability, replay after a crash, corruption, compaction, group commit. */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { AcceptedDelivery } from '../../../receiver/delivery';
import { JournalWriteError, RUN_LISTS_LIMIT, type RunStore } from '../../../receiver/runs/run-store';
import { acceptRecord, journalLine } from '../../support/journal-records';
import { logText, makeDelivery, makeTrigger, newRunId, removeDir, stateFolderEach, waitFor } from '../../support/runner-harness';

// Before the folder's own: a mocked fsync is put back before its stores close.
afterEach(() => jest.restoreAllMocks());
const folder = stateFolderEach();

function journalLines(): string[] {
  return fs.readFileSync(path.join(folder.stateDir, 'journal.jsonl'), 'utf8').split('\n').filter(Boolean);
}

/** The FileHandle class is not exported; its prototype is reached through an open handle. */
async function fileHandlePrototype(): Promise<{ write: (...args: unknown[]) => Promise<{ bytesWritten: number }> }> {
  const handle = await fsp.open(path.join(folder.dir, 'probe'), 'w');
  await handle.close();
  return Object.getPrototypeOf(handle) as { write: (...args: unknown[]) => Promise<{ bytesWritten: number }> };
}

/** Whether this process holds the journal open for synced writes (O_DSYNC), from the kernel's own view of its descriptors. */
function journalOpenSynced(): boolean {
  const journal = fs.realpathSync(path.join(folder.stateDir, 'journal.jsonl'));
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== journal) continue;
    const flags = Number.parseInt(/^flags:\s+([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    return (flags & fs.constants.O_DSYNC) !== 0;
  }
  throw new Error(`${journal} is not open`);
}

describe('restart after a crash', () => {
  it('records the running run as interrupted, runs the waiting one, and still knows the dedupe keys', async () => {
    const deliveries = [makeDelivery(), makeDelivery(), makeDelivery()];
    const plan = JSON.stringify({ stateDir: folder.stateDir, workDir: folder.workDir, deliveries });
    const fixture = path.join(__dirname, '..', '..', 'support', 'children', 'runner-crash.ts');
    const receiver = spawn(process.execPath, ['--require', 'tsx/cjs', fixture, plan], {
      cwd: path.join(__dirname, '..', '..', '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    receiver.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    receiver.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise((resolve) => receiver.once('exit', resolve));
    let commandPid = 0;
    try {
      await waitFor(
        `the crashing receiver to report (stderr: ${stderr})`,
        () => stdout.includes('\n') || receiver.exitCode !== null,
        20_000,
      );
      commandPid = Number(fs.readFileSync(path.join(folder.workDir, 'command.pid'), 'utf8'));
    } finally {
      // The crash: no close(), no finish record. The command outlives it (its own process group) and is killed by hand.
      receiver.kill('SIGKILL');
      await exited;
      if (commandPid > 0) process.kill(-commandPid, 'SIGKILL');
    }
    const ids = JSON.parse(stdout) as { running: string; waiting: string[] };
    expect(ids.waiting).toHaveLength(2);
    expect(ids.waiting[0]).toBe(ids.waiting[1]);

    const { runner, lines } = await folder.openRunner({
      triggers: [makeTrigger({ command: 'echo "$TRIGGLER_COMMIT"', cwd: folder.workDir })],
    });
    expect(runner.history.run(ids.running)).toMatchObject({
      status: 'interrupted',
      error: 'receiver stopped while it ran',
      deliveryIds: [deliveries[0]?.deliveryId],
    });
    expect(runner.history.run(ids.running)?.finishedAt).toBeDefined();
    expect(lines.some((line) => line.msg.includes('recorded as interrupted') && line.run === ids.running)).toBe(true);
    await runner.idle();
    const waiting = runner.history.run(ids.waiting[0] ?? '');
    expect(waiting).toMatchObject({
      status: 'succeeded',
      deliveryIds: [deliveries[1]?.deliveryId, deliveries[2]?.deliveryId],
      commit: deliveries[2]?.commit,
    });
    expect(await logText(runner, ids.waiting[0] ?? '')).toBe(`${deliveries[2]?.commit}\n`);
    for (const [index, runId] of [ids.running, ...ids.waiting].entries()) {
      const delivery = deliveries[index] as AcceptedDelivery;
      expect(runner.seen(delivery.dedupeKey)).toEqual({ status: 'duplicate', runId, coalesced: false });
      expect(await runner.accept(delivery)).toEqual({ status: 'duplicate', runId, coalesced: false });
    }
    expect(runner.history.runs()).toHaveLength(2);
  });

  it('skips a partly written last line with a warning and keeps everything before it', async () => {
    const { store } = await folder.openStore();
    const delivery = makeDelivery();
    const runId = newRunId();
    await store.record(acceptRecord(runId, delivery));
    await store.close();
    fs.appendFileSync(path.join(folder.stateDir, 'journal.jsonl'), '{"type":"accept","at":"2025-01-0');

    const reopened = await folder.openStore();
    expect(reopened.store.run(runId)).toMatchObject({ status: 'pending', deliveryIds: [delivery.deliveryId] });
    expect(reopened.store.dedupeEntry(delivery.dedupeKey)).toEqual({ runId, until: delivery.dedupeUntil });
    expect(reopened.lines.find((line) => line.level === 40 && line.msg.includes('partly written'))).toBeDefined();
    // Compaction rewrote the journal: nothing partial is left for later appends to bury.
    expect(fs.readFileSync(path.join(folder.stateDir, 'journal.jsonl'), 'utf8').endsWith('\n')).toBe(true);
    expect(fs.readdirSync(folder.stateDir).filter((name) => name.includes('corrupt'))).toEqual([]);
  });

  it('sets a journal that is corrupt before its end aside, logs an error and keeps every record it can read', async () => {
    const { store } = await folder.openStore();
    const runId = newRunId();
    await store.record(acceptRecord(runId, makeDelivery()));
    await store.record({ type: 'start', at: new Date().toISOString(), runId });
    await store.close();
    const journal = path.join(folder.stateDir, 'journal.jsonl');
    const [first, second] = journalLines();
    fs.writeFileSync(journal, `${first}\nthis is not json\n${second}\n`);

    const reopened = await folder.openStore();
    expect(reopened.store.run(runId)?.status).toBe('interrupted');
    const aside = fs.readdirSync(folder.stateDir).filter((name) => name.startsWith('journal.jsonl.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(fs.readFileSync(path.join(folder.stateDir, aside[0] ?? ''), 'utf8')).toContain('this is not json');
    expect(reopened.lines.find((line) => line.level === 50 && line.msg.includes('corrupt'))).toMatchObject({
      reason: 'line 2 is not a journal record',
    });
    // And the fresh journal works.
    const next = newRunId();
    await reopened.store.record(acceptRecord(next, makeDelivery()));
    expect(reopened.store.run(next)?.status).toBe('pending');
  });

  it('records a waiting run whose trigger is no longer configured as failed, saying why', async () => {
    const first = await folder.openRunner({
      triggers: [makeTrigger({ branch: 'gone', command: 'sleep 30', cwd: folder.workDir })],
      shutdownGraceSeconds: 0,
    });
    const running = await first.runner.accept(makeDelivery({ branch: 'gone' }));
    await waitFor('the run to start', () => first.runner.history.run(running.runId)?.status === 'running');
    const waiting = await first.runner.accept(makeDelivery({ branch: 'gone' }));
    await first.runner.close();

    const { runner, lines } = await folder.openRunner({ triggers: [makeTrigger({ command: 'true', cwd: folder.workDir })] });
    expect(runner.history.run(waiting.runId)).toMatchObject({ status: 'failed', error: 'no trigger is configured for app@gone any more' });
    expect(lines.find((line) => line.level === 50 && line.run === waiting.runId)).toBeDefined();
  });
});

describe('compaction', () => {
  it('keeps unfinished runs, the newest keepRuns finished runs and live dedupe keys, and deletes dropped logs', async () => {
    const first = await folder.openRunner({
      triggers: [makeTrigger({ command: 'echo "$TRIGGLER_RUN_ID"', cwd: folder.workDir })],
      keepRuns: 2,
    });
    const finished: string[] = [];
    const deliveries: AcceptedDelivery[] = [];
    for (let i = 0; i < 4; i++) {
      const delivery = makeDelivery({ dedupeUntil: Date.now() + (i === 0 ? 100 : 300_000) });
      deliveries.push(delivery);
      finished.push((await first.runner.accept(delivery)).runId);
      await first.runner.idle();
    }
    // Dropped from memory (and their logs deleted) as soon as there are more than keepRuns.
    expect(first.runner.history.runs().map((run) => run.id)).toEqual([finished[3], finished[2]]);
    await waitFor('dropped logs to be deleted', () => fs.readdirSync(path.join(folder.stateDir, 'runs')).length === 2);
    await first.runner.close();
    fs.writeFileSync(path.join(folder.stateDir, 'runs', `${newRunId()}.log`), 'a log no run names');
    await new Promise((resolve) => setTimeout(resolve, 150));

    const { runner } = await folder.openRunner({ triggers: [makeTrigger({ command: 'true', cwd: folder.workDir })], keepRuns: 2 });
    expect(runner.history.runs().map((run) => run.id)).toEqual([finished[3], finished[2]]);
    expect(fs.readdirSync(path.join(folder.stateDir, 'runs')).sort()).toEqual([`${finished[2]}.log`, `${finished[3]}.log`]);
    const records = journalLines().map((line) => JSON.parse(line) as { type: string; dedupeKey?: string });
    expect(records.filter((record) => record.type === 'run')).toHaveLength(2);
    // The first key expired; the keys of dropped runs still answer as duplicates.
    expect(records.filter((record) => record.type === 'dedupe').map((record) => record.dedupeKey)).toEqual(
      deliveries.slice(1).map((delivery) => delivery.dedupeKey),
    );
    expect(runner.seen(deliveries[0]?.dedupeKey ?? '')).toBeUndefined();
    expect(runner.seen(deliveries[1]?.dedupeKey ?? '')).toEqual({ status: 'duplicate', runId: finished[1], coalesced: false });
  });

  it('compacts while running once the journal grows past its limit, losing nothing', async () => {
    const { store } = await folder.openStore({ keepRuns: 5, compactAfterRecords: 40 });
    const runIds: string[] = [];
    const keys: string[] = [];
    for (let i = 0; i < 30; i++) {
      const runId = newRunId();
      const delivery = makeDelivery();
      runIds.push(runId);
      keys.push(delivery.dedupeKey);
      await store.record(acceptRecord(runId, delivery));
      await store.record({ type: 'start', at: new Date().toISOString(), runId });
      await store.record({ type: 'finish', at: new Date().toISOString(), runId, status: 'succeeded', exitCode: 0 });
    }
    // 90 records written; compaction left at most one snapshot (5 runs + 30 keys) plus what came after it.
    expect(journalLines().length).toBeLessThan(90);
    await store.close();

    const { store: reopened } = await folder.openStore({ keepRuns: 5 });
    expect(reopened.allRuns().map((run) => run.id)).toEqual(runIds.slice(-5).reverse());
    for (const [index, key] of keys.entries()) expect(reopened.dedupeEntry(key)?.runId).toBe(runIds[index]);
  });
});

describe('group commit', () => {
  it('writes accepts that arrive together in one synced write, and each resolves only once written', async () => {
    const prototype = await fileHandlePrototype();
    const { runner } = await folder.openRunner({ triggers: [makeTrigger({ command: 'true', cwd: folder.workDir })] });
    await runner.idle();
    expect(journalOpenSynced()).toBe(true);
    const write = jest.spyOn(prototype, 'write');
    const deliveries = Array.from({ length: 1000 }, () => makeDelivery());
    const results = await Promise.all(deliveries.map((delivery) => runner.accept(delivery)));
    expect(write.mock.calls.length).toBeGreaterThanOrEqual(1);
    expect(write.mock.calls.length).toBeLessThanOrEqual(3);
    const accepted = journalLines().filter((line) => line.includes('"type":"accept"'));
    expect(accepted).toHaveLength(1000);
    expect(results.every((result) => result.status === 'accepted')).toBe(true);
    await runner.idle();
  });

  it('writes without syncing when fsync is turned off', async () => {
    const { runner } = await folder.openRunner({ triggers: [makeTrigger({ command: 'true', cwd: folder.workDir })], fsync: false });
    const { runId } = await runner.accept(makeDelivery());
    await runner.idle();
    expect(runner.history.run(runId)?.status).toBe('succeeded');
    expect(journalOpenSynced()).toBe(false);
    expect(journalLines().some((line) => line.includes(runId))).toBe(true);
  });

  it('refuses accepts once the journal cannot be written, and remembers nothing of them', async () => {
    const prototype = await fileHandlePrototype();
    const { runner } = await folder.openRunner({ triggers: [makeTrigger({ command: 'true', cwd: folder.workDir })] });
    jest.spyOn(prototype, 'write').mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
    const failed = makeDelivery();
    await expect(runner.accept(failed)).rejects.toBeInstanceOf(JournalWriteError);
    expect(runner.seen(failed.dedupeKey)).toBeUndefined();
    expect(runner.history.runs()).toEqual([]);
    await expect(runner.accept(makeDelivery())).rejects.toThrow('cannot write the run journal: EIO: i/o error, write');
    await runner.idle();
  });
});

describe('run ids', () => {
  it('sort in the order they were made and do not repeat', () => {
    const ids = Array.from({ length: 10_000 }, () => newRunId());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toMatch(/^r_[a-z0-9]+$/);
  });
});

describe('a run that carries a flood', () => {
  it('counts every delivery but lists only the newest RUN_LISTS_LIMIT ids and commits, across a reopen', async () => {
    const { store } = await folder.openStore();
    const runId = newRunId();
    const total = RUN_LISTS_LIMIT + 5;
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        store.record(acceptRecord(runId, makeDelivery({ deliveryId: `msg_flood_${i}`, commit: i.toString(16).padStart(40, '0') }))),
      ),
    );
    const check = (run: ReturnType<RunStore['run']>) => {
      expect(run?.deliveries).toBe(total);
      expect(run?.deliveryIds).toHaveLength(RUN_LISTS_LIMIT);
      expect(run?.deliveryIds[0]).toBe('msg_flood_5');
      expect(run?.deliveryIds.at(-1)).toBe(`msg_flood_${total - 1}`);
      expect(run?.commits).toHaveLength(RUN_LISTS_LIMIT);
      expect(run?.commit).toBe((total - 1).toString(16).padStart(40, '0'));
    };
    check(store.run(runId));
    await store.close();
    const reopened = await folder.openStore();
    check(reopened.store.run(runId));
  });
});

const journalPath = () => path.join(folder.stateDir, 'journal.jsonl');

describe('a journal damaged in the middle', () => {
  it('skips only the unreadable lines, keeps every other record, and logs how many records and bytes went and where', async () => {
    const [one, two] = [newRunId(), newRunId()];
    const [first, second] = [makeDelivery(), makeDelivery()];
    const now = new Date().toISOString();
    const notJson = 'this is not json\n';
    const notARecord = '{"type":"nothing-we-write","runId":"r_1"}\n';
    const parts = [
      journalLine(acceptRecord(one, first)),
      notJson,
      journalLine({ type: 'start', at: now, runId: one }),
      notARecord,
      journalLine({ type: 'finish', at: now, runId: one, status: 'succeeded', exitCode: 0 }),
      '\n',
      journalLine(acceptRecord(two, second)),
    ];
    fs.mkdirSync(folder.stateDir, { recursive: true });
    fs.writeFileSync(journalPath(), parts.join(''));
    const offsetOf = (part: string) => Buffer.byteLength(parts.slice(0, parts.indexOf(part)).join(''));

    const { store, lines } = await folder.openStore();
    expect(store.run(one)).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(store.run(two)).toMatchObject({ status: 'pending', deliveryIds: [second.deliveryId] });
    expect(store.dedupeEntry(first.dedupeKey)?.runId).toBe(one);
    expect(store.dedupeEntry(second.dedupeKey)?.runId).toBe(two);
    expect(lines.find((entry) => entry.level === 50)).toMatchObject({
      reason: '2 lines cannot be read, the first: line 2 is not a journal record',
      skippedRecords: 2,
      skippedBytes: notJson.length + notARecord.length,
      skipped: [
        { line: 2, offset: offsetOf(notJson), bytes: notJson.length, problem: 'not a journal record' },
        { line: 4, offset: offsetOf(notARecord), bytes: notARecord.length, problem: 'not a journal record' },
      ],
    });
    // The compacted journal holds all of it, and nothing unreadable.
    await store.close();
    const reopened = await folder.openStore();
    expect(reopened.store.allRuns().map((run) => run.id)).toEqual([two, one]);
    expect(reopened.lines.filter((entry) => entry.level >= 40)).toEqual([]);
  });

  it('decodes strictly: a line that is not UTF-8 is skipped, not remembered under a key with U+FFFD in it', async () => {
    const kept = makeDelivery();
    const runId = newRunId();
    const badKey = journalLine(acceptRecord(newRunId(), makeDelivery({ dedupeKey: 'standard:caf\u00e9' })));
    // "é" is C3 A9 in UTF-8; C3 28 is no character at all, and a lenient decoder makes it "\uFFFD(".
    const bytes = Buffer.from(badKey);
    const at = bytes.indexOf(Buffer.from([0xc3, 0xa9]));
    bytes[at + 1] = 0x28;
    fs.mkdirSync(folder.stateDir, { recursive: true });
    fs.writeFileSync(journalPath(), Buffer.concat([bytes, Buffer.from(journalLine(acceptRecord(runId, kept)))]));

    const { store, lines } = await folder.openStore();
    expect(store.dedupeEntry('standard:caf\ufffd(')).toBeUndefined();
    expect(store.allRuns().map((run) => run.id)).toEqual([runId]);
    expect(store.dedupeEntry(kept.dedupeKey)?.runId).toBe(runId);
    expect(lines.find((entry) => entry.level === 50)).toMatchObject({
      reason: 'line 1 is not valid UTF-8',
      skippedRecords: 1,
      skippedBytes: bytes.length,
    });
  });
});

describe('a journal of any size', () => {
  it('reads no line longer than maxRecordBytes: a longer one is skipped unread and the records after it kept', async () => {
    const maxRecordBytes = 64 * 1024;
    const runId = newRunId();
    const delivery = makeDelivery();
    const before = journalLine(acceptRecord(runId, delivery));
    const long = `${'x'.repeat(4 * 1024 * 1024)}\n`;
    fs.mkdirSync(folder.stateDir, { recursive: true });
    fs.writeFileSync(journalPath(), before + long + journalLine({ type: 'start', at: new Date().toISOString(), runId }));
    const decode = jest.spyOn(TextDecoder.prototype, 'decode');
    const parse = jest.spyOn(JSON, 'parse');
    const toString = jest.spyOn(Buffer.prototype, 'toString');

    const { store, lines } = await folder.openStore({ maxRecordBytes });
    expect(store.run(runId)?.status).toBe('interrupted');
    const longest = (calls: unknown[][]) => Math.max(0, ...calls.map(([input]) => (input as { length?: number } | undefined)?.length ?? 0));
    expect(longest(decode.mock.calls)).toBeLessThanOrEqual(maxRecordBytes);
    expect(longest(parse.mock.calls)).toBeLessThanOrEqual(maxRecordBytes);
    expect(Math.max(0, ...toString.mock.contexts.map((buffer) => (buffer as Buffer).length))).toBeLessThanOrEqual(maxRecordBytes);
    expect(lines.find((entry) => entry.level === 50)).toMatchObject({
      reason: `line 2 is longer than ${maxRecordBytes} bytes`,
      skippedRecords: 1,
      skippedBytes: long.length,
      skipped: [{ line: 2, offset: Buffer.byteLength(before), bytes: long.length }],
    });
  });

  /** Writes a journal of about `megabytes` of valid records that leave one run behind, and replays it in a child process. */
  async function replayInChild(megabytes: number): Promise<{ grewBytes: number; runs: number }> {
    removeDir(folder.stateDir);
    fs.mkdirSync(folder.stateDir, { recursive: true });
    const runId = newRunId();
    const at = new Date().toISOString();
    const pair =
      journalLine({ type: 'start', at, runId }) + journalLine({ type: 'finish', at, runId, status: 'failed', error: 'e'.repeat(2000) });
    const block = pair.repeat(Math.ceil((1024 * 1024) / pair.length));
    const fd = fs.openSync(journalPath(), 'w');
    fs.writeSync(fd, journalLine(acceptRecord(runId, makeDelivery())));
    for (let written = 0; written < megabytes * 1024 * 1024; written += block.length) fs.writeSync(fd, block);
    fs.closeSync(fd);
    const fixture = path.join(__dirname, '..', '..', 'support', 'children', 'replay-memory.ts');
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--require', 'tsx/cjs', fixture, folder.stateDir],
        { cwd: path.join(__dirname, '..', '..', '..') },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      ),
    );
    return JSON.parse(stdout) as { grewBytes: number; runs: number };
  }

  it('replays in memory that does not grow with the journal: 64 MiB costs no more than 8 MiB', async () => {
    const small = await replayInChild(8);
    const large = await replayInChild(64);
    expect(small.runs).toBe(1);
    expect(large.runs).toBe(1);
    // Reading the file into one string would cost twice its size at least (the bytes, then the text).
    expect(large.grewBytes - small.grewBytes).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('remembered delivery ids', () => {
  it('are bounded by count: past maxRememberedIds the one expiring soonest is forgotten first, with a warning', async () => {
    const now = Date.now();
    const later = makeDelivery({ dedupeUntil: now + 300_000 });
    const soonest = makeDelivery({ dedupeUntil: now + 10_000 });
    const middle = makeDelivery({ dedupeUntil: now + 200_000 });
    const newest = makeDelivery({ dedupeUntil: now + 100_000 });
    const { store } = await folder.openStore({ maxRememberedIds: 3 });
    const runId = newRunId();
    for (const delivery of [later, soonest, middle, newest]) await store.record(acceptRecord(runId, delivery));
    // Not the oldest one (later), but the one that expires first.
    expect(store.dedupeEntry(soonest.dedupeKey)).toBeUndefined();
    for (const delivery of [later, middle, newest]) expect(store.dedupeEntry(delivery.dedupeKey)?.runId).toBe(runId);
    expect(store.run(runId)?.deliveries).toBe(4);
    await store.close();

    const reopened = await folder.openStore({ maxRememberedIds: 2 });
    expect(reopened.store.dedupeEntry(newest.dedupeKey)).toBeUndefined();
    for (const delivery of [later, middle]) expect(reopened.store.dedupeEntry(delivery.dedupeKey)?.runId).toBe(runId);
    // Replay met all four again: the soonest and then the newest went.
    expect(reopened.lines.find((entry) => entry.level === 40 && entry.msg.includes('forgotten early'))).toMatchObject({
      forgotten: 2,
      maxRememberedIds: 2,
    });
  });

  it('keep the journal and start-up bounded under a sustained flood of valid unique deliveries', async () => {
    const maxRememberedIds = 500;
    const { store } = await folder.openStore({ maxRememberedIds, compactAfterBytes: 64 * 1024, fsync: false, keepRuns: 5 });
    const journal = journalPath();
    let largest = 0;
    let written = 0;
    let first: AcceptedDelivery | undefined;
    let last: AcceptedDelivery | undefined;
    for (let batch = 0; batch < 100; batch++) {
      const runId = newRunId();
      const deliveries = Array.from({ length: 200 }, () => makeDelivery({ dedupeUntil: Date.now() + 86_400_000 }));
      first ??= deliveries[0];
      last = deliveries.at(-1);
      const records = deliveries.map((delivery) => acceptRecord(runId, delivery));
      written += records.reduce((sum, record) => sum + journalLine(record).length, 0);
      await Promise.all(records.map((record) => store.record(record)));
      await store.record({ type: 'start', at: new Date().toISOString(), runId });
      await store.record({ type: 'finish', at: new Date().toISOString(), runId, status: 'succeeded', exitCode: 0 });
      largest = Math.max(largest, fs.statSync(journal).size);
    }
    // 20,000 deliveries, several MB written; the journal never held more than a few hundred KB.
    expect(written).toBeGreaterThan(5 * 1024 * 1024);
    expect(largest).toBeLessThan(512 * 1024);
    await store.close();

    const started = Date.now();
    const reopened = await folder.openStore({ maxRememberedIds, keepRuns: 5 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(journalLines().filter((text) => text.includes('"type":"dedupe"'))).toHaveLength(maxRememberedIds);
    expect(reopened.store.dedupeEntry(last?.dedupeKey ?? '')).toBeDefined();
    expect(reopened.store.dedupeEntry(first?.dedupeKey ?? '')).toBeUndefined();
    expect(reopened.store.allRuns()).toHaveLength(5);
  });
});
