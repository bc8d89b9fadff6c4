/**
 * `serve --watch`: a change to the config file (or the token file it names) reloads the receiver
 * exactly as SIGHUP does, since it sends the process SIGHUP: the file again, whole, refused whole
 * when invalid while the running config stays. The folders are watched, not the files, so an
 * editor or a deploy that replaces a file by renaming another over it is seen too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadReceiverConfigFile } from '../receiver';

/** A burst of writes (an editor's save, a rename) is one reload. */
const SETTLE_MS = 200;

/** Starts watching; returns a function that stops it. */
export function watchConfig(configPath: string, onWatch: (files: string[]) => void = () => undefined): () => void {
  const files = new Set([path.resolve(configPath)]);
  try {
    const { tokens } = loadReceiverConfigFile(configPath).config;
    if (tokens.file) files.add(tokens.file);
  } catch {
    // serve has just read it; a file changed since is the next reload's to judge.
  }
  let timer: NodeJS.Timeout | undefined;
  const changed = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => process.kill(process.pid, 'SIGHUP'), SETTLE_MS);
  };
  const watchers = [...new Set([...files].map((file) => path.dirname(file)))].map((dir) =>
    fs.watch(dir, { persistent: false }, (_event, name) => {
      if (name !== null && files.has(path.join(dir, name.toString()))) changed();
    }),
  );
  onWatch([...files]);
  return () => {
    clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
