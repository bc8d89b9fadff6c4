/**
 * Two triggers' deploy paths are compared as the filesystem resolves them when the config loads:
 * a symlink to another trigger's directory, or to a directory inside it, is refused, naming both.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseReceiverConfig } from '../../../receiver/config/schema';
import { resolvedDeployPath } from '../../../receiver/config/deploy-paths';
import { tempDir } from '../../support/receiver-fixture';

describe('deploy paths through symlinks, when the config loads', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('triggler-deploy-paths-');
    fs.mkdirSync(join(dir, 'site'));
    fs.symlinkSync(join(dir, 'site'), join(dir, 'site-alias'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function problems(appPath: string, otherPath: string): string[] {
    const trigger = (repository: string, path: string) => ({
      repository,
      branch: 'main',
      command: 'true',
      token: 'a-token-of-sixteen-chars',
      deploy: { repositoryUrl: `/srv/git/${repository}.git`, path },
    });
    try {
      parseReceiverConfig({ stateDir: join(dir, 'state'), triggers: [trigger('app', appPath), trigger('site', otherPath)] });
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems;
    }
  }

  it("a path that is a symlink to another trigger's is that path", () => {
    expect(problems(join(dir, 'site'), join(dir, 'site-alias'))).toEqual([
      `triggers[1].deploy.path: is the deploy.path of triggers[0] (app main) (${join(dir, 'site-alias')} resolves to ${join(dir, 'site')}); give each trigger its own`,
    ]);
  });

  it('a path not made yet under a symlink resolves through it', () => {
    expect(resolvedDeployPath(join(dir, 'site-alias', 'releases', 'next'))).toBe(join(fs.realpathSync(dir), 'site', 'releases', 'next'));
    expect(problems(join(dir, 'site'), join(dir, 'site-alias', 'inner'))).toEqual([
      `triggers[1].deploy.path: overlaps the deploy.path of triggers[0] (app main) (${join(dir, 'site-alias', 'inner')} resolves to ${join(dir, 'site', 'inner')}); give each trigger its own`,
    ]);
  });

  it('paths that stay apart after symlinks are followed are taken, and plain paths are compared as before', () => {
    fs.mkdirSync(join(dir, 'other'));
    expect(problems(join(dir, 'site-alias'), join(dir, 'other'))).toEqual([]);
    expect(problems(join(dir, 'site'), `${join(dir, 'site')}/`)).toEqual([
      `triggers[1].deploy.path: is the deploy.path of triggers[0] (app main); give each trigger its own`,
    ]);
  });
});
