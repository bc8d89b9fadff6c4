/**
 * The stack config (`triggler.config.json`): one zod schema that validates the file, fills in
 * every default, and is exported as `triggler.config.schema.json` for editors. Trigger fields
 * reuse the receiver's own schema; the receiver config generated from this one is checked by the
 * receiver's schema too (one schema, not two). What the schema cannot say field by field (how
 * fields agree, what AWS and the receiver refuse) is in rules.ts, one named rule per check.
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import { PROVIDER_WEBHOOK_PATHS } from '../../protocol/provider-requests';
import {
  ConfigError,
  deploySchema,
  parseNamingFields,
  receiverConfigSchema,
  repositoryUrlSchema,
  triggerSchema,
} from '../../receiver/config/schema';
import type { RepositoryTriggerPlan } from './codecommit-rules';
import { DEPLOY_KEYS_FOLDER } from './deploy-keys';
import { UNIT_NAME } from './host-commands';
import { MAX_FLEET_HOSTS, rolloutSchema } from './fleet-settings';
import { stackConfigProblems } from './rules';
import { defaultTokenPrefix, SENDER_SCHEMES, tokenNameOf } from '../../protocol';

const receiverTokenSettings = receiverConfigSchema.shape.tokens.unwrap().shape.ssm.unwrap().shape;
const port = z.number().int().min(1).max(65535);

/** CloudWatch Logs accepts only these retention periods. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** How provider webhooks reach the receiver from the internet (see `webhooks.ingress`). */
export const WEBHOOK_INGRESS = ['none', 'direct', 'function-url'] as const;
export type WebhookIngress = (typeof WEBHOOK_INGRESS)[number];

const ipv4Cidr = z
  .string()
  .regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/, 'must be an IPv4 CIDR such as 203.0.113.0/24')
  .refine((cidr) => {
    const [address = '', bits = ''] = cidr.split('/');
    return address.split('.').every((octet) => Number(octet) <= 255) && Number(bits) <= 32;
  }, 'must be an IPv4 CIDR such as 203.0.113.0/24');

const absolutePath = z
  .string()
  .regex(/^\/[^\s]*$/, 'must be an absolute path without spaces')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

export const stackTriggerSchema = z
  .strictObject({
    repository: triggerSchema.shape.repository.describe(
      'The repository: its CodeCommit name (for source "codecommit"), or the name a provider webhook sends.',
    ),
    branch: triggerSchema.shape.branch.describe('The branch whose pushes run the command (refs/heads/ is implied; slashes are kept).'),
    command: triggerSchema.shape.command.describe(
      'What runs on the receiver host: a string runs through /bin/sh -c, an array runs without a shell. Push data reaches it only as TRIGGLER_* environment variables.',
    ),
    source: z
      .enum(['codecommit', 'webhook'])
      .default('codecommit')
      .describe(
        '"codecommit": the stack adds a CodeCommit trigger and the sender Lambda delivers pushes. "webhook": a provider (GitHub, GitLab, Gitea, Bitbucket) sends its own webhook, through webhooks.ingress; the stack creates the token and the receiver trigger.',
      ),
    provider: z
      .enum(PROVIDER_WEBHOOK_PATHS)
      .optional()
      .describe(
        'For source "webhook": the provider whose webhook drives this trigger (its URL is /hooks/<provider>). Required with webhooks.ingress "function-url", whose relay verifies each provider\'s webhooks with its triggers\' tokens. Default: none (the receiver takes any provider\'s webhook at any /hooks/<provider> path).',
      ),
    createRepository: z
      .boolean()
      .default(false)
      .describe(
        "true: the stack creates the CodeCommit repository (kept when the stack is deleted) and sets its trigger. false: the repository exists; the stack merges its trigger into the repository's own and removes only its own on delete.",
      ),
    cwd: triggerSchema.shape.cwd.describe('Working directory of the command. Default: the service\'s working directory, "/".'),
    timeoutSeconds: triggerSchema.shape.timeoutSeconds.describe(
      "After this long the command's whole process group gets SIGTERM, then SIGKILL.",
    ),
    scheme: z
      .enum(SENDER_SCHEMES)
      .default('standard')
      .describe(
        'How the sender signs deliveries: "standard" (Standard Webhooks) or "seed" (the original X-Signature scheme, for receivers still on the old server).',
      ),
    iterations: triggerSchema.shape.iterations.describe("Seed-scheme hash rounds. Default: 1000 (the receiver's signature.iterations)."),
    tokenName: triggerSchema.shape.tokenName.describe(
      'The token\'s name under tokens.prefix; triggers that name the same token share it (one provider webhook secret for several branches). Default: "<repository>/<branch>".',
    ),
    env: triggerSchema.shape.env.describe(
      'Extra environment for the command. Values are written into the CloudFormation template: never put a secret here.',
    ),
    rerunInterrupted: triggerSchema.shape.rerunInterrupted.describe(
      'A run the receiver was running when it crashed or the host rebooted is run again, once, at the next start (its push was accepted; its command never finished). false leaves it interrupted: for a command that must not run twice.',
    ),
    deploy: deploySchema
      .extend({
        repositoryUrl: repositoryUrlSchema
          .optional()
          .describe(
            'What git fetches. Default: for source "codecommit", https://git-codecommit.<region>.amazonaws.com/v1/repos/<repository> (the host\'s role may pull exactly the configured repositories). Required for source "webhook".',
          ),
        path: deploySchema.shape.path.describe(
          'Absolute path holding repo.git, releases/ and current; the stack creates it owned by the service user.',
        ),
        keepReleases: deploySchema.shape.keepReleases.describe(
          'Releases kept; older ones are removed after a successful switch (never current or the one a rollback returns to).',
        ),
        activate: deploySchema.shape.activate.describe(
          'Runs in the new release once current points at it (say, a service restart). Default: none.',
        ),
        healthCheck: deploySchema.shape.healthCheck.describe(
          '{ command, timeoutSeconds (60), intervalSeconds (2) }: retried until it passes or the time runs out; failing it switches back. Default: none (the switch stands once activate passes).',
        ),
        sshKey: deploySchema.shape.sshKey.describe(
          `For an SSH repositoryUrl: the name under tokens.prefix of your own deploy key, an unencrypted OpenSSH private key you store as a SecureString; the stack lets the host read it and generates none. Default: for source "webhook", a key the stack generates per repository (${DEPLOY_KEYS_FOLDER}/<repository>; the stack output DeployKey<repository> holds its public half, to add to the repository's deploy keys); for source "codecommit", none.`,
        ),
        knownHosts: deploySchema.shape.knownHosts.describe(
          'For an SSH repositoryUrl: known_hosts lines ("host key-type key", as ssh-keyscan prints them) for its host, the only host keys ssh accepts. Default: the keys pinned for github.com, gitlab.com, bitbucket.org and codeberg.org; any other host (a self-hosted GitLab, Gitea or Forgejo) needs its own.',
        ),
      })
      .optional()
      .describe(
        'Default: none (the command runs in cwd, nothing is fetched). Deploy the pushed commit: fetched into <path>/repo.git, laid out as <path>/releases/<id>, the command run there, then <path>/current switched to it, activate run and healthCheck retried; a failed activate or healthCheck switches back. The stack installs git (and ssh for an SSH repositoryUrl), creates path owned by the service user and makes it writable for the unit.',
      ),
  })
  .describe('One (repository, branch) pair and the command its pushes run.');

export const stackConfigSchema = z
  .strictObject({
    $schema: z.string().optional().describe('Path of the JSON Schema for editors; ignored by the stack.'),
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]*$/, 'must start with a letter and hold only letters, digits and "-"')
      .max(87, 'must be at most 87 characters (it is part of the CodeCommit trigger name, which allows 100)')
      .default('GitTriggler')
      .describe('The CloudFormation stack name.'),
    triggers: z.array(stackTriggerSchema).min(1, 'must list at least one trigger').describe('What runs when which branch is pushed.'),
    receiver: z
      .strictObject({
        port: port
          .default(5000)
          .describe("The receiver's port: open to the sender's and the webhook relay's security groups, and to receiver.allowCidrs."),
        adminPort: port.default(5001).describe("The receiver's admin listener (runs and logs), bound to 127.0.0.1 on the host."),
        instanceType: z
          .string()
          .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an EC2 instance type such as t4g.micro')
          .default('t4g.micro')
          .describe(
            'EC2 instance type. Graviton types (t4g, m7g, ...) get the arm64 image, others x86_64. t4g.nano (0.5 GiB) is cheaper but tight for dnf and Node.js.',
          ),
        allowCidrs: z
          .array(ipv4Cidr)
          .default([])
          .describe('IPv4 ranges allowed to reach receiver.port from outside the VPC, for provider webhooks. Empty: only the sender can.'),
        writablePaths: z
          .array(absolutePath)
          .default([])
          .describe(
            'Paths the commands may write besides /var/lib/triggler (the service runs with ProtectSystem=strict). Missing paths are ignored.',
          ),
        manageUnits: z
          .array(z.string().max(256).regex(UNIT_NAME, 'must be a systemd unit name such as my-app.service'))
          .default([])
          .describe(
            "systemd units the commands (activate, say) may start, stop, restart and reload with systemctl, without sudo: a polkit rule lets the service user do that to these units and no others. sudo cannot work under the unit's hardening.",
          ),
        rootVolumeGiB: z.number().int().min(8).max(16384).default(8).describe('Size of the encrypted gp3 root volume.'),
        imageIds: z
          .record(
            z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be a region name such as eu-west-1'),
            z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'must be an AMI id'),
          )
          .optional()
          .describe(
            'Pin the host image per region ({"eu-west-1": "ami-..."}); its architecture must match instanceType. Default: the latest Amazon Linux 2023, resolved at each deploy (a newer image replaces the host).',
          ),
        logLevel: receiverConfigSchema.shape.log.unwrap().shape.level.describe("The receiver's log level."),
        hosts: z
          .number()
          .int()
          .min(1)
          .max(MAX_FLEET_HOSTS)
          .default(1)
          .describe(
            'How many hosts run the receiver. 1: one EC2 instance that deploys each push itself. More: a fleet (an Auto Scaling group of this many instances, each with its own receiver and releases) onto which every push is rolled out by a Step Functions state machine through SSM Run Command, as the rollout section says (see docs/fleet.md).',
          ),
      })
      .prefault({})
      .describe('The EC2 host that runs the receiver (or, with hosts above 1, each host of the fleet).'),
    rollout: rolloutSchema
      .optional()
      .describe(
        "How a push is rolled out to a fleet (receiver.hosts above 1): prepared on every host, switched on the canary, then in batches, rolled back everywhere on failure. Default: every field's own default.",
      ),
    tokens: z
      .strictObject({
        prefix: receiverTokenSettings.prefix
          .optional()
          .describe(
            'SSM path under which every token is stored as <prefix>/<tokenName>. Default: /<stackName in kebab case>/tokens, so /git-triggler/tokens for the default stack name (the convention `triggler tokens --stack NAME` follows).',
          ),
        retainOnDelete: z
          .boolean()
          .default(false)
          .describe(
            'Keep the token and deploy key parameters the stack created when it is deleted (and a deploy key when its repository leaves the config).',
          ),
        cacheSeconds: receiverTokenSettings.ttlSeconds.describe('How long the sender and the receiver reuse a token read from SSM.'),
        graceSeconds: receiverTokenSettings.graceSeconds.describe(
          'How long the receiver still accepts a rotated-out token; must be longer than cacheSeconds so a rotation under traffic loses nothing.',
        ),
      })
      .prefault({})
      .describe('The tokens the stack generates in SSM Parameter Store (SecureString); no token appears in the template.'),
    sender: z
      .strictObject({
        memoryMiB: z.number().int().min(128).max(10240).default(256).describe('Memory of the sender Lambda.'),
        timeoutSeconds: z
          .number()
          .int()
          .min(5)
          .max(900)
          .default(60)
          .describe('Timeout of one sender invocation (all deliveries of one push event).'),
        deliveryTimeoutSeconds: z.number().int().min(1).max(300).default(10).describe('Timeout of one HTTP delivery to the receiver.'),
        retryAttempts: z.number().int().min(0).max(2).default(2).describe("Lambda's retries of a failed asynchronous invocation."),
        maxEventAgeSeconds: z
          .number()
          .int()
          .min(60)
          .max(21600)
          .default(21600)
          .describe('How long Lambda keeps retrying an event before it goes to the failure queue.'),
        alarmTopicArn: z
          .string()
          .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, 'must be an SNS topic ARN')
          .optional()
          .describe('SNS topic notified when a delivery lands in the failure queue. Default: none (the alarm shows in CloudWatch).'),
        commitDetails: z
          .boolean()
          .default(false)
          .describe(
            'Add the commit message and author to deliveries (CodeCommit GetCommit). Adds a CodeCommit interface endpoint to the VPC (about $7.30 a month per AZ).',
          ),
      })
      .prefault({})
      .describe('The Lambda that turns CodeCommit pushes into signed deliveries.'),
    notifications: z
      .strictObject({
        email: z
          .array(z.email('must be an e-mail address'))
          .default([])
          .describe('Addresses subscribed to the run notifications topic (each confirms its subscription once).'),
        topicArn: z
          .string()
          .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/, 'must be an SNS topic ARN')
          .optional()
          .describe(
            'Publish run notifications to this existing topic instead of one the stack creates (email then cannot be set). Default: a topic the stack creates.',
          ),
        on: receiverConfigSchema.shape.notify.unwrap().element.shape.on.describe('The run outcomes published to the topic.'),
      })
      .optional()
      .describe(
        'When a run fails (or recovers), the receiver publishes to an SNS topic, and an alarm watches its FailedRuns metric. Default: none.',
      ),
    network: z
      .strictObject({
        cidr: ipv4Cidr
          .refine((cidr) => {
            const bits = Number(cidr.split('/')[1]);
            return bits >= 16 && bits <= 24;
          }, 'must be a /16 to /24 range')
          .default('10.0.0.0/16')
          .describe("The VPC's address range."),
        maxAzs: z
          .number()
          .int()
          .min(1)
          .max(
            2,
            'must be 1 or 2: `cdk synth` needs no credentials, so the stack is not tied to an account, and such a stack knows only two zones of its region',
          )
          .default(1)
          .describe(
            'Availability zones, 1 or 2 (a stack synthesized without credentials knows two zones of its region). Each adds an SSM interface endpoint (about $7.30 a month), and a CodeCommit one with sender.commitDetails; the receiver is one host in the first zone either way.',
          ),
        flowLogs: z.boolean().default(true).describe('VPC flow logs to CloudWatch Logs.'),
      })
      .prefault({})
      .describe('The VPC: public subnets for the host, isolated subnets for the sender, no NAT gateway.'),
    logRetentionDays: z
      .literal([...LOG_RETENTION_DAYS])
      .default(30)
      .describe("Retention of the stack's CloudWatch log groups (sender, custom resources, flow logs)."),
    tags: z
      .record(z.string().min(1).max(128), z.string().max(256))
      .default({})
      .describe("Tags added to every resource but a fleet's commit parameters (a tag edit would reset them)."),
    webhooks: z
      .strictObject({
        ingress: z
          .enum(WEBHOOK_INGRESS)
          .optional()
          .describe(
            'How provider webhooks reach the receiver from the internet. "function-url": a Lambda Function URL (HTTPS, AWS\'s certificate, no domain) whose relay verifies each webhook before forwarding it to the receiver\'s private address; the receiver keeps no internet ingress. "direct": receiver.allowCidrs opens the receiver\'s port (plain HTTP). "none": no way in from the internet. Default: "direct" when receiver.allowCidrs lists ranges, else "none".',
          ),
        reservedConcurrency: z
          .union([z.number().int().min(1).max(1000), z.literal(false)])
          .default(false)
          .describe(
            'With "function-url": the relay\'s reserved concurrency, which bounds what a flood of forged requests can cost (at most 10 requests a second per execution; the rest get 429, unbilled). Lambda keeps 100 executions of the account unreserved, so reserving N needs a concurrency quota of at least N + 100 (new accounts often have 10: the deploy would fail). Default: false, none reserved (a flood is bounded only by the account\'s concurrency, and costs what Lambda bills for it).',
          ),
        timeoutSeconds: z
          .number()
          .int()
          .min(1)
          .max(25)
          .default(8)
          .describe(
            'With "function-url": the relay answers within this long; a receiver that has not answered by then gets the provider a 503 with Retry-After. Keep it under the providers\' own timeouts (GitHub waits 10 s).',
          ),
      })
      .prefault({})
      .describe('How provider webhooks (triggers with source "webhook") reach the receiver: see docs/providers.md.'),
  })
  .superRefine((parsed, ctx) => {
    for (const { path, message } of stackConfigProblems(withWebhookIngress(withTokenPrefix(parsed))))
      ctx.addIssue({ code: 'custom', path, message });
  })
  .transform((config) => withWebhookIngress(withTokenPrefix(config)))
  .describe('git-triggler stack config: see docs/deploy.md.');

/** Fills in `webhooks.ingress`: "direct" for a config that opens receiver.allowCidrs (as before the setting existed), else "none". */
function withWebhookIngress<T extends { receiver: { allowCidrs: string[] }; webhooks: { ingress?: WebhookIngress | undefined } }>(
  config: T,
): T & { webhooks: T['webhooks'] & { ingress: WebhookIngress } } {
  const ingress = config.webhooks.ingress ?? (config.receiver.allowCidrs.length > 0 ? 'direct' : 'none');
  return { ...config, webhooks: { ...config.webhooks, ingress } };
}

export { defaultTokenPrefix };

function withTokenPrefix<T extends { stackName: string; tokens: { prefix?: string | undefined } }>(
  config: T,
): T & { tokens: T['tokens'] & { prefix: string } } {
  return { ...config, tokens: { ...config.tokens, prefix: config.tokens.prefix ?? defaultTokenPrefix(config.stackName) } };
}

export type StackConfigInput = z.input<typeof stackConfigSchema>;
export type StackConfig = z.output<typeof stackConfigSchema>;
export type StackTrigger = StackConfig['triggers'][number];

/** The token name of a trigger: the same function the receiver and the CLI name tokens with. */
export { tokenNameOf };

/** Every token name the config uses, each once, in first-use order. */
export function tokenNamesOf(config: StackConfig): string[] {
  return [...new Set(config.triggers.map(tokenNameOf))];
}

/** One CodeCommit trigger per repository, listing every configured branch of it. */
export function repositoryTriggerPlans(config: StackConfig): RepositoryTriggerPlan[] {
  const plans = new Map<string, RepositoryTriggerPlan>();
  for (const trigger of config.triggers) {
    if (trigger.source !== 'codecommit') continue;
    const plan = plans.get(trigger.repository) ?? {
      repository: trigger.repository,
      createRepository: trigger.createRepository,
      branches: [],
    };
    if (!plan.branches.includes(trigger.branch)) plan.branches.push(trigger.branch);
    plans.set(trigger.repository, plan);
  }
  return [...plans.values()];
}

export class StackConfigError extends ConfigError {
  constructor(message: string, problems: string[]) {
    super(message, problems);
    this.name = 'StackConfigError';
  }
}

/** Validates a parsed config; throws StackConfigError naming every bad field. */
export function parseStackConfig(raw: unknown, source = 'stack config'): StackConfig {
  return parseNamingFields(stackConfigSchema, raw, source, (message, problems) => new StackConfigError(message, problems));
}

/** Reads and validates the config file; errors name the file and each bad field. */
export function loadStackConfig(path: string): StackConfig {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    const problem = `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    throw new StackConfigError(problem, [problem]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const problem = `${path} is not valid JSON: ${(error as Error).message}`;
    throw new StackConfigError(problem, [problem]);
  }
  return parseStackConfig(raw, path);
}
