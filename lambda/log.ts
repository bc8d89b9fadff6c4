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

/**
 * A handler's working parts built from its environment once per execution environment: built
 * again only when one of `variables` changes (tests and local runs; never in Lambda). Settings
 * that do not parse are logged (fatal) and thrown, so the invocation fails visibly.
 */
export function builtFromEnvironment<Settings, Built>(
  what: string,
  variables: readonly string[],
  parse: (env: NodeJS.ProcessEnv) => Settings,
  build: (settings: Settings, logger: Logger) => Built,
): (env?: NodeJS.ProcessEnv) => Built {
  let cached: { key: string; built: Built } | undefined;
  return (env = process.env) => {
    const key = [...variables, 'TRIGGLER_LOG_LEVEL'].map((name) => env[name]).join('\u0000');
    if (cached?.key === key) return cached.built;
    const logger = createLambdaLogger();
    let settings: Settings;
    try {
      settings = parse(env);
    } catch (error) {
      logger.fatal({ error: (error as Error).message }, `${what} settings are not valid`);
      throw error;
    }
    cached = { key, built: build(settings, logger) };
    return cached.built;
  };
}
