/**
 * The receiver's config file: one zod schema, used by the receiver at start-up and by the CDK
 * stack at synth to check the config it generates (one schema, not two).
 */
import { z } from 'zod';
import { SEED_MAX_ITERATIONS, sshOptionPathProblem, triggerKey } from '../../protocol';
import { ConfigError, describeZodIssues, parseNamingFields } from './config-errors';
import { deployPathProblems } from './deploy-paths';
import { commandSchema, deploySchema, deploySshProblems, repositoryUrlSchema } from './deploy-schema';

/** The stack config reuses the deploy section (it may leave repositoryUrl out). */
export { deploySchema, deploySshProblems, repositoryUrlSchema };
import { notifySchema } from './notify-schema';
import { tokenNameSchema } from './token-name';

/** 0 asks the system for a free port (tests, the demo). */
const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);
const seconds = z.number().int().positive();

/** A name that can stand in an environment variable. */
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

export const triggerSchema = z
  .strictObject({
    repository: z.string().min(1).max(256).refine((s) => !s.includes('\u0000'), 'must not contain NUL'),
    branch: z.string().min(1).max(256).refine((s) => !s.includes('\u0000'), 'must not contain NUL'),
    command: commandSchema,
    /** The token inline: for local use only. */
    /** The token inline: for local use only. Shorter than 16 characters draws a warning, not a refusal. */
    token: z.string().min(1, 'must not be empty').optional(),
    /** Read the token from this environment variable of the receiver. */
    tokenEnv: envName.optional(),
    /**
     * The name the token is stored under in the token file or SSM. Several triggers may name one
     * token (a provider's webhook is per repository, not per branch).
     * @default "<repository>/<branch>"
     */
    tokenName: tokenNameSchema.optional(),
    cwd: z.string().min(1).optional(),
    /** @default 3600 */
    timeoutSeconds: seconds.max(7 * 24 * 3600).default(3600),
    /** Seed-scheme hash rounds, at most 100,000 (SEED_MAX_ITERATIONS says why). @default signature.iterations */
    iterations: z.number().int().min(1).max(SEED_MAX_ITERATIONS).optional(),
    /** Extra environment for the command. */
    env: z.record(envName, z.string()).default({}),
    /** Run the command as this user (only when the receiver runs as root). */
    user: z.string().min(1).optional(),
    /** Fetch the pushed commit into a new release, run the command there, switch `current` (./deploy-schema). */
    deploy: deploySchema.optional(),
    /** Who hears when this trigger's runs end; replaces the receiver's `notify`. @default the receiver's */
    notify: notifySchema.optional(),
    /**
     * A run the receiver was running when it crashed is run again, once, at the next start: its
     * push was accepted and its command never finished. `false` leaves it interrupted.
     * @default true
     */
    rerunInterrupted: z.boolean().default(true),
  })
  .refine((t) => [t.token, t.tokenEnv].filter((v) => v !== undefined).length <= 1, {
    message: 'give at most one of token and tokenEnv',
    path: ['token'],
  });

export const receiverConfigSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: host.default('127.0.0.1'),
        port: port.default(5000),
        /**
         * Serve HTTPS with this certificate and key (PEM files, re-read on SIGHUP so a renewed
         * certificate needs no restart). @default plain HTTP
         */
        tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
      })
      .prefault({}),
    /** The admin listener (runs, logs). Keep it on loopback. `false` turns it off. */
    admin: z
      .union([z.literal(false), z.strictObject({ host: host.default('127.0.0.1'), port: port.default(5001) })])
      .prefault({}),
    stateDir: z.string().min(1).default('/var/lib/triggler'),
    /**
     * Processes that take deliveries. One is enough for ordinary traffic; a flood of forged
     * requests is checked on as many cores as there are workers (the runner stays one).
     */
    workers: z.number().int().min(1).max(64).default(1),
    signature: z
      .strictObject({
        iterations: z.number().int().min(1).max(SEED_MAX_ITERATIONS).default(1000),
        expirationSeconds: seconds.default(300),
        futureSeconds: z.number().int().min(0).default(90),
        /** Standard Webhooks timestamp tolerance, both ways. */
        toleranceSeconds: seconds.default(300),
        /** How long a Standard Webhooks id is remembered: a sender's retry inside it runs nothing. */
        replaySeconds: seconds.default(24 * 3600),
      })
      .prefault({}),
    limits: z
      .strictObject({
        bodyBytes: z.number().int().positive().default(5 * 1024 * 1024),
        /**
         * Body bytes all requests in flight may hold together: a body is buffered before its
         * signature can be checked, by anyone. Past it a request is answered 503 (Retry-After).
         * Bodies over 64 KiB may use three quarters of it: the rest stays for small deliveries.
         */
        inFlightBodyBytes: z.number().int().positive().default(32 * 1024 * 1024),
        /** Connections open at once; past it a new connection is answered 503 and closed. */
        maxConnections: z.number().int().positive().default(1024),
        /**
         * Seed-scheme hash rounds computed per trigger per second, at most: a forged request with
         * a fresh timestamp costs one chain. Past it a check is answered 429 with Retry-After.
         */
        seedRoundsPerSecond: z.number().int().positive().default(500_000),
        headersTimeoutSeconds: seconds.max(10).default(10),
        requestTimeoutSeconds: seconds.default(30),
        maxConcurrentRuns: z.number().int().positive().default(4),
        runLogBytes: z.number().int().positive().default(1024 * 1024),
        keepRuns: z.number().int().positive().default(1000),
        /**
         * Delivery ids remembered at most (besides each one's own expiry): past it the one that
         * expires soonest is forgotten first, and a repeat of it would run again if its signature
         * still verifies. Bounds memory, the journal and start-up time under a flood of valid deliveries.
         */
        rememberedIds: z.number().int().positive().default(100_000),
        shutdownGraceSeconds: z.number().int().min(0).default(30),
      })
      .prefault({}),
    tokens: z
      .strictObject({
        /** A JSON file of tokens by name; refused when group- or world-readable. */
        file: z.string().min(1).optional(),
        /** SSM Parameter Store SecureStrings `<prefix>/<tokenName>`. */
        ssm: z
          .strictObject({
            prefix: z.string().regex(/^\/[A-Za-z0-9_.\-/]*[^/]$/, 'must start with / and not end with /'),
            ttlSeconds: seconds.default(60),
            graceSeconds: seconds.default(900),
          })
          .optional(),
        /** How long a rotated-out token still verifies, for file tokens. */
        graceSeconds: seconds.default(900),
      })
      .prefault({}),
    /** Who hears when a run ends (./notify-schema). @default [] */
    notify: notifySchema.default([]),
    log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') }).prefault({}),
    triggers: z.array(triggerSchema).min(1, 'must list at least one trigger'),
  })
  .superRefine((config, ctx) => {
    const { bodyBytes, inFlightBodyBytes } = config.limits;
    if (inFlightBodyBytes * 3 < bodyBytes * 4) {
      ctx.addIssue({ code: 'custom', path: ['limits', 'inFlightBodyBytes'], message: `must be at least 4/3 of limits.bodyBytes (${Math.ceil((bodyBytes * 4) / 3)}), or a body of the largest size could never be read` });
    }
    const keys = new Map<string, number>();
    const seedRoutes = new Map<string, number>();
    const signedNotify = [...config.notify, ...config.triggers.flatMap((t) => t.notify ?? [])].some((n) => n.format === 'standard');
    if (signedNotify && !config.tokens.file && !config.tokens.ssm) {
      ctx.addIssue({ code: 'custom', path: ['notify'], message: 'a standard notification signs with a token from tokens.file or tokens.ssm: set one' });
    }
    const seedSigned = new Map<string, number>();
    config.triggers.forEach((t, i) => {
      const key = triggerKey(t.repository, t.branch);
      const earlier = keys.get(key);
      if (earlier !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['triggers', i], message: `repeats triggers[${earlier}] (${t.repository} ${t.branch})` });
      }
      keys.set(key, i);
      const route = `${t.repository}-${t.branch}`;
      const other = seedRoutes.get(route);
      if (other !== undefined && other !== earlier) {
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', i],
          message: `its seed route /${route} collides with triggers[${other}]; rename one`,
        });
      }
      seedRoutes.set(route, i);
      // The seed scheme signs "<ts>:<repo>:<branch>:<token>": repository "x:y" branch "z" and
      // repository "x" branch "y:z" sign the same string, so one's signature would run the other
      // whenever their tokens are equal, which two token names or variables may hide.
      const signed = `${t.repository}:${t.branch}`;
      const sharer = seedSigned.get(signed);
      if (sharer !== undefined && sharer !== earlier) {
        const other = config.triggers[sharer]!;
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', i],
          message: `(repository "${t.repository}", branch "${t.branch}") signs the same seed string "${signed}" as triggers[${sharer}] (repository "${other.repository}", branch "${other.branch}"): one's seed signature would verify for the other; rename one`,
        });
      }
      seedSigned.set(signed, i);
      const hasSource = t.token !== undefined || t.tokenEnv !== undefined || config.tokens.file !== undefined || config.tokens.ssm !== undefined;
      if (!hasSource) {
        ctx.addIssue({ code: 'custom', path: ['triggers', i, 'token'], message: 'no token: set token or tokenEnv, or tokens.file or tokens.ssm' });
      }
    });
    for (const problem of deployPathProblems(config.triggers)) {
      ctx.addIssue({ code: 'custom', path: ['triggers', problem.index, 'deploy', 'path'], message: problem.message });
    }
    const sshTrigger = config.triggers.findIndex((trigger) => trigger.deploy && (trigger.deploy.sshKey ?? trigger.deploy.knownHosts) !== undefined);
    const stateDirProblem = sshTrigger === -1 ? undefined : sshOptionPathProblem(config.stateDir);
    if (stateDirProblem) {
      ctx.addIssue({ code: 'custom', path: ['stateDir'], message: `holds ${stateDirProblem}: triggers[${sshTrigger}] fetches over ssh, whose key files are written in the state directory, and ssh cannot be given a path with that in it; choose another stateDir` });
    }
    config.triggers.forEach((trigger, index) => {
      for (const problem of trigger.deploy ? deploySshProblems(trigger.deploy) : []) {
        ctx.addIssue({ code: 'custom', path: ['triggers', index, 'deploy', problem.field], message: problem.message });
      }
      if (trigger.deploy?.sshKey !== undefined && config.tokens.file === undefined && config.tokens.ssm === undefined) {
        ctx.addIssue({ code: 'custom', path: ['triggers', index, 'deploy', 'sshKey'], message: 'names a key in the token file or SSM, and this config has neither: set tokens.file or tokens.ssm' });
      }
      // The run refuses it too (receiver/runs/deploy/deployment.ts); said here, it is said once, not at every push.
      if (trigger.deploy?.sshKey !== undefined && trigger.user !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', index, 'deploy', 'sshKey'],
          message: `cannot be used with user "${trigger.user}": the key file is readable by the receiver alone, and a root receiver runs git as that user, so every fetch would fail; leave out user, or leave out sshKey (git then fetches with that user's own ssh)`,
        });
      }
    });
  });

export type ReceiverConfigInput = z.input<typeof receiverConfigSchema>;
export type ReceiverConfig = z.output<typeof receiverConfigSchema>;
export type TriggerConfig = ReceiverConfig['triggers'][number];

export { ConfigError, describeZodIssues, parseNamingFields };

/** Validates a parsed config; throws ConfigError naming every bad field. */
export function parseReceiverConfig(raw: unknown, source = 'config'): ReceiverConfig {
  return parseNamingFields(receiverConfigSchema, raw, source);
}
