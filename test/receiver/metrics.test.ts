/**
 * The receiver's metrics on their own: prom-client's process collectors (GC observer, event-loop
 * monitor) start with the first read of the metrics, not with the receiver, and from then on every
 * read has them, once; the receiver's own families are written exactly as prom-client writes the
 * same counters, gauges and histogram.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { ReceiverMetrics } from '../../receiver/metrics';
import type { StoredRun } from '../../receiver/runs/run-record';

const families = async (metrics: ReceiverMetrics) => parsePrometheusTextFormat((await metrics.text()).body).map((family) => family.name);

function finishedRun(repository: string, status: 'succeeded' | 'failed', seconds: number): StoredRun {
  const startedAt = new Date(Date.UTC(2026, 0, 1)).toISOString();
  const finishedAt = new Date(Date.UTC(2026, 0, 1) + seconds * 1000).toISOString();
  return { repository, branch: 'main', status, startedAt, finishedAt } as StoredRun;
}

describe('ReceiverMetrics', () => {
  it('registers the process metrics at the first read, and keeps them', async () => {
    const metrics = new ReceiverMetrics(() => ({ running: 0, waiting: 0, journalBytes: 0 }));
    expect(metrics.processRegistry).toBeUndefined();

    const first = await families(metrics);
    expect(first).toEqual(
      expect.arrayContaining([
        'triggler_runs_running',
        'process_cpu_user_seconds_total',
        'nodejs_eventloop_lag_seconds',
        'nodejs_gc_duration_seconds',
      ]),
    );
    expect(metrics.processRegistry?.getSingleMetric('nodejs_gc_duration_seconds')).toBeDefined();
    const second = await families(metrics);
    expect(second).toEqual(first);
    expect(new Set(second).size).toBe(second.length);
  });

  it('writes its own families as prom-client writes the same metrics', async () => {
    const metrics = new ReceiverMetrics(() => ({ running: 2, waiting: 1, journalBytes: 4096 }));
    const registry = new Registry();
    const registers = [registry];
    const counter = (name: string, help: string, labelNames: string[]) => new Counter({ name, help, labelNames, registers });
    const deliveries = counter('triggler_deliveries_total', 'Verified deliveries handed to the runner, by outcome', [
      'trigger',
      'scheme',
      'outcome',
    ]);
    const runs = counter('triggler_runs_total', 'Runs finished, by status', ['trigger', 'status']);
    const durations = new Histogram({
      name: 'triggler_run_duration_seconds',
      help: 'How long finished runs took, from start to finish',
      labelNames: ['trigger'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    const notifications = counter('triggler_notifications_total', 'Run notifications, by outcome of each attempt', ['format', 'outcome']);
    const rejections = counter('triggler_rejections_total', 'Requests rejected by the delivery listener, by reason', ['reason']);
    new Gauge({ name: 'triggler_runs_running', help: 'Runs running now', registers }).set(2);
    new Gauge({ name: 'triggler_runs_waiting', help: 'Runs waiting for their turn', registers }).set(1);
    new Gauge({ name: 'triggler_journal_bytes', help: 'Size of the run journal', registers }).set(4096);

    const sink = metrics.countingSink({
      accept: async (delivery) => {
        if (delivery.deliveryId === 'refused') throw new Error('refused');
        return { status: delivery.deliveryId === 'again' ? 'duplicate' : 'accepted' } as never;
      },
    });
    for (const id of ['first', 'again', 'refused', 'second']) {
      const delivery = { repository: 'svc "quoted"\\path', branch: 'main', scheme: 'standard', deliveryId: id };
      await sink.accept(delivery as never).catch(() => undefined);
    }
    for (const outcome of ['accepted', 'duplicate', 'not-accepted', 'accepted']) {
      deliveries.inc({ trigger: 'svc "quoted"\\path@main', scheme: 'standard', outcome });
    }
    for (const [repository, status, seconds] of [
      ['api', 'succeeded', 0.5],
      ['api', 'failed', 42],
      ['web', 'succeeded', 7200],
      ['api', 'succeeded', 5],
    ] as const) {
      metrics.runFinished(finishedRun(repository, status, seconds));
      runs.inc({ trigger: `${repository}@main`, status });
      durations.observe({ trigger: `${repository}@main` }, seconds);
    }
    metrics.notification('slack', 'retried');
    metrics.notification('slack', 'delivered');
    notifications.inc({ format: 'slack', outcome: 'retried' });
    notifications.inc({ format: 'slack', outcome: 'delivered' });
    metrics.registerRejectionCounts(() => ({ 'bad signature': 3, 'unknown trigger': 0, 'line\nbreak': 1 }));
    metrics.registerRejectionCounts(() => ({ 'bad signature': 2 }));
    rejections.inc({ reason: 'bad signature' }, 5);
    rejections.inc({ reason: 'line\nbreak' }, 1);

    const { contentType, body } = await metrics.text();
    expect(contentType).toBe(registry.contentType);
    const own = `${(await registry.metrics()).trimEnd()}\n\n`;
    expect(body.slice(0, own.length)).toBe(own);
    expect(body.slice(own.length)).toMatch(/^# HELP process_cpu_user_seconds_total /);
  });
});
