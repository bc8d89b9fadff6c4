/** Rejections are counted by reason; a flood of them is a few log lines a second, not a line each. */
import { OTHER_REASONS, RejectionLog } from '../../../receiver/http/rejection-log';
import { standardWebhookHeaders } from '../../../protocol';
import { recordingLogger } from '../../support/runner-harness';
import { startTestReceiver } from '../../support/receiver-fixture';

describe('RejectionLog', () => {
  it('logs the first five per reason per second in full and summarises the rest with their counts', () => {
    const { logger, lines } = recordingLogger();
    let clock = 1_000_000;
    const log = new RejectionLog(logger, { now: () => clock });
    for (let i = 0; i < 4512; i++) log.reject('bad signature', { path: '/hooks/app/main' });
    for (let i = 0; i < 3; i++) log.reject('unknown trigger', {});
    expect(lines.filter((l) => l.msg === 'delivery rejected').map((l) => l.reason)).toEqual([
      ...Array(5).fill('bad signature'),
      ...Array(3).fill('unknown trigger'),
    ]);
    clock += 1000;
    log.reject('bad signature', {});
    const summary = lines.find((l) => l.msg === 'rejections not logged one by one');
    expect(summary?.rejected).toEqual({ 'bad signature': 4507 });
    // A new second: its first rejection is logged in full again.
    expect(lines.at(-1)).toMatchObject({ msg: 'delivery rejected', reason: 'bad signature' });
    expect(log.counts()).toEqual({ 'bad signature': 4513, 'unknown trigger': 3 });
    log.close();
  });

  it('builds the fields of a rejection only when its line is written', () => {
    const { logger, lines } = recordingLogger();
    const log = new RejectionLog(logger, { now: () => 1_000_000, perReasonPerSecond: 2 });
    const build = jest.fn(() => ({ path: '/hooks/app/main' }));
    for (let i = 0; i < 50; i++) log.reject('bad signature', build);
    expect(build).toHaveBeenCalledTimes(2);
    expect(lines.filter((l) => l.msg === 'delivery rejected')).toEqual([
      expect.objectContaining({ reason: 'bad signature', path: '/hooks/app/main' }),
      expect.objectContaining({ reason: 'bad signature', path: '/hooks/app/main' }),
    ]);
    expect(log.counts()).toEqual({ 'bad signature': 50 });
    log.close();
  });

  it('writes the summary within a second when the flood stops', () => {
    // The log's own timer, on a clock the test moves: a busy machine cannot make it late.
    jest.useFakeTimers();
    try {
      const { logger, lines } = recordingLogger();
      const log = new RejectionLog(logger, { perReasonPerSecond: 1 });
      log.reject('bad signature', {});
      log.reject('bad signature', {});
      jest.advanceTimersByTime(1000);
      expect(lines.find((l) => l.msg === 'rejections not logged one by one')?.rejected).toEqual({ 'bad signature': 1 });
      log.close();
    } finally {
      jest.useRealTimers();
    }
  });

  it('counts reasons past its bound under one name, so a client cannot grow it', () => {
    const { logger } = recordingLogger();
    const log = new RejectionLog(logger, { maxReasons: 2 });
    for (const name of ['a', 'b', 'c', 'd']) log.reject(`no such webhook: /hooks/${name}`, {});
    expect(log.counts()).toEqual({ 'no such webhook: /hooks/a': 1, 'no such webhook: /hooks/b': 1, [OTHER_REASONS]: 2 });
    log.close();
  });
});

describe('the delivery listener under a flood of forged requests', () => {
  it('logs a few of them in full and the rest as counts', async () => {
    const token = 'whsec_dGhpcyBpcyBhIHRlc3Qga2V5IGZvciB0aGUgcmVjZWl2ZXI=';
    const receiver = await startTestReceiver({ triggers: [{ repository: 'app', branch: 'main', token, command: 'true' }] });
    try {
      const body = '{"data":{}}';
      const forged = standardWebhookHeaders('whsec_d3JvbmcgdG9rZW4gd3JvbmcgdG9rZW4=', 'msg_forged', Math.floor(Date.now() / 1000), body);
      const started = Date.now();
      const answers = await Promise.all(Array.from({ length: 60 }, () => receiver.send('/hooks/app/main', { headers: forged, body })));
      const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
      expect(answers.every((a) => a.status === 401)).toBe(true);
      receiver.rejections.flush();
      const full = receiver.logs.filter((l) => l.reason === 'bad webhook-signature');
      const summarised = receiver.logs
        .filter((l) => l.msg === 'rejections not logged one by one')
        .map((l) => (l.rejected as Record<string, number>)['bad webhook-signature'] ?? 0);
      // Five a second are logged in full, however many seconds a slow machine spreads the 60 over.
      expect(full.length).toBeLessThanOrEqual(5 * seconds);
      expect(full.length).toBeLessThan(60);
      expect(full.length + summarised.reduce((a, b) => a + b, 0)).toBe(60);
      expect(receiver.rejections.counts()['bad webhook-signature']).toBe(60);
    } finally {
      await receiver.dispose();
    }
  });
});
