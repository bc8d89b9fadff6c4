/**
 * What a request, a flood and the runs may cost: the `limits` section of the receiver config's
 * schema (docs/operations.md, "Limits").
 */
import { z } from 'zod';

/** A duration in whole seconds, more than none. */
export const seconds = z.number().int().positive();

export const limitsSchema = z
  .strictObject({
    bodyBytes: z
      .number()
      .int()
      .positive()
      .default(5 * 1024 * 1024)
      .describe('Larger bodies get 413 without being buffered.'),
    inFlightBodyBytes: z
      .number()
      .int()
      .positive()
      .default(32 * 1024 * 1024)
      .describe(
        'Body bytes all requests in flight may hold together (a body is buffered before its signature can be checked, by anyone). Past it a request gets 503 with `Retry-After: 1`, before a byte is read when its declared length cannot fit. Bodies over 64 KiB may use three quarters of it, so a flood of large bodies leaves room for deliveries as senders send them. At least 4/3 of `bodyBytes`.',
      ),
    maxConnections: z
      .number()
      .int()
      .positive()
      .default(1024)
      .describe(
        'Connections open at once (each is a file descriptor); a connection past it gets 503 with `Retry-After: 1` and is closed: over plain HTTP at once, over TLS once its handshake is done (bounded by `handshakeTimeoutSeconds`).',
      ),
    maxConnectionsPerClient: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe(
        'Connections open at once from one remote address, so that one host cannot hold every connection. Past it a connection gets 503 with `Retry-After: 1` at once (over TLS: it is closed at once, before a handshake). Behind a proxy every connection comes from its address: raise it to `maxConnections`.',
      ),
    handshakeTimeoutSeconds: seconds
      .max(60)
      .default(10)
      .describe(
        'With `listen.tls`: a connection that has not finished its TLS handshake within this (one that sends nothing included) is closed.',
      ),
    seedRoundsPerSecond: z
      .number()
      .int()
      .positive()
      .default(500_000)
      .describe(
        'Seed-scheme hash rounds computed per trigger per second (a forged request with a new timestamp costs one chain); past it a check gets 429 with `Retry-After`. A timestamp within 5 s of now, as senders sign, is checked whatever the budget.',
      ),
    headersTimeoutSeconds: seconds.max(10).default(10).describe('A client slower than this to send its headers gets 408.'),
    requestTimeoutSeconds: seconds.default(30).describe('A client slower than this to send its whole request gets 408.'),
    maxConcurrentRuns: z.number().int().positive().default(4).describe('Runs at once, across all triggers.'),
    runLogBytes: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024)
      .describe('Output kept per run: the first half and the last half of this many bytes.'),
    keepRuns: z.number().int().positive().default(1000).describe('Finished run records kept.'),
    rememberedIds: z
      .number()
      .int()
      .positive()
      .default(100_000)
      .describe(
        "Delivery ids remembered at most, besides each one's own expiry: past it the one expiring soonest is forgotten first (a warning says how many), and a repeat of it runs again if its signature still verifies. Bounds memory, the journal and start-up time under a flood of valid deliveries.",
      ),
    recentDeliveries: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(50)
      .describe(
        "Deliveries kept per trigger for the admin listener's deliveries page, `GET /deliveries` and `triggler deliveries`: accepted, duplicate and rejected, each with its request headers (secrets redacted) and its answer. Requests that name no trigger are kept apart, to the same bounds. Held in memory only (a restart starts empty); with `workers` above 1, each worker keeps its own. 0 keeps none.",
      ),
    recentDeliveryBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(256 * 1024)
      .describe(
        'The most the kept deliveries of one trigger may hold (their headers, paths and answers); past it the oldest go first. At least 64 KiB, which holds the largest request header the listener reads.',
      ),
    shutdownGraceSeconds: z
      .number()
      .int()
      .min(0)
      .default(30)
      .describe('On stop, how long running commands may finish before they are stopped and recorded as `interrupted`.'),
  })
  .prefault({})
  .describe('What a request, a flood and the runs may cost (docs/operations.md, "Limits").');
