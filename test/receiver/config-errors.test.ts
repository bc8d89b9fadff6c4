import * as fs from 'node:fs';
import { join } from 'node:path';
import { loadReceiverConfigFile } from '../../receiver/config/config-file';
import { closest } from '../../receiver/config/config-errors';
import { tempDir } from '../support/receiver-fixture';

const TOKEN = 'whsec_dGhpcyBpcyBhIHRlc3Qga2V5IGZvciB0aGUgcmVjZWl2ZXI=';

describe('config problems lead somewhere', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function problemsOf(text: string): string {
    const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, text, { mode: 0o600 });
    try {
      loadReceiverConfigFile(file);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('the config was accepted');
  }

  it('suggests the known key a misspelt one was meant to be, and says the real one is required', () => {
    const message = problemsOf(JSON.stringify({ triggers: [{ repository: 'app', branch: 'main', comand: 'true', token: TOKEN }] }));
    expect(message).toContain('triggers[0].comand: unknown key (did you mean "command"?)');
    expect(message).toContain('triggers[0].command: is required');
    expect(message).not.toContain('Invalid input');
  });

  it('says a missing section is required and suggests it for a misspelt one', () => {
    const message = problemsOf(JSON.stringify({ trigers: [] }));
    expect(message).toContain('triggers: is required');
    expect(message).toContain('trigers: unknown key (did you mean "triggers"?)');
  });

  it('lists the known keys when nothing is close', () => {
    expect(problemsOf(JSON.stringify({ listen: { zzzzzzz: 1 }, triggers: [{ repository: 'a', branch: 'b', command: 'true', token: TOKEN }] }))).toContain(
      'listen.zzzzzzz: unknown key (known keys: host, port, tls)',
    );
  });

  it('shows the line and column of a JSON syntax error, with the line, and never an inline token', () => {
    const message = problemsOf(`{\n  "triggers": [\n    { "repository": "app", "branch": "main", "token": "${TOKEN}" "command": "true" }\n  ]\n}\n`);
    expect(message).toMatch(/is not valid JSON at line 3, column \d+:/);
    expect(message).toContain('{ "repository": "app", "branch": "main", "token": "…" "command": "true" }');
    expect(message).not.toContain(TOKEN);
  });

  it('takes // and /* */ comments, as the starter config has them', () => {
    const file = join(dir, 'commented.json');
    fs.writeFileSync(file, `// a comment\n{ /* where */ "listen": { "port": 5999 }, // the port\n  "triggers": [{ "repository": "app", "branch": "main", "command": "echo // not a comment", "token": "${TOKEN}" }] }\n`, { mode: 0o600 });
    const { config } = loadReceiverConfigFile(file);
    expect(config.listen.port).toBe(5999);
    expect(config.triggers[0]?.command).toBe('echo // not a comment');
  });

  it('says which path it tried for a missing config, and what makes one', () => {
    expect(() => loadReceiverConfigFile(join(dir, 'nope.json'))).toThrow(/cannot read config .*nope\.json: it does not exist; `triggler init` writes a starter config and token file/);
  });

  it('suggests only near keys', () => {
    expect(closest('comand', ['command', 'cwd'])).toBe('command');
    expect(closest('Command', ['command'])).toBe('command');
    expect(closest('tiemoutSeconds', ['timeoutSeconds', 'token'])).toBe('timeoutSeconds');
    expect(closest('xyz', ['command', 'cwd'])).toBeUndefined();
  });
});
