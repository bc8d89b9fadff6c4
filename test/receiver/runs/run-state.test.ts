/** The projection on its own: records in, runs and remembered ids out, no file and no log. */
import { type DeliveryFields, RUN_LISTS_LIMIT } from '../../../receiver/runs/run-record';
import { applyRecord, emptyRunState, type RunState, runsNewestFirst, stateRecords, unfinishedRuns } from '../../../receiver/runs/run-state';
import type { JournalRecord } from '../../../receiver/runs/journal-record';

const AT = '2026-01-01T00:00:00.000Z';
const NOW = Date.parse(AT);

function delivery(fields: Partial<DeliveryFields> = {}): DeliveryFields {
  return { deliveryId: 'd1', repository: 'app', branch: 'main', commit: 'c1', scheme: 'standard', receivedAt: AT, ...fields };
}

function accept(runId: string, fields: Partial<DeliveryFields> = {}, dedupeKey = `key-${fields.deliveryId ?? 'd1'}`): JournalRecord {
  return { type: 'accept', at: AT, runId, dedupeKey, dedupeUntil: NOW + 60_000, delivery: delivery(fields) };
}

function applyAll(state: RunState, records: JournalRecord[]): string[] {
  return records.flatMap((record) => applyRecord(state, record, NOW).dropped);
}

describe('applyRecord', () => {
  it('an accept makes a pending run carrying its push; the next carries the newer push, fields it lacks included', () => {
    const state = emptyRunState(10, 100);
    applyAll(state, [
      accept('r1', { deliveryId: 'd1', commit: 'c1', pusher: 'ann', event: 'push' }),
      accept('r1', { deliveryId: 'd2', commit: 'c2', previousCommit: 'c1' }),
    ]);
    expect(state.runs.get('r1')).toEqual({
      id: 'r1',
      repository: 'app',
      branch: 'main',
      status: 'pending',
      commit: 'c2',
      previousCommit: 'c1',
      scheme: 'standard',
      deliveries: 2,
      deliveryIds: ['d1', 'd2'],
      commits: ['c1', 'c2'],
      createdAt: AT,
    });
    expect(state.dedupe.get('key-d1', NOW)).toEqual({ runId: 'r1', until: NOW + 60_000 });
    expect(state.dedupe.get('key-d2', NOW)).toEqual({ runId: 'r1', until: NOW + 60_000 });
  });

  it('counts every delivery but lists only the newest RUN_LISTS_LIMIT', () => {
    const state = emptyRunState(10, 10);
    const count = RUN_LISTS_LIMIT + 5;
    applyAll(
      state,
      Array.from({ length: count }, (_, i) => accept('r1', { deliveryId: `d${i}`, commit: `c${i}` })),
    );
    const run = state.runs.get('r1');
    expect(run?.deliveries).toBe(count);
    expect(run?.deliveryIds).toHaveLength(RUN_LISTS_LIMIT);
    expect(run?.deliveryIds[0]).toBe('d5');
    expect(run?.commits.at(-1)).toBe(`c${count - 1}`);
  });

  it('start, spawned and finish record how the run ran; a finish past keepRuns drops the oldest finished runs', () => {
    const state = emptyRunState(1, 10);
    const dropped = applyAll(state, [
      accept('r1'),
      { type: 'start', at: AT, runId: 'r1' },
      { type: 'spawned', at: AT, runId: 'r1', processGroup: { pgid: 42 } },
      { type: 'finish', at: AT, runId: 'r1', status: 'failed', exitCode: 1, error: 'exited with code 1' },
      accept('r2', { deliveryId: 'd2' }),
    ]);
    expect(dropped).toEqual([]);
    expect(state.runs.get('r1')).toMatchObject({
      status: 'failed',
      startedAt: AT,
      finishedAt: AT,
      exitCode: 1,
      error: 'exited with code 1',
      processGroup: { pgid: 42 },
    });
    expect(applyRecord(state, { type: 'finish', at: AT, runId: 'r2', status: 'succeeded', exitCode: 0 }, NOW)).toEqual({ dropped: ['r1'] });
    expect([...state.runs.keys()]).toEqual(['r2']);
    // The delivery ids of a dropped run are still remembered: a repeat is still a duplicate.
    expect(state.dedupe.get('key-d1', NOW)?.runId).toBe('r1');
  });

  it('a rerun copies the push and the deliveries of the run it runs again, nothing of how that one ran', () => {
    const state = emptyRunState(10, 10);
    applyAll(state, [
      accept('r1', { pusher: 'ann', previousCommit: 'c0' }),
      { type: 'start', at: AT, runId: 'r1' },
      { type: 'spawned', at: AT, runId: 'r1', processGroup: { pgid: 42 } },
      { type: 'finish', at: AT, runId: 'r1', status: 'interrupted', error: 'receiver stopped while it ran', logBytes: 10 },
      { type: 'rerun', at: '2026-01-01T00:01:00.000Z', runId: 'r2', of: 'r1' },
    ]);
    expect(state.runs.get('r2')).toEqual({
      id: 'r2',
      repository: 'app',
      branch: 'main',
      status: 'pending',
      commit: 'c1',
      previousCommit: 'c0',
      scheme: 'standard',
      pusher: 'ann',
      deliveries: 1,
      deliveryIds: ['d1'],
      commits: ['c1'],
      createdAt: '2026-01-01T00:01:00.000Z',
      rerunOf: 'r1',
    });
    expect(state.runs.get('r2')?.deliveryIds).not.toBe(state.runs.get('r1')?.deliveryIds);
  });

  it.each<[string, JournalRecord, string]>([
    ['start', { type: 'start', at: AT, runId: 'nope' }, 'nope'],
    ['spawned', { type: 'spawned', at: AT, runId: 'nope', processGroup: { pgid: 1 } }, 'nope'],
    ['finish', { type: 'finish', at: AT, runId: 'nope', status: 'succeeded' }, 'nope'],
    ['rerun', { type: 'rerun', at: AT, runId: 'r9', of: 'nope' }, 'nope'],
  ])('a %s naming an unknown run changes nothing and says which run', (_type, record, unknown) => {
    const state = emptyRunState(10, 10);
    expect(applyRecord(state, record, NOW)).toEqual({ dropped: [], unknownRun: unknown });
    expect(state.runs.size).toBe(0);
  });

  it('the state as records (a compacted journal) reads back to the same state', () => {
    const state = emptyRunState(2, 10);
    applyAll(state, [
      accept('r1'),
      { type: 'finish', at: AT, runId: 'r1', status: 'succeeded' },
      accept('r2', { deliveryId: 'd2' }),
      accept('r3', { deliveryId: 'd3' }),
      { type: 'finish', at: AT, runId: 'r3', status: 'failed' },
    ]);
    const records = [...stateRecords(state, NOW)];
    expect(
      records.map((record) =>
        record.type === 'run' ? `run ${record.run.id}` : record.type === 'dedupe' ? `dedupe ${record.dedupeKey}` : record.type,
      ),
    ).toEqual(['run r1', 'run r3', 'run r2', 'dedupe key-d1', 'dedupe key-d2', 'dedupe key-d3']);
    const replayed = emptyRunState(2, 10);
    applyAll(replayed, records);
    expect(runsNewestFirst(replayed)).toEqual(runsNewestFirst(state));
    expect(unfinishedRuns(replayed).map((run) => run.id)).toEqual(['r2']);
    expect([...replayed.finished]).toEqual([...state.finished]);
  });
});
