/**
 * A bundled Lambda handler (argv[2]) served over the IPC channel, as Lambda invokes it: each
 * message `{ id, event, env }` sets `env`, invokes the handler once and answers `{ id, result }`
 * or `{ id, error }`. Plain node, as Lambda runs the bundle: no loader in between.
 */
const { handler } = require(process.argv[2]);
process.on('message', ({ id, event, env }) => {
  Object.assign(process.env, env);
  const context = { awsRequestId: 'local-' + id, getRemainingTimeInMillis: () => Number(process.env.LAMBDA_REMAINING_MS || 10000) };
  handler(event, context).then(
    (result) => process.send({ id, result }),
    (error) => process.send({ id, error: String(error && error.message) }),
  );
});
process.send({ ready: true });
