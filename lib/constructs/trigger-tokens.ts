import * as path from 'node:path';
import { ArnFormat, CustomResource, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { parameterNameProblem, tokenParameterName } from '../../protocol';
import { propProblem, throwPropProblems, type PropProblem } from '../construct-props';
import { publicKeyNameOf } from '../stack-config/deploy-keys';
import { idFromName } from '../stack-config/name-ids';
import { BundledProvider } from './bundled-provider';

const REPOSITORY_ROOT = path.join(__dirname, '..', '..');

export interface TriggerTokensProps {
  /** SSM path under which each token is stored as `<prefix>/<tokenName>`. */
  readonly prefix: string;
  /** The token names (each trigger's `tokenName`, by default `<repository>/<branch>`). */
  readonly tokenNames: string[];
  /**
   * The deploy keys to generate, one per repository: the private half is the SecureString
   * `<prefix>/<keyName>`, the public half the String `<prefix>/<keyName>.pub` and the key's
   * `publicKey` attribute.
   * @default []
   */
  readonly deployKeys?: DeployKeySpec[];
  /**
   * Deploy keys their users store under the prefix themselves (`deploy.sshKey`): `grantRead` may
   * grant them; nothing writes them.
   * @default []
   */
  readonly ownDeployKeyNames?: string[];
  /**
   * Keep the parameters when the stack is deleted (and a deploy key when its repository leaves
   * `deployKeys`).
   * @default false
   */
  readonly retainOnDelete?: boolean;
  /**
   * Retention of the token handler's log groups.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The custom-resource handler's TypeScript entry.
   * @default lambda/token-provider.ts
   */
  readonly handlerEntry?: string;
}

export interface DeployKeySpec {
  /** The repository whose deploy keys take the public half; the key's comment and id name it. */
  readonly repository: string;
  /** The private half's name under the prefix. */
  readonly keyName: string;
}

/** A generated deploy key. */
export interface DeployKey {
  readonly repository: string;
  /** The SecureString holding the private half (what the receiver's `deploy.sshKey` names). */
  readonly parameterName: string;
  /** The String holding the public half. */
  readonly publicParameterName: string;
  /** The public half (`ssh-ed25519 AAAA... <comment>`), known at deploy: the resource's `PublicKey`. */
  readonly publicKey: string;
  readonly resource: CustomResource;
}

/** Every bad prop of TriggerTokens. */
export function triggerTokensPropProblems(props: TriggerTokensProps): PropProblem[] {
  const parameterProblem = (prop: string, name: string) => propProblem(prop, parameterNameProblem(tokenParameterName(props.prefix, name)));
  const repositories = (props.deployKeys ?? []).map((key) => key.repository);
  return [
    ...propProblem('prefix', props.prefix.endsWith('/') ? 'must not end with "/"' : parameterNameProblem(props.prefix)),
    ...propProblem('tokenNames', props.tokenNames.length === 0 ? 'must name at least one token' : undefined),
    ...[...new Set(props.tokenNames)].flatMap((name) => parameterProblem('tokenNames', name)),
    ...(props.deployKeys ?? []).flatMap((key, i) => [
      ...parameterProblem(`deployKeys[${i}].keyName`, publicKeyNameOf(key.keyName)),
      ...propProblem(
        `deployKeys[${i}].repository`,
        repositories.indexOf(key.repository) < i
          ? `repeats deployKeys[${repositories.indexOf(key.repository)}]: one key per repository`
          : undefined,
      ),
    ]),
    ...(props.ownDeployKeyNames ?? []).flatMap((name, i) => parameterProblem(`ownDeployKeyNames[${i}]`, name)),
  ];
}

/** About the most one statement of parameter ARNs should hold, in characters of policy. */
const STATEMENT_CHARACTERS = 1500;
/** `"arn:aws-us-gov:ssm:ap-southeast-4:123456789012:parameter",`: an ARN's longest part but its name. */
const ARN_CHARACTERS = 60;

/**
 * The names in groups whose ARNs fit one statement of about STATEMENT_CHARACTERS. CDK splits a
 * role's policy into managed policies (6,144 characters at most, IAM's limit) only between
 * statements, and merges statements only while they stay under 2,000: one statement listing
 * every token outgrows a managed policy at a few dozen triggers, and the deploy fails.
 */
export function inStatementSizedGroups(names: string[]): string[][] {
  const groups: string[][] = [];
  let size = Infinity;
  for (const name of names) {
    const length = ARN_CHARACTERS + name.length;
    if (size + length > STATEMENT_CHARACTERS) {
      groups.push([]);
      size = 0;
    }
    groups.at(-1)!.push(name);
    size += length;
  }
  return groups;
}

/**
 * The secrets the stack generates, each by a custom resource and written to SSM Parameter Store as
 * a SecureString: one strong random token per token name, and one ed25519 deploy key per
 * repository that deploys over SSH. CloudFormation cannot create SecureStrings, and whatever a
 * template holds is readable by anyone who can read the stack: a secret exists only in SSM. One
 * handler serves both resource types.
 */
export class TriggerTokens extends Construct {
  public readonly prefix: string;
  /** Every token parameter's name, in the order of `tokenNames`. */
  public readonly parameterNames: string[];
  /** ARNs of exactly those parameters. */
  public readonly parameterArns: string[];
  public readonly resource: CustomResource;
  /** The generated deploy keys, in the order of `deployKeys`. */
  public readonly deployKeys: DeployKey[];
  /** The deploy key parameters the users store (`ownDeployKeyNames` under the prefix). */
  public readonly ownDeployKeyParameterNames: string[];

  constructor(scope: Construct, id: string, props: TriggerTokensProps) {
    super(scope, id);
    throwPropProblems(this, triggerTokensPropProblems(props));
    const names = [...new Set(props.tokenNames)];
    const keys = props.deployKeys ?? [];

    this.prefix = props.prefix;
    this.parameterNames = names.map((name) => tokenParameterName(props.prefix, name));
    this.parameterArns = this.parameterNames.map((name) => TriggerTokens.parameterArn(this, name));
    this.ownDeployKeyParameterNames = [...new Set(props.ownDeployKeyNames ?? [])].map((name) => tokenParameterName(props.prefix, name));
    const keyNames = keys.map((key) => ({
      repository: key.repository,
      parameterName: tokenParameterName(props.prefix, key.keyName),
      publicParameterName: tokenParameterName(props.prefix, publicKeyNameOf(key.keyName)),
    }));
    const provider = new BundledProvider(this, 'Provider', {
      entry: props.handlerEntry ?? path.join(REPOSITORY_ROOT, 'lambda', 'token-provider.ts'),
      description: 'git-triggler token generator (writes SSM SecureStrings only when absent)',
      logRetention: props.logRetention,
      // The one path it may manage: a deploy key's Delete outside it (an earlier prefix) keeps the key.
      environment: { TRIGGLER_TOKEN_PREFIX: props.prefix },
      // The whole prefix, not each name: a grant listing every name outgrows IAM's policy size at
      // a few dozen triggers, and a deploy key whose repository leaves the config is deleted in
      // the update's cleanup, after its name would have left such a list. The handler itself
      // writes only absent parameters and deletes only those tagged as this stack's.
      handlerPolicy: [
        new iam.PolicyStatement({
          // AddTagsToResource: PutParameter's Tags need it; the tag marks the parameters this stack
          // created, the only ones a delete may remove.
          actions: ['ssm:PutParameter', 'ssm:AddTagsToResource', 'ssm:ListTagsForResource', 'ssm:DeleteParameter'],
          resources: [TriggerTokens.parameterArn(this, `${props.prefix}/*`)],
        }),
        // A kept key's public half, read back for the output; never a private half (no decrypt).
        ...(keyNames.length === 0
          ? []
          : [
              new iam.PolicyStatement({
                actions: ['ssm:GetParameter'],
                resources: [TriggerTokens.parameterArn(this, `${props.prefix}/*.pub`)],
              }),
            ]),
      ],
    });
    const prefixFinding = `Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter${props.prefix}/*`;
    Validations.of(provider.handler.role).acknowledge(
      {
        id: `AwsSolutions-IAM5[${prefixFinding}]`,
        reason:
          "The token generator manages the parameters under this stack's token prefix: it writes only absent ones and deletes only those tagged as created by this stack.",
      },
      ...(keyNames.length === 0
        ? []
        : [
            {
              id: `AwsSolutions-IAM5[${prefixFinding.replace(/\*$/, '*.pub')}]`,
              reason:
                'The token generator reads back the public halves of deploy keys (Strings, *.pub) for the stack output; it has no kms:Decrypt for any private half.',
            },
          ]),
    );

    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::TrigglerTokens',
      properties: {
        Prefix: props.prefix,
        // Sorted: reordering the config's triggers is no change to this resource.
        TokenNames: [...names].sort(),
        RetainOnDelete: String(props.retainOnDelete ?? false),
      },
    });

    const stackName = Stack.of(this).stackName;
    this.deployKeys = keyNames.map((key) => {
      const resource = new CustomResource(this, `DeployKey${idFromName(key.repository)}`, {
        serviceToken: provider.serviceToken,
        // The handler tells its resource types apart by this (lambda/deploy-key-provider.ts).
        resourceType: 'Custom::TrigglerDeployKey',
        properties: {
          ParameterName: key.parameterName,
          PublicParameterName: key.publicParameterName,
          Comment: `git-triggler ${stackName} ${key.repository}`,
          RetainOnDelete: String(props.retainOnDelete ?? false),
        },
      });
      return { ...key, publicKey: resource.getAttString('PublicKey'), resource };
    });
  }

  /** `arn:<partition>:ssm:<region>:<account>:parameter/<name without its leading slash>`. */
  static parameterArn(scope: Construct, parameterName: string): string {
    return Stack.of(scope).formatArn({
      service: 'ssm',
      resource: 'parameter',
      resourceName: parameterName.replace(/^\//, ''),
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  /**
   * Lets a reader get and decrypt the named parameters (all the tokens by default), nothing else:
   * tokens, the private halves of deploy keys, and the users' own deploy keys.
   */
  grantRead(grantee: iam.IGrantable, parameterNames: string[] = this.parameterNames, actions = ['ssm:GetParameter']): void {
    const known = new Set([...this.parameterNames, ...this.deployKeys.map((key) => key.parameterName), ...this.ownDeployKeyParameterNames]);
    const unknown = parameterNames.filter((name) => !known.has(name));
    throwPropProblems(
      this,
      propProblem('grantRead', unknown.length > 0 ? `${unknown.join(', ')} are not tokens or deploy keys of this construct` : undefined),
    );
    const stack = Stack.of(this);
    // SecureStrings are decrypted by KMS on SSM's behalf; the conditions keep the grant to that
    // path and to exactly these parameters (SSM names the parameter in the encryption context), so
    // the key (aws/ssm, shared by every stack of the region) decrypts nothing else for this role.
    // Both statements list the same parameters, in groups each of which fits a managed policy. The
    // condition names each parameter by its exact path with the partition, region and account left
    // to the ARN's own parts (kms:ViaService pins the region; the key is this account's): a third of
    // the characters of a full ARN, which keeps a host with many repositories within IAM's limits.
    for (const names of inStatementSizedGroups(parameterNames)) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions, resources: names.map((name) => TriggerTokens.parameterArn(this, name)) }),
      );
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
          conditions: {
            StringEquals: { 'kms:ViaService': `ssm.${stack.region}.amazonaws.com` },
            StringLike: {
              'kms:EncryptionContext:PARAMETER_ARN': names.map((name) => `arn:*:ssm:*:*:parameter/${name.replace(/^\//, '')}`),
            },
          },
        }),
      );
    }
    if (Construct.isConstruct(grantee.grantPrincipal)) {
      Validations.of(grantee.grantPrincipal).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
        reason:
          'kms:Decrypt only through SSM (kms:ViaService) and only for the named token and deploy key SecureStrings (kms:EncryptionContext:PARAMETER_ARN); their key (aws/ssm, or one a rotation names) has no id known at synth.',
      });
    }
  }
}
