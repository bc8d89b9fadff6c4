/** The token cache against the local SSM endpoint: a verifier's accepted tokens across a rotation. */
import { SSMClient } from '@aws-sdk/client-ssm';
import { SsmTokenCache, TokenUnavailableError } from '../../lambda/ssm-token-cache';
import { startLocalSsm, type LocalSsm } from '../../scripts/local-ssm';

const PARAMETER = '/cache-test/tokens/team/app';
let ssm: LocalSsm;
let client: SSMClient;

beforeAll(async () => {
  ssm = await startLocalSsm();
  client = new SSMClient({
    endpoint: ssm.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDCACHETEST', secretAccessKey: 'cache-test-secret' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await ssm.close();
});

test('accepted tokens: the current one, and for graceSeconds after a rotation the previous one (no grace: only the current)', async () => {
  ssm.put(PARAMETER, 'first-token-value-0001');
  ssm.put(PARAMETER, 'second-token-value-0002');
  let clock = Date.now();
  const withGrace = new SsmTokenCache({ client, ttlSeconds: 60, graceSeconds: 900, now: () => clock });
  expect(await withGrace.acceptedTokens(PARAMETER)).toEqual(['second-token-value-0002', 'first-token-value-0001']);
  expect(await withGrace.token(PARAMETER)).toBe('second-token-value-0002');
  clock += 901_000;
  expect(await withGrace.acceptedTokens(PARAMETER)).toEqual(['second-token-value-0002']);
  expect(await new SsmTokenCache({ client, ttlSeconds: 60 }).acceptedTokens(PARAMETER)).toEqual(['second-token-value-0002']);
});

test('forget reads one token again; a missing parameter names itself, never a value', async () => {
  ssm.put(PARAMETER, 'third-token-value-0003');
  const cache = new SsmTokenCache({ client, ttlSeconds: 60 });
  expect(await cache.token(PARAMETER)).toBe('third-token-value-0003');
  ssm.put(PARAMETER, 'fourth-token-value-0004');
  expect(await cache.token(PARAMETER)).toBe('third-token-value-0003');
  cache.forget(PARAMETER);
  expect(await cache.token(PARAMETER)).toBe('fourth-token-value-0004');
  const missing = cache.acceptedTokens('/cache-test/none');
  await expect(missing).rejects.toBeInstanceOf(TokenUnavailableError);
  await expect(missing).rejects.toThrow('token parameter /cache-test/none could not be read: ParameterNotFound');
});
