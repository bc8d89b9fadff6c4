/**
 * The command runner as a program of its own: the entry of `command-runner.js` in the host bundle.
 * systemd starts one per connection to `triggler-command.socket` (Accept=yes) with the connection
 * as its stdin and stdout; it serves that one command and exits, and systemd then stops whatever
 * of it is left in the instance's cgroup (KillMode=control-group).
 */
import * as net from 'node:net';
import { serveCommandConnection } from './runs/command-runner';

const connection = new net.Socket({ fd: 0, readable: true, writable: true });
serveCommandConnection(connection, { log: (line) => process.stderr.write(`${line}\n`) }).then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`command runner failed: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
