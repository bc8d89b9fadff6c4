/**
 * undici's `request`, loaded on the first call. `triggler serve` sends no request of its own, and
 * undici costs the receiver several MiB at rest and part of its start-up; the commands that talk
 * to a receiver load it when they do. scripts/build-cli.ts keeps it in a file of its own beside the
 * CLI bundle, read only then.
 */
import type * as undici from 'undici';

export function request(...args: Parameters<typeof undici.request>): ReturnType<typeof undici.request> {
  return (require('undici') as typeof undici).request(...args);
}
