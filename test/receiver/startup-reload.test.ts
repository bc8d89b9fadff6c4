/**
 * A reload asked for while the receiver starts (systemctl reload, cfn-hup) must not end it: the
 * real CLI in a child process, held in start-up by a token file that is a named pipe, which the
 * receiver reads at start-up and which this test writes only once the signal is sent.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promises as fs, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { tempDir } from '../support/receiver-fixture';

const CLI = resolve(__dirname, '..', '..', 'bin', 'triggler.js');
const TOKEN = 'whsec_c3RhcnQtdXAgcmVsb2FkIHRlc3Qga2V5IHN0YXJ0LXVw';

type LogLine = Record<string, unknown>;

describe('SIGHUP during start-up', () => {
  let dir: string;
  let child: ChildProcess | undefined;

  beforeEach(() => {
    dir = tempDir();
  });

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('is done once start-up ends, and the receiver keeps serving', async () => {
    const tokenFile = join(dir, 'tokens.json');
    execFileSync('mkfifo', ['-m', '600', tokenFile]);
    writeFileSync(
      join(dir, 'receiver.json'),
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        admin: false,
        stateDir: './state',
        tokens: { file: './tokens.json' },
        triggers: [{ repository: 'app', branch: 'main', command: 'true' }],
      }),
      { mode: 0o600 },
    );
    const started = spawn(process.execPath, [CLI, 'serve', '--config', join(dir, 'receiver.json')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child = started;
    const logs: LogLine[] = [];
    const waiters: { msg: string; resolve: () => void }[] = [];
    createInterface({ input: started.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as LogLine;
      logs.push(line);
      for (const waiter of waiters.filter((w) => w.msg === line.msg)) waiter.resolve();
    });
    const exited = once(started, 'exit').then(([code, signal]) => `exited (${signal ?? code})`);
    const logged = (msg: string) =>
      Promise.race([new Promise<string>((resolveLog) => waiters.push({ msg, resolve: () => resolveLog(msg) })), exited]);
    const listening = logged('receiver listening');
    const reloaded = logged('config reloaded');

    // Opening the pipe to write returns once the receiver has opened it to read: it is in start-up.
    const pipe = await fs.open(tokenFile, 'w');
    started.kill('SIGHUP');
    // The reload after start-up reads the file again: a plain file by then.
    await pipe.writeFile(JSON.stringify({ 'app/main': TOKEN }));
    await pipe.close();
    unlinkSync(tokenFile);
    writeFileSync(tokenFile, JSON.stringify({ 'app/main': TOKEN }), { mode: 0o600 });

    expect(await listening).toBe('receiver listening');
    expect(await reloaded).toBe('config reloaded');
    expect(logs.map((line) => line.msg)).toContain('a reload was asked for during start-up: reloading now');
    expect(started.exitCode).toBeNull();
    started.kill('SIGTERM');
    expect(await exited).toBe('exited (0)');
  }, 60_000);
});
