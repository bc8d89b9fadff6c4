/**
 * `serve` fails at start-up in the words `check` uses: a missing token file names `tokens.file` and
 * its path, a taken port names `listen.port` or `admin.port` and the address; and `check` finds a
 * taken port before `serve` does. Real CLI processes and a real listener holding the port.
 */
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { loadReceiverConfigFile } from '../../../receiver';
import { freePort, runCli, startCli, stopCli } from '../../support/cli';
import { tempDir } from '../../support/receiver-fixture';

const TOKEN = 'whsec_c3RhcnQtdXAgZXJyb3JzIHRlc3QgdG9rZW4gZm9yIGFwcA==';

describe('start-up errors that name their config field', () => {
  const dir = tempDir('triggler-startup-errors-');
  let holder: Server | undefined;
  afterEach(async () => {
    const held = holder;
    holder = undefined;
    if (held) await new Promise((done) => held.close(done));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function configWith(tokenFile: string): Promise<{ file: string; listen: number; admin: number }> {
    const [listen, admin] = [await freePort(), await freePort()];
    const file = join(dir, `receiver-${listen}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: listen },
        admin: { host: '127.0.0.1', port: admin },
        stateDir: join(dir, 'state'),
        tokens: { file: tokenFile },
        triggers: [{ repository: 'app', branch: 'main', command: 'true' }],
      }),
    );
    return { file, listen, admin };
  }

  function hold(port: number): Promise<void> {
    holder = createServer();
    return new Promise((done) => holder!.listen(port, '127.0.0.1', done));
  }

  it('a missing token file: tokens.file and the path, not ENOENT ... stat', async () => {
    const missing = join(dir, 'no-such-tokens.json');
    const { file } = await configWith(missing);
    const served = await runCli(['serve', '--config', file]);
    expect(served.code).toBe(2);
    expect(served.stderr).toBe(`triggler: could not start: tokens.file: cannot read ${missing}: it does not exist\n`);
  });

  it.each(['admin', 'listen'] as const)(
    'a taken %s port: serve names the field and the address, and check finds it first',
    async (which) => {
      const tokenFile = join(dir, 'tokens.json');
      fs.writeFileSync(tokenFile, JSON.stringify({ 'app/main': TOKEN }), { mode: 0o600 });
      const config = await configWith(tokenFile);
      const port = config[which];
      await hold(port);
      const taken = `${which}.port: 127.0.0.1:${port} is taken by another program`;
      const checked = await runCli(['check', '--config', config.file]);
      expect(checked).toMatchObject({ code: 2, stderr: expect.stringContaining(`would not work:\n  ${taken}`) });
      const served = await runCli(['serve', '--config', config.file]);
      expect(served.code).toBe(2);
      expect(served.stderr).toContain(`triggler: could not start: ${taken}`);
    },
  );

  it("with commandRunner, check warns of a trigger's cwd or deploy.path under /tmp, where the runner's own /tmp hides it", async () => {
    const tokenFile = join(dir, 'tokens-runner.json');
    fs.writeFileSync(tokenFile, JSON.stringify({ 'app/main': TOKEN, 'site/main': TOKEN }), { mode: 0o600 });
    const cwd = join(dir, 'work');
    fs.mkdirSync(cwd, { recursive: true });
    const sitePath = join(dir, 'site');
    const write = (commandRunner: object | undefined): string => {
      const file = join(dir, `receiver-runner-${commandRunner ? 'on' : 'off'}.json`);
      fs.writeFileSync(
        file,
        JSON.stringify({
          listen: { host: '127.0.0.1', port: 0 },
          admin: false,
          stateDir: join(dir, 'state'),
          tokens: { file: tokenFile },
          ...(commandRunner ? { commandRunner } : {}),
          triggers: [
            { repository: 'app', branch: 'main', command: 'true', cwd },
            { repository: 'site', branch: 'main', command: 'true', deploy: { path: sitePath, repositoryUrl: join(dir, 'site.git') } },
          ],
        }),
      );
      return file;
    };
    const because = (where: string) =>
      `${where} is under /tmp, which the command runner sees as its own private /tmp (its unit has PrivateTmp=yes), so no command can start there; choose a directory outside /tmp and /var/tmp`;
    const checked = await runCli(['check', '--config', write({ socket: '/run/triggler/command.sock' })]);
    expect(checked.code).toBe(0);
    expect(checked.stderr).toBe(`warning: triggers[0].cwd: ${because(cwd)}\nwarning: triggers[1].deploy.path: ${because(sitePath)}\n`);
    // Commands that are the receiver's own children share its /tmp.
    expect(loadReceiverConfigFile(write(undefined)).warnings).toEqual([]);
  });

  it('check beside the receiver that runs this config: its ports are held by that receiver, which is no problem', async () => {
    const tokenFile = join(dir, 'tokens-running.json');
    fs.writeFileSync(tokenFile, JSON.stringify({ 'app/main': TOKEN }), { mode: 0o600 });
    const config = await configWith(tokenFile);
    const { child } = await startCli(['serve', '--config', config.file], /receiver listening/);
    try {
      const checked = await runCli(['check', '--config', config.file]);
      expect(checked.code).toBe(0);
      expect(checked.stdout).toContain(`listen.port: 127.0.0.1:${config.listen} is taken by another program`);
      expect(checked.stdout).toContain(`holds it, as expected while it runs`);
    } finally {
      await stopCli(child);
    }
  });
});
