/**
 * The receiver's registry on its own: prom-client's process collectors (GC observer, event-loop
 * monitor) start with the first read of the metrics, not with the receiver, and from then on every
 * read has them, once.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { ReceiverMetrics } from '../../receiver/metrics';

const families = async (metrics: ReceiverMetrics) => parsePrometheusTextFormat((await metrics.text()).body).map((family) => family.name);

describe('ReceiverMetrics', () => {
  it('registers the process metrics at the first read, and keeps them', async () => {
    const metrics = new ReceiverMetrics(() => ({ running: 0, waiting: 0, journalBytes: 0 }));
    expect(metrics.registry.getSingleMetric('nodejs_gc_duration_seconds')).toBeUndefined();
    expect(metrics.registry.getSingleMetric('nodejs_eventloop_lag_seconds')).toBeUndefined();

    const first = await families(metrics);
    expect(first).toEqual(
      expect.arrayContaining([
        'triggler_runs_running',
        'process_cpu_user_seconds_total',
        'nodejs_eventloop_lag_seconds',
        'nodejs_gc_duration_seconds',
      ]),
    );
    const second = await families(metrics);
    expect(second).toEqual(first);
    expect(new Set(second).size).toBe(second.length);
  });
});
