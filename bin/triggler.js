#!/usr/bin/env node
// `triggler`. From a clone the CLI is TypeScript, run through tsx without a build step; an install
// from `npm pack`'s tarball carries the bundled CLI (dist/triggler.js, built by the prepack script)
// and no TypeScript.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

// Node.js 20.18.1 is supported (package.json engines). The AWS SDK bundled in this version works
// on it; its notice that later SDK releases will need Node.js 22 is about those releases, not this
// install, and would print seven lines before every SSM command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

if (existsSync(join(__dirname, 'triggler-cli.ts'))) {
  require('tsx/cjs');
  require('./triggler-cli.ts');
} else if (process.argv[2] === 'serve') {
  // A long-running receiver: the bundle of `serve` alone, without the other commands' code.
  require('../dist/triggler-serve.js');
} else {
  require('../dist/triggler.js');
}
