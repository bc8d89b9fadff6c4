import * as fs from 'node:fs';
import { join } from 'node:path';
import { pythonSeedSignature } from '../../support/python-seed';
import { startTestReceiver, tempDir, type TestReceiver } from '../../support/receiver-fixture';

/** The original server's README's example token: 11 characters. */
const EXAMPLE_TOKEN = 's3c43t70k3n';

describe('a receiver moved from the original server keeps its tokens', () => {
  let receiver: TestReceiver;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    const tokenFile = join(dir, 'tokens.json');
    fs.writeFileSync(tokenFile, JSON.stringify({ 'site/master': 'short-one' }), { mode: 0o600 });
    receiver = await startTestReceiver({
      tokens: { file: tokenFile },
      triggers: [
        { repository: 'my-repo', branch: 'master', token: EXAMPLE_TOKEN, command: 'true' },
        { repository: 'site', branch: 'master', command: 'true' },
      ],
    });
  });
  afterAll(async () => {
    await receiver.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['my-repo', 'master', EXAMPLE_TOKEN],
    ['site', 'master', 'short-one'],
  ])('accepts %s %s signed with its short token by the original algorithm', async (repository, branch, token) => {
    const ts = Math.floor(Date.now() / 1000);
    const res = await receiver.send(`/${repository}-${branch}`, {
      method: 'GET',
      headers: { 'X-Signature-Timestamp': String(ts), 'X-Signature': pythonSeedSignature(ts, repository, branch, token, 1000) },
    });
    expect(res.status).toBe(202);
  });

  it('warns loudly at start-up about each short token, naming where it is and never the token', () => {
    const warnings = receiver.logs.filter(
      (line) => line.level === 40 && String(line.msg).includes('characters long: a token this short can be guessed'),
    );
    expect(warnings.map((line) => line.msg)).toEqual([
      expect.stringContaining('triggers[0].token (my-repo@master) is only 11 characters long'),
      expect.stringContaining(`token site/master in ${join(dir, 'tokens.json')} is only 9 characters long`),
    ]);
    expect(JSON.stringify(receiver.logs)).not.toContain(EXAMPLE_TOKEN);
    expect(JSON.stringify(receiver.logs)).not.toContain('short-one');
  });
});
