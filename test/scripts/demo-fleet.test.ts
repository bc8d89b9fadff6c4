/** `npm run demo:fleet` as a user runs it: a child process, its printed progress and each host's current. */
import { join } from 'node:path';
import { ROOT, runCli } from '../support/cli';

describe('npm run demo:fleet', () => {
  it('rolls one push out to three local hosts, printing the phases as they happen and every current at the end', async () => {
    const { code, stdout, stderr } = await runCli([join(ROOT, 'scripts', 'demo-fleet.ts')], {
      program: [process.execPath, join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs')],
      timeoutMs: 115_000,
      // As bin/triggler.js does: the SDK's notice about its later releases says nothing of this run.
      env: { PATH: process.env.PATH, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const pushed = /push of ([0-9a-f]{12}) /.exec(stdout)?.[1];
    expect(pushed).toBeDefined();
    const phases = [
      'lock taken',
      'prepare on every host',
      'prepared everywhere',
      'checking the alarms',
      'the fleet commit parameter',
      'rollout succeeded',
    ];
    const positions = phases.map((phase) => stdout.indexOf(phase));
    expect(positions.every((position) => position >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    const currents = [...stdout.matchAll(/^ {2}(i-[0-9a-f]{17}) {2}current -> ([0-9a-f]{40})$/gm)].map((match) => match[2]!);
    expect(currents).toHaveLength(3);
    for (const current of currents) expect(current.startsWith(pushed!)).toBe(true);
  }, 120_000);
});
