/**
 * What a line of the run store's journal may hold: the records, checked with zod, and how a line is
 * read (strict UTF-8, then JSON, then the schema), with an account of the lines that cannot be.
 */
import { z } from 'zod';
import type { JournalLine } from './journal-lines';
import { deliveryFields, finalStatus, processGroup, storedRun } from './run-record';

const journalRecord = z.discriminatedUnion('type', [
  /** A delivery joined (or created) a run. */
  z.object({
    type: z.literal('accept'),
    at: z.string(),
    runId: z.string().min(1),
    dedupeKey: z.string(),
    dedupeUntil: z.number(),
    delivery: deliveryFields,
    /** Set on the accept that creates a re-run: the run it runs again. */
    rerunOf: z.string().optional(),
    /** Set on the accept that creates a redelivery: the recorded delivery whose push it runs again. */
    redeliveryOf: z.string().optional(),
  }),
  z.object({ type: z.literal('start'), at: z.string(), runId: z.string().min(1) }),
  z.object({
    type: z.literal('finish'),
    at: z.string(),
    runId: z.string().min(1),
    status: finalStatus,
    // How it ended: the same fields, checked the same way, as the run record keeps.
    ...storedRun.pick({ exitCode: true, signal: true, error: true, logBytes: true, logTruncated: true, deploy: true }).shape,
  }),
  /** A run's command was spawned, in this process group. */
  z.object({ type: z.literal('spawned'), at: z.string(), runId: z.string().min(1), processGroup }),
  /** A run interrupted by a crash is run again once, as this new run. */
  z.object({ type: z.literal('rerun'), at: z.string(), runId: z.string().min(1), of: z.string().min(1) }),
  /** Written by compaction: a run as it stood. */
  z.object({ type: z.literal('run'), run: storedRun }),
  /** Written by compaction: a dedupe key still remembered. */
  z.object({ type: z.literal('dedupe'), dedupeKey: z.string(), dedupeUntil: z.number(), runId: z.string().min(1) }),
]);

export type JournalRecord = z.infer<typeof journalRecord>;
export type AcceptRecord = Extract<JournalRecord, { type: 'accept' }>;
export type FinishRecord = Extract<JournalRecord, { type: 'finish' }>;

/**
 * Strict: bytes that are not UTF-8 make the line unreadable instead of turning into U+FFFD, which
 * could make one dedupe key out of two different ones. The BOM is kept, so it fails the parse too.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The record on a line, 'blank', or why the line cannot be read. */
export function readRecord(line: JournalLine, maxRecordBytes: number): JournalRecord | 'blank' | string {
  if (!line.bytes) return `longer than ${maxRecordBytes} bytes`;
  let text: string;
  try {
    text = utf8.decode(line.bytes);
  } catch {
    return 'not valid UTF-8';
  }
  if (text.trim() === '') return 'blank';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not a journal record';
  }
  const parsed = journalRecord.safeParse(value);
  return parsed.success ? parsed.data : 'not a journal record';
}

/** Where the log says unreadable lines were: the first of them by place, all of them by count. */
const SKIPPED_PLACES_LOGGED = 100;

export class SkippedLines {
  records = 0;
  bytes = 0;
  private readonly places: { line: number; offset: number; bytes: number; problem: string }[] = [];

  add(line: JournalLine, problem: string): void {
    this.records += 1;
    // The newline went too.
    this.bytes += line.length + 1;
    if (this.places.length < SKIPPED_PLACES_LOGGED)
      this.places.push({ line: line.number, offset: line.offset, bytes: line.length + 1, problem });
  }

  summary(): Record<string, unknown> {
    const [first] = this.places;
    const what = first ? `line ${first.line} is ${first.problem}` : '';
    return {
      reason: this.records === 1 ? what : `${this.records} lines cannot be read, the first: ${what}`,
      skippedRecords: this.records,
      skippedBytes: this.bytes,
      skipped: this.places,
      ...(this.records > this.places.length ? { skippedNotListed: this.records - this.places.length } : {}),
    };
  }
}
