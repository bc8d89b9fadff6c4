/**
 * 200 connections, each sending all but the last byte of a 4.9 MiB body with a fresh timestamp and
 * a forged signature, opened again as soon as the receiver closes one, until the deadline; prints
 * how many the receiver answered 503. Arguments: port, host, seconds to run.
 */
const net = require('node:net');

const [port, hostname, seconds] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const forgedSignature = Buffer.alloc(32).toString('base64');
const bodyBytes = Math.floor(4.9 * 1024 * 1024);
const chunk = Buffer.alloc(bodyBytes - 1, 'x');
const deadline = Date.now() + seconds * 1000;
let refused = 0;
const open = () =>
  new Promise((resolve) => {
    if (Date.now() > deadline) return resolve();
    const socket = net.connect(port, hostname, () => {
      socket.write(
        'POST /hooks/bench/main HTTP/1.1\r\nHost: 127.0.0.1\r\nwebhook-id: msg_flood_' +
          Math.random() +
          '\r\nwebhook-timestamp: ' +
          Math.floor(Date.now() / 1000) +
          '\r\nwebhook-signature: v1,' +
          forgedSignature +
          '\r\nContent-Length: ' +
          bodyBytes +
          '\r\n\r\n',
      );
      socket.write(chunk);
    });
    socket.setTimeout(Math.max(1, deadline - Date.now()), () => socket.destroy());
    socket.on('data', (d) => {
      if (d.toString('latin1').startsWith('HTTP/1.1 503')) refused += 1;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(open()));
  });
Promise.all(Array.from({ length: 200 }, open)).then(() => {
  process.stdout.write(String(refused));
});
