/**
 * The packed CLI (scripts/build-cli.ts), built into this test's own folder: `triggler serve` from
 * the serve bundle starts and answers with none of the deferred packages at hand (a receiver on
 * local tokens, logging JSON, not yet scraped, reads none of them), and reads them from
 * dist/deferred/ once it needs them: prom-client at the first read of /metrics, pino-pretty for a
 * log for people.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DEFERRED_DIR, DEFERRED_PACKAGES } from '../../lib/host-files/host-files';
import { buildCli, SERVE_BUNDLE_FILE } from '../../scripts/build-cli';
import { freePort, startCli, stopCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

describe('the packed CLI', () => {
  let dir: string;
  let dist: string;
  let config: string;
  let adminPort: number;

  beforeAll(async () => {
    dir = tempDir('triggler-build-cli-');
    dist = join(dir, 'dist');
    await buildCli(dist);
    const [port, admin] = [await freePort(), await freePort()];
    adminPort = admin;
    config = join(dir, 'receiver.json');
    const receiver = {
      listen: { host: '127.0.0.1', port },
      admin: { host: '127.0.0.1', port: admin },
      stateDir: join(dir, 'state'),
      triggers: [{ repository: 'svc', branch: 'main', token: 'a-token-of-some-length-0123456789', command: 'true' }],
    };
    fs.writeFileSync(config, JSON.stringify(receiver), { mode: 0o600 });
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const serve = (format: 'json' | 'pretty') =>
    startCli(['serve', '--config', config, '--log-format', format], /receiver listening/, {
      cwd: dir,
      program: [process.execPath, join(dist, SERVE_BUNDLE_FILE)],
    });

  it('puts each deferred package in a file of its own, beside the bundles', () => {
    const files = fs.readdirSync(join(dist, DEFERRED_DIR)).sort();
    expect(files).toHaveLength(DEFERRED_PACKAGES.length);
    expect(files).toEqual(expect.arrayContaining(['prom-client.js', 'pino-pretty.js', 'undici.js', 'aws-sdk-client-ssm.js']));
  });

  it('serves without the deferred packages, and reads prom-client from them at the first scrape', async () => {
    const deferred = join(dist, DEFERRED_DIR);
    const aside = join(dir, 'deferred-aside');
    fs.renameSync(deferred, aside);
    let receiver;
    try {
      receiver = await serve('json');
    } finally {
      fs.renameSync(aside, deferred);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toMatch(/^triggler_runs_running 0$/m);
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    } finally {
      await stopCli(receiver.child);
    }
  });

  it('logs for people with pino-pretty from dist/deferred/', async () => {
    const receiver = await serve('pretty');
    await stopCli(receiver.child);
    expect(receiver.output()).toMatch(/^\[[\d-]+ [\d:.]+\] INFO: receiver listening/m);
  });
});
