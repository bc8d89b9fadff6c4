#!/usr/bin/env node
// `triggler`. From a clone the CLI is TypeScript, run through tsx without a build step; an install
// from `npm pack`'s tarball carries the bundled CLI (dist/triggler.js, built by the prepack script)
// and no TypeScript.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

if (existsSync(join(__dirname, 'triggler-cli.ts'))) {
  require('tsx/cjs');
  require('./triggler-cli.ts');
} else {
  require('../dist/triggler.js');
}
