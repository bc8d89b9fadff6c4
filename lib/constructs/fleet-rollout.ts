/**
 * The fleet's rollout engine: a Step Functions Standard state machine that drives Run Command
 * through its SDK integrations (no Lambda in the loop), and the DynamoDB table that keeps one
 * rollout per trigger at a time.
 *
 * SCAFFOLD: the props and the resources other constructs wire to are settled here; the state
 * machine's definition is being built (see the issue on fleets) and this placeholder fails every
 * execution so nothing can mistake it for a rollout.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** The `rollout` section of the stack config, resolved to its defaults. */
export interface RolloutSettings {
  /** Hosts switched first, alone; then `bakeSeconds` watching `alarms`. */
  readonly canary: number;
  /** A count of hosts, or a percentage of the fleet like "25%". */
  readonly batchSize: number | string;
  /** Failed hosts tolerated (summed over the batches) before the rollout stops and rolls back. */
  readonly maxFailedHosts: number;
  readonly bakeSeconds: number;
  /** CloudWatch alarm names: any in ALARM during the bake or after a batch stops the rollout. */
  readonly alarms: readonly string[];
  /** Pause after the canary until `triggler fleet promote`. */
  readonly hold: boolean;
}

export interface FleetRolloutProps {
  /** The SSM Command document that runs `triggler fleet-step` (lib/constructs: the fleet's document). */
  readonly documentName: string;
  /** The tag every fleet instance carries: the rollout snapshots the instances by it. */
  readonly fleetTag: { readonly key: string; readonly value: string };
  readonly rollout: RolloutSettings;
  /** Where Run Command writes each invocation's whole output (CloudWatchOutputConfig). */
  readonly commandLogGroupName: string;
  /** Prefix of the fleet's commit parameters (protocol/rollout: fleetCommitParameterName). */
  readonly commitParameterPrefix: string;
  /** Longest one host step may take, in seconds (the document's executionTimeout). */
  readonly stepTimeoutSeconds: number;
}

export class FleetRollout extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  /** One item per trigger: the running rollout's lock and the newest push waiting for it. */
  public readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string, props: FleetRolloutProps) {
    super(scope, id);
    void props;
    this.table = new dynamodb.TableV2(this, 'Rollouts', {
      partitionKey: { name: 'trigger', type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Fail(this, 'Not built yet', { error: 'NotBuilt' })),
    });
  }
}
