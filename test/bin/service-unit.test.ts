/** `triggler service-unit` warns of each path its own sandbox hides from the service (PrivateTmp, ProtectHome). */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

describe('triggler service-unit and the paths its sandbox hides', () => {
  const dir = tempDir('triggler-unit-sandbox-');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names each hidden path, its field and why, and still prints the unit', async () => {
    const config = join(dir, 'receiver.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        stateDir: './state',
        tokens: { file: '/home/ops/tokens.json' },
        triggers: [
          { repository: 'app', branch: 'main', command: 'true', cwd: '/srv/app' },
          { repository: 'app', branch: 'dev', command: 'true', cwd: '/var/tmp/dev' },
        ],
      }),
    );
    const printed = await runCli(['service-unit', '--config', config, '--writable', '/srv/cache']);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain('PrivateTmp=yes\n');
    const tmp =
      '(PrivateTmp=yes: the service sees an empty /tmp and /var/tmp of its own); move it (e.g. under /etc/triggler or /var/lib/triggler)';
    expect(printed.stderr.split('\n').filter(Boolean)).toEqual([
      `warning: the config ${config} is hidden from the service by the unit's sandbox ${tmp}`,
      `warning: stateDir ${join(dir, 'state')} is hidden from the service by the unit's sandbox ${tmp}`,
      "warning: tokens.file /home/ops/tokens.json is hidden from the service by the unit's sandbox (ProtectHome=yes: the service cannot see home directories); move it (e.g. under /etc/triggler or /var/lib/triggler)",
      `warning: triggers[1].cwd /var/tmp/dev is hidden from the service by the unit's sandbox ${tmp}`,
    ]);
  });
});
