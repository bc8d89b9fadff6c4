/**
 * `triggler tokens` on a self-hosted box: `--config` reaches the receiver's own token file, and
 * with no AWS settings the default (SSM) says how to choose a token file instead of only
 * "Region is missing".
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../support/cli';
import { tempDir } from '../support/receiver-fixture';

describe('triggler tokens on a box without AWS', () => {
  const dir = tempDir('triggler-tokens-config-');
  // No AWS settings at all, and no home with any.
  const env = { PATH: process.env.PATH, HOME: dir };
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("--config rotates, lists and shows the tokens of the config's token file", async () => {
    const tokenFile = join(dir, 'tokens.json');
    fs.writeFileSync(tokenFile, '{}\n', { mode: 0o600 });
    const configFile = join(dir, 'receiver.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        stateDir: './state',
        tokens: { file: './tokens.json' },
        triggers: [{ repository: 'app', branch: 'main', command: 'true' }],
      }),
      { mode: 0o600 },
    );

    const rotated = await runCli(['tokens', 'rotate', '--config', configFile, '--create', 'app', 'main'], { env });
    expect(rotated).toMatchObject({ code: 0 });
    const written = JSON.parse(fs.readFileSync(tokenFile, 'utf8')) as Record<string, { current: string }>;
    expect(Object.keys(written)).toEqual(['app/main']);
    expect((await runCli(['tokens', 'list', '--config', configFile], { env })).stdout).toMatch(/app\/main/);
    expect(await runCli(['tokens', 'show', '--config', configFile, '--reveal', 'app', 'main'], { env })).toMatchObject({
      code: 0,
      stdout: `${written['app/main']!.current}\n`,
    });
    expect(await runCli(['tokens', 'list', '--config', configFile, '--file', tokenFile], { env })).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('cannot be used with option'),
    });
  });

  it('without --file or --config, says how to choose instead of only that the region is missing', async () => {
    const listed = await runCli(['tokens', 'list'], { env });
    expect(listed.code).toBe(1);
    expect(listed.stderr).toContain('Region is missing');
    expect(listed.stderr).toContain(
      'No AWS region is set, so SSM cannot be asked. On a self-hosted box, choose the token file: --config <receiver.json> (its tokens.file) or --file <tokens.json>',
    );
  });
});
