/** Journal records as the runner writes them, for the run-store tests. */
import type { AcceptedDelivery } from '../../receiver/delivery';
import type { AcceptRecord, JournalRecord } from '../../receiver/runs/run-store';

export function acceptRecord(runId: string, delivery: AcceptedDelivery): AcceptRecord {
  const { dedupeKey, dedupeUntil, ...fields } = delivery;
  return { type: 'accept', at: new Date().toISOString(), runId, dedupeKey, dedupeUntil, delivery: fields };
}

/** A line of the journal as it is written. */
export function journalLine(record: JournalRecord): string {
  return `${JSON.stringify(record)}\n`;
}
