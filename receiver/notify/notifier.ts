/**
 * Tells someone when a run ends: each finished run is matched against the notify targets of its
 * trigger (or the receiver's), and each matching target is sent its message in the background —
 * retried with backoff for the target's `retrySeconds`, never holding up a run. Failures are
 * logged (never with a token) and counted.
 */
import type { Logger } from 'pino';
import { isPermanentRefusal, nextRetryDelay, standardWebhookHeaders, triggerKey } from '../../protocol';
import { FAILURE_STATUSES, type NotifyEvent, type NotifyTarget } from '../config/notify-schema';
import type { TriggerConfig } from '../config/schema';
import type { RunRecord } from '../runs/run-record';
import type { AwsPublishers } from './aws-publishers';
import { chatText, logTail, runFinishedEvent, runSummary } from './run-event';

export type AttemptOutcome = 'delivered' | 'retried' | 'failed';

export interface NotifierOptions {
  /** The receiver's `notify`. */
  targets: readonly NotifyTarget[];
  triggers: readonly TriggerConfig[];
  logger: Logger;
  /** The current token stored under a name (the token file or SSM). */
  tokenNamed(tokenName: string): Promise<string | undefined>;
  /** A finished run's log. */
  runLog(runId: string): Promise<Buffer | undefined>;
  /** The trigger's finished runs before this one, newest first (for `recovered`). */
  earlierRuns(run: RunRecord): Iterable<RunRecord>;
  /** Each attempt's outcome, for the metrics. */
  onAttempt?(format: NotifyTarget['format'], outcome: AttemptOutcome): void;
  /** @default the AWS SDK clients, loaded on first use */
  aws?: () => AwsPublishers;
  /** First retry delay; each next one doubles, up to a minute. @default 1000 */
  firstRetryMs?: number;
  /** One attempt's limit. @default 10000 */
  attemptTimeoutMs?: number;
}

/** A target's answer that trying again will not change (a 4xx other than 408 and 429). */
class PermanentFailure extends Error {}

/** The events a finished run stands for: its status, and `recovered` for the first success after a failure. */
export function eventsOf(run: RunRecord, earlier: Iterable<RunRecord>): NotifyEvent[] {
  const events: NotifyEvent[] = [run.status as NotifyEvent];
  if (run.status !== 'succeeded') return events;
  for (const before of earlier) {
    // An interrupted run says nothing of whether the deploy works.
    if (before.status === 'interrupted' || before.status === 'pending' || before.status === 'running') continue;
    if (FAILURE_STATUSES.includes(before.status)) events.push('recovered');
    break;
  }
  return events;
}

export class Notifier {
  private readonly byTrigger = new Map<string, readonly NotifyTarget[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private awsPublishers: AwsPublishers | undefined;
  private closed = false;

  constructor(private readonly options: NotifierOptions) {
    this.reconfigure(options.targets, options.triggers);
  }

  /** Who hears about which trigger, after a reloaded config. */
  reconfigure(targets: NotifierOptions['targets'], triggers: NotifierOptions['triggers']): void {
    this.options.targets = targets;
    this.byTrigger.clear();
    for (const trigger of triggers) this.byTrigger.set(triggerKey(trigger.repository, trigger.branch), trigger.notify ?? targets);
  }

  /** Whether any run could notify anyone (no listener is needed otherwise). */
  get enabled(): boolean {
    return [...this.byTrigger.values()].some((targets) => targets.length > 0);
  }

  /** A run finished: send what its targets ask for, in the background. */
  runFinished(run: RunRecord): void {
    if (this.closed) return;
    const targets = this.byTrigger.get(triggerKey(run.repository, run.branch)) ?? this.options.targets;
    const events = eventsOf(run, this.options.earlierRuns(run));
    // `recovered` is the more specific word when a target asks for it.
    const ordered = [...events].reverse();
    targets.forEach((target, index) => {
      const event = ordered.find((e) => target.on.includes(e));
      if (event) this.track(this.deliver(run, event, target, index));
    });
  }

  /** Resolves once the notifications in flight are settled (tests, and a stopping receiver's last look). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0 || this.timers.size > 0)
      await Promise.race([...this.inFlight, new Promise((resolve) => setTimeout(resolve, 50))]);
  }

  /** Stops retrying; notifications not delivered yet are logged as given up. */
  close(): void {
    this.closed = true;
    this.abort.abort();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async deliver(run: RunRecord, event: NotifyEvent, target: NotifyTarget, index: number): Promise<void> {
    const log = this.options.logger.child({ run: run.id, notify: index, format: target.format, event });
    const tail = logTail(await this.options.runLog(run.id).catch(() => undefined));
    const giveUpAt = Date.now() + target.retrySeconds * 1000;
    let delay = this.options.firstRetryMs ?? 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.attempt(run, event, target, index, tail);
        this.options.onAttempt?.(target.format, 'delivered');
        log.info({ attempt }, 'notification delivered');
        return;
      } catch (error) {
        const last = this.closed || error instanceof PermanentFailure || Date.now() + delay > giveUpAt;
        this.options.onAttempt?.(target.format, last ? 'failed' : 'retried');
        if (last) {
          log.error(
            { attempt, err: error },
            this.closed ? 'notification given up: the receiver is stopping' : 'notification failed; given up',
          );
          return;
        }
        log.warn({ attempt, err: error, retryMs: delay }, 'notification failed; retrying');
      }
      await this.sleep(delay);
      if (this.closed) {
        log.error({ attempt }, 'notification given up: the receiver is stopping');
        return;
      }
      delay = nextRetryDelay(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
      // close() clears the timer; resolve anyway so the loop sees it is closed.
      this.abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  private async attempt(run: RunRecord, event: NotifyEvent, target: NotifyTarget, index: number, tail: string): Promise<void> {
    switch (target.format) {
      case 'standard': {
        const token = await this.options.tokenNamed(target.tokenName!);
        if (!token) throw new Error(`no token named ${target.tokenName} in the token source`);
        const body = JSON.stringify(runFinishedEvent(run, event, tail));
        // The same id on every attempt: the receiving end can tell a retry from a new event.
        const headers = standardWebhookHeaders(token, `msg_${run.id}_${index}`, Math.floor(Date.now() / 1000), body);
        return this.post(target.url!, body, headers);
      }
      case 'slack':
        return this.post(target.url!, JSON.stringify({ text: chatText(run, event, tail) }));
      case 'sns':
        return this.aws().publish(target.topicArn!, runSummary(run, event), `${runSummary(run, event)}\n\n${tail}`);
      case 'cloudwatch':
        return this.aws().putFailedRun(target.namespace!);
    }
  }

  private aws(): AwsPublishers {
    this.awsPublishers ??= (
      this.options.aws ?? (() => (require('./aws-publishers') as typeof import('./aws-publishers')).awsPublishers())
    )();
    return this.awsPublishers;
  }

  private async post(url: string, body: string, headers: Record<string, string> = {}): Promise<void> {
    const timeout = this.options.attemptTimeoutMs ?? 10_000;
    // Loaded by the first notification that posts: a receiver that sends none does not pay for undici.
    const { request } = require('undici') as typeof import('undici');
    const response = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'git-triggler', ...headers },
      body,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      signal: this.abort.signal,
    });
    await response.body.dump();
    const status = response.statusCode;
    if (status >= 200 && status < 300) return;
    // The URL's path may hold a chat webhook's secret: only its origin is named.
    const message = `${new URL(url).origin} answered ${status}`;
    if (isPermanentRefusal(status)) throw new PermanentFailure(message);
    throw new Error(message);
  }
}
