/**
 * The receiver's metrics, in Prometheus text format on the admin listener's `GET /metrics`, one set
 * per receiver (a test process starts many), fed by the composition root:
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
 *
 * The receiver's own metrics are kept and written here (a few counters, gauges and one histogram,
 * written as prom-client writes them); prom-client itself is loaded with the first read, for the
 * process defaults only: its code and registry cost a receiver at rest over a MiB.
 */
import type { Registry } from 'prom-client';
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

/** What Prometheus's text format (0.0.4) is served as. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const RUN_DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

type Labels = Readonly<Record<string, string>>;

const escapeText = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const sampleValue = (value: number) =>
  Number.isNaN(value) ? 'Nan' : value === Infinity ? '+Inf' : value === -Infinity ? '-Inf' : String(value);
/** One sample line; `labels` in the order they were given, as prom-client writes them. */
function sample(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([label, text]) => `${label}="${escapeText(text).replace(/"/g, '\\"')}"`);
  return `${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${sampleValue(value)}`;
}

/** A family's lines: HELP, TYPE, then its samples. */
function family(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', samples: string[]): string {
  return [`# HELP ${escapeText(name)} ${escapeText(help)}`, `# TYPE ${escapeText(name)} ${type}`, ...samples].join('\n');
}

/** A labelled counter: its label sets in the order they were first counted. */
class LabelledCounter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  inc(labels: Labels, by = 1): void {
    const key = this.labelNames.map((label) => labels[label]).join('\u0000');
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  text(): string {
    return family(
      this.name,
      this.help,
      'counter',
      [...this.values.values()].map(({ labels, value }) => sample(this.name, labels, value)),
    );
  }
}

/** A histogram with one label, its buckets cumulative when written, as Prometheus reads them. */
class LabelledHistogram {
  private readonly values = new Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = Object.values(labels).join('\u0000');
    let entry = this.values.get(key);
    if (!entry) {
      entry = { labels, buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.values.set(key, entry);
    }
    const bucket = this.bounds.findIndex((bound) => value <= bound);
    if (bucket >= 0) entry.buckets[bucket]! += 1;
    entry.sum += value;
    entry.count += 1;
  }

  text(): string {
    const lines: string[] = [];
    for (const { labels, buckets, sum, count } of this.values.values()) {
      let below = 0;
      this.bounds.forEach((bound, index) => {
        below += buckets[index]!;
        lines.push(sample(`${this.name}_bucket`, { le: String(bound), ...labels }, below));
      });
      lines.push(
        sample(`${this.name}_bucket`, { le: '+Inf', ...labels }, count),
        sample(`${this.name}_sum`, labels, sum),
        sample(`${this.name}_count`, labels, count),
      );
    }
    return family(this.name, this.help, 'histogram', lines);
  }
}

export class ReceiverMetrics {
  /** prom-client's registry of the process defaults: none until the metrics are first read. */
  processRegistry: Registry | undefined;
  private readonly rejectionSources: RejectionCounts[] = [];
  private readonly deliveries = new LabelledCounter('triggler_deliveries_total', 'Verified deliveries handed to the runner, by outcome', [
    'trigger',
    'scheme',
    'outcome',
  ]);
  private readonly runs = new LabelledCounter('triggler_runs_total', 'Runs finished, by status', ['trigger', 'status']);
  private readonly durations = new LabelledHistogram(
    'triggler_run_duration_seconds',
    'How long finished runs took, from start to finish',
    RUN_DURATION_BUCKETS,
  );
  private readonly notifications = new LabelledCounter('triggler_notifications_total', 'Run notifications, by outcome of each attempt', [
    'format',
    'outcome',
  ]);

  constructor(private readonly gauges: () => RunGauges) {}

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
    // Read from the counters that keep them, each time the metrics are read.
    const rejections = new LabelledCounter('triggler_rejections_total', 'Requests rejected by the delivery listener, by reason', [
      'reason',
    ]);
    for (const source of this.rejectionSources) {
      for (const [reason, count] of Object.entries(source())) if (count > 0) rejections.inc({ reason }, count);
    }
    const now = this.gauges();
    const gauge = (name: string, help: string, value: number) => family(name, help, 'gauge', [sample(name, {}, value)]);
    const own = [
      this.deliveries.text(),
      this.runs.text(),
      this.durations.text(),
      this.notifications.text(),
      rejections.text(),
      gauge('triggler_runs_running', 'Runs running now', now.running),
      gauge('triggler_runs_waiting', 'Runs waiting for their turn', now.waiting),
      gauge('triggler_journal_bytes', 'Size of the run journal', now.journalBytes),
    ];
    if (!this.processRegistry) {
      const promClient = require('prom-client') as typeof import('prom-client');
      this.processRegistry = new promClient.Registry();
      promClient.collectDefaultMetrics({ register: this.processRegistry });
    }
    return { contentType: CONTENT_TYPE, body: `${own.join('\n\n')}\n\n${await this.processRegistry.metrics()}` };
  }
}
