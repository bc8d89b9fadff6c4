/**
 * The receiver's config file: one zod schema, used by the receiver at start-up and by the CDK
 * stack at synth to check the config it generates (one schema, not two).
 */
import { z } from 'zod';
import { SEED_MAX_ITERATIONS, sshOptionPathProblem, triggerKey } from '../../protocol';
import { ConfigError, describeZodIssues, parseNamingFields } from './config-errors';
import { deployPathProblems } from './deploy-paths';
import { commandSchema, deploySchema, deploySshProblems, repositoryUrlSchema } from './deploy-schema';
import { limitsSchema, seconds } from './limits-schema';
import { adminSchema, listenSchema } from './listen-schema';

/** The stack config reuses the deploy section (it may leave repositoryUrl out). */
export { deploySchema, deploySshProblems, repositoryUrlSchema };
import { notifySchema } from './notify-schema';
import { tokenNameSchema } from './token-name';

/** A name that can stand in an environment variable. */
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

export const triggerSchema = z
  .strictObject({
    repository: z
      .string()
      .min(1)
      .max(256)
      .refine((s) => !s.includes('\u0000'), 'must not contain NUL')
      .describe(
        "The repository whose pushes run the command: the name a sender signs, or a provider webhook's repository name (`owner/name` when it holds a slash).",
      ),
    branch: z
      .string()
      .min(1)
      .max(256)
      .refine((s) => !s.includes('\u0000'), 'must not contain NUL')
      .describe('The branch (without `refs/heads/`); it may hold `/`.'),
    command: commandSchema.describe(
      'What a run runs: a string runs through `/bin/sh -c`, an array runs without a shell. Push data reaches it only through `TRIGGLER_*` environment variables (docs/operations.md, "What a command sees").',
    ),
    token: z
      .string()
      .min(1, 'must not be empty')
      .optional()
      .describe(
        "The token inline, for local use. Any length works (the original server's example `s3c43t70k3n` is 11 characters); one shorter than 16 characters draws a warning at start-up, not a refusal. At most one of `token` and `tokenEnv`. Default: the token named `tokenName` in `tokens.file` or `tokens.ssm`.",
      ),
    tokenEnv: envName
      .optional()
      .describe(
        'Read the token from this environment variable of the receiver. Default: the token named `tokenName` in `tokens.file` or `tokens.ssm`.',
      ),
    tokenName: tokenNameSchema
      .optional()
      .describe(
        "The name the token is stored under in the token file or SSM. Several triggers may name one token: a provider's webhook is per repository, not per branch, so its branch triggers share its one secret. Default: `<repository>/<branch>`.",
      ),
    cwd: z.string().min(1).optional().describe("The command's working directory. Default: the receiver's own."),
    timeoutSeconds: seconds
      .max(7 * 24 * 3600)
      .default(3600)
      .describe("After this long the command's whole process group gets SIGTERM, and SIGKILL 10 s later; the run ends `timed-out`."),
    // SEED_MAX_ITERATIONS says why the rounds stop at 100,000.
    iterations: z
      .number()
      .int()
      .min(1)
      .max(SEED_MAX_ITERATIONS)
      .optional()
      .describe('Seed-scheme hash rounds for this trigger. Default: `signature.iterations`.'),
    env: z.record(envName, z.string()).default({}).describe('Extra environment for the command.'),
    user: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Run the command as this user; only when the receiver runs as root. Cannot be combined with `deploy.sshKey`. Default: the receiver's user.",
      ),
    deploy: deploySchema
      .optional()
      .describe(
        'Deploy the pushed commit: fetch it into `<path>/repo.git`, lay it out as `<path>/releases/<id>`, run `command` there, switch `<path>/current` to it, then `activate` and `healthCheck` (docs/releases.md). Default: none (the command runs in `cwd`, nothing is fetched).',
      ),
    notify: notifySchema
      .optional()
      .describe(
        "Who hears when this trigger's runs end; replaces the receiver's `notify` for this trigger. Default: the receiver's `notify`.",
      ),
    rerunInterrupted: z
      .boolean()
      .default(true)
      .describe(
        'A run the receiver was running when it crashed is run again, once, at the next start (its push was accepted; its command never finished), unless it was itself a rerun or a newer delivery of the trigger waits. `false` leaves it `interrupted`: for a command that must not run twice.',
      ),
  })
  .refine((t) => [t.token, t.tokenEnv].filter((v) => v !== undefined).length <= 1, {
    message: 'give at most one of token and tokenEnv',
    path: ['token'],
  });

export const receiverConfigSchema = z
  .strictObject({
    listen: listenSchema,
    admin: adminSchema,
    stateDir: z
      .string()
      .min(1)
      .default('/var/lib/triggler')
      .describe('Run records, the delivery journal, run logs, the admin credential and the lock; one receiver per state directory.'),
    workers: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe(
        'Processes taking deliveries on the shared port. One is enough for ordinary traffic; more check a flood of forged requests on that many cores (the runner and its journal stay in one primary process). Each worker costs about 70–100 MiB.',
      ),
    signature: z
      .strictObject({
        iterations: z
          .number()
          .int()
          .min(1)
          .max(SEED_MAX_ITERATIONS)
          .default(1000)
          .describe(
            "Seed-scheme hash rounds (a trigger's `iterations` overrides). At most 100,000: the original sender computed the chain in Python on a small Lambda function and the original server in its request handler, about a microsecond a round on a whole core, so 100,000 already cost them a second and a tenth of one per request, a hundred times their default. More only lets anyone with a fresh timestamp demand that much work per request.",
          ),
        expirationSeconds: seconds.default(300).describe('Seed scheme: how old a timestamp may be.'),
        futureSeconds: z.number().int().min(0).default(90).describe('Seed scheme: how far ahead a timestamp may be.'),
        toleranceSeconds: seconds.default(300).describe('Standard Webhooks: timestamp tolerance, both ways.'),
        replaySeconds: seconds
          .default(24 * 3600)
          .describe("How long a `webhook-id` is remembered: a sender's retry within it runs nothing."),
      })
      .prefault({})
      .describe('How signatures are checked.'),
    limits: limitsSchema,
    tokens: z
      .strictObject({
        file: z
          .string()
          .min(1)
          .optional()
          .describe(
            'A JSON file of tokens (and deploy keys) by name; refused when group or others can read it. Re-read on SIGHUP. Default: none.',
          ),
        ssm: z
          .strictObject({
            prefix: z
              .string()
              .regex(/^\/[A-Za-z0-9_.\-/]*[^/]$/, 'must start with / and not end with /')
              .describe("The parameters' path prefix, such as `/git-triggler/tokens`."),
            ttlSeconds: seconds.default(60).describe('How long a parameter read is cached.'),
            graceSeconds: seconds.default(900).describe('How long the previous version of a rotated parameter still verifies.'),
          })
          .optional()
          .describe('SSM Parameter Store SecureStrings `<prefix>/<tokenName>`. Default: none.'),
        graceSeconds: seconds.default(900).describe('How long a rotated-out file token (its `previous`) still verifies.'),
      })
      .prefault({})
      .describe('Where tokens (and deploy keys) are read from by name, for triggers without an inline `token` or `tokenEnv`.'),
    notify: notifySchema
      .default([])
      .describe('Who hears when a run ends (docs/operations.md, "Notifications"); a trigger\'s own `notify` replaces it.'),
    commandRunner: z
      .strictObject({
        socket: z
          .string()
          .regex(/^\//, 'must be an absolute path')
          .describe("The runner's Unix socket, such as `/run/triggler/command.sock`."),
      })
      .optional()
      .describe(
        "Start every command through the command runner listening on this socket (the AWS host's `triggler-command.socket`) instead of as the receiver's own child: each command then runs in a unit of its own, whose firewall denies the instance metadata service (docs/deploy.md, \"Hardening\"); what is left of a command when its run ends is stopped with it. The stack sets it; a trigger's `user` cannot be used with it. Default: none (commands are the receiver's children).",
      ),
    log: z
      .strictObject({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
          .default('info')
          .describe('`debug` shows more, `warn` only problems.'),
      })
      .prefault({})
      .describe("The receiver's own log."),
    triggers: z
      .array(triggerSchema)
      .min(1, 'must list at least one trigger')
      .describe('Which command runs when which branch is pushed: one (repository, branch) pair each.'),
  })
  .superRefine((config, ctx) => {
    const { bodyBytes, inFlightBodyBytes } = config.limits;
    if (inFlightBodyBytes * 3 < bodyBytes * 4) {
      ctx.addIssue({
        code: 'custom',
        path: ['limits', 'inFlightBodyBytes'],
        message: `must be at least 4/3 of limits.bodyBytes (${Math.ceil((bodyBytes * 4) / 3)}), or a body of the largest size could never be read`,
      });
    }
    const keys = new Map<string, number>();
    const seedRoutes = new Map<string, number>();
    const signedNotify = [...config.notify, ...config.triggers.flatMap((t) => t.notify ?? [])].some((n) => n.format === 'standard');
    if (signedNotify && !config.tokens.file && !config.tokens.ssm) {
      ctx.addIssue({
        code: 'custom',
        path: ['notify'],
        message: 'a standard notification signs with a token from tokens.file or tokens.ssm: set one',
      });
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
      const hasSource =
        t.token !== undefined || t.tokenEnv !== undefined || config.tokens.file !== undefined || config.tokens.ssm !== undefined;
      if (!hasSource) {
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', i, 'token'],
          message: 'no token: set token or tokenEnv, or tokens.file or tokens.ssm',
        });
      }
    });
    for (const problem of deployPathProblems(config.triggers)) {
      ctx.addIssue({ code: 'custom', path: ['triggers', problem.index, 'deploy', 'path'], message: problem.message });
    }
    const sshTrigger = config.triggers.findIndex(
      (trigger) => trigger.deploy && (trigger.deploy.sshKey ?? trigger.deploy.knownHosts) !== undefined,
    );
    const stateDirProblem = sshTrigger === -1 ? undefined : sshOptionPathProblem(config.stateDir);
    if (stateDirProblem) {
      ctx.addIssue({
        code: 'custom',
        path: ['stateDir'],
        message: `holds ${stateDirProblem}: triggers[${sshTrigger}] fetches over ssh, whose key files are written in the state directory, and ssh cannot be given a path with that in it; choose another stateDir`,
      });
    }
    config.triggers.forEach((trigger, index) => {
      if (config.commandRunner && trigger.user !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', index, 'user'],
          message: "cannot be used with commandRunner: the runner starts commands as its own unit's user",
        });
      }
      for (const problem of trigger.deploy ? deploySshProblems(trigger.deploy) : []) {
        ctx.addIssue({ code: 'custom', path: ['triggers', index, 'deploy', problem.field], message: problem.message });
      }
      if (trigger.deploy?.sshKey !== undefined && config.tokens.file === undefined && config.tokens.ssm === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', index, 'deploy', 'sshKey'],
          message: 'names a key in the token file or SSM, and this config has neither: set tokens.file or tokens.ssm',
        });
      }
      // The run refuses it too (receiver/runs/deploy/fetch.ts); said here, it is said once, not at every push.
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
