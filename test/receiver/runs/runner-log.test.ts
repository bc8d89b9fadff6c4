/** The bounded run log on its own: exactly which bytes are kept. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BoundedRunLog, omissionMarker } from '../../../receiver/runs/run-log';
import { makeStateDir, recordingLogger, removeDir } from '../../support/runner-harness';

let dir: string;
beforeEach(() => {
  dir = makeStateDir();
});
afterEach(() => removeDir(dir));

function openLog(limit: number): { log: BoundedRunLog; file: string } {
  const file = path.join(dir, 'run.log');
  return { log: new BoundedRunLog(file, limit, recordingLogger().logger), file };
}

describe('BoundedRunLog', () => {
  it('keeps everything, unmarked, while the output fits', async () => {
    const { log, file } = openLog(100);
    log.write(Buffer.from('a'.repeat(60)));
    log.write(Buffer.from('b'.repeat(40)));
    expect(await log.finish()).toEqual({ storedBytes: 100, outputBytes: 100, truncated: false });
    expect(fs.readFileSync(file, 'utf8')).toBe(`${'a'.repeat(60)}${'b'.repeat(40)}`);
  });

  it('keeps the first half and the newest bytes, with a marker counting exactly what was left out', async () => {
    const { log, file } = openLog(200);
    const output = Array.from({ length: 1000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    // Chunks of uneven sizes, as pipes deliver them.
    for (let at = 0, size = 1; at < output.length; at += size, size = ((size * 7) % 61) + 1)
      log.write(Buffer.from(output.slice(at, at + size)));
    const summary = await log.finish();
    const stored = fs.readFileSync(file, 'utf8');
    expect(summary).toEqual({ storedBytes: 200, outputBytes: 1000, truncated: true });
    expect(stored.length).toBe(200);
    const head = output.slice(0, 100);
    // Whatever the head and a marker with a three-digit count leave of the 200 bytes.
    const tailLength = 200 - 100 - omissionMarker(999).length;
    const omitted = 1000 - 100 - tailLength;
    expect(String(omitted)).toHaveLength(3);
    expect(stored).toBe(`${head}${omissionMarker(omitted)}${output.slice(1000 - tailLength)}`);
  });

  it('shows the same bytes while running as the file will hold when done', async () => {
    const { log, file } = openLog(120);
    for (let i = 0; i < 50; i++) log.write(Buffer.from(`chunk ${String(i).padStart(2, '0')}\n`));
    const snapshot = log.snapshot();
    await log.finish();
    expect(fs.readFileSync(file)).toEqual(snapshot);
    expect(snapshot.toString().endsWith('chunk 49\n')).toBe(true);
  });

  it('ignores writes after finish', async () => {
    const { log, file } = openLog(50);
    log.write(Buffer.from('kept\n'));
    await log.finish();
    log.write(Buffer.from('too late\n'));
    expect(fs.readFileSync(file, 'utf8')).toBe('kept\n');
  });
});
