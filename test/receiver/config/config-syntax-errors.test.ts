/**
 * A config that is not JSON is refused with its line, its column and what JSON expected there,
 * and the line it shows is structure only: no string value, no bare word, no comment of the file
 * reaches the message (which a reload logs as `config reload refused`).
 */
import * as fs from 'node:fs';
import { parseJsonWithComments } from '../../../receiver/config/config-errors';
import { tempDir } from '../../support/receiver-fixture';
import { configRefusal } from './config-refusal';

const TOKEN = 'whsec_c3ludGF4IGVycm9yIHRlc3QgdG9rZW4gZm9yIHRoZSBjb25maWc=';
const SLACK = 'https://hooks.slack.com/services/T0SECRET/B0SECRET/XsecretXsecretXsecret';
const DISCORD = 'https://discord.com/api/webhooks/123456789/discord-secret-part';

describe('a JSON syntax error in the config', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('triggler-config-syntax-');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The message after `config <file>`. */
  function refusal(text: string): string {
    const { file, message } = configRefusal(dir, text);
    return message.slice(`config ${file}`.length);
  }

  const trigger = `{ "repository": "app", "branch": "main", "command": "true", "token": "${TOKEN}" }`;

  it.each([
    [
      'a Slack webhook URL',
      `{\n  "notify": [{ "url": "${SLACK}" "format": "slack" }],\n  "triggers": [${trigger}]\n}\n`,
      [SLACK, 'hooks.slack.com', 'T0SECRET'],
    ],
    [
      'a Discord webhook URL',
      `{\n  "notify": [{ "format": "discord", "url": "${DISCORD}", }],\n  "triggers": [${trigger}]\n}\n`,
      [DISCORD, 'discord-secret-part'],
    ],
    [
      'a token on the line after its key',
      `{\n  "triggers": [{ "repository": "app", "branch": "main", "command": "true", "token":\n    "${TOKEN}" "cwd": "/srv" }]\n}\n`,
      [TOKEN],
    ],
    [
      'a command variable',
      `{\n  "triggers": [{ "repository": "app", "branch": "main", "command": "true", "token": "${TOKEN}",\n    "env": { "API_KEY": "s3cr3t-api-key" "REGION": "eu" } }]\n}\n`,
      ['s3cr3t-api-key'],
    ],
    [
      'a token left unquoted',
      `{\n  "triggers": [{ "repository": "app", "branch": "main", "command": "true", "token": ${TOKEN} }]\n}\n`,
      [TOKEN],
    ],
    ['a token in a comment', `{\n  "triggers": [${trigger}] // was: ${TOKEN}x\n  "stateDir": "/var/lib/x"\n}\n`, [`${TOKEN}x`]],
  ])('never quotes %s', (_what, text, secrets) => {
    const message = refusal(text);
    expect(message).toMatch(/^ is not valid JSON at line \d+, column \d+:\n {4}.*\n {4} *\^\n {2}expected .+$/);
    for (const secret of secrets) expect(message).not.toContain(secret);
  });

  it('shows the line as structure, the caret where the fault is, and what JSON expected', () => {
    // A comma missing at a line's end is reported there, where it was expected.
    const masked2 = `  "triggers": [{ "repository": "…", "branch": "…", "command": "…", "token": "…" }]`;
    expect(refusal(`{\n  "triggers": [${trigger}]\n  "listen": { "port": 5000 }\n}\n`)).toBe(
      ` is not valid JSON at line 2, column ${`  "triggers": [${trigger}]`.length + 1}:\n    ${masked2}\n    ${' '.repeat(masked2.length)}^\n  expected ',' or '}' after the property value`,
    );
    // A value left unquoted on line 6: that line and column, and what JSON expected there.
    const unquoted = `{\n  "listen": { "port": 15300 },\n  "stateDir": "./state",\n  "tokens": { "file": "./tokens.json" },\n  "triggers": [\n    { "repository": "app", "branch": "main", "command": echo hi }\n  ]\n}\n`;
    expect(refusal(unquoted)).toBe(
      ` is not valid JSON at line 6, column 57:\n        { "repository": "…", "branch": "…", "command": … … }\n                                                       ^\n  expected a value: a string in double quotes, a number, true, false, null, an object or an array`,
    );
    const masked = '{ "triggers": [{ "repository": "…" "branch": "…" }] }';
    expect(refusal(`{ "triggers": [{ "repository": "app" "branch": "main" }] }`)).toBe(
      ` is not valid JSON at line 1, column 38:\n    ${masked}\n    ${' '.repeat(masked.indexOf('"branch"'))}^\n  expected ',' or '}' after the property value`,
    );
    // A word that is no JSON value: masked, and the caret marks it.
    expect(refusal(`{ "stateDir": secret-dir }`)).toBe(
      ` is not valid JSON at line 1, column 15:\n    { "stateDir": … }\n                  ^\n  expected a value: a string in double quotes, a number, true, false, null, an object or an array`,
    );
    expect(refusal(`{ "triggers": [${trigger}], }`)).toMatch(/expected a property name in double quotes$/);
    expect(refusal(`{ "triggers": [${trigger}] `)).toMatch(/expected ',' or '}' after the property value, but the text ends$/);
    expect(refusal(`{ "stateDir": "a\\qb" }`)).toMatch(/column 18:[\s\S]*expected an escape/);
    expect(refusal(`{ "stateDir": "/x" } x`)).toMatch(/column 22:[\s\S]*expected nothing after the end of the JSON value$/);
    expect(refusal('  \n')).toBe(' is not valid JSON (it is empty)');
  });

  it('a token file gives the position and what was expected, and no line at all', () => {
    expect(() => parseJsonWithComments(`{\n  "app/main": "${TOKEN}"\n  "app/dev": "${TOKEN}"\n}`, 'token file t.json', false)).toThrow(
      new Error(
        `token file t.json is not valid JSON at line 2, column ${`  "app/main": "${TOKEN}"`.length + 1}: expected ',' or '}' after the property value`,
      ),
    );
  });
});
