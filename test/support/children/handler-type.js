/** Loads a module (argv[2], relative to the working directory) in plain node and prints the type of its `handler` export. */
const { resolve } = require('node:path');

process.stdout.write(typeof require(resolve(process.argv[2])).handler);
