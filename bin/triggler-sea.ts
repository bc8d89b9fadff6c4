/**
 * The entry of the single executable that scripts/build-sea.ts builds: the CLI, started as
 * bin/triggler.js starts it, with no Node.js installed beside it.
 */
import cluster from 'node:cluster';

// As bin/triggler.js: the bundled AWS SDK works on this Node.js; its notice is about later releases.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Node.js hands a single executable its own path as the script (argv[1]). A cluster worker is
// started as `<executable> <that script> <arguments>`, so it receives the executable's path once
// more, where the command (`serve`) should be.
if (cluster.isWorker) process.argv.splice(2, 1);

// After the lines above: an import would run the CLI before them.
require('./triggler-cli');
