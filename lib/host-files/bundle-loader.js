/**
 * A long-running receiver's entry: dist/triggler-serve.js in the package (scripts/build-cli.ts
 * copies it there) and receiver.js on the AWS host (the stack's receiver bundle). Runs the bundle
 * beside it named after its own file (`triggler-serve.js` runs `triggler-serve-bundle.js`), its
 * text read in 64 KiB pieces.
 *
 * Node reads a module's file in one piece, into a block of the file's size (the bundle is ~1 MB)
 * from malloc. glibc gives a block that large a mapping of its own, and freeing it raises glibc's
 * mmap threshold to its size and its trim threshold to twice that: from then on the heap keeps up
 * to 2 MB free at its top, and with it what start-up freed below, for as long as the process runs
 * (~3.5 MiB of a receiver at rest). Read in pieces under glibc's default threshold (128 KiB), the
 * text goes to V8's heap alone. The bundle is ASCII throughout (the build makes it so), so each
 * piece decodes on its own.
 */
'use strict';
const { closeSync, openSync, readSync } = require('node:fs');
const { createRequire } = require('node:module');
const { basename, join } = require('node:path');
const { compileFunction } = require('node:vm');

const file = join(__dirname, `${basename(__filename, '.js')}-bundle.js`);
const piece = Buffer.allocUnsafe(64 * 1024);
let source = '';
const fd = openSync(file, 'r');
try {
  for (let bytes = readSync(fd, piece); bytes > 0; bytes = readSync(fd, piece)) source += piece.toString('latin1', 0, bytes);
} finally {
  closeSync(fd);
}
const bundle = { exports: {}, id: file, filename: file, loaded: false };
compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file }).call(
  bundle.exports,
  bundle.exports,
  createRequire(file),
  bundle,
  file,
  __dirname,
);
bundle.loaded = true;
