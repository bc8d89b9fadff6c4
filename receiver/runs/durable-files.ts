/** Writes that survive a crash or a power loss: whole writes, and directory syncs after a rename. */
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';

/** Writes all of `data`, however many writes that takes. */
export async function writeAll(file: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await file.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

/** fsync of a directory: a rename or a new file in it survives a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
