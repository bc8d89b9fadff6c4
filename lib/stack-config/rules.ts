/**
 * The stack config's rules: what the schema cannot say field by field, one named rule per check
 * (the way cdk-nag names its rules), each with the reason it exists. A rule reports every problem
 * it finds at the field that fixes it; the schema runs them all and names each field.
 */
import { PROVIDER_WEBHOOK_PATHS } from '../../protocol/provider-requests';
import { parameterNameProblem, tokenNameOf, tokenParameterName } from '../../protocol';
import { deploySshProblems, receiverConfigSchema } from '../../receiver/config/schema';
import { privateTmpOf, privateTmpProblem } from '../../receiver/config/startup-problems';
import { branchNameProblem, codeCommitTriggerName, repositoryNameProblem, triggerNameProblem } from './codecommit-rules';
import { deployKeyNameOf, generatedDeployKeysOf, generatesDeployKey, publicKeyNameOf, sshKeyOf } from './deploy-keys';
import { commandsOf, hostCommandProblem } from './host-commands';
import { codeCommitUrl, receiverConfigFor } from './receiver-config';
import { isFleet } from './fleet-settings';
import type { StackConfig, StackTrigger } from './schema';

export type FieldPath = (string | number)[];

/** One problem a rule found: the field to fix and what is wrong with it. */
export interface StackConfigProblem {
  readonly path: FieldPath;
  readonly message: string;
}

export type Report = (path: FieldPath, message: string) => void;

export interface StackConfigRule {
  /** A stable name for the rule (what it checks), for docs and tests. */
  readonly id: string;
  /** Why the rule exists: what would go wrong, and when, without it. */
  readonly explanation: string;
  /** Reports each problem of a config with every default filled in. */
  check(config: StackConfig, report: Report): void;
}

/** A rule that looks at one trigger at a time; its fields are reported under `triggers[i]`. */
function triggerRule(
  id: string,
  explanation: string,
  check: (trigger: StackTrigger, config: StackConfig, report: Report) => void,
): StackConfigRule {
  return {
    id,
    explanation,
    check(config, report) {
      config.triggers.forEach((trigger, i) => check(trigger, config, (path, message) => report(['triggers', i, ...path], message)));
    },
  };
}

/** A SecureString name SSM can store: the token prefix is checked once, so its problem is not repeated per trigger. */
const prefixProblemOf = (config: StackConfig) => parameterNameProblem(config.tokens.prefix);

export const STACK_CONFIG_RULES: readonly StackConfigRule[] = [
  {
    id: 'token-prefix-is-a-parameter-path',
    explanation: 'Every token and deploy key is an SSM parameter under tokens.prefix; a prefix SSM refuses would fail the first deploy.',
    check(config, report) {
      const problem = prefixProblemOf(config);
      if (problem) report(['tokens', 'prefix'], problem);
    },
  },
  triggerRule(
    'codecommit-names',
    'CodeCommit refuses repository and branch names outside its own rules; synth says so instead of the deploy.',
    (trigger, _config, report) => {
      if (trigger.source !== 'codecommit') return;
      const repositoryProblem = repositoryNameProblem(trigger.repository);
      if (repositoryProblem) report(['repository'], repositoryProblem);
      const branchProblem = branchNameProblem(trigger.branch);
      if (branchProblem) report(['branch'], branchProblem);
    },
  ),
  {
    id: 'create-repository-agrees',
    explanation:
      'One repository is created by the stack or exists already, never both: triggers of one repository must agree on createRepository.',
    check(config, report) {
      const createdBy = new Map<string, { index: number; createRepository: boolean }>();
      config.triggers.forEach((trigger, i) => {
        if (trigger.source !== 'codecommit') return;
        const first = createdBy.get(trigger.repository);
        if (first === undefined) createdBy.set(trigger.repository, { index: i, createRepository: trigger.createRepository });
        else if (first.createRepository !== trigger.createRepository) {
          report(
            ['triggers', i, 'createRepository'],
            `disagrees with triggers[${first.index}] for repository ${trigger.repository}; give both the same value`,
          );
        }
      });
    },
  },
  triggerRule(
    'codecommit-only-fields',
    'createRepository and the seed scheme make sense only for CodeCommit repositories; a provider signs in its own way.',
    (trigger, _config, report) => {
      if (trigger.source === 'codecommit') return;
      if (trigger.createRepository) report(['createRepository'], 'applies only to source "codecommit"');
      if (trigger.scheme === 'seed') report(['scheme'], 'applies only to source "codecommit" (a provider signs in its own way)');
    },
  ),
  triggerRule(
    'provider-for-webhooks',
    "provider names a webhook sender; the function-url relay verifies each provider's webhooks with its own triggers' tokens, so it must know every trigger's provider.",
    (trigger, config, report) => {
      if (trigger.provider !== undefined && trigger.source !== 'webhook') report(['provider'], 'applies only to source "webhook"');
      if (config.webhooks.ingress === 'function-url' && trigger.source === 'webhook' && trigger.provider === undefined) {
        report(
          ['provider'],
          `is required with webhooks.ingress "function-url" (one of ${PROVIDER_WEBHOOK_PATHS.join(', ')}): the relay verifies each provider's webhooks`,
        );
      }
    },
  ),
  triggerRule(
    'webhook-deploy-url',
    "Only a CodeCommit repository's clone URL can be derived from its name; a provider's must be given.",
    (trigger, _config, report) => {
      if (trigger.deploy && trigger.deploy.repositoryUrl === undefined && trigger.source === 'webhook') {
        report(['deploy', 'repositoryUrl'], 'is required for source "webhook" (only a CodeCommit repository URL can be derived)');
      }
    },
  ),
  triggerRule(
    'token-is-a-parameter-name',
    'Each token is the SSM parameter <tokens.prefix>/<tokenName>; a name SSM refuses would fail the deploy.',
    (trigger, config, report) => {
      if (prefixProblemOf(config)) return;
      const problem = parameterNameProblem(tokenParameterName(config.tokens.prefix, tokenNameOf(trigger)));
      if (problem)
        report(
          [trigger.tokenName === undefined ? 'branch' : 'tokenName'],
          `${problem}${trigger.tokenName === undefined ? '; set tokenName' : ''}`,
        );
    },
  ),
  triggerRule(
    'commands-fit-the-host',
    "The host's unit rules out sudo, and polkit lets commands manage only the units receiver.manageUnits lists: either would fail only at the first push.",
    (trigger, config, report) => {
      for (const { field, command } of commandsOf(trigger)) {
        const problem = hostCommandProblem(command, config.receiver.manageUnits);
        if (problem) report(field, problem);
      }
    },
  ),
  triggerRule(
    'paths-outside-private-tmp',
    'On the AWS host every command starts in the command runner, whose unit has a /tmp and /var/tmp of its own: a cwd or deploy.path there would fail only at the first push.',
    (trigger, _config, report) => {
      const paths: Array<[FieldPath, string | undefined]> = [
        [['cwd'], trigger.cwd],
        [['deploy', 'path'], trigger.deploy?.path],
      ];
      for (const [field, path] of paths) {
        if (path === undefined) continue;
        const tmp = privateTmpOf(path);
        if (tmp) report(field, privateTmpProblem(path, tmp));
      }
    },
  ),
  triggerRule(
    'deploy-ssh-settings',
    "An SSH fetch needs a key and known host keys the receiver can use; the receiver's own rules judge them, with the key it will use.",
    (trigger, _config, report) => {
      if (!trigger.deploy) return;
      // With the key the receiver will use, so a generated key's host is checked like a named one's.
      const deploy = {
        ...trigger.deploy,
        repositoryUrl: trigger.deploy.repositoryUrl ?? codeCommitUrl(trigger.repository, '<region>'),
        sshKey: sshKeyOf(trigger),
      };
      for (const problem of deploySshProblems(deploy)) report(['deploy', problem.field], problem.message);
    },
  ),
  {
    id: 'deploy-key-names',
    explanation:
      'A deploy key is stored like a token, under tokens.prefix: its name must fit SSM, belong to no token or other key, and one generated key serves one repository URL (a provider such as GitHub takes a deploy key on one repository only).',
    check(config, report) {
      if (!prefixProblemOf(config)) deployKeyNameProblems(config, report);
    },
  },
  {
    id: 'codecommit-trigger-name',
    explanation: 'The stack names its trigger on each repository after the stack; CodeCommit limits trigger names.',
    check(config, report) {
      const problem = triggerNameProblem(codeCommitTriggerName(config.stackName));
      if (problem) report(['stackName'], problem);
    },
  },
  {
    id: 'token-cache-within-grace',
    explanation: 'A rotated-out token is accepted for graceSeconds; a sender still holding it from its cache after that would be refused.',
    check(config, report) {
      if (config.tokens.cacheSeconds >= config.tokens.graceSeconds) {
        report(
          ['tokens', 'cacheSeconds'],
          `must be shorter than tokens.graceSeconds (${config.tokens.graceSeconds}), or a rotation could refuse deliveries signed with a cached token`,
        );
      }
    },
  },
  {
    id: 'ingress-agrees-with-allow-cidrs',
    explanation:
      'receiver.allowCidrs opens the receiver\'s port to the internet: only webhooks.ingress "direct" wants that, and "direct" is useless without it.',
    check(config, report) {
      const { ingress } = config.webhooks;
      const allowCidrs = config.receiver.allowCidrs.length > 0;
      if (ingress === 'direct' && !allowCidrs)
        report(['receiver', 'allowCidrs'], 'must list the providers\' address ranges with webhooks.ingress "direct"');
      if (ingress !== 'direct' && allowCidrs) {
        report(
          ['receiver', 'allowCidrs'],
          `must be empty with webhooks.ingress "${ingress}": the receiver's port stays closed to the internet${ingress === 'function-url' ? ' (the relay reaches it inside the VPC)' : ''}; remove receiver.allowCidrs, or set webhooks.ingress "direct"`,
        );
      }
    },
  },
  {
    id: 'relay-has-webhooks',
    explanation:
      'The function-url relay forwards provider webhooks; without a webhook trigger it would be an open URL with nothing behind it.',
    check(config, report) {
      if (config.webhooks.ingress === 'function-url' && !config.triggers.some((trigger) => trigger.source === 'webhook')) {
        report(['webhooks', 'ingress'], '"function-url" needs at least one trigger with source "webhook"');
      }
    },
  },
  {
    id: 'distinct-ports',
    explanation: 'The receiver and its admin listener cannot share a port.',
    check(config, report) {
      if (config.receiver.port === config.receiver.adminPort) report(['receiver', 'adminPort'], 'must differ from receiver.port');
    },
  },
  {
    id: 'own-topic-own-subscriptions',
    explanation: "The stack subscribes addresses only to the topic it creates; your own topic's subscriptions are yours.",
    check(config, report) {
      if (config.notifications?.topicArn && config.notifications.email.length > 0)
        report(['notifications', 'email'], 'subscribe addresses to your own topic (notifications.topicArn) yourself');
    },
  },
  {
    id: 'rollout-needs-a-fleet',
    explanation:
      'A rollout spreads a push over several hosts; one host deploys each push itself, so a rollout section there would be settings nothing reads.',
    check(config, report) {
      if (config.rollout !== undefined && !isFleet(config))
        report(['rollout'], 'applies only to a fleet: set receiver.hosts above 1 (one host deploys each push itself)');
    },
  },
  {
    id: 'rollout-fits-the-fleet',
    explanation:
      'The canary is switched alone and the batches switch the rest: a canary as large as the fleet leaves nothing to batch, a batch larger than what is left is the rest at once, and a failure threshold as large as the batched hosts could never stop a rollout.',
    check(config, report) {
      if (config.rollout === undefined || !isFleet(config)) return;
      const { hosts } = config.receiver;
      const { canary, batchSize, maxFailedHosts } = config.rollout;
      if (canary >= hosts) {
        report(
          ['rollout', 'canary'],
          `must be less than receiver.hosts (${hosts}): the canary is switched alone, then the rest in batches`,
        );
        return;
      }
      const rest = hosts - canary;
      if (typeof batchSize === 'number' && batchSize > rest)
        report(['rollout', 'batchSize'], `must be at most ${rest}, the hosts left after the canary (or a percentage such as "50%")`);
      if (maxFailedHosts >= rest)
        report(
          ['rollout', 'maxFailedHosts'],
          `must be less than ${rest}, the hosts switched in batches: with ${maxFailedHosts} every one of them could fail and the rollout still go on`,
        );
    },
  },
  triggerRule(
    'fleet-triggers-deploy',
    'A rollout prepares a release on every host, switches current and rolls it back: a trigger without a deploy section has no release to prepare or switch.',
    (trigger, config, report) => {
      if (isFleet(config) && trigger.deploy === undefined)
        report(
          ['deploy'],
          `is required on a fleet (receiver.hosts ${config.receiver.hosts}): a rollout prepares, switches and rolls back releases, which only a deploy section makes`,
        );
    },
  ),
  {
    id: 'fleet-pushes-go-through-rollouts',
    explanation:
      'On a fleet every push is a rollout started by the sender or the webhook relay; a receiver port open to the internet would let a provider run a deploy on one host, past the rollout.',
    check(config, report) {
      if (isFleet(config) && config.webhooks.ingress === 'direct')
        report(
          ['receiver', 'allowCidrs'],
          'must be empty on a fleet (receiver.hosts above 1), and webhooks.ingress not "direct": a webhook would deploy on one host, past the rollout; use webhooks.ingress "function-url", whose relay starts a rollout',
        );
    },
  },
  {
    id: 'sender-outlives-delivery',
    explanation: 'One sender invocation makes at least one delivery; it must be allowed longer than a delivery may take.',
    check(config, report) {
      if (config.sender.timeoutSeconds <= config.sender.deliveryTimeoutSeconds) {
        report(['sender', 'timeoutSeconds'], `must be longer than sender.deliveryTimeoutSeconds (${config.sender.deliveryTimeoutSeconds})`);
      }
    },
  },
];

/**
 * The receiver's own schema judges the config the host will load. Its field checks are the ones
 * the stack's trigger fields already passed, so it runs once every other rule is clean and reports
 * what only it knows (repeated triggers, colliding seed routes). Its triggers are the stack's, in
 * the same order, so its trigger paths name the stack's fields.
 */
export const RECEIVER_ACCEPTS_ITS_CONFIG: StackConfigRule = {
  id: 'receiver-accepts-its-config',
  explanation:
    'The host loads the receiver config generated from this one; a config the receiver refuses would leave the host without a receiver.',
  check(config, report) {
    // The region only fills in CodeCommit clone URLs, which the receiver checks by form.
    const receiverCheck = receiverConfigSchema.safeParse(receiverConfigFor(config, { region: 'us-east-1' }));
    if (receiverCheck.success) return;
    for (const issue of receiverCheck.error.issues) {
      if (issue.path[0] === 'triggers') report(issue.path as FieldPath, issue.message);
      else report(['receiver'], `the generated receiver config is refused at ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
    }
  },
};

/** Every problem of a config (defaults filled in): each rule's, then the receiver's when they are clean. */
export function stackConfigProblems(config: StackConfig): StackConfigProblem[] {
  const problems: StackConfigProblem[] = [];
  const report: Report = (path, message) => problems.push({ path, message });
  for (const rule of STACK_CONFIG_RULES) rule.check(config, report);
  if (problems.length === 0) RECEIVER_ACCEPTS_ITS_CONFIG.check(config, report);
  return problems;
}

/** Who a name under tokens.prefix belongs to: a trigger's token, or a key the stack generates (either half). */
type NameOwner = { kind: 'token'; index: number } | { kind: 'key' | 'public key'; repository: string };

function describeOwner(owner: NameOwner): string {
  if (owner.kind === 'token') return `the token of triggers[${owner.index}]`;
  return `the ${owner.kind === 'key' ? '' : 'public half of the '}deploy key the stack generates for repository ${owner.repository}`;
}

/**
 * What stops a deploy key from being stored as its triggers need, each at the `deploy` field that
 * fixes it: an SSM name that does not fit, a name that is also a token's or the public half of a
 * generated key, and triggers that would share one generated key for different repository URLs.
 */
function deployKeyNameProblems(config: StackConfig, report: Report): void {
  const { prefix } = config.tokens;
  const owners = new Map<string, NameOwner>();
  config.triggers.forEach((trigger, index) => {
    if (!owners.has(tokenNameOf(trigger))) owners.set(tokenNameOf(trigger), { kind: 'token', index });
  });
  const clashes = new Map<string, string>();
  for (const { repository, keyName } of generatedDeployKeysOf(config.triggers)) {
    for (const [name, kind] of [
      [keyName, 'key'],
      [publicKeyNameOf(keyName), 'public key'],
    ] as const) {
      const owner = owners.get(name);
      if (owner) clashes.set(repository, `${name}, is also ${describeOwner(owner)}`);
      else owners.set(name, { kind, repository });
    }
  }

  const first = new Map<string, number>();
  config.triggers.forEach((trigger, i) => {
    const own = trigger.deploy?.sshKey;
    if (own !== undefined) {
      const owner = owners.get(own);
      const problem =
        parameterNameProblem(tokenParameterName(prefix, own)) ??
        (owner && owner.kind !== 'key' ? `is ${describeOwner(owner)}: a deploy key needs a name of its own` : undefined);
      if (problem) report(['triggers', i, 'deploy', 'sshKey'], problem);
      return;
    }
    if (!generatesDeployKey(trigger)) return;
    const earlier = first.get(trigger.repository);
    if (earlier !== undefined) {
      const url = config.triggers[earlier]!.deploy!.repositoryUrl!;
      if (trigger.deploy!.repositoryUrl !== url) {
        report(
          ['triggers', i, 'deploy', 'repositoryUrl'],
          `differs from triggers[${earlier}]'s (${url}), and both would fetch with the one key the stack generates for repository ${trigger.repository}: a provider such as GitHub takes a deploy key on one repository only. Give both the same repositoryUrl, or this one a deploy.sshKey of its own`,
        );
      }
      return;
    }
    first.set(trigger.repository, i);
    const keyName = deployKeyNameOf(trigger.repository);
    const problem = parameterNameProblem(tokenParameterName(prefix, publicKeyNameOf(keyName)));
    const clash = clashes.get(trigger.repository);
    if (problem)
      report(
        ['triggers', i, 'deploy', 'sshKey'],
        `the deploy key the stack would generate for this repository cannot be stored: ${problem}; set deploy.sshKey to name a key of your own`,
      );
    else if (clash)
      report(
        ['triggers', i, 'deploy', 'sshKey'],
        `the deploy key the stack would generate for this repository, ${clash}; set deploy.sshKey to name a key of your own`,
      );
  });
}
