/** One trigger's sender can never use up, or run, another trigger's deliveries. */
import { buildDeliveryRequest, seedSignature } from '../../../protocol';
import { ConfigError, parseReceiverConfig } from '../../../receiver/config/schema';
import { startTestReceiver, type TestReceiver } from '../../support/receiver-fixture';

const now = () => Math.floor(Date.now() / 1000);

describe('dedupe is per trigger', () => {
  let receiver: TestReceiver;
  const tokenA = 'whsec_dG9rZW4gb2YgdHJpZ2dlciBhIHRva2VuIG9mIGE=';
  const tokenB = 'whsec_dG9rZW4gb2YgdHJpZ2dlciBiIHRva2VuIG9mIGI=';

  beforeAll(async () => {
    receiver = await startTestReceiver({
      triggers: [
        { repository: 'a', branch: 'main', token: tokenA, command: 'true' },
        { repository: 'b', branch: 'main', token: tokenB, command: 'true' },
      ],
    });
  });
  afterAll(() => receiver.dispose());

  function send(repository: string, token: string, id: string) {
    const r = buildDeliveryRequest({
      scheme: 'standard',
      token,
      id,
      timestamp: now(),
      data: { repository, branch: 'main', ref: 'refs/heads/main', commit: 'abc123', source: 'test' },
    });
    return receiver.send(r.path, { headers: r.headers, body: r.body! });
  }

  it("a webhook-id used by one trigger's sender is still new to another trigger", async () => {
    const taken = await send('a', tokenA, 'msg_shared_1');
    expect(taken.status).toBe(202);
    const other = await send('b', tokenB, 'msg_shared_1');
    expect(other.status).toBe(202);
    expect(other.body).toMatchObject({ status: 'accepted', run: { repository: 'b' } });
    expect((other.body.run as { id: string }).id).not.toBe((taken.body.run as { id: string }).id);
    // Within one trigger a repeat is still a repeat.
    expect((await send('b', tokenB, 'msg_shared_1')).body).toMatchObject({ status: 'duplicate', run: { repository: 'b' } });
    const runs = await receiver.settledRuns();
    expect(
      runs
        .filter((run) => run.deliveryIds.includes('msg_shared_1'))
        .map((run) => run.repository)
        .sort(),
    ).toEqual(['a', 'b']);
  });
});

describe('seed triggers whose signed strings collide', () => {
  const token = 'one-token-for-both-triggers';
  const colliding = [
    { repository: 'x:y', branch: 'z', token, command: 'true' },
    { repository: 'x', branch: 'y:z', token, command: 'true' },
  ];

  it('are refused at config load, naming both', () => {
    let error: unknown;
    try {
      parseReceiverConfig({ triggers: colliding });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'triggers[1]: (repository "x", branch "y:z") signs the same seed string "x:y:z" as triggers[0] (repository "x:y", branch "z"): one\'s seed signature would verify for the other; rename one',
    ]);
    expect((error as ConfigError).message).not.toContain(token);
  });

  it('would otherwise let one seed signature run the other trigger', () => {
    const ts = now();
    expect(seedSignature(ts, 'x:y', 'z', token, 10)).toBe(seedSignature(ts, 'x', 'y:z', token, 10));
  });
});
