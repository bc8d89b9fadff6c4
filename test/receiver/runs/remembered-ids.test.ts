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
});
