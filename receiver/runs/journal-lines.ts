/**
 * Reads a file as lines of bytes in memory bounded by the longest line allowed, not by the file:
 * a journal of any size can be replayed. A line longer than the bound is counted and skipped
 * without being held.
 */
import * as fs from 'node:fs';

export interface JournalLine {
  /** 1-based. */
  number: number;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** Length in bytes, without the newline. */
  length: number;
  /** The line's bytes; undefined when it was longer than the bound (and dropped while read). */
  bytes: Buffer | undefined;
  /** False for text after the last newline: a record whose write never finished. */
  terminated: boolean;
}

const NEWLINE = 0x0a;

/** Read size: what the reader holds of the file at once, besides the line being assembled. */
export const READ_CHUNK_BYTES = 64 * 1024;

export async function* readJournalLines(file: string, maxLineBytes: number): AsyncGenerator<JournalLine> {
  const stream = fs.createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
  let pieces: Buffer[] = [];
  let length = 0;
  let oversized = false;
  let number = 1;
  let offset = 0;
  const take = (terminated: boolean): JournalLine => {
    const line: JournalLine = { number, offset, length, bytes: oversized ? undefined : Buffer.concat(pieces, length), terminated };
    number += 1;
    offset += length + 1;
    pieces = [];
    length = 0;
    oversized = false;
    return line;
  };
  const add = (piece: Buffer): void => {
    length += piece.length;
    if (oversized) return;
    if (length > maxLineBytes) {
      oversized = true;
      pieces = [];
    } else {
      pieces.push(piece);
    }
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE, start); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      add(chunk.subarray(start, end));
      yield take(true);
      start = end + 1;
    }
    // A piece is copied when kept, so the chunk it came from is not held for the rest of the line.
    if (start < chunk.length) add(Buffer.from(chunk.subarray(start)));
  }
  if (length > 0) yield take(false);
}
