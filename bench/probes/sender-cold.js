/** Runs in a fresh `node`: loads the bundle, then invokes it once. Results go to fd 3, logs to /dev/null. */
const { writeSync } = require('node:fs');
const started = performance.now();
const cpuBefore = process.cpuUsage();
const { handler } = require(process.argv[2]);
const initMs = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
const initCpuMs = (cpu.user + cpu.system) / 1000;
const event = JSON.parse(process.env.BENCH_EVENT);
const t = performance.now();
handler(event, { awsRequestId: 'cold', getRemainingTimeInMillis: () => 30000 }).then(
  () => writeSync(3, JSON.stringify({ bootMs: started, initMs, initCpuMs, firstMs: performance.now() - t })),
  (error) => {
    writeSync(2, 'cold probe: ' + error.message + '\n');
    process.exit(1);
  },
);
