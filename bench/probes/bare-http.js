/**
 * The ceiling for Node here: node:http reading the body and answering a fixed status.
 * Arguments: the port to listen on (127.0.0.1), the status to answer.
 */
const http = require('node:http');

const [port, status] = process.argv.slice(2).map(Number);
http
  .createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const b = '{"error":"unauthorized"}';
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': b.length });
      res.end(b);
    });
  })
  .listen(port, '127.0.0.1');
