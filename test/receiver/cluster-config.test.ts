/**
 * What a replacement worker starts from, and when: the config the primary holds (a reloaded one
 * with the running values of the fields that need a restart), and a wait that grows only while
 * replacements die before they listen.
 */
import { replacementConfig, replacementDelayMs } from '../../receiver/cluster';
import { parseReceiverConfig } from '../../receiver/config/schema';

describe('a replacement worker', () => {
  it('is forked at once after a worker that served, then after 0.5 s, 1 s, 2 s ... up to 30 s while replacements die before listening', () => {
    expect([0, 1, 2, 3, 6, 7, 20].map(replacementDelayMs)).toEqual([0, 500, 1000, 2000, 16_000, 30_000, 30_000]);
  });

  it("takes a reloaded config's triggers, tokens and certificate, and the running listener, limits and log", () => {
    const running = parseReceiverConfig({
      listen: { host: '127.0.0.1', port: 5000, tls: { cert: '/etc/old.pem', key: '/etc/old-key.pem' } },
      workers: 2,
      stateDir: '/var/lib/triggler',
      triggers: [{ repository: 'app', branch: 'main', token: 'whsec_b2xkIHRva2VuIG9sZCB0b2tlbiBvbGQgdG9rZW4=', command: 'true' }],
    });
    const next = parseReceiverConfig({
      listen: { host: '0.0.0.0', port: 6000, tls: { cert: '/etc/new.pem', key: '/etc/new-key.pem' } },
      workers: 4,
      stateDir: '/srv/state',
      limits: { maxConnections: 10 },
      log: { level: 'debug' },
      triggers: [{ repository: 'site', branch: 'live', token: 'whsec_bmV3IHRva2VuIG5ldyB0b2tlbiBuZXcgdG9rZW4=', command: 'true' }],
    });
    const replacement = replacementConfig(running, next);
    expect(replacement.triggers).toEqual(next.triggers);
    expect(replacement.listen).toEqual({ ...running.listen, tls: next.listen.tls });
    expect({ workers: replacement.workers, stateDir: replacement.stateDir, limits: replacement.limits, log: replacement.log }).toEqual({
      workers: running.workers,
      stateDir: running.stateDir,
      limits: running.limits,
      log: running.log,
    });
  });
});
