/**
 * Starting a fleet rollout: one Step Functions execution per pushed commit, named from the trigger
 * and the delivery id (protocol/rollout), so that a sender's retry of the same delivery never
 * starts a second rollout. Step Functions answers an identical StartExecution of a running
 * execution with success, and one of a finished execution (or any retry whose input differs) with
 * ExecutionAlreadyExists: both mean this delivery's rollout was started already.
 */
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { awsErrorName, describeAwsError, rolloutExecutionName, rolloutInput, type RolloutInput } from '../protocol';

/** A state machine's ARN: `arn:<partition>:states:<region>:<account>:stateMachine:<name>`. */
const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/;

/** A whole commit id: the rollout deploys exactly this commit on every host, never a guess from a prefix. */
const WHOLE_COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

export function stateMachineArnProblem(arn: string): string | undefined {
  return STATE_MACHINE_ARN.test(arn) ? undefined : 'must be a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)';
}

export function isWholeCommitId(commit: string): boolean {
  return WHOLE_COMMIT.test(commit);
}

/** The ARN an execution of this name has: what StartExecution would have answered. */
export function executionArnOf(stateMachineArn: string, executionName: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}`;
}

export interface RolloutStarted {
  executionName: string;
  executionArn: string;
  /** True when this delivery's rollout had been started already (a sender's retry). */
  alreadyStarted: boolean;
}

export class RolloutStarter {
  constructor(
    private readonly client: SFNClient,
    readonly stateMachineArn: string,
  ) {}

  /**
   * Starts the rollout of one push. Throws (with the AWS error described, never a token: the input
   * holds none) when Step Functions refuses for another reason, so the sender's retry takes over.
   */
  async start(repository: string, branch: string, commit: string, deliveryId: string): Promise<RolloutStarted> {
    return this.startInput(rolloutInput(repository, branch, commit, deliveryId));
  }

  /** Starts a rollout of this input (a sender's, or one `triggler fleet` builds). */
  async startInput(input: RolloutInput): Promise<RolloutStarted> {
    const { commit } = input;
    if (!isWholeCommitId(commit)) throw new Error(`commit ${commit.slice(0, 80)} is not a whole commit id (40 or 64 lowercase hex digits)`);
    const executionName = rolloutExecutionName(input.trigger, input.deliveryId);
    try {
      const started = await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: executionName, input: JSON.stringify(input) }),
      );
      return {
        executionName,
        executionArn: started.executionArn ?? executionArnOf(this.stateMachineArn, executionName),
        alreadyStarted: false,
      };
    } catch (error) {
      if (awsErrorName(error) === 'ExecutionAlreadyExists') {
        return { executionName, executionArn: executionArnOf(this.stateMachineArn, executionName), alreadyStarted: true };
      }
      throw new Error(`Step Functions did not start the rollout: ${describeAwsError(error)}`, { cause: error });
    }
  }
}
