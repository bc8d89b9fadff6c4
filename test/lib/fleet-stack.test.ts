/**
 * A fleet (receiver.hosts above 1) from scripts/fleet.config.json, the config CI's template lint
 * synthesizes too: the Auto Scaling group set up like the single host, the Command document whose
 * patterns are `triggler fleet-step`'s, the converge associations, the IAM that keeps Run Command
 * to the fleet's hosts, the senders starting rollouts; and that hosts: 1 is the stack as before.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Stack } from 'aws-cdk-lib';
import { Template as Assertions } from 'aws-cdk-lib/assertions';
import { FLEET_STEP_PATTERNS, FLEET_STEPS } from '../../bin/fleet-step';
import { NO_FLEET_COMMIT } from '../../lib/constructs/fleet-command';
import { FLEET_TAG_KEY, fleetCommitPrefixOf, fleetStepTimeoutSecondsOf } from '../../lib/stack-config/fleet-settings';
import type { StackConfig, StackConfigInput } from '../../lib/stack-config/schema';
import { FLEET_ROUTE_URL } from '../../lib/triggler-stack';
import { fleetCommitParameterName, ROLLOUT_STATE_MACHINE_ENV } from '../../protocol/rollout';
import {
  acknowledgedFindings,
  configOf,
  dependencyCycles,
  exampleConfigInput,
  REPOSITORY_ROOT,
  removeScratch,
  trigglerApp,
  type Template,
} from '../support/stack-fixture';

afterAll(removeScratch);

const FLEET_CONFIG_PATH = path.join(REPOSITORY_ROOT, 'scripts', 'fleet.config.json');

type Resource = Template['Resources'][string];
type Statement = { Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, string>>; Sid?: string };

let config: StackConfig;
let assertions: Assertions;
let template: Template;
let stackConstruct: Stack;

beforeAll(() => {
  config = configOf(JSON.parse(fs.readFileSync(FLEET_CONFIG_PATH, 'utf8')) as StackConfigInput);
  // Synthesis runs cdk-nag: an unacknowledged finding throws here and fails every test below.
  const { stack } = trigglerApp(config);
  assertions = Assertions.fromStack(stack);
  template = assertions.toJSON() as Template;
  stackConstruct = stack;
});

function resourcesOf(type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

function onlyResourceOf(type: string): [string, Resource] {
  const found = resourcesOf(type);
  expect(found.map(([id]) => id)).toHaveLength(1);
  return found[0]!;
}

/** Every statement of the policies attached to roles whose logical id starts with `rolePrefix`. */
function statementsOfRole(rolePrefix: string): Statement[] {
  return resourcesOf('AWS::IAM::Policy').flatMap(([, policy]) => {
    const properties = policy.Properties as { Roles: { Ref: string }[]; PolicyDocument: { Statement: Statement[] } };
    return properties.Roles.some((role) => role.Ref.startsWith(rolePrefix)) ? properties.PolicyDocument.Statement : [];
  });
}

const actionsOf = (statement: Statement): string[] => [statement.Action].flat();

describe('a fleet of three receiver hosts', () => {
  test('is an Auto Scaling group of exactly `hosts` instances from a launch template: IMDSv2, encrypted gp3, a public address, no SSH key', () => {
    const [groupId, group] = onlyResourceOf('AWS::AutoScaling::AutoScalingGroup');
    expect(group.Properties).toMatchObject({
      MinSize: '3',
      MaxSize: '3',
    });
    expect(group.Properties!.Tags).toEqual(
      expect.arrayContaining([{ Key: FLEET_TAG_KEY, Value: 'GitTrigglerFleet', PropagateAtLaunch: true }]),
    );
    expect(group.Properties!.LaunchConfigurationName).toBeUndefined();
    const [, launchTemplate] = onlyResourceOf('AWS::EC2::LaunchTemplate');
    const data = (launchTemplate.Properties as { LaunchTemplateData: Record<string, unknown> }).LaunchTemplateData;
    expect(data).toMatchObject({
      MetadataOptions: { HttpTokens: 'required' },
      BlockDeviceMappings: [
        { DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 8, DeleteOnTermination: true } },
      ],
      NetworkInterfaces: [expect.objectContaining({ AssociatePublicIpAddress: true })],
      InstanceType: 't4g.micro',
    });
    expect(data.KeyName).toBeUndefined();
    // The user data runs cfn-init against the group's own metadata and signals the group.
    const userData = JSON.stringify(data.UserData);
    expect(userData).toContain(`--resource ${groupId}`);
    expect(userData).toContain('cfn-signal');
  });

  test('waits for every host on create, and replaces hosts one at a time only when the launch template changes', () => {
    const [, group] = onlyResourceOf('AWS::AutoScaling::AutoScalingGroup');
    const policies = group as Resource & { CreationPolicy?: unknown; UpdatePolicy?: unknown };
    expect(policies.CreationPolicy).toEqual({ ResourceSignal: { Count: 3, Timeout: 'PT15M' } });
    expect(policies.UpdatePolicy).toMatchObject({
      AutoScalingRollingUpdate: { MaxBatchSize: 1, MinInstancesInService: 2, WaitOnResourceSignals: true },
    });
    // No fingerprint of the metadata in the user data: a config change goes through cfn-hup, not a replacement.
    const [, launchTemplate] = onlyResourceOf('AWS::EC2::LaunchTemplate');
    expect(JSON.stringify(launchTemplate.Properties)).not.toMatch(/fingerprint/i);
  });

  test("each host gets the single host's cfn-init setup: the same configs, unit and scripts; cfn-hup watches the group; the health gate counts every host", () => {
    const [groupId, group] = onlyResourceOf('AWS::AutoScaling::AutoScalingGroup');
    const init = (group.Metadata as Record<string, Record<string, { files?: Record<string, { content?: unknown; source?: unknown }> }>>)[
      'AWS::CloudFormation::Init'
    ]!;
    expect(init.configSets).toEqual({ default: ['revision', 'system', 'receiver', 'health'] });
    const files = init.receiver!.files!;
    const unit = fs.readFileSync(path.join(REPOSITORY_ROOT, 'lib', 'host-files', 'triggler-receiver.service'), 'utf8');
    expect(files['/etc/systemd/system/triggler-receiver.service']!.content).toBe(unit);
    expect(files['/usr/local/bin/triggler']).toBeDefined();
    expect(JSON.stringify(files['/etc/cfn/hooks.d/triggler-receiver.conf']!.content)).toContain(`path=Resources.${groupId}.Metadata`);
    const [, healthy] = onlyResourceOf('AWS::CloudFormation::WaitCondition');
    expect(healthy.Properties).toMatchObject({ Count: 3 });
  });

  test('opens no port on the hosts: pushes reach them only as rollouts', () => {
    const [sgId] = Object.entries(template.Resources).find(
      ([id, resource]) => resource.Type === 'AWS::EC2::SecurityGroup' && id.startsWith('ReceiverFleetSecurityGroup'),
    )!;
    const group = template.Resources[sgId]!;
    expect((group.Properties as { SecurityGroupIngress?: unknown[] }).SecurityGroupIngress ?? []).toEqual([]);
    const ingress = resourcesOf('AWS::EC2::SecurityGroupIngress').filter(
      ([, rule]) =>
        JSON.stringify((rule.Properties as { GroupId: unknown }).GroupId) === JSON.stringify({ 'Fn::GetAtt': [sgId, 'GroupId'] }),
    );
    expect(ingress).toEqual([]);
  });

  test("the Command document's parameters are exactly triggler fleet-step's patterns; step takes only the steps", () => {
    const [, document] = onlyResourceOf('AWS::SSM::Document');
    const properties = document.Properties as { DocumentType: string; Content: Record<string, unknown> };
    expect(properties.DocumentType).toBe('Command');
    const content = properties.Content as {
      schemaVersion: string;
      parameters: Record<string, { allowedPattern?: string; allowedValues?: string[]; default?: string }>;
      mainSteps: { action: string; inputs: { timeoutSeconds: number; runCommand: string[] } }[];
    };
    expect(content.schemaVersion).toBe('2.2');
    expect(content.parameters.step).toMatchObject({ allowedValues: [...FLEET_STEPS] });
    expect(content.parameters.repository!.allowedPattern).toBe(FLEET_STEP_PATTERNS.repository.source);
    expect(content.parameters.branch!.allowedPattern).toBe(FLEET_STEP_PATTERNS.branch.source);
    expect(content.parameters.config).toMatchObject({
      allowedPattern: FLEET_STEP_PATTERNS.config.source,
      default: '/etc/triggler/receiver.json',
    });
    // The commit may be left out (a rollback to the release before current), and is a commit id otherwise.
    expect(content.parameters.commit).toMatchObject({ allowedPattern: `^$|${FLEET_STEP_PATTERNS.commit.source}`, default: '' });
    const commit = new RegExp(content.parameters.commit!.allowedPattern!);
    expect(['', 'a'.repeat(40), 'abc1234'].map((value) => commit.test(value))).toEqual([true, true, true]);
    expect(['x', 'abc;rm', 'A'.repeat(40), '$(id)'].map((value) => commit.test(value))).toEqual([false, false, false, false]);
    // Every parameter is checked: none is free text.
    for (const [name, parameter] of Object.entries(content.parameters))
      expect({ name, checked: parameter.allowedPattern !== undefined || parameter.allowedValues !== undefined }).toEqual({
        name,
        checked: true,
      });

    const [step] = content.mainSteps;
    expect(step!.action).toBe('aws:runShellScript');
    expect(step!.inputs.timeoutSeconds).toBe(fleetStepTimeoutSecondsOf(config));
    expect(step!.inputs.runCommand.join('\n')).toContain('triggler fleet-step "$@"');
  });

  test("sends each invocation's whole output to a log group of the stack, which the hosts may write and nothing else there", () => {
    const [logGroupId, logGroup] = Object.entries(template.Resources).find(
      ([id, resource]) => resource.Type === 'AWS::Logs::LogGroup' && id.startsWith('FleetCommandOutput'),
    )!;
    expect(logGroup.Properties).toMatchObject({ RetentionInDays: 30 });
    const writes = statementsOfRole('ReceiverFleetRole').find((statement) => statement.Sid === 'FleetStepOutput')!;
    expect(actionsOf(writes).sort()).toEqual(['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents']);
    expect(JSON.stringify(writes.Resource)).toContain(logGroupId);
  });

  test("one converge association per trigger on the fleet tag, with the trigger's fleet commit parameter", () => {
    const associations = resourcesOf('AWS::SSM::Association').map(([, association]) => association.Properties as Record<string, unknown>);
    expect(associations).toHaveLength(config.triggers.length);
    const prefix = fleetCommitPrefixOf(config);
    for (const trigger of config.triggers) {
      const parameterName = fleetCommitParameterName(prefix, trigger.repository, trigger.branch);
      const association = associations.find((a) => (a.Parameters as { repository: string[] }).repository[0] === trigger.repository)!;
      expect(association).toMatchObject({
        Targets: [{ Key: `tag:${FLEET_TAG_KEY}`, Values: ['GitTrigglerFleet'] }],
        Parameters: {
          step: ['converge'],
          repository: [trigger.repository],
          branch: [trigger.branch],
          commit: [`{{ssm:${parameterName}}}`],
        },
      });
      expect(association.ScheduleExpression).toBeUndefined();
      expect(association.AssociationName).toMatch(/^[A-Za-z0-9_.-]{3,128}$/);
      assertions.hasResourceProperties('AWS::SSM::Parameter', {
        Name: parameterName,
        Type: 'String',
        Value: NO_FLEET_COMMIT,
        AllowedPattern: FLEET_STEP_PATTERNS.commit.source,
      });
    }
    expect(prefix).toBe('/git-triggler-fleet/fleet');
    // The stack's tags leave the parameters out: a tag edit would make CloudFormation write the starting value over the rollout's.
    for (const [, parameter] of resourcesOf('AWS::SSM::Parameter')) expect(parameter.Properties!.Tags).toBeUndefined();
    // AWS::SSM::Association has no Tags in CloudFormation's schema.
    for (const [, association] of resourcesOf('AWS::SSM::Association')) expect(association.Properties!.Tags).toBeUndefined();
    const [, group] = onlyResourceOf('AWS::AutoScaling::AutoScalingGroup');
    expect(group.Properties!.Tags).toEqual(expect.arrayContaining([{ Key: 'team', Value: 'platform', PropagateAtLaunch: true }]));
  });

  test('the state machine may send the document only, to hosts with the fleet tag only, and write only the commit parameters', () => {
    const statements = statementsOfRole('RolloutStateMachineRole');
    // IAM actions are case-insensitive: the state machine's SDK tasks grant `ssm:sendCommand`.
    const sendCommand = statements.filter((statement) => actionsOf(statement).some((action) => action.toLowerCase() === 'ssm:sendcommand'));
    expect(sendCommand).toHaveLength(2);
    const [documentId] = onlyResourceOf('AWS::SSM::Document');
    const onDocument = sendCommand.find((statement) => JSON.stringify(statement.Resource).includes(':document/'))!;
    expect(JSON.stringify(onDocument.Resource)).toContain(`":document/",{"Ref":"${documentId}"}`);
    expect(onDocument.Condition).toBeUndefined();
    const onHosts = sendCommand.find((statement) => statement !== onDocument)!;
    expect(JSON.stringify(onHosts.Resource)).toMatch(/:instance\/\*"\]\]\}$/);
    expect(onHosts.Condition).toEqual({ StringEquals: { [`ssm:resourceTag/${FLEET_TAG_KEY}`]: 'GitTrigglerFleet' } });
    for (const statement of sendCommand) expect(statement.Resource).not.toBe('*');

    const writes = statements.filter((statement) => actionsOf(statement).includes('ssm:PutParameter'));
    const parameterIds = resourcesOf('AWS::SSM::Parameter').map(([id]) => id);
    expect(writes).toHaveLength(1);
    expect(
      JSON.stringify(writes[0]!.Resource)
        .match(/FleetCommandCommit\w+/g)
        ?.sort(),
    ).toEqual(parameterIds.filter((id) => id.startsWith('FleetCommandCommit')).sort());
  });

  test('no role of the fleet reads anything on "*": every statement on "*" holds only actions that read nothing', () => {
    const onAnything = ['ReceiverFleetRole', 'RolloutStateMachineRole', 'SenderRole', 'WebhookRelayRole']
      .flatMap(statementsOfRole)
      .filter((statement) => statement.Resource === '*')
      .flatMap(actionsOf);
    const readNothing = new Set([
      // The rollout's own Run Command calls, which take no resource: they list commands, their
      // invocations (each host's one JSON line) and online instances, and cancel a command.
      'ssm:cancelCommand',
      'ssm:describeInstanceInformation',
      'ssm:listCommandInvocations',
      'ssm:listCommands',
      'ssm:UpdateInstanceInformation',
      'ssmmessages:CreateControlChannel',
      'ssmmessages:CreateDataChannel',
      'ssmmessages:OpenControlChannel',
      'ssmmessages:OpenDataChannel',
      'ec2messages:AcknowledgeMessage',
      'ec2messages:DeleteMessage',
      'ec2messages:FailMessage',
      'ec2messages:GetEndpoint',
      'ec2messages:GetMessages',
      'ec2messages:SendReply',
      'ssm:ListInstanceAssociations',
      'ssm:UpdateInstanceAssociationStatus',
      'ssm:PutComplianceItems',
      'cloudwatch:PutMetricData',
      // What the CDK grants a function in a VPC (its network interfaces) and X-Ray-free Lambda logging.
      'ec2:CreateNetworkInterface',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DeleteNetworkInterface',
      'ec2:AssignPrivateIpAddresses',
      'ec2:UnassignPrivateIpAddresses',
    ]);
    // The hosts' agent is there (so the check looked at real statements), and nothing else is.
    expect(onAnything).toEqual(expect.arrayContaining(['ssm:UpdateInstanceInformation', 'ssm:ListInstanceAssociations']));
    expect(onAnything.filter((action) => !readNothing.has(action))).toEqual([]);
  });

  test('the sender and the webhook relay start rollouts of this state machine and no other, through an endpoint in the VPC', () => {
    const [machineId] = onlyResourceOf('AWS::StepFunctions::StateMachine');
    const functions = resourcesOf('AWS::Lambda::Function').filter(
      ([id]) => id.startsWith('SenderFunction') || id.startsWith('WebhookRelayFunction'),
    );
    expect(functions).toHaveLength(2);
    for (const [, fn] of functions) {
      const variables = (fn.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
      expect(variables[ROLLOUT_STATE_MACHINE_ENV]).toEqual({ Ref: machineId });
      expect(JSON.stringify(variables)).toContain(FLEET_ROUTE_URL);
    }
    for (const role of ['SenderRole', 'WebhookRelayRole']) {
      const starts = statementsOfRole(role).filter((statement) => actionsOf(statement).some((action) => action.startsWith('states:')));
      expect(starts).toEqual([expect.objectContaining({ Action: 'states:StartExecution', Resource: { Ref: machineId } })]);
    }
    assertions.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.states']] },
      PrivateDnsEnabled: true,
    });
  });

  test('outputs what the fleet commands and an operator need, and no single host', () => {
    const outputs = Object.keys(template.Outputs ?? {});
    expect(outputs).toEqual(
      expect.arrayContaining([
        'FleetAutoScalingGroup',
        'FleetInstancesCommand',
        'RolloutStateMachineArn',
        'FleetCommandDocument',
        'FleetCommandLogGroup',
        'FleetCommitParameterPrefix',
      ]),
    );
    expect(outputs).not.toContain('ReceiverInstanceId');
    expect(outputs).not.toContain('ReceiverPrivateUrl');
  });

  test("every cdk-nag finding the fleet's constructs acknowledge names its rule and gives a specific reason", () => {
    const fleetParts = acknowledgedFindings(stackConstruct).filter(({ path }) =>
      /\/(ReceiverFleet|FleetCommand|Rollout)\//.test(`${path}/`),
    );
    expect(fleetParts.map(({ id }) => id)).toEqual(
      expect.arrayContaining([
        'Annotation::AwsSolutions-AS3',
        'Annotation::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
      ]),
    );
    for (const { path, id, reason } of fleetParts) {
      expect({ path, id }).toEqual({ path, id: expect.stringMatching(/^(Annotation::)?AwsSolutions-[A-Z]+\d+(\[.+\])?$/) });
      expect({ path, id, reason }).toEqual({ path, id, reason: expect.stringMatching(/^.{60,}$/) });
    }
  });

  test('has no dependency cycle', () => {
    expect(dependencyCycles(template)).toEqual([]);
  });
});

describe('receiver.hosts 1', () => {
  test('synthesizes exactly the stack a config without the field does: one instance, no rollout', () => {
    const input = exampleConfigInput();
    const without = Assertions.fromStack(trigglerApp(configOf(input)).stack).toJSON();
    const withOne = Assertions.fromStack(trigglerApp(configOf({ ...input, receiver: { ...input.receiver, hosts: 1 } })).stack).toJSON();
    expect(withOne).toEqual(without);
    const types = Object.values((withOne as Template).Resources).map((resource) => resource.Type);
    expect(types).toContain('AWS::EC2::Instance');
    for (const type of [
      'AWS::AutoScaling::AutoScalingGroup',
      'AWS::SSM::Document',
      'AWS::SSM::Association',
      'AWS::StepFunctions::StateMachine',
    ])
      expect(types).not.toContain(type);
  });
});
