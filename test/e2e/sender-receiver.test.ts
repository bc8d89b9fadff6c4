/**
 * The real sender handler against the real receiver on 127.0.0.1, both reading tokens from a local
 * SSM endpoint: the AWS documentation's sample event grown to several records and references.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CodeCommitTriggerEvent, Context } from 'aws-lambda';
import { handler } from '../../lambda/sender';
import { startLocalSsm, type LocalSsm } from '../../scripts/local-ssm';
import { startTestReceiver, type TestReceiver } from '../support/receiver-fixture';

const PREFIX = '/git-triggler/tokens';
const TOKENS: Record<string, string> = {
  'lambda-pipeline-repo/master': 'whsec_bWFzdGVyLXRva2VuLW1hc3Rlci10b2tlbi1tYXN0ZXI=',
  'lambda-pipeline-repo/feature/login': 'whsec_ZmVhdHVyZS10b2tlbi1mZWF0dXJlLXRva2VuLWZlYXQ=',
  'legacy-site/main': 'a-seed-token-for-the-legacy-site',
};
const context = { awsRequestId: 'sender-e2e', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;
/** Each run appends "<repository> <branch> <commit> <scheme>" to runs.txt. */
const RECORD_RUN = 'printf "%s %s %s %s\\n" "$TRIGGLER_REPOSITORY" "$TRIGGLER_BRANCH" "$TRIGGLER_COMMIT" "$TRIGGLER_SCHEME" >> runs.txt';

function multiEvent(): CodeCommitTriggerEvent {
  return JSON.parse(
    readFileSync(join(__dirname, '..', 'support', 'fixtures', 'codecommit-multi-event.json'), 'utf8'),
  ) as CodeCommitTriggerEvent;
}

describe('sender handler -> receiver, end to end', () => {
  const saved: Record<string, string | undefined> = {};
  let ssm: LocalSsm;
  let receiver: TestReceiver;
  let workDir: string;
  const routes = (url: string) =>
    JSON.stringify([
      {
        repository: 'lambda-pipeline-repo',
        branch: 'master',
        url,
        tokenParameter: `${PREFIX}/lambda-pipeline-repo/master`,
        scheme: 'standard',
      },
      {
        repository: 'lambda-pipeline-repo',
        branch: 'feature/login',
        url,
        tokenParameter: `${PREFIX}/lambda-pipeline-repo/feature/login`,
        scheme: 'standard',
      },
      // The deleted branch and the tag have routes too: they must still send nothing.
      {
        repository: 'lambda-pipeline-repo',
        branch: 'old-release',
        url,
        tokenParameter: `${PREFIX}/lambda-pipeline-repo/master`,
        scheme: 'standard',
      },
      { repository: 'legacy-site', branch: 'main', url, tokenParameter: `${PREFIX}/legacy-site/main`, scheme: 'seed' },
    ]);
  const ranLines = () => {
    try {
      return readFileSync(join(workDir, 'runs.txt'), 'utf8').trim().split('\n').filter(Boolean).sort();
    } catch {
      return [];
    }
  };

  beforeAll(async () => {
    ssm = await startLocalSsm();
    for (const [name, token] of Object.entries(TOKENS)) ssm.put(`${PREFIX}/${name}`, token);
    workDir = mkdtempSync(join(tmpdir(), 'triggler-e2e-'));
    const env = {
      AWS_ENDPOINT_URL_SSM: ssm.url,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_REGION: 'us-east-2',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(workDir, 'aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(workDir, 'aws-credentials'),
      TRIGGLER_LOG_LEVEL: 'silent',
      TRIGGLER_TIMEOUT_MS: '3000',
    };
    for (const name of [...Object.keys(env), 'TRIGGLER_ROUTES', 'AWS_PROFILE']) saved[name] = process.env[name];
    delete process.env.AWS_PROFILE;
    Object.assign(process.env, env);
    receiver = await startTestReceiver({
      tokens: { ssm: { prefix: PREFIX } },
      triggers: [
        { repository: 'lambda-pipeline-repo', branch: 'master', command: RECORD_RUN, cwd: workDir },
        { repository: 'lambda-pipeline-repo', branch: 'feature/login', command: RECORD_RUN, cwd: workDir },
        {
          repository: 'lambda-pipeline-repo',
          branch: 'old-release',
          tokenName: 'lambda-pipeline-repo/master',
          command: RECORD_RUN,
          cwd: workDir,
        },
        { repository: 'legacy-site', branch: 'main', command: RECORD_RUN, cwd: workDir },
      ],
    });
    process.env.TRIGGLER_ROUTES = routes(receiver.url);
  });

  afterAll(async () => {
    await receiver?.dispose();
    await ssm?.close();
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(workDir, { recursive: true, force: true });
  });

  it('delivers every routed branch of every record: slash branch kept, deleted branch, tag and unrouted branch send nothing', async () => {
    const report = await handler(multiEvent(), context);
    expect(report.deliveries.map((d) => [d.repository, d.branch, d.status]).sort()).toEqual([
      ['lambda-pipeline-repo', 'feature/login', 202],
      ['lambda-pipeline-repo', 'master', 202],
      ['legacy-site', 'main', 202],
    ]);
    expect(report.skipped.map((s) => [s.ref, s.reason]).sort()).toEqual([
      ['refs/heads/old-release', 'deleted'],
      ['refs/tags/v1.0.0', 'tag'],
    ]);
    expect(report.unrouted).toEqual([{ repository: 'lambda-pipeline-repo', branch: 'experiment' }]);
    await receiver.settledRuns();
    expect(ranLines()).toEqual([
      'lambda-pipeline-repo feature/login 9f2c1b7a4d3e8f6a0b5c2d1e7f4a3b6c9d0e1f2a standard',
      'lambda-pipeline-repo master 5e493c6f3067653f3d04eca608b4901eb227078 standard',
      // The seed scheme signs no body, so the receiver does not know the commit.
      'legacy-site main  seed',
    ]);
  });

  it('runs nothing new when Lambda retries the same event (same webhook-ids)', async () => {
    const before = ranLines().length;
    const report = await handler(multiEvent(), context);
    const standard = report.deliveries.filter((d) => d.scheme === 'standard');
    expect(standard.map((d) => d.status)).toEqual([200, 200]);
    await receiver.settledRuns();
    const after = ranLines();
    // The seed scheme has no delivery id beyond its timestamp: a retry signed in a new second runs
    // again (coalesced like any burst); the Standard deliveries run nothing.
    expect(after.filter((l) => l.includes(' standard')).length).toBe(2);
    expect(after.length - before).toBeLessThanOrEqual(1);
  });

  it('throws naming the pair when the receiver is down, after trying the others', async () => {
    process.env.TRIGGLER_ROUTES = JSON.stringify([
      {
        repository: 'lambda-pipeline-repo',
        branch: 'master',
        url: receiver.url,
        tokenParameter: `${PREFIX}/lambda-pipeline-repo/master`,
        scheme: 'standard',
      },
      // Nothing listens on port 9 of 127.0.0.1.
      {
        repository: 'lambda-pipeline-repo',
        branch: 'feature/login',
        url: 'http://127.0.0.1:9',
        tokenParameter: `${PREFIX}/lambda-pipeline-repo/feature/login`,
        scheme: 'standard',
      },
    ]);
    try {
      const event = multiEvent();
      event.Records = [event.Records[0]!];
      event.Records[0]!.eventId = 'receiver-down-event';
      await expect(handler(event, context)).rejects.toThrow(/lambda-pipeline-repo@feature\/login/);
      await receiver.settledRuns();
      // The reachable branch still went out and ran.
      expect(
        receiver.runner.history.runs(100).some((r) => r.branch === 'master' && r.deliveryIds.length > 0 && r.status === 'succeeded'),
      ).toBe(true);
    } finally {
      process.env.TRIGGLER_ROUTES = routes(receiver.url);
    }
  });

  it('fails the delivery whose token parameter is missing, naming the pair, and sends the rest', async () => {
    ssm.remove(`${PREFIX}/legacy-site/main`);
    try {
      const event = multiEvent();
      event.Records[0]!.eventId = 'missing-token-event';
      event.Records[1]!.eventId = 'missing-token-event-2';
      const failure = await handler(event, context).then(
        () => undefined,
        (error: Error) => error,
      );
      expect(failure?.message).toMatch(/legacy-site@main/);
      expect(failure?.message).not.toMatch(/lambda-pipeline-repo@master/);
      expect(JSON.stringify(failure)).not.toContain(TOKENS['legacy-site/main']);
    } finally {
      ssm.put(`${PREFIX}/legacy-site/main`, TOKENS['legacy-site/main']!);
    }
  });
});
