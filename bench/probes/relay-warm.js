/** Runs in its own `node`: warm forwarded deliveries, forged requests, then bare fetches. */
const { writeSync } = require('node:fs');
const { handler } = require(process.argv[2]);
const count = Number(process.argv[3]);
const context = { awsRequestId: 'warm', getRemainingTimeInMillis: () => 30000 };
async function timed(event, status) {
  const times = [];
  for (let i = -50; i < count; i++) {
    event.headers['x-github-delivery'] = 'bench-' + process.pid + '-' + status + '-' + i;
    const t = performance.now();
    const result = await handler(event, context);
    if (i >= 0) times.push(performance.now() - t);
    if (result.statusCode !== status) throw new Error('answered ' + result.statusCode + ', not ' + status);
  }
  return times;
}
(async () => {
  const push = JSON.parse(process.env.BENCH_PUSH);
  const forwardedMs = await timed(push, 202);
  const forgedMs = await timed(JSON.parse(process.env.BENCH_FORGED), 401);
  const fetchMs = [];
  const body = Buffer.from(push.body);
  for (let i = -50; i < count; i++) {
    const t = performance.now();
    const response = await fetch(process.env.BENCH_BARE_URL, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    await response.text();
    if (i >= 0) fetchMs.push(performance.now() - t);
  }
  writeSync(3, JSON.stringify({ forwardedMs, forgedMs, fetchMs, rssMiB: process.memoryUsage().rss / 2 ** 20 }));
})().catch((error) => {
  writeSync(2, 'warm probe: ' + error.message + '\n');
  process.exit(1);
});
