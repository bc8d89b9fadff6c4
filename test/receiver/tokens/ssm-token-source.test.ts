/**
 * The receiver's SSM token source: against aws-sdk-client-mock (a clock the test moves, calls
 * counted exactly), then against the local SSM endpoint through the real SDK and a real receiver.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetParameterCommand, GetParameterHistoryCommand, SSMClient, ThrottlingException, ParameterNotFound } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import pino from 'pino';
import { buildDeliveryRequest } from '../../../protocol';
import { SsmTokenSource } from '../../../receiver/tokens/ssm-token-source';
import type { TokenRef } from '../../../receiver/tokens/token-source';
import { startLocalSsm, type LocalSsm } from '../../../scripts/local-ssm';
import { startTestReceiver, type TestReceiver } from '../../support/receiver-fixture';

const PREFIX = '/git-triggler/tokens';
const REF: TokenRef = { repository: 'app', branch: 'main', tokenName: 'app/main' };
const PARAMETER = `${PREFIX}/app/main`;
const TOKEN_A = 'whsec_dG9rZW4tQS10b2tlbi1BLXRva2VuLUEtdG9rZW4tQQ==';
const TOKEN_B = 'whsec_dG9rZW4tQi10b2tlbi1CLXRva2VuLUItdG9rZW4tQg==';
const TOKEN_C = 'whsec_dG9rZW4tQy10b2tlbi1DLXRva2VuLUMtdG9rZW4tQw==';
const START = Date.parse('2026-03-01T12:00:00Z');

function capturedLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

function parameter(value: string, version: number, modifiedAt: number) {
  return {
    Parameter: { Name: PARAMETER, Type: 'SecureString' as const, Value: value, Version: version, LastModifiedDate: new Date(modifiedAt) },
  };
}

describe('SsmTokenSource with a mocked SSM client', () => {
  const ssmMock = mockClient(SSMClient);
  let clock: number;
  let log: ReturnType<typeof capturedLogger>;

  const source = (overrides: Partial<ConstructorParameters<typeof SsmTokenSource>[0]> = {}) =>
    new SsmTokenSource({
      prefix: PREFIX,
      ttlSeconds: 60,
      graceSeconds: 900,
      client: new SSMClient({ region: 'us-east-1' }),
      logger: log.logger,
      now: () => clock,
      ...overrides,
    });
  const calls = () => ssmMock.commandCalls(GetParameterCommand).length + ssmMock.commandCalls(GetParameterHistoryCommand).length;

  beforeEach(() => {
    ssmMock.reset();
    clock = START;
    log = capturedLogger();
  });

  afterAll(() => ssmMock.restore());

  it('reads <prefix>/<tokenName> with decryption and keeps it for ttlSeconds', async () => {
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_A, 1, START - 86_400_000));
    const tokens = source();
    expect(await tokens.tokens(REF)).toEqual([TOKEN_A]);
    expect(ssmMock.commandCalls(GetParameterCommand)[0]!.args[0].input).toEqual({ Name: PARAMETER, WithDecryption: true });
    clock += 59_000;
    expect(await tokens.tokens(REF)).toEqual([TOKEN_A]);
    expect(calls()).toBe(1);

    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_B, 2, clock));
    clock += 2000;
    // Past the TTL the next delivery looks again; the receiver held version 1, so it knows the previous token.
    expect(await tokens.tokens(REF)).toEqual([TOKEN_B, TOKEN_A]);
    expect(ssmMock.commandCalls(GetParameterCommand)).toHaveLength(2);
    expect(ssmMock.commandCalls(GetParameterHistoryCommand)).toHaveLength(0);
  });

  it('takes the previous version from GetParameterHistory and accepts it only for graceSeconds after the current one was written', async () => {
    const rotatedAt = START - 10_000;
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_C, 3, rotatedAt));
    // History comes oldest first and in pages; the previous version is on the last page.
    ssmMock
      .on(GetParameterHistoryCommand, { Name: PARAMETER, WithDecryption: true, MaxResults: 50 })
      .resolves({ Parameters: [{ Name: PARAMETER, Value: TOKEN_A, Version: 1 }], NextToken: 'page-2' })
      .on(GetParameterHistoryCommand, { Name: PARAMETER, WithDecryption: true, MaxResults: 50, NextToken: 'page-2' })
      .resolves({
        Parameters: [
          { Name: PARAMETER, Value: TOKEN_B, Version: 2 },
          { Name: PARAMETER, Value: TOKEN_C, Version: 3 },
        ],
      });
    const tokens = source({ ttlSeconds: 60, graceSeconds: 900 });

    expect(await tokens.tokens(REF)).toEqual([TOKEN_C, TOKEN_B]);
    expect(ssmMock.commandCalls(GetParameterHistoryCommand)).toHaveLength(2);
    for (const call of ssmMock.commandCalls(GetParameterHistoryCommand)) expect(call.args[0].input.WithDecryption).toBe(true);

    // Inside the grace (the cache has expired, so this is a fresh look-up) the previous still verifies...
    clock = rotatedAt + 899_000;
    expect(await tokens.tokens(REF)).toEqual([TOKEN_C, TOKEN_B]);
    // ...and not a moment after, even from the cache.
    clock = rotatedAt + 901_000;
    expect(await tokens.tokens(REF)).toEqual([TOKEN_C]);
  });

  it('does not ask for history when the current version is older than the grace period', async () => {
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_B, 2, START - 901_000));
    expect(await source().tokens(REF)).toEqual([TOKEN_B]);
    expect(ssmMock.commandCalls(GetParameterHistoryCommand)).toHaveLength(0);
  });

  it('refreshes after a failed signature and finds a rotation at once, inside the TTL', async () => {
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_A, 1, START - 86_400_000));
    const tokens = source();
    expect(await tokens.tokens(REF)).toEqual([TOKEN_A]);
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_B, 2, START + 500));
    clock += 1000;
    expect(await tokens.refresh(REF)).toBe(true);
    expect(await tokens.tokens(REF)).toEqual([TOKEN_B, TOKEN_A]);
    expect(log.records()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ msg: 'token version changed', parameter: PARAMETER, version: 2, previousVersion: 1 }),
      ]),
    );
  });

  it('turns a flood of bad signatures into at most one look-up per refresh interval', async () => {
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_A, 1, START - 86_400_000));
    const tokens = source({ refreshIntervalMs: 5000 });
    // 1000 bad signatures over 10 seconds, each one as the receiver handles it: tokens, then refresh.
    for (let i = 0; i < 1000; i++) {
      clock = START + i * 10;
      expect(await tokens.tokens(REF)).toEqual([TOKEN_A]);
      expect(await tokens.refresh(REF)).toBe(false);
    }
    // The first read, then one refresh at 0 s and one at 5 s.
    expect(calls()).toBe(3);
  });

  it("tells a caller who checked the old tokens that they changed, even when another caller's refresh found it", async () => {
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_A, 1, START - 86_400_000));
    const tokens = source();
    const seenByLateCaller = await tokens.tokens(REF);
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_B, 2, START));
    expect(await tokens.refresh(REF)).toBe(true);
    // The late caller checked [A] before the change; its refresh comes after and must not refuse.
    expect(seenByLateCaller).toEqual([TOKEN_A]);
    clock += 1000;
    expect(await tokens.refresh(REF)).toBe(true);
    expect(ssmMock.commandCalls(GetParameterCommand)).toHaveLength(2);
    // Once the refresh interval has passed since the change, a failed signature is just a bad one.
    clock += 5000;
    expect(await tokens.refresh(REF)).toBe(false);
  });

  it('shares one look-up among concurrent refreshes', async () => {
    ssmMock.on(GetParameterCommand).resolvesOnce(parameter(TOKEN_A, 1, START - 86_400_000));
    const tokens = source();
    await tokens.tokens(REF);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    ssmMock.on(GetParameterCommand).callsFake(async () => {
      await gate;
      return parameter(TOKEN_B, 2, clock);
    });
    const refreshes = Array.from({ length: 200 }, () => tokens.refresh(REF));
    release();
    expect(await Promise.all(refreshes)).toEqual(Array.from({ length: 200 }, () => true));
    expect(ssmMock.commandCalls(GetParameterCommand)).toHaveLength(2);
    expect(await tokens.tokens(REF)).toEqual([TOKEN_B, TOKEN_A]);
  });

  it('keeps serving cached tokens while SSM throttles, logs the error without a value, and asks again after the retry interval', async () => {
    ssmMock.on(GetParameterCommand).resolvesOnce(parameter(TOKEN_A, 1, START - 86_400_000));
    const tokens = source({ ttlSeconds: 60, retryIntervalMs: 5000 });
    expect(await tokens.tokens(REF)).toEqual([TOKEN_A]);

    ssmMock.on(GetParameterCommand).rejects(new ThrottlingException({ Message: 'Rate exceeded', message: 'Rate exceeded', $metadata: {} }));
    clock += 61_000;
    expect(await tokens.tokens(REF)).toEqual([TOKEN_A]);
    expect(await tokens.refresh(REF)).toBe(false);
    clock += 4000;
    expect(await tokens.tokens(REF)).toEqual([TOKEN_A]);
    // One failed look-up; the refresh and the next delivery waited for the retry interval.
    expect(ssmMock.commandCalls(GetParameterCommand)).toHaveLength(2);

    const warning = log.records().find((r) => r.msg === 'SSM token look-up failed; cached tokens keep serving');
    expect(warning).toMatchObject({ level: 40, parameter: PARAMETER, servingCached: true });
    expect(String(warning!.reason)).toContain('ThrottlingException');

    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_B, 2, clock));
    clock += 1001;
    expect(await tokens.tokens(REF)).toEqual([TOKEN_B, TOKEN_A]);
    expect(log.records().some((r) => r.msg === 'SSM token look-up works again')).toBe(true);
    for (const line of log.lines) {
      expect(line).not.toContain(TOKEN_A);
      expect(line).not.toContain(TOKEN_B);
    }
  });

  it('throws, naming the parameter and never a value, when SSM fails and nothing is cached; and does not hammer SSM', async () => {
    ssmMock.on(GetParameterCommand).rejects(Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:443'), { name: 'Error' }));
    const tokens = source({ retryIntervalMs: 5000 });
    await expect(tokens.tokens(REF)).rejects.toThrow(
      `token parameter ${PARAMETER} could not be read from SSM (error: connect ECONNREFUSED 10.0.0.5:443) and none is cached`,
    );
    clock += 1000;
    await expect(tokens.tokens(REF)).rejects.toThrow(PARAMETER);
    expect(ssmMock.commandCalls(GetParameterCommand)).toHaveLength(1);
    expect(log.records().find((r) => r.level === 50)).toMatchObject({ parameter: PARAMETER, servingCached: false });

    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_A, 1, START - 86_400_000));
    clock += 5000;
    expect(await tokens.tokens(REF)).toEqual([TOKEN_A]);
  });

  it('treats a missing parameter as no token (the trigger refuses deliveries) rather than an outage', async () => {
    ssmMock.on(GetParameterCommand).rejects(new ParameterNotFound({ message: `Parameter ${PARAMETER} not found.`, $metadata: {} }));
    const tokens = source();
    expect(await tokens.tokens(REF)).toEqual([]);
    expect(log.records().find((r) => r.msg === 'no such token parameter in SSM: its trigger refuses every delivery')).toMatchObject({
      parameter: PARAMETER,
    });
  });

  it('fails the whole look-up when the history cannot be read, so cached tokens keep serving rather than losing the previous one', async () => {
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_C, 3, START - 1000));
    ssmMock
      .on(GetParameterHistoryCommand)
      .rejects(new ThrottlingException({ Message: 'Rate exceeded', message: 'Rate exceeded', $metadata: {} }));
    const tokens = source();
    await expect(tokens.tokens(REF)).rejects.toThrow('ThrottlingException');
    ssmMock.on(GetParameterHistoryCommand).resolves({
      Parameters: [
        { Value: TOKEN_B, Version: 2 },
        { Value: TOKEN_C, Version: 3 },
      ],
    });
    clock += 5000;
    expect(await tokens.tokens(REF)).toEqual([TOKEN_C, TOKEN_B]);
  });

  it('forgets the cache on reload (SIGHUP), so the next delivery reads SSM', async () => {
    ssmMock.on(GetParameterCommand).resolves(parameter(TOKEN_A, 1, START - 86_400_000));
    const tokens = source();
    await tokens.tokens(REF);
    await tokens.reload();
    await tokens.tokens(REF);
    expect(ssmMock.commandCalls(GetParameterCommand)).toHaveLength(2);
  });
});

describe('SsmTokenSource against the local SSM endpoint, inside a real receiver', () => {
  const ENV = {
    AWS_ENDPOINT_URL_SSM: '',
    AWS_ACCESS_KEY_ID: 'AKIDLOCALSSMTEST',
    AWS_SECRET_ACCESS_KEY: 'local-ssm-test-secret',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_CONFIG_FILE: '',
    AWS_SHARED_CREDENTIALS_FILE: '',
  };
  const saved: Record<string, string | undefined> = {};
  let ssm: LocalSsm;
  let awsDir: string;
  let receiver: TestReceiver;
  // The token source's clock: real time, except while a test holds it to move it by hand.
  const sourceClock = { held: undefined as number | undefined, ahead: 0 };

  const signed = (token: string, id: string) =>
    buildDeliveryRequest({
      scheme: 'standard',
      token,
      id,
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'app', branch: 'main', ref: 'refs/heads/main', commit: 'c0ffee', source: 'test' },
    });
  const deliver = (token: string, id: string) => {
    const request = signed(token, id);
    return receiver.send(request.path, { headers: request.headers, body: request.body! });
  };

  beforeAll(async () => {
    ssm = await startLocalSsm();
    awsDir = mkdtempSync(join(tmpdir(), 'triggler-ssm-source-'));
    Object.assign(ENV, {
      AWS_ENDPOINT_URL_SSM: ssm.url,
      AWS_CONFIG_FILE: join(awsDir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(awsDir, 'credentials'),
    });
    for (const [name, value] of Object.entries(ENV)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
    for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL']) {
      saved[name] = process.env[name];
      delete process.env[name];
    }
    ssm.put(PARAMETER, TOKEN_A);
    // The receiver builds its SSM source with the default factory: the real SDK, default resolution.
    receiver = await startTestReceiver(
      {
        tokens: { ssm: { prefix: PREFIX, ttlSeconds: 60, graceSeconds: 900 } },
        triggers: [
          { repository: 'app', branch: 'main', command: ['true'] },
          { repository: 'app', branch: 'dev', command: ['true'] },
        ],
      },
      { tokenSources: { now: () => sourceClock.held ?? Date.now() + sourceClock.ahead } },
    );
  });

  afterAll(async () => {
    await receiver.dispose();
    await ssm.close();
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(awsDir, { recursive: true, force: true });
  });

  it('accepts a delivery signed with the SSM token', async () => {
    expect((await deliver(TOKEN_A, 'msg_local_1')).status).toBe(202);
    await receiver.settledRuns();
  });

  it('picks up a rotation on the first delivery signed with the new token, and still takes the old one', async () => {
    ssm.put(PARAMETER, TOKEN_B);
    ssm.resetCalls();
    expect((await deliver(TOKEN_B, 'msg_rotated_1')).status).toBe(202);
    expect((await deliver(TOKEN_A, 'msg_rotated_2')).status).toBe(202);
    // One look-up found version 2; the receiver already held version 1, so no history was needed.
    expect(ssm.calls.GetParameter).toBe(1);
    expect(ssm.calls.GetParameterHistory).toBe(0);
    await receiver.settledRuns();
  });

  it('makes at most a handful of SSM calls for a flood of 300 bad signatures over 6 seconds', async () => {
    ssm.resetCalls();
    const answers: number[] = [];
    // Six seconds on the token source's clock, a batch every half second, however long the
    // batches take on this machine.
    sourceClock.held = Date.now() + sourceClock.ahead;
    try {
      for (let batch = 0; batch < 12; batch++) {
        const sent = await Promise.all(Array.from({ length: 25 }, (_, i) => deliver(TOKEN_C, `msg_flood_${batch}_${i}`)));
        answers.push(...sent.map((answer) => answer.status));
        sourceClock.held += 500;
      }
    } finally {
      // Real time again, never backwards.
      sourceClock.ahead = Math.max(0, sourceClock.held - Date.now());
      sourceClock.held = undefined;
    }
    expect(answers).toEqual(Array.from({ length: 300 }, () => 401));
    const total = Object.values(ssm.calls).reduce((sum, n) => sum + n, 0);
    // One look-up per 5-second refresh interval: one or two over 6 seconds, whatever the flood.
    expect(total).toBeGreaterThanOrEqual(1);
    expect(total).toBeLessThanOrEqual(3);
  });

  it('answers a valid delivery from its cache while SSM fails, and 503 (retryable) for a token it never had', async () => {
    await receiver.tokens.reload();
    ssm.put(`${PREFIX}/app/dev`, TOKEN_C);
    // The SDK tries twice; both fail. The cached tokens answer.
    ssm.failNext('GetParameter', { type: 'InternalServerError' });
    ssm.failNext('GetParameter', { type: 'InternalServerError' });
    expect((await deliver(TOKEN_B, 'msg_outage_1')).status).toBe(202);
    expect(receiver.logs.some((r) => r.msg === 'SSM token look-up failed; cached tokens keep serving' && r.parameter === PARAMETER)).toBe(
      true,
    );

    ssm.failNext('GetParameter', { type: 'ThrottlingException' });
    ssm.failNext('GetParameter', { type: 'ThrottlingException' });
    const request = buildDeliveryRequest({
      scheme: 'standard',
      token: TOKEN_C,
      id: 'msg_outage_2',
      timestamp: Math.floor(Date.now() / 1000),
      data: { repository: 'app', branch: 'dev', ref: 'refs/heads/dev', commit: 'c0ffee', source: 'test' },
    });
    const answer = await receiver.send(request.path, { headers: request.headers, body: request.body! });
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('5');

    for (const line of receiver.logs.map((r) => JSON.stringify(r))) {
      expect(line).not.toContain(TOKEN_A);
      expect(line).not.toContain(TOKEN_B);
      expect(line).not.toContain(TOKEN_C);
    }
    await receiver.settledRuns();
  });
});
