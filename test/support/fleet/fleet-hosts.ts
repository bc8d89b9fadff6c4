/**
 * N real receivers on 127.0.0.1, one per fleet host: each a `triggler serve` child process with
 * its own state directory, deploy path, listener and admin ports, fetching the trigger's commits
 * from one real bare repository. Behaviour a scenario needs (a failing health check, an activate
 * that waits) is asked of a host by a file the test writes, read by the host's own commands.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ReleaseLayout } from '../../../receiver';
import { freePort, startCli, stopCli } from '../cli';
import { sourceRepo, type SourceRepo } from '../git-repo';
import { tempDir } from '../receiver-fixture';

export const FLEET_REPOSITORY = 'app';
export const FLEET_BRANCH = 'main';

export interface FleetHost {
  /** The instance id Run Command knows it by. */
  instanceId: string;
  /** Its receiver config (what the Command document's `--config` names). */
  configFile: string;
  deployPath: string;
  stateDir: string;
  /** Its admin listener, where its runs can be read. */
  adminUrl: string;
  tags: Record<string, string>;
  /** False: its SSM agent is offline (left out of the snapshot, Undeliverable if sent to). */
  online: boolean;
  serve: ChildProcess;
}

export class FleetHosts {
  readonly dir = tempDir('triggler-fleet-');
  readonly repo: SourceRepo = sourceRepo(this.dir);
  readonly hosts: FleetHost[] = [];
  private readonly behaviour = join(this.dir, 'behaviour');

  constructor(
    private readonly fleetTag: { key: string; value: string },
    /** Every host's trigger `command` (what prepare runs in the release). */
    private readonly command = 'true',
  ) {
    fs.mkdirSync(this.behaviour);
    // Health check and activate of every host: a file `fail-<id>` fails the check, `hold-<id>`
    // keeps activate waiting until the file goes.
    fs.writeFileSync(join(this.behaviour, 'health.sh'), 'test ! -f "$(dirname "$0")/fail-$1"\n');
    fs.writeFileSync(join(this.behaviour, 'activate.sh'), 'while test -f "$(dirname "$0")/hold-$1"; do sleep 0.1; done\n');
  }

  /** Starts `count` more receivers; resolves once each listens. */
  async add(count: number): Promise<FleetHost[]> {
    const added = await Promise.all(Array.from({ length: count }, (_, i) => this.start(this.hosts.length + i + 1)));
    this.hosts.push(...added);
    return added;
  }

  host(instanceId: string): FleetHost {
    const host = this.hosts.find((candidate) => candidate.instanceId === instanceId);
    if (!host) throw new Error(`no fleet host ${instanceId}`);
    return host;
  }

  /** The commit the host's `current` release was built from, or null before its first switch. */
  async current(instanceId: string): Promise<string | null> {
    const releases = await new ReleaseLayout(this.host(instanceId).deployPath).list();
    return releases.find((release) => release.current)?.commit ?? null;
  }

  /** Makes the host's health check fail (true) or pass again (false). */
  failHealthCheck(instanceId: string, fail: boolean): void {
    this.flag(`fail-${instanceId}`, fail);
  }

  /** Keeps the host's `activate` waiting (true) until released (false). */
  holdActivate(instanceId: string, hold: boolean): void {
    this.flag(`hold-${instanceId}`, hold);
  }

  private flag(name: string, on: boolean): void {
    const file = join(this.behaviour, name);
    if (on) fs.writeFileSync(file, '');
    else fs.rmSync(file, { force: true });
  }

  private async start(index: number): Promise<FleetHost> {
    const instanceId = `i-${index.toString(16).padStart(17, '0')}`;
    const root = join(this.dir, instanceId);
    const configFile = join(root, 'receiver.json');
    const deployPath = join(root, 'srv', FLEET_REPOSITORY);
    const stateDir = join(root, 'state');
    fs.mkdirSync(root, { recursive: true });
    const [port, adminPort] = [await freePort(), await freePort()];
    const script = (name: string) => ['sh', join(this.behaviour, name), instanceId];
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        listen: { host: '127.0.0.1', port },
        admin: { host: '127.0.0.1', port: adminPort },
        stateDir,
        triggers: [
          {
            repository: FLEET_REPOSITORY,
            branch: FLEET_BRANCH,
            token: `fleet-host-token-${instanceId}`,
            command: this.command,
            timeoutSeconds: 60,
            deploy: {
              repositoryUrl: this.repo.url,
              path: deployPath,
              activate: script('activate.sh'),
              healthCheck: { command: script('health.sh'), timeoutSeconds: 1, intervalSeconds: 1 },
            },
          },
        ],
      }),
      { mode: 0o600 },
    );
    const { child } = await startCli(['serve', '--config', configFile], /receiver listening/);
    return {
      instanceId,
      configFile,
      deployPath,
      stateDir,
      adminUrl: `http://127.0.0.1:${adminPort}`,
      tags: { [this.fleetTag.key]: this.fleetTag.value },
      online: true,
      serve: child,
    };
  }

  /** Stops every receiver and removes their folders. */
  async dispose(): Promise<void> {
    await Promise.all(this.hosts.map((host) => stopCli(host.serve)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
