/** Runs in its own `node`: warm handler calls, one delivery each, then bare fetches for comparison. */
const { writeSync } = require('node:fs');
const { handler } = require(process.argv[2]);
const count = Number(process.argv[3]);
const event = JSON.parse(process.env.BENCH_EVENT);
const context = { awsRequestId: 'warm', getRemainingTimeInMillis: () => 30000 };
(async () => {
  const handlerMs = [];
  for (let i = -50; i < count; i++) {
    event.Records[0].eventId = 'warm-' + process.pid + '-' + i;
    const t = performance.now();
    await handler(event, context);
    if (i >= 0) handlerMs.push(performance.now() - t);
  }
  const fetchMs = [];
  const url = process.env.BENCH_BARE_URL;
  for (let i = -50; i < count; i++) {
    const t = performance.now();
    const response = await fetch(url, { method: 'POST', body: '{"type":"git.push"}', headers: { 'content-type': 'application/json' } });
    await response.text();
    if (i >= 0) fetchMs.push(performance.now() - t);
  }
  writeSync(3, JSON.stringify({ handlerMs, fetchMs, rssMiB: process.memoryUsage().rss / 2 ** 20 }));
})().catch((error) => {
  writeSync(2, 'warm probe: ' + error.message + '\n');
  process.exit(1);
});
