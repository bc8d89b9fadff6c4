/**
 * The local engine behind the AWS API: an HTTP endpoint on 127.0.0.1 that speaks the JSON
 * protocols of Step Functions (`X-Amz-Target: AWSStepFunctions.<Action>`) and Systems Manager
 * (`AmazonSSM.<Action>`), answering from the engine's own executions and its local Run Command.
 * A process whose AWS SDK is pointed here (AWS_ENDPOINT_URL_SFN / _SSM, as `environment()` gives)
 * runs its real code against real executions: the real `triggler fleet` CLI, unchanged, as a user
 * runs it. Only the calls the CLI makes are answered; any other names itself in an error.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LocalExecution, LocalRolloutEngine } from './local-engine';
import { LOCAL_STATE_MACHINE_ARN } from './synthesized-rollout';

/** An error the protocol returns as `{ "__type": name, "message" }` with status 400. */
class AwsApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** The JSON protocols give dates as epoch seconds. */
const seconds = (date: Date | undefined) => (date === undefined ? undefined : date.getTime() / 1000);

/** One recorded call: the service, its action and the request body. */
export interface LocalAwsCall {
  service: 'sfn' | 'ssm';
  action: string;
  input: Record<string, unknown>;
}

export class LocalAwsEndpoint {
  /** Every call answered or refused, in order. */
  readonly calls: LocalAwsCall[] = [];

  private constructor(
    private readonly engine: LocalRolloutEngine,
    private readonly server: Server,
  ) {}

  static async start(engine: LocalRolloutEngine): Promise<LocalAwsEndpoint> {
    const server = createServer();
    const endpoint = new LocalAwsEndpoint(engine, server);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => void endpoint.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return endpoint;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** What a CLI process needs to reach the engine: the endpoints, the state machine, credentials it never checks. */
  environment(): NodeJS.ProcessEnv {
    return {
      AWS_ENDPOINT_URL_SFN: this.url,
      AWS_ENDPOINT_URL_SSM: this.url,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_EC2_METADATA_DISABLED: 'true',
      TRIGGLER_ROLLOUT_STATE_MACHINE_ARN: LOCAL_STATE_MACHINE_ARN,
    };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = /^(AWSStepFunctions|AmazonSSM)\.(\w+)$/.exec(String(request.headers['x-amz-target'] ?? ''));
    const contentType = `application/x-amz-json-${target?.[1] === 'AmazonSSM' ? '1.1' : '1.0'}`;
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': contentType });
      response.end(JSON.stringify(body));
    };
    try {
      if (!target)
        throw new AwsApiError('UnknownOperationException', `no X-Amz-Target this endpoint knows: ${request.headers['x-amz-target']}`);
      const service = target[1] === 'AmazonSSM' ? 'ssm' : 'sfn';
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      this.calls.push({ service, action: target[2]!, input });
      reply(200, service === 'sfn' ? this.stepFunctions(target[2]!, input) : this.systemsManager(target[2]!, input));
    } catch (error) {
      if (error instanceof AwsApiError) reply(400, { __type: error.type, message: error.message });
      else {
        // The engine's own errors carry the AWS name (SSM's as `Ssm.<Name>`, as Step Functions names them).
        const named = error as Error;
        const type = named.name.replace(/^Ssm\./, '');
        reply(type === 'Error' ? 500 : 400, { __type: type === 'Error' ? 'InternalServerError' : type, message: named.message });
      }
    }
  }

  private stepFunctions(action: string, input: Record<string, unknown>): unknown {
    switch (action) {
      case 'ListExecutions': {
        this.stateMachine(input.stateMachineArn);
        const all = [...this.engine.executions.values()]
          .reverse()
          .filter((execution) => input.statusFilter === undefined || execution.status === input.statusFilter);
        const start = input.nextToken === undefined ? 0 : Number(input.nextToken);
        const size = (input.maxResults as number | undefined) || 100;
        return {
          executions: all.slice(start, start + size).map((execution) => ({
            executionArn: execution.arn,
            stateMachineArn: LOCAL_STATE_MACHINE_ARN,
            name: execution.name,
            status: execution.status,
            startDate: seconds(execution.startDate),
            ...(execution.stopDate ? { stopDate: seconds(execution.stopDate) } : {}),
          })),
          ...(start + size < all.length ? { nextToken: String(start + size) } : {}),
        };
      }
      case 'DescribeExecution': {
        const execution = this.execution(input.executionArn);
        return {
          executionArn: execution.arn,
          stateMachineArn: LOCAL_STATE_MACHINE_ARN,
          name: execution.name,
          status: execution.status,
          startDate: seconds(execution.startDate),
          input: JSON.stringify(execution.input),
          ...(execution.stopDate ? { stopDate: seconds(execution.stopDate) } : {}),
          ...(execution.output !== undefined ? { output: execution.output } : {}),
          ...(execution.error !== undefined ? { error: execution.error } : {}),
          ...(execution.cause !== undefined ? { cause: execution.cause } : {}),
        };
      }
      case 'GetExecutionHistory': {
        const execution = this.execution(input.executionArn);
        const events = input.reverseOrder === true ? [...execution.history].reverse() : execution.history;
        const start = input.nextToken === undefined ? 0 : Number(input.nextToken);
        const size = (input.maxResults as number | undefined) || 100;
        return {
          events: events.slice(start, start + size).map((event) => ({ ...event, timestamp: seconds(event.timestamp) })),
          ...(start + size < events.length ? { nextToken: String(start + size) } : {}),
        };
      }
      case 'StartExecution': {
        this.stateMachine(input.stateMachineArn);
        if (typeof input.name !== 'string' || typeof input.input !== 'string')
          throw new AwsApiError('ValidationException', 'this endpoint starts executions given a name and an input');
        const execution = this.engine.start(JSON.parse(input.input) as LocalExecution['input'], input.name);
        return { executionArn: execution.arn, startDate: seconds(execution.startDate) };
      }
      default:
        throw new AwsApiError('UnknownOperationException', `the local Step Functions answers no ${action}`);
    }
  }

  private systemsManager(action: string, input: Record<string, unknown>): unknown {
    switch (action) {
      case 'ListCommandInvocations':
        return this.engine.runCommand.listCommandInvocations(input);
      default:
        throw new AwsApiError('UnknownOperationException', `the local Systems Manager answers no ${action}`);
    }
  }

  private stateMachine(arn: unknown): void {
    if (arn !== LOCAL_STATE_MACHINE_ARN)
      throw new AwsApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${String(arn)}'`);
  }

  private execution(arn: unknown): LocalExecution {
    const execution = [...this.engine.executions.values()].find((candidate) => candidate.arn === arn);
    if (!execution) throw new AwsApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${String(arn)}'`);
    return execution;
  }
}
