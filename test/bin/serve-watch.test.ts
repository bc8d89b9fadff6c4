/**
 * `serve --watch`: a change to the config file reloads the receiver as SIGHUP does (a new trigger
 * answers), and a config that is not valid is refused whole while the running one stays. A real
 * `triggler serve` child; the test waits on the receiver's own log lines.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { freePort, runCli, startCli, stopCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

const TOKEN = 'whsec_c2VydmUgLS13YXRjaCB0ZXN0IHRva2VuIGZvciBhcHA=';

describe('triggler serve --watch', () => {
  const dir = tempDir('triggler-serve-watch-');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reloads on a change to the config file, and refuses an invalid one whole', async () => {
    const port = await freePort();
    const configFile = join(dir, 'receiver.json');
    const config = (branches: string[]) =>
      JSON.stringify({
        listen: { host: '127.0.0.1', port },
        admin: false,
        stateDir: join(dir, 'state'),
        triggers: branches.map((branch) => ({ repository: 'app', branch, token: TOKEN, command: 'true' })),
      });
    /** As an editor or a deploy replaces a file: written beside it, renamed over it. */
    const replace = (text: string) => {
      fs.writeFileSync(`${configFile}.new`, text, { mode: 0o600 });
      fs.renameSync(`${configFile}.new`, configFile);
    };
    fs.writeFileSync(configFile, config(['main']), { mode: 0o600 });
    const receiver = await startCli(['serve', '--config', configFile, '--watch', '--log-format', 'json'], /watching .*receiver\.json/);
    const send = async (branch: string) =>
      (
        await runCli(['send', 'app', branch, '--url', `http://127.0.0.1:${port}`, '--commit', 'a'.repeat(40)], {
          env: { PATH: process.env.PATH, TRIGGLER_TOKEN: TOKEN },
        })
      ).stdout;
    /** Resolves once the receiver's output has `count` lines matching. */
    const logged = async (pattern: RegExp, count: number) => {
      while ((receiver.output().match(new RegExp(pattern, 'g')) ?? []).length < count)
        await new Promise((resolve) => receiver.child.stdout!.once('data', resolve));
    };
    try {
      expect(await send('dev')).toMatch(/-> 401\n/);
      replace(config(['main', 'dev']));
      await logged(/"msg":"config reloaded"/, 1);
      expect(await send('dev')).toMatch(/-> 202\n/);

      replace(`${config(['main'])}\n}`);
      await logged(/config reload refused/, 1);
      expect(receiver.output()).toContain('is not valid JSON');
      // The running config stays: dev still answers.
      expect(await send('dev')).toMatch(/-> 202\n/);
    } finally {
      await stopCli(receiver.child);
    }
  }, 90_000);
});
