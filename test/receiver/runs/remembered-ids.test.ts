/** The bounded set of remembered delivery ids against a plain model of it. */
import fc from 'fast-check';
import { RememberedIds } from '../../../receiver/runs/remembered-ids';

describe('RememberedIds', () => {
  it('keeps exactly the keys a plain model keeps: unexpired, and past the limit the latest to expire', () => {
    const operation = fc.oneof(
      fc.record({ kind: fc.constant('remember' as const), key: fc.integer({ min: 0, max: 30 }), until: fc.integer({ min: 0, max: 1000 }) }),
      fc.record({ kind: fc.constant('expire' as const), now: fc.integer({ min: 0, max: 1000 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(operation, { maxLength: 200 }), (limit, operations) => {
        const ids = new RememberedIds(limit);
        const model = new Map<string, number>();
        let now = 0;
        // Expiries made distinct, so that which key expires soonest is never a tie.
        let tick = 0;
        for (const op of operations) {
          if (op.kind === 'expire') {
            now = Math.max(now, op.now);
            ids.forgetExpired(now * 1000);
            for (const [key, until] of model) if (until <= now * 1000) model.delete(key);
            continue;
          }
          tick += 1;
          const until = op.until * 1000 + tick;
          const key = `k${op.key}`;
          ids.remember(key, { runId: 'r_1', until }, now * 1000);
          if (until > now * 1000) model.set(key, until);
          while (model.size > limit) {
            const soonest = [...model].reduce((a, b) => (b[1] < a[1] ? b : a));
            model.delete(soonest[0]);
          }
        }
        const kept = new Map([...ids].map(([key, entry]) => [key, entry.until]));
        expect(kept).toEqual(model);
      }),
    );
  });

  it('answers each key with its latest entry after thousands of repeats (its stale places dropped and used again)', () => {
    const ids = new RememberedIds(3);
    const model = new Map<string, { runId: string; until: number }>();
    for (let i = 1; i <= 5000; i++) {
      const key = `k${i % 5}`;
      // Later repeats expire later, so the three latest keys are the three kept.
      const entry = { runId: `r_${i}`, until: 10_000 + i };
      ids.remember(key, entry, 0);
      model.set(key, entry);
      if (model.size > 3) model.delete([...model].reduce((a, b) => (b[1].until < a[1].until ? b : a))[0]);
      if (i % 997 === 0) for (const [k, expected] of model) expect(ids.get(k, 0)).toEqual(expected);
    }
    expect(new Map(ids)).toEqual(model);
    expect(ids.get('k0', 0)).toEqual({ runId: 'r_5000', until: 15_000 });
    expect(ids.get('k1', 0)).toBeUndefined();
    ids.forgetExpired(14_999);
    expect([...ids].map(([key]) => key)).toEqual(['k0']);
    expect(ids.get('k0', 15_000)).toBeUndefined();
  });

  it('keeps its heap bounded when repeats expire sooner than what they replace', () => {
    const ids = new RememberedIds(100);
    for (let i = 0; i < 3000; i++) ids.remember(`k${i % 10}`, { runId: `r_${i}`, until: 100_000 - i }, 0);
    const latest = Array.from({ length: 10 }, (_, k) => [`k${k}`, { runId: `r_${2990 + k}`, until: 100_000 - 2990 - k }] as const);
    expect(new Map(ids)).toEqual(new Map(latest));
    ids.forgetExpired(100_000 - 2995);
    expect([...ids].map(([key]) => key).sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
  });
});
