#!/usr/bin/env node
// `npx triggler` from a clone: the CLI is TypeScript, run through tsx without a build step.
require('tsx/cjs');
require('./triggler-cli.ts');
