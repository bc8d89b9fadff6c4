/**
 * The receiver config reference (docs/receiver-config.md) is generated from the zod schema: the
 * committed page must be the one the schema writes, and what it says must be what the schema does.
 */
import * as fs from 'node:fs';
import { parseReceiverConfig } from '../../receiver/config/schema';
import { CONFIG_REFERENCE_PATH, configReferenceFields, configReferenceText } from '../../scripts/write-config-reference';

describe('the receiver config reference', () => {
  test('is the page the schema generates (run npm run docs:config after a change)', () => {
    expect(fs.readFileSync(CONFIG_REFERENCE_PATH, 'utf8')).toBe(configReferenceText());
  });

  test('describes every field and says what happens without each optional one', () => {
    const fields = configReferenceFields();
    expect(fields.filter((field) => field.description.trim() === '').map((field) => field.path)).toEqual([]);
    expect(fields.filter((field) => field.default.trim() === '').map((field) => field.path)).toEqual([]);
  });

  test('lists nested fields under their full path', () => {
    const paths = configReferenceFields().map((field) => field.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'listen.tls.cert',
        'tokens.ssm.prefix',
        'notify[].on',
        'triggers[].command',
        'triggers[].deploy.sshKey',
        'triggers[].deploy.healthCheck.intervalSeconds',
      ]),
    );
    // A trigger's notify repeats the receiver's: it links there instead of listing it again.
    expect(paths.filter((path) => path.startsWith('triggers[].notify'))).toEqual(['triggers[].notify']);
  });

  test('shows the defaults the receiver fills in', () => {
    const config = parseReceiverConfig({
      triggers: [
        {
          repository: 'app',
          branch: 'main',
          command: 'true',
          token: 'a-token-of-some-length',
          deploy: { repositoryUrl: '/srv/git/app.git', path: '/srv/app', healthCheck: { command: 'true' } },
        },
      ],
    });
    const filled: Record<string, unknown> = {
      'listen.port': config.listen.port,
      'admin.port': config.admin === false ? undefined : config.admin.port,
      stateDir: config.stateDir,
      'signature.replaySeconds': config.signature.replaySeconds,
      'limits.inFlightBodyBytes': config.limits.inFlightBodyBytes,
      'limits.rememberedIds': config.limits.rememberedIds,
      'tokens.graceSeconds': config.tokens.graceSeconds,
      'log.level': config.log.level,
      'triggers[].timeoutSeconds': config.triggers[0]!.timeoutSeconds,
      'triggers[].rerunInterrupted': config.triggers[0]!.rerunInterrupted,
      'triggers[].deploy.keepReleases': config.triggers[0]!.deploy!.keepReleases,
      'triggers[].deploy.healthCheck.timeoutSeconds': config.triggers[0]!.deploy!.healthCheck!.timeoutSeconds,
    };
    const shown = Object.fromEntries(configReferenceFields().map((field) => [field.path, field.default]));
    for (const [path, value] of Object.entries(filled)) {
      expect({ path, shown: shown[path] }).toEqual({ path, shown: `\`${JSON.stringify(value)}\`` });
    }
  });

  test('marks required fields and takes a described default into the default column', () => {
    const byPath = new Map(configReferenceFields().map((field) => [field.path, field]));
    expect(byPath.get('triggers')!.default).toBe('required');
    expect(byPath.get('triggers[].repository')!.default).toBe('required');
    expect(byPath.get('triggers[].tokenName')!.default).toBe('`<repository>/<branch>`');
    expect(byPath.get('triggers[].tokenName')!.description).not.toMatch(/Default:/);
    expect(byPath.get('log.level')!.type).toBe('one of `"fatal"`, `"error"`, `"warn"`, `"info"`, `"debug"`, `"trace"`');
  });
});
