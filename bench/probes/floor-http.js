/**
 * A floor on node:http: the least a server must still do for a delivery, and nothing else (no
 * routing, header checks, time window, runs, log, counting or recording). What the receiver does
 * beyond it is what its own work costs; what it costs beyond bare node:http is what the work costs.
 *
 *   refusal  read the body, check the Standard Webhooks HMAC-SHA256 of "<id>.<timestamp>.<body>" in
 *            constant time, answer 401 with a body made once (202 to a good signature)
 *   accept   that, then parse the JSON body for its commit, remember the id (a repeat is answered
 *            200), append one line per delivery to a journal opened O_DSYNC, the deliveries that
 *            arrive while a write is in flight sharing the next write (group commit), and answer
 *            each 202 with its id once its write is on the disk
 *
 * Arguments: the port to listen on (127.0.0.1), the mode, the journal's path (accept); environment:
 * FLOOR_TOKEN, the token (`whsec_<base64 key>`).
 */
const http = require('node:http');
const { createHmac, timingSafeEqual } = require('node:crypto');
const { constants, openSync, write } = require('node:fs');

const [port, mode, journalPath] = process.argv.slice(2);
const key = Buffer.from(process.env.FLOOR_TOKEN.slice('whsec_'.length), 'base64');
const refusal = Buffer.from('{"error":"unauthorized"}');
const refusalHeaders = ['content-type', 'application/json', 'content-length', String(refusal.length)];

const json = (res, status, body) => {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, ['content-type', 'application/json', 'content-length', String(bytes.length)]);
  res.end(bytes);
};

/** Where a verified delivery goes: answered at once (refusal), or journalled first (accept). */
let take = (res, id) => json(res, 202, { status: 'accepted', delivery: id });

if (mode === 'accept') {
  const journal = openSync(journalPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC, 0o600);
  const seen = new Set();
  let queued = [];
  let writing = false;
  const flush = () => {
    if (writing || queued.length === 0) return;
    const batch = queued;
    queued = [];
    writing = true;
    write(journal, Buffer.from(batch.map((entry) => entry.line).join('')), (error) => {
      writing = false;
      for (const { res, id } of batch) {
        if (error) json(res, 503, { error: 'journal' });
        else json(res, 202, { status: 'accepted', delivery: id });
      }
      flush();
    });
  };
  take = (res, id, body) => {
    let commit;
    try {
      commit = JSON.parse(body.toString()).data.commit;
    } catch {
      return json(res, 400, { error: 'body' });
    }
    if (seen.has(id)) return json(res, 200, { status: 'duplicate', delivery: id });
    seen.add(id);
    queued.push({ res, id, line: `${JSON.stringify({ id, commit, at: Date.now() })}\n` });
    flush();
  };
} else if (mode !== 'refusal') {
  throw new Error(`mode: ${mode} is not refusal or accept`);
}

http
  .createServer((req, res) => {
    let body;
    req.on('data', (chunk) => (body = body === undefined ? chunk : Buffer.concat([body, chunk])));
    req.on('end', () => {
      const id = String(req.headers['webhook-id']);
      const timestamp = req.headers['webhook-timestamp'];
      const signature = Buffer.from(String(req.headers['webhook-signature']).slice('v1,'.length), 'base64');
      const expected = createHmac('sha256', key)
        .update(`${id}.${timestamp}.`)
        .update(body ?? '')
        .digest();
      if (signature.length === expected.length && timingSafeEqual(signature, expected)) return take(res, id, body);
      res.writeHead(401, refusalHeaders);
      res.end(refusal);
    });
  })
  .listen(Number(port), '127.0.0.1');
