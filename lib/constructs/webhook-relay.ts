import * as path from 'node:path';
import { Annotations, Duration, Fn, Stack, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ProviderWebhookPath } from '../../protocol';
import { ROLLOUT_STATE_MACHINE_ENV } from '../../protocol/rollout';
import { propProblem, throwPropProblems, type PropProblem } from '../construct-props';
import { bundledVpcFunction, environmentBytes, LONGEST_RESOLVED_URL, MAX_ENVIRONMENT_BYTES } from './bundled-node-function';
import type { TriggerTokens } from './trigger-tokens';

const REPOSITORY_ROOT = path.join(__dirname, '..', '..');

/**
 * The cdk-nag packs that flag a function anyone may invoke (HIPAA, NIST 800-53 R4/R5, PCI DSS:
 * LambdaFunctionPublicAccessProhibited). AwsSolutions has no rule on Function URLs; an auditor
 * running one of these packs sees why this one is public.
 */
const PUBLIC_ACCESS_FINDINGS = ['HIPAA.Security', 'NIST.800.53.R4', 'NIST.800.53.R5', 'PCI.DSS.321'].map(
  (pack) => `${pack}-LambdaFunctionPublicAccessProhibited`,
);

/** One entry of the relay's routes (lambda/relay-settings.ts): whose tokens verify which provider's webhook. */
export interface WebhookRelayRoute {
  /** The `/hooks/<provider>` path the provider posts to. */
  readonly provider: ProviderWebhookPath;
  /** The repository as the receiver's trigger names it. */
  readonly repository: string;
  /** The SSM parameter holding the webhook's secret (the trigger's token). */
  readonly tokenParameter: string;
  /** A fleet's: the branches of the repository that have a trigger (a push to another runs nothing). */
  readonly branches?: readonly string[];
}

export interface WebhookRelayProps {
  readonly vpc: ec2.IVpc;
  /** @default - the VPC's isolated subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly routes: WebhookRelayRoute[];
  /** The tokens the routes name; the function may read exactly those. */
  readonly tokens: TriggerTokens;
  /** The receiver's base URL inside the VPC; may be a token (the host's address). */
  readonly receiverUrl: string;
  /**
   * The receiver's `limits.bodyBytes`: a larger body is refused (413) without reaching the host.
   * @default 5242880
   */
  readonly bodyLimitBytes?: number;
  /**
   * The relay answers within this long: a receiver that has not answered by then is a 503 with
   * Retry-After. Keep it under the providers' own timeouts (GitHub waits 10 s).
   * @default Duration.seconds(8)
   */
  readonly answerWithin?: Duration;
  /**
   * At most this many executions at once, which bounds what a flood of forged requests can cost
   * (Lambda serves at most 10 requests a second per execution, and refuses the rest with 429,
   * unbilled). Lambda keeps 100 of the account's concurrency unreserved, so a reservation needs a
   * quota of at least 100 more (new accounts often have 10, and then the deploy fails); synth
   * notes it when one is set. `false` reserves none: the account's concurrency is the only bound.
   * @default false
   */
  readonly reservedConcurrency?: number | false;
  /** @default Duration.seconds(60) */
  readonly tokenCacheTtl?: Duration;
  /** How long after a rotation the previous token still verifies (the receiver's grace). @default Duration.seconds(900) */
  readonly tokenGrace?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * On a fleet: the rollout state machine the relay starts for each verified push instead of
   * forwarding it to one host; it may start executions of this machine and no other.
   * @default - none: the relay forwards to receiverUrl
   */
  readonly rolloutStateMachine?: sfn.IStateMachine;
  /** @default lambda/relay.ts */
  readonly entry?: string;
}

/** The relay's settings with their defaults filled in, as the checks below need them. */
interface WebhookRelaySettings {
  answerWithin: Duration;
  reservedConcurrency: number | false;
  /** What `TRIGGLER_RELAY` holds (lambda/relay-settings.ts), before it becomes JSON. */
  relay: Record<string, unknown>;
}

/** Every bad prop of a WebhookRelay. */
export function webhookRelayPropProblems(props: WebhookRelayProps, settings: WebhookRelaySettings): PropProblem[] {
  const seconds = settings.answerWithin.toSeconds({ integral: false });
  const { reservedConcurrency } = settings;
  const problems: PropProblem[] = [
    ...propProblem(
      'routes',
      props.routes.length === 0 ? 'must hold at least one route (a relay with no webhook to verify is a mistake)' : undefined,
    ),
    ...props.routes.flatMap((route, i) =>
      propProblem(
        `routes[${i}].tokenParameter`,
        props.tokens.parameterNames.includes(route.tokenParameter)
          ? undefined
          : `${route.tokenParameter} is not one of the tokens' parameters`,
      ),
    ),
    ...propProblem(
      'receiverUrl',
      Token.isUnresolved(props.receiverUrl) || /^https?:\/\/[^/?#\s]+/.test(props.receiverUrl)
        ? undefined
        : 'must be an http:// or https:// URL',
    ),
    ...propProblem(
      'answerWithin',
      seconds < 1 || seconds > 60 ? `must be 1 to 60 seconds (providers give up sooner), got ${seconds}` : undefined,
    ),
    ...propProblem(
      'reservedConcurrency',
      reservedConcurrency !== false && (!Number.isInteger(reservedConcurrency) || reservedConcurrency < 1)
        ? `must be a whole number of at least 1, or false, got ${reservedConcurrency}`
        : undefined,
    ),
  ];
  // The receiver URL is a token until deploy: measure it at its longest resolved length.
  const resolved = JSON.stringify({
    ...settings.relay,
    receiverUrl: Token.isUnresolved(props.receiverUrl) ? LONGEST_RESOLVED_URL : props.receiverUrl,
  });
  const bytes = environmentBytes({ TRIGGLER_RELAY: resolved });
  if (bytes > MAX_ENVIRONMENT_BYTES) {
    problems.push({
      prop: 'routes',
      problem: `${props.routes.length} routes make the environment about ${bytes} bytes; Lambda allows ${MAX_ENVIRONMENT_BYTES} (share tokenNames, or split the triggers over two stacks)`,
    });
  }
  return problems;
}

/**
 * Public HTTPS for provider webhooks without a domain or an open port: a Lambda Function URL
 * (AWS's certificate) whose function, in the VPC like the sender, verifies each webhook's
 * signature with its token from SSM and forwards only verified ones to the receiver's private
 * address. The receiver host then needs no internet ingress at all.
 */
export class WebhookRelay extends Construct implements ec2.IConnectable {
  public readonly function: lambda.IFunction;
  public readonly functionUrl: lambda.FunctionUrl;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly connections: ec2.Connections;
  /** The `/hooks/<provider>` paths the routes use, each once, in first-use order. */
  public readonly providers: ProviderWebhookPath[];

  private readonly routes: WebhookRelayRoute[];

  constructor(scope: Construct, id: string, props: WebhookRelayProps) {
    super(scope, id);
    const answerWithin = props.answerWithin ?? Duration.seconds(8);
    const reservedConcurrency = props.reservedConcurrency ?? false;
    // One route per (provider, repository, token); a fleet's branches of equal routes are merged.
    const routes = new Map<string, WebhookRelayRoute>();
    for (const route of props.routes) {
      const key = JSON.stringify([route.provider, route.repository, route.tokenParameter]);
      const seen = routes.get(key);
      const branches = [...new Set([...(seen?.branches ?? []), ...(route.branches ?? [])])];
      routes.set(key, { ...(seen ?? route), ...(branches.length > 0 ? { branches } : {}) });
    }
    this.routes = [...routes.values()];
    this.providers = [...new Set(this.routes.map((route) => route.provider))];
    const settings = {
      receiverUrl: props.receiverUrl,
      timeoutMs: answerWithin.toMilliseconds(),
      bodyLimitBytes: props.bodyLimitBytes ?? 5 * 1024 * 1024,
      tokenTtlSeconds: (props.tokenCacheTtl ?? Duration.seconds(60)).toSeconds(),
      tokenGraceSeconds: (props.tokenGrace ?? Duration.seconds(900)).toSeconds(),
      routes: this.routes.map((route) => ({ ...route })),
    };
    throwPropProblems(this, webhookRelayPropProblems(props, { answerWithin, reservedConcurrency, relay: settings }));

    const { bundled, securityGroup } = bundledVpcFunction(this, 'Relay', {
      entry: props.entry ?? path.join(REPOSITORY_ROOT, 'lambda', 'relay.ts'),
      description: 'git-triggler webhook relay: verifies provider webhooks, forwards them to the receiver',
      // Lambda's own timeout stays past the relay's bound, so the 503 is the relay's, not a 502 of Lambda's.
      timeout: Duration.seconds(Math.ceil(answerWithin.toSeconds({ integral: false })) + 1),
      memorySize: props.memorySize,
      environment: {
        TRIGGLER_RELAY: Stack.of(this).toJsonString(settings),
        ...(props.rolloutStateMachine ? { [ROLLOUT_STATE_MACHINE_ENV]: props.rolloutStateMachine.stateMachineArn } : {}),
      },
      logRetention: props.logRetention,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroupDescription: 'git-triggler webhook relay: reaches only the receiver port and the VPC endpoints',
      whyInVpc: "The relay runs in the VPC to reach the receiver's private address",
    });
    this.securityGroup = securityGroup;
    this.function = bundled.function;
    this.connections = new ec2.Connections({ securityGroups: [this.securityGroup] });
    const cfnFunction = bundled.function.node.defaultChild as lambda.CfnFunction;
    if (reservedConcurrency !== false) {
      cfnFunction.reservedConcurrentExecutions = reservedConcurrency;
      Annotations.of(this).addInfo(
        `reservedConcurrency ${reservedConcurrency}: Lambda keeps 100 concurrent executions of the account unreserved, so this deploy needs a concurrency quota of at least ${reservedConcurrency + 100} in the region (new accounts often have 10; see Service Quotas, "Concurrent executions")`,
      );
    }
    // Lambda's START/END/REPORT lines would be three billed log lines per forged request; the
    // relay logs what matters itself (refusals rate-limited), and Lambda's metrics stay.
    cfnFunction.addPropertyOverride('LoggingConfig.SystemLogLevel', 'WARN');

    // Providers cannot sign AWS requests: the URL takes anyone, and the function checks the webhook's own signature.
    this.functionUrl = bundled.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    const publicReason =
      "Provider webhooks (GitHub, GitLab, Gitea, Bitbucket) cannot sign AWS requests, so the Function URL has auth type NONE; the function verifies every request with the webhook's own signature before anything reaches the receiver, and reserved concurrency bounds what forged requests can cost.";
    for (const finding of PUBLIC_ACCESS_FINDINGS) Validations.of(bundled.function).acknowledge({ id: finding, reason: publicReason });

    props.tokens.grantRead(bundled.role, [...new Set(this.routes.map((route) => route.tokenParameter))]);
    props.rolloutStateMachine?.grantStartExecution(bundled.role);
  }

  /** The URL to paste into a provider's webhook settings: `https://<id>.lambda-url.<region>.on.aws/hooks/<provider>`. */
  urlOf(provider: ProviderWebhookPath): string {
    return Fn.join('', [this.functionUrl.url, `hooks/${provider}`]);
  }

  /** The token parameters of a provider's webhooks: the secrets to paste beside its URL. */
  secretParametersOf(provider: ProviderWebhookPath): string[] {
    return [...new Set(this.routes.filter((route) => route.provider === provider).map((route) => route.tokenParameter))];
  }
}
