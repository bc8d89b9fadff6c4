/**
 * The receiver's metrics, in Prometheus text format on the admin listener's `GET /metrics`: one
 * prom-client registry per receiver (a test process starts many), fed by the composition root.
 *
 *   triggler_deliveries_total{trigger,scheme,outcome}   accepted | duplicate | not-accepted
 *   triggler_rejections_total{reason}                   from whatever counts rejections (registerRejectionCounts)
 *   triggler_runs_total{trigger,status}                 runs finished
 *   triggler_run_duration_seconds{trigger}              histogram of finished runs
 *   triggler_runs_running, triggler_runs_waiting, triggler_journal_bytes
 *   triggler_notifications_total{format,outcome}        delivered | retried | failed
 * plus prom-client's process defaults (memory, CPU, event loop, GC, file descriptors), from the
 * first read on: their GC observer and event-loop monitor take a little of every request's time,
 * which a receiver whose metrics nobody reads (no admin listener, or never scraped) need not pay.
 * Their counters count from that first read, which a Prometheus rate() does not mind.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { triggerLabel } from '../protocol';
import type { AcceptedDelivery, AcceptResult, DeliverySink } from './delivery';
import { durationSeconds } from './notify/run-event';
import type { StoredRun } from './runs/run-record';

/** Rejections so far by reason, as a counter of them reports them (e.g. a RejectionLog's `counts()`). */
export type RejectionCounts = () => Readonly<Record<string, number>>;

export interface RunGauges {
  running: number;
  waiting: number;
  journalBytes: number;
}

export class ReceiverMetrics {
  readonly registry = new Registry();
  private readonly rejectionSources: RejectionCounts[] = [];
  private processMetrics = false;
  private readonly deliveries = new Counter({
    name: 'triggler_deliveries_total',
    help: 'Verified deliveries handed to the runner, by outcome',
    labelNames: ['trigger', 'scheme', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly runs = new Counter({
    name: 'triggler_runs_total',
    help: 'Runs finished, by status',
    labelNames: ['trigger', 'status'] as const,
    registers: [this.registry],
  });
  private readonly durations = new Histogram({
    name: 'triggler_run_duration_seconds',
    help: 'How long finished runs took, from start to finish',
    labelNames: ['trigger'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [this.registry],
  });
  private readonly notifications = new Counter({
    name: 'triggler_notifications_total',
    help: 'Run notifications, by outcome of each attempt',
    labelNames: ['format', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor(gauges: () => RunGauges) {
    const sources = this.rejectionSources;
    new Counter({
      name: 'triggler_rejections_total',
      help: 'Requests rejected by the delivery listener, by reason',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      // Read from the counters that keep them, each time the metrics are read.
      collect() {
        this.reset();
        for (const source of sources) {
          for (const [reason, count] of Object.entries(source())) if (count > 0) this.inc({ reason }, count);
        }
      },
    });
    const gauge = (name: string, help: string, read: (now: RunGauges) => number): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read(gauges()));
        },
      });
    };
    gauge('triggler_runs_running', 'Runs running now', (now) => now.running);
    gauge('triggler_runs_waiting', 'Runs waiting for their turn', (now) => now.waiting);
    gauge('triggler_journal_bytes', 'Size of the run journal', (now) => now.journalBytes);
  }

  /** Rejection counts to show as triggler_rejections_total; several sources add up. */
  registerRejectionCounts(counts: RejectionCounts): void {
    this.rejectionSources.push(counts);
  }

  /** The sink, counting each delivery it takes, repeats and refusals. */
  countingSink<Sink extends DeliverySink>(sink: Sink): DeliverySink {
    const count = (delivery: AcceptedDelivery, outcome: string): void => {
      this.deliveries.inc({ trigger: triggerLabel(delivery), scheme: delivery.scheme, outcome });
    };
    return {
      accept: (delivery) =>
        sink.accept(delivery).then(
          (result: AcceptResult) => {
            count(delivery, result.status);
            return result;
          },
          (error: unknown) => {
            count(delivery, 'not-accepted');
            throw error;
          },
        ),
      ...(sink.health ? { health: () => sink.health!() } : {}),
    };
  }

  runFinished(run: StoredRun): void {
    const trigger = triggerLabel(run);
    this.runs.inc({ trigger, status: run.status });
    const seconds = durationSeconds(run);
    if (seconds !== null) this.durations.observe({ trigger }, seconds);
  }

  notification(format: string, outcome: 'delivered' | 'retried' | 'failed'): void {
    this.notifications.inc({ format, outcome });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    if (!this.processMetrics) {
      this.processMetrics = true;
      collectDefaultMetrics({ register: this.registry });
    }
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
