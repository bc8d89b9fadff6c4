/**
 * Which connections the delivery listener takes: at most `maxConnections` open at once, and at
 * most `maxPerClient` from one remote address, so that one host holding idle connections cannot
 * lock every other sender out. A connection is counted until it closes, admitted or not.
 */
import type { Socket } from 'node:net';

export interface RefusedConnection {
  /** `client`: its address holds its share; `global`: the listener holds all it may. */
  scope: 'client' | 'global';
  /** One wording per scope: rejections are counted by it. */
  reason: string;
  /** The connections open at once that it was counted against. */
  connections: number;
}

export class ConnectionAdmission {
  private open = 0;
  private readonly perClient = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerClient: number,
  ) {}

  /** Counts `socket` until it closes; says why it is refused, or undefined when it is taken. */
  admit(socket: Socket): RefusedConnection | undefined {
    const client = socket.remoteAddress ?? '';
    const fromClient = (this.perClient.get(client) ?? 0) + 1;
    this.perClient.set(client, fromClient);
    this.open += 1;
    socket.once('close', () => this.release(client));
    if (fromClient > this.maxPerClient) return { scope: 'client', reason: 'too many connections from one client', connections: fromClient };
    if (this.open > this.maxConnections) return { scope: 'global', reason: 'too many connections', connections: this.open };
    return undefined;
  }

  private release(client: string): void {
    this.open -= 1;
    const left = (this.perClient.get(client) ?? 1) - 1;
    if (left === 0) this.perClient.delete(client);
    else this.perClient.set(client, left);
  }
}
