/** The seed scheme's hash chains: off the event loop, bounded per trigger, and capped in rounds. */
import { hashChain, SEED_MAX_ITERATIONS, seedSignature, seedSigningString } from '../../../protocol';
import { parseReceiverConfig } from '../../../receiver/config/schema';
import { TriggerTable } from '../../../receiver/config/trigger-table';
import { SeedChains } from '../../../receiver/schemes/seed-chains';
import { SeedVerifier } from '../../../receiver/schemes/seed-verifier';
import { startTestReceiver } from '../../support/receiver-fixture';

const TOKEN = 'seed-token-for-the-original-sender';
const now = () => Math.floor(Date.now() / 1000);

describe('SeedChains', () => {
  const chains = new SeedChains();
  afterAll(() => chains.close());

  it('computes what the protocol computes', async () => {
    const input = seedSigningString(1_700_000_000, 'legacy', 'master', TOKEN);
    expect(await chains.compute(input, 1000)).toBe(hashChain(input, 1000));
    expect(await chains.compute(input, 1000)).toBe(seedSignature(1_700_000_000, 'legacy', 'master', TOKEN, 1000));
  });

  it('computes a chain off the event loop: the loop turns before the check has its answer', async () => {
    const [trigger] = new TriggerTable(
      parseReceiverConfig({
        triggers: [{ repository: 'legacy', branch: 'master', token: TOKEN, command: 'true', iterations: SEED_MAX_ITERATIONS }],
      }).triggers,
      1000,
    ).all();
    const verifier = new SeedVerifier({ windowSeconds: 300, roundsPerSecond: 1_000_000, chains });
    let turned = false;
    setImmediate(() => (turned = true));
    const checking = verifier.verify(trigger!, now(), 'a'.repeat(64), [TOKEN], Date.now());
    expect(turned).toBe(false);
    expect(await checking).toBe(false);
    expect(turned).toBe(true);
  });
});

describe('seed work per trigger', () => {
  it('answers forged checks past the budget 429 with Retry-After, and a valid delivery still runs', async () => {
    // The receiver's clock stands still, so that the budget does not refill between requests on a slow machine.
    const clockMs = Date.now();
    const receiver = await startTestReceiver(
      {
        limits: { seedRoundsPerSecond: 2 * SEED_MAX_ITERATIONS },
        triggers: [{ repository: 'legacy', branch: 'master', token: TOKEN, command: 'true', iterations: SEED_MAX_ITERATIONS }],
      },
      { now: () => clockMs },
    );
    const now = () => Math.floor(clockMs / 1000);
    try {
      // One forged request per timestamp, each a chain of its own: the budget holds two a second.
      const forged = [];
      for (let i = 0; i < 6; i++) {
        forged.push(
          await receiver.send('/legacy-master', {
            method: 'GET',
            headers: { 'X-Signature': 'a'.repeat(64), 'X-Signature-Timestamp': String(now() - 100 - i) },
          }),
        );
      }
      expect(forged.map((res) => res.status)).toEqual([401, 401, 429, 429, 429, 429]);
      expect(forged[2]!.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      // A sender signs with the time it sends at: such a timestamp is checked whatever the budget.
      const ts = now();
      const valid = await receiver.send('/legacy-master', {
        method: 'GET',
        headers: { 'X-Signature': seedSignature(ts, 'legacy', 'master', TOKEN, SEED_MAX_ITERATIONS), 'X-Signature-Timestamp': String(ts) },
      });
      expect(valid.status).toBe(202);
      expect((await receiver.settledRuns()).length).toBe(1);
    } finally {
      await receiver.dispose();
    }
  });
});

describe('iterations', () => {
  it(`are capped at ${SEED_MAX_ITERATIONS}`, () => {
    const trigger = { repository: 'legacy', branch: 'master', token: TOKEN, command: 'true' };
    expect(() => parseReceiverConfig({ triggers: [{ ...trigger, iterations: SEED_MAX_ITERATIONS + 1 }] })).toThrow(
      /triggers\[0\]\.iterations/,
    );
    expect(() => parseReceiverConfig({ signature: { iterations: SEED_MAX_ITERATIONS + 1 }, triggers: [trigger] })).toThrow(
      /signature\.iterations/,
    );
    expect(parseReceiverConfig({ triggers: [{ ...trigger, iterations: SEED_MAX_ITERATIONS }] }).triggers[0]?.iterations).toBe(
      SEED_MAX_ITERATIONS,
    );
  });
});
