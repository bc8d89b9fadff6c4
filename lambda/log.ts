/**
 * Structured JSON logs for the Lambda handlers: one line per record on stdout, which Lambda sends
 * to CloudWatch Logs. Writes are synchronous: an asynchronous buffer could still hold lines when
 * the execution environment is frozen between invocations.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Fields that could hold a secret are censored even if a caller passes one by mistake. */
const REDACTED_PATHS = ['token', '*.token', 'headers.authorization', 'headers["x-signature"]', 'headers["webhook-signature"]'];

export function createLambdaLogger(options: { destination?: DestinationStream; level?: string } = {}): Logger {
  const requested = options.level ?? process.env.TRIGGLER_LOG_LEVEL ?? 'info';
  const level = LEVELS.has(requested) ? requested : 'info';
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
