/**
 * The log destination on its own: the lines of one turn of the event loop in one write, cut at
 * line ends to what a pipe writes whole, and nothing lost when the reader is behind: a real FIFO
 * whose non-blocking write end fills up (the kernel's EAGAIN), read only later.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { type FdWrite, TurnBatchedDestination } from '../../receiver/log-destination';
import { tempDir } from '../support/receiver-fixture';

const turn = () => new Promise((resolve) => setImmediate(resolve));
const line = (i: number, pad = 80) => `${JSON.stringify({ level: 30, msg: 'delivery accepted', i, pad: 'x'.repeat(pad) })}\n`;

/** Every write's bytes, as the fd took them, in order. */
function recordingWrites(): { write: FdWrite; writes: string[] } {
  const writes: string[] = [];
  return {
    writes,
    write: (_fd, data, offset, length) => {
      writes.push(data.toString('utf8', offset, offset + length));
      return length;
    },
  };
}

describe('the log destination', () => {
  let dir: string;
  const fds: number[] = [];

  beforeEach(() => {
    dir = tempDir();
  });

  afterEach(() => {
    for (const fd of fds.splice(0)) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes the lines of one turn together once the turn is done, in order', async () => {
    const { write, writes } = recordingWrites();
    const destination = new TurnBatchedDestination(1, write);
    const lines = Array.from({ length: 15 }, (_, i) => line(i));
    for (const text of lines) destination.write(text);
    expect(writes).toEqual([]);
    expect(destination.written).toBe(false);
    await turn();
    expect(writes).toEqual([lines.join('')]);
    expect(destination.written).toBe(true);
    destination.write(line(15));
    await destination.whenWritten();
    expect(writes).toEqual([lines.join(''), line(15)]);
  });

  it('cuts a large turn at line ends into writes a pipe takes whole (4096 bytes); a longer line goes whole', async () => {
    const { write, writes } = recordingWrites();
    const destination = new TurnBatchedDestination(1, write);
    const lines = [...Array.from({ length: 100 }, (_, i) => line(i)), line(100, 10_000), line(101)];
    for (const text of lines) destination.write(text);
    await turn();
    expect(writes.join('')).toBe(lines.join(''));
    expect(writes.length).toBeGreaterThan(1);
    for (const piece of writes) {
      expect(piece.endsWith('\n')).toBe(true);
      if (Buffer.byteLength(piece) > 4096) expect(piece).toBe(line(100, 10_000));
    }
  });

  it('keeps what a full pipe will not take, in order, and writes it once the reader catches up', async () => {
    const fifo = join(dir, 'stdout');
    execFileSync('mkfifo', [fifo]);
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    fds.push(reader);
    const writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    fds.push(writer);
    const destination = new TurnBatchedDestination(writer);
    // ~500 KiB: several times what a pipe holds.
    const lines = Array.from({ length: 4000 }, (_, i) => line(i));
    for (const text of lines) destination.write(text);
    await turn();
    // The pipe is full and nobody has read: the rest is held, not lost.
    expect(destination.written).toBe(false);
    let done = false;
    void destination.whenWritten().then(() => (done = true));
    let read = '';
    const chunk = Buffer.alloc(64 * 1024);
    for (;;) {
      let bytes = 0;
      try {
        bytes = fs.readSync(reader, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      }
      read += chunk.toString('utf8', 0, bytes);
      if (bytes === 0) {
        if (done) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    expect(read).toBe(lines.join(''));
    expect(destination.written).toBe(true);
  });

  it('past 16 MiB held, drops new lines and says how many once the fd takes writes again', async () => {
    let blocked = true;
    const taken: string[] = [];
    const destination = new TurnBatchedDestination(1, (_fd, data, offset, length) => {
      if (blocked) throw Object.assign(new Error('EAGAIN: resource temporarily unavailable, write'), { code: 'EAGAIN' });
      taken.push(data.toString('utf8', offset, offset + length));
      return length;
    });
    const big = line(0, 1024 * 1024);
    for (let i = 0; i < 20; i++) destination.write(big);
    await turn();
    expect(destination.written).toBe(false);
    blocked = false;
    await destination.whenWritten();
    const lines = taken.join('').split('\n').filter(Boolean);
    const bigLines = lines.filter((text) => text === big.trimEnd());
    expect(bigLines.length).toBeGreaterThanOrEqual(15);
    expect(bigLines.length).toBeLessThan(20);
    const dropped = lines.map((text) => JSON.parse(text) as { msg: string }).filter((entry) => entry.msg.includes('log lines dropped'));
    expect(dropped).toEqual([
      expect.objectContaining({ msg: `${20 - bigLines.length} log lines dropped: stdout took nothing for too long` }),
    ]);
  });

  it('lets lines go without throwing when stdout is gone (a closed pipe)', async () => {
    const destination = new TurnBatchedDestination(1, () => {
      throw Object.assign(new Error('EPIPE: broken pipe, write'), { code: 'EPIPE' });
    });
    destination.write(line(0));
    await turn();
    expect(destination.written).toBe(true);
    await expect(destination.whenWritten()).resolves.toBeUndefined();
  });

  it('writes what is held before the process exits, without waiting for a turn', () => {
    const { write, writes } = recordingWrites();
    const destination = new TurnBatchedDestination(1, write);
    destination.write(line(0));
    destination.write(line(1));
    destination.flushBeforeExit();
    expect(writes).toEqual([line(0) + line(1)]);
    expect(destination.written).toBe(true);
  });
});
