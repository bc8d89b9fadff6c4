/**
 * What the receiver and its command runner (command-runner.ts) say over the runner's socket: one
 * byte of kind, four bytes of length (big-endian), then the payload. Output travels as raw bytes,
 * everything else as JSON. A stream socket has no message boundaries of its own, so each side
 * reads whole frames from whatever chunks arrive.
 */
import type { ProcessGroup } from './run-record';

/** The receiver asks: run this (first frame, once), or signal the command's process group. */
export interface CommandSpec {
  program: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Named in the runner's own log lines, so the journal of the host ties an instance to its run. */
  runId: string;
  /** SIGTERM -> SIGKILL delay, in ms, for what is left when the connection ends. */
  killGraceMs: number;
}

export type ToRunner = { kind: 'spec'; spec: CommandSpec } | { kind: 'signal'; signal: NodeJS.Signals };

/** The runner reports: started (or could not), output (stdout and stderr, as they come), the leader's exit, and the end of its output. */
export type FromRunner =
  | { kind: 'spawned'; group: ProcessGroup }
  | { kind: 'spawn-error'; code: string | undefined; message: string; syscall?: string; path?: string }
  | { kind: 'output'; data: Buffer }
  | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null }
  | { kind: 'output-closed' };

export type Frame = ToRunner | FromRunner;

const KIND_BYTES: Record<Frame['kind'], number> = {
  spec: 0x01,
  signal: 0x02,
  spawned: 0x11,
  'spawn-error': 0x12,
  output: 0x13,
  exit: 0x14,
  'output-closed': 0x15,
};
const KIND_OF_BYTE = new Map(Object.entries(KIND_BYTES).map(([kind, byte]) => [byte, kind as Frame['kind']]));
const HEADER_BYTES = 5;
/** A spec carries the command's environment; nothing honest comes near this. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export function encodeFrame(frame: Frame): Buffer {
  const payload = frame.kind === 'output' ? frame.data : Buffer.from(JSON.stringify(payloadOf(frame)));
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(KIND_BYTES[frame.kind], 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

function payloadOf(frame: Exclude<Frame, { kind: 'output' }>): unknown {
  const { kind: _kind, ...rest } = frame;
  return rest;
}

/** Collects chunks from a socket and hands out each whole frame; a malformed one throws. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  /** The frames completed by this chunk, in order. */
  push(chunk: Buffer): Frame[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: Frame[] = [];
    while (this.buffered.length >= HEADER_BYTES) {
      const kind = KIND_OF_BYTE.get(this.buffered.readUInt8(0));
      const length = this.buffered.readUInt32BE(1);
      if (kind === undefined) throw new Error(`unknown frame kind 0x${this.buffered.readUInt8(0).toString(16)}`);
      if (length > MAX_FRAME_BYTES) throw new Error(`a ${kind} frame of ${length} bytes is larger than ${MAX_FRAME_BYTES}`);
      if (this.buffered.length < HEADER_BYTES + length) break;
      const payload = this.buffered.subarray(HEADER_BYTES, HEADER_BYTES + length);
      this.buffered = this.buffered.subarray(HEADER_BYTES + length);
      frames.push(
        kind === 'output' ? { kind, data: Buffer.from(payload) } : ({ kind, ...(JSON.parse(payload.toString('utf8')) as object) } as Frame),
      );
    }
    return frames;
  }

  /** Bytes of a frame not yet complete: at the end of the stream, a frame cut short. */
  get pending(): number {
    return this.buffered.length;
  }
}
