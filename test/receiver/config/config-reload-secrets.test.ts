/**
 * The case a reload meets: a running receiver (`triggler serve`) is sent SIGHUP after its config
 * was edited into something that is not JSON, with a webhook URL, a token on the line after its
 * key and a command variable on the lines around the fault. The log says the reload was refused
 * and where the file is wrong, and none of those values.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { freePort, startCli, stopCli } from '../../support/cli';
import { tempDir } from '../../support/receiver-fixture';

const TOKEN = 'whsec_cmVsb2FkIHNlY3JldHMgdGVzdCB0b2tlbiBmb3IgdGhlIGxvZw==';
const SLACK = 'https://hooks.slack.com/services/T0RELOAD/B0RELOAD/reloadSecretPart';

describe('config reload refused', () => {
  const dir = tempDir('triggler-reload-secrets-');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('logs the position and what was expected, never a value of the broken file', async () => {
    const configFile = join(dir, 'receiver.json');
    const port = await freePort();
    const trigger = { repository: 'app', branch: 'main', command: 'true', token: TOKEN };
    fs.writeFileSync(
      configFile,
      JSON.stringify({ listen: { host: '127.0.0.1', port }, admin: false, stateDir: join(dir, 'state'), triggers: [trigger] }),
      { mode: 0o600 },
    );
    const receiver = await startCli(['serve', '--config', configFile], /receiver listening/);
    try {
      fs.writeFileSync(
        configFile,
        [
          '{',
          `  "listen": { "host": "127.0.0.1", "port": ${port} }, "admin": false, "stateDir": "${join(dir, 'state')}",`,
          `  "notify": [{ "format": "slack", "url": "${SLACK}" }],`,
          '  "triggers": [{ "repository": "app", "branch": "main", "command": "true", "token":',
          `    "${TOKEN}" "env": { "API_KEY": "reload-secret-api-key" } }]`,
          '}',
        ].join('\n'),
      );
      const logged = receiver.output().length;
      receiver.child.kill('SIGHUP');
      const deadline = Date.now() + 30_000;
      while (!receiver.output().slice(logged).includes('config reload refused') && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      const log = receiver.output().slice(logged);
      expect(log).toContain('config reload refused');
      // Line 5 holds four spaces, the quoted token and a space before "env", where the fault is.
      expect(log).toContain(`is not valid JSON at line 5, column ${4 + TOKEN.length + 2 + 2}`);
      expect(log).toContain("expected ',' or '}' after the property value");
      for (const secret of [TOKEN, SLACK, 'hooks.slack.com', 'reload-secret-api-key']) expect(log).not.toContain(secret);
    } finally {
      await stopCli(receiver.child);
    }
  }, 60_000);
});
