/**
 * Where the receiver listens: the delivery listener (`listen`) and the admin listener (`admin`),
 * two sections of the receiver config's schema.
 */
import { z } from 'zod';

/** 0 asks the system for a free port (tests, the demo). */
const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);

export const listenSchema = z
  .strictObject({
    host: host
      .default('127.0.0.1')
      .describe('The address deliveries arrive at; the public address when the receiver is open to the internet.'),
    port: port.default(5000).describe('The port deliveries arrive at; 0 asks the system for a free one.'),
    tls: z
      .strictObject({
        cert: z.string().min(1).describe('The certificate chain, a PEM file (`fullchain.pem`).'),
        key: z.string().min(1).describe('Its private key, a PEM file (`privkey.pem`).'),
      })
      .optional()
      .describe(
        'Serve HTTPS (HTTP/1.1, TLS 1.2+) with this certificate and key. Both files are re-read on SIGHUP, so a renewed certificate needs no restart. Default: plain HTTP.',
      ),
  })
  .prefault({})
  .describe('Where deliveries arrive.');

export const adminSchema = z
  .union([
    z.literal(false),
    z.strictObject({
      host: host.default('127.0.0.1').describe("The admin listener's address. Keep it on loopback."),
      port: port.default(5001).describe("The admin listener's port."),
      allowedHosts: z
        .array(
          z
            .string()
            .min(1)
            .regex(/^[^\s:/]+$|^\[[0-9a-fA-F:.]+\]$/, 'a host name or address, without a port ([v6] in brackets)'),
        )
        .default([])
        .describe(
          'Host names a request to the admin listener may carry in `Host` besides its own (`localhost`, `127.0.0.1`, `[::1]` and the address it listens on), with or without its port; any other gets 421, so a web page cannot point a name of its own at this host and read the runs (DNS rebinding).',
        ),
      maxConnections: z
        .number()
        .int()
        .positive()
        .default(256)
        .describe(
          "Admin connections open at once, apart from the delivery listener's; a connection past it gets 503 with `Retry-After: 1` at once and is closed.",
        ),
      maxLogViewers: z
        .number()
        .int()
        .positive()
        .default(128)
        .describe('Live-log streams (`/runs/<id>/log/events`) open at once; past it a new one gets 503 with `Retry-After: 5`.'),
      maxLogViewersPerRun: z
        .number()
        .int()
        .positive()
        .default(64)
        .describe('Live-log streams of one run open at once; past it a new one gets 503 with `Retry-After: 5`.'),
    }),
  ])
  .prefault({})
  .describe(
    'The admin listener: the runs page, the runs API, live logs, `/metrics`, `/healthz`, and the writes (rollback, rerun) that need the admin credential. `false` turns it off. Keep it on loopback: its reads need no credential.',
  );
