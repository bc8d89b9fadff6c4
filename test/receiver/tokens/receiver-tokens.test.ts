/**
 * Secrets looked up by name (deploy keys, a notification's token) from a real token file: one
 * added or replaced while the receiver runs is used on the next look-up, without a SIGHUP.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseReceiverConfig } from '../../../receiver/config/schema';
import { TriggerTable } from '../../../receiver/config/trigger-table';
import { ReceiverTokens } from '../../../receiver/tokens/receiver-tokens';
import { tempDir } from '../../support/receiver-fixture';

const TOKEN = 'whsec_dGhpcyBpcyBhIHRlc3Qga2V5IGZvciB0aGUgcmVjZWl2ZXI=';

describe('a secret named in the token file', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is found once added, and its replacement is used once written, with no reload', async () => {
    const file = path.join(dir, 'tokens.json');
    const write = (entries: Record<string, string>, mtime: number) => {
      fs.writeFileSync(file, JSON.stringify({ 'app/main': TOKEN, ...entries }), { mode: 0o600 });
      fs.utimesSync(file, mtime, mtime);
    };
    write({}, 1_000);
    const config = parseReceiverConfig({ tokens: { file }, triggers: [{ repository: 'app', branch: 'main', command: 'true' }] });
    let now = 1_000_000;
    const tokens = await ReceiverTokens.open(config, new TriggerTable(config.triggers, config.signature.iterations), { now: () => now });

    expect(await tokens.tokenNamed('deploy-keys/app')).toBeUndefined();
    write({ 'deploy-keys/app': 'first key' }, 2_000);
    now += 2_000;
    expect(await tokens.tokenNamed('deploy-keys/app')).toBe('first key');
    write({ 'deploy-keys/app': 'replacing key' }, 3_000);
    now += 2_000;
    expect(await tokens.tokenNamed('deploy-keys/app')).toBe('replacing key');
    // The file is read again only when it changed, and not more often than every two seconds.
    fs.writeFileSync(file, '{ not json', { mode: 0o600 });
    fs.utimesSync(file, 3_000, 3_000);
    now += 2_000;
    expect(await tokens.tokenNamed('deploy-keys/app')).toBe('replacing key');
  });
});
