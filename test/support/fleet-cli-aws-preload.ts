/**
 * Loaded with `node --require` ahead of the real CLI (see ./fleet-cli): aws-sdk-client-mock
 * answers the CLI's Step Functions and Systems Manager calls from the answers file the test
 * wrote, and every call the CLI made is written back to a file when the process exits, for the
 * test to check. Nothing else of the CLI is replaced.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as sfnModule from '@aws-sdk/client-sfn';
import * as ssmModule from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import type { AwsAnswer, RecordedAwsCall } from './fleet-cli';

const answersFile = process.env.FLEET_TEST_AWS_ANSWERS;
const callsFile = process.env.FLEET_TEST_AWS_CALLS;
if (!answersFile || !callsFile) throw new Error('FLEET_TEST_AWS_ANSWERS and FLEET_TEST_AWS_CALLS must be set');

/** JSON has no dates: fields the SDK gives as Date (startDate, timestamp, ...) are revived. */
function revive(value: unknown, key = ''): unknown {
  if (typeof value === 'string' && /(?:Date|^timestamp)$/.test(key)) return new Date(value);
  if (Array.isArray(value)) return value.map((item) => revive(item));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v, k)]));
  return value;
}

const modules = { sfn: sfnModule as Record<string, unknown>, ssm: ssmModule as Record<string, unknown> };
// One loose type for both: the answers file, not the compiler, says which command gets what.
const sfnMock = mockClient(sfnModule.SFNClient);
type AnyClientMock = typeof sfnMock;
const mocks: Record<AwsAnswer['client'], AnyClientMock> = {
  sfn: sfnMock,
  ssm: mockClient(ssmModule.SSMClient) as unknown as AnyClientMock,
};
// Anything not answered fails loudly, naming the call.
for (const [client, mock] of Object.entries(mocks)) {
  mock.onAnyCommand().callsFake((input: unknown) => {
    throw Object.assign(new Error(`the test gave no answer to this ${client} call: ${JSON.stringify(input)}`), {
      name: 'UnansweredInTest',
    });
  });
}
for (const answer of JSON.parse(readFileSync(answersFile, 'utf8')) as AwsAnswer[]) {
  const command = modules[answer.client][`${answer.command}Command`];
  if (typeof command !== 'function') throw new Error(`no ${answer.command}Command in the ${answer.client} client`);
  const behaviour = mocks[answer.client].on(command as never, (answer.input ?? {}) as never);
  if (answer.error) behaviour.rejects(Object.assign(new Error(answer.error.message), { name: answer.error.name }));
  else behaviour.resolves(revive(answer.output ?? {}) as never);
}

process.on('exit', () => {
  const calls: RecordedAwsCall[] = Object.entries(mocks).flatMap(([client, mock]) =>
    mock.calls().map((call) => {
      const command = call.args[0] as unknown as { constructor: { name: string }; input: Record<string, unknown> };
      return {
        client: client as RecordedAwsCall['client'],
        command: command.constructor.name.replace(/Command$/, ''),
        input: command.input,
      };
    }),
  );
  writeFileSync(callsFile, JSON.stringify(calls));
});
