/**
 * The rollout state machine exactly as `cdk synth` writes it: a small stack holding FleetRollout
 * is synthesized, its DefinitionString taken from the template and its CloudFormation intrinsics
 * (Fn::Join, Ref, Fn::GetAtt) resolved to the local engine's names, so what runs locally is the
 * definition AWS would be given.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { FleetRollout, type FleetRolloutProps, type RolloutSettings } from '../../../lib/constructs/fleet-rollout';

/** What the definition names, as the local engine serves it. */
export const LOCAL_AWS = {
  partition: 'aws',
  region: 'local-1',
  account: '000000000000',
  tableName: 'triggler-rollouts',
  stateMachineName: 'triggler-rollout',
} as const;

/** The rollout state machine's ARN as the local engine serves it. */
export const LOCAL_STATE_MACHINE_ARN = `arn:aws:states:${LOCAL_AWS.region}:${LOCAL_AWS.account}:stateMachine:${LOCAL_AWS.stateMachineName}`;

export const LOCAL_FLEET_PROPS: Omit<FleetRolloutProps, 'rollout'> = {
  documentName: 'triggler-fleet-step',
  fleetTag: { key: 'triggler:fleet', value: 'local' },
  commandLogGroupName: '/triggler/fleet/commands',
  commitParameterPrefix: '/triggler/fleet',
  stepTimeoutSeconds: 120,
};

export interface SynthesizedRollout {
  /** The Amazon States Language definition, intrinsics resolved. */
  definition: Record<string, unknown>;
  /** The state machine role's policy statements, intrinsics resolved (for the IAM checks). */
  statements: Array<{ Action: string | string[]; Resource: string | string[]; Condition?: unknown }>;
  props: FleetRolloutProps;
}

export function synthesizeRollout(
  rollout: RolloutSettings,
  props: Omit<FleetRolloutProps, 'rollout'> = LOCAL_FLEET_PROPS,
): SynthesizedRollout {
  // An app with no outdir leaves a cdk.out* folder in the temp directory; this one is removed.
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggler-rollout-synth-'));
  let template: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  const full = { ...props, rollout };
  try {
    const stack = new Stack(new App({ outdir }), 'FleetRolloutLocal');
    new FleetRollout(stack, 'Rollout', full);
    template = Template.fromStack(stack).toJSON() as typeof template;
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
  const resources = template.Resources;
  const resolve = (value: unknown): unknown => resolveIntrinsics(value, resources);
  const machine = Object.values(resources).find((resource) => resource.Type === 'AWS::StepFunctions::StateMachine');
  if (!machine) throw new Error('the synthesized stack holds no state machine');
  const definition = JSON.parse(resolve(machine.Properties.DefinitionString) as string) as Record<string, unknown>;
  const statements = Object.values(resources)
    .filter((resource) => resource.Type === 'AWS::IAM::Policy')
    .flatMap((policy) => (resolve(policy.Properties.PolicyDocument) as { Statement: SynthesizedRollout['statements'] }).Statement);
  return { definition, statements, props: full };
}

function localName(logicalId: string, type: string): string {
  switch (type) {
    case 'AWS::DynamoDB::GlobalTable':
    case 'AWS::DynamoDB::Table':
      return LOCAL_AWS.tableName;
    case 'AWS::StepFunctions::StateMachine':
      return LOCAL_STATE_MACHINE_ARN;
    case 'AWS::IAM::Role':
      return logicalId;
    default:
      throw new Error(`the local engine has no name for ${logicalId} (${type})`);
  }
}

function attribute(logicalId: string, type: string, name: string): string {
  if (name === 'Arn' && type.startsWith('AWS::DynamoDB::'))
    return `arn:aws:dynamodb:${LOCAL_AWS.region}:${LOCAL_AWS.account}:table/${LOCAL_AWS.tableName}`;
  if (name === 'Name' && type === 'AWS::StepFunctions::StateMachine') return LOCAL_AWS.stateMachineName;
  if (name === 'Arn' && type === 'AWS::IAM::Role') return `arn:aws:iam::${LOCAL_AWS.account}:role/${logicalId}`;
  throw new Error(`the local engine has no ${name} for ${logicalId} (${type})`);
}

const PSEUDO: Record<string, string> = {
  'AWS::Partition': LOCAL_AWS.partition,
  'AWS::Region': LOCAL_AWS.region,
  'AWS::AccountId': LOCAL_AWS.account,
  'AWS::URLSuffix': 'amazonaws.com',
};

function resolveIntrinsics(value: unknown, resources: Record<string, { Type: string }>): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveIntrinsics(item, resources));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1) {
    const [key, argument] = entries[0]!;
    if (key === 'Ref') {
      const name = argument as string;
      if (name in PSEUDO) return PSEUDO[name];
      const resource = resources[name];
      if (!resource) throw new Error(`Ref to ${name}, which the template does not hold`);
      return localName(name, resource.Type);
    }
    if (key === 'Fn::GetAtt') {
      const [logicalId, name] = argument as [string, string];
      const resource = resources[logicalId];
      if (!resource) throw new Error(`Fn::GetAtt of ${logicalId}, which the template does not hold`);
      return attribute(logicalId, resource.Type, name);
    }
    if (key === 'Fn::Join') {
      const [separator, parts] = argument as [string, unknown[]];
      return parts.map((part) => resolveIntrinsics(part, resources) as string).join(separator);
    }
    if (key.startsWith('Fn::')) throw new Error(`the local engine does not resolve ${key}`);
  }
  return Object.fromEntries(entries.map(([key, item]) => [key, resolveIntrinsics(item, resources)]));
}
